package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// goRepo is a git repository holding a Go module (example.com/hello,
// with one dependency that the module cache already holds: go-cmp, which
// repro itself uses) and a spec compiling its main package with a go:
// entry, locked and committed.
func goRepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "origin")
	sum := ""
	raw, err := os.ReadFile(filepath.Join(moduleRoot(t), "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "github.com/google/go-cmp v0.7.0 ") || strings.HasPrefix(l, "github.com/google/go-cmp v0.7.0/") {
			sum += l + "\n"
		}
	}
	files := map[string]string{
		"go.mod": "module example.com/hello\n\ngo 1.22\n\nrequire github.com/google/go-cmp v0.7.0\n",
		"go.sum": sum,
		"cmd/hello/main.go": `package main

import (
	"fmt"

	"github.com/google/go-cmp/cmp"
)

var version = "dev"

func main() { fmt.Println("hello", version, cmp.Equal(1, 1)) }
`,
		"repro.yaml": `version: 1
name: hello
epoch: git
layers:
  - name: app
    contents:
      - path: /app/hello
        go: ./cmd/hello
        ldflags: [-s, "-X main.version={{.Version}}"]
config:
  entrypoint: [/app/hello]
`,
	}
	writeFiles(t, dir, files)
	git(t, dir, "init", "-q", "-b", "main")
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "hello")
	// repro lock pins the go on PATH.
	r := invocation{dir: dir}.run(t, "build", "-q", "-f", "repro.yaml", "-o", "oci:"+filepath.Join(t.TempDir(), "x"))
	if r.code != 2 || !strings.Contains(r.stderr, "repro.yaml:8:13: layers[0].contents[0].go: compiles Go, and the lock pins no Go toolchain") || !strings.Contains(r.stderr, "repro build: run repro lock -f repro.yaml, or pass --allow-unpinned") {
		t.Fatalf("a build with no toolchain pin: exit %d\n%s", r.code, r.stderr)
	}
	r = repro(t, dir, "lock", "-f", "repro.yaml")
	if !strings.Contains(r.stdout, "added   go toolchain: "+goVersion(t)) {
		t.Errorf("repro lock says %q; want it to pin %s", r.stdout, goVersion(t))
	}
	var lf struct{ Go string }
	raw, err = os.ReadFile(filepath.Join(dir, "repro.lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &lf); err != nil || lf.Go != goVersion(t) {
		t.Fatalf("the lock pins Go %q (%v), want %s:\n%s", lf.Go, err, goVersion(t), raw)
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "lock")
	return dir
}

func goClone(t *testing.T, origin, to string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	git(t, filepath.Dir(to), "clone", "-q", origin, to)
	return to
}

