package e2e

// Flags that no other end-to-end test passes to the binary, each driven
// with a check that fails if the flag were ignored.

import (
	"cmp"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/internal/testtool"
)

// plainHTTPRegistry serves an in-memory registry over plain HTTP on
// 127.0.0.2, a loopback address that go-containerregistry does not take
// for one (it speaks plain HTTP to localhost, 127.0.0.1, ::1 and private
// networks unasked): without --insecure-registry repro speaks HTTPS to
// it, and fails.
func plainHTTPRegistry(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("listening on 127.0.0.2 (loopback): %v", err)
	}
	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return l.Addr().String()
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestE2EInsecureRegistry drives --insecure-registry through every
// command that takes it, against a plain-HTTP registry that is not on an
// address taken for loopback: each command fails without the flag (it
// speaks HTTPS) and does its work with it.
func TestE2EInsecureRegistry(t *testing.T) {
	host := plainHTTPRegistry(t)
	ins := []string{"--insecure-registry", host}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"repro.yaml": `version: 1
name: app
epoch: 1700000000
layers:
  - name: app
    contents:
      - {path: /etc/motd, content: "over plain HTTP\n"}
tags:
  - ` + host + `/app:v1
`,
		"multi/repro.yaml": `version: 1
name: multi
epoch: 1700000000
platforms: [linux/amd64, linux/arm64]
layers:
  - name: app
    contents:
      - {path: /etc/motd, content: "two platforms\n"}
`,
		"child/repro.yaml": `version: 1
name: child
epoch: 1700000000
base: ` + host + `/app:v1
layers:
  - name: more
    contents:
      - {path: /etc/more, content: "more\n"}
`,
		"tests.yaml": "schemaVersion: 2.0.0\nfileContentTests:\n  - name: motd\n    path: /etc/motd\n    expectedContents: ['plain HTTP']\n",
	})
	repro(t, dir, "keygen", "-q", "--out", "k")
	local := "oci:" + filepath.Join(dir, "local") + ":v1"
	digest := lastLine(repro(t, dir, "build", "-q", "-o", local).stdout)
	ref := host + "/app:v1"
	meta := func(name string) string { return filepath.Join(dir, name+".json") }
	pushed := func(name string) string {
		t.Helper()
		var m fleetMeta
		regReadJSON(t, meta(name), &m)
		return m.PushedByDigest
	}
	type step struct {
		name string
		dir  string
		args func() []string // the command, without --insecure-registry
		ok   func(t *testing.T, r result)
	}
	// Without the flag these still succeed, warning: the shared layer
	// cache is an optimisation.
	warns := map[string]bool{"build --cache-repo": true}
	steps := []step{
		{"build --push", dir, func() []string { return []string{"build", "-q", "--push"} }, func(t *testing.T, r result) {
			if lastLine(r.stdout) != digest {
				t.Errorf("pushed %s, want %s", lastLine(r.stdout), digest)
			}
		}},
		{"inspect", dir, func() []string { return []string{"inspect", "--json", ref} }, func(t *testing.T, r result) {
			if !strings.Contains(r.stdout, digest) {
				t.Errorf("inspect does not name %s:\n%s", digest, r.stdout)
			}
		}},
		{"sbom", dir, func() []string { return []string{"sbom", ref} }, func(t *testing.T, r result) {
			if !strings.Contains(r.stdout, `"spdxVersion"`) {
				t.Errorf("no SPDX document:\n%s", r.stdout)
			}
		}},
		{"diff", dir, func() []string { return []string{"diff", ref, local} }, nil},
		{"test", dir, func() []string { return []string{"test", ref, "-c", "tests.yaml"} }, nil},
		{"sign", dir, func() []string { return []string{"sign", "-q", ref, "--key", "k.key"} }, nil},
		{"verify-signature", dir, func() []string { return []string{"verify-signature", ref, "--key", "k.pub"} }, nil},
		{"verify", dir, func() []string { return []string{"verify", "--against", ref} }, func(t *testing.T, r result) {
			if !strings.HasPrefix(r.stdout, "verified: ") {
				t.Errorf("verify says %q", r.stdout)
			}
		}},
		{"lock (a base in the registry)", filepath.Join(dir, "child"), func() []string { return []string{"lock"} }, nil},
		{"build (pulls the base)", filepath.Join(dir, "child"), func() []string {
			return []string{"build", "-q", "--locked", "--cache-dir", t.TempDir(), "-o", "oci:out:c"} // an empty cache: the base is pulled
		}, nil},
		{"build --cache-repo", dir, func() []string {
			return []string{"build", "-q", "--cache-dir", filepath.Join(dir, "c1"), "--cache-repo", host + "/cache", "--cache-mode", "readwrite", "-o", "oci:c1out"}
		}, func(t *testing.T, r result) {
			// Another cache dir: the layer comes from the cache-repo.
			j := repro(t, dir, append([]string{"build", "--json", "--cache-dir", filepath.Join(dir, "c2"), "--cache-repo", host + "/cache", "-o", "oci:c2out"}, ins...)...)
			if !strings.Contains(j.stdout, "from cache-repo") {
				t.Errorf("a second cache dir does not read the layer from %s/cache:\n%s", host, j.stdout)
			}
		}},
		{"build --push-by-digest amd64", filepath.Join(dir, "multi"), func() []string {
			return []string{"build", "-q", "--platform", "linux/amd64", "--push-by-digest", host + "/multi", "--metadata-file", meta("amd64")}
		}, nil},
		{"build --push-by-digest arm64", filepath.Join(dir, "multi"), func() []string {
			return []string{"build", "-q", "--platform", "linux/arm64", "--push-by-digest", host + "/multi", "--metadata-file", meta("arm64")}
		}, nil},
		{"index", filepath.Join(dir, "multi"), func() []string {
			return []string{"index", "-q", pushed("amd64"), pushed("arm64"), "-o", host + "/multi:all"}
		}, nil},
		{"gc", dir, func() []string {
			return []string{"gc", host + "/app", "--keep-days", "0", "--keep-last", "0", "--dry-run"}
		}, func(t *testing.T, r result) {
			if !strings.Contains(r.stdout+r.stderr, digest) {
				t.Errorf("gc --dry-run does not list %s:\n%s\n%s", digest, r.stdout, r.stderr)
			}
		}},
	}
	if testtool.Require(t, "sfdisk", "mke2fs", "debugfs", "e2fsck") != nil {
		steps = append(steps, step{"disk", dir, func() []string { return []string{"disk", ref, "-o", filepath.Join(dir, "d.raw"), "--size", "16M"} }, nil})
	}
	for _, s := range steps {
		// Without the flag: HTTPS to a plain-HTTP server.
		if r := (invocation{dir: s.dir}).run(t, s.args()...); (r.code == 0) != warns[s.name] || !strings.Contains(r.stderr, "https://"+host+"/") {
			t.Errorf("%s without --insecure-registry: exit %d, want a failure speaking HTTPS to %s\n%s", s.name, r.code, host, r.stderr)
		}
		r := invocation{dir: s.dir}.run(t, append(s.args(), ins...)...)
		if r.code != 0 || strings.Contains(r.stderr, "https://"+host+"/") {
			t.Fatalf("%s --insecure-registry %s: exit %d\n%s", s.name, host, r.code, r.stderr)
		}
		if s.ok != nil {
			s.ok(t, r)
		}
	}
}

