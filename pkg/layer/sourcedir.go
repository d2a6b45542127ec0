package layer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/reprobuild/repro/internal/glob"
)

// SourceDir is a build context: the directory that a spec's sources are
// read from. No source may leave it, by .. or through a symlink.
type SourceDir struct {
	dir  string // as given, for messages
	root string // absolute, symlinks resolved
}

// SourceError is a source that cannot be used: outside the context,
// missing, or of a kind a layer cannot hold.
type SourceError struct{ Msg string }

func (e *SourceError) Error() string { return e.Msg }

func sourceErr(format string, args ...any) error {
	return &SourceError{Msg: fmt.Sprintf(format, args...)}
}

// OpenSourceDir opens dir as a build context.
func OpenSourceDir(dir string) (*SourceDir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	root, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("opening build context: %w", err)
	}
	return &SourceDir{dir: dir, root: root}, nil
}

// Root is the context's absolute, symlink-free path.
func (c *SourceDir) Root() string { return c.root }

// Attrs are the owner and mode a source's entries get.
type Attrs struct {
	// Mode, when set, is the mode of regular files; otherwise a file is
	// 0755 when its owner-exec bit is set and 0644 when not.
	Mode     *uint32
	UID, GID int
	// Xattrs go on regular files.
	Xattrs map[string]string
}

func (a Attrs) fileMode(fi fs.FileInfo) uint32 {
	if a.Mode != nil {
		return *a.Mode
	}
	if fi.Mode().Perm()&0o100 != 0 {
		return 0o755
	}
	return 0o644
}

// resolve finds source rel (slash-separated, relative to the context) on
// disk, following symlinks only while they stay inside the context.
func (c *SourceDir) resolve(rel string) (string, fs.FileInfo, error) {
	clean := path.Clean(strings.TrimSuffix(rel, "/"))
	if path.IsAbs(rel) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", nil, sourceErr("%q leaves the build context %s; sources must be inside the directory holding the spec", rel, c.dir)
	}
	full := filepath.Join(c.root, filepath.FromSlash(clean))
	resolved, err := filepath.EvalSymlinks(full)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", nil, sourceErr("%q does not exist in the build context %s", rel, c.dir)
		case errors.Is(err, fs.ErrPermission):
			return "", nil, err
		}
		// A symlink loop (EvalSymlinks gives up after 255 links, or the
		// kernel says ELOOP), or a path through something that is not a
		// directory: the source is wrong, not the machine.
		return "", nil, sourceErr("%q cannot be resolved in the build context %s (%v); a symlink on its way may point to itself", rel, c.dir, err)
	}
	if !within(c.root, resolved) {
		return "", nil, sourceErr("%q resolves through a symlink to %s, outside the build context %s; copy the file into the context", rel, resolved, c.dir)
	}
	fi, err := os.Lstat(resolved)
	if err != nil {
		return "", nil, err
	}
	return resolved, fi, nil
}

func within(root, p string) bool {
	if p == root {
		return true
	}
	return strings.HasPrefix(p, strings.TrimSuffix(root, string(filepath.Separator))+string(filepath.Separator))
}

// Check reports whether source rel can be used, as Source would find it,
// without reading a directory's tree: it must exist inside the context
// and be a regular file or a directory (exclude only for a directory). Its
// complaints are SourceErrors. It is cheap: a build checks every source
// with it before anything is fetched.
func (c *SourceDir) Check(rel string, exclude bool) error {
	_, fi, err := c.resolve(rel)
	if err != nil {
		return err
	}
	switch {
	case fi.Mode().IsRegular():
		if exclude {
			return sourceErr("%q is a file; exclude is only for directories", rel)
		}
		return nil
	case fi.IsDir():
		return nil
	}
	return sourceErr("%q is a %s; a layer can hold regular files, directories and symlinks only", rel, kindOf(fi))
}

