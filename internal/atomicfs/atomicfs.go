// Package atomicfs holds the file-system moves that repro's writers share
// (output, sign, gc, disk): writing a file by rename, the flock on a layout
// directory under which index.json changes, and making parent directories
// that a failed writer takes away again.
package atomicfs

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/reprobuild/repro/pkg/fault"
)

// WriteFile writes data to a temporary file beside path, mode 0644, then
// renames it over path: readers see the old file or the new, never part.
func WriteFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fault.Op(err)
	}
	defer os.Remove(f.Name()) // fails harmlessly after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fault.Op(err)
	}
	if err := f.Close(); err != nil {
		return fault.Op(err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return fault.Op(err)
	}
	return fault.Op(os.Rename(f.Name(), path))
}

// LockDir takes an flock on dir, exclusive to change what is in it,
// shared to read it, and returns the function that releases it.
func LockDir(dir string, exclusive bool) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fault.Op(err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fault.Op(fmt.Errorf("locking %s: %w", dir, err))
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