// TestE2EVerbose: -v (before or after the command) logs debug detail on
// stderr, which a run without it does not.
func TestE2EVerbose(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, tinySpec)
	cache := filepath.Join(dir, "cache")
	quiet := repro(t, dir, "build", "--cache-dir", cache, "-o", "oci:out:t")
	if strings.Contains(quiet.stderr, "level=DEBUG") {
		t.Errorf("debug lines without -v:\n%s", quiet.stderr)
	}
	for _, args := range [][]string{{"build", "-v", "--cache-dir", cache, "-o", "oci:out:t"}, {"--verbose", "build", "--cache-dir", cache, "-o", "oci:out:t"}} {
		r := repro(t, dir, args...)
		if !strings.Contains(r.stderr, "level=DEBUG") {
			t.Errorf("repro %s logs no debug line:\n%s", strings.Join(args, " "), r.stderr)
		}
	}
	var m struct{ Digest string }
	if err := json.Unmarshal([]byte(repro(t, dir, "build", "-q", "--json", "-o", "oci:out:t").stdout), &m); err != nil || m.Digest == "" {
		t.Errorf("build --json: %v", err)
	}
}

// TestE2EMaxLayerSizeEveryReader drives the global --max-layer-size
// through every command that reads an image's layers besides inspect
// (TestE2EMaxLayerSize): diff, test, sbom, disk and build --scan-base on
// an image with a 2 MiB file. Under 1MiB each refuses the layer (exit 2,
// naming the flag); under the default each passes.
func TestE2EMaxLayerSizeEveryReader(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"base/big":        strings.Repeat("\x00", 2<<20),
		"base/repro.yaml": "version: 1\nname: big\nepoch: 1700000000\nlayers:\n  - name: big\n    contents:\n      - {path: /big, source: big}\n",
		"tests.yaml":      "schemaVersion: 2.0.0\nfileExistenceTests:\n  - {name: big, path: /big, shouldExist: true}\n",
	})
	layout := filepath.Join(dir, "layout")
	d := lastLine(repro(t, filepath.Join(dir, "base"), "build", "-q", "-o", "oci:"+layout+":v1").stdout)
	writeFiles(t, dir, map[string]string{"app/repro.yaml": "version: 1\nname: app\nepoch: 1700000000\nbase: oci:../layout@" + d + "\nlayers:\n  - name: a\n    contents:\n      - {path: /etc/motd, content: hi}\n"})
	ref := "oci:" + layout + ":v1"
	// The same files in zstd: diff reads both to compare them.
	zstd := "oci:" + layout + ":zstd"
	repro(t, filepath.Join(dir, "base"), "build", "-q", "--compression", "zstd", "-o", zstd)
	cases := [][]string{
		{"diff", ref, zstd},
		{"test", ref, "-c", "tests.yaml"},
		{"sbom", ref},
		// The base is checked as it enters the cache, and read again,
		// from there, by the scan: both are bounded.
		{"build", "-q", "-f", "app/repro.yaml", "--scan-base", "--cache-dir", filepath.Join(dir, "cache"), "-o", "oci:" + filepath.Join(dir, "out") + ":t"},
	}
	if testtool.Require(t, "sfdisk", "mke2fs", "debugfs", "e2fsck") != nil {
		cases = append(cases, []string{"disk", ref, "-o", filepath.Join(dir, "d.raw"), "--size", "16M"})
	}
	for _, args := range cases {
		if r := (invocation{dir: dir}).run(t, append(args, "--max-layer-size", "1MiB")...); r.code != 2 || !strings.Contains(r.stderr, "--max-layer-size") {
			t.Errorf("repro %s --max-layer-size 1MiB: exit %d, want 2 naming the flag\n%s", args[0], r.code, r.stderr)
		}
		if r := (invocation{dir: dir}).run(t, args...); r.code != 0 && (args[0] != "diff" || r.code != 1) {
			t.Errorf("repro %s under the default --max-layer-size: exit %d\n%s", args[0], r.code, r.stderr)
		}
	}
	// With the base in the cache, the scan reads it under the limit too.
	if r := (invocation{dir: dir}).run(t, append(cases[3], "--max-layer-size", "1MiB")...); r.code != 2 || !strings.Contains(r.stderr, "--max-layer-size") {
		t.Errorf("build --scan-base of a cached base under --max-layer-size 1MiB: exit %d, want 2 naming the flag\n%s", r.code, r.stderr)
	}
}

