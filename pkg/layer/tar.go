package layer

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/pkg/compress"
)

// Options fix what a layer's bytes depend on besides its entries.
type Options struct {
	// Format is the output format; it must be one compress knows.
	Format compress.Format
	// Epoch is the layer's epoch, in seconds since 1970: in format 1
	// every entry's mtime; in format 2 the mtime of every entry that
	// carries none of its own, and the bound of those that do.
	Epoch int64
	// Compression is the layer's compression.
	Compression compress.Algorithm
	// Progress, when set, is called with the number of uncompressed bytes
	// written so far, every few MiB and once at the end.
	Progress func(written int64)
	// Observe, when set, is given each regular file's content as it is
	// read (the secret guard reads it there, before compression); Done
	// is called after the file's last byte. Files are read ahead on
	// several goroutines, so Observe is called concurrently, each
	// Observer from one goroutine at a time.
	Observe func(e *Entry) Observer
}

// Observer watches one file's content go by.
type Observer interface {
	io.Writer
	Done()
}

// WholeObserver is an Observer that can also be given a file's whole
// content at once, in place of Write and Done, and need not copy it.
type WholeObserver interface {
	Observer
	Whole(content []byte)
}

// WriteTar writes entries to w as a canonical tar stream, every mtime
// epoch (the entries' own MTime ignored, as format 1 does): the tar of
// files that are not layers, such as an oci-archive.
func WriteTar(ctx context.Context, w io.Writer, entries []Entry, epoch int64) error {
	return writeTar(ctx, w, entries, compress.Format1, epoch, nil)
}

// WriteFormatTar writes entries to w as the canonical tar stream of a
// layer of format f whose epoch is epoch.
func WriteFormatTar(ctx context.Context, w io.Writer, entries []Entry, f compress.Format, epoch int64) error {
	if !f.Known() {
		return fmt.Errorf("unknown output format %d", int(f))
	}
	return writeTar(ctx, w, entries, f, epoch, nil)
}

// TarRule says, in a line, how format f's tar rule sets mtimes (the rest
// of the rule is the same in every format; doc.go has it all).
func TarRule(f compress.Format) string {
	if f == compress.Format1 {
		return "sorted canonical tar (pkg/layer doc), every mtime the build's epoch"
	}
	return "sorted canonical tar (pkg/layer doc), every mtime the layer's own epoch, or an entry's own (a .deb's) clamped to it"
}

// entryMTime is n's mtime under the tar rule of format f: the layer's
// epoch, or in format 2 the entry's own mtime clamped to [0, epoch].
func entryMTime(n *node, f compress.Format, epoch int64) int64 {
	if f == compress.Format1 || n.MTime == nil {
		return epoch
	}
	return max(0, min(*n.MTime, epoch))
}

