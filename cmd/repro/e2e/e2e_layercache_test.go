package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const cacheSpec = `version: 1
name: cached
layers:
  - name: app
    contents:
      - path: /app
        source: app/
`

type cacheBuild struct {
	Digest string `json:"digest"`
	Layers []struct {
		Layer, Platform, Status string
	} `json:"layers"`
}

// buildCached runs repro build --json with extra flags and returns the
// digest and the layer statuses, or fails unless it exits want.
func buildCached(t *testing.T, dir string, want int, args ...string) (cacheBuild, result) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	r := invocation{dir: dir}.run(t, append([]string{"build", "--json", "-o", "oci:" + out + ":t"}, args...)...)
	if r.code != want {
		t.Fatalf("repro build %q: exit %d, want %d\n%s", args, r.code, want, r.stderr)
	}
	var b cacheBuild
	if want == 0 {
		if err := json.Unmarshal([]byte(lastLine(r.stdout)), &b); err != nil {
			t.Fatalf("--json: %v\n%s", err, r.stdout)
		}
	}
	return b, r
}

// onTerminal runs repro build in dir with stderr on a terminal (a pty
// that script(1) opens), where the layer status line is drawn, and
// returns what the terminal showed.
func onTerminal(t *testing.T, dir string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatalf("script (util-linux) is needed to give repro a terminal: %v", err)
	}
	out := filepath.Join(t.TempDir(), "out")
	words := []string{reproBin, "build", "-o", "oci:" + out + ":t"}
	for _, a := range append(words, args...) {
		if strings.ContainsAny(a, "'") {
			t.Fatalf("onTerminal: %q", a)
		}
	}
	cmdline := "'" + strings.Join(append(words, args...), "' '") + "'"
	cmd := exec.Command("script", "-qec", cmdline, "/dev/null")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(), "TERM=xterm"}
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("repro build on a terminal: %v\n%s", err, b)
	}
	return string(b)
}

func statuses(b cacheBuild) string {
	var s []string
	for _, l := range b.Layers {
		s = append(s, l.Layer+"="+l.Status)
	}
	return strings.Join(s, ",")
}

// TestLayerCache drives the layer cache through the binary: a warm build
// is cached with the cold digest; an edit that keeps size and mtime is
// seen; --no-cache and --check build cold; the secret guard judges a
// cached layer as it judges a built one; cache prune empties the store.
func TestLayerCache(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, cacheSpec)
	app := filepath.Join(dir, "app")
	os.MkdirAll(filepath.Join(app, "sub"), 0o755)
	os.WriteFile(filepath.Join(app, "main.txt"), []byte("hello\n"), 0o644)
	os.WriteFile(filepath.Join(app, "sub", "data"), []byte("0123456789\n"), 0o644)
	old := "200001020304.05"
	for _, f := range []string{"main.txt", "sub/data"} {
		if out, err := exec.Command("touch", "-t", old, filepath.Join(app, f)).CombinedOutput(); err != nil {
			t.Fatalf("touch: %v %s", err, out)
		}
	}
	cache := filepath.Join(t.TempDir(), "cache")
	cd := []string{"--cache-dir", cache}

	cold, _ := buildCached(t, dir, 0, cd...)
	if statuses(cold) != "app=built" {
		t.Fatalf("cold build: %s", statuses(cold))
	}
	warm, _ := buildCached(t, dir, 0, cd...)
	if statuses(warm) != "app=cached" || warm.Digest != cold.Digest {
		t.Fatalf("warm build: %s %s, want cached %s", statuses(warm), warm.Digest, cold.Digest)
	}
	// On a terminal, the layer's status line says so.
	if screen := onTerminal(t, dir, cd...); !strings.Contains(screen, "layer app (linux/amd64): cached") {
		t.Fatalf("a warm build on a terminal did not show the layer cached:\n%q", screen)
	}

	// An edit that keeps size and mtime: ctime tells the stat cache.
	data := filepath.Join(app, "sub", "data")
	os.WriteFile(data, []byte("9876543210\n"), 0o644)
	if out, err := exec.Command("touch", "-d", "2000-01-02 03:04:05", data).CombinedOutput(); err != nil {
		t.Fatalf("touch -d: %v %s", err, out)
	}
	if out, err := exec.Command("touch", "-t", old, data).CombinedOutput(); err != nil {
		t.Fatalf("touch: %v %s", err, out)
	}
	edited, _ := buildCached(t, dir, 0, cd...)
	nocache, _ := buildCached(t, dir, 0, append(cd, "--no-cache")...)
	if statuses(edited) != "app=built" || edited.Digest == cold.Digest {
		t.Fatalf("after an edit keeping size and mtime: %s %s (cold was %s)", statuses(edited), edited.Digest, cold.Digest)
	}
	if statuses(nocache) != "app=built" || nocache.Digest != edited.Digest {
		t.Fatalf("--no-cache: %s %s, want built %s", statuses(nocache), nocache.Digest, edited.Digest)
	}
	// --check rebuilds cold, though the cache holds the layer.
	checked, _ := buildCached(t, dir, 0, append(cd, "--check")...)
	if statuses(checked) != "app=built" || checked.Digest != edited.Digest {
		t.Fatalf("--check: %s %s", statuses(checked), checked.Digest)
	}

	// A secret: refused when built and when cached; allowed, it passes
	// from the cache.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	os.WriteFile(filepath.Join(app, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	for i := 0; i < 2; i++ {
		_, r := buildCached(t, dir, 2, cd...)
		if !strings.Contains(r.stderr, "key.pem") {
			t.Fatalf("build %d with a secret: the guard did not name it:\n%s", i, r.stderr)
		}
	}
	writeSpec(t, dir, cacheSpec+"secrets:\n  allow:\n    - {path: /app/key.pem, rule: private-key, reason: test}\n")
	allowed, _ := buildCached(t, dir, 0, cd...)
	if statuses(allowed) != "app=cached" {
		t.Fatalf("allowed secret: %s, want the layer cached", statuses(allowed))
	}

	r := repro(t, dir, "cache", "prune", "--cache-dir", cache, "--max-size", "0", "--json")
	var p struct{ Removed, Kept int }
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || p.Removed < 2 || p.Kept != 0 {
		t.Fatalf("cache prune: %s (%v)", r.stdout, err)
	}
	after, _ := buildCached(t, dir, 0, cd...)
	if statuses(after) != "app=built" {
		t.Fatalf("after prune: %s", statuses(after))
	}
	if r := (invocation{dir: dir}).run(t, "cache", "prune", "--cache-dir", cache, "--max-age", "soon"); r.code != 2 {
		t.Fatalf("a bad --max-age: exit %d", r.code)
	}
}