// TestE2ETimeoutEveryCommand drives --timeout through every command that
// reads a registry besides build, lock and a push
// (TestE2ESilentServersFailWithinTimeout): against a registry that
// accepts connections and never answers, each exits 3 saying which host
// fell silent, well before the default 90 s would have let it (the bound,
// 45 s, is loose for a loaded machine; ignoring the flag takes 90 s).
func TestE2ETimeoutEveryCommand(t *testing.T) {
	host := silentHost(t)
	dir := t.TempDir()
	writeSpec(t, dir, tinySpec)
	writeFiles(t, dir, map[string]string{"tests.yaml": "schemaVersion: 2.0.0\nfileExistenceTests:\n  - {name: motd, path: /etc/motd, shouldExist: true}\n"})
	repro(t, dir, "keygen", "-q", "--out", "k")
	ref := host + "/app:v1"
	byDigest := host + "/app@sha256:" + strings.Repeat("ab", 32)
	cases := [][]string{
		{"inspect", ref},
		{"sbom", ref},
		{"diff", ref, ref},
		{"test", ref, "-c", "tests.yaml"},
		{"sign", ref, "--key", "k.key"},
		{"verify-signature", ref, "--key", "k.pub"},
		{"verify", "--against", ref},
		{"gc", host + "/app", "--keep-days", "1"},
		{"index", byDigest, byDigest},
		{"disk", ref, "-o", filepath.Join(dir, "d.raw")},
	}
	const timeout = "2s"
	for _, args := range cases {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			r := invocation{dir: dir}.run(t, append(args, "--timeout", timeout)...)
			took := time.Since(start)
			if r.code != 3 || !strings.Contains(r.stderr, host) || !strings.Contains(r.stderr, "said nothing") {
				t.Errorf("repro %s --timeout %s against a silent registry: exit %d, want 3 naming %s\n%s", strings.Join(args, " "), timeout, r.code, host, r.stderr)
			}
			if took > 45*time.Second {
				t.Errorf("repro %s --timeout %s took %s", args[0], timeout, took)
			}
		})
	}
}

// memRegistry serves an in-memory registry on loopback (plain HTTP, no
// flag needed).
func memRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// shapeSpec has two platforms, a var and the version in a file, so that
// --platform, --var, --version, --compression and --format each change
// the image.
const shapeSpec = `version: 1
name: shape
epoch: 1700000000
platforms: [linux/amd64, linux/arm64]
vars: {greeting: hello}
layers:
  - name: a
    contents:
      - {path: /etc/motd, content: "hi\n"}
config:
  env: {GREETING: "{{.Vars.greeting}}", VERSION: "{{.Version}}"}
`

// TestE2EShapeFlagsVerifyAndSign drives the flags that shape the image
// through verify and through sign --attest provenance, which rebuild: an
// image built with --platform linux/arm64 --var greeting=hi --version 2.0
// --compression zstd --format 1 verifies, and gets its provenance, with
// the same flags, and with any one of them left out it does not.
func TestE2EShapeFlagsVerifyAndSign(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeSpec(t, dir, shapeSpec)
	repro(t, dir, "keygen", "-q", "--out", "k")
	shape := [][]string{{"--platform", "linux/arm64"}, {"--var", "greeting=hi"}, {"--version", "2.0"}, {"--compression", "zstd"}, {"--format", "1"}}
	without := func(skip int) []string {
		var out []string
		for i, f := range shape {
			if i != skip {
				out = append(out, f...)
			}
		}
		return out
	}
	ref := "oci:" + filepath.Join(dir, "lay") + ":v"
	d := lastLine(repro(t, dir, append([]string{"build", "-q", "-o", ref}, without(-1)...)...).stdout)
	if r := repro(t, dir, append([]string{"verify", "--expect", d}, without(-1)...)...); !strings.HasPrefix(r.stdout, "verified: ") {
		t.Fatalf("verify with the build's flags: %s", r.stdout)
	}
	repro(t, dir, append([]string{"sign", "-q", ref, "--key", "k.key", "--attest", "provenance"}, without(-1)...)...)
	for i, f := range shape {
		if r := (invocation{dir: dir}).run(t, append([]string{"verify", "--expect", d}, without(i)...)...); r.code != 1 || !strings.Contains(r.stdout, "NOT verified") {
			t.Errorf("verify without %s: exit %d, want 1\n%s%s", f[0], r.code, r.stdout, r.stderr)
		}
		if r := (invocation{dir: dir}).run(t, append([]string{"sign", "-q", ref, "--key", "k.key", "--attest", "provenance"}, without(i)...)...); r.code != 1 || !strings.Contains(r.stderr, "--attest provenance: rebuilding") {
			t.Errorf("sign --attest provenance without %s: exit %d, want 1\n%s", f[0], r.code, r.stderr)
		}
	}
}

