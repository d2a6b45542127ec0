package layer

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// Type is the kind of a layer entry.
type Type int

const (
	Regular Type = iota
	Dir
	Symlink
	Hardlink
	Whiteout
)

func (t Type) String() string {
	return [...]string{"file", "dir", "symlink", "hardlink", "whiteout"}[t]
}

// Entry is one path of a layer, before canonical ordering.
type Entry struct {
	// Path is absolute and clean (/etc/motd).
	Path string
	Type Type
	// Mode holds permission bits, setuid, setgid and sticky.
	Mode     uint32
	UID, GID int
	// Target is a symlink's target, as written, or a hard link's target,
	// an absolute path of a regular entry of the same layer.
	Target string
	// Xattrs are extended attributes, such as security.capability.
	Xattrs map[string]string
	// Size and Open give a regular file's content. Open is called once,
	// while the layer is written; a content whose length differs from Size
	// is an error.
	Size int64
	Open func() (io.ReadCloser, error)
	// MTime, when set, is the entry's own mtime in seconds since 1970
	// (a .deb's file keeps the package's): in format 2 it is written
	// clamped to the layer's epoch; format 1 ignores it.
	MTime *int64
	// Origin says where the entry came from, for messages
	// (layers[0].contents[2], or a context path).
	Origin string
	// HostPath, for a regular file read from disk (the build context, the
	// cache), is the file Open reads: the layer cache's stat cache keys
	// its content hash by it. It is no part of the layer's bytes.
	HostPath string
	// HostInfo, when set, is HostPath's lstat as the entry was made, so
	// that the stat cache need not stat the file again.
	HostInfo fs.FileInfo
}

// node is an entry placed in the canonical order.
type node struct {
	Entry
	name     string // tar name: relative, directories ending in /
	key      string // sort key: name without the trailing /
	linkname string // tar linkname of a hard link
}

// ConflictError is an entry list that cannot form a layer.
type ConflictError struct{ Msg string }

func (e *ConflictError) Error() string { return e.Msg }

func conflict(format string, args ...any) error {
	return &ConflictError{Msg: fmt.Sprintf(format, args...)}
}

func describe(e *Entry) string {
	if e.Origin == "" {
		return e.Path
	}
	return e.Path + " (" + e.Origin + ")"
}

// canonical checks entries and returns them in the tar rule's order, with
// implicit parents added and hard-link groups arranged.
func canonical(entries []Entry) ([]*node, error) {
	byPath := make(map[string]*node, len(entries))
	for i := range entries {
		e := entries[i]
		if e.Path == "" || e.Path[0] != '/' || path.Clean(e.Path) != e.Path || e.Path == "/" {
			return nil, conflict("%s: not a clean absolute path", describe(&e))
		}
		if prev, dup := byPath[e.Path]; dup {
			return nil, conflict("%s is written twice: by %s and by %s; keep one", e.Path, originOr(prev.Origin), originOr(e.Origin))
		}
		byPath[e.Path] = &node{Entry: e}
	}
	// Whiteouts may not hide what the same layer writes.
	for _, n := range byPath {
		if n.Type != Whiteout {
			continue
		}
		for p := range byPath {
			if strings.HasPrefix(p, n.Path+"/") {
				return nil, conflict("%s removes %s, but %s writes inside it in the same layer; remove in one layer and write in a later one", describe(&n.Entry), n.Path, describe(&byPath[p].Entry))
			}
		}
	}
	// Implicit parents, and parents that are not directories.
	for _, n := range sortedNodes(byPath) {
		for p := path.Dir(n.Path); p != "/"; p = path.Dir(p) {
			parent, ok := byPath[p]
			if !ok {
				byPath[p] = &node{Entry: Entry{Path: p, Type: Dir, Mode: 0o755, Origin: "implicit parent of " + n.Path}}
				continue
			}
			if parent.Type != Dir {
				return nil, conflict("%s is a %s, but %s is inside it; make %s a dir or move the entry", describe(&parent.Entry), parent.Type, describe(&n.Entry), p)
			}
		}
	}
	// Hard-link groups: the group's first path in sort order carries the
	// data; the others link to it.
	groups := map[string][]*node{} // root regular path -> links
	for _, n := range byPath {
		if n.Type != Hardlink {
			continue
		}
		t, ok := byPath[n.Target]
		seen := map[string]bool{n.Path: true}
		for ok && t.Type == Hardlink && !seen[t.Path] {
			seen[t.Path] = true
			t, ok = byPath[t.Target]
		}
		if !ok {
			return nil, conflict("hard link %s points at %s, which this layer does not hold; a hard link's target must be a regular file of the same layer", describe(&n.Entry), n.Target)
		}
		if t.Type != Regular {
			return nil, conflict("hard link %s points at %s, a %s; a hard link's target must be a regular file", describe(&n.Entry), n.Target, t.Type)
		}
		groups[t.Path] = append(groups[t.Path], n)
	}
	for root, links := range groups {
		r := byPath[root]
		members := append([]*node{r}, links...)
		sort.Slice(members, func(i, j int) bool { return members[i].Path < members[j].Path })
		first := members[0]
		if first != r {
			// Move the data to the first path, keeping that path's origin.
			p, origin := first.Path, first.Origin
			first.Entry = r.Entry
			first.Path, first.Origin = p, origin
		}
		for _, m := range members[1:] {
			data := first.Entry
			m.Entry = Entry{Path: m.Path, Type: Hardlink, Mode: data.Mode, UID: data.UID, GID: data.GID, Target: first.Path, Origin: m.Origin}
		}
	}
	nodes := make([]*node, 0, len(byPath))
	for _, n := range byPath {
		rel := n.Path[1:]
		switch n.Type {
		case Dir:
			n.key, n.name = rel, rel+"/"
		case Whiteout:
			d, b := path.Split(rel)
			n.key = d + ".wh." + b
			n.name = n.key
		default:
			n.key, n.name = rel, rel
		}
		if n.Type == Hardlink {
			n.linkname = n.Target[1:]
		}
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].key < nodes[j].key })
	return nodes, nil
}

func originOr(o string) string {
	if o == "" {
		return "an entry"
	}
	return o
}

func sortedNodes(m map[string]*node) []*node {
	out := make([]*node, 0, len(m))
	for _, n := range m {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// NewestMTime is the newest MTime among entries, clamped to bound, or
// bound when none carries one: a package layer's epoch in format 2.
func NewestMTime(entries []Entry, bound int64) int64 {
	newest, any := int64(0), false
	for i := range entries {
		if m := entries[i].MTime; m != nil && (!any || *m > newest) {
			newest, any = *m, true
		}
	}
	if !any {
		return bound
	}
	return max(0, min(newest, bound))
}
