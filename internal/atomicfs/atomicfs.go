// Package atomicfs holds the file-system moves that repro's writers share
// (layout, output, disk, cmd): writing a file by rename, temporary files
// and directories that name their owner (so that the debris of a killed
// run can be told from a live run's files and removed), and making parent
// directories that a failed writer takes away again.
package atomicfs

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/reprobuild/repro/pkg/fault"
)

// WriteFile writes data to a temporary file beside path (named
// .tmp-<pid>-…, see CreateTemp), mode 0644, flushes it to disk, then
// renames it over path: readers see the old file or the new, never part.
func WriteFile(path string, data []byte) error { return WriteFileMode(path, data, 0o644) }

// WriteFileMode is WriteFile with the file's mode; the temporary file is
// 0600 until it is written, so a private key is never readable by others.
func WriteFileMode(path string, data []byte, mode os.FileMode) error {
	f, t, err := CreateTemp(filepath.Dir(path), ".tmp-", "-"+filepath.Base(path))
	if err != nil {
		return fault.Op(err)
	}
	defer t.Remove() // fails harmlessly after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fault.Op(err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fault.Op(err)
	}
	if err := f.Close(); err != nil {
		return fault.Op(err)
	}
	if err := os.Chmod(f.Name(), mode); err != nil {
		return fault.Op(err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fault.Op(fmt.Errorf("replacing %s: %w", path, err))
	}
	return nil
}