// Source returns the entries for source rel placed at dest: one regular
// file, or, for a directory, the whole tree less what exclude matches.
func (c *SourceDir) Source(rel, dest string, exclude []string, a Attrs) ([]Entry, error) {
	full, fi, err := c.resolve(rel)
	if err != nil {
		return nil, err
	}
	switch {
	case fi.Mode().IsRegular():
		if len(exclude) > 0 {
			return nil, sourceErr("%q is a file; exclude is only for directories", rel)
		}
		return []Entry{fileEntry(full, dest, fi, a)}, nil
	case fi.IsDir():
		return c.tree(rel, full, dest, exclude, a)
	}
	return nil, sourceErr("%q is a %s; a layer can hold regular files, directories and symlinks only", rel, kindOf(fi))
}

func fileEntry(full, dest string, fi fs.FileInfo, a Attrs) Entry {
	return Entry{
		Path: dest, Type: Regular, Mode: a.fileMode(fi), UID: a.UID, GID: a.GID,
		Xattrs: a.Xattrs, Size: fi.Size(), HostPath: full, HostInfo: fi,
		Open: func() (io.ReadCloser, error) { return openRegular(full) },
	}
}

func kindOf(fi fs.FileInfo) string {
	m := fi.Mode()
	switch {
	case m&fs.ModeDevice != 0 && m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	}
	return "special file"
}

// tree lists the directory full (the source rel) and everything under
// it, less what exclude matches, as entries placed at dest. Directories
// are listed, and their entries stat'ed, by up to walkers goroutines at
// once; the results are put together in the order filepath.WalkDir visits
// them, so the entries and the first error are those a serial walk gives.
func (c *SourceDir) tree(rel, full, dest string, exclude []string, a Attrs) ([]Entry, error) {
	w := &walker{rel: strings.TrimSuffix(rel, "/"), dest: dest, exclude: exclude, a: a, sem: make(chan struct{}, walkers)}
	root := w.start(full, "")
	entries := []Entry{{Path: dest, Type: Dir, Mode: 0o755, UID: a.UID, GID: a.GID}}
	err := w.collect(root, &entries)
	w.stop.Store(true)
	w.wg.Wait()
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// walkers is how many directories are listed at once.
const walkers = 4

type walker struct {
	rel, dest string
	exclude   []string
	a         Attrs
	sem       chan struct{}
	stop      atomic.Bool // set once collect is done: list no more
	wg        sync.WaitGroup
}

// walkDir is one directory's listing, in name order.
type walkDir struct {
	items []walkItem
	err   error // the error that ended the listing, after items
	done  chan struct{}
}

type walkItem struct {
	entry Entry
	sub   *walkDir // a directory's own listing
}

var errWalkStopped = errors.New("walk stopped")

// start lists dir, at r (slash-separated, relative to the source), on a
// goroutine of its own.
func (w *walker) start(dir, r string) *walkDir {
	d := &walkDir{done: make(chan struct{})}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer close(d.done)
		w.sem <- struct{}{}
		defer func() { <-w.sem }()
		if w.stop.Load() {
			d.err = errWalkStopped
			return
		}
		d.err = w.list(d, dir, r)
	}()
	return d
}

