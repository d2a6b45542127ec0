package apt

import (
	"fmt"
	"path"
	"strings"

	"github.com/reprobuild/repro/pkg/layer"
)

// The usrmerge rules: Debian 12 lays out /bin, /sbin and /lib* as
// symlinks into /usr, while its packages still ship files under /bin and
// /lib. With usrmerge, Entries moves those files into /usr (rewriting the
// moved relative symlinks so they keep their meaning) and writes the
// symlinks /bin -> usr/bin, /sbin -> usr/sbin, /lib -> usr/lib and each
// other lib* a package uses; CheckUsrMerge says when a base cannot take
// that layout.

// usrMergeDirs are the top-level directories that usrmerge moves.
var usrMergeDirs = map[string]bool{"bin": true, "sbin": true, "lib": true, "lib32": true, "lib64": true, "libo32": true, "libx32": true}

// UsrMergeDir reports whether a top-level directory name (bin, lib64) is
// one that usrmerge turns into a symlink into /usr.
func UsrMergeDir(name string) bool { return usrMergeDirs[name] }

// usrMerge maps p into /usr when its first element is a merged directory.
func usrMerge(p string) string {
	first, _, _ := strings.Cut(p[1:], "/")
	if usrMergeDirs[first] {
		return "/usr" + p
	}
	return p
}

// mergedTarget rewrites a relative symlink target that usrmerge moved
// (orig -> p) so that it still points where the package meant.
func mergedTarget(orig, p, target string) string {
	if path.IsAbs(target) || orig == p {
		return target
	}
	want := usrMerge(path.Join(path.Dir(orig), target))
	if usrMerge(path.Join(path.Dir(p), target)) == want {
		return target
	}
	return relPath(path.Dir(p), want)
}

// TopEntry is what a base image has at a top-level path (/bin).
type TopEntry struct {
	Dir, Symlink bool
	Target       string // a symlink's target
}

// CheckUsrMerge refuses package entries that would hide what the base
// has at /bin, /sbin or /lib*: with usrmerge, a symlink over a real
// directory of the base would hide the directory's files; without it, a
// directory over the base's symlink would hide what the symlink leads to.
// base maps top-level paths (/bin) to what the base has there.
func CheckUsrMerge(entries []layer.Entry, usrmerge bool, base map[string]TopEntry) error {
	if len(base) == 0 {
		return nil
	}
	for _, e := range entries {
		first, _, _ := strings.Cut(e.Path[1:], "/")
		if !usrMergeDirs[first] {
			continue
		}
		top := "/" + first
		f, ok := base[top]
		if !ok {
			continue
		}
		switch {
		case usrmerge && e.Path == top && e.Type == layer.Symlink && f.Dir:
			return fmt.Errorf("the base has a real directory %s, and usrmerge would put the symlink %s -> %s over it, hiding the base's files there; this base is not usr-merged: set apt.usrmerge: false", top, top, e.Target)
		case usrmerge && e.Path == top && e.Type == layer.Symlink && f.Symlink && linkDest(top, f.Target) != linkDest(top, e.Target):
			return fmt.Errorf("the base's %s is a symlink to %s, and usrmerge would replace it by one to %s; this base lays out /usr its own way: set apt.usrmerge: false, or use another base", top, f.Target, e.Target)
		case !usrmerge && f.Symlink:
			return fmt.Errorf("the base's %s is a symlink to %s (a usr-merged base), and with usrmerge: false the packages' %s would replace it by a directory, hiding what it leads to; remove usrmerge: false", top, f.Target, e.Path)
		}
	}
	return nil
}

// linkDest is where a symlink at p (a top-level path) leads.
func linkDest(p, target string) string {
	if path.IsAbs(target) {
		return path.Clean(target)
	}
	return path.Join(path.Dir(p), target)
}
