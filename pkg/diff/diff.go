package diff

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/rootfs"
)

// Report is every difference between A and B.
type Report struct {
	Identical bool           `json:"identical"`
	A         Side           `json:"a"`
	B         Side           `json:"b"`
	Index     []Field        `json:"index,omitempty"`
	Platforms []PlatformDiff `json:"platforms"`
}

// Side names one of the compared images.
type Side struct {
	Ref       string `json:"ref"`
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
}

// Field is one differing JSON field; A or B is null when absent.
type Field struct {
	Field string `json:"field"`
	A     any    `json:"a"`
	B     any    `json:"b"`
}

// PlatformDiff is what differs for one platform.
type PlatformDiff struct {
	Platform   string       `json:"platform"`
	A          string       `json:"a"`
	B          string       `json:"b"`
	Manifest   []Field      `json:"manifest,omitempty"`
	Config     []Field      `json:"config,omitempty"`
	Layers     []LayerDiff  `json:"layers,omitempty"`
	Files      []FileDiff   `json:"files,omitempty"`
	LayerFiles []LayerFiles `json:"layerFiles,omitempty"`
}

// Layer describes one layer.
type Layer struct {
	Digest    string `json:"digest"`
	DiffID    string `json:"diffID"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
}

// Layer changes.
const (
	LayerAdded           = "added"
	LayerRemoved         = "removed"
	LayerReordered       = "reordered"
	LayerChanged         = "changed"
	LayerCompressionOnly = "compression-only"
)

// LayerDiff is one layer position that differs.
type LayerDiff struct {
	Index  int    `json:"index"`
	Change string `json:"change"`
	A      *Layer `json:"a,omitempty"`
	B      *Layer `json:"b,omitempty"`
}

// FileDiff is one path that differs.
type FileDiff struct {
	Path   string       `json:"path"`
	Change string       `json:"change"` // added, removed, changed
	Fields []string     `json:"fields,omitempty"`
	A      *rootfs.File `json:"a,omitempty"`
	B      *rootfs.File `json:"b,omitempty"`
}

// LayerFiles are the entry differences of the layers at one position.
type LayerFiles struct {
	Index int        `json:"index"`
	Files []FileDiff `json:"files"`
}

// Compare explains every difference between a and b.
func Compare(ctx context.Context, a, b *imageref.Artifact, aRef, bRef string) (*Report, error) {
	r := &Report{
		A: Side{Ref: aRef, Digest: a.Descriptor.Digest.String(), MediaType: string(a.Descriptor.MediaType)},
		B: Side{Ref: bRef, Digest: b.Descriptor.Digest.String(), MediaType: string(b.Descriptor.MediaType)},
	}
	c := &comparer{layers: map[v1.Hash]*layerEntries{}}
	pa, err := platforms(a)
	if err != nil {
		return nil, err
	}
	pb, err := platforms(b)
	if err != nil {
		return nil, err
	}
	if a.Index != nil && b.Index != nil {
		ra, _ := a.Index.RawManifest()
		rb, _ := b.Index.RawManifest()
		r.Index, err = jsonFields(ra, rb, map[string]bool{"manifests": true})
		if err != nil {
			return nil, err
		}
	}
	// A single image against an index compares with the index's image of
	// the same platform; that one is an image and the other an index of
	// these platforms is a difference of its own, said first.
	if (a.Index == nil) != (b.Index == nil) {
		r.Index = append(r.Index,
			Field{Field: "mediaType", A: r.A.MediaType, B: r.B.MediaType},
			Field{Field: "platforms", A: keys(pa), B: keys(pb)})
	}
	if len(pa) == 1 && len(pb) > 1 {
		for k := range pa {
			pa = map[string]v1.Image{k: pa[k]}
			if img, ok := pb[k]; ok {
				pb = map[string]v1.Image{k: img}
			}
		}
	} else if len(pb) == 1 && len(pa) > 1 {
		for k := range pb {
			if img, ok := pa[k]; ok {
				pa = map[string]v1.Image{k: img}
			}
		}
	}
	var names []string
	seen := map[string]bool{}
	for k := range pa {
		names, seen[k] = append(names, k), true
	}
	for k := range pb {
		if !seen[k] {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	// Single images whose platforms differ still compare with each other.
	if len(pa) == 1 && len(pb) == 1 && len(names) == 2 {
		pd, err := c.image(ctx, names[0]+" vs "+names[1], pa[names[0]], pb[names[1]])
		if err != nil {
			return nil, err
		}
		r.Platforms = append(r.Platforms, *pd)
	} else {
		for _, name := range names {
			pd, err := c.image(ctx, name, pa[name], pb[name])
			if err != nil {
				return nil, err
			}
			r.Platforms = append(r.Platforms, *pd)
		}
	}
	r.Identical = r.A.Digest == r.B.Digest
	if !r.Identical && len(r.Index) == 0 {
		// Different digests with nothing found below would be a bug in
		// this package; report the digests at least.
		empty := true
		for _, p := range r.Platforms {
			if !p.empty() {
				empty = false
			}
		}
		if empty {
			r.Index = append(r.Index, Field{Field: "digest", A: r.A.Digest, B: r.B.Digest})
		}
	}
	return r, nil
}

// keys are m's keys, sorted.
func keys(m map[string]v1.Image) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (p PlatformDiff) empty() bool {
	return p.A == p.B && len(p.Manifest)+len(p.Config)+len(p.Layers)+len(p.Files)+len(p.LayerFiles) == 0
}

// platforms are a's images by platform; an index entry that names none
// is "#n", its place among the index's images.
func platforms(a *imageref.Artifact) (map[string]v1.Image, error) {
	imgs, err := a.PlatformImages("") // nested indexes too, to imageref.MaxIndexDepth
	if err != nil {
		return nil, err
	}
	out := map[string]v1.Image{}
	for i, p := range imgs {
		key := p.Platform
		if key == "" && a.Index != nil {
			key = "#" + strconv.Itoa(i)
		}
		out[key] = p.Image
	}
	return out, nil
}

// comparer reads each distinct layer once.
type comparer struct {
	mu     sync.Mutex
	layers map[v1.Hash]*layerEntries
}

type layerEntries struct {
	once    sync.Once
	entries []*rootfs.File
	err     error
}

func (c *comparer) entries(ctx context.Context, l v1.Layer) ([]*rootfs.File, error) {
	id, err := l.DiffID()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	le, ok := c.layers[id]
	if !ok {
		le = &layerEntries{}
		c.layers[id] = le
	}
	c.mu.Unlock()
	le.once.Do(func() { le.entries, le.err = rootfs.LayerFiles(ctx, l, 0) })
	return le.entries, le.err
}

func describe(l v1.Layer) (Layer, error) {
	d, err := partial.Descriptor(l)
	if err != nil {
		return Layer{}, err
	}
	id, err := l.DiffID()
	if err != nil {
		return Layer{}, err
	}
	return Layer{Digest: d.Digest.String(), DiffID: id.String(), MediaType: string(d.MediaType), Size: d.Size}, nil
}

func (c *comparer) image(ctx context.Context, platform string, a, b v1.Image) (*PlatformDiff, error) {
	pd := &PlatformDiff{Platform: platform}
	if a != nil {
		d, err := a.Digest()
		if err != nil {
			return nil, err
		}
		pd.A = d.String()
	}
	if b != nil {
		d, err := b.Digest()
		if err != nil {
			return nil, err
		}
		pd.B = d.String()
	}
	if a == nil || b == nil || pd.A == pd.B {
		return pd, nil
	}
	ma, _ := a.RawManifest()
	mb, _ := b.RawManifest()
	var err error
	if pd.Manifest, err = jsonFields(ma, mb, map[string]bool{"layers": true, "config": true}); err != nil {
		return nil, err
	}
	ca, _ := a.RawConfigFile()
	cb, _ := b.RawConfigFile()
	if pd.Config, err = jsonFields(ca, cb, map[string]bool{"rootfs": true}); err != nil {
		return nil, err
	}
	la, err := a.Layers()
	if err != nil {
		return nil, err
	}
	lb, err := b.Layers()
	if err != nil {
		return nil, err
	}
	da := make([]Layer, len(la))
	db := make([]Layer, len(lb))
	for i, l := range la {
		if da[i], err = describe(l); err != nil {
			return nil, err
		}
	}
	for i, l := range lb {
		if db[i], err = describe(l); err != nil {
			return nil, err
		}
	}
	pd.Layers = layerDiffs(da, db)
	// Files: the flattened trees, and each changed layer pair's own entries.
	ea := make([][]*rootfs.File, len(la))
	eb := make([][]*rootfs.File, len(lb))
	for i, l := range la {
		if ea[i], err = c.entries(ctx, l); err != nil {
			return nil, fmt.Errorf("reading layer %d of %s: %w", i, pd.A, err)
		}
	}
	for i, l := range lb {
		if eb[i], err = c.entries(ctx, l); err != nil {
			return nil, fmt.Errorf("reading layer %d of %s: %w", i, pd.B, err)
		}
	}
	pd.Files = fileDiffs(rootfs.Flatten(ea).Files(), rootfs.Flatten(eb).Files())
	for i := 0; i < len(da) && i < len(db); i++ {
		if da[i].DiffID == db[i].DiffID {
			continue
		}
		if fd := fileDiffs(sorted(ea[i]), sorted(eb[i])); len(fd) > 0 {
			pd.LayerFiles = append(pd.LayerFiles, LayerFiles{Index: i, Files: fd})
		}
	}
	return pd, nil
}

func sorted(fs []*rootfs.File) []*rootfs.File {
	out := append([]*rootfs.File(nil), fs...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

func layerDiffs(a, b []Layer) []LayerDiff {
	var out []LayerDiff
	// Same layers in another order: say so rather than listing changes.
	if len(a) == len(b) && len(a) > 1 {
		ids := func(ls []Layer) []string {
			s := make([]string, len(ls))
			for i, l := range ls {
				s[i] = l.DiffID
			}
			sort.Strings(s)
			return s
		}
		same := true
		for i := range a {
			if a[i].DiffID != b[i].DiffID {
				same = false
			}
		}
		if !same && reflect.DeepEqual(ids(a), ids(b)) {
			for i := range a {
				if a[i].DiffID != b[i].DiffID {
					out = append(out, LayerDiff{Index: i, Change: LayerReordered, A: &a[i], B: &b[i]})
				}
			}
			return out
		}
	}
	for i := 0; i < len(a) || i < len(b); i++ {
		switch {
		case i >= len(a):
			out = append(out, LayerDiff{Index: i, Change: LayerAdded, B: &b[i]})
		case i >= len(b):
			out = append(out, LayerDiff{Index: i, Change: LayerRemoved, A: &a[i]})
		case a[i] == b[i]:
		case a[i].DiffID == b[i].DiffID:
			out = append(out, LayerDiff{Index: i, Change: LayerCompressionOnly, A: &a[i], B: &b[i]})
		default:
			out = append(out, LayerDiff{Index: i, Change: LayerChanged, A: &a[i], B: &b[i]})
		}
	}
	return out
}

// fileDiffs compares two path-sorted file lists.
func fileDiffs(a, b []*rootfs.File) []FileDiff {
	var out []FileDiff
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j >= len(b) || (i < len(a) && a[i].Path < b[j].Path):
			out = append(out, FileDiff{Path: a[i].Path, Change: "removed", A: a[i]})
			i++
		case i >= len(a) || b[j].Path < a[i].Path:
			out = append(out, FileDiff{Path: b[j].Path, Change: "added", B: b[j]})
			j++
		default:
			if f := fileFields(a[i], b[j]); len(f) > 0 {
				out = append(out, FileDiff{Path: a[i].Path, Change: "changed", Fields: f, A: a[i], B: b[j]})
			}
			i++
			j++
		}
	}
	return out
}

func fileFields(a, b *rootfs.File) []string {
	var f []string
	if a.Kind != b.Kind {
		f = append(f, "type")
	}
	if a.SHA256 != b.SHA256 || a.Size != b.Size {
		f = append(f, "content")
	}
	if a.Mode != b.Mode {
		f = append(f, "mode")
	}
	if a.UID != b.UID || a.GID != b.GID {
		f = append(f, "owner")
	}
	if !a.ModTime.Equal(b.ModTime) {
		f = append(f, "mtime")
	}
	if !reflect.DeepEqual(a.Xattrs, b.Xattrs) && (len(a.Xattrs) > 0 || len(b.Xattrs) > 0) {
		f = append(f, "xattrs")
	}
	if a.Link != b.Link {
		f = append(f, "link")
	}
	if a.Devmajor != b.Devmajor || a.Devminor != b.Devminor {
		f = append(f, "device")
	}
	return f
}

// jsonFields flattens two JSON documents to field paths and lists the
// paths whose values differ, skipping the top-level keys in skip.
func jsonFields(a, b []byte, skip map[string]bool) ([]Field, error) {
	fa, fb := map[string]any{}, map[string]any{}
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		return nil, err
	}
	flatten("", va, fa, skip)
	flatten("", vb, fb, skip)
	keys := map[string]bool{}
	for k := range fa {
		keys[k] = true
	}
	for k := range fb {
		keys[k] = true
	}
	var out []Field
	for k := range keys {
		x, okA := fa[k]
		y, okB := fb[k]
		if okA && okB && reflect.DeepEqual(x, y) {
			continue
		}
		out = append(out, Field{Field: k, A: x, B: y})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out, nil
}

func flatten(prefix string, v any, out map[string]any, skip map[string]bool) {
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 0 && prefix != "" {
			out[prefix] = t
		}
		for k, x := range t {
			if prefix == "" && skip[k] {
				continue
			}
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(p, x, out, skip)
		}
	case []any:
		if len(t) == 0 {
			out[prefix] = t
		}
		for i, x := range t {
			flatten(fmt.Sprintf("%s[%d]", prefix, i), x, out, skip)
		}
	default:
		out[prefix] = v
	}
}
