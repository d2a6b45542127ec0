package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goErrModule writes a Go module with a main package at cmd/hello whose
// go.mod has go line goLine, and a spec compiling pkg with a go: entry
// at line 8, column 13, with a lock pinning the go on PATH.
func goErrModule(t *testing.T, goLine, pkg string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":            "module example.com/hello\n\ngo " + goLine + "\n",
		"cmd/hello/main.go": "package main\n\nfunc main() {}\n",
		"repro.yaml": `version: 1
name: hello
epoch: 1700000000
layers:
  - name: app
    contents:
      - path: /app/hello
        go: ` + pkg + "\n",
		"repro.lock.json": `{"version": 1, "format": 2, "go": "` + goVersion(t) + `"}` + "\n",
	}
	writeFiles(t, dir, files)
	return dir
}

// TestE2EGoEntryErrors: a go: entry's bad input through the binary, in
// repro lock (with no lock yet) and repro build (with a lock pinning the
// go on PATH): a package that is not there, and a go.mod whose go line
// asks for a newer Go than the one that would be, or is, pinned. Each
// exits 2 at the entry's go: (repro.yaml:8:13) with what to do, and
// writes nothing. (Compile errors: TestE2EGoEntry.)
func TestE2EGoEntryErrors(t *testing.T) {
	const at = "repro.yaml:8:13: layers[0].contents[0].go: "
	for _, c := range []struct {
		name, goLine, pkg string
		cmd               []string
		want              []string
	}{
		{"missing package/lock", "1.22", "./cmd/nothere", []string{"lock"},
			[]string{"./cmd/nothere does not exist in the build context", "name the directory of a main package"}},
		{"missing package/build", "1.22", "./cmd/nothere", []string{"build", "-q", "-o", "oci:out:t"},
			[]string{"./cmd/nothere does not exist in the build context", "name the directory of a main package"}},
		{"newer go/lock", "1.99", "./cmd/hello", []string{"lock"},
			[]string{"go.mod:3 asks for go >= 1.99, newer than the go on PATH, " + goVersion(t), "put that Go (or a newer one) on PATH, or name it in a toolchain line"}},
		{"newer go/build", "1.99", "./cmd/hello", []string{"build", "-q", "-o", "oci:out:t"},
			[]string{"go.mod:3 asks for go >= 1.99, newer than the pinned toolchain, " + goVersion(t), "run repro lock --update"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := goErrModule(t, c.goLine, c.pkg)
			if c.cmd[0] == "lock" {
				os.Remove(filepath.Join(dir, "repro.lock.json"))
			}
			r := invocation{dir: dir}.run(t, c.cmd...)
			if r.code != 2 || !strings.Contains(r.stderr, at) {
				t.Fatalf("repro %s: exit %d, want 2 at %s\n%s", strings.Join(c.cmd, " "), r.code, at, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("repro %s does not say %q:\n%s", strings.Join(c.cmd, " "), w, r.stderr)
				}
			}
			for _, f := range []string{"out", "repro.lock.json"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err == nil && (f == "out" || c.cmd[0] == "lock") {
					t.Errorf("%s was written", f)
				}
			}
		})
	}
}
