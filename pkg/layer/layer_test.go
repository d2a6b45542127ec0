package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reprobuild/repro/internal/testtool"
	"github.com/reprobuild/repro/pkg/compress"
)

func content(s string) (int64, func() (io.ReadCloser, error)) {
	return int64(len(s)), func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
}

func file(p, s string, mode uint32) Entry {
	size, open := content(s)
	return Entry{Path: p, Type: Regular, Mode: mode, Size: size, Open: open}
}

type hdr struct {
	Name, Linkname string
	Type           byte
	Mode           int64
	UID, GID       int
	Size           int64
	Body           string
}

func readTar(t *testing.T, b []byte) ([]hdr, []*tar.Header) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var out []hdr
	var raw []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		out = append(out, hdr{h.Name, h.Linkname, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Size, string(body)})
		raw = append(raw, h)
	}
	return out, raw
}

func tarBytes(t *testing.T, entries []Entry) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteTar(context.Background(), &b, entries, 1700000000); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestCanonicalOrder(t *testing.T) {
	entries := []Entry{
		file("/a/b", "b", 0o644),
		file("/a-c", "c", 0o600),
		{Path: "/a", Type: Dir, Mode: 0o700, UID: 5, GID: 6},
		{Path: "/z/y/link", Type: Symlink, Mode: 0o777, Target: "../../a/b"},
		{Path: "/usr/share/doc", Type: Whiteout},
	}
	got, raw := readTar(t, tarBytes(t, entries))
	want := []hdr{
		{Name: "a/", Type: tar.TypeDir, Mode: 0o700, UID: 5, GID: 6},
		{Name: "a-c", Type: tar.TypeReg, Mode: 0o600, Size: 1, Body: "c"},
		{Name: "a/b", Type: tar.TypeReg, Mode: 0o644, Size: 1, Body: "b"},
		{Name: "usr/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "usr/share/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "usr/share/.wh.doc", Type: tar.TypeReg, Mode: 0o644},
		{Name: "z/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "z/y/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "z/y/link", Linkname: "../../a/b", Type: tar.TypeSymlink, Mode: 0o777},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	for _, h := range raw {
		if !h.ModTime.Equal(time.Unix(1700000000, 0)) || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s: times %v %v %v", h.Name, h.ModTime, h.AccessTime, h.ChangeTime)
		}
		if h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: uname %q gname %q", h.Name, h.Uname, h.Gname)
		}
		if h.Format != tar.FormatUSTAR {
			t.Errorf("%s: format %v, want plain ustar when nothing needs pax", h.Name, h.Format)
		}
	}
}

func TestHardlinkGroupFirstPathCarriesData(t *testing.T) {
	x, err := CapabilityXattr([]int{10})
	if err != nil {
		t.Fatal(err)
	}
	data := file("/z/data", "payload", 0o755)
	data.UID, data.GID, data.Xattrs = 7, 8, map[string]string{"security.capability": x}
	entries := []Entry{
		data,
		{Path: "/a/link", Type: Hardlink, Target: "/z/data"},
		{Path: "/m/link2", Type: Hardlink, Target: "/a/link"}, // a link to a link joins the group
	}
	got, raw := readTar(t, tarBytes(t, entries))
	byName := map[string]hdr{}
	for _, h := range got {
		byName[h.Name] = h
	}
	first := byName["a/link"]
	if first.Type != tar.TypeReg || first.Body != "payload" || first.Mode != 0o755 || first.UID != 7 {
		t.Errorf("a/link = %+v; want the group's data", first)
	}
	for _, n := range []string{"m/link2", "z/data"} {
		if h := byName[n]; h.Type != tar.TypeLink || h.Linkname != "a/link" {
			t.Errorf("%s = %+v; want a hard link to a/link", n, h)
		}
	}
	for _, h := range raw {
		if h.Name == "a/link" && h.PAXRecords["SCHILY.xattr.security.capability"] != x {
			t.Errorf("xattr not on the group's regular file: %v", h.PAXRecords)
		}
	}
	// No link may precede its target.
	seen := map[string]bool{}
	for _, h := range got {
		if h.Type == tar.TypeLink && !seen[h.Linkname] {
			t.Errorf("%s precedes its target %s", h.Name, h.Linkname)
		}
		seen[h.Name] = true
	}
}

