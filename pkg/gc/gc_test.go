package gc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/pkg/fault"
)

// now is the fixed "now" of every test; ages count back from it.
var now = time.Unix(1700000000, 0).UTC()

func daysAgo(d int) *time.Time {
	t := now.Add(-time.Duration(d) * 24 * time.Hour)
	return &t
}

type desc struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    map[string]string `json:"platform,omitempty"`
}

// layoutBuilder writes OCI layouts by hand, byte by byte, so that each
// test controls exactly what gc sees.
type layoutBuilder struct {
	t       *testing.T
	dir     string
	entries []desc
}

func newLayout(t *testing.T) *layoutBuilder {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return &layoutBuilder{t: t, dir: dir}
}

func (l *layoutBuilder) blob(mt string, data []byte) desc {
	l.t.Helper()
	sum := sha256.Sum256(data)
	d := desc{MediaType: mt, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(data))}
	if err := os.WriteFile(filepath.Join(l.dir, "blobs", "sha256", hex.EncodeToString(sum[:])), data, 0o644); err != nil {
		l.t.Fatal(err)
	}
	return d
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// image writes an image whose config has created (none when nil, or the
// raw string createdRaw when not empty) and one layer with content.
func (l *layoutBuilder) image(created *time.Time, layer string) desc {
	return l.imageRaw(created, "", layer)
}

func (l *layoutBuilder) imageRaw(created *time.Time, createdRaw, layer string) desc {
	cfg := map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": []string{}}}
	if created != nil {
		cfg["created"] = created.UTC().Format(time.RFC3339)
	}
	if createdRaw != "" {
		cfg["created"] = createdRaw
	}
	c := l.blob("application/vnd.oci.image.config.v1+json", mustJSON(l.t, cfg))
	ly := l.blob("application/vnd.oci.image.layer.v1.tar+gzip", []byte(layer))
	m := map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": []desc{ly}}
	return l.blob("application/vnd.oci.image.manifest.v1+json", mustJSON(l.t, m))
}

func (l *layoutBuilder) index(children ...desc) desc {
	for i := range children {
		children[i].Platform = map[string]string{"os": "linux", "architecture": []string{"amd64", "arm64", "s390x"}[i%3]}
	}
	m := map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": children}
	return l.blob("application/vnd.oci.image.index.v1+json", mustJSON(l.t, m))
}

// signature writes a cosign signature image of subject: a simple-signing
// payload layer.
func (l *layoutBuilder) signature(subject desc) desc {
	payload := fmt.Sprintf(`{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":null}`, subject.Digest)
	c := l.blob("application/vnd.oci.image.config.v1+json", []byte(`{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":[]},"config":{}}`))
	ly := l.blob("application/vnd.dev.cosign.simplesigning.v1+json", []byte(payload))
	ly.Annotations = map[string]string{"dev.cosignproject.cosign/signature": "c2ln"}
	m := map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": []desc{ly}}
	return l.blob("application/vnd.oci.image.manifest.v1+json", mustJSON(l.t, m))
}

// attestation writes a cosign attestation image of subject: a DSSE
// envelope around an in-toto statement.
func (l *layoutBuilder) attestation(subject desc) desc {
	st := fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"name":"x","digest":{"sha256":%q}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`, strings.TrimPrefix(subject.Digest, "sha256:"))
	env := fmt.Sprintf(`{"payloadType":"application/vnd.in-toto+json","payload":%q,"signatures":[]}`, base64.StdEncoding.EncodeToString([]byte(st)))
	c := l.blob("application/vnd.oci.image.config.v1+json", []byte(`{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":[]},"config":{},"att":1}`))
	ly := l.blob("application/vnd.dsse.envelope.v1+json", []byte(env))
	m := map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": []desc{ly}}
	return l.blob("application/vnd.oci.image.manifest.v1+json", mustJSON(l.t, m))
}

func sigTagOf(d desc, suffix string) string {
	return "sha256-" + strings.TrimPrefix(d.Digest, "sha256:") + "." + suffix
}

// entry adds d to index.json with the annotations given as key, value
// pairs; a single value is a tag.
func (l *layoutBuilder) entry(d desc, kv ...string) {
	if len(kv) == 1 {
		kv = []string{refName, kv[0]}
	}
	if len(kv) > 0 {
		d.Annotations = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			d.Annotations[kv[i]] = kv[i+1]
		}
	}
	d.Platform = nil
	l.entries = append(l.entries, d)
}

