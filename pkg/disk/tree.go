package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/rootfs"
)

// Skipped is a path of the image that the disk does not carry, and why.
type Skipped struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// node is one path of the disk's filesystem.
type node struct {
	path string // absolute, clean; "/" for the root
	kind rootfs.Kind
	// Metadata, from the image (a hard link carries its group's file's).
	mode     int64 // permission bits, setuid, setgid, sticky
	uid, gid int
	mtime    time.Time
	xattrs   map[string]string
	size     int64  // regular files
	link     string // symlink target
	linkTo   *node  // a hard link: the regular file it shares an inode with
	devmajor int64
	devminor int64
	implied  bool  // a parent directory the image does not list
	written  bool  // a regular file whose content Walk delivered
	got      int64 // the bytes it delivered, the last time
	nonzero  int64 // of which not in holes
}

// rel is n's path relative to the root of the tree.
func (n *node) rel() string {
	if n.path == "/" {
		return "."
	}
	return n.path[1:]
}

// plan is the filesystem that the disk will hold, in path order (byte
// order: a parent comes before its children).
type plan struct {
	nodes   []*node
	byPath  map[string]*node
	skipped []Skipped
	// dataBytes is the apparent size of the regular files, each hard-link
	// group counted once.
	dataBytes int64
	// dataWritten is what the regular files hold apart from holes.
	dataWritten int64
	epoch       time.Time       // for implied directories
	bad         map[string]bool // skipped paths: their trees go too
}

const (
	maxName     = 255  // bytes in one path component (ext4, erofs, squashfs)
	maxPath     = 4000 // bytes in a path: debugfs reads commands into 8 KiB lines
	maxSymlink  = 4095 // bytes in a symlink target
	maxHardlink = 16   // hops through hard links to hard links
)

// newPlan decides, for every file of fs, whether and how the disk carries
// it. Nothing here touches the host.
func newPlan(fs *rootfs.FS, epoch time.Time) *plan {
	p := &plan{byPath: map[string]*node{}, epoch: epoch, bad: map[string]bool{}}
	root := &node{path: "/", kind: rootfs.Dir, mode: 0o755, mtime: epoch, implied: true}
	p.add(root)
	var links []*rootfs.File
	for _, f := range fs.Files() {
		if f.Path == "/" {
			if f.Kind != rootfs.Dir {
				p.skip(f.Path, fmt.Sprintf("the root is a %s, not a directory", f.Kind))
				continue
			}
			root.mode, root.uid, root.gid, root.mtime, root.xattrs, root.implied = f.Mode, f.UID, f.GID, f.ModTime, f.Xattrs, false
			continue
		}
		if why := p.parentProblem(f.Path); why != "" {
			p.skip(f.Path, why)
			continue
		}
		if why := nameProblem(f.Path); why != "" {
			p.skip(f.Path, why)
			continue
		}
		if f.UID < 0 || int64(f.UID) > 0xffffffff || f.GID < 0 || int64(f.GID) > 0xffffffff {
			p.skip(f.Path, fmt.Sprintf("owner %d:%d out of range", f.UID, f.GID))
			continue
		}
		if f.Path == "/lost+found" && f.Kind != rootfs.Dir {
			p.skip(f.Path, "mke2fs reserves /lost+found for a directory")
			continue
		}
		n := &node{path: f.Path, kind: f.Kind, mode: f.Mode & 0o7777, uid: f.UID, gid: f.GID, mtime: f.ModTime, xattrs: f.Xattrs}
		switch f.Kind {
		case rootfs.Dir:
		case rootfs.Regular:
			n.size = f.Size
			if f.Size < 0 {
				p.skip(f.Path, "negative size")
				continue
			}
		case rootfs.Symlink:
			n.link = f.Link
			switch {
			case f.Link == "":
				p.skip(f.Path, "a symlink with an empty target")
				continue
			case len(f.Link) > maxSymlink:
				p.skip(f.Path, fmt.Sprintf("a symlink target of %d bytes (at most %d)", len(f.Link), maxSymlink))
				continue
			case strings.IndexByte(f.Link, 0) >= 0:
				p.skip(f.Path, "a symlink target with a NUL byte")
				continue
			}
		case rootfs.CharDev, rootfs.BlockDev, rootfs.FIFO:
			n.devmajor, n.devminor = f.Devmajor, f.Devminor
			if f.Devmajor < 0 || f.Devminor < 0 || f.Devmajor > 0xfff || f.Devminor > 0xfffff {
				p.skip(f.Path, fmt.Sprintf("device number %d:%d out of range", f.Devmajor, f.Devminor))
				continue
			}
		case rootfs.Hardlink:
			links = append(links, f) // once every regular file is known
			continue
		default:
			p.skip(f.Path, fmt.Sprintf("a %s cannot go on a disk", f.Kind))
			continue
		}
		p.add(n)
	}
	for _, f := range links {
		target, why := p.resolveLink(fs, f)
		if why != "" {
			p.skip(f.Path, why)
			continue
		}
		p.add(&node{path: f.Path, kind: rootfs.Hardlink, linkTo: target})
	}
	// Hard links were added last; keep path order.
	sort.Slice(p.nodes, func(i, j int) bool { return p.nodes[i].path < p.nodes[j].path })
	for _, n := range p.nodes {
		if n.kind == rootfs.Regular {
			p.dataBytes += n.size
		}
	}
	return p
}

