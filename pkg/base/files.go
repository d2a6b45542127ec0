package base

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/rootfs"
)

// File is one path of a base's final filesystem, as Files reads it.
type File struct {
	Path string
	// Type is the tar type flag: tar.TypeReg, tar.TypeDir, tar.TypeSymlink...
	// A hard link to a file that Files also returns reads as that file.
	Type     byte
	Mode     int64
	UID, GID int
	Linkname string
	// Data is a regular file's content.
	Data []byte
}

// maxFilesData bounds what Files holds in memory: it is meant for small
// files (dpkg status, /etc/passwd).
const maxFilesData = 256 << 20

// Files reads the base's layers, each decompressed as it streams past
// (gzip, zstd or none), and returns the paths for which match is true as
// the final filesystem has them: a later layer's entry replaces an
// earlier one's, whiteouts and opaque directories hide what is under
// them, and a non-directory hides the tree of a directory it replaces.
// Paths are absolute and clean. The layers' bytes are only read: the
// image keeps them as published.
func (img *Image) Files(ctx context.Context, match func(p string) bool) (map[string]*File, error) {
	out := map[string]*File{}
	// dirs holds every ancestor directory of a path in out, so that an
	// entry that may hide some of them is noticed cheaply.
	dirs := map[string]bool{}
	var held int64
	for i, l := range img.Layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var added []*File
		var hide []string // paths (and their trees) hidden from lower layers
		var opaque []string
		err := eachBaseEntry(ctx, l, func(h *tar.Header, r io.Reader) error {
			p := path.Clean("/" + h.Name)
			dir, name := path.Split(p)
			dir = path.Clean(dir)
			switch {
			case name == ".wh..wh..opq":
				opaque = append(opaque, dir)
				return nil
			case strings.HasPrefix(name, ".wh."):
				hide = append(hide, path.Join(dir, strings.TrimPrefix(name, ".wh.")))
				return nil
			}
			if h.Typeflag != tar.TypeDir && dirs[p] {
				// A non-directory replaces a directory: its tree goes.
				hide = append(hide, p)
			}
			if p == "/" || !match(p) {
				return nil
			}
			f := &File{Path: p, Type: h.Typeflag, Mode: h.Mode & 0o7777, UID: h.Uid, GID: h.Gid, Linkname: h.Linkname}
			switch h.Typeflag {
			case tar.TypeReg:
				f.Type = tar.TypeReg
				if held += h.Size; held > maxFilesData {
					return fmt.Errorf("%s: the files asked for hold more than %d MiB", p, maxFilesData>>20)
				}
				data, err := io.ReadAll(r)
				if err != nil {
					return err
				}
				f.Data = data
			case tar.TypeLink:
				t := path.Clean("/" + h.Linkname)
				for _, a := range added {
					if a.Path == t && a.Type == tar.TypeReg {
						f.Type, f.Data, f.Linkname = tar.TypeReg, a.Data, ""
					}
				}
			}
			added = append(added, f)
			return nil
		})
		if err != nil {
			return nil, fault.Op(fmt.Errorf("reading base layer %d: %w", i, err))
		}
		for _, d := range opaque {
			removeTree(out, d, false)
		}
		for _, p := range hide {
			removeTree(out, p, true)
		}
		for _, f := range added {
			if old, ok := out[f.Path]; ok && old.Type == tar.TypeDir && f.Type != tar.TypeDir {
				removeTree(out, f.Path, false)
			}
			out[f.Path] = f
			for d := path.Dir(f.Path); d != "/"; d = path.Dir(d) {
				dirs[d] = true
			}
		}
	}
	return out, nil
}

// removeTree deletes what is under p from files, and p itself when self.
func removeTree(files map[string]*File, p string, self bool) {
	prefix := p + "/"
	if p == "/" {
		prefix = "/"
	}
	for q := range files {
		if (self && q == p) || strings.HasPrefix(q, prefix) {
			delete(files, q)
		}
	}
}

// eachBaseEntry streams the tar entries of a base layer, decompressed by
// what its first bytes say it is, within rootfs's limits (MaxLayerSize,
// --max-layer-size; sparse holes; cancellation inside an entry), as every
// other reader of an image's layers is.
func eachBaseEntry(ctx context.Context, l v1.Layer, fn func(*tar.Header, io.Reader) error) error {
	return rootfs.EachEntry(ctx, sniffed{l}, fn)
}

// sniffed is a layer whose Uncompressed decompresses its blob by what its
// first bytes say (gzip, zstd, else a plain tar), not by its media type.
type sniffed struct{ v1.Layer }

func (l sniffed) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(rc, 1<<20)
	magic, _ := br.Peek(4)
	var zr io.ReadCloser
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err = gzip.NewReader(br)
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err = compress.NewReader(br, compress.Zstd)
	default:
		return closeBoth{io.NopCloser(br), rc}, nil // the bytes peeked at too
	}
	if err != nil {
		rc.Close()
		return nil, err
	}
	return closeBoth{zr, rc}, nil
}

// closeBoth reads a decompressor and closes it and the blob under it.
type closeBoth struct {
	io.ReadCloser
	under io.Closer
}

func (c closeBoth) Close() error {
	err := c.ReadCloser.Close()
	if e := c.under.Close(); err == nil {
		err = e
	}
	return err
}

// Paths returns the keys of files, sorted.
func Paths(files map[string]*File) []string {
	out := make([]string, 0, len(files))
	for p := range files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// EachFile streams every regular file of every layer of the base, in
// layer order, with its content: for reports (the secret guard's
// --scan-base) that look at what each layer carries, hidden or not.
func (img *Image) EachFile(ctx context.Context, fn func(layer int, path string, r io.Reader) error) error {
	for i, l := range img.Layers {
		err := eachBaseEntry(ctx, l, func(h *tar.Header, r io.Reader) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if h.Typeflag != tar.TypeReg {
				return nil
			}
			return fn(i, path.Clean("/"+h.Name), r)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