func (l *layoutBuilder) write() {
	l.t.Helper()
	idx := map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": l.entries}
	if err := os.WriteFile(filepath.Join(l.dir, "index.json"), mustJSON(l.t, idx), 0o644); err != nil {
		l.t.Fatal(err)
	}
}

// indexEntries reads index.json back: each entry's tag (or digest when
// untagged).
func (l *layoutBuilder) indexEntries() []string {
	l.t.Helper()
	raw, err := os.ReadFile(filepath.Join(l.dir, "index.json"))
	if err != nil {
		l.t.Fatal(err)
	}
	var idx struct{ Manifests []desc }
	if err := json.Unmarshal(raw, &idx); err != nil {
		l.t.Fatal(err)
	}
	var out []string
	for _, e := range idx.Manifests {
		if t := e.Annotations[refName]; t != "" {
			out = append(out, t)
		} else {
			out = append(out, e.Digest)
		}
	}
	return out
}

func (l *layoutBuilder) has(d desc) bool {
	_, err := os.Stat(filepath.Join(l.dir, "blobs", "sha256", strings.TrimPrefix(d.Digest, "sha256:")))
	return err == nil
}

// snapshot is every file of the layout with its bytes.
func (l *layoutBuilder) snapshot() map[string]string {
	l.t.Helper()
	out := map[string]string{}
	filepath.Walk(l.dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			l.t.Fatal(err)
		}
		if !fi.IsDir() {
			b, _ := os.ReadFile(p)
			out[strings.TrimPrefix(p, l.dir)] = string(b)
		}
		return nil
	})
	return out
}

func opts(keepDays, keepLast int) Options {
	return Options{Now: now, KeepDays: keepDays, KeepLast: keepLast}
}

func digests(items []Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Digest)
	}
	sort.Strings(out)
	return out
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func itemFor(t *testing.T, items []Item, d desc) Item {
	t.Helper()
	for _, it := range items {
		if it.Digest == d.Digest {
			return it
		}
	}
	t.Fatalf("%s is not in %+v", d.Digest, items)
	return Item{}
}

