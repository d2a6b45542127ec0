package imagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/reprobuild/repro/pkg/fault"
)

// Podman runs commandTests in containers. The command line comes from the
// caller (cmd/repro takes it from flags and the environment): this package
// reads neither.
type Podman struct {
	// Command is the program and its global arguments, before the
	// subcommand: ["podman"], or ["env", "CONTAINERS_CONF=…", "podman",
	// "--root", "…"].
	Command []string
	// Env is podman's environment; nil passes repro's own on
	// (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, XDG_RUNTIME_DIR …).
	Env []string
	// TempDir is where the image is staged as an OCI layout for podman to
	// pull. podman names the image after the layout's path, so the path
	// must be lower case (and a valid image name).
	TempDir string
	// Platform is what podman runs, like linux/amd64: images of other
	// platforms get their commandTests skipped.
	Platform string
}

// session is the image, pulled into podman's storage once for every
// command test of a run.
type session struct {
	p       *Podman
	log     *slog.Logger
	dir     string   // the staged layout
	image   string   // podman's image ID
	remove  []string // images to remove at the end
	untag   string   // the name the pull gave an image that was there before
	cidfile string
}

// namePart is the grammar of one component of an image name, which podman
// derives from an oci: layout's path.
var namePart = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$`)

func nameSafe(p string) bool {
	for _, c := range strings.Split(strings.Trim(p, "/"), "/") {
		if !namePart.MatchString(c) {
			return false
		}
	}
	return filepath.IsAbs(p)
}

// ErrNoPodman: a test needs podman and Podman.Command is empty.
var ErrNoPodman = errors.New("no podman command line")

// start stages img as an OCI layout and pulls it into podman's storage.
func (p *Podman) start(ctx context.Context, img v1.Image, cfg *v1.ConfigFile, log *slog.Logger) (*session, error) {
	if len(p.Command) == 0 {
		return nil, fault.Bad(ErrNoPodman)
	}
	tmp := p.TempDir
	if tmp == "" {
		return nil, fault.Bad(errors.New("no temporary directory for podman's copy of the image"))
	}
	dir, err := os.MkdirTemp(tmp, "repro-test-")
	if err != nil {
		return nil, fault.Op(err)
	}
	s := &session{p: p, log: log, dir: dir, cidfile: filepath.Join(dir, "cid")}
	if abs, err := filepath.Abs(dir); err != nil || !nameSafe(abs) {
		s.close()
		return nil, fault.Bad(fmt.Errorf("podman names the image after its path, and refuses %s (upper case or other characters not allowed in an image name); set TMPDIR to a lower-case directory", dir))
	}
	log.Debug("staging the image for podman", "dir", dir)
	lp, err := layout.Write(filepath.Join(dir, "image"), empty.Index)
	if err == nil {
		err = lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "test"}))
	}
	if err != nil {
		s.close()
		return nil, fault.Op(fmt.Errorf("staging the image for podman: %w", err))
	}
	cfgDigest, err := img.ConfigName()
	if err != nil {
		s.close()
		return nil, fault.Op(err)
	}
	// An image already in podman's storage stays there after the run;
	// only the name the pull gives it goes.
	existed := false
	if _, _, code, err := s.podman(ctx, "image", "exists", cfgDigest.Hex); err == nil && code == 0 {
		log.Debug("the image is in podman's storage already", "id", cfgDigest.Hex)
		existed = true
	}
	staged := filepath.Join(dir, "image")
	out, errOut, code, err := s.podman(ctx, "pull", "-q", "oci:"+staged+":test")
	if existed {
		s.untag = "localhost" + staged
	} else {
		s.remove = append(s.remove, cfgDigest.Hex)
	}
	if err != nil || code != 0 {
		s.close()
		if err == nil {
			err = fmt.Errorf("exit %d: %s", code, strings.TrimSpace(errOut))
		}
		return nil, fault.Op(fmt.Errorf("podman pull: %w", err))
	}
	lines := strings.Fields(out)
	if len(lines) == 0 {
		s.close()
		return nil, fault.Op(fmt.Errorf("podman pull printed no image ID"))
	}
	s.image = lines[len(lines)-1]
	return s, nil
}

func (s *session) close() {
	ctx := context.Background()
	if s.untag != "" {
		s.podman(ctx, "untag", s.image, s.untag)
	}
	for i := len(s.remove) - 1; i >= 0; i-- {
		if _, e, code, err := s.podman(ctx, "rmi", "-f", s.remove[i]); err != nil || code != 0 {
			s.log.Warn("removing a test image from podman's storage", "image", s.remove[i], "err", err, "stderr", strings.TrimSpace(e))
		}
	}
	os.RemoveAll(s.dir)
}

// podman runs podman with args and returns its stdout, stderr and exit
// code; err is for a podman that did not run at all.
func (s *session) podman(ctx context.Context, args ...string) (string, string, int, error) {
	cmd := exec.CommandContext(ctx, s.p.Command[0], append(append([]string{}, s.p.Command[1:]...), args...)...)
	cmd.Env = s.p.Env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return stdout.String(), stderr.String(), exit.ExitCode(), nil
	}
	if err != nil {
		return "", "", -1, fmt.Errorf("running %s: %w", s.p.Command[0], err)
	}
	return stdout.String(), stderr.String(), 0, nil
}

// podmanFailed reports whether a podman run's exit code and stderr are
// podman's own failure (125), or a command it could not start (126, 127,
// with podman's "Error: " line), rather than the command's exit code.
func podmanFailed(code int, stderr string) bool {
	if code == 125 {
		return true
	}
	if code == 126 || code == 127 {
		for _, l := range strings.Split(stderr, "\n") {
			if strings.HasPrefix(l, "Error: ") {
				return true
			}
		}
	}
	return false
}

type output struct {
	stdout, stderr string
	code           int
}

// runArgs are the podman run arguments every container of a test takes:
// no entrypoint (the test's command is the whole command line), the
// environment and the file's containerRunOptions.
func runArgs(f *File, env []string) []string {
	args := []string{"--entrypoint", ""}
	o := f.ContainerRunOptions
	if o.User != "" {
		args = append(args, "--user", o.User)
	}
	if o.Privileged {
		args = append(args, "--privileged")
	}
	if o.AllocateTty {
		args = append(args, "--tty")
	}
	for _, name := range o.EnvVars {
		args = append(args, "--env", name) // podman passes its own value on
	}
	if o.EnvFile != "" {
		args = append(args, "--env-file", o.EnvFile)
	}
	for _, c := range o.Capabilities {
		args = append(args, "--cap-add", c)
	}
	for _, m := range o.BindMounts {
		args = append(args, "--volume", m)
	}
	for _, e := range env {
		args = append(args, "--env", e)
	}
	return args
}

// run runs one command test: its setup commands, each committed into the
// image the next one runs in (as container-structure-test's docker driver
// does), then its command. Teardown commands are not run: the test's
// containers and images are removed after it, as in that driver.
func (s *session) run(ctx context.Context, t *CommandTest, f *File, env map[string]string) (*output, error) {
	var vars []string
	for _, g := range f.GlobalEnvVars {
		vars = append(vars, g.Key+"="+env[g.Key])
	}
	testEnv := map[string]string{}
	for k, v := range env {
		testEnv[k] = v
	}
	for _, e := range t.EnvVars {
		v := expand(e.Value, testEnv)
		testEnv[e.Key] = v
		vars = append(vars, e.Key+"="+v)
	}
	image := s.image
	for i, c := range t.Setup {
		os.Remove(s.cidfile)
		args := append([]string{"run", "--cidfile", s.cidfile}, runArgs(f, vars)...)
		args = append(append(args, image), c...)
		_, errOut, code, err := s.podman(ctx, args...)
		if err != nil {
			return nil, err
		}
		raw, _ := os.ReadFile(s.cidfile)
		cid := strings.TrimSpace(string(raw))
		if podmanFailed(code, errOut) || cid == "" {
			if cid != "" {
				s.podman(ctx, "rm", "-f", cid)
			}
			return nil, fmt.Errorf("setup command %d (%q) did not run: %s", i+1, c, strings.TrimSpace(errOut))
		}
		out, errOut, code, err := s.podman(ctx, "commit", "-q", cid)
		s.podman(ctx, "rm", "-f", cid)
		if err != nil {
			return nil, err
		}
		if code != 0 {
			return nil, fmt.Errorf("committing setup command %d (%q): %s", i+1, c, strings.TrimSpace(errOut))
		}
		image = strings.TrimSpace(out)
		s.remove = append(s.remove, image)
	}
	full := []string{expand(t.Command, env)}
	for _, a := range t.Args {
		full = append(full, expand(a, env))
	}
	args := append([]string{"run", "--rm"}, runArgs(f, vars)...)
	args = append(append(args, image), full...)
	s.log.Debug("command test", "name", t.Name, "command", full)
	stdout, stderr, code, err := s.podman(ctx, args...)
	if err != nil {
		return nil, err
	}
	if podmanFailed(code, stderr) {
		return nil, fmt.Errorf("podman could not run %q (exit %d): %s", full, code, strings.TrimSpace(stderr))
	}
	return &output{stdout: stdout, stderr: stderr, code: code}, nil
}
