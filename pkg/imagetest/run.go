package imagetest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/rootfs"
)

// Options shape a run.
type Options struct {
	// Runtime runs commandTests. Without one they are reported as
	// skipped, never as passed.
	Runtime *Podman
	// Clock times each test (the durations of the reports); nil gives
	// zero durations.
	Clock func() time.Time
	// Log receives progress; nil discards.
	Log *slog.Logger
	// Platform narrows an index to its image of this platform
	// (os/arch[/variant]); "" tests every image.
	Platform string
}

// Result is one test's outcome. Its JSON is container-structure-test's
// (field names as Go spells them, Duration in nanoseconds), with Skipped
// added for tests that did not run.
type Result struct {
	Name     string
	Pass     bool
	Skipped  bool     `json:",omitempty"`
	Stdout   string   `json:",omitempty"`
	Stderr   string   `json:",omitempty"`
	Errors   []string `json:",omitempty"`
	Duration time.Duration
	// File is the test file the test comes from.
	File string `json:"-"`
}

func (r *Result) errorf(format string, args ...any) {
	r.Pass = false
	r.Errors = append(r.Errors, fmt.Sprintf(format, args...))
}

// Summary is every result of a run. Its JSON is container-structure-test's
// summary, with Skip added (omitted when zero); Total counts skipped tests
// too, so a run with skipped tests never reads as all passed.
type Summary struct {
	Pass     int
	Fail     int
	Skip     int `json:",omitempty"`
	Total    int
	Duration time.Duration
	Results  []*Result `json:",omitempty"`
}

// Err is nil when no test failed, and a fault.CheckFailed error naming the
// failures otherwise.
func (s *Summary) Err() error {
	switch {
	case s.Fail > 0:
		return fault.Check(fmt.Errorf("%d of %d tests failed", s.Fail, s.Total))
	case s.Total == 0:
		return fault.Check(errors.New("no tests ran; the test files hold none"))
	}
	return nil
}

func (s *Summary) add(r *Result) {
	s.Results = append(s.Results, r)
	s.Total++
	switch {
	case r.Skipped:
		s.Skip++
	case r.Pass:
		s.Pass++
	default:
		s.Fail++
	}
	s.Duration += r.Duration
}

// Merge appends o's results to s.
func (s *Summary) Merge(o *Summary) {
	for _, r := range o.Results {
		s.add(r)
	}
}

// runner holds what the tests of one image read.
type runner struct {
	img    v1.Image
	cfg    *v1.ConfigFile
	opts   Options
	prefix string // put before each result's name (a platform)
	tree   *tree
	fs     *rootfs.FS
	data   map[string][]byte
	pod    *session
	podErr error
	podNot string // why command tests are skipped; "" when they run
}

// Run runs every test of files against a: its image, or every image of
// its index (nested indexes too), the names of the results then prefixed
// with the image's platform; with opts.Platform, only that platform's
// image of an index (an image of another platform is refused). Within an image, tests run file by file and, within a
// file, in container-structure-test's order: commandTests,
// fileContentTests, fileExistenceTests, licenseTests, then the
// metadataTest. The filesystem
// is read from the layers as they are streamed, whiteouts applied;
// nothing is extracted. Its error is for the run itself (reading the
// image, starting podman); failed tests are in the Summary.
func Run(ctx context.Context, a imageref.Artifact, files []*File, opts Options) (*Summary, error) {
	switch {
	case a.Image != nil:
		if opts.Platform != "" {
			// One image: the platform asked for must be its own.
			if _, err := a.Pick(opts.Platform, ""); err != nil {
				return nil, err
			}
		}
		return runImage(ctx, a.Image, files, opts, "")
	case a.Index == nil:
		return nil, fault.Bad(errors.New("nothing to test: neither an image nor an index"))
	}
	images, err := a.PlatformImages("") // nested indexes too, to imageref.MaxIndexDepth
	if err != nil {
		return nil, err
	}
	if len(images) == 0 {
		return nil, fault.Bad(errors.New("the index holds no image to test, nor does any index it nests"))
	}
	// An image whose entry names no platform is named by its digest.
	name := func(im imageref.PlatformImage) string {
		if im.Platform == "" {
			return im.Descriptor.Digest.String()
		}
		return im.Platform
	}
	if opts.Platform != "" {
		var names []string
		for _, im := range images {
			if im.Platform == opts.Platform {
				return runImage(ctx, im.Image, files, opts, "")
			}
			names = append(names, name(im))
		}
		return nil, fault.Bad(fmt.Errorf("the index has no %s image; it has %s", opts.Platform, listOr(names)))
	}
	all := &Summary{}
	for _, im := range images {
		s, err := runImage(ctx, im.Image, files, opts, "["+name(im)+"] ")
		if err != nil {
			return nil, err
		}
		all.Merge(s)
	}
	return all, nil
}

