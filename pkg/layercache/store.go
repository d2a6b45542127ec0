package layercache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/internal/atomicfs"
	"github.com/reprobuild/repro/pkg/compress"
)

// Store is the local layer store, in a directory (the cache directory's
// layers/).
type Store struct {
	dir     string
	now     func() time.Time
	builder string
}

// Open returns the store in dir, created when first written; now is the
// clock that marks an entry's last use; builder is the program's build ID
// that every key carries (see EntriesKey).
func Open(dir string, now func() time.Time, builder string) *Store {
	return &Store{dir: dir, now: now, builder: builder}
}

// Builder is the build ID the store's keys are made with.
func (s *Store) Builder() string { return s.builder }

// Now is the store's clock: a stat cache session starts at it.
func (s *Store) Now() time.Time { return s.now() }

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) entries() string             { return filepath.Join(s.dir, "entries") }
func (s *Store) entry(k Key) string          { return filepath.Join(s.entries(), k.String()) }
func (s *Store) StatFile(root string) string { return StatCacheFile(s.dir, root) }

// meta is an entry's meta.json.
type meta struct {
	Key       string `json:"key"`
	Digest    string `json:"digest"`
	DiffID    string `json:"diffID"`
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType"`
	// Extra is what the builder keeps with the layer (the secret guard's
	// findings in it).
	Extra json.RawMessage `json:"extra,omitempty"`
}

// Layer is a layer from the store. It implements v1.Layer; its digest and
// diff ID are known without reading it, and Compressed checks its bytes
// as they stream.
type Layer struct {
	path      string
	digest    v1.Hash
	diffID    v1.Hash
	size      int64
	mediaType types.MediaType
	extra     []byte
	checked   Check
}

var _ v1.Layer = (*Layer)(nil)

// Checked is how a hit from the shared cache was checked (Shared.Get);
// "" for a layer of the local store.
func (l *Layer) Checked() Check { return l.checked }

// Extra is what Put was given to keep with the layer.
func (l *Layer) Extra() []byte { return l.extra }

// Path is the file holding the compressed layer, to link or copy.
func (l *Layer) Path() string                        { return l.path }
func (l *Layer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *Layer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *Layer) Size() (int64, error)                { return l.size, nil }
func (l *Layer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

// Compressed streams the blob, failing at its end if its bytes no longer
// hash to its digest (the file changed after Get checked it).
func (l *Layer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	return &verifyReader{f: f, h: sha256.New(), want: l.digest.Hex, size: l.size, what: l.path}, nil
}

// Uncompressed streams the layer's tar.
func (l *Layer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	alg := compress.Gzip
	if l.mediaType == types.MediaType(compress.Zstd.MediaType()) {
		alg = compress.Zstd
	}
	r, err := compress.NewReader(rc, alg)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return &readCloser{Reader: r, close: func() error { r.Close(); return rc.Close() }}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r *readCloser) Close() error { return r.close() }

type verifyReader struct {
	f *os.File
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	n    int64
	size int64
	want string
	what string
}

func (v *verifyReader) Read(p []byte) (int, error) {
	n, err := v.f.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want || v.n != v.size {
			return n, fmt.Errorf("layer cache entry %s changed while it was read (sha256 %s, not %s)", v.what, got, v.want)
		}
	}
	return n, err
}

func (v *verifyReader) Close() error { return v.f.Close() }

// CorruptError is a store entry whose blob does not hash to its digest:
// it was removed, and the layer must be rebuilt.
type CorruptError struct {
	Key Key
	Msg string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("layer cache entry %s is corrupt (%s); it was removed and the layer is rebuilt", e.Key, e.Msg)
}

// Get returns the layer stored under k, or nil when there is none. It
// does not read the blob: the store hashed it when it wrote it (see the
// package doc), and a hit checks the entry's meta.json and that its blob
// is a regular file of the recorded size. An entry that fails its check
// is removed, and Get returns nil and a *CorruptError, for a warning.
func (s *Store) Get(k Key) (*Layer, error) { return s.get(k, false) }

// GetHashed is Get that also hashes the blob and compares it with the
// entry's recorded digest and size (build --cache-verify).
func (s *Store) GetHashed(k Key) (*Layer, error) { return s.get(k, true) }

func (s *Store) get(k Key, hash bool) (*Layer, error) {
	dir := s.entry(k)
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	l, err := s.check(k, dir, b, hash)
	if err != nil {
		s.remove(k)
		return nil, &CorruptError{Key: k, Msg: err.Error()}
	}
	now := s.now()
	os.Chtimes(filepath.Join(dir, "used"), now, now) // best effort: a race with Prune loses nothing
	return l, nil
}

func (s *Store) check(k Key, dir string, b []byte, hash bool) (*Layer, error) {
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("meta.json: %v", err)
	}
	if m.Key != k.String() {
		return nil, fmt.Errorf("meta.json names key %s", m.Key)
	}
	digest, err := v1.NewHash(m.Digest)
	if err != nil {
		return nil, err
	}
	diffID, err := v1.NewHash(m.DiffID)
	if err != nil {
		return nil, err
	}
	p := filepath.Join(dir, "blob")
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() != m.Size {
		return nil, fmt.Errorf("its blob is %s of %d bytes, not a file of %d", fi.Mode().Type(), fi.Size(), m.Size)
	}
	if hash {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			return nil, err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != digest.Hex || n != m.Size {
			return nil, fmt.Errorf("its blob has sha256:%s and %d bytes, not %s and %d", got, n, digest, m.Size)
		}
	}
	return &Layer{path: p, digest: digest, diffID: diffID, size: m.Size, mediaType: types.MediaType(m.MediaType), extra: m.Extra}, nil
}

