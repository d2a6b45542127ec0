package lock_test

// Tests of the lock file against go-containerregistry's in-memory registry.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/pkg/base"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/lock"
	"github.com/reprobuild/repro/pkg/spec"
)

var ctx = context.Background()

func newRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// index is a pushed two-platform OCI index.
type index struct {
	digest    string
	platforms map[string]string
}

// pushIndex pushes a fresh OCI index of linux/amd64 and linux/arm64 images
// to ref (moving the tag if it was there).
func pushIndex(t *testing.T, ref string) index {
	t.Helper()
	out := index{platforms: map[string]string{}}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		l, err := random.Layer(200, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(empty.Image, l)
		if err != nil {
			t.Fatal(err)
		}
		img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out.platforms["linux/"+arch] = d.String()
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	out.digest = d.String()
	return out
}

// parseSpec parses a spec with the given base and extra YAML (layers).
func parseSpec(t *testing.T, baseRef, more string) *spec.Spec {
	t.Helper()
	text := fmt.Sprintf("version: 1\nname: app\nbase: %s\nplatforms: [linux/amd64, linux/arm64]\n%s", baseRef, more)
	s, err := spec.Parse("repro.yaml", t.TempDir(), []byte(text), spec.LoadOptions{})
	if err != nil {
		t.Fatalf("spec:\n%s\n%v", text, err)
	}
	return s
}

type env struct {
	host string
	c    *cache.Cache
	r    *base.Resolver
}

func newEnv(t *testing.T) *env {
	c := cache.New(t.TempDir())
	return &env{host: newRegistry(t), c: c, r: base.NewResolver(c, nil)}
}

func (e *env) resolve(t *testing.T, s *spec.Spec, old *lock.File, update bool) (*lock.File, []lock.Change) {
	t.Helper()
	f, changes, err := lock.Resolve(ctx, s, old, update, e.r, e.c, nil)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	return f, changes
}

func bytesOf(t *testing.T, f *lock.File) string {
	t.Helper()
	b, err := f.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLockResolveStableBytes(t *testing.T) {
	e := newEnv(t)
	ix := pushIndex(t, e.host+"/base:1")
	s := parseSpec(t, e.host+"/base:1", "")
	f, changes := e.resolve(t, s, nil, false)

	// The exact layout: two-space indent, keys sorted, a final newline,
	// nothing empty written.
	want := fmt.Sprintf(`{
  "version": 1,
  "format": 2,
  "bases": {
    "%s/base:1": {
      "digest": "%s",
      "mediaType": "application/vnd.oci.image.index.v1+json",
      "platforms": {
        "linux/amd64": "%s",
        "linux/arm64": "%s"
      }
    }
  }
}
`, e.host, ix.digest, ix.platforms["linux/amd64"], ix.platforms["linux/arm64"])
	got := bytesOf(t, f)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("lock bytes (-want +got):\n%s", d)
	}
	wantChanges := []lock.Change{{Kind: "added", Key: "base " + e.host + "/base:1", To: ix.digest}}
	if d := cmp.Diff(wantChanges, changes); d != "" {
		t.Errorf("changes (-want +got):\n%s", d)
	}
	if s := changes[0].String(); s != "added   base "+e.host+"/base:1: "+ix.digest {
		t.Errorf("Change.String() = %q", s)
	}

	// Twice: the same bytes; again over its own result: no changes.
	f2, _ := e.resolve(t, s, nil, false)
	if b := bytesOf(t, f2); b != got {
		t.Errorf("a second Resolve gave other bytes:\n%s\nwant\n%s", b, got)
	}
	f3, changes := e.resolve(t, s, f, true)
	if b := bytesOf(t, f3); b != got || len(changes) != 0 {
		t.Errorf("Resolve --update of an unchanged base: changes %v, bytes\n%s", changes, b)
	}

	// Write and Read round-trip; the file is 0644 and nothing else is left.
	dir := t.TempDir()
	path := filepath.Join(dir, "repro.lock.json")
	if err := f.Write(path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != got {
		t.Errorf("Write wrote\n%s\nwant\n%s", raw, got)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("lock file mode %v, want 0644", fi.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("the directory holds %d entries after Write, want the lock alone", len(ents))
	}
	back, err := lock.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(f, back, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("Read(Write(f)) (-f +read):\n%s", d)
	}

	// The recorded pin is the resolver's pin.
	pin, err := back.Bases[e.host+"/base:1"].Pin()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := base.ParseRef(e.host + "/base:1")
	if err != nil {
		t.Fatal(err)
	}
	rp, err := e.r.Resolve(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(rp, pin); d != "" {
		t.Errorf("lock pin vs resolver pin (-resolver +lock):\n%s", d)
	}
}

// TestLockFormat: the lock records the spec's format, else the one it
// recorded before (until --update), else the newest; a move is a change.
func TestLockFormat(t *testing.T) {
	e := newEnv(t)
	pushIndex(t, e.host+"/base:1")
	plain := parseSpec(t, e.host+"/base:1", "")
	one := parseSpec(t, e.host+"/base:1", "format: 1\n")
	f, _ := e.resolve(t, plain, nil, false)
	if f.Format != 2 {
		t.Errorf("no format anywhere: lock records %d, want the newest, 2", f.Format)
	}
	f1, changes := e.resolve(t, one, f, false)
	if f1.Format != 1 || len(changes) != 1 || changes[0].Key != "format" || changes[0].From != "repro-layer/2" || changes[0].To != "repro-layer/1" {
		t.Errorf("format: 1 in the spec: lock %d, changes %v", f1.Format, changes)
	}
	if kept, changes := e.resolve(t, plain, f1, false); kept.Format != 1 || len(changes) != 0 {
		t.Errorf("without --update a recorded format stays: %d, %v", kept.Format, changes)
	}
	if moved, changes := e.resolve(t, plain, f1, true); moved.Format != 2 || len(changes) != 1 {
		t.Errorf("--update moves to the newest: %d, %v", moved.Format, changes)
	}
	// A lock from before formats were recorded reads, and gets one.
	old := *f
	old.Format = 0
	raw, _ := old.Bytes()
	if strings.Contains(string(raw), "format") {
		t.Errorf("an unrecorded format is written: %s", raw)
	}
	if got, changes := e.resolve(t, plain, &old, false); got.Format != 2 || len(changes) != 0 {
		t.Errorf("old lock: %d, %v", got.Format, changes)
	}
}

func TestLockKeepsPinsUntilUpdate(t *testing.T) {
	e := newEnv(t)
	first := pushIndex(t, e.host+"/base:1")
	s := parseSpec(t, e.host+"/base:1", "")
	f, _ := e.resolve(t, s, nil, false)
	locked := bytesOf(t, f)

	moved := pushIndex(t, e.host+"/base:1") // the tag moves
	kept, changes := e.resolve(t, s, f, false)
	if b := bytesOf(t, kept); b != locked || len(changes) != 0 {
		t.Errorf("without update, after the tag moved: changes %v, lock\n%s\nwant it unchanged:\n%s", changes, b, locked)
	}

	updated, changes := e.resolve(t, s, f, true)
	key := "base " + e.host + "/base:1"
	want := []lock.Change{{Kind: "updated", Key: key, From: first.digest, To: moved.digest}}
	if d := cmp.Diff(want, changes); d != "" {
		t.Errorf("update after the tag moved (-want +got):\n%s", d)
	}
	if s := changes[0].String(); s != "updated "+key+": "+first.digest+" -> "+moved.digest {
		t.Errorf("Change.String() = %q", s)
	}
	b := updated.Bases[e.host+"/base:1"]
	if b.Digest != moved.digest || !cmp.Equal(b.Platforms, moved.platforms) {
		t.Errorf("updated pin %+v, want %s %v", b, moved.digest, moved.platforms)
	}

	// Another base: the old entry is removed, the new one added, in key order.
	other := pushIndex(t, e.host+"/other:2")
	_, changes = e.resolve(t, parseSpec(t, e.host+"/other:2", ""), updated, false)
	want = []lock.Change{
		{Kind: "removed", Key: key, From: moved.digest},
		{Kind: "added", Key: "base " + e.host + "/other:2", To: other.digest},
	}
	if d := cmp.Diff(want, changes); d != "" {
		t.Errorf("base replaced (-want +got):\n%s", d)
	}
	if s := changes[0].String(); s != "removed "+key+" (was "+moved.digest+")" {
		t.Errorf("Change.String() = %q", s)
	}
	scratch, changes := e.resolve(t, parseSpec(t, "scratch", ""), updated, false)
	if len(scratch.Bases) != 0 || len(changes) != 1 || changes[0].Kind != "removed" {
		t.Errorf("base: scratch: bases %v, changes %v; want the entry removed", scratch.Bases, changes)
	}
	if b := bytesOf(t, scratch); b != "{\n  \"version\": 1,\n  \"format\": 2\n}\n" {
		t.Errorf("lock of a scratch spec:\n%s", b)
	}

	// A spec that pins the digest the lock records keeps the entry; one that
	// pins another digest is resolved again, update or not.
	pinned := e.host + "/base:1@" + first.digest
	pf, _ := e.resolve(t, parseSpec(t, pinned, ""), nil, false)
	newer := &lock.File{Version: lock.Version, Bases: map[string]lock.Base{pinned: {Digest: moved.digest, MediaType: string(types.OCIImageIndex), Platforms: moved.platforms}}}
	got, changes := e.resolve(t, parseSpec(t, pinned, ""), newer, false)
	if got.Bases[pinned].Digest != first.digest || len(changes) != 1 || changes[0].Kind != "updated" {
		t.Errorf("a spec pin that the lock contradicts: %+v, changes %v; want the spec's digest", got.Bases[pinned], changes)
	}
	if bytesOf(t, got) != bytesOf(t, pf) {
		t.Errorf("re-resolved lock differs from a fresh one")
	}
}

// TestLockKeptPinNeedsNoRegistry: without --update, a pinned base is kept
// as it is; the registry (here one that cannot be reached) is not asked.
func TestLockKeptPinNeedsNoRegistry(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	host := strings.TrimPrefix(srv.URL, "http://")
	srv.Close() // nothing answers there any more
	const d = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	ref := host + "/base:1"
	old := &lock.File{Version: lock.Version, Bases: map[string]lock.Base{ref: {Digest: d, MediaType: string(types.OCIImageIndex), Platforms: map[string]string{"linux/amd64": d}}}}
	c := cache.New(t.TempDir())
	f, changes, err := lock.Resolve(ctx, parseSpec(t, ref, ""), old, false, base.NewResolver(c, nil), c, nil)
	if err != nil {
		t.Fatalf("Resolve of a locked base without update: %v", err)
	}
	if len(changes) != 0 || !cmp.Equal(f.Bases, old.Bases) {
		t.Errorf("Resolve changed a kept pin: %v, %+v", changes, f.Bases)
	}
	// With update it must ask, and the unreachable registry is an
	// operational failure.
	_, _, err = lock.Resolve(ctx, parseSpec(t, ref, ""), old, true, base.NewResolver(c, nil), c, nil)
	if err == nil || fault.KindOf(err) != fault.Operational {
		t.Errorf("Resolve --update against an unreachable registry: %v (kind %v); want operational", err, fault.KindOf(err))
	}
}

func TestLockURLs(t *testing.T) {
	const body = "fetched\n"
	sum := sha256.Sum256([]byte(body))
	hexSum := hex.EncodeToString(sum[:])
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	t.Cleanup(srv.Close)
	e := newEnv(t)
	layers := func(sha string) string {
		return fmt.Sprintf("layers:\n  - name: f\n    contents:\n      - path: /etc/f\n        url: %s/f\n        sha256: %s\n", srv.URL, sha)
	}
	s := parseSpec(t, "scratch", layers(hexSum))
	if got := lock.Unpinned(s, nil); !cmp.Equal(got, []string{"url " + srv.URL + "/f"}) {
		t.Errorf("Unpinned without a lock: %v", got)
	}
	f, changes := e.resolve(t, s, nil, false)
	if f.URLs[srv.URL+"/f"].SHA256 != hexSum || len(changes) != 1 || changes[0].Kind != "added" {
		t.Errorf("url lock: %+v, changes %v", f.URLs, changes)
	}
	if _, err := e.c.Lookup(hexSum); err != nil {
		t.Errorf("Resolve did not fetch the url into the cache: %v", err)
	}
	if got := lock.Unpinned(s, f); len(got) != 0 {
		t.Errorf("Unpinned with the lock: %v", got)
	}
	if !strings.Contains(bytesOf(t, f), `"urls": {`) {
		t.Errorf("lock lacks urls:\n%s", bytesOf(t, f))
	}
	// The spec's sha256 changes: the lock no longer pins it.
	other := strings.Repeat("0", 64)
	if got := lock.Unpinned(parseSpec(t, "scratch", layers(other)), f); len(got) != 1 {
		t.Errorf("Unpinned with another sha256: %v", got)
	}
	// ... and resolving fetches and checks it: the server's bytes do not match.
	_, _, err := lock.Resolve(ctx, parseSpec(t, "scratch", layers(other)), f, false, e.r, e.c, nil)
	if err == nil || fault.KindOf(err) != fault.Operational {
		t.Errorf("Resolve of a url whose bytes do not match: %v (kind %v); want operational", err, fault.KindOf(err))
	}
}

func TestLockUnpinned(t *testing.T) {
	const d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	tagged := parseSpec(t, "registry.example/base:1", "")
	if got := lock.Unpinned(tagged, nil); !cmp.Equal(got, []string{"base registry.example/base:1"}) {
		t.Errorf("no lock: %v", got)
	}
	if got := lock.Missing(tagged, nil); !cmp.Equal(got, []lock.Gap{{Field: "base", What: "base registry.example/base:1"}}) {
		t.Errorf("no lock, with fields: %v", got)
	}
	f := &lock.File{Version: 1, Bases: map[string]lock.Base{"registry.example/base:1": {Digest: d1}}}
	if got := lock.Unpinned(tagged, f); len(got) != 0 {
		t.Errorf("pinned by the lock: %v", got)
	}
	other := &lock.File{Version: 1, Bases: map[string]lock.Base{"registry.example/other:1": {Digest: d1}}}
	if got := lock.Unpinned(tagged, other); len(got) != 1 {
		t.Errorf("a lock of another base: %v", got)
	}
	pinned := "registry.example/base:1@" + d2
	contradicted := &lock.File{Version: 1, Bases: map[string]lock.Base{pinned: {Digest: d1}}}
	got := lock.Unpinned(parseSpec(t, pinned, ""), contradicted)
	if len(got) != 1 || !strings.Contains(got[0], "the lock pins "+d1) {
		t.Errorf("a spec pin that the lock contradicts: %v", got)
	}
	if got := lock.Unpinned(parseSpec(t, "scratch", ""), nil); len(got) != 0 {
		t.Errorf("scratch: %v", got)
	}
}

func TestLockPathFor(t *testing.T) {
	for in, want := range map[string]string{
		"repro.yaml":                "repro.lock.json",
		"deploy/repro.yaml":         filepath.Join("deploy", "repro.lock.json"),
		"/abs/dir/api.yaml":         "/abs/dir/repro.lock.json",
		"x.yml":                     "repro.lock.json",
		"specs/multi.platform.yaml": filepath.Join("specs", "repro.lock.json"),
	} {
		if got := lock.PathFor(in); got != want {
			t.Errorf("PathFor(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLockReadErrors(t *testing.T) {
	dir := t.TempDir()
	if f, err := lock.Read(filepath.Join(dir, "absent.lock.json")); f != nil || err != nil {
		t.Errorf("Read of a missing file: %v, %v; want nil, nil", f, err)
	}
	for name, text := range map[string]string{
		"unknown-field": `{"version": 1, "bases": {}, "extra": true}`,
		"version":       `{"version": 2}`,
		"not-json":      `{`,
		"empty":         ``,
		"array":         `[]`,
		"syntax":        "{\n  \"version\": 1,\n  \"bases\": {d}\n}\n",
	} {
		p := filepath.Join(dir, name+".lock.json")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := lock.Read(p)
		if err == nil || fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), p) || strings.Contains(err.Error(), "lock.File") {
			t.Errorf("%s: %v (kind %v); want bad input naming the file, in words", name, err, fault.KindOf(err))
		}
		if name == "syntax" && !strings.Contains(err.Error(), p+":3:14: ") {
			t.Errorf("a syntax error without its line and column: %v", err)
		}
	}
	bad := lock.Base{Digest: "sha256:nothex"}
	if _, err := bad.Pin(); err == nil || fault.KindOf(err) != fault.BadInput || !errors.Is(err, base.ErrPinMismatch) {
		t.Errorf("Pin of a bad digest: %v", err)
	}
}

// TestLockReadUnknownFieldPosition: a hand-edited key that the lock has no
// field for is named where it is, with its path and the field it likely
// meant; encoding/json reports it only at the end of the document, with
// neither (it said repro.lock.json:21:2: unknown field "suit"). A value
// of the wrong type is named by its whole path.
func TestLockReadUnknownFieldPosition(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ text, want string }{
		"nested": {
			"{\n  \"version\": 1,\n  \"apt\": {\n    \"linux/amd64\": {\n      \"arch\": \"amd64\",\n      \"sources\": [\n        {\"url\": \"http://deb\"},\n        {\"suit\": \"bookworm\"}\n      ]\n    }\n  }\n}\n",
			`:8:10: apt["linux/amd64"].sources[1].suit: unknown field; did you mean "suite"?`,
		},
		"top": {
			"{\n  \"version\": 1,\n  \"bsaes\": {}\n}\n",
			`:3:3: bsaes: unknown field; did you mean "bases"?`,
		},
		"base": {
			"{\n  \"version\": 1,\n  \"bases\": {\"r\": {\"digest\": \"sha256:x\", \"Platforms\": {}, \"media\": \"\"}}\n}\n",
			`:3:58: bases["r"].media: unknown field;`,
		},
		// A value of the wrong type: encoding/json names the field by its
		// struct path alone (apt.sources.indexes.size), with no map key or
		// index.
		"type": {
			"{\n  \"version\": 1,\n  \"apt\": {\"linux/amd64\": {\"sources\": [{}, {\"indexes\": [{\"size\": \"12\"}]}]}}\n}\n",
			`:3:69: apt["linux/amd64"].sources[1].indexes[0].size: a JSON string where the lock file has a number;`,
		},
	} {
		p := filepath.Join(dir, name+".lock.json")
		if err := os.WriteFile(p, []byte(tc.text), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := lock.Read(p)
		if err == nil || fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), p+tc.want) {
			t.Errorf("%s: %v; want %q", name, err, p+tc.want)
		}
	}
}

// TestStaleURLs: a url the lock pins at another digest than the spec's is
// stale; one pinned alike, or not at all, is not.
func TestStaleURLs(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	s := parseSpec(t, "scratch", "layers:\n  - contents:\n      - {path: /x, url: https://example.com/x, sha256: "+a+"}\n      - {path: /y, url: https://example.com/y, sha256: "+a+"}\n      - {path: /z, url: https://example.com/z, sha256: "+a+"}\n")
	f := &lock.File{Version: 1, URLs: map[string]lock.URL{"https://example.com/x": {SHA256: a}, "https://example.com/y": {SHA256: b}}}
	if got := lock.StaleURLs(s, f); len(got) != 1 || got[0] != "https://example.com/y" {
		t.Errorf("StaleURLs = %v, want only /y", got)
	}
	if got := lock.StaleURLs(s, nil); got != nil {
		t.Errorf("StaleURLs of no lock = %v", got)
	}
}
