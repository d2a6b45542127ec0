package disk

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf16"
)

// The EFI system partition is FAT32, written here byte by byte rather than
// by mkfs.vfat and mtools, so that nothing of the host (its clock, its
// tools' versions, the order of a directory) reaches it: the volume serial
// comes from the image digest, every timestamp is the image's epoch, and
// files and directories are laid out in path order, each in one run of
// clusters, directories first.
//
// A name that fits 8.3 (each part all upper or all lower case) is written
// as a short entry alone, lower case kept with the case bits that Linux
// and the UEFI FAT driver read (NTRes 0x08 base, 0x10 extension). Any
// other name (loader.conf) gets long-name entries (VFAT) before a short
// alias made the way Windows makes them: the first six characters of the
// base, ~N counting in the directory, and three of the extension.

const (
	fatSector    = 512
	fatReserved  = 32 // sectors before the first FAT, as mkfs.fat gives FAT32
	fatCopies    = 2
	fatEOC       = 0x0FFFFFFF
	fatMinClus32 = 65525 // fewer clusters than this is FAT16, by definition
)

// fatFile is a file or directory of the ESP, by its path ("EFI/BOOT/BOOTX64.EFI").
type fatFile struct {
	path string
	dir  bool
	data []byte
}

type fatNode struct {
	name     string // the last component
	short    [11]byte
	ntres    byte
	long     bool // needs long-name entries
	dir      bool
	data     []byte
	children []*fatNode
	cluster  uint32
	clusters uint32
	parent   *fatNode
}