// TestE2EIndexFlags drives the build flags that index takes through it:
// per-platform images built with --allow-unpinned (a base by tag)
// --compression zstd --format 1 assemble, with those flags, to the index
// one build gives; without any one of them, or with --locked and no lock,
// index refuses (exit 2); --platform picks the platforms it wants;
// --offline works from the --cache-dir the base was pulled into and from
// no other; --scan-base reports the key the base holds.
func TestE2EIndexFlags(t *testing.T) {
	t.Parallel()
	host := memRegistry(t)
	dir := leakyBase(t, host, "platforms: [linux/amd64, linux/arm64]\n")
	app := filepath.Join(dir, "app")
	cache := filepath.Join(dir, "cache")
	flags := [][]string{{"--allow-unpinned"}, {"--compression", "zstd"}, {"--format", "1"}}
	all := slices.Concat(flags...)
	without := func(skip int) []string {
		var out []string
		for i, f := range flags {
			if i != skip {
				out = append(out, f...)
			}
		}
		return out
	}
	want := lastLine(repro(t, app, append([]string{"build", "-q", "--cache-dir", cache, "-o", "oci:" + filepath.Join(dir, "one") + ":all"}, all...)...).stdout)
	var parts []string
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		meta := filepath.Join(dir, "meta.json")
		repro(t, app, append([]string{"build", "-q", "--cache-dir", cache, "--platform", p, "--push-by-digest", host + "/app", "--metadata-file", meta}, all...)...)
		var m fleetMeta
		regReadJSON(t, meta, &m)
		parts = append(parts, m.PushedByDigest)
	}
	index := func(extra ...string) result {
		return invocation{dir: app}.run(t, append(append([]string{"index", "--cache-dir", cache}, parts...), extra...)...)
	}
	if r := index(all...); r.code != 0 || lastLine(r.stdout) != want {
		t.Fatalf("index %s: exit %d, %s, want %s\n%s", strings.Join(all, " "), r.code, lastLine(r.stdout), want, r.stderr)
	}
	for i, f := range flags {
		r := index(without(i)...)
		if r.code != 2 {
			t.Errorf("index without %s: exit %d, want 2\n%s", f[0], r.code, r.stderr)
		}
		if hint := "give index the " + f[0] + " the build was given"; f[0] != "--allow-unpinned" && !strings.Contains(r.stderr, hint) {
			t.Errorf("index without %s: want the hint %q\n%s", f[0], hint, r.stderr)
		}
	}
	if r := index(append(all, "--locked")...); r.code != 2 || !strings.Contains(r.stderr, "lock") {
		t.Errorf("index --locked with no lock: exit %d, want 2\n%s", r.code, r.stderr)
	}
	if r := index(append(all, "--platform", "linux/amd64")...); r.code != 2 || !strings.Contains(r.stderr, "builds linux/amd64") {
		t.Errorf("index --platform linux/amd64 of two platforms: exit %d, want 2 saying it builds linux/amd64 only\n%s", r.code, r.stderr)
	}
	// Locked, the base's pin needs no registry: --offline works from the
	// cache the base was pulled into, and from no other.
	repro(t, app, "lock", "--cache-dir", cache)
	locked := []string{"--locked", "--offline", "--compression", "zstd", "--format", "1"}
	loud := index(locked...)
	if loud.code != 0 || lastLine(loud.stdout) != want {
		t.Errorf("index %s from the cache the base was pulled into: exit %d\n%s", strings.Join(locked, " "), loud.code, loud.stderr)
	}
	// -q (the other commands': TestE2ESmallFlags): nothing on stderr (a
	// base pinned by the lock, so no warning either), the same stdout.
	if r := index(append(locked, "-q")...); r.code != 0 || r.stderr != "" || r.stdout != loud.stdout {
		t.Errorf("index -q: exit %d, stdout %q (without -q: %q), stderr:\n%s", r.code, r.stdout, loud.stdout, r.stderr)
	}
	if r := (invocation{dir: app}).run(t, append(append([]string{"index", "--cache-dir", t.TempDir()}, parts...), locked...)...); r.code != 3 || !strings.Contains(r.stderr, "offline") {
		t.Errorf("index --offline with an empty --cache-dir: exit %d, want 3 (the base is not there)\n%s", r.code, r.stderr)
	}
	if r := index(all...); strings.Contains(r.stderr, "secret in the base") {
		t.Errorf("the base was scanned without --scan-base:\n%s", r.stderr)
	}
	if r := index(append(all, "--scan-base")...); r.code != 0 || !strings.Contains(r.stderr, "/root/.ssh/id_ec: rule private-key") {
		t.Errorf("index --scan-base: exit %d, want the base's key reported\n%s", r.code, r.stderr)
	}
}

