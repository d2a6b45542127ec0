package layout

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/reprobuild/repro/internal/atomicfs"
	"github.com/reprobuild/repro/pkg/fault"
)

// cleanOwned removes the temporary files of the layout at dir whose owner
// is gone: in the layout, in its blob directories, and new layouts staged
// beside it, and returns what it removed. It is best effort; what it
// cannot remove stays for Clean.
func cleanOwned(dir string) []string {
	var removed []string
	for _, d := range tempDirs(dir) {
		r, _ := atomicfs.CleanStale(d, tmpPrefix)
		removed = append(removed, r...)
	}
	r, _ := atomicfs.CleanStale(filepath.Dir(dir), freshPrefix(dir))
	return append(removed, r...)
}

// tempDirs are the directories of a layout where writers make temporary
// names: the layout and each blobs/<algorithm>/.
func tempDirs(dir string) []string {
	out := []string{dir}
	algs, _ := os.ReadDir(filepath.Join(dir, "blobs"))
	for _, a := range algs {
		if a.IsDir() {
			out = append(out, filepath.Join(dir, "blobs", a.Name()))
		}
	}
	return out
}

// Clean removes the debris of killed writers from the layout that l
// holds exclusively: temporary names whose owner is gone, and those that
// older versions of repro made without an owner (.tmp-* in the layout and
// its blob directories, .<name>.tmp-* beside it). It returns the paths
// removed, those that Lock removed included.
func (l *Locked) Clean() ([]string, error) {
	if !l.exclusive {
		return nil, errors.New("layout: cleaned under a shared lock")
	}
	removed := l.cleaned
	var firstErr error
	sweep := func(dir, prefix string) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) && firstErr == nil {
				firstErr = fault.Op(err)
			}
			return
		}
		stale, _ := atomicfs.CleanStale(dir, prefix)
		removed = append(removed, stale...)
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), prefix) {
				continue
			}
			if _, owned := atomicfs.Owner(e.Name(), prefix); owned {
				continue // CleanStale's business: gone, or live
			}
			p := filepath.Join(dir, e.Name())
			if err := os.RemoveAll(p); err != nil {
				if firstErr == nil {
					firstErr = fault.Op(err)
				}
				continue
			}
			removed = append(removed, p)
		}
	}
	for _, d := range tempDirs(l.dir) {
		sweep(d, tmpPrefix)
	}
	sweep(filepath.Dir(l.dir), freshPrefix(l.dir))
	return removed, firstErr
}