// fat32 is the image of a FAT32 filesystem of size bytes (a multiple of
// 512) holding files, labelled label, with serial number serial, every
// time epoch. hidden is the partition's first sector on its disk.
func fat32(size int64, files []fatFile, label string, serial uint32, epoch time.Time, hidden uint32) ([]byte, error) {
	total := uint32(size / fatSector)
	// One sector per cluster: a small ESP still counts as FAT32.
	const spc = 1
	fatSz := uint32(1)
	for {
		data := total - fatReserved - fatCopies*fatSz
		clusters := data / spc
		need := ((clusters+2)*4 + fatSector - 1) / fatSector
		if need <= fatSz {
			break
		}
		fatSz = need
	}
	clusters := (total - fatReserved - fatCopies*fatSz) / spc
	if clusters < fatMinClus32 {
		return nil, fmt.Errorf("an EFI system partition of %d bytes is too small for FAT32", size)
	}

	root := &fatNode{dir: true}
	byPath := map[string]*fatNode{"": root}
	sorted := append([]fatFile(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].path < sorted[j].path })
	for _, f := range sorted {
		parts := strings.Split(f.path, "/")
		for i := range parts {
			p := strings.Join(parts[:i+1], "/")
			if _, ok := byPath[p]; ok {
				continue
			}
			if err := longNameOK(parts[i]); err != nil {
				return nil, err
			}
			parent := byPath[strings.Join(parts[:i], "/")]
			if !parent.dir {
				return nil, fmt.Errorf("ESP: %s is under a file", f.path)
			}
			n := &fatNode{name: parts[i], dir: i < len(parts)-1 || f.dir, parent: parent}
			if i == len(parts)-1 {
				n.data = f.data
			}
			parent.children = append(parent.children, n)
			byPath[p] = n
		}
	}
	// Cluster allocation: breadth of directories first, then files, all in
	// path order.
	next := uint32(2)
	var dirs, regular []*fatNode
	var walk func(n *fatNode)
	walk = func(n *fatNode) {
		if n.dir {
			dirs = append(dirs, n)
		} else {
			regular = append(regular, n)
		}
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(root)
	clusterBytes := uint32(spc * fatSector)
	for _, n := range dirs {
		entries := 2 // . and .., or the label and one spare in the root
		aliases := map[[11]byte]bool{}
		for _, c := range n.children {
			if short, ntres, err := shortName(c.name); err == nil {
				c.short, c.ntres = short, ntres
				aliases[short] = true
			}
		}
		for _, c := range n.children {
			entries++
			if _, _, err := shortName(c.name); err == nil {
				continue
			}
			c.long = true
			entries += (len(utf16.Encode([]rune(c.name))) + 12) / 13
			var ok bool
			if c.short, ok = shortAlias(c.name, aliases); !ok {
				return nil, fmt.Errorf("ESP: too many names like %q in one directory", c.name)
			}
			aliases[c.short] = true
		}
		n.clusters = max(1, (uint32(entries)*32+clusterBytes-1)/clusterBytes)
		n.cluster, next = next, next+n.clusters
	}
	for _, n := range regular {
		if len(n.data) == 0 {
			continue
		}
		n.clusters = (uint32(len(n.data)) + clusterBytes - 1) / clusterBytes
		n.cluster, next = next, next+n.clusters
	}
	if next-2 > clusters {
		return nil, fmt.Errorf("the EFI system partition's files take %d KiB, more than its %d KiB", (next-2)*clusterBytes/1024, clusters*clusterBytes/1024)
	}

	img := make([]byte, size)
	le := binary.LittleEndian
	bs := img[:fatSector]
	copy(bs[0:3], []byte{0xEB, 0x58, 0x90})
	copy(bs[3:11], "REPRO   ")
	le.PutUint16(bs[11:], fatSector)
	bs[13] = spc
	le.PutUint16(bs[14:], fatReserved)
	bs[16] = fatCopies
	bs[21] = 0xF8 // fixed disk
	le.PutUint16(bs[24:], 63)
	le.PutUint16(bs[26:], 255)
	le.PutUint32(bs[28:], hidden)
	le.PutUint32(bs[32:], total)
	le.PutUint32(bs[36:], fatSz)
	le.PutUint32(bs[44:], 2) // root directory cluster
	le.PutUint16(bs[48:], 1) // FSInfo sector
	le.PutUint16(bs[50:], 6) // backup boot sector
	bs[64] = 0x80
	bs[66] = 0x29
	le.PutUint32(bs[67:], serial)
	copy(bs[71:82], fmt.Sprintf("%-11s", label))
	copy(bs[82:90], "FAT32   ")
	bs[510], bs[511] = 0x55, 0xAA
	fsinfo := img[fatSector : 2*fatSector]
	le.PutUint32(fsinfo[0:], 0x41615252)
	le.PutUint32(fsinfo[484:], 0x61417272)
	le.PutUint32(fsinfo[488:], clusters-(next-2)) // free clusters
	le.PutUint32(fsinfo[492:], next)              // next free
	le.PutUint32(fsinfo[508:], 0xAA550000)
	copy(img[6*fatSector:8*fatSector], img[0:2*fatSector]) // the backups

	fat := make([]byte, fatSz*fatSector)
	le.PutUint32(fat[0:], 0x0FFFFF00|0xF8)
	le.PutUint32(fat[4:], fatEOC)
	chain := func(n *fatNode) {
		for i := uint32(0); i < n.clusters; i++ {
			v := uint32(fatEOC)
			if i+1 < n.clusters {
				v = n.cluster + i + 1
			}
			le.PutUint32(fat[(n.cluster+i)*4:], v)
		}
	}
	for _, n := range append(append([]*fatNode(nil), dirs...), regular...) {
		if n.clusters > 0 {
			chain(n)
		}
	}
	for i := 0; i < fatCopies; i++ {
		copy(img[(fatReserved+uint32(i)*fatSz)*fatSector:], fat)
	}
	dataStart := int64(fatReserved+fatCopies*fatSz) * fatSector
	at := func(cluster uint32) int64 { return dataStart + int64(cluster-2)*int64(clusterBytes) }

	date, tod := fatTime(epoch)
	entry := func(buf []byte, name [11]byte, attr, ntres byte, cluster, size uint32) {
		copy(buf[0:11], name[:])
		buf[11] = attr
		buf[12] = ntres
		le.PutUint16(buf[14:], tod)
		le.PutUint16(buf[16:], date)
		le.PutUint16(buf[18:], date)
		le.PutUint16(buf[20:], uint16(cluster>>16))
		le.PutUint16(buf[22:], tod)
		le.PutUint16(buf[24:], date)
		le.PutUint16(buf[26:], uint16(cluster))
		le.PutUint32(buf[28:], size)
	}
	for _, d := range dirs {
		buf := img[at(d.cluster) : at(d.cluster)+int64(d.clusters*clusterBytes)]
		off := 0
		if d == root {
			var lab [11]byte
			copy(lab[:], fmt.Sprintf("%-11s", label))
			entry(buf[off:], lab, 0x08, 0, 0, 0)
			off += 32
		} else {
			parent := d.parent.cluster
			if d.parent == root {
				parent = 0 // ".." of a top directory names the root as 0
			}
			entry(buf[off:], dotName("."), 0x10, 0, d.cluster, 0)
			entry(buf[off+32:], dotName(".."), 0x10, 0, parent, 0)
			off += 64
		}
		for _, c := range d.children {
			name, ntres := c.short, c.ntres
			if c.long {
				off += longEntries(buf[off:], c.name, name)
			}
			if c.dir {
				entry(buf[off:], name, 0x10, ntres, c.cluster, 0)
			} else {
				entry(buf[off:], name, 0x20, ntres, c.cluster, uint32(len(c.data)))
				if len(c.data) > 0 { // an empty file has no cluster
					copy(img[at(c.cluster):], c.data)
				}
			}
			off += 32
		}
	}
	return img, nil
}

