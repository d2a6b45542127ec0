package disk

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/internal/testtool"
	"github.com/reprobuild/repro/pkg/imageref"
)

// layerOf makes a layer from tar headers; regular files hold body.
func layerOf(t testing.TB, body string, hdrs ...*tar.Header) v1.Layer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range hdrs {
		if h.ModTime.IsZero() {
			h.ModTime = epoch
		}
		h.Format = tar.FormatPAX
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, body)
		}
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

func debugfsOut(t *testing.T, img, req string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", req, img).Output()
	if err != nil {
		t.Fatalf("debugfs -R %q: %v", req, err)
	}
	return string(out)
}

// TestWriteExt4Metadata makes a disk of an image with the corners of ext4
// metadata: mtimes with nanoseconds and before 1970, a name that debugfs
// would read as an inode number, quotes and spaces, xattrs on a directory,
// an image-provided /lost+found, whiteouts across layers, and checks each
// with debugfs.
func TestWriteExt4Metadata(t *testing.T) {
	testtool.Require(t, "mke2fs", "debugfs", "e2fsck", "sfdisk")
	ns := time.Unix(1600000000, 123456789).UTC()
	img := imageOf(t,
		layerOf(t, "one",
			&tar.Header{Name: "gone/", Typeflag: tar.TypeDir, Mode: 0o755},
			&tar.Header{Name: "gone/file", Typeflag: tar.TypeReg, Mode: 0o644},
			&tar.Header{Name: "kept", Typeflag: tar.TypeReg, Mode: 0o600},
		),
		layerOf(t, "two",
			&tar.Header{Name: ".wh.gone", Typeflag: tar.TypeReg},
			&tar.Header{Name: "<12>", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 3, Gid: 4},
			&tar.Header{Name: "high-ids", Typeflag: tar.TypeReg, Mode: 0o2755, Uid: 100000, Gid: 70000},
			&tar.Header{Name: `a "quoted" name`, Typeflag: tar.TypeReg, Mode: 0o644, ModTime: ns},
			&tar.Header{Name: "old", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: time.Unix(-100, 0)},
			&tar.Header{Name: "lost+found/", Typeflag: tar.TypeDir, Mode: 0o700},
			&tar.Header{Name: "lost+found/note", Typeflag: tar.TypeReg, Mode: 0o644},
			&tar.Header{Name: "xdir/", Typeflag: tar.TypeDir, Mode: 0o1777, Uid: 9, Gid: 9,
				PAXRecords: map[string]string{"SCHILY.xattr.user.dir": "d", "SCHILY.xattr.trusted.t": "\x00\x01\xff"}},
		),
	)
	dir := t.TempDir()
	out := filepath.Join(dir, "d.raw")
	tmp := t.TempDir()
	rec, err := Write(context.Background(), imageref.Picked{Image: img}, out, Options{Format: Raw, FS: Ext4, Size: 32 << 20, TempDir: tmp, Path: os.Getenv("PATH")})
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the work directory is left: %v", left)
	}
	// The partition, as its own file.
	raw, _ := os.ReadFile(out)
	part := filepath.Join(dir, "part")
	os.WriteFile(part, raw[rec.PartitionTable.Start:rec.PartitionTable.Start+rec.PartitionTable.Size], 0o600)
	if o, err := exec.Command("e2fsck", "-fn", part).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck: %v\n%s", err, o)
	}
	ls := debugfsOut(t, part, "ls -p -r /")
	for _, want := range []string{"/<12>/", `/a "quoted" name/`, "/kept/", "/old/", "/lost+found/", "/xdir/"} {
		if !strings.Contains(ls, want) {
			t.Errorf("ls / lacks %s:\n%s", want, ls)
		}
	}
	if strings.Contains(ls, "/gone/") {
		t.Errorf("the whited-out /gone is on the disk:\n%s", ls)
	}
	for req, wants := range map[string][]string{
		`stat "/<12>"`:              {"Mode:  0640", "User:     3   Group:     4"},
		`stat "/a ""quoted"" name"`: {"mtime: 0x5f5e1000:1d6f3454"}, // 123456789 << 2
		`stat /high-ids`:            {"Mode:  02755", "User: 100000   Group: 70000"},
		`stat /old`:                 {"mtime: 0x00000000:00000000", "crtime: 0x00000000:00000000"},
		`stat /xdir`:                {"Mode:  01777", "User:     9   Group:     9", "atime: 0x6553f100:00000000"},
		`ea_list /xdir`:             {`user.dir (1) = "d"`, "trusted.t (3) = 00 01 ff"},
		`ls -p -r /lost+found`:      {"/note/"},
		`stat /lost+found`:          {"Mode:  0700", "ctime: 0x6553f100:00000000"},
		`cat /kept`:                 {"one"},
		`cat "/<12>"`:               {"two"},
	} {
		got := debugfsOut(t, part, req)
		for _, w := range wants {
			if !strings.Contains(got, w) {
				t.Errorf("debugfs %s lacks %q:\n%s", req, w, got)
			}
		}
	}
}
