package build

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"go/version"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/reprobuild/repro/pkg/attest"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/layer"
	"github.com/reprobuild/repro/pkg/lock"
	"github.com/reprobuild/repro/pkg/spec"
)

// ErrNoToolchain: the spec compiles Go programs (go: entries) and the
// lock pins no Go toolchain, and Request.AllowUnpinned is not set. It is
// also ErrUnpinned, the policy it belongs to.
var ErrNoToolchain = errors.New("the Go toolchain is not pinned")

// toolchainRE is a Go release as the go command names it (go1.26.8,
// go1.27rc1).
var toolchainRE = regexp.MustCompile(`^go1\.[0-9]+(?:\.[0-9]+|(?:rc|beta)[0-9]+)?$`)

// ValidToolchain reports whether name is a Go release as the go command
// names it, such as go1.26.8.
func ValidToolchain(name string) bool { return toolchainRE.MatchString(name) }

// goEnvKeep are the variables of the caller's environment that the go
// command may see: where its caches and proxies are, none that changes
// what it compiles.
var goEnvKeep = map[string]bool{
	"PATH": true, "HOME": true, "USER": true, "LOGNAME": true, "TMPDIR": true,
	"GOCACHE": true, "GOMODCACHE": true, "GOPATH": true,
	"GOPROXY": true, "GONOPROXY": true, "GOPRIVATE": true, "GONOSUMDB": true, "GONOSUMCHECK": true,
	"GOSUMDB": true, "GOINSECURE": true, "GOAUTH": true, "GOVCS": true,
	"XDG_CACHE_HOME": true, "XDG_CONFIG_HOME": true,
	"HTTP_PROXY": true, "HTTPS_PROXY": true, "NO_PROXY": true, "http_proxy": true, "https_proxy": true, "no_proxy": true,
	"SSL_CERT_FILE": true, "SSL_CERT_DIR": true,
}

// GoEnviron is the part of environ (os.Environ's form, KEY=value) that a
// go: entry's compiler may see: PATH, HOME, TMPDIR, the caches, the module
// proxy and checksum database settings, and proxy and certificate
// variables. Everything that changes what is compiled (GOFLAGS, GOOS,
// GOARCH, GOARM, GOAMD64, CGO_*, GOEXPERIMENT, GOTOOLCHAIN, GOROOT,
// GOENV, GOWORK, ...) is dropped; the build sets what it needs itself.
func GoEnviron(environ []string) []string {
	var out []string
	for _, kv := range environ {
		k, _, ok := strings.Cut(kv, "=")
		if ok && goEnvKeep[k] {
			out = append(out, kv)
		}
	}
	return out
}

// lookGo finds the go command on the PATH of env (never the process's).
func lookGo(env []string) (string, error) {
	var path string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, "go")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fault.Op(errors.New("go entries need the go command, and there is none on PATH; install Go (https://go.dev/dl/) and put it on PATH"))
}

