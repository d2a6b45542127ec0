package layer

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
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