func TestConflicts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []Entry
		want    string
	}{
		{"duplicate", []Entry{file("/a", "1", 0o644), file("/a", "2", 0o644)}, "written twice"},
		{"file as parent", []Entry{file("/a", "1", 0o644), file("/a/b", "2", 0o644)}, "is inside it"},
		{"symlink as parent", []Entry{{Path: "/a", Type: Symlink, Target: "x"}, file("/a/b", "2", 0o644)}, "is inside it"},
		{"link to nothing", []Entry{{Path: "/l", Type: Hardlink, Target: "/missing"}}, "does not hold"},
		{"link to dir", []Entry{{Path: "/d", Type: Dir}, {Path: "/l", Type: Hardlink, Target: "/d"}}, "must be a regular file"},
		{"link cycle", []Entry{{Path: "/l1", Type: Hardlink, Target: "/l2"}, {Path: "/l2", Type: Hardlink, Target: "/l1"}}, "must be a regular file"},
		{"remove and write inside", []Entry{{Path: "/d", Type: Whiteout}, file("/d/x", "1", 0o644)}, "writes inside it"},
		{"unclean path", []Entry{file("/a/../b", "1", 0o644)}, "not a clean absolute path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteTar(context.Background(), io.Discard, tc.entries, 0)
			var ce *ConflictError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want a ConflictError containing %q", err, tc.want)
			}
		})
	}
}

func TestCapabilityXattr(t *testing.T) {
	x, err := CapabilityXattr([]int{10, 33})
	if err != nil {
		t.Fatal(err)
	}
	// magic 0x02000001 (revision 2, effective), permitted low 1<<10,
	// inheritable low 0, permitted high 1<<1, inheritable high 0; all LE.
	want := "01000002" + "00040000" + "00000000" + "02000000" + "00000000"
	if got := hex.EncodeToString([]byte(x)); got != want {
		t.Errorf("xattr = %s, want %s", got, want)
	}
}

func TestLongNamesAndXattrsUsePax(t *testing.T) {
	long := "/" + strings.Repeat("d", 90) + "/" + strings.Repeat("f", 120)
	e := file(long, "x", 0o644)
	e.Xattrs = map[string]string{"user.k": "v"}
	_, raw := readTar(t, tarBytes(t, []Entry{e}))
	last := raw[len(raw)-1]
	if last.Name != long[1:] || last.Format != tar.FormatPAX || last.PAXRecords["SCHILY.xattr.user.k"] != "v" {
		t.Errorf("got %q format %v records %v", last.Name, last.Format, last.PAXRecords)
	}
}

// goldenEntries is a fixed layer whose digests pin the output format.
func goldenEntries() []Entry {
	x, _ := CapabilityXattr([]int{10})
	bin := file("/app/bin", strings.Repeat("binary\x00", 5000), 0o755)
	bin.Xattrs = map[string]string{"security.capability": x}
	future, past := int64(1800000000), int64(1600000000)
	bin.MTime = &future // format 2: clamped to the epoch
	motd := file("/etc/motd", "hello\n", 0o644)
	motd.MTime = &past // format 2: kept
	return []Entry{
		bin,
		motd,
		{Path: "/var/cache/app", Type: Dir, Mode: 0o750, UID: 65532, GID: 65532},
		{Path: "/usr/bin/app", Type: Symlink, Mode: 0o777, Target: "/app/bin"},
		{Path: "/app/bin2", Type: Hardlink, Target: "/app/bin"},
		{Path: "/usr/share/doc", Type: Whiteout},
	}
}

