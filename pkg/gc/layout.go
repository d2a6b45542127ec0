package gc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/reprobuild/repro/internal/atomicfs"
	"github.com/reprobuild/repro/pkg/fault"
)

const refName = "org.opencontainers.image.ref.name"

// indexFile is index.json, its entries kept as written so that the ones
// that stay are rewritten byte for byte.
type indexFile struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Manifests     []json.RawMessage `json:"manifests"`
	Subject       json.RawMessage   `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// Layout collects the OCI layout at dir: the entries of the images that go
// (and of their signatures and attestations) leave index.json, which is
// replaced atomically; then every blob that no remaining entry references
// is removed. The layout is locked (the lock that builds and signing take)
// while it is read and changed; builds that write into it meanwhile wait
// for their commit, but blobs they have written and not yet committed look
// unreferenced, so do not collect a layout that a build is writing to.
func Layout(ctx context.Context, dir string, o Options) (*Report, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return nil, fault.Bad(fmt.Errorf("oci:%s: not an OCI layout (no oci-layout file)", dir))
	}
	unlock, err := atomicfs.LockDir(dir, !o.DryRun)
	if err != nil {
		return nil, err
	}
	defer unlock()
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, fault.Bad(fmt.Errorf("oci:%s: reading index.json: %w", dir, err))
	}
	var idx indexFile
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fault.Bad(fmt.Errorf("oci:%s: index.json is not valid JSON: %w", dir, err))
	}
	entries := make([]v1.Descriptor, len(idx.Manifests))
	for i, e := range idx.Manifests {
		if err := json.Unmarshal(e, &entries[i]); err != nil {
			return nil, fault.Bad(fmt.Errorf("oci:%s: index.json entry %d: %w", dir, i, err))
		}
	}
	l := &layout{dir: dir, log: o.Log}
	units := l.units(entries)
	plan(units, o)
	r := report("oci:"+dir, units, o)

	keep := map[int]bool{}
	for _, u := range units {
		for _, i := range u.entries {
			keep[i] = u.keep
		}
	}
	var kept []json.RawMessage
	var keptDescs []v1.Descriptor
	for i, e := range idx.Manifests {
		if keep[i] {
			kept = append(kept, e)
			keptDescs = append(keptDescs, entries[i])
		}
	}
	reachable := l.reachable(keptDescs)
	r.Blobs, err = l.unreferenced(reachable)
	if err != nil {
		return nil, err
	}
	for _, b := range r.Blobs {
		r.BlobBytes += b.Size
	}
	if o.DryRun {
		return r, nil
	}
	if len(kept) != len(idx.Manifests) {
		if kept == nil {
			kept = []json.RawMessage{}
		}
		idx.Manifests = kept
		if err := writeIndex(dir, &idx); err != nil {
			return nil, err
		}
	}
	for _, b := range r.Blobs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, _ := v1.NewHash(b.Digest)
		if err := os.Remove(l.blobPath(h)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fault.Op(fmt.Errorf("removing blob %s: %w", b.Digest, err))
		}
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

// unreferenced lists the layout's blobs that are not reachable, sorted.
// Files whose names start with a dot (writes in progress) are left alone.
func (l *layout) unreferenced(reachable map[v1.Hash]bool) ([]Blob, error) {
	root := filepath.Join(l.dir, "blobs")
	algs, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fault.Op(err)
	}
	var out []Blob
	for _, a := range algs {
		if !a.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(root, a.Name()))
		if err != nil {
			return nil, fault.Op(err)
		}
		for _, f := range files {
			if f.IsDir() || strings.HasPrefix(f.Name(), ".") {
				continue
			}
			h := v1.Hash{Algorithm: a.Name(), Hex: f.Name()}
			if reachable[h] {
				continue
			}
			fi, err := f.Info()
			if err != nil {
				return nil, fault.Op(err)
			}
			out = append(out, Blob{Digest: h.String(), Size: fi.Size()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Digest < out[j].Digest })
	return out, nil
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

// writeIndex replaces index.json atomically: a temporary file beside it,
// renamed over it. It is encoded as package output encodes it: compact,
// no HTML escaping, no trailing newline.
func writeIndex(dir string, idx *indexFile) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(idx); err != nil {
		return fault.Op(err)
	}
	data := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	path := filepath.Join(dir, "index.json")
	f, err := os.CreateTemp(dir, ".tmp-index.json-*")
	if err != nil {
		return fault.Op(err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fault.Op(err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fault.Op(err)
	}
	if err := f.Close(); err != nil {
		return fault.Op(err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return fault.Op(err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fault.Op(fmt.Errorf("replacing %s: %w", path, err))
	}
	return nil
}
