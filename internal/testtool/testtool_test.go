package testtool

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// recorder stands in for a test to watch Require and Run fail or skip; everything
// else goes to the real test.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

func (r *recorder) Skipf(format string, args ...any) { r.skip = fmt.Sprintf(format, args...) }

func TestRequireFinds(t *testing.T) {
	got := Require(t, "sh")
	if _, err := os.Stat(got["sh"]); err != nil {
		t.Fatalf("Require(sh) = %q: %v", got["sh"], err)
	}
}

func TestRequireMissing(t *testing.T) {
	const tool = "repro-no-such-tool"
	for _, tc := range []struct {
		ci        string
		wantFatal bool
	}{
		{ci: "true", wantFatal: true},
		{ci: "", wantFatal: false},
		{ci: "false", wantFatal: false},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &recorder{TB: t}
			if got := Require(r, "sh", tool); got != nil {
				t.Errorf("Require = %v, want nil", got)
			}
			msg, other := r.skip, r.fatal
			if tc.wantFatal {
				msg, other = r.fatal, r.skip
			}
			if !strings.Contains(msg, tool) || !strings.Contains(msg, ".ci/run") {
				t.Errorf("message %q does not name %s and .ci/run", msg, tool)
			}
			if strings.Contains(msg, "sh,") || other != "" {
				t.Errorf("fatal %q, skip %q: want only the missing tool, one way", r.fatal, r.skip)
			}
		})
	}
}

func TestRun(t *testing.T) {
	if got := Run(t, "sh", "-c", "echo out; echo err >&2"); got != "out\n" {
		t.Errorf("Run = %q, want stdout only", got)
	}

	r := &recorder{TB: t}
	Run(r, "sh", "-c", "echo out; echo err >&2; exit 3")
	for _, want := range []string{"sh -c 'echo out; echo err >&2; exit 3'", "exit status 3", "out\n", "err\n"} {
		if !strings.Contains(r.fatal, want) {
			t.Errorf("failure message %q lacks %q", r.fatal, want)
		}
	}
}

func TestReferenceSafe(t *testing.T) {
	for path, want := range map[string]bool{
		"/tmp/oci123/layout":         true,
		"/tmp/a.b/c_d/e__f/g-h/i--j": true,
		"/tmp/TestPodman/001":        false,
		"/tmp/x/-a":                  false,
		"/tmp/a b":                   false,
		"relative/path":              false,
	} {
		if got := referenceSafe(path); got != want {
			t.Errorf("referenceSafe(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestOCIRef(t *testing.T) {
	dir := t.TempDir() // holds the test's name, with upper-case letters
	ref := OCIRef(t, dir, "t")
	path, ok := strings.CutPrefix(ref, "oci:")
	if !ok || !strings.HasSuffix(path, ":t") {
		t.Fatalf("OCIRef = %q, want oci:PATH:t", ref)
	}
	path = strings.TrimSuffix(path, ":t")
	if !referenceSafe(path) {
		t.Errorf("OCIRef path %q is not a valid repository name", path)
	}
	if target, err := filepath.EvalSymlinks(path); err != nil || target != dir {
		t.Errorf("OCIRef path %q resolves to %q (%v), want %q", path, target, err, dir)
	}
}

// TestPodman proves that this machine can run a container from an OCI layout and
// from a docker-archive with the setup that Podman returns.
func TestPodman(t *testing.T) {
	t.Parallel()
	tools := Require(t, "umoci", "skopeo", "busybox")
	requireStatic(t, tools["busybox"])
	podman := Podman(t)

	dir := t.TempDir()
	layout := filepath.Join(dir, "Layout")
	Run(t, "umoci", "init", "--layout", layout)
	Run(t, "umoci", "new", "--image", layout+":t")
	Run(t, "umoci", "insert", "--image", layout+":t", tools["busybox"], "/bin/busybox")
	Run(t, "umoci", "config", "--image", layout+":t", "--os", "linux", "--architecture", runtime.GOARCH,
		"--config.entrypoint", "/bin/busybox", "--config.cmd", "echo", "--config.cmd", "from-layout")

	ref := OCIRef(t, layout, "t")
	if got := Run(t, podman[0], append(podman[1:], "run", "--rm", ref)...); got != "from-layout\n" {
		t.Errorf("podman run %s printed %q", ref, got)
	}

	archive := filepath.Join(dir, "image.tar")
	Run(t, "skopeo", "copy", "--quiet", "oci:"+layout+":t", "docker-archive:"+archive+":repro-test:t")
	Run(t, podman[0], append(podman[1:], "load", "--quiet", "--input", archive)...)
	got := Run(t, podman[0], append(podman[1:], "run", "--rm", "--pull=never", "repro-test:t", "/bin/busybox", "echo", "from-archive")...)
	if got != "from-archive\n" {
		t.Errorf("podman run of the loaded image printed %q", got)
	}
}

// requireStatic stops the test unless path is a statically linked executable, as
// the one that busybox-static installs: a dynamic one cannot run in an image that
// holds nothing else.
func requireStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			unavailable(t, "a static busybox (Debian's busybox-static) is needed, but "+path+" is dynamically linked")
			return
		}
	}
}

// TestRequireWaitsForPending: a tool whose marker is in $REPRO_TOOLS_PENDING is
// looked up only after the marker goes, so a tool installed while the tests run
// is found, not reported missing.
func TestRequireWaitsForPending(t *testing.T) {
	pending := t.TempDir()
	bin := t.TempDir()
	t.Setenv(PendingEnv, pending)
	t.Setenv("PATH", bin)
	const name = "repro-test-pending-tool"
	if err := os.WriteFile(filepath.Join(pending, name), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(1500 * time.Millisecond)
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			panic(err)
		}
		if err := os.Remove(filepath.Join(pending, name)); err != nil {
			panic(err)
		}
	}()
	paths := Require(t, name)
	<-done
	if got, want := paths[name], filepath.Join(bin, name); got != want {
		t.Fatalf("Require = %q, want %q", got, want)
	}
}
