package build

import (
	"context"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reprobuild/repro/pkg/attest"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/lock"
	"github.com/reprobuild/repro/pkg/spec"
)

// TestGoEnviron: what shapes the binary is dropped, where the caches and
// proxies are is kept.
func TestGoEnviron(t *testing.T) {
	in := []string{"PATH=/bin", "HOME=/h", "GOFLAGS=-race", "GOOS=darwin", "GOARCH=386", "GOARM=5", "GOAMD64=v3",
		"CGO_ENABLED=1", "CGO_CFLAGS=-O3", "GOEXPERIMENT=loopvar", "GOTOOLCHAIN=go1.20", "GOROOT=/x", "GOENV=/e", "GOWORK=/w",
		"GOCACHE=/c", "GOMODCACHE=/m", "GOPROXY=https://p", "GONOSUMDB=x", "https_proxy=http://q", "SSL_CERT_FILE=/ca", "TERM=xterm"}
	want := []string{"PATH=/bin", "HOME=/h", "GOCACHE=/c", "GOMODCACHE=/m", "GOPROXY=https://p", "GONOSUMDB=x", "https_proxy=http://q", "SSL_CERT_FILE=/ca"}
	if d := cmp.Diff(want, GoEnviron(in)); d != "" {
		t.Errorf("GoEnviron (-want +got):\n%s", d)
	}
}

func TestGoPlatformEnv(t *testing.T) {
	for in, want := range map[string]string{
		"linux/amd64":    "GOOS=linux GOARCH=amd64",
		"linux/amd64/v3": "GOOS=linux GOARCH=amd64 GOAMD64=v3",
		"linux/arm/v6":   "GOOS=linux GOARCH=arm GOARM=6",
		"linux/arm/v7":   "GOOS=linux GOARCH=arm GOARM=7",
		"linux/arm64":    "GOOS=linux GOARCH=arm64",
		"linux/arm64/v8": "GOOS=linux GOARCH=arm64",
	} {
		p, err := spec.ParsePlatform(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(goPlatformEnv(p), " "); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// goModule is a module with a main package at cmd/server (main.go the
// given source) and a library package lib.
func goModule(main string) map[string]string {
	return map[string]string{
		"go.mod":             "module example.com/srv\n\ngo 1.22\n",
		"cmd/server/main.go": main,
		"lib/lib.go":         "package lib\n",
	}
}

const goSpec = "version: 1\nname: srv\nlayers:\n  - name: app\n    contents:\n      - path: /app/server\n        go: %s\n        ldflags: [\"-X main.version={{.Version}}\"]\n"

func goTestEnv(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("go entries need the go command on PATH: %v", err)
	}
	return GoEnviron(os.Environ())
}

func runGoBuild(t *testing.T, yaml string, files map[string]string, tc string) (*Result, Options, error) {
	t.Helper()
	s := setup(t, yaml, files)
	o := opts(t, s)
	o.GoEnv, o.GoToolchain = goTestEnv(t), tc
	res, err := Build(context.Background(), s, o)
	return res, o, err
}

// TestGoEntry compiles a main package: the binary is in the layer with
// mode 0755, its build info says -trimpath, CGO_ENABLED=0, the pinned
// toolchain, the ldflags (expanded) and no VCS stamp; twice gives the same
// digest.
func TestGoEntry(t *testing.T) {
	src := "package main\n\nvar version = \"dev\"\n\nfunc main() { println(version) }\n"
	yaml := strings.Replace(goSpec, "%s", "./cmd/server", 1)
	res, o, err := runGoBuild(t, yaml, goModule(src), runtime.Version())
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(o.WorkDir)
	if err != nil {
		t.Fatal(err)
	}
	var bin string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "go-") {
			bin = filepath.Join(o.WorkDir, e.Name(), "prog")
		}
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	for k, v := range map[string]string{"-trimpath": "true", "CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": "amd64"} {
		if settings[k] != v {
			t.Errorf("build info %s = %q, want %q (all: %v)", k, settings[k], v, settings)
		}
	}
	if _, ok := settings["vcs.revision"]; ok {
		t.Errorf("build info has a VCS stamp: %v", settings)
	}
	// -trimpath keeps -ldflags out of the build info: run the program.
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		out, err := exec.Command(bin).CombinedOutput()
		if err != nil || string(out) != "1.2.3\n" {
			t.Errorf("the program says %q, %v; want the version from -X main.version={{.Version}}", out, err)
		}
	}
	if info.GoVersion != runtime.Version() || info.Main.Path != "example.com/srv" {
		t.Errorf("build info: go %s, main %s", info.GoVersion, info.Main.Path)
	}
	res2, _, err := runGoBuild(t, yaml, goModule(src), runtime.Version())
	if err != nil {
		t.Fatal(err)
	}
	if res.Descriptor.Digest != res2.Descriptor.Digest {
		t.Errorf("two builds in two directories: %s and %s", res.Descriptor.Digest, res2.Descriptor.Digest)
	}
}