// runGo runs the go command with args in dir under env, bounded by ctx;
// it returns stdout, and on failure an error holding stderr.
func runGo(ctx context.Context, env []string, dir string, args ...string) ([]byte, []byte, error) {
	goPath, err := lookGo(env)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.CommandContext(ctx, goPath, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	return stdout.Bytes(), stderr.Bytes(), err
}

// LocalToolchain is what repro lock pins for the spec's go: entries: the
// toolchain line of their modules' go.mod files, else the version of the
// go command on env's PATH (run with GOTOOLCHAIN=local, so go.mod's go
// line does not switch it). Modules naming different toolchains are bad
// input.
// declared says it came from a toolchain line.
func LocalToolchain(ctx context.Context, s *spec.Spec, env []string) (name string, declared bool, err error) {
	// The go: entries, each with its spec field and its module's root.
	type goEntry struct{ field, modRoot string }
	var entries []goEntry
	for i, l := range s.Layers {
		for j, c := range l.Contents {
			if c.Go == "" {
				continue
			}
			field := fmt.Sprintf("layers[%d].contents[%d].go", i, j)
			_, modRoot, err := goPackage(s, field, c.Go)
			if err != nil {
				return "", false, err
			}
			entries = append(entries, goEntry{field, modRoot})
		}
	}
	var tc, from string
	for _, e := range entries {
		line, err := goModToolchain(filepath.Join(e.modRoot, "go.mod"))
		if err != nil {
			return "", false, fault.Op(err)
		}
		if line == "" {
			continue
		}
		if tc != "" && line != tc {
			return "", false, fault.Bad(s.ErrorAt(e.field, "its module's go.mod names toolchain %s and %s names %s; one build pins one Go toolchain, so make the toolchain lines agree", line, from, tc))
		}
		tc, from = line, filepath.Join(e.modRoot, "go.mod")
	}
	declared = tc != ""
	if !declared {
		out, stderr, err := runGo(ctx, append(env, "GOTOOLCHAIN=local", "GOENV=off", "GOFLAGS="), s.Dir, "env", "GOVERSION")
		if err != nil {
			return "", false, fault.Op(fmt.Errorf("go env GOVERSION: %w: %s", err, bytes.TrimSpace(stderr)))
		}
		tc = strings.TrimSpace(string(out))
		if !ValidToolchain(tc) {
			return "", false, fault.Op(fmt.Errorf("go env GOVERSION said %q, which is not a Go release (go1.N.M); lock with a released Go on PATH", tc))
		}
	}
	// A pin that cannot build a module is refused now, not at the build.
	what, fix := "the go on PATH", "put that Go (or a newer one) on PATH, or name it in a toolchain line of that go.mod (toolchain go1.N.M), and run repro lock again"
	if declared {
		rel := from
		if r, err := filepath.Rel(s.Dir, from); err == nil {
			rel = filepath.ToSlash(r)
		}
		what, fix = "the toolchain line of "+rel, "make the toolchain line name a Go at least as new as the go line"
	}
	for _, e := range entries {
		if err := goModTooNew(s, e.field, e.modRoot, tc, what, fix); err != nil {
			return "", false, err
		}
	}
	return tc, declared, nil
}

// goModToolchain is the toolchain line of the go.mod at path ("" if none).
func goModToolchain(path string) (string, error) {
	tc, _, _, err := goModLines(path)
	return tc, err
}

// goModLines reads the toolchain line of the go.mod at path ("" if none)
// and its go line: the version it asks for ("" if none) and its line
// number.
func goModLines(path string) (toolchain, goVer string, goLine int, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", "", 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 2 && f[0] == "toolchain" && ValidToolchain(f[1]):
			toolchain = f[1]
		case len(f) >= 2 && f[0] == "go" && goVer == "" && version.IsValid("go"+f[1]):
			goVer, goLine = f[1], n
		}
	}
	return toolchain, goVer, goLine, sc.Err()
}

// goModTooNew is the error for a go: entry (field) whose module, at
// modRoot, asks in its go.mod's go line for a newer Go than tc, which the
// go command then refuses to build it with; nil when it does not. what
// names tc for the message and fix says what to do.
func goModTooNew(s *spec.Spec, field, modRoot, tc, what, fix string) error {
	mod := filepath.Join(modRoot, "go.mod")
	_, goVer, line, err := goModLines(mod)
	if err != nil {
		return fault.Op(err)
	}
	if goVer == "" || version.Compare("go"+goVer, tc) <= 0 {
		return nil
	}
	rel := mod
	if r, err := filepath.Rel(s.Dir, mod); err == nil {
		rel = filepath.ToSlash(r)
	}
	return fault.Bad(s.ErrorAt(field, "%s:%d asks for go >= %s, newer than %s, %s, which cannot build it; %s", rel, line, goVer, what, tc, fix))
}

