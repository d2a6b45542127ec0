package testtool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI (the environment variable CI is true),
// where a missing tool is an error rather than a reason to skip.
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// PendingEnv names a directory in which .ci/run keeps one file per tool it is
// still installing in the background while the tests run (Packer 1.9.5 takes
// minutes to compile). Require waits, up to PendingWait, for a pending tool's
// file to go before it looks the tool up.
const PendingEnv = "REPRO_TOOLS_PENDING"

// PendingWait bounds the wait for a tool that .ci/run is still installing.
const PendingWait = 30 * time.Minute

// Require looks up each named tool on PATH and returns a map from name to path.
// When one is missing it fails the test if InCI, and skips it otherwise; either
// way the message names every missing tool. A tool that .ci/run is still
// installing (see PendingEnv) is waited for first.
func Require(t testing.TB, names ...string) map[string]string {
	t.Helper()
	paths := make(map[string]string, len(names))
	var missing []string
	for _, name := range names {
		waitPending(t, name)
		p, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, name)
			continue
		}
		paths[name] = p
	}
	if len(missing) > 0 {
		unavailable(t, fmt.Sprintf("%s not found on PATH", strings.Join(missing, ", ")))
		return nil
	}
	return paths
}

// waitPending waits while $REPRO_TOOLS_PENDING/name exists, up to PendingWait.
func waitPending(t testing.TB, name string) {
	t.Helper()
	dir := os.Getenv(PendingEnv)
	if dir == "" || strings.ContainsRune(name, os.PathSeparator) {
		return
	}
	marker := filepath.Join(dir, name)
	deadline := time.Now().Add(PendingWait)
	logged := false
	for {
		if _, err := os.Stat(marker); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still being installed after %v (%s exists)", name, PendingWait, marker)
		}
		if !logged {
			t.Logf("waiting for %s, which .ci/run is still installing", name)
			logged = true
		}
		time.Sleep(time.Second)
	}
}

// unavailable fails the test in CI and skips it elsewhere.
func unavailable(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s; .ci/run installs it, and CI=true makes this an error", what)
		return
	}
	t.Skipf("%s (.ci/run installs it; with CI=true this is an error)", what)
}

// maxRunRoot is the longest --runroot that podman 4.3 accepts ("the specified
// runroot is longer than 50 characters"); t.TempDir() paths are often longer.
const maxRunRoot = 50

// Podman returns the command line (program and leading arguments) that runs podman
// for this test, for use as Run(t, p[0], append(p[1:], "run", "--rm", ref)...).
// It skips or fails the test (see Require) when podman is missing.
//
// Each call gets storage of its own: --root and --tmpdir under t.TempDir(),
// --runroot in a short temporary directory, no events log, and a network config
// directory of its own, so parallel tests do not share state; a cleanup removes
// the containers, images and directories when the test ends. The environment is
// set on the command line through env(1): CONTAINERS_CONF and
// CONTAINERS_STORAGE_CONF keep their values when set, and otherwise point at
// .ci/containers.conf and .ci/storage.conf of the repository.
func Podman(t testing.TB) []string {
	t.Helper()
	tools := Require(t, "podman", "env")
	if tools == nil {
		return nil
	}
	var env []string
	for _, c := range []struct{ name, file string }{
		{"CONTAINERS_CONF", "containers.conf"},
		{"CONTAINERS_STORAGE_CONF", "storage.conf"},
	} {
		v := os.Getenv(c.name)
		if v == "" {
			v = ciFile(t, c.file)
		}
		env = append(env, c.name+"="+v)
	}

	dir := t.TempDir()
	runRoot := shortTempDir(t, "podman")
	args := []string{
		"--root", filepath.Join(dir, "root"),
		"--runroot", runRoot,
		"--tmpdir", filepath.Join(dir, "tmp"),
		"--network-config-dir", filepath.Join(dir, "net"),
		"--events-backend", "none",
	}
	cmd := slices.Concat([]string{tools["env"]}, env, []string{tools["podman"]}, args)
	// Full capacity, so that callers appending to it get arrays of their own.
	cmd = slices.Clip(cmd)

	// Registered after t.TempDir and shortTempDir, so it runs before their
	// removal: it stops what is still running and unmounts its layers.
	t.Cleanup(func() {
		reset := exec.Command(cmd[0], slices.Concat(cmd[1:], []string{"system", "reset", "--force"})...)
		if out, err := reset.CombinedOutput(); err != nil {
			t.Errorf("cleaning up podman storage: %v\n%s", err, out)
		}
	})
	return cmd
}

// ciFile returns the absolute path of name in the repository's .ci directory,
// found by walking up from the working directory (a package's directory under
// go test).
func ciFile(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("finding .ci/%s: %v", name, err)
		return ""
	}
	for {
		p := filepath.Join(dir, ".ci", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no .ci/%s in any parent of the working directory", name)
			return ""
		}
		dir = parent
	}
}

// shortTempDir makes a temporary directory with a path of at most maxRunRoot
// bytes that contains only characters valid in an image reference, removed
// when the test ends.
func shortTempDir(t testing.TB, prefix string) string {
	t.Helper()
	base := os.TempDir()
	if len(base)+len(prefix)+12 > maxRunRoot || !referenceSafe(base) {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, prefix)
	if err != nil {
		t.Fatalf("making a temporary directory: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})
	return dir
}

// pathComponent is the grammar of one path component of an image reference's
// repository name (github.com/distribution/reference); podman names an image
// read from oci:DIR after DIR, so DIR must match it.
var pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*$`)

func referenceSafe(path string) bool {
	if !filepath.IsAbs(path) {
		return false
	}
	for _, c := range strings.Split(strings.Trim(path, "/"), "/") {
		if !pathComponent.MatchString(c) {
			return false
		}
	}
	return true
}

// OCIRef returns "oci:DIR:TAG" for the OCI layout dir in a form that podman
// accepts. podman derives an image name from the layout's path and refuses one
// with upper-case letters (as test names put into t.TempDir() paths) or other
// characters not allowed in a reference; for such a path OCIRef returns a
// symbolic link to dir from a short temporary directory instead.
func OCIRef(t testing.TB, dir, tag string) string {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatalf("resolving %s: %v", dir, err)
	}
	if !referenceSafe(abs) {
		link := filepath.Join(shortTempDir(t, "oci"), "layout")
		if err := os.Symlink(abs, link); err != nil {
			t.Fatalf("linking %s: %v", abs, err)
		}
		abs = link
	}
	return "oci:" + abs + ":" + tag
}

// Run runs the command name with args and returns its standard output. When the
// command cannot start or exits non-zero, it fails the test, showing the command
// line and its output (stdout and stderr interleaved). The command is killed if
// the test ends first.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	var stdout bytes.Buffer
	combined := &lockedBuffer{}
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Stdout = io.MultiWriter(&stdout, combined)
	cmd.Stderr = combined
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("running %s: %v", commandLine(name, args), err)
		}
		t.Fatalf("%s: %v\n%s", commandLine(name, args), err, combined.String())
	}
	return stdout.String()
}

// lockedBuffer is a buffer that the goroutines copying a command's stdout and
// stderr can write to at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// commandLine renders a command for a shell, quoting where needed, so that a
// failure message can be pasted into a terminal.
func commandLine(name string, args []string) string {
	words := make([]string, 0, 1+len(args))
	for _, w := range append([]string{name}, args...) {
		if w == "" || strings.ContainsFunc(w, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r))
		}) {
			w = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		words = append(words, w)
	}
	return strings.Join(words, " ")
}