func (p *plan) add(n *node) {
	p.nodes = append(p.nodes, n)
	p.byPath[n.path] = n
}

func (p *plan) skip(path, why string) {
	p.bad[path] = true
	p.skipped = append(p.skipped, Skipped{Path: path, Reason: why})
}

// parentProblem says why the parents of name cannot hold it, creating
// implied parent directories where the image lists none.
func (p *plan) parentProblem(name string) string {
	dir := path.Dir(name)
	var missing []string
	for dir != "/" {
		if p.bad[dir] {
			return "its parent " + dir + " is skipped"
		}
		if n, ok := p.byPath[dir]; ok {
			if n.kind != rootfs.Dir {
				return fmt.Sprintf("its parent %s is a %s, not a directory", dir, n.kind)
			}
			break
		}
		missing = append(missing, dir)
		dir = path.Dir(dir)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if why := nameProblem(missing[i]); why != "" {
			return why
		}
		p.add(&node{path: missing[i], kind: rootfs.Dir, mode: 0o755, mtime: p.epoch, implied: true})
	}
	return ""
}

// nameProblem says why a path cannot go on a disk.
func nameProblem(name string) string {
	if len(name) > maxPath {
		return fmt.Sprintf("a path of %d bytes (at most %d)", len(name), maxPath)
	}
	base := path.Base(name)
	switch {
	case len(base) > maxName:
		return fmt.Sprintf("a name of %d bytes (at most %d)", len(base), maxName)
	case strings.ContainsAny(base, "\n\r"):
		// debugfs reads its commands line by line.
		return "a name with a line break"
	case strings.IndexByte(base, 0) >= 0:
		return "a name with a NUL byte"
	}
	return ""
}

// resolveLink finds the regular file that hard link f shares an inode with.
func (p *plan) resolveLink(fs *rootfs.FS, f *rootfs.File) (*node, string) {
	target := f.Link
	for range maxHardlink {
		t, ok := fs.Get(target)
		if !ok {
			return nil, "a hard link to " + target + ", which is not in the image"
		}
		if t.Kind == rootfs.Hardlink {
			target = t.Link
			continue
		}
		if t.Kind != rootfs.Regular {
			return nil, fmt.Sprintf("a hard link to %s, a %s (only regular files may be hard-linked)", target, t.Kind)
		}
		n, ok := p.byPath[target]
		if !ok || n.kind != rootfs.Regular {
			return nil, "a hard link to " + target + ", which is skipped"
		}
		return n, ""
	}
	return nil, "a chain of more than 16 hard links"
}

// checkFits refuses an image whose files cannot fit in fsBytes, before
// anything is written.
func (p *plan) checkFits(fsBytes, sizeFlag int64) error {
	if p.dataBytes > fsBytes {
		return fault.Bad(fmt.Errorf("the image's files add up to %s (by apparent size, sparse files included), more than the %s filesystem of a %s disk (%w)",
			human(p.dataBytes), human(fsBytes), human(sizeFlag), ErrTooSmall))
	}
	return nil
}