// goToolchain is the toolchain that the go: entries of s compile with:
// the request's, else the lock's pin. With neither, the build is refused
// (ErrNoToolchain) unless AllowUnpinned, which takes the go on PATH as it
// is ("", GOTOOLCHAIN=local).
func goToolchain(s *spec.Spec, lf *lock.File, req Request, log *slog.Logger) (string, error) {
	if !s.HasGo() {
		return "", nil
	}
	tc := req.GoToolchain
	if tc == "" && lf != nil {
		tc = lf.Go
	}
	if tc != "" {
		if !ValidToolchain(tc) {
			return "", fault.Bad(&classError{fmt.Errorf("%s: go toolchain %q is not a Go release (go1.N.M)", lock.PathFor(req.File), tc), &NeedsLockError{Spec: req.File}})
		}
		return tc, nil
	}
	if req.AllowUnpinned {
		log.Warn("the Go toolchain is not pinned; compiling with the go on PATH as it is, so this build is not reproducible")
		return "", nil
	}
	field := firstGoField(s)
	return "", fault.Bad(&classError{s.ErrorAt(field, "compiles Go, and the lock pins no Go toolchain (locking pins the go on PATH, or go.mod's toolchain line)"), errors.Join(ErrNoToolchain, ErrUnpinned, &NeedsLockError{Spec: s.File})})
}

func firstGoField(s *spec.Spec) string {
	for i, l := range s.Layers {
		for j, c := range l.Contents {
			if c.Go != "" {
				return fmt.Sprintf("layers[%d].contents[%d].go", i, j)
			}
		}
	}
	return "layers"
}

// goPackage resolves the package directory pkg of a go: entry at field:
// it must be a directory inside the context, in a module whose go.mod is
// inside the context too. It returns the package's directory and the
// module's root, both with symlinks resolved.
func goPackage(s *spec.Spec, field, pkg string) (dir, modRoot string, err error) {
	root, err := filepath.EvalSymlinks(s.Dir)
	if err != nil {
		return "", "", fault.Op(fmt.Errorf("reading the build context: %w", err))
	}
	dir, err = filepath.EvalSymlinks(filepath.Join(root, filepath.FromSlash(pkg)))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", "", fault.Bad(s.ErrorAt(field, "%s does not exist in the build context (%s); name the directory of a main package relative to it, like ./cmd/server, or set context: to the parent directory it is relative to (context: ../..)", pkg, s.Dir))
	case err != nil:
		return "", "", fault.Bad(s.ErrorAt(field, "%s: %v", pkg, err))
	}
	if !inside(root, dir) {
		return "", "", fault.Bad(s.ErrorAt(field, "%s leads out of the build context (to %s); the program's sources must be inside the build context (the spec's directory, or the parent context: names)", pkg, dir))
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", "", fault.Bad(s.ErrorAt(field, "%s is not a directory; name the directory of a main package, like ./cmd/server", pkg))
	}
	for d := dir; ; d = filepath.Dir(d) {
		if fi, err := os.Lstat(filepath.Join(d, "go.mod")); err == nil && fi.Mode().IsRegular() {
			return dir, d, nil
		}
		if d == root || !inside(root, filepath.Dir(d)) {
			break
		}
	}
	return "", "", fault.Bad(s.ErrorAt(field, "%s is in no Go module inside the build context: there is no go.mod between it and %s; run go mod init there, or point context: at a parent that holds the module (the module must be inside the build context)", pkg, s.Dir))
}

func inside(root, p string) bool {
	r, err := filepath.Rel(root, p)
	return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) && !filepath.IsAbs(r)
}

// goPlatformEnv sets the target of a compile for p: GOOS, GOARCH, and
// the variant's GOARM, GOAMD64 or GOARM64 when the variant names one.
func goPlatformEnv(p spec.Platform) []string {
	env := []string{"GOOS=" + p.OS, "GOARCH=" + p.Arch}
	v := p.Variant
	switch {
	case v == "":
	case p.Arch == "arm" && len(v) == 2 && v[0] == 'v':
		env = append(env, "GOARM="+v[1:])
	case p.Arch == "amd64":
		env = append(env, "GOAMD64="+v)
	case p.Arch == "arm64" && strings.Contains(v, "."):
		env = append(env, "GOARM64="+v)
	}
	return env
}

// netFailure matches what the go command says when the network, not
// the input, failed it.
var netFailure = regexp.MustCompile(`dial tcp|i/o timeout|connection refused|connection reset|no such host|TLS handshake|network is unreachable|unexpected EOF|Service Unavailable|Bad Gateway|Gateway Timeout|server misbehaving`)

