package disk

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/rootfs"
)

var epoch = time.Unix(1700000000, 0).UTC()

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		bad  bool
		msg  string
	}{
		{in: "2G", want: 2 << 30},
		{in: "256M", want: 256 << 20},
		{in: "512MiB", want: 512 << 20},
		{in: "1GB", want: 1 << 30},
		{in: "16777216", want: 16 << 20},
		{in: "1T", want: 1 << 40},
		{in: "8M", bad: true},       // below MinSize
		{in: "1000000K", bad: true}, // not whole MiB
		{in: "-2G", bad: true},
		{in: "2X", bad: true},
		{in: "", bad: true},
		{in: "G", bad: true},
		{in: "99999T", bad: true, msg: "above the largest disk"},
		{in: "99999999999999999999", bad: true, msg: "not a size"},
	} {
		got, err := ParseSize(c.in)
		if c.bad {
			if err == nil || fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("ParseSize(%q) = %d, %v; want a bad-input error saying %q", c.in, got, err, c.msg)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

// The identifiers are part of the layout: pinned here, so that a change
// is a deliberate new layout version.
func TestIdentifiersPinned(t *testing.T) {
	ids := newIdentifiers("sha256:310334d8ca5889ed63c96c35b1cb3e36d904f13269113c4e1b322cfb97a00bec")
	got := []string{ids.disk, ids.partition, ids.fs, ids.hashSeed}
	want := []string{
		"028a36fd-f494-416d-ab82-928742b8ff7b",
		"9261a5c4-911a-47cc-a98f-5e06d0501ee8",
		"d26471ce-b088-40bd-b081-46a60a3ce3d8",
		ids.hashSeed,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("identifiers changed (-want +got):\n%s", diff)
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Errorf("identifier %s used twice", id)
		}
		seen[id] = true
		if id[14] != '4' || !strings.ContainsRune("89ab", rune(id[19])) {
			t.Errorf("%s: not version 4, variant 1", id)
		}
	}
	if ids.vmdkCID == 0xffffffff {
		t.Error("the vmdk CID must not be ffffffff")
	}
	other := newIdentifiers("sha256:0000000000000000000000000000000000000000000000000000000000000000")
	if other.disk == ids.disk || other.fs == ids.fs {
		t.Error("different images gave the same identifiers")
	}
}

func TestGPTScript(t *testing.T) {
	ids := newIdentifiers("sha256:00")
	typ, ok := rootType("arm64")
	if !ok || typ != "B921B045-1DF0-41C3-AF44-4C6F280D3FAE" {
		t.Fatalf("arm64 root type = %s, %v", typ, ok)
	}
	if typ, ok := rootType("sparc"); ok || typ != linuxData {
		t.Errorf("an unknown architecture gets %s, %v; want Linux filesystem data", typ, ok)
	}
	s := gptScript(ids, layoutFor(64<<20), "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", nil)
	for _, want := range []string{
		"label: gpt\n", "label-id: " + strings.ToUpper(ids.disk) + "\n", "first-lba: 2048\n",
		"start=2048, size=126976, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=" + strings.ToUpper(ids.partition),
	} {
		if !strings.Contains(s, want) {
			t.Errorf("sfdisk script lacks %q:\n%s", want, s)
		}
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/passwd":        `"/etc/passwd"`,
		`/we"ird name`:       `"/we""ird name"`,
		`/back\slash`:        `"/back\slash"`,
		"/tab\there":         "\"/tab\there\"",
		`/"`:                 `"/"""`,
		"/<12>":              `"/<12>"`,
		"/uni/\u00e9t\u00e9": "\"/uni/\u00e9t\u00e9\"",
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestTimeFields(t *testing.T) {
	for _, c := range []struct {
		t     time.Time
		sec   int64
		extra uint32
	}{
		{time.Unix(1700000000, 0), 1700000000, 0},
		{time.Unix(1700000000, 5), 1700000000, 5 << 2},
		{time.Unix(-5, 0), 0, 0},
		{time.Unix(1<<31, 0), 1 << 31, 1}, // past 2038: epoch bits
		{time.Unix(1<<40, 0), 1<<34 - 1<<31 - 1, 3},
	} {
		sec, extra := timeFields(c.t)
		if sec != c.sec || extra != c.extra {
			t.Errorf("timeFields(%v) = %d, %d; want %d, %d", c.t.Unix(), sec, extra, c.sec, c.extra)
		}
	}
}

func TestReplaceCID(t *testing.T) {
	text := "# Disk DescriptorFile\nversion=1\nCID=%s\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\n"
	for _, old := range []string{"c5f03f96", "5f03f96", "0"} {
		desc := append([]byte(fmt.Sprintf(text, old)), make([]byte, 512)...)
		got, err := replaceCID(desc, 0x1234abcd)
		if err != nil {
			t.Fatal(err)
		}
		want := []byte(fmt.Sprintf(text, "1234abcd"))
		want = append(want, make([]byte, len(desc)-len(want))...)
		if !bytes.Equal(got, want) {
			t.Errorf("CID=%s: got\n%q\nwant\n%q", old, got, want)
		}
	}
	for _, bad := range []string{"version=1\nparentCID=ffffffff\n", "version=1\nCID=\n", "version=1\nCID=123456789\n"} {
		if _, err := replaceCID(append([]byte(bad), 0, 0, 0, 0, 0, 0, 0, 0), 1); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
	if _, err := replaceCID([]byte("x\nCID=1\n"), 1); err == nil {
		t.Error("a descriptor without room was accepted")
	}
}

func TestFindToolsNamesPackages(t *testing.T) {
	old := sbinDirs
	sbinDirs = nil
	defer func() { sbinDirs = old }()
	_, err := FindTools(Ext4, QCOW2, t.TempDir())
	if err == nil {
		t.Fatal("found tools in an empty directory")
	}
	if fault.KindOf(err) != fault.Operational {
		t.Errorf("a missing tool is %v, want operational (exit 3)", fault.KindOf(err))
	}
	for _, want := range []string{"mke2fs", "sfdisk", "qemu-img", "e2fsprogs", "fdisk", "qemu-utils"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	dir := t.TempDir()
	for _, name := range []string{"sfdisk", "mksquashfs"} {
		os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755)
	}
	tools, err := FindTools(SquashFS, Raw, "relative/dir:"+dir)
	if err != nil {
		t.Fatal(err)
	}
	if tools["mksquashfs"].Path != filepath.Join(dir, "mksquashfs") {
		t.Errorf("mksquashfs found at %s", tools["mksquashfs"].Path)
	}
}

// files builds a final filesystem from files, as one layer.
func files(fs ...*rootfs.File) *rootfs.FS {
	for _, f := range fs {
		if f.ModTime.IsZero() {
			f.ModTime = epoch
		}
	}
	return rootfs.Flatten([][]*rootfs.File{fs})
}

func TestPlanHostile(t *testing.T) {
	long := strings.Repeat("n", 256)
	p := newPlan(files(
		&rootfs.File{Path: "/etc", Kind: rootfs.Dir, Mode: 0o755},
		&rootfs.File{Path: "/etc/passwd", Kind: rootfs.Regular, Mode: 0o644, Size: 10},
		&rootfs.File{Path: "/evil", Kind: rootfs.Symlink, Link: "../../../../tmp"},
		&rootfs.File{Path: "/evil/pwned", Kind: rootfs.Regular, Size: 1},
		&rootfs.File{Path: "/evil/deeper/pwned", Kind: rootfs.Regular, Size: 1},
		&rootfs.File{Path: "/abs", Kind: rootfs.Symlink, Link: "/etc/shadow"},
		&rootfs.File{Path: "/empty-link", Kind: rootfs.Symlink},
		&rootfs.File{Path: "/empty-link/x", Kind: rootfs.Regular},
		&rootfs.File{Path: "/file", Kind: rootfs.Regular},
		&rootfs.File{Path: "/file/child", Kind: rootfs.Regular},
		&rootfs.File{Path: "/hl-outside", Kind: rootfs.Hardlink, Link: "/etc/shadow"},
		&rootfs.File{Path: "/hl-dir", Kind: rootfs.Hardlink, Link: "/etc"},
		&rootfs.File{Path: "/hl-ok", Kind: rootfs.Hardlink, Link: "/etc/passwd"},
		&rootfs.File{Path: "/hl-chain", Kind: rootfs.Hardlink, Link: "/hl-ok"},
		&rootfs.File{Path: "/hl-loop", Kind: rootfs.Hardlink, Link: "/hl-loop"},
		&rootfs.File{Path: "/a-hl-to-later", Kind: rootfs.Hardlink, Link: "/z/late"},
		&rootfs.File{Path: "/z/late", Kind: rootfs.Regular, Size: 3}, // no /z: implied
		&rootfs.File{Path: "/dev/null", Kind: rootfs.CharDev, Mode: 0o666, Devmajor: 1, Devminor: 3},
		&rootfs.File{Path: "/dev/sda", Kind: rootfs.BlockDev, Mode: 0o660, Devmajor: 8},
		&rootfs.File{Path: "/dev/fifo", Kind: rootfs.FIFO, Mode: 0o600},
		&rootfs.File{Path: "/new\nline", Kind: rootfs.Regular},
		&rootfs.File{Path: "/" + long, Kind: rootfs.Dir},
		&rootfs.File{Path: "/" + long + "/under", Kind: rootfs.Regular},
		&rootfs.File{Path: "/lost+found", Kind: rootfs.Regular},
		&rootfs.File{Path: "/big-owner", Kind: rootfs.Regular, UID: 1 << 40},
	), epoch)

	var skipped []string
	for _, s := range p.skipped {
		skipped = append(skipped, s.Path)
	}
	sort.Strings(skipped)
	wantSkipped := []string{
		"/" + long, "/" + long + "/under", "/big-owner",
		"/empty-link", "/empty-link/x", "/evil/deeper/pwned", "/evil/pwned", "/file/child",
		"/hl-dir", "/hl-loop", "/hl-outside", "/lost+found", "/new\nline",
	}
	sort.Strings(wantSkipped)
	if diff := cmp.Diff(wantSkipped, skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s\nreasons: %v", diff, p.skipped)
	}
	var kept []string
	for _, n := range p.nodes {
		k := n.path + " " + string(n.kind)
		if n.implied {
			k += " implied"
		}
		if n.linkTo != nil {
			k += " -> " + n.linkTo.path
		}
		kept = append(kept, k)
	}
	want := []string{
		"/ dir implied", "/a-hl-to-later hardlink -> /z/late", "/abs symlink",
		"/dev dir implied", "/dev/fifo fifo", "/dev/null chardev", "/dev/sda blockdev",
		"/etc dir", "/etc/passwd file", "/evil symlink", "/file file",
		"/hl-chain hardlink -> /etc/passwd", "/hl-ok hardlink -> /etc/passwd",
		"/z dir implied", "/z/late file",
	}
	if diff := cmp.Diff(want, kept); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
	if p.dataBytes != 13 {
		t.Errorf("dataBytes = %d, want 13 (hard links counted once)", p.dataBytes)
	}
	if err := p.checkFits(12, 16<<20); err == nil || fault.KindOf(err) != fault.BadInput {
		t.Errorf("checkFits(12) = %v, want bad input", err)
	}
}

// tarEntry is one entry of a hand-made layer.
type tarEntry struct {
	name, link, body string
	typ              byte
	major, minor     int64
}

func hostileLayer(t testing.TB, entries []tarEntry) v1.Layer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o755, Size: int64(len(e.body)),
			Devmajor: e.major, Devminor: e.minor, ModTime: epoch, Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	data := b.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func imageOf(t testing.TB, layers ...v1.Layer) v1.Image {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = "amd64", "linux", v1.Time{Time: epoch}
	img, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		if img, err = mutate.Append(img, mutate.Addendum{Layer: l, MediaType: types.OCILayer}); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// snapshot lists every path under dir with its type and size.
func snapshot(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel+" "+fi.Mode().Type().String())
		return nil
	})
	return out
}

// TestWriteContained writes a hostile layer into a work directory that
// sits beside a sentinel directory, and checks that nothing outside the
// work directory changed, nothing was followed, and no device node exists.
func TestWriteContained(t *testing.T) {
	sandbox := t.TempDir()
	outside := filepath.Join(sandbox, "outside")
	os.Mkdir(outside, 0o755)
	os.WriteFile(filepath.Join(outside, "target"), []byte("do not touch"), 0o644)
	work := filepath.Join(sandbox, "work")
	os.Mkdir(work, 0o700)
	before := snapshot(t, outside)

	img := imageOf(t, hostileLayer(t, []tarEntry{
		{name: "../../../escape-dotdot", typ: tar.TypeReg, body: "dotdot"},
		{name: "/abs/file", typ: tar.TypeReg, body: "abs"},
		{name: "evil", typ: tar.TypeSymlink, link: "../outside"},
		{name: "evil/pwned", typ: tar.TypeReg, body: "through the symlink"},
		{name: "evil-abs", typ: tar.TypeSymlink, link: outside},
		{name: "evil-abs/pwned", typ: tar.TypeReg, body: "through the absolute symlink"},
		{name: "hl-out", typ: tar.TypeLink, link: "../outside/target"},
		{name: "hl-abs", typ: tar.TypeLink, link: filepath.Join(outside, "target")},
		{name: "dev/", typ: tar.TypeDir},
		{name: "dev/null", typ: tar.TypeChar, major: 1, minor: 3},
		{name: "dev/fifo", typ: tar.TypeFifo},
		{name: "zeros", typ: tar.TypeReg, body: string(make([]byte, 1<<20)) + "end"},
	}))
	fsys, err := rootfs.Read(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	p := newPlan(fsys, epoch)
	if err := p.write(context.Background(), work, img, fsys); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, snapshot(t, outside)); diff != "" {
		t.Errorf("the directory outside changed:\n%s", diff)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "target")); string(b) != "do not touch" {
		t.Errorf("outside/target now holds %q", b)
	}
	got := snapshot(t, work)
	want := []string{
		". d---------", "abs d---------", "abs/file ----------", "dev d---------",
		"escape-dotdot ----------", "evil L---------", "evil-abs L---------", "zeros ----------",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("work tree (-want +got):\n%s", diff)
	}
	if b, _ := os.ReadFile(filepath.Join(work, "escape-dotdot")); string(b) != "dotdot" {
		t.Errorf("escape-dotdot holds %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(work, "evil")); l != "../outside" {
		t.Errorf("evil -> %q, want the target as written", l)
	}
	for _, name := range []string{"abs", "dev"} {
		if fi, _ := os.Stat(filepath.Join(work, name)); fi.Mode().Perm() != 0o700 {
			t.Errorf("%s has mode %v, want 0700 whatever the umask", name, fi.Mode())
		}
	}
	// The megabyte of zeros became a hole.
	var st syscallStat
	if blocks, err := st.blocks(filepath.Join(work, "zeros")); err != nil || blocks > 16 {
		t.Errorf("zeros takes %d blocks (%v); want a hole", blocks, err)
	}
	var skipped []string
	for _, s := range p.skipped {
		skipped = append(skipped, s.Path)
	}
	sort.Strings(skipped)
	if diff := cmp.Diff([]string{"/evil-abs/pwned", "/evil/pwned", "/hl-abs", "/hl-out"}, skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	if p.byPath["/dev/null"] == nil || p.byPath["/dev/fifo"] == nil {
		t.Error("device nodes were not kept for debugfs")
	}
}

// FuzzPlanContained: whatever the names and link targets, writing the plan
// creates nothing outside the work directory.
func FuzzPlanContained(f *testing.F) {
	f.Add("../x", "../../y", "evil/../z", "/abs")
	f.Add("a", "..", "a/b", "../../../../../etc")
	f.Add("./.", "a\x00b", "//x//y", "a/./b")
	f.Fuzz(func(t *testing.T, n1, l1, n2, l2 string) {
		sandbox := t.TempDir()
		work := filepath.Join(sandbox, "work")
		os.Mkdir(work, 0o700)
		fsys := files(
			&rootfs.File{Path: clean(n1), Kind: rootfs.Symlink, Link: l1},
			&rootfs.File{Path: clean(n2), Kind: rootfs.Regular},
			&rootfs.File{Path: clean(n2 + "/" + n1), Kind: rootfs.Dir},
			&rootfs.File{Path: clean(l2), Kind: rootfs.Hardlink, Link: clean(n2)},
			&rootfs.File{Path: clean(n1 + "/f"), Kind: rootfs.Regular},
		)
		p := newPlan(fsys, epoch)
		// Regular files stay empty: no layer to Walk.
		for _, n := range p.nodes {
			n.size = 0
		}
		err := p.write(context.Background(), work, emptyImage{}, fsys)
		if err != nil && !errors.Is(err, fs.ErrExist) && !errors.Is(err, fs.ErrInvalid) && !strings.Contains(err.Error(), "invalid argument") {
			t.Logf("write: %v", err)
		}
		entries, _ := os.ReadDir(sandbox)
		if len(entries) != 1 || entries[0].Name() != "work" {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Fatalf("the sandbox holds %v", names)
		}
	})
}

func clean(s string) string { return filepath.Clean("/" + s) }

// emptyImage is an image without layers, for Walk.
type emptyImage struct{ v1.Image }

func (emptyImage) Layers() ([]v1.Layer, error) { return nil, nil }

type syscallStat struct{}

// blocks is the number of 512-byte blocks a file occupies.
func (syscallStat) blocks(p string) (int64, error) {
	var st syscall.Stat_t
	err := syscall.Stat(p, &st)
	return st.Blocks, err
}

// TestHashAndCopySparse: hashing skips holes without changing the sum, and
// copying into a disk keeps the bytes and the holes.
func TestHashAndCopySparse(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	f, _ := os.Create(src)
	f.WriteAt([]byte("head"), 0)
	f.WriteAt(bytes.Repeat([]byte{7}, 5000), 3<<20)
	f.Truncate(8 << 20)
	f.Close()
	want, _ := os.ReadFile(src)
	sum, size, err := hashFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if ref := sha256.Sum256(want); sum != hex.EncodeToString(ref[:]) || size != int64(len(want)) {
		t.Errorf("hashFile = %s, %d; want %x, %d", sum, size, ref, len(want))
	}
	dst := filepath.Join(dir, "dst")
	os.WriteFile(dst, nil, 0o600)
	os.Truncate(dst, 10<<20)
	if err := copyInto(dst, src, 1<<20); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dst)
	if !bytes.Equal(got[1<<20:9<<20], want) || !isZero(got[:1<<20]) || !isZero(got[9<<20:]) {
		t.Error("copyInto changed the bytes")
	}
	var st syscallStat
	if blocks, _ := st.blocks(dst); blocks > 64 {
		t.Errorf("the copy takes %d blocks; its holes were filled", blocks)
	}
}