// write creates the plan's directories, regular files, symlinks and hard
// links under dir, which must be empty. Every operation goes through an
// os.Root, so that no path, symlink or hard link can reach outside dir,
// and no symlink is ever followed: the plan guarantees that every parent
// is a directory created here. Modes are fixed (0700 directories, 0600
// files) whatever the umask; the image's modes and owners are applied to
// the filesystem afterwards. Device nodes are never created on the host.
// Regular files get their content from rootfs.Walk; runs of zero bytes
// become holes.
func (p *plan) write(ctx context.Context, dir string, img v1.Image, fs *rootfs.FS) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fault.Op(err)
	}
	defer root.Close()
	if err := root.Chmod(".", 0o700); err != nil {
		return fault.Op(err)
	}
	dirs := &dirCache{top: root}
	defer dirs.close()
	for _, n := range p.nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		if n.path == "/" {
			continue
		}
		parent, name, err := dirs.get(n)
		if err != nil {
			return fault.Op(fmt.Errorf("creating %s: %w", n.path, err))
		}
		switch n.kind {
		case rootfs.Dir:
			if err := parent.Mkdir(name, 0o700); err != nil {
				return fault.Op(fmt.Errorf("creating %s: %w", n.path, err))
			}
			if err := parent.Chmod(name, 0o700); err != nil { // whatever the umask
				return fault.Op(err)
			}
		case rootfs.Symlink:
			if err := parent.Symlink(n.link, name); err != nil {
				return fault.Op(fmt.Errorf("creating symlink %s: %w", n.path, err))
			}
		}
	}
	buf := make([]byte, 1<<20)
	err = rootfs.Walk(ctx, img, fs, func(f *rootfs.File, r io.Reader) error {
		n, ok := p.byPath[f.Path]
		if !ok || n.kind != rootfs.Regular || f.Kind != rootfs.Regular {
			return nil
		}
		parent, name, err := dirs.get(n)
		if err != nil {
			return fault.Op(fmt.Errorf("writing %s: %w", n.path, err))
		}
		// Created here, once (O_EXCL): nothing that was there before, a
		// symlink least of all, is ever written through. A layer may hold
		// a path twice; the last entry wins, as in rootfs.
		flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
		if n.written {
			flags = os.O_WRONLY | os.O_TRUNC
		}
		w, err := parent.OpenFile(name, flags, 0o600)
		if err != nil {
			return fault.Op(fmt.Errorf("writing %s: %w", n.path, err))
		}
		got, nonzero, err := copySparse(w, r, buf)
		if err == nil {
			err = w.Truncate(got)
		}
		if err == nil {
			err = w.Chmod(0o600) // whatever the umask
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", n.path, err)
		}
		if n.written {
			p.dataWritten -= n.nonzero
		}
		n.written, n.got, n.nonzero = true, got, nonzero
		p.dataWritten += nonzero
		return nil
	})
	if err != nil {
		return err
	}
	for _, n := range p.nodes {
		if n.kind != rootfs.Regular {
			continue
		}
		if n.got != n.size {
			return fmt.Errorf("%s: its layer holds %d bytes, the image lists %d", n.path, n.got, n.size)
		}
		if !n.written { // empty, and never delivered
			parent, name, err := dirs.get(n)
			if err == nil {
				var w *os.File
				if w, err = parent.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
					err = w.Close()
				}
			}
			if err != nil {
				return fault.Op(fmt.Errorf("creating %s: %w", n.path, err))
			}
		}
	}
	for _, n := range p.nodes {
		if n.kind != rootfs.Hardlink {
			continue
		}
		if err := root.Link(n.linkTo.rel(), n.rel()); err != nil {
			return fault.Op(fmt.Errorf("creating hard link %s: %w", n.path, err))
		}
	}
	return nil
}

// dirCache keeps the last few directories of the tree open as roots of
// their own, so that creating a file resolves one name rather than its
// whole path. Each is opened through the top root (os.Root.OpenRoot), so
// it is as contained as the top.
type dirCache struct {
	top   *os.Root
	open  map[string]*os.Root
	order []string
}

const dirCacheSize = 32

// get returns the open parent directory of n and n's name in it.
func (c *dirCache) get(n *node) (*os.Root, string, error) {
	dir, name := path.Split(n.path)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		return c.top, name, nil
	}
	if r, ok := c.open[dir]; ok {
		return r, name, nil
	}
	r, err := c.top.OpenRoot(dir[1:])
	if err != nil {
		return nil, "", err
	}
	if c.open == nil {
		c.open = map[string]*os.Root{}
	}
	if len(c.order) >= dirCacheSize {
		c.open[c.order[0]].Close()
		delete(c.open, c.order[0])
		c.order = c.order[1:]
	}
	c.open[dir] = r
	c.order = append(c.order, dir)
	return r, name, nil
}

func (c *dirCache) close() {
	for _, r := range c.open {
		r.Close()
	}
}

// copySparse copies r to w, seeking over blocks of zeros so that they
// become holes. It returns the bytes read and the bytes written.
func copySparse(w *os.File, r io.Reader, buf []byte) (total, nonzero int64, err error) {
	const block = 4096
	var off int64
	for {
		n, rerr := io.ReadFull(r, buf)
		data := buf[:n]
		for len(data) > 0 {
			k := min(block, len(data))
			chunk := data[:k]
			if !isZero(chunk) {
				// Extend the run of non-zero blocks, to write it at once.
				for k < len(data) {
					next := min(k+block, len(data))
					if isZero(data[k:next]) {
						break
					}
					k = next
				}
				chunk = data[:k]
				if _, err := w.WriteAt(chunk, off); err != nil {
					return total, nonzero, err
				}
				nonzero += int64(k)
			}
			off += int64(k)
			data = data[k:]
		}
		total += int64(n)
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			return total, nonzero, nil
		}
		if rerr != nil {
			return total, nonzero, rerr
		}
	}
}

var zeros = make([]byte, 4096)

func isZero(b []byte) bool {
	for len(b) > 0 {
		k := min(len(b), len(zeros))
		if !bytes.Equal(b[:k], zeros[:k]) {
			return false
		}
		b = b[k:]
	}
	return true
}

func human(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/(1<<20), n)
	}
	return fmt.Sprintf("%d bytes", n)
}
