package rootfs

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/reprobuild/repro/pkg/fault"
)

// Kind is a file's type.
type Kind string

const (
	Regular  Kind = "file"
	Dir      Kind = "dir"
	Symlink  Kind = "symlink"
	Hardlink Kind = "hardlink"
	CharDev  Kind = "chardev"
	BlockDev Kind = "blockdev"
	FIFO     Kind = "fifo"
	Whiteout Kind = "whiteout" // only in a layer's own entries
	Opaque   Kind = "opaque"   // only in a layer's own entries
)

// File is one path of a layer or of the final filesystem.
type File struct {
	Path     string            `json:"path"` // absolute, clean
	Kind     Kind              `json:"type"`
	Mode     int64             `json:"mode"` // permission bits, setuid, setgid, sticky
	UID      int               `json:"uid"`
	GID      int               `json:"gid"`
	Size     int64             `json:"size,omitempty"`
	SHA256   string            `json:"sha256,omitempty"` // regular files
	Link     string            `json:"link,omitempty"`   // symlink target, or hard link target path
	ModTime  time.Time         `json:"mtime"`
	Xattrs   map[string]string `json:"xattrs,omitempty"`
	Devmajor int64             `json:"devmajor,omitempty"`
	Devminor int64             `json:"devminor,omitempty"`
	// Layer is the index of the layer the file comes from.
	Layer int `json:"layer"`
}

// FS is a final filesystem.
type FS struct {
	files map[string]*File
}

// Files returns every file, sorted by path.
func (f *FS) Files() []*File {
	out := make([]*File, 0, len(f.files))
	for _, x := range f.files {
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Get returns the file at p.
func (f *FS) Get(p string) (*File, bool) {
	x, ok := f.files[p]
	return x, ok
}

// Len is the number of files.
func (f *FS) Len() int { return len(f.files) }

func clean(name string) string {
	return path.Clean("/" + strings.TrimPrefix(name, "./"))
}

// entry converts a tar header to a File, hashing the content from r.
func entry(h *tar.Header, r io.Reader, layer int, hash bool) (*File, error) {
	f := &File{
		Path: clean(h.Name), Mode: h.Mode & 0o7777, UID: h.Uid, GID: h.Gid,
		ModTime: h.ModTime.UTC(), Layer: layer, Devmajor: h.Devmajor, Devminor: h.Devminor,
	}
	for k, v := range h.PAXRecords {
		if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if f.Xattrs == nil {
				f.Xattrs = map[string]string{}
			}
			f.Xattrs[x] = v
		}
	}
	base := path.Base(f.Path)
	switch {
	case base == ".wh..wh..opq":
		f.Kind, f.Path = Opaque, path.Dir(f.Path)
		return f, nil
	case strings.HasPrefix(base, ".wh."):
		f.Kind, f.Path = Whiteout, path.Join(path.Dir(f.Path), strings.TrimPrefix(base, ".wh."))
		return f, nil
	}
	switch h.Typeflag {
	//lint:ignore SA1019 old archives still carry TypeRegA, and it means a regular file
	case tar.TypeReg, tar.TypeRegA:
		f.Kind, f.Size = Regular, h.Size
		if hash {
			s := sha256.New()
			if _, err := io.Copy(s, r); err != nil {
				return nil, fmt.Errorf("reading %s: %w", f.Path, err)
			}
			f.SHA256 = hex.EncodeToString(s.Sum(nil))
		}
	case tar.TypeDir:
		f.Kind = Dir
	case tar.TypeSymlink:
		f.Kind, f.Link = Symlink, h.Linkname
	case tar.TypeLink:
		f.Kind, f.Link = Hardlink, clean(h.Linkname)
	case tar.TypeChar:
		f.Kind = CharDev
	case tar.TypeBlock:
		f.Kind = BlockDev
	case tar.TypeFifo:
		f.Kind = FIFO
	default:
		return nil, nil // pax globals and the like: not files
	}
	return f, nil
}

// LayerFiles lists a layer's own entries, whiteouts included, in the
// layer's order. Regular files are hashed.
func LayerFiles(ctx context.Context, l v1.Layer, index int) ([]*File, error) {
	var out []*File
	err := eachEntry(ctx, l, func(h *tar.Header, r io.Reader) error {
		f, err := entry(h, r, index, true)
		if err != nil || f == nil {
			return err
		}
		out = append(out, f)
		return nil
	})
	return out, err
}

// EachEntry calls fn with each tar entry of l and a reader of its content,
// within the limits of this package: cancellation is checked inside an
// entry, the layer may not expand past MaxLayerSize, nor its sparse entries
// claim more than MaxHoles of holes. Headers that do not parse are bad
// input. The stream is drained to its end, so a digest-verifying reader
// sees it all.
func EachEntry(ctx context.Context, l v1.Layer, fn func(*tar.Header, io.Reader) error) error {
	return eachEntry(ctx, l, fn)
}

func eachEntry(ctx context.Context, l v1.Layer, fn func(*tar.Header, io.Reader) error) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	s := &stream{ctx: ctx, r: rc, max: MaxLayerSize}
	tr := tar.NewReader(s)
	var holes int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			// Drain, so a digest-verifying reader sees the end.
			_, err = io.Copy(io.Discard, s)
			return err
		}
		if err != nil {
			return badTar(err)
		}
		c := &content{ctx: ctx, r: tr, s: s, start: s.n, holes: &holes}
		err = fn(h, c)
		c.done()
		if err != nil {
			return err
		}
	}
}