// TestGoldenLayer pins the digests of a fixed layer in every format and
// compression. If a pin fails, the output format changed: that is a bug
// (a released format never changes), unless the failing format is a new
// one not yet released.
func TestGoldenLayer(t *testing.T) {
	const epoch = 1700000000
	for _, tc := range []struct {
		format         compress.Format
		alg            compress.Algorithm
		digest, diffID string
	}{
		// Format 1: what repro wrote before formats were chosen (the
		// pins are those of commit e62ece3): every mtime the epoch, the
		// entries' own MTime ignored.
		{compress.Format1, compress.Gzip, "sha256:72eb0f911fca9b85bd9f8076ed291a6eee5ea4a6280ea0beca9dd42a69ee4f05", "sha256:d8b5009849b767c191d263e10cc3ef4f3ed82eec5bf1f1dea1b1b50cfbf392f7"},
		{compress.Format1, compress.Zstd, "sha256:3f639a6b3f9a0cb82849e48759fccc6fb2e64e82f0c1728ab1584b77c8b420df", "sha256:d8b5009849b767c191d263e10cc3ef4f3ed82eec5bf1f1dea1b1b50cfbf392f7"},
		// Format 2: /etc/motd keeps its own mtime, /app/bin's is clamped
		// to the epoch, and the gzip header's MTIME is zero.
		{compress.Format2, compress.Gzip, "sha256:0c90d4f4c780df52b8421a5ebfe059796257bda07a9d4ae85011835a4a006519", "sha256:49e2f35a48c00dce773d52546ab1a4ebc59022d8ce3d5f24ccbf4b0839928da8"},
		{compress.Format2, compress.Zstd, "sha256:4043dcc4c5ab89edfe4422c9ea4a201601c26f62c95ce0208bf251c97802f83e", "sha256:49e2f35a48c00dce773d52546ab1a4ebc59022d8ce3d5f24ccbf4b0839928da8"},
	} {
		t.Run(fmt.Sprintf("%d-%s", tc.format, tc.alg), func(t *testing.T) {
			l, err := Write(context.Background(), goldenEntries(), t.TempDir(), Options{Format: tc.format, Epoch: epoch, Compression: tc.alg})
			if err != nil {
				t.Fatal(err)
			}
			d, _ := l.Digest()
			id, _ := l.DiffID()
			if d.String() != tc.digest || id.String() != tc.diffID {
				t.Errorf("digest %s diffID %s; golden %s %s", d, id, tc.digest, tc.diffID)
			}
			// The file holds what the digest says, and decompresses to the diffID.
			rc, err := l.Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			if err := WriteFormatTar(context.Background(), &want, goldenEntries(), tc.format, epoch); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, want.Bytes()) {
				t.Error("uncompressed layer differs from WriteFormatTar's stream")
			}
		})
	}
}

// TestEntryMTimes: format 2 writes an entry's own mtime clamped to
// [0, the layer's epoch], and the epoch for entries without one (implicit
// parents included); format 1 writes the epoch everywhere.
func TestEntryMTimes(t *testing.T) {
	const epoch = 1700000000
	at := func(n int64) *int64 { return &n }
	entries := []Entry{
		{Path: "/a/old", Type: Regular, Mode: 0o644, MTime: at(1500000000), Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("")), nil }},
		{Path: "/a/future", Type: Dir, Mode: 0o755, MTime: at(1900000000)},
		{Path: "/a/negative", Type: Symlink, Mode: 0o777, Target: "x", MTime: at(-5)},
		{Path: "/b", Type: Dir, Mode: 0o755},
	}
	want := map[compress.Format]map[string]int64{
		compress.Format1: {"a/": epoch, "a/future/": epoch, "a/negative": epoch, "a/old": epoch, "b/": epoch},
		compress.Format2: {"a/": epoch, "a/future/": epoch, "a/negative": 0, "a/old": 1500000000, "b/": epoch},
	}
	for _, f := range compress.Formats {
		var b bytes.Buffer
		if err := WriteFormatTar(context.Background(), &b, entries, f, epoch); err != nil {
			t.Fatal(err)
		}
		_, raw := readTar(t, b.Bytes())
		got := map[string]int64{}
		for _, h := range raw {
			got[h.Name] = h.ModTime.Unix()
			if len(h.PAXRecords) > 0 {
				t.Errorf("%s: %s has PAX records %v: mtimes must fit ustar", f, h.Name, h.PAXRecords)
			}
		}
		if d := cmp.Diff(want[f], got); d != "" {
			t.Errorf("%s: mtimes (-want +got):\n%s", f, d)
		}
	}
	if err := WriteFormatTar(context.Background(), io.Discard, entries, 0, epoch); err == nil {
		t.Error("format 0 was written")
	}
	if _, err := Write(context.Background(), entries, t.TempDir(), Options{Compression: compress.Gzip}); err == nil {
		t.Error("Write without a format wrote a layer")
	}
}

