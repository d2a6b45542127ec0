package layout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/internal/atomicfs"
	"github.com/reprobuild/repro/pkg/fault"
)

// tmpPrefix starts every temporary name that a writer makes inside a
// layout; prefix<pid>-… (package atomicfs) names its owner.
const tmpPrefix = ".tmp-"

// Locked is a layout held under its lock. Close releases it.
type Locked struct {
	dir       string
	f         *os.File
	exclusive bool
	cleaned   []string // stale temporary names removed on locking
}

// Lock takes dir's lock, exclusive to change the layout, shared to read
// it consistently, waiting for other holders. dir must be an OCI layout
// (see Check). An exclusive lock also removes stale temporary files (see
// the package doc).
func Lock(ctx context.Context, dir string, exclusive bool) (*Locked, error) {
	if err := Check(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fault.Bad(fmt.Errorf("%s: no such OCI layout", dir))
		}
		return nil, err
	}
	f, err := lockDir(ctx, dir, exclusive)
	if err != nil {
		return nil, err
	}
	l := &Locked{dir: dir, f: f, exclusive: exclusive}
	if exclusive {
		l.cleaned = cleanOwned(dir)
	}
	return l, nil
}

// lockDir flocks dir. The lock is on the directory's inode: should the
// path name another directory by the time the lock is granted, it is
// taken again on that one.
func lockDir(ctx context.Context, dir string, exclusive bool) (*os.File, error) {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f, err := os.Open(dir)
		if err != nil {
			return nil, fault.Op(err)
		}
		if err := flockCtx(ctx, f, how); err != nil {
			f.Close()
			if ctx.Err() != nil {
				return nil, err
			}
			return nil, fault.Op(fmt.Errorf("locking %s: %w", dir, err))
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(dir)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close()
		if err2 != nil {
			return nil, fault.Op(fmt.Errorf("locking %s: %w", dir, err2))
		}
	}
}

// flockCtx waits for the flock until ctx is done. A lock granted after
// that is released at once.
func flockCtx(ctx context.Context, f *os.File, how int) error {
	if syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB) == nil {
		return nil
	}
	fd, err := syscall.Dup(int(f.Fd())) // the waiter's own descriptor, so f may close
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- flock(fd, how) }()
	select {
	case err := <-done:
		syscall.Close(fd)
		return err
	case <-ctx.Done():
		go func() {
			if <-done == nil {
				syscall.Flock(fd, syscall.LOCK_UN)
			}
			syscall.Close(fd)
		}()
		return ctx.Err()
	}
}

func flock(fd int, how int) error {
	for {
		err := syscall.Flock(fd, how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// Close releases the lock.
func (l *Locked) Close() {
	if l.f != nil {
		syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
		l.f.Close()
		l.f = nil
	}
}

// Dir is the layout's directory.
func (l *Locked) Dir() string { return l.dir }

// Index reads index.json.
func (l *Locked) Index() (*Index, error) { return ReadIndex(l.dir) }

// WriteIndex replaces index.json atomically. It needs the exclusive lock.
func (l *Locked) WriteIndex(idx *Index) error {
	if !l.exclusive {
		return errors.New("layout: index.json written under a shared lock")
	}
	raw, err := idx.Encode()
	if err != nil {
		return fault.Op(err)
	}
	return atomicfs.WriteFile(filepath.Join(l.dir, ocispec.ImageIndexFile), raw)
}

// BlobPath is where blob d is (or would be) stored.
func (l *Locked) BlobPath(d digest.Digest) string { return BlobPath(l.dir, d) }

// BlobPath is where blob d of the layout at dir is (or would be) stored.
func BlobPath(dir string, d digest.Digest) string {
	return filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded())
}

// HasBlob reports whether blob d is stored with size bytes.
func (l *Locked) HasBlob(d digest.Digest, size int64) bool {
	fi, err := os.Stat(l.BlobPath(d))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == size
}

// PutBlob stores data as blob d, checking that it hashes to d, unless a
// file of its size is already there. It needs the exclusive lock: the
// blob must be named by the index.json written before the lock goes.
func (l *Locked) PutBlob(ctx context.Context, d digest.Digest, data []byte) error {
	if !l.exclusive {
		return errors.New("layout: blob put under a shared lock")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkBytes(d, data); err != nil {
		return err
	}
	if l.HasBlob(d, int64(len(data))) {
		return nil
	}
	p := l.BlobPath(d)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fault.Op(err)
	}
	return atomicfs.WriteFile(p, data)
}

func checkBytes(d digest.Digest, data []byte) error {
	sum := sha256.Sum256(data)
	if d.Algorithm() != digest.SHA256 || hex.EncodeToString(sum[:]) != d.Encoded() {
		return fault.Op(fmt.Errorf("blob %s: its bytes hash to sha256:%x", d, sum))
	}
	return nil
}

// Blob is a file of blobs/.
type Blob struct {
	Digest digest.Digest
	Size   int64
}

// Blobs lists the files of blobs/<algorithm>/, temporary names left out.
func (l *Locked) Blobs() ([]Blob, error) {
	root := filepath.Join(l.dir, "blobs")
	algs, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
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
			fi, err := f.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return nil, fault.Op(err)
			}
			out = append(out, Blob{Digest: digest.NewDigestFromEncoded(digest.Algorithm(a.Name()), f.Name()), Size: fi.Size()})
		}
	}
	return out, nil
}

// RemoveBlob removes blob d; a blob already gone is no error. It needs
// the exclusive lock.
func (l *Locked) RemoveBlob(d digest.Digest) error {
	if !l.exclusive {
		return errors.New("layout: blob removed under a shared lock")
	}
	if err := os.Remove(l.BlobPath(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fault.Op(fmt.Errorf("removing blob %s: %w", d, err))
	}
	return nil
}

// copyVerified copies r to w and checks that it was size bytes hashing
// to d. It goes a MiB at a time, each chunk hashed while it is written
// (and the next read), so that on two cores a blob's copy takes about the
// longer of the hashing and the writing, not their sum: a cached layer's
// copy into a layout is most of a warm rebuild's time.
func copyVerified(w io.Writer, r io.Reader, d digest.Digest, size int64) error {
	const chunk = 1 << 20
	h := sha256.New()
	bs := int(min(chunk, max(size+1, 512))) // a config's copy takes no MiB
	bufs := [2][]byte{make([]byte, bs), make([]byte, bs)}
	hashed := make(chan struct{}, 1)
	hashed <- struct{}{}
	var n int64
	var rerr error
	for i := 0; rerr == nil; i ^= 1 {
		buf := bufs[i]
		m := 0
		for m < len(buf) && rerr == nil {
			var k int
			k, rerr = r.Read(buf[m:])
			m += k
		}
		n += int64(m)
		<-hashed // the previous chunk's hash, done with the other buffer
		if m == 0 {
			hashed <- struct{}{}
			break
		}
		go func(b []byte) { h.Write(b); hashed <- struct{}{} }(buf[:m])
		if _, err := w.Write(buf[:m]); err != nil {
			<-hashed
			return fmt.Errorf("writing blob %s into the layout: %w", d, err)
		}
	}
	<-hashed
	if rerr != io.EOF {
		return fmt.Errorf("reading blob %s (%d of %d bytes read): %w", d, n, size, rerr)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Encoded() || n != size {
		return fmt.Errorf("blob %s: got %d bytes with sha256 %s, want %d bytes", d, n, got, size)
	}
	return nil
}