// TestLayerCacheRace: several repro build processes sharing one
// --cache-dir, cold and then warm, all succeed with one digest; the store
// ends with one entry per layer, and a later build takes them all.
func TestLayerCacheRace(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, cacheSpec+`  - name: more
    contents:
      - path: /more
        source: more/
`)
	for _, d := range []string{"app", "more"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
		for i := 0; i < 50; i++ {
			os.WriteFile(filepath.Join(dir, d, fmt.Sprintf("f%02d", i)), []byte(strings.Repeat(d, 1000*i)), 0o644)
		}
	}
	cache := filepath.Join(t.TempDir(), "cache")
	race := func() []result {
		out := make([]result, 4)
		var wg sync.WaitGroup
		for i := range out {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out[i] = invocation{dir: dir}.run(t, "build", "--json", "--cache-dir", cache, "-o", "oci:"+filepath.Join(t.TempDir(), "out")+":t")
			}()
		}
		wg.Wait()
		return out
	}
	var digest string
	for round, rs := range [][]result{race(), race()} {
		for i, r := range rs {
			var b cacheBuild
			if r.code != 0 || json.Unmarshal([]byte(lastLine(r.stdout)), &b) != nil {
				t.Fatalf("round %d, build %d: exit %d\n%s\n%s", round, i, r.code, r.stdout, r.stderr)
			}
			if digest == "" {
				digest = b.Digest
			}
			if b.Digest != digest {
				t.Errorf("round %d, build %d: digest %s, another %s", round, i, b.Digest, digest)
			}
			if s := statuses(b); round == 1 && s != "app=cached,more=cached" {
				t.Errorf("round %d, build %d: %s", round, i, s)
			}
		}
	}
	des, err := os.ReadDir(filepath.Join(cache, "layers", "entries"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	if len(names) != 2 {
		t.Errorf("the store holds %q, want two entries and no debris", names)
	}
}

// TestLayerCacheVerify drives --cache-verify: a hit is built again cold
// and compared. A good entry passes; an entry poisoned with another
// layer's bytes (a valid blob under the wrong key, which no hash check
// can see) fails the build, exit 1, and is removed, so the next build is
// right.
func TestLayerCacheVerify(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, cacheSpec)
	app := filepath.Join(dir, "app")
	os.MkdirAll(app, 0o755)
	os.WriteFile(filepath.Join(app, "main.txt"), []byte("x\n"), 0o644)
	cache := filepath.Join(t.TempDir(), "cache")
	cd := []string{"--cache-dir", cache}
	entries := filepath.Join(cache, "layers", "entries")
	list := func() map[string]bool {
		des, _ := os.ReadDir(entries)
		m := map[string]bool{}
		for _, de := range des {
			m[de.Name()] = true
		}
		return m
	}
	buildCached(t, dir, 0, cd...)
	good, _ := buildCached(t, dir, 0, append(cd, "--cache-verify")...)
	if statuses(good) != "app=cached" {
		t.Fatalf("--cache-verify on a good entry: %s", statuses(good))
	}
	x := list()
	os.WriteFile(filepath.Join(app, "main.txt"), []byte("y\n"), 0o644)
	y, _ := buildCached(t, dir, 0, cd...)
	var kx, ky string
	for k := range list() {
		if x[k] {
			kx = k
		} else {
			ky = k
		}
	}
	if kx == "" || ky == "" {
		t.Fatalf("entries %v", list())
	}
	// Poison y's entry with x's layer.
	blob, _ := os.ReadFile(filepath.Join(entries, kx, "blob"))
	meta, _ := os.ReadFile(filepath.Join(entries, kx, "meta.json"))
	os.Remove(filepath.Join(entries, ky, "blob"))
	os.WriteFile(filepath.Join(entries, ky, "blob"), blob, 0o644)
	os.WriteFile(filepath.Join(entries, ky, "meta.json"), []byte(strings.ReplaceAll(string(meta), kx, ky)), 0o644)
	if wrong, _ := buildCached(t, dir, 0, cd...); wrong.Digest == y.Digest {
		t.Fatal("the poisoned entry was not used: the test proves nothing")
	}
	_, r := buildCached(t, dir, 1, append(cd, "--cache-verify")...)
	if !strings.Contains(r.stderr, "--cache-verify") || !strings.Contains(r.stderr, `"app"`) {
		t.Errorf("--cache-verify on a poisoned entry:\n%s", r.stderr)
	}
	after, _ := buildCached(t, dir, 0, cd...)
	if statuses(after) != "app=built" || after.Digest != y.Digest {
		t.Errorf("after --cache-verify removed the entry: %s %s, want built %s", statuses(after), after.Digest, y.Digest)
	}
}