func writeTar(ctx context.Context, w io.Writer, entries []Entry, f compress.Format, epoch int64, observe func(*Entry) Observer) error {
	nodes, err := canonical(entries)
	if err != nil {
		return err
	}
	ahead := startPrefetch(ctx, nodes, observe)
	defer ahead.stop()
	tw := tar.NewWriter(w)
	buf := make([]byte, 256<<10) // one copy buffer for the files streamed
	for _, n := range nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr := &tar.Header{
			Name:  n.name,
			Mode:  int64(n.Mode & 0o7777), // permission bits only: the type is in Typeflag
			Uid:   n.UID,
			Gid:   n.GID,
			Uname: "", // names would tie the layer to the build host's databases
			Gname: "",
			// Whole seconds from the tar rule, never the file's own
			// mtime on disk.
			ModTime: time.Unix(entryMTime(n, f, epoch), 0).UTC(),
			Format:  tar.FormatPAX,
		}
		switch n.Type {
		case Regular:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = n.Size
		case Dir:
			hdr.Typeflag = tar.TypeDir
		case Symlink:
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = n.Target
		case Hardlink:
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = n.linkname
		case Whiteout:
			hdr.Typeflag = tar.TypeReg
			hdr.Mode = 0o644
			hdr.Uid, hdr.Gid = 0, 0
		}
		if len(n.Xattrs) > 0 {
			hdr.PAXRecords = make(map[string]string, len(n.Xattrs))
			for k, v := range n.Xattrs {
				hdr.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		// A file read ahead is taken before its header is written, so
		// that a file that cannot be read leaves the stream as it was.
		var content *[]byte
		if prefetchable(n) {
			if content, err = ahead.next(n); err != nil {
				return err
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("writing %s: %w", n.Path, err)
		}
		switch {
		case content != nil:
			_, err := tw.Write((*content)[:n.Size])
			ahead.done(n, content)
			if err != nil {
				return fmt.Errorf("writing %s: %w", n.Path, err)
			}
		case n.Type == Regular && n.Size > 0:
			var dst io.Writer = tw
			var obs Observer
			if observe != nil {
				obs = observe(&n.Entry)
				dst = io.MultiWriter(tw, obs)
			}
			if err := copyContent(ctx, dst, &n.Entry, buf); err != nil {
				return err
			}
			if obs != nil {
				obs.Done()
			}
		case n.Type == Regular && observe != nil:
			observe(&n.Entry).Done() // empty files still have names that rules read
		}
	}
	return tw.Close()
}

// copyContent streams e's content to w.
func copyContent(ctx context.Context, w io.Writer, e *Entry, buf []byte) error {
	if e.Open == nil {
		return fmt.Errorf("%s: no content", describe(e))
	}
	r, err := e.Open()
	if err != nil {
		return fmt.Errorf("reading %s: %w", describe(e), err)
	}
	defer r.Close()
	n, err := io.CopyBuffer(w, io.LimitReader(ctxReader{ctx, r}, e.Size), buf)
	if err != nil {
		var se *sinkError
		if errors.As(err, &se) || errors.Is(err, ctx.Err()) && ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("reading %s: %w", describe(e), err)
	}
	return checkLength(r, e, n)
}

// ctxReader stops a long copy when ctx is done: a big file streamed into
// a layer is read a buffer at a time, and each read checks.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// File is a layer written to a file. It implements v1.Layer.
type File struct {
	path      string
	digest    v1.Hash
	diffID    v1.Hash
	size      int64
	algorithm compress.Algorithm
}

var _ v1.Layer = (*File)(nil)

// Write writes entries as a compressed canonical layer to a new file in
// dir. The tar stream is hashed and compressed as it is produced; the
// compressed bytes go straight to the file. On error no file is left.
func Write(ctx context.Context, entries []Entry, dir string, opts Options) (*File, error) {
	f, err := os.CreateTemp(dir, "layer-*.tmp")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	digest := sha256.New()
	counter := &countWriter{}
	bw := bufio.NewWriterSize(io.MultiWriter(f, digest, counter), 1<<20)
	diffID, err := compressTar(ctx, bw, entries, opts)
	if err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	l := &File{
		digest:    hashOf(digest),
		diffID:    diffID,
		size:      counter.n,
		algorithm: opts.Compression,
	}
	l.path = filepath.Join(dir, "sha256-"+l.digest.Hex)
	if err := os.Rename(f.Name(), l.path); err != nil {
		return nil, err
	}
	ok = true
	return l, nil
}

// compressTar writes entries as a canonical tar stream, compressed, to w
// and returns the stream's diff ID. The tar is written on this goroutine;
// the diff ID is hashed and the stream compressed on the compressor's.
func compressTar(ctx context.Context, w io.Writer, entries []Entry, opts Options) (v1.Hash, error) {
	if !opts.Format.Known() {
		return v1.Hash{}, fmt.Errorf("unknown output format %d", int(opts.Format))
	}
	diffID := sha256.New()
	zw, err := compress.NewTeeWriter(w, opts.Compression, opts.Format, diffID)
	if err != nil {
		return v1.Hash{}, err
	}
	var sink io.Writer = sinkWriter{zw}
	var progress *progressWriter
	if opts.Progress != nil {
		progress = &progressWriter{w: sink, report: opts.Progress}
		sink = progress
	}
	if err := writeTar(ctx, sink, entries, opts.Format, opts.Epoch, opts.Observe); err != nil {
		zw.Close()
		// The compressor's destination failing (a full disk) shows up
		// at whichever file is written next: say what failed, not that
		// innocent file.
		var se *sinkError
		if errors.As(err, &se) {
			return v1.Hash{}, fmt.Errorf("writing the layer: %w", se.err)
		}
		return v1.Hash{}, err
	}
	if err := zw.Close(); err != nil {
		return v1.Hash{}, fmt.Errorf("writing the layer: %w", err)
	}
	if progress != nil {
		opts.Progress(progress.n)
	}
	return hashOf(diffID), nil
}

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
}

type countWriter struct{ n int64 }

// sinkWriter marks the errors of the writer under the tar stream, so that
// they are told apart from the errors of reading the files.
type sinkWriter struct{ w io.Writer }

type sinkError struct{ err error }

func (e *sinkError) Error() string { return e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

func (s sinkWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil {
		err = &sinkError{err}
	}
	return n, err
}

// progressWriter reports the bytes written through it every 4 MiB.
type progressWriter struct {
	w      io.Writer
	n      int64
	next   int64
	report func(int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	if p.n >= p.next {
		p.report(p.n)
		p.next = p.n + 4<<20
	}
	return n, err
}

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// Path is the file holding the compressed layer.
func (l *File) Path() string { return l.path }

func (l *File) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *File) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *File) Size() (int64, error)     { return l.size, nil }
func (l *File) MediaType() (types.MediaType, error) {
	return types.MediaType(l.algorithm.MediaType()), nil
}
func (l *File) Compressed() (io.ReadCloser, error) { return os.Open(l.path) }
func (l *File) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	r, err := compress.NewReader(f, l.algorithm)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &readCloser{Reader: r, close: func() error { r.Close(); return f.Close() }}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r *readCloser) Close() error { return r.close() }

// CapabilityXattr encodes file capabilities as the value of the
// security.capability xattr, revision 2 (VFS_CAP_REVISION_2): the given
// capabilities permitted and effective, none inheritable.
func CapabilityXattr(caps []int) (string, error) {
	var permitted [2]uint32
	sorted := append([]int(nil), caps...)
	sort.Ints(sorted)
	for _, c := range sorted {
		if c < 0 || c >= 64 {
			return "", errors.New("capability number out of range")
		}
		permitted[c/32] |= 1 << (c % 32)
	}
	const revision2, effective = 0x02000000, 0x000001
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], revision2|effective)
	binary.LittleEndian.PutUint32(b[4:], permitted[0])  // permitted, low
	binary.LittleEndian.PutUint32(b[8:], 0)             // inheritable, low
	binary.LittleEndian.PutUint32(b[12:], permitted[1]) // permitted, high
	binary.LittleEndian.PutUint32(b[16:], 0)            // inheritable, high
	return string(b), nil
}

// Existing is a layer already written, compressed with alg, in the file
// at path, whose digest, diff ID and size are known (a layer cache hit):
// nothing is read or recompressed.
func Existing(path string, digest, diffID v1.Hash, size int64, alg compress.Algorithm) *File {
	return &File{path: path, digest: digest, diffID: diffID, size: size, algorithm: alg}
}
