package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// reproBin is the repro binary the tests drive, built once by TestMain
// the way the Makefile builds it.
var reproBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "repro-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	reproBin = filepath.Join(dir, "repro")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-buildid=", "-o", reproBin, "..") // the command, one directory up
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building repro: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the binary did.
type result struct {
	stdout, stderr string
	code           int
}

// invocation runs the repro binary.
type invocation struct {
	dir   string   // working directory
	env   []string // added to a minimal environment
	umask string   // run under this umask (through sh)
}

func (iv invocation) run(t testing.TB, args ...string) result {
	t.Helper()
	var cmd *exec.Cmd
	if iv.umask != "" {
		cmd = exec.Command("sh", append([]string{"-c", `umask "$0"; exec "$@"`, iv.umask, reproBin}, args...)...)
	} else {
		cmd = exec.Command(reproBin, args...)
	}
	cmd.Dir = iv.dir
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"TMPDIR=" + os.TempDir(),
	}, iv.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running repro: %v", err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// repro runs the binary in dir and fails the test unless it exits 0.
func repro(t testing.TB, dir string, args ...string) result {
	t.Helper()
	r := invocation{dir: dir}.run(t, args...)
	if r.code != 0 {
		t.Fatalf("repro %q: exit %d\n%s", args, r.code, r.stderr)
	}
	return r
}

// lastLine is the digest that build prints last on stdout.
func lastLine(s string) string {
	lines := bytes.Split(bytes.TrimSpace([]byte(s)), []byte("\n"))
	return string(lines[len(lines)-1])
}

// moduleRoot is the repository root, found from this package's directory.
func moduleRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", "..")) // go test runs in the package directory, cmd/repro/e2e
	if err != nil {
		t.Fatal(err)
	}
	return root
}
