package layer

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// lstatAt says what os.Lstat says.
func TestLstatAt(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o640)
	os.WriteFile(filepath.Join(dir, "suid"), nil, 0o755)
	os.Chmod(filepath.Join(dir, "suid"), 0o4755|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)
	os.Mkdir(filepath.Join(dir, "dir"), 0o700)
	os.Symlink("file", filepath.Join(dir, "link"))
	syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600)
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, n := range []string{"file", "suid", "dir", "link", "fifo"} {
		want, err := os.Lstat(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		got, err := lstatAt(int(f.Fd()), dir, n)
		if err != nil {
			t.Fatal(err)
		}
		if got.Mode() != want.Mode() || got.Size() != want.Size() || !got.ModTime().Equal(want.ModTime()) || got.IsDir() != want.IsDir() || got.Name() != n {
			t.Errorf("%s: lstatAt %v %d %v, os.Lstat %v %d %v", n, got.Mode(), got.Size(), got.ModTime(), want.Mode(), want.Size(), want.ModTime())
		}
		if *got.Sys().(*syscall.Stat_t) != *want.Sys().(*syscall.Stat_t) {
			t.Errorf("%s: the stats differ", n)
		}
	}
	if l, err := readlinkAt(int(f.Fd()), dir, "link"); err != nil || l != "file" {
		t.Errorf("readlinkAt: %q %v", l, err)
	}
	if _, err := lstatAt(int(f.Fd()), dir, "gone"); !os.IsNotExist(err) {
		t.Errorf("a missing name: %v", err)
	}
}

// withUnknownTypes makes the walk's getdents report every entry's type as
// DT_UNKNOWN, as XFS without ftype and some network and overlay file
// systems do, for the rest of the test.
func withUnknownTypes(t *testing.T) {
	t.Helper()
	orig := getdents
	getdents = func(fd int, buf []byte) (int, error) {
		n, err := orig(fd, buf)
		for b := buf[:max(n, 0)]; len(b) >= 19; {
			reclen := int(b[16]) | int(b[17])<<8
			b[18] = unix.DT_UNKNOWN
			b = b[reclen:]
		}
		return n, err
	}
	t.Cleanup(func() { getdents = orig })
}

// A walk on a file system whose listings give no types (d_type 0) finds
// the same entries as one that gives them: each entry is lstat'ed, and an
// exclude pattern for directories only ("cache/") still excludes the
// directory.
func TestWalkUnknownTypes(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"a.txt", "sub/b.txt", "sub/deep/c.txt", "cache/secret.txt", "sub/cache/x"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(p), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "notdir"), []byte("file, not a dir"), 0o644)
	os.Symlink("sub", filepath.Join(dir, "link"))
	walk := func() []string {
		t.Helper()
		c, err := OpenSourceDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		es, err := c.Source(".", "/app", []string{"cache/", "**/cache/", "notdir/"}, Attrs{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, fmt.Sprintf("%s %v %s", e.Path, e.Type, e.Target))
		}
		return out
	}
	want := walk()
	if s := strings.Join(want, "\n"); strings.Contains(s, "cache") || !strings.Contains(s, "/app/notdir") || !strings.Contains(s, "/app/sub/deep/c.txt") {
		t.Fatalf("the walk with types is wrong; the test is wrong:\n%s", s)
	}
	withUnknownTypes(t)
	if got := walk(); !slices.Equal(got, want) {
		t.Errorf("with d_type DT_UNKNOWN the walk gives\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A directory whose listing takes several getdents buffers (names of 255
// bytes, ~190 KiB of records) is listed whole, less . and ..; a walk that
// fails (a FIFO, deep in the tree) leaves no directory open.
func TestWalkBigDirAndFailure(t *testing.T) {
	dir := t.TempDir()
	want := map[string]bool{}
	for i := range 700 {
		n := fmt.Sprintf("%04d", i) + strings.Repeat("n", 251)
		if i%3 == 0 {
			n = n[:19+i%200] // some of every length, records ending anywhere in a buffer
		}
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
		want["/"+n] = true
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	des, err := readDir(fd, dir, make([]byte, 32<<10))
	unix.Close(fd)
	if err != nil || len(des) != len(want) {
		t.Fatalf("readDir: %d names (want %d), %v", len(des), len(want), err)
	}
	for _, de := range des {
		if !want["/"+de.name] || de.typ != unix.DT_REG {
			t.Fatalf("readDir listed %q (type %d)", de.name, de.typ)
		}
	}

	openFDs := func() int { es, _ := os.ReadDir("/proc/self/fd"); return len(es) }
	for i := range 20 {
		os.MkdirAll(filepath.Join(dir, fmt.Sprintf("d%02d/e/f", i)), 0o755)
	}
	syscall.Mkfifo(filepath.Join(dir, "d07/e/f/fifo"), 0o600)
	c, err := OpenSourceDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	before := openFDs()
	for range 5 {
		if _, err := c.Source(".", "/", nil, Attrs{}); err == nil || !strings.Contains(err.Error(), "named pipe") {
			t.Fatalf("a walk through a FIFO: %v", err)
		}
	}
	if after := openFDs(); after > before {
		t.Errorf("%d descriptors open after 5 failed walks, %d before", after, before)
	}
}