func goEnvOf(t *testing.T, key string) string {
	t.Helper()
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// goLayerFile is the file at path (no leading /) in the last layer of the
// image tagged tag in layout.
func goLayerFile(t *testing.T, layout, tag, path string) []byte {
	t.Helper()
	d := e2eTagged(t, layout, tag)
	var m ocispec.Manifest
	e2eUnmarshal(t, e2eBlob(t, layout, d.Digest.String()), &m)
	l := m.Layers[len(m.Layers)-1]
	zr, err := gzip.NewReader(bytes.NewReader(e2eBlob(t, layout, l.Digest.String())))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s is not in the layer: %v", path, err)
		}
		if h.Name == path {
			if h.Mode != 0o755 {
				t.Errorf("%s has mode %o, want 0755", path, h.Mode)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

// TestE2EGoEntry: a go: entry through the binary. Two clones at different
// paths, one with another HOME, GOCACHE and umask and a hostile Go
// environment (GOFLAGS, GOAMD64, CGO_ENABLED, GOTOOLCHAIN), give the same
// digest; go version -m of the binary shows -trimpath=true, CGO_ENABLED=0
// and the pinned toolchain; a third, fresh clone (no build step) passes
// repro verify --against the first image; a compile error exits 2 at the
// entry's line with the compiler's message.
func TestE2EGoEntry(t *testing.T) {
	origin := goRepo(t)
	tmp := t.TempDir()
	a := goClone(t, origin, filepath.Join(tmp, "a", "hello"))
	b := goClone(t, origin, filepath.Join(tmp, "elsewhere", "deeper", "b"))
	outA, outB := filepath.Join(tmp, "outA"), filepath.Join(tmp, "outB")

	ra := invocation{dir: a, umask: "022"}.run(t, "build", "-q", "-f", "repro.yaml", "-o", "oci:"+outA+":v")
	if ra.code != 0 {
		t.Fatalf("build in %s: exit %d\n%s", a, ra.code, ra.stderr)
	}
	home := filepath.Join(tmp, "home")
	env := []string{"HOME=" + home, "GOCACHE=" + filepath.Join(tmp, "gocache"), "GOMODCACHE=" + goEnvOf(t, "GOMODCACHE"),
		"GOFLAGS=-race -tags=evil -ldflags=-X=main.version=evil", "GOAMD64=v3", "CGO_ENABLED=1", "GOTOOLCHAIN=local", "GOEXPERIMENT=", "GOPROXY=off"}
	rb := invocation{dir: b, umask: "077", env: env}.run(t, "build", "-q", "-f", "repro.yaml", "-o", "oci:"+outB+":v")
	if rb.code != 0 {
		t.Fatalf("build in %s: exit %d\n%s", b, rb.code, rb.stderr)
	}
	if da, db := lastLine(ra.stdout), lastLine(rb.stdout); da != db {
		t.Errorf("two clones give %s and %s", da, db)
	}
	if _, err := os.Stat(filepath.Join(tmp, "gocache")); err != nil {
		t.Errorf("the second build did not use its GOCACHE: %v", err)
	}

	bin := filepath.Join(tmp, "hello")
	if err := os.WriteFile(bin, goLayerFile(t, outA, "v", "app/hello"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	for _, want := range []string{bin + ": " + goVersion(t) + "\n", "\tpath\texample.com/hello/cmd/hello\n", "\tmod\texample.com/hello\t(devel)",
		"\tdep\tgithub.com/google/go-cmp\tv0.7.0\th1:", "\tbuild\t-trimpath=true\n", "\tbuild\tCGO_ENABLED=0\n", "\tbuild\tGOAMD64=v1\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("go version -m lacks %q:\n%s", want, out)
		}
	}
	if info := strings.TrimPrefix(string(out), bin); strings.Contains(info, "vcs.") || strings.Contains(info, "evil") || strings.Contains(info, tmp) || strings.Contains(info, home) {
		t.Errorf("go version -m shows host state:\n%s", out)
	}
	if got, err := exec.Command(bin).Output(); err == nil && !strings.HasPrefix(string(got), "hello "+git(t, a, "describe", "--tags", "--always", "--abbrev=12")) {
		t.Errorf("the program says %q; want the version that -X main.version={{.Version}} gives", got)
	}

	// A fresh clone, with no build step, verifies the published image.
	c := goClone(t, origin, filepath.Join(tmp, "third"))
	rv := invocation{dir: c}.run(t, "verify", "-f", "repro.yaml", "--against", "oci:"+outA+":v")
	if rv.code != 0 {
		t.Errorf("verify from a fresh clone: exit %d\n%s\n%s", rv.code, rv.stdout, rv.stderr)
	}

	// A compile error is bad input at the entry's line.
	main := filepath.Join(b, "cmd", "hello", "main.go")
	if err := os.WriteFile(main, []byte("package main\n\nfunc main() { undefinedThing() }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	re := invocation{dir: b, env: env}.run(t, "build", "-q", "-f", "repro.yaml", "-o", "oci:"+outB+":bad")
	if re.code != 2 || !strings.Contains(re.stderr, "repro.yaml:8:13: layers[0].contents[0].go: go build ./cmd/hello for linux/amd64 failed") || !strings.Contains(re.stderr, "undefined: undefinedThing") {
		t.Errorf("a compile error: exit %d\n%s", re.code, re.stderr)
	}
}

// goOtherToolchain fetches another Go release than the one on PATH the
// way users get one, through the module proxy (GOTOOLCHAIN=goX go
// version; it lands in the module cache), and returns its name and the
// directory holding its go command.
func goOtherToolchain(t *testing.T) (name, bin string) {
	t.Helper()
	name = "go1.26.7"
	if goVersion(t) == name {
		name = "go1.26.6"
	}
	cmd := exec.Command("go", "env", "GOROOT")
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN="+name, "GOFLAGS=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fetching %s through the module proxy (GOTOOLCHAIN=%s go env GOROOT): %v\n%s", name, name, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return name, filepath.Join(lines[len(lines)-1], "bin")
}

// TestE2EGoToolchain: the toolchain is an input. With another go first
// on PATH, the pinned build gives the digest the system go gives (the go
// command switches to the pin); with the pin changed to that other
// release, the digest follows the pin, whichever go is on PATH, and the
// binary's build info names it.
func TestE2EGoToolchain(t *testing.T) {
	other, otherBin := goOtherToolchain(t)
	dir := goRepo(t)
	system := goVersion(t)
	otherPath := []string{"PATH=" + otherBin + string(os.PathListSeparator) + os.Getenv("PATH")}
	build := func(env []string, tag string) string {
		t.Helper()
		r := invocation{dir: dir, env: env}.run(t, "build", "-q", "-f", "repro.yaml", "-o", "oci:"+filepath.Join(dir, "out")+":"+tag)
		if r.code != 0 {
			t.Fatalf("build (%v): exit %d\n%s", env, r.code, r.stderr)
		}
		return lastLine(r.stdout)
	}
	goOf := func(tag string) string {
		t.Helper()
		bin := filepath.Join(t.TempDir(), "hello")
		if err := os.WriteFile(bin, goLayerFile(t, filepath.Join(dir, "out"), tag, "app/hello"), 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("go", "version", bin).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(strings.TrimPrefix(string(out), bin+":"))
	}
	pinned := build(nil, "system")
	if got := build(otherPath, "other-on-path"); got != pinned {
		t.Errorf("pinned %s: %s with the system go, %s with %s first on PATH", system, pinned, got, other)
	}
	if g := goOf("other-on-path"); g != system {
		t.Errorf("with %s first on PATH and %s pinned, the binary says %s", other, system, g)
	}

	lockFile := filepath.Join(dir, "repro.lock.json")
	raw, err := os.ReadFile(lockFile)
	if err != nil {
		t.Fatal(err)
	}
	moved := strings.Replace(string(raw), `"go": "`+system+`"`, `"go": "`+other+`"`, 1)
	if moved == string(raw) {
		t.Fatalf("the lock does not pin %s:\n%s", system, raw)
	}
	if err := os.WriteFile(lockFile, []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	repinned := build(nil, "repinned")
	if repinned == pinned {
		t.Errorf("pinned %s and %s give the same digest %s", system, other, pinned)
	}
	if g := goOf("repinned"); g != other {
		t.Errorf("pinned %s, the binary says %s", other, g)
	}
	if got := build(otherPath, "repinned-other"); got != repinned {
		t.Errorf("pinned %s: %s with the system go, %s with it first on PATH", other, repinned, got)
	}
}

// TestE2EGoContext: a spec below the module's root (deploy/img/repro.yaml)
// builds the module's main package with context: ../.., the way
// specs/repro builds repro. Without context: the go: entry is refused
// (exit 2) with the fix; with it, the build, its --check rebuild from a
// perturbed copy of the context, and repro verify from a fresh clone all
// find the spec inside the context, and the lock stays beside the spec.
func TestE2EGoContext(t *testing.T) {
	origin := goRepo(t)
	spec := filepath.Join(origin, "deploy", "img", "repro.yaml")
	if err := os.MkdirAll(filepath.Dir(spec), 0o755); err != nil {
		t.Fatal(err)
	}
	body := `name: hello
epoch: git
layers:
  - name: app
    contents:
      - path: /app/hello
        go: ./cmd/hello
        ldflags: ["-X main.version={{.Version}}"]
      - path: /app/go.mod
        source: go.mod
        mode: "0755"
      - path: /app/hello-private
        go: ./cmd/hello
        mode: "0700"
config:
  entrypoint: [/app/hello]
`
	noSource := strings.Replace(body, "      - path: /app/go.mod\n        source: go.mod\n        mode: \"0755\"\n", "", 1)
	if err := os.WriteFile(spec, []byte("version: 1\n"+noSource), 0o644); err != nil {
		t.Fatal(err)
	}
	r := invocation{dir: origin}.run(t, "build", "-q", "--allow-unpinned", "-f", "deploy/img/repro.yaml", "-o", "oci:"+filepath.Join(t.TempDir(), "x"))
	if r.code != 2 || !strings.Contains(r.stderr, "deploy/img/repro.yaml:8:") || !strings.Contains(r.stderr, "./cmd/hello does not exist in the build context") || !strings.Contains(r.stderr, "set context: to the parent directory") {
		t.Fatalf("a go: entry above the spec's directory without context: exit %d\n%s", r.code, r.stderr)
	}
	if err := os.WriteFile(spec, []byte("version: 1\ncontext: ../..\n"+body), 0o644); err != nil {
		t.Fatal(err)
	}
	if r = repro(t, origin, "lock", "-f", "deploy/img/repro.yaml"); r.code != 0 {
		t.Fatalf("repro lock: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(origin, "deploy", "img", "repro.lock.json")); err != nil {
		t.Fatalf("the lock is not beside the spec: %v", err)
	}
	git(t, origin, "add", "-A")
	git(t, origin, "commit", "-q", "-m", "deploy")

	tmp := t.TempDir()
	a := goClone(t, origin, filepath.Join(tmp, "a"))
	out := filepath.Join(tmp, "out")
	ra := invocation{dir: a}.run(t, "build", "--check", "--locked", "-q", "-f", "deploy/img/repro.yaml", "-o", "oci:"+out+":v")
	if ra.code != 0 {
		t.Fatalf("build --check: exit %d\n%s", ra.code, ra.stderr)
	}
	if got := string(goLayerFile(t, out, "v", "app/go.mod")); !strings.HasPrefix(got, "module example.com/hello") {
		t.Errorf("/app/go.mod (source: go.mod, relative to the context) holds %q", got)
	}
	// go: entries are 0755 unless the entry gives a mode.
	var m ocispec.Manifest
	e2eUnmarshal(t, e2eBlob(t, out, e2eTagged(t, out, "v").Digest.String()), &m)
	files := map[string]*tar.Header{}
	reproImageHeaders(t, e2eBlob(t, out, m.Layers[len(m.Layers)-1].Digest.String()), files)
	for name, mode := range map[string]int64{"app/hello": 0o755, "app/hello-private": 0o700} {
		if h := files[name]; h == nil || h.Mode != mode {
			t.Errorf("/%s: %+v, want mode %o", name, h, mode)
		}
	}
	c := goClone(t, origin, filepath.Join(tmp, "fresh"))
	rv := invocation{dir: filepath.Join(c, "deploy")}.run(t, "verify", "-f", "img/repro.yaml", "--against", "oci:"+out+":v")
	if rv.code != 0 {
		t.Errorf("verify from a fresh clone: exit %d\n%s\n%s", rv.code, rv.stdout, rv.stderr)
	}
}