func (w *walker) list(d *walkDir, dir, r string) error {
	// Entries are stat'ed relative to the directory (fstatat), not by
	// their full paths: the kernel resolves one name, not every parent;
	// a directory, which the listing says is one, is not stat'ed at all.
	fd, err := openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	bp := direntBufs.Get().(*[]byte)
	des, err := readDir(fd, dir, *bp)
	direntBufs.Put(bp)
	if err != nil {
		return err
	}
	slices.SortFunc(des, func(a, b dirent) int { return strings.Compare(a.name, b.name) })
	d.items = make([]walkItem, 0, len(des))
	for _, de := range des {
		p := filepath.Join(dir, de.name)
		cr := de.name
		if r != "" {
			cr = r + "/" + de.name
		}
		// A listing without types (DT_UNKNOWN: XFS without ftype, some
		// network and overlay file systems) is lstat'ed before the
		// exclude patterns are tried: "cache/" matches directories only.
		var fi fs.FileInfo
		isDir := de.typ == unix.DT_DIR
		if de.typ == unix.DT_UNKNOWN {
			if fi, err = lstatAt(fd, dir, de.name); err != nil {
				return err
			}
			isDir = fi.IsDir()
		}
		if excluded(w.exclude, cr, isDir) {
			continue
		}
		target := path.Join(w.dest, cr)
		shown := cr
		if w.rel != "" && w.rel != "." {
			shown = path.Join(w.rel, cr)
		}
		if de.typ == unix.DT_DIR {
			e := Entry{Path: target, Type: Dir, Mode: 0o755, UID: w.a.UID, GID: w.a.GID, Origin: shown}
			d.items = append(d.items, walkItem{entry: e, sub: w.start(p, cr)})
			continue
		}
		if fi == nil {
			if fi, err = lstatAt(fd, dir, de.name); err != nil {
				return err
			}
		}
		switch {
		case fi.Mode().IsRegular():
			e := fileEntry(p, target, fi, w.a)
			e.Origin = shown
			d.items = append(d.items, walkItem{entry: e})
		case fi.IsDir():
			e := Entry{Path: target, Type: Dir, Mode: 0o755, UID: w.a.UID, GID: w.a.GID, Origin: shown}
			d.items = append(d.items, walkItem{entry: e, sub: w.start(p, cr)})
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := readlinkAt(fd, dir, de.name)
			if err != nil {
				return err
			}
			e := Entry{Path: target, Type: Symlink, Mode: 0o777, UID: w.a.UID, GID: w.a.GID, Target: t, Origin: shown}
			d.items = append(d.items, walkItem{entry: e})
		default:
			return sourceErr("%s in the build context is a %s; a layer can hold regular files, directories and symlinks only; remove it or exclude it", shown, kindOf(fi))
		}
	}
	return nil
}

// direntBufs are the walk's getdents buffers: 32 KiB lists most
// directories in one call.
var direntBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// collect appends d's entries, and its subdirectories', to out in walk
// order, and returns the first error in that order.
func (w *walker) collect(d *walkDir, out *[]Entry) error {
	<-d.done
	for _, it := range d.items {
		*out = append(*out, it.entry)
		if it.sub != nil {
			if err := w.collect(it.sub, out); err != nil {
				return err
			}
		}
	}
	return d.err
}

// excluded reports whether rel (slash-separated, relative to the copied
// directory) matches any pattern, under package glob's rules.
func excluded(patterns []string, rel string, isDir bool) bool {
	for _, p := range patterns {
		if glob.Match(p, rel, isDir) {
			return true
		}
	}
	return false
}

// MatchGlob reports whether rel matches pattern under exclude's rules.
func MatchGlob(pattern, rel string, isDir bool) bool { return glob.Match(pattern, rel, isDir) }

// FileEntry is the entry for a regular file outside any context, such as
// one in the cache. Its mode is a.Mode, or defaultMode.
func FileEntry(full, dest string, a Attrs, defaultMode uint32) ([]Entry, error) {
	fi, err := os.Stat(full)
	if err != nil {
		return nil, err
	}
	if a.Mode == nil {
		a.Mode = &defaultMode
	}
	return []Entry{fileEntry(full, dest, fi, a)}, nil
}

// Resolved is the slash-separated path, relative to the context, that
// source rel resolves to (through a symlink named as the source, to its
// target): the path whose history says when the source last changed.
func (c *SourceDir) Resolved(rel string) (string, error) {
	full, _, err := c.resolve(rel)
	if err != nil {
		return "", err
	}
	r, err := filepath.Rel(c.root, full)
	if err != nil {
		return "", err
	}
	if r == "." {
		return "", nil
	}
	return filepath.ToSlash(r), nil
}

// ExcludedPath reports whether the file rel (slash-separated, relative to
// a copied directory) is left out of the copy by patterns: it, or one of
// its parent directories, matches, as the walk leaves them out. It holds
// for paths that no longer exist, such as those a git history names.
func ExcludedPath(patterns []string, rel string) bool {
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' && excluded(patterns, rel[:i], true) {
			return true
		}
	}
	return excluded(patterns, rel, false)
}