// TestE2ESmallFlags drives what is left of the commands' own flags, each
// with a check that fails if it were ignored: keygen --force, sign
// --sbom-format and --name, sbom -o, inspect --platform, and -q on every
// command but index (TestE2EIndexFlags has its -q).
func TestE2ESmallFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeSpec(t, dir, shapeSpec)

	t.Run("keygen --force", func(t *testing.T) {
		repro(t, dir, "keygen", "-q", "--out", "f")
		first, _ := os.ReadFile(filepath.Join(dir, "f.pub"))
		if r := (invocation{dir: dir}).run(t, "keygen", "-q", "--out", "f"); r.code != 2 {
			t.Errorf("keygen over an existing key: exit %d, want 2\n%s", r.code, r.stderr)
		}
		if again, _ := os.ReadFile(filepath.Join(dir, "f.pub")); string(again) != string(first) {
			t.Errorf("keygen without --force replaced the key")
		}
		repro(t, dir, "keygen", "-q", "--out", "f", "--force")
		if again, _ := os.ReadFile(filepath.Join(dir, "f.pub")); string(again) == string(first) || !strings.Contains(string(again), "PUBLIC KEY") {
			t.Errorf("keygen --force did not replace the key:\n%s", again)
		}
	})

	lay := filepath.Join(dir, "lay")
	ref := "oci:" + lay + ":v"
	repro(t, dir, "build", "-q", "-o", ref)

	t.Run("sign --sbom-format --name", func(t *testing.T) {
		repro(t, dir, "keygen", "-q", "--out", "s")
		signed := filepath.Join(t.TempDir(), "lay")
		repro(t, dir, "build", "-q", "-o", "oci:"+signed+":v")
		repro(t, dir, "sign", "-q", "oci:"+signed+":v", "--key", "s.key", "--attest", "sbom", "--sbom-format", "cyclonedx-json", "--name", "named-by-flag")
		repro(t, dir, "verify-signature", "oci:"+signed+":v", "--key", "s.pub", "--require", "cyclonedx")
		if r := (invocation{dir: dir}).run(t, "verify-signature", "oci:"+signed+":v", "--key", "s.pub", "--require", "sbom"); r.code != 1 {
			t.Errorf("an SPDX SBOM is required of a CycloneDX-only image: exit %d, want 1\n%s", r.code, r.stderr)
		}
		if p := layoutPredicate(t, signed, "https://cyclonedx.org/bom"); !strings.Contains(string(p), "named-by-flag") {
			t.Errorf("the CycloneDX SBOM does not name the image --name gave:\n%.400s", p)
		}
	})

	t.Run("sbom -o", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "sbom.json")
		r := repro(t, dir, "sbom", ref, "-o", out)
		doc, err := os.ReadFile(out)
		if err != nil || !strings.Contains(string(doc), `"spdxVersion"`) || strings.Contains(r.stdout, "spdxVersion") {
			t.Errorf("sbom -o: %v; file %.200s; stdout %.200s", err, doc, r.stdout)
		}
	})

	t.Run("inspect --platform", func(t *testing.T) {
		all := repro(t, dir, "inspect", ref).stdout
		arm := repro(t, dir, "inspect", ref, "--platform", "linux/arm64").stdout
		if !strings.Contains(all, "linux/amd64") || strings.Contains(arm, "linux/amd64") || !strings.Contains(arm, "linux/arm64") {
			t.Errorf("inspect --platform linux/arm64 of an index:\n%s\nwithout it:\n%s", arm, all)
		}
	})

	t.Run("-q", func(t *testing.T) {
		for _, args := range [][]string{{"build", "-o", "oci:" + filepath.Join(t.TempDir(), "q")}, {"verify", "--against", ref}, {"sbom", ref}, {"diff", ref, ref}} {
			loud := repro(t, dir, args...)
			quiet := repro(t, dir, append([]string{"-q"}, args...)...)
			if strings.Contains(quiet.stderr, "level=INFO") || quiet.stdout != loud.stdout {
				t.Errorf("repro -q %s: stderr %q, stdout %q (without -q: %q)", args[0], quiet.stderr, quiet.stdout, loud.stdout)
			}
			if args[0] == "build" && !strings.Contains(loud.stderr, "level=INFO") {
				t.Errorf("repro build logs nothing without -q, so -q proves nothing:\n%s", loud.stderr)
			}
		}
	})

	// -q on each other command (index: TestE2EIndexFlags): nothing at all
	// on stderr on success, and the stdout of a run without -q, where that
	// holds no clock (gc's "now", test's durations). Where the run
	// without -q logs, that proves -q silenced something.
	t.Run("-q, the other commands", func(t *testing.T) {
		work := t.TempDir()
		signed := "oci:" + filepath.Join(work, "signed") + ":v"
		repro(t, dir, "build", "-q", "-o", signed)
		repro(t, work, "keygen", "-q", "--out", "s")
		if err := os.WriteFile(filepath.Join(work, "tests.yaml"), []byte("schemaVersion: 2.0.0\nfileExistenceTests:\n  - {name: motd, path: /etc/motd, shouldExist: true}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		lockLoud, lockQuiet := t.TempDir(), t.TempDir() // lock writes beside the spec once
		writeSpec(t, lockLoud, shapeSpec)
		writeSpec(t, lockQuiet, shapeSpec)
		for _, tc := range []struct {
			args              []string
			loudDir, quietDir string   // the working directories; work when ""
			logs, sameStdout  bool     // the run without -q logs; stdout is the same
			want              string   // stdout holds it
			tools             []string // host tools the command needs
		}{
			{args: []string{"version"}, sameStdout: true, want: "go: go1."},
			{args: []string{"inspect", ref}, sameStdout: true, want: "linux/arm64"},
			{args: []string{"keygen", "--out", "k", "--force"}, logs: true, sameStdout: true, want: "k.pub"},
			{args: []string{"sign", signed, "--key", "s.key"}, logs: true, sameStdout: true, want: "sha256:"},
			{args: []string{"verify-signature", signed, "--key", "s.pub"}, logs: true, sameStdout: true, want: "sha256:"},
			{args: []string{"test", ref, "-c", "tests.yaml"}, want: "Total tests: 2"},
			{args: []string{"gc", "oci:" + filepath.Join(work, "signed"), "--keep-days", "30", "--dry-run"}, want: "0 would be deleted"},
			{args: []string{"cache", "prune", "--cache-dir", filepath.Join(work, "cache"), "--max-size", "0"}, sameStdout: true, want: "removed 0 entries"},
			{args: []string{"lock"}, loudDir: lockLoud, quietDir: lockQuiet, logs: true, sameStdout: true},
			{args: []string{"disk", ref, "-o", "d.raw", "--platform", "linux/amd64", "--size", "64M"}, logs: true, sameStdout: true, want: "sha256:", tools: diskTools},
		} {
			t.Run(tc.args[0], func(t *testing.T) {
				if len(tc.tools) > 0 {
					testtool.Require(t, tc.tools...)
				}
				loudDir, quietDir := cmp.Or(tc.loudDir, work), cmp.Or(tc.quietDir, work)
				loud := repro(t, loudDir, tc.args...)
				quiet := repro(t, quietDir, append([]string{"-q"}, tc.args...)...)
				if quiet.stderr != "" {
					t.Errorf("repro -q %s printed on stderr:\n%s", strings.Join(tc.args, " "), quiet.stderr)
				}
				if !strings.Contains(quiet.stdout, tc.want) || tc.sameStdout && quiet.stdout != loud.stdout {
					t.Errorf("repro -q %s: stdout %q, want it to hold %q (without -q: %q)", strings.Join(tc.args, " "), quiet.stdout, tc.want, loud.stdout)
				}
				if tc.logs && !strings.Contains(loud.stderr, "level=INFO") {
					t.Errorf("repro %s logs nothing without -q, so -q proves nothing:\n%s", tc.args[0], loud.stderr)
				}
			})
		}
	})
}

// TestE2EPinFlagsVerifyAndSign drives the flags about pins, the cache and
// the base through verify and sign --attest provenance, which rebuild: a
// base by tag needs --allow-unpinned (exit 2 without), --locked refuses it
// with no lock, --offline works from the --cache-dir the base was pulled
// into and from no other, and --scan-base reports the base's key.
func TestE2EPinFlagsVerifyAndSign(t *testing.T) {
	t.Parallel()
	host := memRegistry(t)
	dir := leakyBase(t, host, "")
	app := filepath.Join(dir, "app")
	repro(t, app, "keygen", "-q", "--out", "k")
	cache := filepath.Join(dir, "cache")
	ref := "oci:" + filepath.Join(dir, "lay") + ":v"
	d := lastLine(repro(t, app, "build", "-q", "--allow-unpinned", "--cache-dir", cache, "-o", ref).stdout)
	cmds := map[string][]string{
		"verify":                   {"verify", "--expect", d},
		"sign --attest provenance": {"sign", ref, "--key", "k.key", "--attest", "provenance"},
	}
	for name, cmd := range cmds {
		run := func(extra ...string) result {
			return invocation{dir: app}.run(t, append(append([]string{}, cmd...), extra...)...)
		}
		if r := run("--cache-dir", cache); r.code != 2 || !strings.Contains(r.stderr, "names a tag") {
			t.Errorf("%s of a base by tag without --allow-unpinned: exit %d, want 2\n%s", name, r.code, r.stderr)
		}
		if r := run("--cache-dir", cache, "--allow-unpinned"); r.code != 0 {
			t.Errorf("%s --allow-unpinned: exit %d\n%s%s", name, r.code, r.stdout, r.stderr)
		}
		if r := run("--cache-dir", cache, "--allow-unpinned", "--locked"); r.code != 2 {
			t.Errorf("%s --locked with no lock: exit %d, want 2\n%s", name, r.code, r.stderr)
		}
		if r := run("--cache-dir", cache, "--allow-unpinned"); strings.Contains(r.stderr, "secret in the base") {
			t.Errorf("%s scanned the base without --scan-base:\n%s", name, r.stderr)
		}
		if r := run("--cache-dir", cache, "--allow-unpinned", "--scan-base"); r.code != 0 || !strings.Contains(r.stderr, "/root/.ssh/id_ec: rule private-key") {
			t.Errorf("%s --scan-base: exit %d, want the base's key reported\n%s", name, r.code, r.stderr)
		}
	}
	repro(t, app, "lock", "--cache-dir", cache)
	for name, cmd := range cmds {
		run := func(extra ...string) result {
			return invocation{dir: app}.run(t, append(append([]string{}, cmd...), extra...)...)
		}
		if r := run("--locked", "--offline", "--cache-dir", cache); r.code != 0 {
			t.Errorf("%s --locked --offline from the cache the base was pulled into: exit %d\n%s", name, r.code, r.stderr)
		}
		if r := run("--locked", "--offline", "--cache-dir", t.TempDir()); r.code != 3 || !strings.Contains(r.stderr, "offline") {
			t.Errorf("%s --offline with an empty --cache-dir: exit %d, want 3\n%s", name, r.code, r.stderr)
		}
	}
}

// fakePodman writes a podman stand-in that logs each command line to
// log and answers as podman would for repro test's use: no image in
// storage, a pull that prints an ID, and runs that print out.
func fakePodman(t *testing.T, log, out string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-podman")
	script := `#!/bin/sh
printf '%s\n' "$*" >> '` + log + `'
for a in "$@"; do
  case "$a" in
    exists) exit 1 ;;
    pull) echo fakeimageid; exit 0 ;;
    run) echo '` + out + `'; exit 0 ;;
  esac
done
exit 0
`
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestE2EBuildRuntimeFlags drives build --test's --runtime, --podman and
// --podman-arg: without --runtime the command test is skipped and podman
// never runs; with them the podman given runs it, the --podman-arg before
// each subcommand, and its output decides the build (a failing command
// test writes nothing, exit 1).
func TestE2EBuildRuntimeFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeSpec(t, dir, tinySpec)
	writeFiles(t, dir, map[string]string{
		"pass.yaml": "schemaVersion: 2.0.0\ncommandTests:\n  - name: greets\n    command: greet\n    expectedOutput: ['fake says hi']\n",
		"fail.yaml": "schemaVersion: 2.0.0\ncommandTests:\n  - name: greets\n    command: greet\n    expectedOutput: ['something else']\n",
	})
	log := filepath.Join(dir, "podman.log")
	podman := fakePodman(t, log, "fake says hi")
	tmp, err := os.MkdirTemp("/tmp", "reproflags") // podman wants a lower-case path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	iv := invocation{dir: dir, env: []string{"TMPDIR=" + tmp}}

	if r := iv.run(t, "build", "--test", "fail.yaml", "-o", "oci:skipped:t"); r.code != 0 {
		t.Errorf("build --test without --runtime (the command test skipped): exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(log); err == nil {
		t.Errorf("podman ran without --runtime")
	}
	rt := []string{"--runtime", "podman", "--podman", podman, "--podman-arg=--root=/nonexistent/root", "--podman-arg", "--log-level=error"}
	if r := iv.run(t, append([]string{"build", "-q", "--test", "pass.yaml", "-o", "oci:passed:t"}, rt...)...); r.code != 0 {
		t.Fatalf("build --test with the fake podman: exit %d\n%s", r.code, r.stderr)
	}
	raw, _ := os.ReadFile(log)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	var ran bool
	for _, l := range lines {
		if !strings.HasPrefix(l, "--root=/nonexistent/root --log-level=error ") {
			t.Errorf("podman ran without the --podman-args first: %q", l)
		}
		ran = ran || strings.Contains(l, " run --rm ") && strings.HasSuffix(l, "fakeimageid greet")
	}
	if !ran {
		t.Errorf("the command test did not run through the fake podman:\n%s", raw)
	}
	if r := iv.run(t, append([]string{"build", "-q", "--test", "fail.yaml", "-o", "oci:failed:t"}, rt...)...); r.code != 1 {
		t.Errorf("build --test whose command test fails under --runtime: exit %d, want 1\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "failed")); err == nil {
		t.Errorf("a build whose test failed wrote its output")
	}
}

// keylessFakes are a fake Fulcio (it certifies any key whose proof of
// possession over the token's email verifies, for the bearer token tok)
// and a fake Rekor (it logs every entry), counting what each received.
type keylessFakes struct {
	fulcio, rekor  string
	certs, entries atomic.Int32
}

func newKeylessFakes(t *testing.T, tok, email string) *keylessFakes {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake fulcio"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	f := &keylessFakes{}
	fulcio := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/signingCert" || r.Header.Get("Authorization") != "Bearer "+tok {
			http.Error(w, "not the token the test gave", http.StatusUnauthorized)
			return
		}
		var req struct {
			PublicKey struct {
				Content []byte `json:"content"`
			} `json:"publicKey"`
			SignedEmailAddress []byte `json:"signedEmailAddress"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		block, _ := pem.Decode(req.PublicKey.Content)
		if block == nil {
			http.Error(w, "no PEM public key", http.StatusBadRequest)
			return
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		sum := sha256.Sum256([]byte(email))
		if ek, ok := pub.(*ecdsa.PublicKey); err != nil || !ok || !ecdsa.VerifyASN1(ek, sum[:], req.SignedEmailAddress) {
			http.Error(w, "no proof of possession", http.StatusBadRequest)
			return
		}
		leaf := &x509.Certificate{SerialNumber: big.NewInt(2), EmailAddresses: []string{email},
			NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(10 * time.Minute),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
		der, err := x509.CreateCertificate(rand.Reader, leaf, ca, pub, caKey)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		f.certs.Add(1)
		w.WriteHeader(http.StatusCreated)
		pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: der})
		pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	}))
	t.Cleanup(fulcio.Close)
	rekor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/log/entries" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		n := f.entries.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"%064x":{"body":%q,"integratedTime":1700000000,"logID":"%064x","logIndex":%d,"verification":{"signedEntryTimestamp":"c2V0"}}}`,
			n, base64.StdEncoding.EncodeToString(body), 7, n)
	}))
	t.Cleanup(rekor.Close)
	f.fulcio, f.rekor = fulcio.URL, rekor.URL
	return f
}