// bigEntries is a layer of n MiB of compressible data across several
// files, enough for many parallel gzip blocks.
func bigEntries(n int) []Entry {
	var es []Entry
	for i := 0; i < n; i++ {
		var b strings.Builder
		for b.Len() < 1<<20 {
			b.WriteString("line ")
			b.WriteString(strings.Repeat(string(rune('a'+i%26)), i%7+1))
			b.WriteString(" of a file that compresses, more or less\n")
		}
		es = append(es, file("/data/f"+strings.Repeat("x", i%5)+string(rune('A'+i%26))+string(rune('0'+i/26)), b.String(), 0o644))
	}
	return es
}

// TestCoresDoNotChangeBytes writes the same layer with GOMAXPROCS 1 and 4:
// parallel compression must not change a byte.
func TestCoresDoNotChangeBytes(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, alg := range []compress.Algorithm{compress.Gzip, compress.Zstd} {
		var digests []string
		for _, procs := range []int{1, 4, 2} {
			runtime.GOMAXPROCS(procs)
			l, err := Write(context.Background(), bigEntries(12), t.TempDir(), Options{Format: compress.Newest, Compression: alg})
			if err != nil {
				t.Fatal(err)
			}
			d, _ := l.Digest()
			digests = append(digests, d.String())
		}
		if digests[0] != digests[1] || digests[1] != digests[2] {
			t.Errorf("%s: digests differ with GOMAXPROCS 1, 4, 2: %v", alg, digests)
		}
	}
}

// TestMemoryBounded writes a 256 MiB file into a layer and samples the
// heap: the layer streams, so the heap stays far below the layer's size.
func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 256 MiB")
	}
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	// Non-trivial content, so compression does real work.
	chunk := bytes.Repeat([]byte("0123456789abcdef repro streams layers\n"), 1<<14)
	for written := 0; written < 256<<20; written += len(chunk) {
		f.Write(chunk)
	}
	f.Close()
	c, err := OpenSourceDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	es, err := c.Source("big", "/big", nil, Attrs{})
	if err != nil {
		t.Fatal(err)
	}
	peak := testtool.HeapPeak(func() {
		_, err = Write(context.Background(), es, t.TempDir(), Options{Format: compress.Newest, Compression: compress.Gzip})
	})
	if err != nil {
		t.Fatal(err)
	}
	if peak > 96<<20 {
		t.Errorf("heap in use peaked at %d MiB while writing a 256 MiB layer", peak>>20)
	} else {
		t.Logf("heap peak %d MiB for a 256 MiB layer", peak>>20)
	}
}

func TestWriteLeavesNothingOnError(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Write(ctx, bigEntries(2), dir, Options{Format: compress.Newest, Compression: compress.Gzip}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Errorf("left behind: %v", names)
	}
}