// longNameOK says whether s can be a VFAT long name.
func longNameOK(s string) error {
	if s == "" || s == "." || s == ".." || len(s) > 255 {
		return fmt.Errorf("ESP: %q cannot be a file name", s)
	}
	for _, r := range s {
		if r < 0x20 || strings.ContainsRune(`"*/:<>?\|`, r) || r > 0xFFFF {
			return fmt.Errorf("ESP: %q has a character FAT names do not take", s)
		}
	}
	return nil
}

// shortAlias is the 8.3 alias of a long name, not yet in taken.
func shortAlias(s string, taken map[[11]byte]bool) ([11]byte, bool) {
	clean := func(t string) string {
		var b strings.Builder
		for _, r := range strings.ToUpper(t) {
			if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-~", r) {
				b.WriteRune(r)
			} else if r != ' ' && r != '.' {
				b.WriteByte('_')
			}
		}
		return b.String()
	}
	base, ext := s, ""
	if i := strings.LastIndexByte(s, '.'); i > 0 {
		base, ext = s[:i], s[i+1:]
	}
	base, ext = clean(base), clean(ext)
	if len(ext) > 3 {
		ext = ext[:3]
	}
	for n := 1; n < 1000000; n++ {
		tail := fmt.Sprintf("~%d", n)
		b := base
		if len(b)+len(tail) > 8 {
			b = b[:8-len(tail)]
		}
		var out [11]byte
		copy(out[:], fmt.Sprintf("%-8s%-3s", b+tail, ext))
		if !taken[out] {
			return out, true
		}
	}
	return [11]byte{}, false
}

// longEntries writes the long-name entries of name (for short alias
// short) at buf, last part first as the format orders them, and returns
// the bytes written.
func longEntries(buf []byte, name string, short [11]byte) int {
	var sum byte
	for _, c := range short {
		sum = (sum&1)<<7 + sum>>1 + c
	}
	u := utf16.Encode([]rune(name))
	count := (len(u) + 12) / 13
	// Pad: a NUL after the name, then 0xFFFF, to a whole entry.
	padded := append(u, 0)
	for len(padded)%13 != 0 {
		padded = append(padded, 0xFFFF)
	}
	if len(u)%13 == 0 {
		padded = u
	}
	le := binary.LittleEndian
	off := 0
	for i := count; i >= 1; i-- {
		e := buf[off : off+32]
		seq := byte(i)
		if i == count {
			seq |= 0x40
		}
		e[0] = seq
		part := padded[(i-1)*13 : i*13]
		for k := 0; k < 5; k++ {
			le.PutUint16(e[1+2*k:], part[k])
		}
		e[11] = 0x0F
		e[13] = sum
		for k := 0; k < 6; k++ {
			le.PutUint16(e[14+2*k:], part[5+k])
		}
		for k := 0; k < 2; k++ {
			le.PutUint16(e[28+2*k:], part[11+k])
		}
		off += 32
	}
	return off
}

func dotName(s string) [11]byte {
	var n [11]byte
	copy(n[:], fmt.Sprintf("%-11s", s))
	return n
}

// shortName is the 8.3 directory name of s and its case bits.
func shortName(s string) ([11]byte, byte, error) {
	var out [11]byte
	base, ext, _ := strings.Cut(s, ".")
	if base == "" || len(base) > 8 || len(ext) > 3 || strings.Contains(ext, ".") {
		return out, 0, fmt.Errorf("ESP: %q is not an 8.3 name", s)
	}
	var ntres byte
	for i, part := range []string{base, ext} {
		if part == "" {
			continue
		}
		switch {
		case part == strings.ToUpper(part):
		case part == strings.ToLower(part):
			ntres |= []byte{0x08, 0x10}[i]
		default:
			return out, 0, fmt.Errorf("ESP: %q mixes cases", s)
		}
		for _, r := range part {
			if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("_-~", r)) {
				return out, 0, fmt.Errorf("ESP: %q has a character 8.3 names do not take", s)
			}
		}
	}
	copy(out[:], fmt.Sprintf("%-8s%-3s", strings.ToUpper(base), strings.ToUpper(ext)))
	return out, ntres, nil
}

// fatTime is t as a FAT date and time (UTC; 1980 to 2107, clamped).
func fatTime(t time.Time) (date, tod uint16) {
	t = t.UTC()
	if t.Year() < 1980 {
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if t.Year() > 2107 {
		t = time.Date(2107, 12, 31, 23, 59, 58, 0, time.UTC)
	}
	date = uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	tod = uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	return date, tod
}