// TestLayerCacheChangedBlob: a local hit does not hash its blob (the
// store did when it wrote it), so a blob changed in place at its size is
// caught where its bytes next stream: the build fails naming the layer's
// digest and writes no output. --cache-verify hashes every local hit: the
// entry is corrupt, removed and rebuilt, with the cold digest.
func TestLayerCacheChangedBlob(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, cacheSpec)
	app := filepath.Join(dir, "app")
	os.MkdirAll(app, 0o755)
	os.WriteFile(filepath.Join(app, "main.txt"), []byte("x\n"), 0o644)
	cache := filepath.Join(t.TempDir(), "cache")
	cd := []string{"--cache-dir", cache}
	cold, _ := buildCached(t, dir, 0, cd...)
	des, _ := os.ReadDir(filepath.Join(cache, "layers", "entries"))
	if len(des) != 1 {
		t.Fatalf("the store holds %d entries, want 1", len(des))
	}
	p := filepath.Join(cache, "layers", "entries", des[0].Name(), "blob")
	blob, _ := os.ReadFile(p)
	blob[len(blob)/2] ^= 1
	os.Remove(p) // a link to the build's file, maybe
	os.WriteFile(p, blob, 0o644)
	var meta struct{ Digest string }
	raw, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "meta.json"))
	json.Unmarshal(raw, &meta)

	out := filepath.Join(t.TempDir(), "out")
	r := invocation{dir: dir}.run(t, append([]string{"build", "-o", "oci:" + out + ":t"}, cd...)...)
	if r.code == 0 || !strings.Contains(r.stderr, meta.Digest) {
		t.Errorf("a build over a changed blob: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a build over a changed blob wrote its output")
	}
	v, r := buildCached(t, dir, 0, append(cd, "--cache-verify")...)
	if statuses(v) != "app=built" || v.Digest != cold.Digest || !strings.Contains(r.stderr, "corrupt") {
		t.Errorf("--cache-verify over a changed blob: %s %s, want built %s\n%s", statuses(v), v.Digest, cold.Digest, r.stderr)
	}
	if again, _ := buildCached(t, dir, 0, cd...); statuses(again) != "app=cached" || again.Digest != cold.Digest {
		t.Errorf("after --cache-verify rebuilt the entry: %s %s", statuses(again), again.Digest)
	}
}
