package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2EHostileSpecsAndTestFiles drives the binary with specs and test
// files built to cost without end, and sources that cannot be read: each
// must be refused with exit 2 and a position, quickly.
func TestE2EHostileSpecsAndTestFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sparse := func(name string, size int64) string {
		t.Helper()
		p := write(name, "")
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		return p
	}
	big := strings.Repeat("x", 1<<20)
	specBomb := write("bomb.yaml", "version: 1\nname: bomb\nvars: {v: &big "+big+"}\nannotations:\n"+func() string {
		var b strings.Builder
		for i := 0; i < 2000; i++ {
			fmt.Fprintf(&b, "  a%d: *big\n", i)
		}
		return b.String()
	}())
	var tb strings.Builder
	tb.WriteString("schemaVersion: \"2.0.0\"\nfileContentTests:\n  - {name: a, path: /a, expectedContents: &p [")
	tb.WriteString(strings.TrimSuffix(strings.Repeat("'a.*b', ", 1000), ", ") + "]}\n")
	for i := 0; i < 4000; i++ {
		tb.WriteString("  - {name: a, path: /a, expectedContents: *p}\n")
	}
	testBomb := write("bomb-tests.yaml", tb.String())
	hugeSpec := sparse("huge.yaml", 1<<30)
	hugeTests := sparse("huge-tests.yaml", 1<<30)
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	image := filepath.Join(dir, "img")
	write("ok.yaml", "version: 1\nname: ok\nlayers: [{contents: [{path: /a, content: a}]}]\n")
	repro(t, dir, "build", "-q", "--offline", "-f", "ok.yaml", "-o", "oci:"+image+":t")

	for _, c := range []struct {
		name string
		args []string
		want string // a regular expression the stderr must match
	}{
		{"build alias bomb", []string{"build", "--offline", "-f", specBomb}, `bomb\.yaml:\d+:\d+: annotations\.\S+: the aliases \(\*name\) in this file expand to too much`},
		{"test alias bomb", []string{"test", "oci:" + image + ":t", "-c", testBomb}, `bomb-tests\.yaml:\d+:\d+: fileContentTests\[\d+\]\.expectedContents\[\d+\]: the aliases \(\*name\) in this file expand to too much`},
		{"build 1 GiB spec", []string{"build", "--offline", "-f", hugeSpec}, `huge\.yaml: file too large: 1073741824 bytes, more than the 268435456 \(256 MiB\) that repro reads`},
		{"test 1 GiB test file", []string{"test", "oci:" + image + ":t", "-c", hugeTests}, `huge-tests\.yaml: file too large: 1073741824 bytes, more than the 16777216 \(16 MiB\)`},
		{"build FIFO spec", []string{"build", "--offline", "-f", fifo}, `fifo\.yaml: not a regular file \(it is a named pipe \(FIFO\)\)`},
		{"test FIFO test file", []string{"test", "oci:" + image + ":t", "-c", fifo}, `fifo\.yaml: not a regular file`},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			r := invocation{dir: dir}.run(t, c.args...)
			el := time.Since(start)
			if r.code != 2 || !regexp.MustCompile(c.want).MatchString(r.stderr) {
				t.Errorf("exit %d, want 2 and stderr matching %s:\n%s", r.code, c.want, r.stderr)
			}
			t.Logf("refused in %v", el)
		})
	}
}

// TestE2EBadSources checks that every source that cannot be used is
// reported in one run, each at its line, before any base is pulled: a
// missing file, a symlink loop, a FIFO, a socket, a device and a link out
// of the context.
func TestE2EBadSources(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, l := range [][2]string{{"loop-a", "loop-b"}, {"loop-b", "loop-a"}, {"zero", "/dev/zero"}} {
		if err := os.Symlink(l[1], filepath.Join(dir, l[0])); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	os.WriteFile(filepath.Join(dir, "ok"), []byte("ok"), 0o644)
	// The base is on a port where nothing listens: if the build got as
	// far as pulling it, the run would be exit 3.
	spec := `version: 1
name: sources
base: 127.0.0.1:9/none/base@sha256:0000000000000000000000000000000000000000000000000000000000000000
layers:
  - name: a
    contents:
      - {path: /ok, source: ok}
      - {path: /missing, source: missing}
      - {path: /loop, source: loop-a}
  - name: b
    contents:
      - {path: /fifo, source: fifo}
      - {path: /sock, source: sock}
      - {path: /zero, source: zero}
      - {path: /also-missing, source: dir/also-missing}
`
	os.WriteFile(filepath.Join(dir, "repro.yaml"), []byte(spec), 0o644)
	start := time.Now()
	r := invocation{dir: dir}.run(t, "build", "--offline", "--allow-unpinned")
	el := time.Since(start)
	if r.code != 2 {
		t.Fatalf("exit %d, want 2\n%s", r.code, r.stderr)
	}
	for _, want := range []string{
		`repro.yaml:8:34: layers[0].contents[1].source: "missing" does not exist in the build context`,
		`repro.yaml:9:31: layers[0].contents[2].source: "loop-a" cannot be resolved in the build context`,
		`repro.yaml:12:31: layers[1].contents[0].source: "fifo" is a named pipe (FIFO)`,
		`repro.yaml:13:31: layers[1].contents[1].source: "sock" is a socket`,
		`repro.yaml:14:31: layers[1].contents[2].source: "zero" resolves through a symlink to /dev/zero, outside the build context`,
		`repro.yaml:15:39: layers[1].contents[3].source: "dir/also-missing" does not exist in the build context`,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	t.Logf("refused in %v", el)
}