// layoutCertified counts the signature and attestation manifests of a
// signed layout whose layers carry a Fulcio certificate and a Rekor
// bundle, as keyless signing attaches them.
func layoutCertified(t *testing.T, layout string) int {
	t.Helper()
	var idx ocispec.Index
	e2eUnmarshal(t, signReadFile(t, filepath.Join(layout, "index.json")), &idx)
	n := 0
	for _, d := range idx.Manifests {
		if k := d.Annotations["kind"]; k != "dev.cosignproject.cosign/sigs" && k != "dev.cosignproject.cosign/atts" {
			continue
		}
		var m ocispec.Manifest
		e2eUnmarshal(t, e2eBlob(t, layout, string(d.Digest)), &m)
		for _, l := range m.Layers {
			if l.Annotations["dev.sigstore.cosign/certificate"] != "" && l.Annotations["dev.sigstore.cosign/bundle"] != "" {
				n++
			}
		}
	}
	return n
}

// TestE2EKeylessFlags drives --keyless, --fulcio-url, --rekor-url and
// --identity-token through build --sign, sign and index --sign, against a
// fake Fulcio and Rekor: each asks the Fulcio given for a certificate
// with the token given (a file, or $SIGSTORE_ID_TOKEN), logs each
// signature and attestation in the Rekor given, and attaches the
// certificate and Rekor's bundle. (The public services are not reachable
// here; repro does not verify keyless signatures.)
func TestE2EKeylessFlags(t *testing.T) {
	t.Parallel()
	enc := base64.RawURLEncoding.EncodeToString
	tok := enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(`{"email":"dev@example.com","email_verified":true}`)) + "." + enc([]byte("sig"))
	fakes := newKeylessFakes(t, tok, "dev@example.com")
	dir := t.TempDir()
	writeSpec(t, dir, shapeSpec)
	writeFiles(t, dir, map[string]string{"token": tok + "\n"})
	keyless := []string{"--keyless", "--fulcio-url", fakes.fulcio, "--rekor-url", fakes.rekor}

	lay := filepath.Join(dir, "built")
	repro(t, dir, append([]string{"build", "-q", "--sign", "--identity-token", "token", "-o", "oci:" + lay + ":v"}, keyless...)...)
	// An index, its two images: a signature each and two attestations each.
	if c, e, n := fakes.certs.Load(), fakes.entries.Load(), layoutCertified(t, lay); c != 1 || e < 3 || int(e) != n {
		t.Errorf("build --sign --keyless: %d certificates, %d Rekor entries, %d certified signatures in the layout; want 1, at least 3, as many as entries", c, e, n)
	}

	signed := filepath.Join(dir, "signed")
	repro(t, dir, "build", "-q", "-o", "oci:"+signed+":v")
	before := fakes.entries.Load()
	iv := invocation{dir: dir, env: []string{"SIGSTORE_ID_TOKEN=" + tok}}
	if r := iv.run(t, append([]string{"sign", "-q", "oci:" + signed + ":v", "--attest", "sbom"}, keyless...)...); r.code != 0 {
		t.Fatalf("sign --keyless with $SIGSTORE_ID_TOKEN: exit %d\n%s", r.code, r.stderr)
	}
	if e := fakes.entries.Load() - before; e != 2 || layoutCertified(t, signed) != 2 {
		t.Errorf("sign --keyless --attest sbom: %d Rekor entries, %d certified in the layout; want 2", e, layoutCertified(t, signed))
	}

	// index --sign: per-platform images in a layout, by digest.
	parts := filepath.Join(dir, "parts")
	var refs []string
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		d := lastLine(repro(t, dir, "build", "-q", "--platform", p, "-o", "oci:"+parts+":"+strings.ReplaceAll(p, "/", "-")).stdout)
		refs = append(refs, "oci:"+parts+"@"+d)
	}
	idx := filepath.Join(dir, "index")
	before = fakes.entries.Load()
	repro(t, dir, append(append([]string{"index", "-q", "--sign", "--identity-token", "token", "--provenance=false", "-o", "oci:" + idx + ":v"}, refs...), keyless...)...)
	if e := fakes.entries.Load() - before; e != 2 || layoutCertified(t, idx) != 2 {
		t.Errorf("index --sign --keyless --provenance=false: %d Rekor entries, %d certified in the layout; want 2 (a signature, the SBOM)", e, layoutCertified(t, idx))
	}
	bare := filepath.Join(dir, "bare-index")
	before = fakes.entries.Load()
	repro(t, dir, append(append([]string{"index", "-q", "--sign", "--identity-token", "token", "--sbom=false", "--provenance=false", "-o", "oci:" + bare + ":v"}, refs...), keyless...)...)
	if e := fakes.entries.Load() - before; e != 1 || layoutCertified(t, bare) != 1 {
		t.Errorf("index --sign --keyless --sbom=false --provenance=false: %d Rekor entries, %d certified in the layout; want 1 (the signature)", e, layoutCertified(t, bare))
	}

	// A token Fulcio does not take fails, naming the Fulcio asked.
	writeFiles(t, dir, map[string]string{"other": enc([]byte(`{}`)) + "." + enc([]byte(`{"sub":"someone-else"}`)) + ".x\n"})
	if r := (invocation{dir: dir}).run(t, append([]string{"sign", "oci:" + signed + ":v", "--identity-token", "other"}, keyless...)...); r.code == 0 || !strings.Contains(r.stderr, fakes.fulcio) {
		t.Errorf("sign --keyless with a token the Fulcio refuses: exit %d, want a failure naming %s\n%s", r.code, fakes.fulcio, r.stderr)
	}
}