func listOr(names []string) string {
	if len(names) == 0 {
		return "no image at all"
	}
	return strings.Join(names, ", ")
}

func runImage(ctx context.Context, img v1.Image, files []*File, opts Options, prefix string) (*Summary, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fault.Op(fmt.Errorf("reading the image config: %w", err))
	}
	r := &runner{img: img, cfg: cfg, opts: opts, prefix: prefix}
	defer r.close()
	if err := r.readFiles(ctx, files); err != nil {
		return nil, err
	}
	s := &Summary{}
	for _, f := range files {
		env := r.env(f.GlobalEnvVars)
		for i := range f.CommandTests {
			s.add(r.timed(f, func() *Result { return r.command(ctx, f, &f.CommandTests[i], env) }))
			if r.podErr != nil {
				return nil, r.podErr
			}
		}
		// container-structure-test's order (runAll in its pkg/types):
		// content tests before existence tests.
		for i := range f.FileContentTests {
			s.add(r.timed(f, func() *Result { return r.content(&f.FileContentTests[i]) }))
		}
		for i := range f.FileExistenceTests {
			s.add(r.timed(f, func() *Result { return r.existence(&f.FileExistenceTests[i], env) }))
		}
		for i := range f.LicenseTests {
			s.add(r.timed(f, func() *Result { return r.license(&f.LicenseTests[i]) }))
		}
		if !f.MetadataTest.empty() {
			s.add(r.timed(f, func() *Result { return r.metadata(&f.MetadataTest, env) }))
		}
	}
	return s, nil
}

func (r *runner) timed(f *File, fn func() *Result) *Result {
	var start time.Time
	if r.opts.Clock != nil {
		start = r.opts.Clock()
	}
	res := fn()
	if r.opts.Clock != nil {
		res.Duration = r.opts.Clock().Sub(start)
	}
	res.Name = r.prefix + res.Name
	res.File = f.Path
	return res
}

func (r *runner) close() {
	if r.pod != nil {
		r.pod.close()
	}
}

// readFiles reads the filesystem when a test needs it, and the content
// of every file a content test reads, in one pass each.
func (r *runner) readFiles(ctx context.Context, files []*File) error {
	need := false
	for _, f := range files {
		need = need || len(f.FileExistenceTests) > 0 || len(f.FileContentTests) > 0 || len(f.LicenseTests) > 0
	}
	if !need {
		return nil
	}
	fsys, err := rootfs.Read(ctx, r.img)
	if err != nil {
		err = fmt.Errorf("reading the image's filesystem: %w", err)
		if fault.KindOf(err) == fault.BadInput { // a hostile layer (pkg/rootfs limits)
			return err
		}
		return fault.Op(err)
	}
	r.fs, r.tree = fsys, newTree(fsys)
	paths := map[string]bool{}
	want := func(p string) {
		if _, e, _ := r.tree.lookup(p, true); e != nil && e.Kind == rootfs.Regular && e.Size <= maxContent {
			paths[e.Path] = true
		}
	}
	for _, f := range files {
		for _, t := range f.FileContentTests {
			want(t.Path)
		}
		for _, t := range f.LicenseTests {
			if t.Debian {
				for _, pkg := range r.debianPackages() {
					want(path.Join(debianDocs, pkg, "copyright"))
				}
			}
			for _, p := range t.Files {
				want(p)
			}
		}
	}
	r.data, err = contents(ctx, r.img, fsys, paths)
	if err != nil {
		return fault.Op(fmt.Errorf("reading the image's files: %w", err))
	}
	return nil
}

// env is the image's environment with the file's globalEnvVars set over
// it, each value expanded ($VAR, ${VAR}) against what is set before it.
func (r *runner) env(globals []EnvVar) map[string]string {
	env := map[string]string{}
	for _, kv := range r.cfg.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for _, g := range globals {
		env[g.Key] = os.Expand(g.Value, func(k string) string { return env[k] })
	}
	return env
}

func expand(s string, env map[string]string) string {
	return os.Expand(s, func(k string) string { return env[k] })
}

func (r *runner) existence(t *FileExistenceTest, env map[string]string) *Result {
	res := &Result{Name: "File Existence Test: " + t.Name, Pass: true}
	// As container-structure-test does, $VAR in the path is the image's
	// (and globalEnvVars') value.
	p := expand(t.Path, env)
	_, f, err := r.tree.lookup(p, false)
	if f == nil {
		if t.ShouldExist {
			res.errorf("%s does not exist in the image: %v", p, err)
		}
		return res
	}
	if !t.ShouldExist {
		res.errorf("%s exists in the image but should not", p)
	}
	m := mode(f)
	if t.Permissions != "" && m.String() != t.Permissions {
		res.errorf("%s: permissions %s, want %s", p, m, t.Permissions)
	}
	if t.IsExecutableBy != "" {
		bits := map[string]uint32{"any": 0o111, "owner": 0o100, "group": 0o010, "other": 0o001}[t.IsExecutableBy]
		if uint32(m.Perm())&bits == 0 {
			res.errorf("%s: not executable by %s (permissions %s)", p, t.IsExecutableBy, m)
		}
	}
	if t.UID != -1 && f.UID != t.UID {
		res.errorf("%s: owner uid %d, want %d", p, f.UID, t.UID)
	}
	if t.GID != -1 && f.GID != t.GID {
		res.errorf("%s: group gid %d, want %d", p, f.GID, t.GID)
	}
	return res
}