// PathLayer is a v1.Layer held in a file, as layer.File is.
type PathLayer interface {
	v1.Layer
	Path() string
}

// Put stores l under k: its file linked into the store (copied when that
// cannot be done), with its digest, diff ID and media type, and extra
// (JSON, or nil). When another build stored k first, that entry stays and
// is returned.
func (s *Store) Put(k Key, l PathLayer, extra []byte) (*Layer, error) {
	desc, err := partial.Descriptor(l)
	if err != nil {
		return nil, err
	}
	digest, size, mt := desc.Digest, desc.Size, desc.MediaType
	diffID, err := l.DiffID()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.entries(), 0o755); err != nil {
		return nil, err
	}
	atomicfs.CleanStale(s.entries(), ".tmp-")
	t, err := atomicfs.MkdirTemp(s.entries(), ".tmp-")
	if err != nil {
		return nil, err
	}
	defer t.Remove()
	blob := filepath.Join(t.Path, "blob")
	if err := os.Link(l.Path(), blob); err != nil {
		if err := copyFile(l.Path(), blob); err != nil {
			return nil, err
		}
	}
	m, err := json.Marshal(meta{Key: k.String(), Digest: digest.String(), DiffID: diffID.String(), Size: size, MediaType: string(mt), Extra: extra})
	if err != nil {
		return nil, err
	}
	if err := atomicfs.WriteFile(filepath.Join(t.Path, "meta.json"), m); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(t.Path, "used"), nil, 0o644); err != nil {
		return nil, err
	}
	final := s.entry(k)
	if err := os.Rename(t.Path, final); err != nil {
		if !errors.Is(err, syscall.EEXIST) && !errors.Is(err, syscall.ENOTEMPTY) {
			return nil, err
		}
		// Another build stored it first: first write wins.
		got, gerr := s.Get(k)
		if gerr != nil || got == nil {
			return nil, fmt.Errorf("layer cache entry %s: %v", k, gerr)
		}
		return got, nil
	}
	t.Release()
	return &Layer{path: filepath.Join(final, "blob"), digest: digest, diffID: diffID, size: size, mediaType: mt, extra: extra}, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Remove takes entry k away, if it is there.
func (s *Store) Remove(k Key) {
	if err := s.remove(k); err != nil && !errors.Is(err, fs.ErrNotExist) {
		os.RemoveAll(s.entry(k))
	}
}

// remove takes entry k away: renamed out of its name first, so that a
// reader sees all of it or none.
func (s *Store) remove(k Key) error {
	gone := filepath.Join(s.entries(), ".tmp-"+strconv.Itoa(os.Getpid())+"-rm-"+k.String())
	if err := os.Rename(s.entry(k), gone); err != nil {
		return err
	}
	return os.RemoveAll(gone)
}

// Pruned says what Prune removed and what is left.
type Pruned struct {
	Removed      int   `json:"removed"`
	RemovedBytes int64 `json:"removedBytes"`
	Kept         int   `json:"kept"`
	KeptBytes    int64 `json:"keptBytes"`
}

// Prune removes the entries not used for longer than maxAge (0: no age
// limit), then the least recently used until the entries left take at
// most maxSize bytes (negative: no size limit). Killed writers' debris
// goes too.
func (s *Store) Prune(maxAge time.Duration, maxSize int64) (Pruned, error) {
	var p Pruned
	atomicfs.CleanStale(s.entries(), ".tmp-")
	des, err := os.ReadDir(s.entries())
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return p, err
	}
	type ent struct {
		k    Key
		used time.Time
		size int64
	}
	var ents []ent
	var total int64
	for _, de := range des {
		k, err := ParseKey(de.Name())
		if err != nil {
			continue
		}
		dir := s.entry(k)
		fi, err := os.Stat(filepath.Join(dir, "used"))
		if err != nil {
			continue
		}
		var size int64
		for _, n := range []string{"blob", "meta.json"} {
			if bi, err := os.Stat(filepath.Join(dir, n)); err == nil {
				size += bi.Size()
			}
		}
		ents = append(ents, ent{k: k, used: fi.ModTime(), size: size})
		total += size
	}
	sort.Slice(ents, func(i, j int) bool {
		if !ents[i].used.Equal(ents[j].used) {
			return ents[i].used.Before(ents[j].used)
		}
		return ents[i].k.String() < ents[j].k.String()
	})
	now := s.now()
	for _, e := range ents {
		old := maxAge > 0 && now.Sub(e.used) > maxAge
		big := maxSize >= 0 && total > maxSize
		if !old && !big {
			p.Kept++
			p.KeptBytes += e.size
			continue
		}
		if err := s.remove(e.k); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return p, err
		}
		total -= e.size
		p.Removed++
		p.RemovedBytes += e.size
	}
	return p, nil
}
