package gc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	layoutpkg "github.com/reprobuild/repro/pkg/layout"
)

const refName = "org.opencontainers.image.ref.name"

// Layout collects the OCI layout at dir: the entries of the images that go
// (and of their signatures and attestations) leave index.json, which is
// replaced atomically; then every blob that no remaining entry references
// is removed, and the temporary files of writers that were killed. The
// layout is locked (package layout's lock, which builds and signing take
// to commit) while it is read and changed. Builds in progress are safe:
// their blobs wait outside blobs/ until they commit (see package layout).
func Layout(ctx context.Context, dir string, o Options) (*Report, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return nil, imageref.NotLayout("oci:"+dir, dir)
	}
	lk, err := layoutpkg.Lock(ctx, dir, !o.DryRun)
	if err != nil {
		return nil, err
	}
	defer lk.Close()
	idx, err := lk.Index()
	if err != nil {
		return nil, err
	}
	entries := make([]v1.Descriptor, len(idx.Manifests))
	for i, e := range idx.Manifests {
		if err := json.Unmarshal(e.Raw(), &entries[i]); err != nil {
			return nil, fault.Bad(fmt.Errorf("oci:%s: index.json entry %d: %w", dir, i, err))
		}
	}
	l := &layout{dir: dir, log: o.Log}
	for _, e := range entries {
		if !manifestType(string(e.MediaType)) && e.MediaType != "" {
			continue
		}
		if raw, err := l.read(e.Digest); err == nil {
			if err := checkDepth(l, e.Digest, raw); err != nil {
				return nil, fmt.Errorf("oci:%s: %w", dir, err)
			}
		}
	}
	units := l.units(entries)
	plan(units, o)
	r := report("oci:"+dir, units, o)

	keep := map[int]bool{}
	for _, u := range units {
		for _, i := range u.entries {
			keep[i] = u.keep
		}
	}
	var kept []layoutpkg.Entry
	var keptDescs []v1.Descriptor
	for i, e := range idx.Manifests {
		if keep[i] {
			kept = append(kept, e)
			keptDescs = append(keptDescs, entries[i])
		}
	}
	reachable := l.reachable(keptDescs)
	all, err := lk.Blobs()
	if err != nil {
		return nil, err
	}
	for _, b := range all {
		h, err := v1.NewHash(b.Digest.String())
		if err != nil || !reachable[h] {
			r.Blobs = append(r.Blobs, Blob{Digest: b.Digest.String(), Size: b.Size})
		}
	}
	sort.Slice(r.Blobs, func(i, j int) bool { return r.Blobs[i].Digest < r.Blobs[j].Digest })
	for _, b := range r.Blobs {
		r.BlobBytes += b.Size
	}
	if o.DryRun {
		return r, nil
	}
	if len(kept) != len(idx.Manifests) {
		idx.Manifests = kept
		if err := lk.WriteIndex(idx); err != nil {
			return nil, err
		}
	}
	for _, b := range r.Blobs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := lk.RemoveBlob(digest.Digest(b.Digest)); err != nil {
			return nil, err
		}
	}
	debris, err := lk.Clean()
	for _, p := range debris {
		rel, rerr := filepath.Rel(filepath.Dir(filepath.Clean(dir)), p)
		if rerr != nil {
			rel = p
		}
		r.Debris = append(r.Debris, rel)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

type layout struct {
	dir string
	log *slog.Logger
}

func (l *layout) blobPath(h v1.Hash) string {
	return filepath.Join(l.dir, "blobs", h.Algorithm, h.Hex)
}

// maxManifest bounds a manifest or config read into memory.
const maxManifest = 16 << 20

func (l *layout) read(h v1.Hash) ([]byte, error) {
	p := l.blobPath(h)
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxManifest {
		return nil, fmt.Errorf("blob %s is %d bytes, too big for a manifest or config", h, fi.Size())
	}
	return os.ReadFile(p)
}

// units groups index.json's entries by digest and reads what gc needs of
// each: kind, created, children, and for signatures the image they belong
// to.
func (l *layout) units(entries []v1.Descriptor) []*unit {
	var units []*unit
	byDigest := map[v1.Hash]*unit{}
	for i, e := range entries {
		u := byDigest[e.Digest]
		if u == nil {
			u = &unit{digest: e.Digest, mediaType: string(e.MediaType)}
			byDigest[e.Digest] = u
			units = append(units, u)
		}
		u.entries = append(u.entries, i)
		if t := e.Annotations[refName]; t != "" {
			u.tags = append(u.tags, t)
		}
		if k := e.Annotations[cosignKind]; k != "" {
			u.cosign = k
		}
	}
	// The one image that cosign's layout format signs.
	var cosignSubject v1.Hash
	n := 0
	for _, u := range units {
		if u.cosign == cosignImage || u.cosign == cosignImageIndex {
			cosignSubject = u.digest
			n++
		}
	}
	for _, u := range units {
		u.classifyTags()
		l.describe(u)
		if u.signature() && u.subject == (v1.Hash{}) && (u.cosign == cosignSigs || u.cosign == cosignAtts || u.cosign == cosignSBOM) && n == 1 {
			u.subject = cosignSubject
		}
	}
	return units
}

// describe reads u's manifest from the layout.
func (l *layout) describe(u *unit) {
	raw, err := l.read(u.digest)
	if err != nil {
		u.undated = "its manifest cannot be read: " + err.Error()
		if u.kind == "" {
			u.kind = kindUnknown
		}
		return
	}
	describe(u, raw, l)
}

// reachable marks every blob that the entries reference, through indexes
// down to layers.
func (l *layout) reachable(entries []v1.Descriptor) map[v1.Hash]bool {
	seen := map[v1.Hash]bool{}
	var walk func(d v1.Descriptor)
	walk = func(d v1.Descriptor) {
		if seen[d.Digest] {
			return
		}
		seen[d.Digest] = true
		if !manifestType(string(d.MediaType)) && d.MediaType != "" {
			return
		}
		raw, err := l.read(d.Digest)
		if err != nil {
			return
		}
		m, err := parseManifest(raw)
		if err != nil {
			return
		}
		for _, c := range m.referenced() {
			walk(c)
		}
	}
	for _, e := range entries {
		walk(e)
	}
	return seen
}

// manifestType reports whether a descriptor's media type is a manifest's
// or an index's, whose references must be followed.
func manifestType(mt string) bool {
	return strings.Contains(mt, "manifest") || strings.Contains(mt, "index") ||
		mt == "application/vnd.docker.distribution.manifest.list.v2+json"
}

// source reads manifests and blobs (configs, signature payloads) by
// digest.
type source interface {
	manifest(v1.Hash) ([]byte, error)
	blob(v1.Hash) ([]byte, error)
}

func (l *layout) manifest(h v1.Hash) ([]byte, error) { return l.read(h) }
func (l *layout) blob(h v1.Hash) ([]byte, error)     { return l.read(h) }

// imageCreated reads an image manifest's config's created.
func imageCreated(m *manifest, src source) (*time.Time, string) {
	raw, err := src.blob(m.Config.Digest)
	if err != nil {
		return nil, "its config cannot be read: " + err.Error()
	}
	t, err := created(raw)
	if err != nil {
		if errors.Is(err, errNoCreated) {
			return nil, "its config has no created"
		}
		return nil, err.Error()
	}
	return &t, ""
}

// indexCreated is the newest created of an index's images; none when one
// of them has none, or when it holds no image.
func indexCreated(m *manifest, src source) (*time.Time, string) {
	var newest *time.Time
	for _, c := range m.Manifests {
		if c.Platform != nil && c.Platform.OS == "unknown" && c.Platform.Architecture == "unknown" {
			continue // an attestation manifest beside the images
		}
		raw, err := src.manifest(c.Digest)
		if err != nil {
			return nil, "its manifest " + c.Digest.String() + " cannot be read: " + err.Error()
		}
		cm, err := parseManifest(raw)
		if err != nil {
			return nil, "its manifest " + c.Digest.String() + ": " + err.Error()
		}
		var t *time.Time
		var why string
		switch {
		case cm.index():
			t, why = indexCreated(cm, src)
		case cm.Config != nil && imageConfig(string(cm.Config.MediaType)):
			t, why = imageCreated(cm, src)
		default:
			continue
		}
		if t == nil {
			return nil, "its image " + c.Digest.String() + ": " + why
		}
		if newest == nil || t.After(*newest) {
			newest = t
		}
	}
	if newest == nil {
		return nil, "it holds no image"
	}
	return newest, ""
}