// TestGoEntryBadInput: a compile error, a missing package, a library
// package, a package outside any module of the context, and a go.mod
// that wants a newer Go than the pin are bad input at the entry's go:
// line, with the go command's message.
func TestGoEntryBadInput(t *testing.T) {
	good := "package main\n\nfunc main() {}\n"
	for _, c := range []struct {
		name, pkg string
		files     map[string]string
		want      string
	}{
		{"compile error", "./cmd/server", goModule("package main\n\nfunc main() { undefined() }\n"), "undefined: undefined"},
		{"missing package", "./cmd/nothere", goModule(good), "does not exist in the build context"},
		{"library", "./lib", goModule(good), "is not a main package"},
		{"no module", "./cmd/server", map[string]string{"cmd/server/main.go": good}, "no go.mod"},
		{"missing go.sum", "./cmd/server", map[string]string{
			"go.mod":             "module example.com/srv\n\ngo 1.22\n\nrequire golang.org/x/text v0.3.0\n",
			"cmd/server/main.go": "package main\n\nimport _ \"golang.org/x/text/language\"\n\nfunc main() {}\n"}, "missing go.sum entry"},
		{"newer go", "./cmd/server", map[string]string{"go.mod": "module example.com/srv\n\ngo 1.99\n", "cmd/server/main.go": good}, "go.mod:3 asks for go >= 1.99, newer than the pinned toolchain"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := runGoBuild(t, strings.Replace(goSpec, "%s", c.pkg, 1), c.files, runtime.Version())
			if fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "repro.yaml:7:13: layers[0].contents[0].go: ") {
				t.Errorf("got %v (%v), want bad input at 7:13 saying %q", err, fault.KindOf(err), c.want)
			}
		})
	}
}

// TestGoToolchainPin: the request's toolchain, else the lock's; none is
// refused as ErrNoToolchain and ErrUnpinned unless AllowUnpinned.
func TestGoToolchainPin(t *testing.T) {
	s := setup(t, strings.Replace(goSpec, "%s", "./cmd/server", 1), nil)
	lf := &lock.File{Go: "go1.26.1"}
	for _, c := range []struct {
		req  Request
		lf   *lock.File
		want string
	}{
		{Request{}, lf, "go1.26.1"},
		{Request{GoToolchain: "go1.25.3"}, lf, "go1.25.3"},
		{Request{AllowUnpinned: true}, nil, ""},
	} {
		got, err := goToolchain(s, c.lf, c.req, slog.New(slog.DiscardHandler))
		if err != nil || got != c.want {
			t.Errorf("%+v: %q, %v; want %q", c.req, got, err, c.want)
		}
	}
	_, err := goToolchain(s, nil, Request{File: s.File}, nil)
	var needsLock *NeedsLockError
	if !errors.Is(err, ErrNoToolchain) || !errors.Is(err, ErrUnpinned) || fault.KindOf(err) != fault.BadInput || !errors.As(err, &needsLock) || needsLock.Spec != s.File || strings.Contains(err.Error(), "repro lock") {
		t.Errorf("no pin: %v", err)
	}
	if _, err := goToolchain(s, &lock.File{Go: "1.26"}, Request{File: s.File}, nil); fault.KindOf(err) != fault.BadInput {
		t.Errorf("a bad pin: %v", err)
	}
}