func TestSourceDirSafety(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644))
	must(os.MkdirAll(filepath.Join(root, "tree", "sub"), 0o755))
	must(os.WriteFile(filepath.Join(root, "tree", "a.txt"), []byte("a"), 0o644))
	must(os.WriteFile(filepath.Join(root, "tree", "run.sh"), []byte("#!"), 0o700))
	must(os.WriteFile(filepath.Join(root, "tree", "a.js.map"), []byte("m"), 0o644))
	must(os.WriteFile(filepath.Join(root, "tree", "sub", "b.js.map"), []byte("m"), 0o644))
	must(os.MkdirAll(filepath.Join(root, "tree", ".git"), 0o755))
	must(os.WriteFile(filepath.Join(root, "tree", ".git", "HEAD"), []byte("x"), 0o644))
	must(os.Symlink("a.txt", filepath.Join(root, "tree", "link")))
	must(os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "escape")))
	must(os.Symlink("tree/a.txt", filepath.Join(root, "inside")))
	must(syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644))
	c, err := OpenSourceDir(root)
	must(err)

	for _, tc := range []struct{ src, want string }{
		{"../x", "leaves the build context"},
		{"tree/../../x", "leaves the build context"},
		{"escape", "outside the build context"},
		{"missing", "does not exist"},
		{"fifo", "named pipe"},
	} {
		_, err := c.Source(tc.src, "/x", nil, Attrs{})
		var se *SourceError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Source(%q) = %v; want a SourceError containing %q", tc.src, err, tc.want)
		}
	}
	// A symlink named directly is followed while it stays inside.
	es, err := c.Source("inside", "/x", nil, Attrs{})
	must(err)
	if len(es) != 1 || es[0].Type != Regular || es[0].Size != 1 {
		t.Errorf("inside: %+v", es)
	}
	// A tree keeps symlinks as symlinks, and applies exclude.
	es, err = c.Source("tree/", "/t", []string{"**/*.map", ".git/"}, Attrs{UID: 3})
	must(err)
	got := map[string]string{}
	for _, e := range es {
		got[e.Path] = e.Type.String() + " " + e.Target
		if e.UID != 3 {
			t.Errorf("%s: uid %d", e.Path, e.UID)
		}
		if e.Path == "/t/run.sh" && e.Mode != 0o755 || e.Path == "/t/a.txt" && e.Mode != 0o644 {
			t.Errorf("%s: mode %o", e.Path, e.Mode)
		}
	}
	want := map[string]string{"/t": "dir ", "/t/a.txt": "file ", "/t/run.sh": "file ", "/t/sub": "dir ", "/t/link": "symlink a.txt"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
	// A FIFO inside a tree is an error that names it.
	must(os.Rename(filepath.Join(root, "fifo"), filepath.Join(root, "tree", "sub", "fifo")))
	if _, err := c.Source("tree", "/t", nil, Attrs{}); err == nil || !strings.Contains(err.Error(), "tree/sub/fifo") {
		t.Errorf("fifo in tree: %v", err)
	}
}

func TestMatchGlob(t *testing.T) {
	for _, tc := range []struct {
		pat, rel  string
		dir, want bool
	}{
		{"**/*.map", "app.js.map", false, true},
		{"**/*.map", "a/b/app.js.map", false, true},
		{"*.map", "a/app.js.map", false, false},
		{"*.map", "app.js.map", false, true},
		{".git/", ".git", true, true},
		{".git/", ".git", false, false},
		{"a/**/z", "a/z", false, true},
		{"a/**/z", "a/b/c/z", false, true},
		{"a/**", "a/b/c", false, true},
		{"a/*/c", "a/b/c", false, true},
		{"a/*/c", "a/b/x/c", false, false},
		{"node_modules/", "x/node_modules", true, false},
		{"**/node_modules/", "x/node_modules", true, true},
	} {
		if got := MatchGlob(tc.pat, tc.rel, tc.dir); got != tc.want {
			t.Errorf("MatchGlob(%q, %q, dir=%v) = %v, want %v", tc.pat, tc.rel, tc.dir, got, tc.want)
		}
	}
}