// goBinary compiles the go: entry c at field for platform p into the
// work dir and returns its layer entry.
func (b *builder) goBinary(ctx context.Context, field string, c spec.Content, p spec.Platform, a layer.Attrs) ([]layer.Entry, error) {
	s := b.s
	dir, modRoot, err := goPackage(s, field+".go", c.Go)
	if err != nil {
		return nil, err
	}
	vals := b.opts.Values.ForPlatform(p)
	ldflags := []string{"-buildid="}
	for k, fl := range c.LDFlags {
		x, err := s.Expand(fmt.Sprintf("%s.ldflags[%d]", field, k), fl, vals)
		if err != nil {
			return nil, err
		}
		ldflags = append(ldflags, x)
	}
	out, err := os.MkdirTemp(b.opts.WorkDir, "go-")
	if err != nil {
		return nil, fault.Op(fmt.Errorf("%s: %w", field, err))
	}
	bin := filepath.Join(out, "prog")
	rel, _ := filepath.Rel(modRoot, dir)
	args := []string{"build", "-o", bin, "-trimpath", "-mod=readonly", "-buildvcs=false", "-ldflags=" + strings.Join(ldflags, " ")}
	if len(c.BuildTags) > 0 {
		args = append(args, "-tags="+strings.Join(c.BuildTags, ","))
	}
	args = append(args, "./"+filepath.ToSlash(rel))
	tc := b.opts.GoToolchain
	if tc != "" {
		if err := goModTooNew(s, field+".go", modRoot, tc, "the pinned toolchain", "run repro lock --update with that Go (or a newer one) on PATH, or with a toolchain line naming it in go.mod"); err != nil {
			return nil, err
		}
	}
	gotc := tc
	if gotc == "" {
		gotc = "local"
	}
	env := append(append([]string{}, b.opts.GoEnv...), goPlatformEnv(p)...)
	env = append(env, "CGO_ENABLED=0", "GOFLAGS=", "GOTOOLCHAIN="+gotc, "GOENV=off", "GOWORK=off", "GO111MODULE=on", "GOEXPERIMENT=", "GOTELEMETRY=off")
	_, stderr, err := runGo(ctx, env, modRoot, args...)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return nil, fault.Op(fmt.Errorf("%s: running go build: %w", field, err))
		}
		msg := strings.TrimSpace(string(stderr))
		if msg == "" {
			msg = err.Error()
		}
		if netFailure.MatchString(msg) {
			return nil, fault.Op(fmt.Errorf("%s: go build %s for %s: %s", field, c.Go, p, msg))
		}
		where := ""
		if r, _ := filepath.Rel(s.Dir, modRoot); r != "." && r != "" {
			where = fmt.Sprintf(" (file names are relative to the module's root, %s)", filepath.ToSlash(r))
		}
		return nil, fault.Bad(s.ErrorAt(field+".go", "go build %s for %s failed%s; fix the program, its go.mod or go.sum (go mod tidy), or the pinned toolchain:\n%s", c.Go, p, where, msg))
	}
	b.opts.Log.Info("compiled", "go", c.Go, "platform", p.String(), "toolchain", gotc)
	if head, err := readHead(bin, 8); errors.Is(err, fs.ErrNotExist) || string(head) == "!<arch>\n" {
		return nil, fault.Bad(s.ErrorAt(field+".go", "%s is not a main package (go build wrote no program); name the directory of a package main", c.Go))
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return nil, fault.Op(fmt.Errorf("%s: reading the build info of %s: %w", field, c.Go, err))
	}
	if tc != "" && info.GoVersion != tc {
		return nil, fault.Op(fmt.Errorf("%s: the go command compiled %s with %s, not the pinned %s; check that GOTOOLCHAIN can fetch it (GOPROXY)", field, c.Go, info.GoVersion, tc))
	}
	if info.Path != "command-line-arguments" && info.Main.Path == "" {
		return nil, fault.Op(fmt.Errorf("%s: %s has no main module in its build info", field, c.Go))
	}
	prog := GoProgram{Path: c.Path, Package: info.Path, Main: attest.Module{Path: info.Main.Path, Version: info.Main.Version, Sum: info.Main.Sum}}
	for _, d := range info.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		prog.Deps = append(prog.Deps, attest.Module{Path: d.Path, Version: d.Version, Sum: d.Sum})
	}
	b.goProgs = append(b.goProgs, prog)
	if a.Mode == nil {
		m := uint32(0o755)
		a.Mode = &m
	}
	es, err := layer.FileEntry(bin, c.Path, a, 0o755)
	if err != nil {
		return nil, fault.Op(err)
	}
	return es, nil
}

