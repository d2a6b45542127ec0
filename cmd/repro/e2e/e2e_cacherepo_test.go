package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cacheTags lists the tags of the cache repository repo.
func cacheTags(t *testing.T, host, repo string) []string {
	t.Helper()
	resp, err := http.Get("http://" + host + "/v2/" + repo + "/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	var v struct{ Tags []string }
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("tags/list: %v %s", err, b)
	}
	sort.Strings(v.Tags)
	return v.Tags
}

// writes counts the registry's access-log lines that write to repo.
func writes(reg *regServer, repo string) int {
	re := regexp.MustCompile(`"(PUT|POST|PATCH|DELETE) /v2/` + regexp.QuoteMeta(repo) + `/[^ ]* HTTP/`)
	return len(re.FindAllString(reg.log.String(), -1))
}

// TestE2ECacheRepo drives --cache-repo and --cache-mode through the binary
// against docker-registry on loopback: a readwrite build stores its layer
// (one manifest, tagged by the key); a second machine (a fresh
// --cache-dir) builds with the layer from the cache-repo, proven to be the
// layer it writes, the cold digest, and its push mounts the blob from there; read mode never writes; an
// entry whose blob's bytes were overwritten in the registry's storage is
// reported, not used, rebuilt to the right digest and never replaced.
func TestE2ECacheRepo(t *testing.T) {
	reg := regStart(t, "")
	if reg == nil {
		return
	}
	dir := t.TempDir()
	writeSpec(t, dir, cacheSpec)
	app := filepath.Join(dir, "app")
	os.MkdirAll(app, 0o755)
	big := strings.Repeat("repro layer cache in a registry\n", 4096)
	os.WriteFile(filepath.Join(app, "main.txt"), []byte(big), 0o644)
	repo := reg.host + "/cache"
	machine := func() []string {
		return []string{"--cache-dir", filepath.Join(t.TempDir(), "cache"), "--cache-repo", repo}
	}

	a, _ := buildCached(t, dir, 0, append(machine(), "--cache-mode", "readwrite")...)
	if statuses(a) != "app=built" {
		t.Fatalf("first build: %s", statuses(a))
	}
	tags := cacheTags(t, reg.host, "cache")
	if len(tags) != 1 || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(tags[0]) {
		t.Fatalf("the cache-repo holds tags %q, want one key", tags)
	}
	manifest := regRaw(t, repo+":"+tags[0])

	// A second machine: from the cache-repo, the same digest; pushed to
	// the same registry, the layer is mounted, not uploaded.
	before := writes(reg, "cache")
	b, br := buildCached(t, dir, 0, append(machine(), "-v", "-o", reg.host+"/app:t")...)
	if statuses(b) != "app=from cache-repo" || b.Digest != a.Digest {
		t.Fatalf("second machine: %s %s, want from cache-repo and %s", statuses(b), b.Digest, a.Digest)
	}
	// The hit was proven to be the layer this build writes, block by
	// block (not only hashed as it claims).
	if !strings.Contains(br.stderr, `msg="layer cache hit" layer=app`) || !strings.Contains(br.stderr, "checked=blocks") {
		t.Errorf("the hit from the cache-repo was not proven block by block:\n%s", br.stderr)
	}
	mounted := false
	for _, l := range regexp.MustCompile(`"POST /v2/app/blobs/uploads/\?[^ "]* HTTP/`).FindAllString(reg.log.String(), -1) {
		mounted = mounted || regexp.MustCompile(`[?&]mount=sha256(:|%3A)[0-9a-f]{64}`).MatchString(l) && regexp.MustCompile(`[?&]from=cache[& ]`).MatchString(l)
	}
	if !mounted {
		t.Errorf("the push to %s/app did not mount the layer from the cache-repo:\n%s", reg.host, reg.log)
	}
	// On a terminal, a third machine's status line names the cache-repo.
	if screen := onTerminal(t, dir, machine()...); !strings.Contains(screen, "layer app (linux/amd64): from cache-repo") {
		t.Fatalf("a build from the cache-repo on a terminal did not say so:\n%q", screen)
	}
	// Read mode (the default) writes nothing, though it misses.
	os.WriteFile(filepath.Join(app, "new.txt"), []byte("a pull request's change\n"), 0o644)
	c, _ := buildCached(t, dir, 0, machine()...)
	if statuses(c) != "app=built" {
		t.Fatalf("read mode, a new layer: %s", statuses(c))
	}
	if n := writes(reg, "cache"); n != before || len(cacheTags(t, reg.host, "cache")) != 1 {
		t.Fatalf("read mode wrote to the cache-repo (%d writes, %d before; tags %q)", n, before, cacheTags(t, reg.host, "cache"))
	}
	os.Remove(filepath.Join(app, "new.txt"))

	// Corrupt the entry's layer blob in the registry's storage, keeping
	// its size.
	var blob string
	var size int64
	filepath.Walk(filepath.Join(reg.root, "docker", "registry", "v2", "blobs"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Size() > size {
			blob, size = p, fi.Size()
		}
		return nil
	})
	data, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	for i := 100; i < 200 && i < len(data); i++ {
		data[i] ^= 0xff
	}
	os.WriteFile(blob, data, 0o644)
	d, r := buildCached(t, dir, 0, append(machine(), "--cache-mode", "readwrite")...)
	if statuses(d) != "app=built" || d.Digest != a.Digest {
		t.Fatalf("a corrupt entry: %s %s, want built and %s", statuses(d), d.Digest, a.Digest)
	}
	if !strings.Contains(r.stderr, "corrupt") || !strings.Contains(r.stderr, tags[0]) {
		t.Errorf("a corrupt entry was not reported:\n%s", r.stderr)
	}
	if got := regRaw(t, repo+":"+tags[0]); string(got) != string(manifest) {
		t.Errorf("the corrupt entry was replaced (first write wins)")
	}

	// Entries age from when they were written: repro gc on the cache-repo
	// keeps a fresh one and would expire it two days on.
	now := time.Now()
	for _, tc := range []struct {
		at   time.Time
		gone bool
	}{{now, false}, {now.Add(48 * time.Hour), true}} {
		r := repro(t, dir, "gc", repo, "--keep-days", "1", "--keep-last", "0", "--dry-run", "--now", strconv.FormatInt(tc.at.Unix(), 10))
		if strings.Contains(r.stdout, "would delete image       "+regDigest(manifest)[:19]) != tc.gone {
			t.Errorf("repro gc --dry-run at %s: the entry %s gone %v, want %v:\n%s", tc.at, regDigest(manifest), !tc.gone, tc.gone, r.stdout)
		}
	}

	// Bad flags are bad usage.
	for _, args := range [][]string{
		{"--cache-repo", repo, "--cache-mode", "write"},
		{"--cache-repo", repo, "--offline"},
		{"--cache-repo", "not a repo"},
	} {
		if _, r := buildCached(t, dir, 2, append([]string{"--cache-dir", filepath.Join(t.TempDir(), "c")}, args...)...); !strings.Contains(r.stderr, "--cache-") {
			t.Errorf("%q: %s", args, r.stderr)
		}
	}
}
