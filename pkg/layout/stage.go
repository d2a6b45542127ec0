package layout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/internal/atomicfs"
	"github.com/reprobuild/repro/pkg/fault"
)

// Stage is a write into a layout in progress: blobs put into a staging
// directory of its own, made visible by Commit (see the package doc).
// Stage's methods are not safe for concurrent use.
type Stage struct {
	dir     string         // the layout
	tmp     *atomicfs.Temp // the staging directory
	fresh   bool           // tmp is a whole new layout, renamed to dir on Commit
	created []string       // parent directories made for a fresh layout
	staged  []digest.Digest
	seen    map[digest.Digest]bool
	done    bool
	others  []string // other stages' blob directories in this process (nil: not looked for yet)
}

// NewStage starts a write into the layout at dir, which need not exist
// yet. Stale temporary files of the layout are removed first.
func NewStage(ctx context.Context, dir string) (*Stage, error) {
	dir = filepath.Clean(dir)
	s := &Stage{dir: dir, seen: map[digest.Digest]bool{}}
	cleanOwned(dir)
	err := Check(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s, s.startFresh()
	case err != nil:
		return nil, err
	}
	t, err := atomicfs.MkdirTemp(dir, tmpPrefix)
	if err != nil {
		return nil, fault.Op(fmt.Errorf("staging into %s: %w", dir, err))
	}
	s.tmp = t
	return s, nil
}

// startFresh makes a whole layout beside dir: oci-layout and blobs/sha256.
func (s *Stage) startFresh() error {
	parent := filepath.Dir(s.dir)
	created, err := atomicfs.MkdirAll(parent)
	if err != nil {
		return fault.Op(err)
	}
	t, err := atomicfs.MkdirTemp(parent, freshPrefix(s.dir))
	if err != nil {
		atomicfs.RemoveEmpty(created)
		return fault.Op(fmt.Errorf("staging %s: %w", s.dir, err))
	}
	s.tmp, s.fresh, s.created = t, true, created
	err = os.MkdirAll(filepath.Join(t.Path, "blobs", "sha256"), 0o755)
	if err == nil {
		err = atomicfs.WriteFile(filepath.Join(t.Path, ocispec.ImageLayoutFile), []byte(LayoutFile))
	}
	if err != nil {
		s.Abort()
		return fault.Op(err)
	}
	return nil
}

// freshPrefix starts the names of new layouts staged beside dir.
func freshPrefix(dir string) string { return "." + filepath.Base(dir) + ".tmp-" }

// stagedPath is where blob d waits for Commit.
func (s *Stage) stagedPath(d digest.Digest) string {
	if s.fresh {
		return BlobPath(s.tmp.Path, d)
	}
	return filepath.Join(s.tmp.Path, d.Encoded())
}

// Put stages blob d of size bytes, read from open (verified as it is
// copied), unless it is staged already. A blob the layout holds is
// hard-linked, not copied.
func (s *Stage) Put(ctx context.Context, d digest.Digest, size int64, open func() (io.ReadCloser, error)) error {
	if s.done {
		return errors.New("layout: Put after Commit or Abort")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.Algorithm() != digest.SHA256 {
		return fault.Op(fmt.Errorf("blob %s: only sha256 blobs are written", d))
	}
	if s.seen[d] {
		return nil
	}
	dst := s.stagedPath(d)
	for _, have := range s.copies(d) {
		if fi, err := os.Stat(have); err == nil && fi.Mode().IsRegular() && fi.Size() == size {
			if os.Link(have, dst) == nil {
				s.staged, s.seen[d] = append(s.staged, d), true
				return nil
			}
		}
	}
	r, err := open()
	if err != nil {
		return fault.Op(fmt.Errorf("reading blob %s: %w", d, err))
	}
	defer r.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fault.Op(err)
	}
	err = copyVerified(f, ctxReader{ctx, r}, d, size)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("writing blob %s into the layout: %w", d, cerr)
	}
	if err != nil {
		os.Remove(dst)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fault.Op(err)
	}
	s.staged, s.seen[d] = append(s.staged, d), true
	return nil
}