// TestThreeEpochs: images 100, 40 and 1 days old, each signed (cosign's
// tags), the newest also in cosign's layout format (kind annotations only)
// and attested. With 30 days, the two old ones go with their signatures;
// the newest and everything of it stays; the blobs of what went are
// removed, and a layer the kept image shares stays.
func TestThreeEpochs(t *testing.T) {
	l := newLayout(t)
	old := l.image(daysAgo(100), "layer-old")
	mid := l.image(daysAgo(40), "shared-layer")
	recent := l.image(daysAgo(1), "shared-layer")
	oldSig, midSig, recentSig := l.signature(old), l.signature(mid), l.signature(recent)
	oldAtt, recentAtt := l.attestation(old), l.attestation(recent)
	l.entry(old, "v100")
	l.entry(mid, "v40")
	l.entry(recent, refName, "v1", cosignKind, cosignImage)
	l.entry(oldSig, sigTagOf(old, "sig"))
	l.entry(oldAtt, refName, sigTagOf(old, "att"), cosignKind, cosignAtts)
	l.entry(midSig, sigTagOf(mid, "sig"))
	l.entry(recentSig, cosignKind, cosignSigs) // cosign save's format: no tag
	l.entry(recentAtt, cosignKind, cosignAtts)
	l.write()

	r, err := Layout(context.Background(), l.dir, opts(30, 1))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := digests(r.Deleted), sorted(old.Digest, mid.Digest, oldSig.Digest, oldAtt.Digest, midSig.Digest); !slices.Equal(got, want) {
		t.Errorf("deleted %v, want %v", got, want)
	}
	if got, want := digests(r.Kept), sorted(recent.Digest, recentSig.Digest, recentAtt.Digest); !slices.Equal(got, want) {
		t.Errorf("kept %v, want %v", got, want)
	}
	if got, want := l.indexEntries(), []string{"v1", recentSig.Digest, recentAtt.Digest}; !slices.Equal(got, want) {
		t.Errorf("index.json holds %v, want %v", got, want)
	}
	for _, d := range []desc{old, mid, oldSig, midSig, oldAtt} {
		if l.has(d) {
			t.Errorf("blob %s stayed", d.Digest)
		}
	}
	for _, d := range []desc{recent, recentSig, recentAtt} {
		if !l.has(d) {
			t.Errorf("blob %s of a kept entry went", d.Digest)
		}
	}
	// The layer that the 40-day image shared with the kept one stays.
	if !l.has(desc{Digest: digestOf("shared-layer")}) || l.has(desc{Digest: digestOf("layer-old")}) {
		t.Error("layer blobs: want the shared layer kept and the old one removed")
	}
	it := itemFor(t, r.Deleted, old)
	if it.AgeDays == nil || *it.AgeDays != 100 || it.Kind != kindImage {
		t.Errorf("the old image's item: %+v", it)
	}
	if it := itemFor(t, r.Kept, recentSig); it.Subject != recent.Digest || it.Kind != kindSignature {
		t.Errorf("the kept signature's item: %+v", it)
	}
	if it := itemFor(t, r.Deleted, oldAtt); it.Subject != old.Digest || it.Kind != kindAttestation {
		t.Errorf("the deleted attestation's item: %+v", it)
	}
	if r.BlobBytes == 0 || len(r.Blobs) == 0 {
		t.Errorf("no blobs reported removed: %+v", r)
	}
	// A second run finds nothing more to do.
	r2, err := Layout(context.Background(), l.dir, opts(30, 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(r2.Deleted) != 0 || len(r2.Blobs) != 0 {
		t.Errorf("a second run deleted %+v and blobs %+v", r2.Deleted, r2.Blobs)
	}
}

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestKeepLast(t *testing.T) {
	for _, c := range []struct {
		keepDays, keepLast int
		want               []string // tags that stay
	}{
		{30, 1, []string{"d1"}},
		{30, 2, []string{"d40", "d1"}},
		{30, 0, []string{"d1"}},
		{0, 0, nil},
		{0, 1, []string{"d1"}},
		{0, 3, []string{"d100", "d40", "d1"}},
		{1000, 0, []string{"d100", "d40", "d1"}},
		{40, 0, []string{"d40", "d1"}}, // exactly 40 days old: not more than 40
	} {
		t.Run(fmt.Sprintf("days%d-last%d", c.keepDays, c.keepLast), func(t *testing.T) {
			l := newLayout(t)
			l.entry(l.image(daysAgo(100), "a"), "d100")
			l.entry(l.image(daysAgo(40), "b"), "d40")
			l.entry(l.image(daysAgo(1), "c"), "d1")
			l.write()
			if _, err := Layout(context.Background(), l.dir, opts(c.keepDays, c.keepLast)); err != nil {
				t.Fatal(err)
			}
			if got := l.indexEntries(); !slices.Equal(got, c.want) {
				t.Errorf("index.json holds %v, want %v", got, c.want)
			}
		})
	}
}

// TestUndatedAndEpochZero: an image without created, with created null or
// with a created that is not a time is never deleted; epoch 0 (1970) is
// old like any other date.
func TestUndatedAndEpochZero(t *testing.T) {
	l := newLayout(t)
	none := l.image(nil, "none")
	bad := l.imageRaw(nil, "yesterday", "bad")
	zero := l.image(&time.Time{}, "zero") // 0001-01-01: a date all the same
	epoch0 := l.image(func() *time.Time { t := time.Unix(0, 0); return &t }(), "epoch0")
	recent := l.image(daysAgo(1), "recent")
	l.entry(none, "none")
	l.entry(bad, "bad")
	l.entry(zero, "zero")
	l.entry(epoch0, "epoch0")
	l.entry(recent, "recent")
	l.write()
	r, err := Layout(context.Background(), l.dir, opts(30, 1))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.indexEntries(), []string{"none", "bad", "recent"}; !slices.Equal(got, want) {
		t.Errorf("index.json holds %v, want %v", got, want)
	}
	if it := itemFor(t, r.Kept, none); it.Created != nil || !strings.Contains(it.Reason, "no created") {
		t.Errorf("the undated image: %+v", it)
	}
	if it := itemFor(t, r.Deleted, epoch0); it.AgeDays == nil || *it.AgeDays < 19000 {
		t.Errorf("the epoch-0 image: %+v", it)
	}
}

// TestKeptIndexKeepsItsImages: an old image that a kept index uses stays,
// even with an old tag of its own; an old index goes, and with it the
// manifests only it used (and their signatures), but not one that a kept
// index shares.
func TestKeptIndexKeepsItsImages(t *testing.T) {
	l := newLayout(t)
	shared := l.image(daysAgo(100), "shared")
	newArm := l.image(daysAgo(1), "new-arm")
	newIdx := l.index(shared, newArm)
	oldOnly := l.image(daysAgo(100), "old-only")
	oldIdx := l.index(oldOnly, shared)
	oldOnlySig := l.signature(oldOnly)
	l.entry(shared, "old-amd64")
	l.entry(newIdx, "multi-new")
	l.entry(oldIdx, "multi-old")
	l.entry(oldOnlySig, sigTagOf(oldOnly, "sig"))
	l.write()
	r, err := Layout(context.Background(), l.dir, opts(30, 1))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.indexEntries(), []string{"old-amd64", "multi-new"}; !slices.Equal(got, want) {
		t.Errorf("index.json holds %v, want %v", got, want)
	}
	if it := itemFor(t, r.Kept, shared); !strings.Contains(it.Reason, "used by the kept index "+newIdx.Digest) {
		t.Errorf("the shared image's reason: %q", it.Reason)
	}
	if it := itemFor(t, r.Deleted, oldOnlySig); it.Subject != oldOnly.Digest {
		t.Errorf("the signature of the old index's manifest: %+v", it)
	}
	if l.has(oldOnly) || l.has(oldIdx) || l.has(oldOnlySig) {
		t.Error("the old index's own blobs stayed")
	}
	if !l.has(shared) || !l.has(newArm) || !l.has(newIdx) {
		t.Error("a blob of the kept index went")
	}
	// The index's age is its newest image's.
	if it := itemFor(t, r.Kept, newIdx); it.Kind != kindIndex || it.AgeDays == nil || *it.AgeDays != 1 {
		t.Errorf("the new index: %+v", it)
	}
}

// TestIndexWithUndatedImage: an index one of whose images has no created
// is never deleted.
func TestIndexWithUndatedImage(t *testing.T) {
	l := newLayout(t)
	idx := l.index(l.image(daysAgo(100), "a"), l.image(nil, "b"))
	l.entry(idx, "mixed")
	l.entry(l.image(daysAgo(1), "c"), "new")
	l.write()
	if _, err := Layout(context.Background(), l.dir, opts(30, 0)); err != nil {
		t.Fatal(err)
	}
	if got, want := l.indexEntries(), []string{"mixed", "new"}; !slices.Equal(got, want) {
		t.Errorf("index.json holds %v, want %v", got, want)
	}
}

// TestDryRunChangesNothing: every file keeps its bytes, and the report is
// the one a real run then gives.
func TestDryRunChangesNothing(t *testing.T) {
	l := newLayout(t)
	old := l.image(daysAgo(100), "a")
	l.entry(old, "old")
	l.entry(l.signature(old), sigTagOf(old, "sig"))
	l.entry(l.image(daysAgo(1), "b"), "new")
	l.blob("application/octet-stream", []byte("garbage"))
	l.write()
	before := l.snapshot()
	o := opts(30, 1)
	o.DryRun = true
	dry, err := Layout(context.Background(), l.dir, o)
	if err != nil {
		t.Fatal(err)
	}
	after := l.snapshot()
	if len(before) != len(after) {
		t.Fatalf("a dry run changed the files: %d before, %d after", len(before), len(after))
	}
	for p, b := range before {
		if after[p] != b {
			t.Errorf("a dry run changed %s", p)
		}
	}
	if !dry.DryRun || len(dry.Deleted) != 2 || len(dry.Blobs) == 0 {
		t.Errorf("the dry run's report: %+v", dry)
	}
	var text strings.Builder
	dry.WriteText(&text)
	if !strings.Contains(text.String(), "2 would be deleted, ") || strings.Contains(text.String(), " deleted, ") && !strings.Contains(text.String(), "would be deleted, ") {
		t.Errorf("the dry run's text says what it did, not what it would do:\n%s", text.String())
	}
	real, err := Layout(context.Background(), l.dir, opts(30, 1))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(digests(dry.Deleted), digests(real.Deleted)) || len(dry.Blobs) != len(real.Blobs) {
		t.Errorf("dry run said %v and %d blobs, the run did %v and %d", digests(dry.Deleted), len(dry.Blobs), digests(real.Deleted), len(real.Blobs))
	}
}

// TestIndexJSONRewrite: the entries that stay are written back byte for
// byte, in their order, fields gc does not know included; the file is
// compact like output's; a live writer's temporary files stay, a dead
// writer's and ownerless ones (older versions') go, and so do unreferenced
// blobs written before gc ran; several tags of one digest go together.
func TestIndexJSONRewrite(t *testing.T) {
	l := newLayout(t)
	old := l.image(daysAgo(100), "a")
	keep1 := l.image(daysAgo(2), "b")
	keep2 := l.image(daysAgo(1), "c")
	l.entry(old, "old")
	l.entry(keep1, refName, "keep1", "org.example.note", "<&>")
	l.entry(old, "old-too")
	l.entry(keep2, "keep2")
	l.write()
	// An unknown field in an entry, kept as written.
	raw, _ := os.ReadFile(filepath.Join(l.dir, "index.json"))
	raw = bytes.Replace(raw, []byte(`"size":`), []byte(`"x-extra":{"b":1,"a":2},"size":`), -1)
	os.WriteFile(filepath.Join(l.dir, "index.json"), raw, 0o644)
	garbage := l.blob("application/octet-stream", []byte("garbage"))
	live := filepath.Join(l.dir, ".tmp-"+strconv.Itoa(os.Getpid())+"-1")
	os.Mkdir(live, 0o755)
	legacy := filepath.Join(l.dir, "blobs", "sha256", ".tmp-abc-123")
	os.WriteFile(legacy, []byte("left by a killed writer"), 0o644)
	dead := filepath.Join(l.dir, "blobs", "sha256", ".tmp-"+strconv.Itoa(deadPid(t))+"-2")
	os.WriteFile(dead, []byte("left by a killed writer"), 0o644)

	if _, err := Layout(context.Background(), l.dir, opts(30, 1)); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(l.dir, "index.json"))
	if !bytes.Contains(got, []byte(`"x-extra":{"b":1,"a":2}`)) || !bytes.Contains(got, []byte(`"org.example.note":"\u003c\u0026\u003e"`)) {
		t.Errorf("index.json lost what it held:\n%s", got)
	}
	if bytes.HasSuffix(got, []byte("\n")) || bytes.Contains(got, []byte("\n")) {
		t.Errorf("index.json is not compact:\n%s", got)
	}
	if got := l.indexEntries(); !slices.Equal(got, []string{"keep1", "keep2"}) {
		t.Errorf("index.json holds %v", got)
	}
	if l.has(garbage) {
		t.Error("an unreferenced blob stayed")
	}
	if _, err := os.Stat(live); err != nil {
		t.Error("gc removed a write in progress")
	}
	for _, p := range []string{legacy, dead} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("gc left debris %s", p)
		}
	}
	os.Remove(live)
	leftovers, _ := filepath.Glob(filepath.Join(l.dir, ".tmp-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// deadPid is the pid of a process that has exited.
func deadPid(t *testing.T) int {
	t.Helper()
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	return c.Process.Pid
}

// TestSignatureOfAbsentImageStays: a signature whose image is not in the
// layout is not gc's to judge.
func TestSignatureOfAbsentImageStays(t *testing.T) {
	l := newLayout(t)
	elsewhere := desc{Digest: digestOf("elsewhere")}
	sig := l.signature(elsewhere)
	l.entry(sig, sigTagOf(elsewhere, "sig"))
	l.entry(l.image(daysAgo(100), "a"), "old")
	l.entry(l.image(daysAgo(1), "b"), "new")
	l.write()
	r, err := Layout(context.Background(), l.dir, opts(30, 1))
	if err != nil {
		t.Fatal(err)
	}
	if it := itemFor(t, r.Kept, sig); !strings.Contains(it.Reason, "not here") {
		t.Errorf("the orphaned signature: %+v", it)
	}
}

func TestNotALayout(t *testing.T) {
	_, err := Layout(context.Background(), t.TempDir(), opts(30, 1))
	if fault.KindOf(err) != fault.BadInput {
		t.Errorf("a directory without oci-layout: %v (kind %v), want bad input", err, fault.KindOf(err))
	}
}

// TestRegistry runs gc against go-containerregistry's registry in memory:
// the old images and their signature tags are deleted through the API,
// the newest stays, a manifest of a deleted index goes too.
func TestRegistry(t *testing.T) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	repo, err := name.NewRepository(host + "/team/app")
	if err != nil {
		t.Fatal(err)
	}
	// Push a layout's content: the builder writes the blobs, the test
	// uploads them.
	l := newLayout(t)
	old := l.image(daysAgo(100), "a")
	oldChild := l.image(daysAgo(100), "child")
	oldIdx := l.index(oldChild)
	recent := l.image(daysAgo(1), "b")
	oldSig, recentSig := l.signature(old), l.signature(recent)
	push := func(tag string, d desc) {
		t.Helper()
		pushManifest(t, l, repo, tag, d)
	}
	push("old", old)
	push("old-index", oldIdx)
	push("new", recent)
	push(sigTagOf(old, "sig"), oldSig)
	push(sigTagOf(recent, "sig"), recentSig)

	o := opts(30, 1)
	r, err := Registry(context.Background(), repo, o)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := digests(r.Deleted), sorted(old.Digest, oldIdx.Digest, oldChild.Digest, oldSig.Digest); !slices.Equal(got, want) {
		t.Errorf("deleted %v, want %v", got, want)
	}
	// (This registry deletes a manifest by digest but keeps the tags
	// that named it; docker-registry drops them too, which the end-to-end
	// test checks.)
	for _, d := range []desc{old, oldIdx, oldChild, oldSig} {
		if _, err := remote.Get(repo.Digest(d.Digest)); err == nil {
			t.Errorf("%s is still there", d.Digest)
		}
	}
	for _, d := range []desc{recent, recentSig} {
		if _, err := remote.Get(repo.Digest(d.Digest)); err != nil {
			t.Errorf("%s went: %v", d.Digest, err)
		}
	}
}

// pushManifest uploads d (a manifest of l) and what it references to
// repo under tag.
func pushManifest(t *testing.T, l *layoutBuilder, repo name.Repository, tag string, d desc) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(l.dir, "blobs", "sha256", strings.TrimPrefix(d.Digest, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	json.Unmarshal(raw, &m)
	for _, c := range m.Manifests {
		pushManifest(t, l, repo, "", desc{MediaType: string(c.MediaType), Digest: c.Digest.String()})
	}
	for _, b := range append(m.Layers, func() []descriptorAlias {
		if m.Config != nil {
			return []descriptorAlias{*m.Config}
		}
		return nil
	}()...) {
		data, err := os.ReadFile(filepath.Join(l.dir, "blobs", "sha256", b.Digest.Hex))
		if err != nil {
			t.Fatal(err)
		}
		uploadBlob(t, repo, b.Digest.String(), data)
	}
	ref := repo.Digest(d.Digest).String()
	if tag != "" {
		ref = repo.Tag(tag).String()
	}
	putManifest(t, ref, d.MediaType, raw)
}

type descriptorAlias = v1.Descriptor

func uploadBlob(t *testing.T, repo name.Repository, digest string, data []byte) {
	t.Helper()
	l := static.NewLayer(data, types.MediaType("application/octet-stream"))
	if d, _ := l.Digest(); d.String() != digest {
		t.Fatalf("blob %s hashes to %s", digest, d)
	}
	if err := remote.WriteLayer(repo, l); err != nil {
		t.Fatal(err)
	}
}

type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

func putManifest(t *testing.T, ref, mt string, raw []byte) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(r, rawManifest{raw, types.MediaType(mt)}); err != nil {
		t.Fatal(err)
	}
}

// TestHugeKeepDaysKeepsEverything: --keep-days past what time.Duration
// holds (292 years) keeps every image; it once wrapped around into a
// cutoff in the future and deleted them.
func TestHugeKeepDaysKeepsEverything(t *testing.T) {
	for _, days := range []int{106752, 200000, 1000000, 1 << 40} {
		l := newLayout(t)
		l.entry(l.image(daysAgo(1000), "a"), "old")
		l.entry(l.image(daysAgo(1), "b"), "new")
		l.write()
		r, err := Layout(context.Background(), l.dir, opts(days, 0))
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Deleted) != 0 || !r.Cutoff.Before(now) {
			t.Errorf("--keep-days %d: deleted %v, cutoff %v", days, digests(r.Deleted), r.Cutoff)
		}
	}
}