// readHead reads the first n bytes of the file at path (fewer if it is
// shorter).
func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	k, err := io.ReadFull(f, buf)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = nil
	}
	return buf[:k], err
}

// GoProgram is a program that a go: entry compiled, as the binary's
// build info says: its path in the image, its main package, its main
// module and every dependency module (the replacement, where go.mod
// replaces one) with its go.sum hash.
type GoProgram struct {
	Path, Package string
	Main          attest.Module
	Deps          []attest.Module
}

// goDependencies are the provenance's record of the Go toolchain the
// go: entries compiled with (none when it was not pinned), and of every
// module their programs were built from: the main module at the build's
// version where the build info says (devel), and each dependency by its
// go.sum hash, as digest dirHash (Go's dirhash h1, in hex, as in-toto
// names it) and as the go.sum line writes it (annotation goSum). Each
// module is listed once, with the programs that use it.
func (b *Built) goDependencies() []attest.ResourceDescriptor {
	var deps []attest.ResourceDescriptor
	if b.GoToolchain != "" {
		deps = append(deps, attest.ResourceDescriptor{
			Name: attest.DepGoToolchain, URI: "https://go.dev/dl/#" + b.GoToolchain,
			Annotations: map[string]string{"version": b.GoToolchain},
		})
	}
	type mod struct {
		m     attest.Module
		main  bool
		progs map[string]bool
	}
	mods := map[string]*mod{}
	var order []string
	add := func(m attest.Module, main bool, prog string) {
		k := m.Path + "@" + m.Version
		x := mods[k]
		if x == nil {
			x = &mod{m: m, main: main, progs: map[string]bool{}}
			mods[k] = x
			order = append(order, k)
		}
		x.progs[prog] = true
	}
	if b.Result != nil {
		for _, plat := range b.Platforms {
			for _, p := range b.GoPrograms[plat] {
				main := p.Main
				if main.Version == "" || main.Version == "(devel)" {
					main.Version = b.Values.Version
				}
				if main.Path != "" {
					add(main, true, p.Path)
				}
				for _, d := range p.Deps {
					add(d, false, p.Path)
				}
			}
		}
	}
	for _, k := range order {
		x := mods[k]
		progs := make([]string, 0, len(x.progs))
		for p := range x.progs {
			progs = append(progs, p)
		}
		sort.Strings(progs)
		rd := attest.ResourceDescriptor{
			Name: attest.DepGoModule + x.m.Path, URI: "pkg:golang/" + x.m.Path + "@" + x.m.Version,
			Annotations: map[string]string{"version": x.m.Version, "programs": strings.Join(progs, " ")},
		}
		if x.main {
			rd.Annotations["main"] = "true"
		}
		if x.m.Sum != "" {
			rd.Annotations["goSum"] = x.m.Sum
			if h, ok := strings.CutPrefix(x.m.Sum, "h1:"); ok {
				if raw, err := base64.StdEncoding.DecodeString(h); err == nil {
					rd.Digest = map[string]string{"dirHash": hex.EncodeToString(raw)}
				}
			}
		}
		deps = append(deps, rd)
	}
	return deps
}

// goVersions gives the Go programs that go: entries compiled the build's
// version (.Version) as their main module's, where Go's build info says
// "(devel)" (a module built from its own tree, with no VCS stamp).
func (b *Built) goVersions(inv *attest.Inventory) {
	paths := map[string]bool{}
	for _, l := range b.Spec.Layers {
		for _, c := range l.Contents {
			if c.Go != "" {
				paths[strings.TrimPrefix(c.Path, "/")] = true
			}
		}
	}
	for _, img := range inv.Images {
		for i := range img.GoBinaries {
			g := &img.GoBinaries[i]
			if paths[strings.TrimPrefix(g.Path, "/")] && (g.Main.Version == "(devel)" || g.Main.Version == "") {
				g.Main.Version = b.Values.Version
			}
		}
	}
}
