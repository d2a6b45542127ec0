package disk

import (
	"bytes"
	"fmt"
	"path"
	"sort"
)

// cpioEntry is one entry of the initramfs: a directory (data nil, dir
// true) or a regular file.
type cpioEntry struct {
	path string // relative, clean: "init", "lib/modules"
	dir  bool
	mode uint32 // permission bits
	data []byte
}

// newc is an uncompressed cpio archive in the "newc" format the kernel
// unpacks: entries in path order (parents, implied where missing, first),
// inode numbers counted from 1 in that order, owner 0:0, one link each
// (two for directories), every mtime mtime, no device numbers; then the
// trailer, padded to 512 bytes.
func newc(entries []cpioEntry, mtime int64) []byte {
	byPath := map[string]cpioEntry{}
	for _, e := range entries {
		byPath[e.path] = e
		for d := path.Dir(e.path); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := byPath[d]; !ok {
				byPath[d] = cpioEntry{path: d, dir: true, mode: 0o755}
			}
		}
	}
	names := make([]string, 0, len(byPath))
	for p := range byPath {
		names = append(names, p)
	}
	sort.Strings(names)
	var b bytes.Buffer
	pad := func() {
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	write := func(ino int, name string, mode uint32, nlink int, data []byte) {
		fmt.Fprintf(&b, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, mode, 0, 0, nlink, mtime, len(data), 0, 0, 0, 0, len(name)+1, 0)
		b.WriteString(name)
		b.WriteByte(0)
		pad()
		b.Write(data)
		pad()
	}
	for i, p := range names {
		e := byPath[p]
		if e.dir {
			write(i+1, p, 0o040000|e.mode&0o7777, 2, nil)
		} else {
			write(i+1, p, 0o100000|e.mode&0o7777, 1, e.data)
		}
	}
	write(0, "TRAILER!!!", 0, 1, nil)
	for b.Len()%512 != 0 {
		b.WriteByte(0)
	}
	return b.Bytes()
}