func FuzzMatchGlob(f *testing.F) {
	f.Add("**/*.map", "a/b.map", false)
	f.Add("a/**/b/**", "a/x/b/y/z", true)
	f.Add("[", "x", false)
	f.Fuzz(func(t *testing.T, pat, rel string, dir bool) {
		if pat == "" {
			return // the spec refuses empty patterns
		}
		got := MatchGlob(pat, rel, dir)
		// "**/" + pat matches whatever pat matches.
		if got && !MatchGlob("**/"+pat, rel, dir) {
			t.Errorf("%q matches %q but **/%s does not", pat, rel, pat)
		}
	})
}

func TestNewestMTime(t *testing.T) {
	at := func(n int64) *int64 { return &n }
	for _, tc := range []struct {
		mtimes []*int64
		bound  int64
		want   int64
	}{
		{nil, 1000, 1000},
		{[]*int64{nil, nil}, 1000, 1000},
		{[]*int64{at(5), nil, at(700), at(600)}, 1000, 700},
		{[]*int64{at(5), at(2000)}, 1000, 1000},
		{[]*int64{at(0)}, 1000, 0},
	} {
		var es []Entry
		for _, m := range tc.mtimes {
			es = append(es, Entry{MTime: m})
		}
		if got := NewestMTime(es, tc.bound); got != tc.want {
			t.Errorf("NewestMTime(%v, %d) = %d, want %d", tc.mtimes, tc.bound, got, tc.want)
		}
	}
}

// TestExcludedPath: a path is excluded as the walk excludes it, by itself
// or by a parent directory, so a git history's paths (even deleted ones)
// are judged as the copy judges them.
func TestExcludedPath(t *testing.T) {
	patterns := []string{"**/*.map", "node_modules/", "tmp"}
	for rel, want := range map[string]bool{
		"app.js": false, "app.js.map": true, "a/b/app.js.map": true,
		"node_modules/x/y.js": true, "a/node_modules/y.js": false, "node_modules": false,
		"tmp": true, "tmp/x": true, "a/tmp": false,
	} {
		if got := ExcludedPath(patterns, rel); got != want {
			t.Errorf("ExcludedPath(%q) = %v, want %v", rel, got, want)
		}
	}
	// The same verdicts as the walk's, on disk.
	dir := t.TempDir()
	for _, p := range []string{"app.js", "app.js.map", "a/b/app.js.map", "a/b/keep.js", "node_modules/x/y.js", "a/node_modules/y.js", "tmp/x", "a/tmp"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644)
	}
	c, err := OpenSourceDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	es, err := c.Source(".", "/dst", patterns, Attrs{})
	if err != nil {
		t.Fatal(err)
	}
	walked := map[string]bool{}
	for _, e := range es {
		if e.Type == Regular {
			walked[strings.TrimPrefix(e.Path, "/dst/")] = true
		}
	}
	for _, p := range []string{"app.js", "app.js.map", "a/b/app.js.map", "a/b/keep.js", "node_modules/x/y.js", "a/node_modules/y.js", "tmp/x", "a/tmp"} {
		if walked[p] == ExcludedPath(patterns, p) {
			t.Errorf("%s: walked %v, ExcludedPath %v", p, walked[p], ExcludedPath(patterns, p))
		}
	}
}

func TestResolved(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "real", "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "real", "sub", "f"), []byte("x"), 0o644)
	os.Symlink("real/sub/f", filepath.Join(dir, "link"))
	os.Symlink("real", filepath.Join(dir, "dirlink"))
	c, err := OpenSourceDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{"link": "real/sub/f", "dirlink/": "real", "real/sub/f": "real/sub/f", ".": "", "./real/../real/sub": "real/sub"} {
		if got, err := c.Resolved(in); err != nil || got != want {
			t.Errorf("Resolved(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := c.Resolved("../x"); err == nil {
		t.Error("Resolved outside the context")
	}
}
