package layercache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/layer"
)

func opts() layer.Options {
	return layer.Options{Format: compress.Format2, Epoch: 1700000000, Compression: compress.Gzip}
}

// tree writes a small context and returns its entries, as a build reads
// them.
func tree(t *testing.T, dir string) []layer.Entry {
	t.Helper()
	files := map[string]string{"a.txt": "alpha\n", "sub/b.txt": "bravo\n", "sub/deep/c": "charlie\n", "empty": ""}
	for p, s := range files {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("a.txt", filepath.Join(dir, "link"))
	return entriesOf(t, dir)
}

func entriesOf(t *testing.T, dir string) []layer.Entry {
	t.Helper()
	sd, err := layer.OpenSourceDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	es, err := sd.Source(".", "/app", nil, layer.Attrs{})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func key(t *testing.T, es []layer.Entry, o layer.Options, sc *StatCache) Key {
	t.Helper()
	k, _, err := EntriesKey(es, o, sc, "test")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func digest(t *testing.T, es []layer.Entry, o layer.Options) string {
	t.Helper()
	l, err := layer.Write(context.Background(), es, t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := l.Digest()
	return d.String()
}

// The key moves with everything the bytes depend on, and with nothing
// they do not: the host's mtimes, owners and inodes, and entry order.
func TestKey(t *testing.T) {
	dir := t.TempDir()
	es := tree(t, dir)
	base := key(t, es, opts(), nil)
	baseDigest := digest(t, es, opts())

	// Host attributes and order: same key, and indeed same digest.
	old := time.Unix(1000, 0)
	os.Chtimes(filepath.Join(dir, "a.txt"), old, old)
	again := entriesOf(t, dir)
	for i, j := 0, len(again)-1; i < j; i, j = i+1, j-1 {
		again[i], again[j] = again[j], again[i]
	}
	if k := key(t, again, opts(), nil); k != base {
		t.Errorf("host mtime and entry order moved the key")
	}
	if d := digest(t, again, opts()); d != baseDigest {
		t.Fatalf("host mtime and entry order moved the digest (%s, %s): the key would be wrong", d, baseDigest)
	}

	mtime := int64(5)
	variants := map[string]func(es []layer.Entry, o *layer.Options){
		"format":      func(_ []layer.Entry, o *layer.Options) { o.Format = compress.Format1 },
		"compression": func(_ []layer.Entry, o *layer.Options) { o.Compression = compress.Zstd },
		"epoch":       func(_ []layer.Entry, o *layer.Options) { o.Epoch++ },
		"mode":        func(es []layer.Entry, _ *layer.Options) { es[1].Mode = 0o600 },
		"uid":         func(es []layer.Entry, _ *layer.Options) { es[1].UID = 7 },
		"gid":         func(es []layer.Entry, _ *layer.Options) { es[1].GID = 7 },
		"xattr":       func(es []layer.Entry, _ *layer.Options) { es[1].Xattrs = map[string]string{"user.x": "1"} },
		"mtime":       func(es []layer.Entry, _ *layer.Options) { es[1].MTime = &mtime },
		"path":        func(es []layer.Entry, _ *layer.Options) { es[1].Path += "x" },
		"symlink": func(es []layer.Entry, _ *layer.Options) {
			for i := range es {
				if es[i].Type == layer.Symlink {
					es[i].Target = "empty"
				}
			}
		},
		"removed": func(es []layer.Entry, _ *layer.Options) { es[len(es)-1].Type = layer.Whiteout },
		"content": func(es []layer.Entry, _ *layer.Options) {
			for i := range es {
				if es[i].Type == layer.Regular && es[i].Size > 0 {
					p := filepath.Join(t.TempDir(), "f")
					os.WriteFile(p, []byte("ALPHA\n"), 0o644)
					got, _ := layer.FileEntry(p, es[i].Path, layer.Attrs{}, 0o644)
					es[i] = got[0]
					return
				}
			}
		},
	}
	seen := map[Key]string{base: "base"}
	for name, change := range variants {
		es2 := append([]layer.Entry(nil), es...)
		o := opts()
		change(es2, &o)
		k := key(t, es2, o, nil)
		if prev, dup := seen[k]; dup {
			t.Errorf("%s: same key as %s", name, prev)
		}
		seen[k] = name
		if digest(t, es2, o) == baseDigest {
			t.Errorf("%s: the variant does not change the bytes; the test is wrong", name)
		}
	}
}

// A warm session reads no file; an edit that keeps size and mtime (touch
// -d back) is seen through ctime; a file changed within the racy window
// is never recorded.
func TestStatCache(t *testing.T) {
	dir := t.TempDir()
	es := tree(t, dir)
	file := filepath.Join(t.TempDir(), "stat")
	later := time.Now().Add(10 * time.Second) // the files are old enough

	sc := OpenStatCache(file, later)
	k1 := key(t, es, opts(), sc)
	if sc.Read() != 4 {
		t.Fatalf("cold session read %d files, want 4", sc.Read())
	}
	if err := sc.Save(); err != nil {
		t.Fatal(err)
	}
	sc = OpenStatCache(file, later)
	if k := key(t, es, opts(), sc); k != k1 || sc.Read() != 0 {
		t.Fatalf("warm session read %d files (key equal: %v), want 0", sc.Read(), k == k1)
	}
	before, _ := os.Stat(file)
	sc.Save()
	// A session that found everything as recorded does not write the
	// file again.
	if after, _ := os.Stat(file); !os.SameFile(before, after) {
		t.Error("a session that changed nothing rewrote the stat cache")
	}

	// Same size, mtime put back: only ctime tells.
	p := filepath.Join(dir, "sub", "b.txt")
	fi, _ := os.Stat(p)
	time.Sleep(10 * time.Millisecond) // a later ctime on any clock granule finer than this
	if err := os.WriteFile(p, []byte("BRAVO\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if fi2, _ := os.Stat(p); fi2.Size() != fi.Size() || !fi2.ModTime().Equal(fi.ModTime()) {
		t.Fatal("the edit did not keep size and mtime")
	}
	sc = OpenStatCache(file, later.Add(time.Second))
	k2 := key(t, entriesOf(t, dir), opts(), sc)
	if k2 == k1 || sc.Read() != 1 {
		t.Fatalf("after an edit keeping size and mtime: key moved %v, %d files read (want 1)", k2 != k1, sc.Read())
	}
	if k := key(t, entriesOf(t, dir), opts(), nil); k != k2 {
		t.Fatal("the stat cache's key differs from a cold hash")
	}
	// That session hashed a file again, as many records as it loaded: it
	// writes the file, and the next session reads nothing.
	if err := sc.Save(); err != nil {
		t.Fatal(err)
	}
	sc = OpenStatCache(file, later.Add(time.Second))
	if k := key(t, entriesOf(t, dir), opts(), sc); k != k2 || sc.Read() != 0 {
		t.Fatalf("after the edit was recorded: %d files read (want 0), key equal %v", sc.Read(), k == k2)
	}

	// Racy: files written just now are hashed, and not kept.
	sc = OpenStatCache(file, time.Now())
	os.WriteFile(p, []byte("bravo\n"), 0o644)
	key(t, entriesOf(t, dir), opts(), sc)
	sc.Save()
	sc = OpenStatCache(file, time.Now())
	key(t, entriesOf(t, dir), opts(), sc)
	if sc.Read() == 0 {
		t.Fatal("a file changed within the racy window was trusted")
	}

	// A corrupt cache file is ignored.
	os.WriteFile(file, []byte(statCacheMagic+"\nnot a record\n"), 0o644)
	sc = OpenStatCache(file, later)
	if k := key(t, entriesOf(t, dir), opts(), sc); k != key(t, entriesOf(t, dir), opts(), nil) || sc.Read() != 4 {
		t.Fatal("a corrupt stat cache was used")
	}
}

// Paths that strconv.Quote escapes, or leaves alone, come back from the
// file as they went in.
func TestStatCacheNames(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{`q"uote`, `back\slash`, "ünï", "tab\tx", "plain"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	es := entriesOf(t, dir)
	file := filepath.Join(t.TempDir(), "stat")
	later := time.Now().Add(10 * time.Second)
	sc := OpenStatCache(file, later)
	k := key(t, es, opts(), sc)
	if err := sc.Save(); err != nil {
		t.Fatal(err)
	}
	sc = OpenStatCache(file, later)
	if k2 := key(t, es, opts(), sc); k2 != k || sc.Read() != 0 {
		t.Fatalf("warm session read %d files, want 0 (key equal: %v)", sc.Read(), k == k2)
	}
}

// A file edited after its key was made is caught as the layer is written.
func TestContentsCheck(t *testing.T) {
	dir := t.TempDir()
	es := tree(t, dir)
	_, c, err := EntriesKey(es, opts(), nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	o := opts()
	o.Observe = c.Observe(nil)
	if _, err := layer.Write(context.Background(), es, t.TempDir(), o); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(); err != nil {
		t.Fatalf("unchanged files: %v", err)
	}
	_, c, _ = EntriesKey(es, opts(), nil, "test")
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("ALPHA\n"), 0o644)
	o.Observe = c.Observe(nil)
	if _, err := layer.Write(context.Background(), es, t.TempDir(), o); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(); err == nil {
		t.Fatal("a file edited between key and write passed the check")
	}

	// Hard links: the content is shown under the group's first path.
	hl := []layer.Entry{es[0], {Path: "/a0", Type: layer.Hardlink, Target: "/app/a.txt"}}
	for _, e := range es {
		if e.Path == "/app/a.txt" {
			hl = append(hl, e)
		}
	}
	_, c, _ = EntriesKey(hl, opts(), nil, "test")
	o.Observe = c.Observe(nil)
	if _, err := layer.Write(context.Background(), hl, t.TempDir(), o); err != nil {
		t.Fatal(err)
	}
	if err := c.Check(); err != nil {
		t.Fatalf("hard-link group: %v", err)
	}
}

func put(t *testing.T, s *Store, es []layer.Entry) (Key, *layer.File) {
	t.Helper()
	k := key(t, es, opts(), nil)
	l, err := layer.Write(context.Background(), es, t.TempDir(), opts())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(k, l, nil); err != nil {
		t.Fatal(err)
	}
	return k, l
}

func TestStore(t *testing.T) {
	s := Open(t.TempDir(), time.Now, "test")
	es := tree(t, t.TempDir())
	k, l := put(t, s, es)
	got, err := s.Get(k)
	if err != nil || got == nil {
		t.Fatalf("Get: %v, %v", got, err)
	}
	d1, _ := got.Digest()
	d2, _ := l.Digest()
	i1, _ := got.DiffID()
	i2, _ := l.DiffID()
	if d1 != d2 || i1 != i2 {
		t.Fatal("the stored layer's digests differ")
	}
	rc, _ := got.Uncompressed()
	if _, err := readAll(rc); err != nil {
		t.Fatal(err)
	}
	if miss, err := s.Get(Key{1}); miss != nil || err != nil {
		t.Fatal("a missing key hit")
	}
	// A blob changed in place, keeping its size: Get does not read it
	// (the store hashed it when it wrote it), Compressed fails at its
	// end, GetHashed finds it corrupt and removes it.
	b, _ := os.ReadFile(got.Path())
	b[len(b)/2] ^= 1
	os.Remove(got.Path()) // the blob may be a link to the build's file
	os.WriteFile(got.Path(), b, 0o644)
	same, err := s.Get(k)
	if err != nil || same == nil {
		t.Fatalf("Get of a same-size blob: %v, %v", same, err)
	}
	rc, _ = same.Compressed()
	if _, err := readAll(rc); err == nil {
		t.Error("Compressed streamed a changed blob without an error")
	}
	var ce *CorruptError
	if hit, err := s.GetHashed(k); hit != nil || !errors.As(err, &ce) {
		t.Fatalf("GetHashed of a corrupt entry: %v, %v", hit, err)
	}
	if hit, err := s.Get(k); hit != nil || err != nil {
		t.Fatal("a corrupt entry was not removed")
	}
	// A blob of another size (cut short): Get finds it corrupt.
	k, _ = put(t, s, es)
	got, _ = s.Get(k)
	os.Remove(got.Path())
	os.WriteFile(got.Path(), b[:len(b)-1], 0o644)
	if hit, err := s.Get(k); hit != nil || !errors.As(err, &ce) || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("Get of a short blob: %v, %v", hit, err)
	}
	if hit, err := s.Get(k); hit != nil || err != nil {
		t.Fatal("a short entry was not removed")
	}
}

func readAll(rc interface {
	Read([]byte) (int, error)
	Close() error
}) (int64, error) {
	defer rc.Close()
	var n int64
	buf := make([]byte, 32<<10)
	for {
		m, err := rc.Read(buf)
		n += int64(m)
		if err != nil {
			if err.Error() == "EOF" {
				return n, nil
			}
			return n, err
		}
	}
}

func TestPrune(t *testing.T) {
	s := Open(t.TempDir(), time.Now, "test")
	clock := time.Unix(1e9, 0)
	s.now = func() time.Time { return clock }
	var keys []Key
	for i := 0; i < 4; i++ {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "f"), []byte(fmt.Sprint(i)), 0o644)
		k, _ := put(t, s, entriesOf(t, dir))
		keys = append(keys, k)
		used := clock.Add(time.Duration(i) * time.Hour)
		os.Chtimes(filepath.Join(s.entry(k), "used"), used, used)
	}
	clock = clock.Add(10 * time.Hour)
	s.Get(keys[0]) // used now: the newest
	p, err := s.Prune(7*time.Hour+30*time.Minute, -1)
	if err != nil || p.Removed != 2 || p.Kept != 2 {
		t.Fatalf("prune by age: %+v, %v", p, err)
	}
	for i, want := range []bool{true, false, false, true} {
		if got, _ := s.Get(keys[i]); (got != nil) != want {
			t.Errorf("entry %d kept %v, want %v", i, got != nil, want)
		}
	}
	p, err = s.Prune(0, p.KeptBytes-1)
	if err != nil || p.Removed != 1 || p.Kept != 1 {
		t.Fatalf("prune by size: %+v, %v", p, err)
	}
}

// Builds sharing one store race on the same keys and on different ones:
// every one gets a correct layer, and the store holds one entry per key.
func TestStoreRace(t *testing.T) {
	dir := t.TempDir()
	ctxs := []string{t.TempDir(), t.TempDir()}
	for i, c := range ctxs {
		os.WriteFile(filepath.Join(c, "f"), []byte(fmt.Sprint("context ", i)), 0o644)
	}
	var wg sync.WaitGroup
	for b := 0; b < 8; b++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := Open(dir, time.Now, "test") // a build of its own
			es := entriesOf(t, ctxs[b%2])
			k := key(t, es, opts(), nil)
			want := digest(t, es, opts())
			l, err := s.Get(k)
			if err == nil && l == nil {
				w, werr := layer.Write(context.Background(), es, t.TempDir(), opts())
				if werr != nil {
					t.Error(werr)
					return
				}
				l, err = s.Put(k, w, nil)
			}
			if err != nil {
				t.Error(err)
				return
			}
			if d, _ := l.Digest(); d.String() != want {
				t.Errorf("build %d got %s, want %s", b, d, want)
			}
		}()
	}
	wg.Wait()
	des, _ := os.ReadDir(filepath.Join(dir, "entries"))
	if len(des) != 2 {
		var names []string
		for _, d := range des {
			names = append(names, d.Name())
		}
		t.Fatalf("the store holds %v, want the 2 entries", names)
	}
}
