package disk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
)

// fixVMDKCID replaces the random content ID that qemu-img writes into a
// monolithicSparse VMDK's embedded descriptor ("CID=" and up to 8 hex
// digits) with cid, as 8 hex digits. The descriptor is text padded with
// NULs to the size the sparse header gives; it is rewritten in place, and
// nothing else in the file moves.
func fixVMDKCID(name string, cid uint32) error {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var hdr [512]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return fmt.Errorf("reading the vmdk header: %w", err)
	}
	if string(hdr[0:4]) != "KDMV" {
		return fmt.Errorf("%s: not a sparse vmdk (magic %q)", name, hdr[0:4])
	}
	descOff := int64(binary.LittleEndian.Uint64(hdr[28:36])) * sector
	descSize := int64(binary.LittleEndian.Uint64(hdr[36:44])) * sector
	if descOff <= 0 || descSize <= 0 || descSize > 1<<20 {
		return fmt.Errorf("%s: no embedded descriptor", name)
	}
	desc := make([]byte, descSize)
	if _, err := f.ReadAt(desc, descOff); err != nil {
		return fmt.Errorf("reading the vmdk descriptor: %w", err)
	}
	fixed, err := replaceCID(desc, cid)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if _, err := f.WriteAt(fixed, descOff); err != nil {
		return err
	}
	return f.Close()
}

// replaceCID rewrites the one "CID=" line of a NUL-padded descriptor and
// returns it padded to the same size.
func replaceCID(desc []byte, cid uint32) ([]byte, error) {
	text := desc
	if i := bytes.IndexByte(desc, 0); i >= 0 {
		text = desc[:i]
	}
	const key = "\nCID="
	i := bytes.Index(text, []byte(key))
	if i < 0 || bytes.Count(text, []byte(key)) != 1 {
		return nil, fmt.Errorf("the vmdk descriptor has no single CID line")
	}
	start := i + len(key)
	n := bytes.IndexByte(text[start:], '\n')
	if n < 1 || n > 8 {
		return nil, fmt.Errorf("the vmdk descriptor's CID is not 1 to 8 hex digits")
	}
	var out []byte
	out = append(out, text[:start]...)
	out = append(out, fmt.Sprintf("%08x", cid)...)
	out = append(out, text[start+n:]...)
	if len(out) >= len(desc) {
		return nil, fmt.Errorf("the vmdk descriptor has no room for an 8-digit CID")
	}
	return append(out, make([]byte, len(desc)-len(out))...), nil
}