// TestGoEntrySBOM: the SBOM of a build lists the program's main module
// with the build's .Version where Go's build info says (devel).
func TestGoEntrySBOM(t *testing.T) {
	s := setup(t, strings.Replace(goSpec, "%s", "./cmd/server", 1), goModule("package main\n\nvar version string\n\nfunc main() { println(version) }\n"))
	o := opts(t, s)
	o.GoEnv, o.GoToolchain = goTestEnv(t), runtime.Version()
	res, err := Build(context.Background(), s, o)
	if err != nil {
		t.Fatal(err)
	}
	b := &Built{Result: res, Spec: s, Values: o.Values, GoToolchain: o.GoToolchain, workDir: o.WorkDir}
	doc, err := b.SBOM(context.Background(), attest.SPDXJSON, "test")
	if err != nil {
		t.Fatal(err)
	}
	if want := `"name":"example.com/srv","SPDXID":"SPDXRef-GoBinary-`; !strings.Contains(string(doc), want) {
		t.Fatalf("the SBOM lacks %s:\n%s", want, doc)
	}
	if want := `"referenceLocator":"pkg:golang/example.com/srv@1.2.3"`; !strings.Contains(string(doc), want) {
		t.Errorf("the SBOM lacks %s (the build's version for the main module):\n%s", want, doc)
	}
}

// TestGoEntryModules: the provenance and the SBOM list the program's main
// module at the build's version and every dependency module with the
// go.sum hash that the binary's build info holds: in the provenance as
// go-module:PATH (purl, dirHash digest, goSum annotation), in the SBOM as
// a package with repro:goSum.
func TestGoEntryModules(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	var sum, h1 string
	for _, l := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "github.com/google/go-cmp" && strings.HasPrefix(f[1], "v0.7.0") {
			sum += l + "\n"
			if f[1] == "v0.7.0" {
				h1 = f[2]
			}
		}
	}
	if h1 == "" {
		t.Fatal("go.sum holds no go-cmp v0.7.0 line")
	}
	files := goModule("package main\n\nimport \"github.com/google/go-cmp/cmp\"\n\nfunc main() { println(cmp.Equal(1, 1)) }\n")
	files["go.mod"] = "module example.com/srv\n\ngo 1.22\n\nrequire github.com/google/go-cmp v0.7.0\n"
	files["go.sum"] = sum
	s := setup(t, strings.Replace(goSpec, "%s", "./cmd/server", 1), files)
	o := opts(t, s)
	o.GoEnv, o.GoToolchain = goTestEnv(t), runtime.Version()
	res, err := Build(context.Background(), s, o)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.GoPrograms[res.Platforms[0]]); n != 1 {
		t.Fatalf("%d Go programs recorded, want 1", n)
	}
	b := &Built{Result: res, Spec: s, Values: o.Values, GoToolchain: o.GoToolchain, workDir: o.WorkDir}
	in, err := b.ProvenanceInput("test")
	if err != nil {
		t.Fatal(err)
	}
	deps := map[string]attest.ResourceDescriptor{}
	for _, d := range in.Dependencies {
		deps[d.Name] = d
	}
	rawSum, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(h1, "h1:"))
	want := map[string]attest.ResourceDescriptor{
		attest.DepGoToolchain: {Name: attest.DepGoToolchain, URI: "https://go.dev/dl/#" + runtime.Version(), Annotations: map[string]string{"version": runtime.Version()}},
		"go-module:example.com/srv": {Name: "go-module:example.com/srv", URI: "pkg:golang/example.com/srv@1.2.3",
			Annotations: map[string]string{"version": "1.2.3", "main": "true", "programs": "/app/server"}},
		"go-module:github.com/google/go-cmp": {Name: "go-module:github.com/google/go-cmp", URI: "pkg:golang/github.com/google/go-cmp@v0.7.0",
			Digest:      map[string]string{"dirHash": hex.EncodeToString(rawSum)},
			Annotations: map[string]string{"version": "v0.7.0", "goSum": h1, "programs": "/app/server"}},
	}
	for name, w := range want {
		if d := cmp.Diff(w, deps[name]); d != "" {
			t.Errorf("provenance dependency %s (-want +got):\n%s", name, d)
		}
	}
	if len(hex.EncodeToString(rawSum)) != 64 {
		t.Errorf("go.sum's h1 %s is not a SHA-256", h1)
	}
	doc, err := b.SBOM(context.Background(), attest.SPDXJSON, "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`pkg:golang/github.com/google/go-cmp@v0.7.0`, `"comment":"go.sum ` + h1 + `"`, `pkg:golang/example.com/srv@1.2.3`} {
		if !strings.Contains(string(doc), w) {
			t.Errorf("the SPDX SBOM lacks %s", w)
		}
	}
	doc, err = b.SBOM(context.Background(), attest.CycloneDXJSON, "test")
	if err != nil {
		t.Fatal(err)
	}
	if w := `{"name":"repro:goSum","value":"` + h1 + `"}`; !strings.Contains(string(doc), w) {
		t.Errorf("the CycloneDX SBOM lacks %s", w)
	}
}