// badTar classifies an error of the tar reader: a header that does not
// parse is bad input (the image is wrong, and fetching it again will not
// help); an error of its own (a limit, cancellation, the source) keeps its
// class.
func badTar(err error) error {
	if errors.Is(err, tar.ErrHeader) || errors.Is(err, tar.ErrFieldTooLong) || errors.Is(err, tar.ErrInsecurePath) {
		return fault.Bad(fmt.Errorf("its tar stream is not valid: %w", err))
	}
	return err
}

// apply puts layer i's entries onto fs, the way an overlay mount stacks
// it: an opaque directory hides everything below it from lower layers, a
// whiteout hides a path and everything under it, and an entry replaces
// what a lower layer had at its path.
func (fs *FS) apply(entries []*File, i int) {
	removeUnder := func(p string, self bool) {
		prefix := p + "/"
		if p == "/" {
			prefix = "/"
		}
		for q, f := range fs.files {
			if f.Layer >= i {
				continue
			}
			if (self && q == p) || strings.HasPrefix(q, prefix) {
				delete(fs.files, q)
			}
		}
	}
	for _, e := range entries {
		switch e.Kind {
		case Opaque:
			removeUnder(e.Path, false)
		case Whiteout:
			removeUnder(e.Path, true)
		}
	}
	for _, e := range entries {
		if e.Kind == Opaque || e.Kind == Whiteout {
			continue
		}
		if old, ok := fs.files[e.Path]; ok && old.Kind == Dir && e.Kind != Dir {
			removeUnder(e.Path, false) // a file replacing a directory hides its tree
		}
		fs.files[e.Path] = e
	}
}

// Read flattens img's layers into the final filesystem, hashing regular
// files.
func Read(ctx context.Context, img v1.Image) (*FS, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	all := make([][]*File, len(layers))
	for i, l := range layers {
		entries, err := LayerFiles(ctx, l, i)
		if err != nil {
			d, _ := l.Digest()
			return nil, fmt.Errorf("reading layer %d (%s): %w", i, d, err)
		}
		all[i] = entries
	}
	return Flatten(all), nil
}

// Walk calls fn for every file of fs, in layer order, with its content
// (an empty reader for anything but a regular file). fs must come from
// Read of the same image.
func Walk(ctx context.Context, img v1.Image, fs *FS, fn func(f *File, r io.Reader) error) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	byLayer := make([]int, len(layers))
	for _, f := range fs.files {
		if f.Layer < len(byLayer) {
			byLayer[f.Layer]++
		}
	}
	for i, l := range layers {
		if byLayer[i] == 0 {
			continue
		}
		err := eachEntry(ctx, l, func(h *tar.Header, r io.Reader) error {
			p := clean(h.Name)
			f, ok := fs.files[p]
			if !ok || f.Layer != i {
				return nil
			}
			if f.Kind != Regular {
				return fn(f, strings.NewReader(""))
			}
			return fn(f, r)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Flatten stacks layers' entries (as LayerFiles returns them, in image
// order) into the final filesystem. The entries are copied, with Layer set
// to their position here, so one layer's entries may be shared between
// images.
func Flatten(layers [][]*File) *FS {
	fs := &FS{files: map[string]*File{}}
	for i, entries := range layers {
		own := make([]*File, len(entries))
		for j, e := range entries {
			c := *e
			c.Layer = i
			own[j] = &c
		}
		fs.apply(own, i)
	}
	return fs
}