// read returns the content of the file at p, read before the tests ran,
// or why it cannot.
func (r *runner) read(p string) (string, error) {
	_, f, err := r.tree.lookup(p, true)
	switch {
	case f == nil:
		return "", fmt.Errorf("cannot read %s: %w", p, err)
	case f.Kind == rootfs.Dir:
		return "", fmt.Errorf("cannot read %s: it is a directory", p)
	case f.Kind != rootfs.Regular:
		return "", fmt.Errorf("cannot read %s: it is a %s, not a regular file", p, f.Kind)
	case f.Size > maxContent:
		return "", fmt.Errorf("cannot read %s: %d bytes, more than the %d that content tests read", p, f.Size, maxContent)
	}
	return string(r.data[f.Path]), nil
}

func (r *runner) content(t *FileContentTest) *Result {
	res := &Result{Name: "File Content Test: " + t.Name, Pass: true}
	body, err := r.read(t.Path)
	if err != nil {
		res.errorf("%v", err)
		return res
	}
	for _, e := range t.ExpectedContents {
		if !regexp.MustCompile(e).MatchString(body) {
			res.errorf("expected content %q not found in %s: %s", e, t.Path, excerpt(body))
		}
	}
	for _, e := range t.ExcludedContents {
		if regexp.MustCompile(e).MatchString(body) {
			res.errorf("excluded content %q found in %s: %s", e, t.Path, excerpt(body))
		}
	}
	return res
}

// debianDocs is where Debian packages keep their copyright files.
const debianDocs = "/usr/share/doc"

// licenceAllowed are the packages whose copyright files a licence test
// does not read, and licenceRefused the words that fail it, as
// container-structure-test has them.
var (
	licenceAllowed = []string{"libgnutls30"}
	licenceRefused = []string{"AGPL", "WTFPL"}
)

// debianPackages are the directories right under /usr/share/doc (as
// themselves: a symbolic link to a directory is not one), sorted.
func (r *runner) debianPackages() []string {
	var out []string
	for _, f := range r.fs.Files() {
		if path.Dir(f.Path) == debianDocs && f.Kind == rootfs.Dir && !slices.Contains(licenceAllowed, path.Base(f.Path)) {
			out = append(out, path.Base(f.Path))
		}
	}
	for p := range r.tree.implicit {
		if path.Dir(p) == debianDocs && !slices.Contains(licenceAllowed, path.Base(p)) {
			out = append(out, path.Base(p))
		}
	}
	sort.Strings(out)
	return out
}

// license is container-structure-test's licence test: each copyright
// file must exist and name no refused licence.
func (r *runner) license(t *LicenseTest) *Result {
	res := &Result{Name: "License Test", Pass: true}
	check := func(p string) {
		body, err := r.read(p)
		if err != nil {
			res.errorf("%v", err)
			return
		}
		up := strings.ToUpper(body)
		for _, w := range licenceRefused {
			if strings.Contains(up, w) {
				res.errorf("%s names the licence %s, which licence tests refuse", p, w)
			}
		}
	}
	if t.Debian {
		if _, d, err := r.tree.lookup(debianDocs, true); d == nil || d.Kind != rootfs.Dir {
			if err == nil {
				err = errNotDir
			}
			res.errorf("cannot read the directory %s: %v", debianDocs, err)
			return res
		}
		for _, pkg := range r.debianPackages() {
			check(path.Join(debianDocs, pkg, "copyright"))
		}
	}
	for _, p := range t.Files {
		check(p)
	}
	return res
}