// TestE2EJSONEveryCommand drives --json through the commands no other
// test gives it to: keygen, sign, verify-signature, test and disk each
// print one JSON document with their result where, without the flag,
// they print text. (sbom prints its JSON document either way.)
func TestE2EJSONEveryCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeSpec(t, dir, tinySpec)
	writeFiles(t, dir, map[string]string{"t.yaml": "schemaVersion: 2.0.0\nfileExistenceTests:\n  - {name: motd, path: /etc/motd, shouldExist: true}\n"})
	ref := "oci:" + filepath.Join(dir, "lay") + ":v"
	d := lastLine(repro(t, dir, "build", "-q", "-o", ref).stdout)
	cases := []struct {
		args []string
		key  string // a key the JSON object holds
		want string // its value, when fixed
	}{
		{[]string{"keygen", "--out", "k"}, "publicKey", "k.pub"},
		{[]string{"sign", ref, "--key", "k.key"}, "digest", d},
		{[]string{"verify-signature", ref, "--key", "k.pub"}, "digest", d},
		{[]string{"test", ref, "-c", "t.yaml"}, "Pass", ""},
	}
	if testtool.Require(t, "sfdisk", "mke2fs", "debugfs", "e2fsck") != nil {
		cases = append(cases, struct {
			args      []string
			key, want string
		}{[]string{"disk", ref, "-o", filepath.Join(dir, "d.raw"), "--size", "16M"}, "image", d})
	}
	for _, c := range cases {
		if c.args[0] == "keygen" {
			if r := repro(t, dir, "keygen", "-q", "--out", "plain"); strings.HasPrefix(strings.TrimSpace(r.stdout), "{") {
				t.Errorf("keygen without --json prints JSON: %s", r.stdout)
			}
		} else if r := repro(t, dir, c.args...); strings.HasPrefix(strings.TrimSpace(r.stdout), "{") {
			t.Errorf("%s without --json prints JSON: %s", c.args[0], r.stdout)
		}
		r := repro(t, dir, append(c.args, "--json")...)
		var got map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Errorf("%s --json: %v\n%s", c.args[0], err, r.stdout)
			continue
		}
		if v, ok := got[c.key]; !ok || (c.want != "" && v != c.want) {
			t.Errorf("%s --json: %s = %v, want %q\n%s", c.args[0], c.key, v, c.want, r.stdout)
		}
	}
}

// leakyBase writes, under a new directory it returns, a base spec
// (base/) whose layer holds a private key (allowed, so that it builds) and
// pushes it to host/base:1, and an app spec (app/) on that base, both with
// the spec line platforms ("" for the default).
func leakyBase(t *testing.T, host, platforms string) string {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(moduleRoot(t), "testdata", "secrets", "positive", "private-key", "ec.key"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"base/k": string(key),
		"base/repro.yaml": "version: 1\nname: base\nepoch: 1700000000\n" + platforms + "layers:\n  - name: b\n    contents:\n      - {path: /root/.ssh/id_ec, source: k}\n" +
			"secrets:\n  allow:\n    - {path: /root/.ssh/id_ec, reason: \"a base that leaks, for this test\"}\n",
		"app/repro.yaml": "version: 1\nname: app\nepoch: 1700000000\nbase: " + host + "/base:1\n" + platforms + "layers:\n  - name: a\n    contents:\n      - {path: /etc/motd, content: \"hi\\n\"}\n",
	})
	repro(t, filepath.Join(dir, "base"), "build", "-q", "-o", host+"/base:1")
	return dir
}
