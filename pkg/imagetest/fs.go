package imagetest

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/reprobuild/repro/pkg/rootfs"
)

// tree answers questions about an image's final filesystem, as a process
// in a container of the image would see it: symbolic links are followed
// inside the image (never on the host), hard links are the file they link
// to, and a directory that a layer implies by holding paths under it,
// without an entry of its own, exists as the runtime creates it (0755,
// root).
type tree struct {
	fs       *rootfs.FS
	implicit map[string]bool
}

func newTree(fsys *rootfs.FS) *tree {
	t := &tree{fs: fsys, implicit: map[string]bool{}}
	for _, f := range fsys.Files() {
		for d := path.Dir(f.Path); d != "/" && d != "."; d = path.Dir(d) {
			if _, ok := fsys.Get(d); ok || t.implicit[d] {
				break
			}
			t.implicit[d] = true
		}
	}
	return t
}

var (
	errNotExist = fs.ErrNotExist
	errNotDir   = errors.New("not a directory")
	errLoop     = errors.New("too many levels of symbolic links")
)

// get returns the entry at the clean absolute path p, without following
// a symbolic link there. A hard link gives the file it links to.
func (t *tree) get(p string) *rootfs.File {
	if f, ok := t.fs.Get(p); ok {
		if f.Kind == rootfs.Hardlink {
			if target, ok := t.fs.Get(f.Link); ok && target.Kind != rootfs.Hardlink {
				return target
			}
		}
		return f
	}
	if p == "/" || t.implicit[p] {
		return &rootfs.File{Path: p, Kind: rootfs.Dir, Mode: 0o755}
	}
	return nil
}

// lookup resolves p the way the kernel does: every symbolic link on the
// way is followed, relative targets from the link's directory; the last
// component's link too when follow is set. It returns the path reached and
// its entry.
func (t *tree) lookup(p string, follow bool) (string, *rootfs.File, error) {
	comps := split(p)
	cur := "/"
	hops := 0
	for i := 0; i < len(comps); i++ {
		next := path.Join(cur, comps[i])
		f := t.get(next)
		if f == nil {
			return next, nil, errNotExist
		}
		last := i == len(comps)-1
		if f.Kind == rootfs.Symlink && (!last || follow) {
			if hops++; hops > 40 {
				return next, nil, errLoop
			}
			target := f.Link
			if !path.IsAbs(target) {
				target = path.Join(cur, target)
			}
			comps = append(split(target), comps[i+1:]...)
			cur, i = "/", -1
			continue
		}
		if !last && f.Kind != rootfs.Dir {
			return next, nil, errNotDir
		}
		cur = next
	}
	return cur, t.get(cur), nil
}

func split(p string) []string {
	p = path.Clean("/" + p)
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

// mode is f's fs.FileMode, as Go's archive/tar gives it for the entry: the
// type bits, the permission bits and setuid, setgid and sticky.
func mode(f *rootfs.File) fs.FileMode {
	h := &tar.Header{Mode: f.Mode}
	switch f.Kind {
	case rootfs.Dir:
		h.Typeflag = tar.TypeDir
	case rootfs.Symlink:
		h.Typeflag = tar.TypeSymlink
	case rootfs.CharDev:
		h.Typeflag = tar.TypeChar
	case rootfs.BlockDev:
		h.Typeflag = tar.TypeBlock
	case rootfs.FIFO:
		h.Typeflag = tar.TypeFifo
	default:
		h.Typeflag = tar.TypeReg
	}
	return h.FileInfo().Mode()
}

// maxContent bounds a file read for a content test.
const maxContent = 256 << 20

// contents reads the files at the given final paths (entries of fs, as
// lookup returned them) in one pass over the layers. The caller keeps
// files above maxContent out of paths.
func contents(ctx context.Context, img v1.Image, fsys *rootfs.FS, paths map[string]bool) (map[string][]byte, error) {
	out := map[string][]byte{}
	if len(paths) == 0 {
		return out, nil
	}
	err := rootfs.Walk(ctx, img, fsys, func(f *rootfs.File, r io.Reader) error {
		if !paths[f.Path] || f.Kind != rootfs.Regular {
			return nil
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("reading %s: %w", f.Path, err)
		}
		out[f.Path] = b
		return nil
	})
	return out, err
}