// excerpt quotes the start of a file's content for a message.
func excerpt(s string) string {
	const max = 200
	if len(s) > max {
		return fmt.Sprintf("%q… (%d bytes)", s[:max], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// ports lists the config's exposed ports as container-structure-test
// compares them: the port alone, its protocol cut off ("8080/tcp" is
// "8080"; a test that names "8080/tcp" does not find it).
func ports(cfg v1.Config) []string {
	var out []string
	for p := range cfg.ExposedPorts {
		port, _, _ := strings.Cut(p, "/")
		out = append(out, port)
	}
	sort.Strings(out)
	return out
}

func volumes(cfg v1.Config) []string {
	var out []string
	for v := range cfg.Volumes {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func (r *runner) metadata(t *MetadataTest, env map[string]string) *Result {
	res := &Result{Name: "Metadata Test", Pass: true}
	c := r.cfg.Config
	match := func(what string, want EnvVar, have map[string]string) {
		v, ok := have[want.Key]
		switch {
		case !ok:
			res.errorf("%s %s is not set in the image", what, want.Key)
		case want.IsRegex && !regexp.MustCompile(want.Value).MatchString(v):
			res.errorf("%s %s is %q, which does not match %q", what, want.Key, v, want.Value)
		case !want.IsRegex && v != want.Value:
			res.errorf("%s %s is %q, want %q", what, want.Key, v, want.Value)
		}
	}
	for _, e := range t.EnvVars {
		match("env var", e, env)
	}
	for _, e := range t.UnboundEnvVars {
		if _, ok := env[e.Key]; ok {
			res.errorf("env var %s is set in the image but should not be", e.Key)
		}
	}
	for _, l := range t.Labels {
		match("label", l, c.Labels)
	}
	list := func(what string, want *[]string, have []string) {
		if want != nil && !slices.Equal(*want, have) {
			res.errorf("%s is %q, want %q", what, have, *want)
		}
	}
	list("entrypoint", t.Entrypoint, c.Entrypoint)
	list("cmd", t.Cmd, c.Cmd)
	if t.Workdir != "" && t.Workdir != c.WorkingDir {
		res.errorf("workdir is %q, want %q", c.WorkingDir, t.Workdir)
	}
	if t.User != "" && t.User != c.User {
		res.errorf("user is %q, want %q", c.User, t.User)
	}
	have := ports(c)
	for _, p := range t.ExposedPorts {
		if !slices.Contains(have, p) {
			hint := ""
			if port, _, ok := strings.Cut(p, "/"); ok && slices.Contains(have, port) {
				hint = fmt.Sprintf(" (ports are compared without their protocol, as container-structure-test does: write %q)", port)
			}
			res.errorf("port %s is not exposed; the image exposes %q%s", p, have, hint)
		}
	}
	for _, p := range t.UnexposedPorts {
		if slices.Contains(have, p) {
			res.errorf("port %s is exposed but should not be", p)
		}
	}
	vols := volumes(c)
	for _, v := range t.Volumes {
		if !slices.Contains(vols, v) {
			res.errorf("volume %s is not in the config; it has %q", v, vols)
		}
	}
	for _, v := range t.UnmountedVolumes {
		if slices.Contains(vols, v) {
			res.errorf("volume %s is in the config but should not be", v)
		}
	}
	return res
}

func (r *runner) command(ctx context.Context, f *File, t *CommandTest, env map[string]string) *Result {
	res := &Result{Name: "Command Test: " + t.Name, Pass: true}
	skip := func(why string) *Result {
		res.Pass, res.Skipped = false, true
		res.Errors = []string{"skipped: " + why}
		return res
	}
	if r.opts.Runtime == nil {
		return skip("commandTests run only in a container runtime (podman), and none was given")
	}
	if r.pod == nil && r.podNot == "" {
		if p := imageref.PlatformName(imageref.ConfigPlatform(r.cfg)); r.opts.Runtime.Platform != "" && r.cfg.OS != "" && p != r.opts.Runtime.Platform && !strings.HasPrefix(p, r.opts.Runtime.Platform+"/") {
			r.podNot = fmt.Sprintf("the image is %s and podman runs %s here", p, r.opts.Runtime.Platform)
		} else {
			r.pod, r.podErr = r.opts.Runtime.start(ctx, r.img, r.cfg, r.opts.Log)
			if r.podErr != nil {
				return res
			}
		}
	}
	if r.podNot != "" {
		return skip(r.podNot)
	}
	out, err := r.pod.run(ctx, t, f, env)
	if err != nil {
		if ctx.Err() != nil {
			r.podErr = ctx.Err()
			return res
		}
		res.errorf("%v", err)
		return res
	}
	res.Stdout, res.Stderr = out.stdout, out.stderr
	check := func(list []string, text, what string, want bool) {
		for _, e := range list {
			if regexp.MustCompile(e).MatchString(text) != want {
				if want {
					res.errorf("expected %s %q not found in: %s", what, e, excerpt(text))
				} else {
					res.errorf("excluded %s %q found in: %s", what, e, excerpt(text))
				}
			}
		}
	}
	check(t.ExpectedError, out.stderr, "error output", true)
	check(t.ExcludedError, out.stderr, "error output", false)
	check(t.ExpectedOutput, out.stdout, "output", true)
	check(t.ExcludedOutput, out.stdout, "output", false)
	if out.code != t.ExitCode {
		res.errorf("exit code %d, want %d", out.code, t.ExitCode)
	}
	return res
}