// copies are where blob d may be already, to be linked rather than
// copied: the layout, and the other stages of this process for the same
// layout (a build with two tags in one layout writes each blob once).
func (s *Stage) copies(d digest.Digest) []string {
	var out []string
	if !s.fresh {
		out = append(out, BlobPath(s.dir, d))
	}
	if s.others == nil {
		// The other stages' directories, found once: globbing for the blob
		// itself lists each of them whole, per blob, and a base of 10,000
		// layers took 157 s that way. A stage of this process made later
		// is made after this one's Puts (outputs are staged one by one).
		own := strconv.Itoa(os.Getpid()) + "-*"
		in, _ := filepath.Glob(filepath.Join(s.dir, tmpPrefix+own))
		beside, _ := filepath.Glob(filepath.Join(filepath.Dir(s.dir), freshPrefix(s.dir)+own, "blobs", "sha256"))
		s.others = []string{}
		for _, p := range append(in, beside...) {
			if p != s.tmp.Path && !strings.HasPrefix(p, s.tmp.Path+string(filepath.Separator)) {
				s.others = append(s.others, p)
			}
		}
	}
	for _, dir := range s.others {
		out = append(out, filepath.Join(dir, d.Encoded()))
	}
	return out
}

// PutBytes stages data as blob d (checked).
func (s *Stage) PutBytes(ctx context.Context, d digest.Digest, data []byte) error {
	if err := checkBytes(d, data); err != nil {
		return err
	}
	return s.Put(ctx, d, int64(len(data)), func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
}

// Commit makes the staged blobs part of the layout and replaces its
// index.json with what edit makes of it, under the exclusive lock. For a
// layout that did not exist, edit gets an empty index. On error nothing
// of the stage is left, and the layout is as it was.
func (s *Stage) Commit(ctx context.Context, edit func(*Index) error) error {
	if s.done {
		return errors.New("layout: Commit after Commit or Abort")
	}
	defer s.Abort()
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.fresh {
		committed, err := s.commitFresh(edit)
		if committed || err != nil {
			return err
		}
		// Another writer made the layout meanwhile: merge into it.
	}
	l, err := Lock(ctx, s.dir, true)
	if err != nil {
		return err
	}
	defer l.Close()
	idx, err := l.Index()
	if err != nil {
		return err
	}
	if err := edit(idx); err != nil {
		return err
	}
	bdir := filepath.Join(s.dir, "blobs", "sha256")
	if err := os.MkdirAll(bdir, 0o755); err != nil {
		return fault.Op(err)
	}
	var added []digest.Digest
	undo := func() {
		for _, d := range added {
			os.Remove(l.BlobPath(d))
		}
	}
	for _, d := range s.staged {
		dst := l.BlobPath(d)
		if _, err := os.Lstat(dst); err == nil {
			continue // the layout has it (put there under this lock)
		}
		if err := os.Rename(s.stagedPath(d), dst); err != nil {
			undo()
			return fault.Op(fmt.Errorf("moving blob %s into %s: %w", d, s.dir, err))
		}
		added = append(added, d)
	}
	if err := l.WriteIndex(idx); err != nil {
		undo()
		return err
	}
	return nil
}

// commitFresh writes the staged layout's index.json and renames it to
// dir. It reports false (and no error) when dir exists by then.
func (s *Stage) commitFresh(edit func(*Index) error) (bool, error) {
	idx := NewIndex()
	if err := edit(idx); err != nil {
		return false, err
	}
	raw, err := idx.Encode()
	if err != nil {
		return false, fault.Op(err)
	}
	if err := atomicfs.WriteFile(filepath.Join(s.tmp.Path, ocispec.ImageIndexFile), raw); err != nil {
		return false, err
	}
	err = os.Rename(s.tmp.Path, s.dir)
	if err == nil {
		s.tmp.Release()
		s.tmp, s.created = nil, nil
		return true, nil
	}
	if errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
		if cerr := Check(s.dir); cerr != nil {
			return false, cerr
		}
		return false, nil
	}
	return false, fault.Op(fmt.Errorf("moving %s into place: %w", s.dir, err))
}

// Abort removes what the stage wrote. It is safe after Commit.
func (s *Stage) Abort() {
	s.done = true
	if s.tmp != nil {
		s.tmp.Remove()
	}
	atomicfs.RemoveEmpty(s.created)
	s.created = nil
}

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
