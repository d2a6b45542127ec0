package disk

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/reprobuild/repro/pkg/compress"
)

// vhdFooter is the 512-byte footer of a fixed VHD (Microsoft's Virtual
// Hard Disk Image Format Specification) for a disk of size bytes: what
// Azure takes, after the raw disk. Its timestamp is the image's epoch (in
// seconds since 2000-01-01, the format's epoch; 0 for earlier), its unique
// id derives from the image digest, and its creator is "qem2", which tells
// qemu (and anything that follows qemu's table) to take the disk's size
// from the footer's current size rather than from its geometry.
func vhdFooter(size int64, epoch time.Time, digest string) []byte {
	f := make([]byte, 512)
	be := binary.BigEndian
	copy(f[0:8], "conectix")
	be.PutUint32(f[8:], 2)           // features: reserved bit, always set
	be.PutUint32(f[12:], 0x00010000) // format version 1.0
	be.PutUint64(f[16:], ^uint64(0)) // data offset: none, a fixed disk
	ts := epoch.Unix() - time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	if ts < 0 {
		ts = 0
	}
	if ts > 0xffffffff {
		ts = 0xffffffff
	}
	be.PutUint32(f[24:], uint32(ts))
	copy(f[28:32], "qem2")
	be.PutUint32(f[32:], 0x00010000) // creator version
	copy(f[36:40], "Wi2k")           // creator host OS
	be.PutUint64(f[40:], uint64(size))
	be.PutUint64(f[48:], uint64(size))
	c, h, s := vhdGeometry(size / 512)
	be.PutUint16(f[56:], c)
	f[58], f[59] = h, s
	be.PutUint32(f[60:], 2) // disk type: fixed
	id := sha256.Sum256([]byte("repro-disk/1\x00vhd-unique-id\x00" + digest))
	copy(f[68:84], id[:16])
	var sum uint32
	for _, b := range f {
		sum += uint32(b)
	}
	be.PutUint32(f[64:], ^sum)
	return f
}

// vhdGeometry is the CHS geometry the VHD specification's algorithm gives.
func vhdGeometry(sectors int64) (cyl uint16, heads, spt uint8) {
	if sectors > 65535*16*255 {
		sectors = 65535 * 16 * 255
	}
	var h, s, cth int64
	if sectors >= 65535*16*63 {
		s, h = 255, 16
		cth = sectors / s
	} else {
		s = 17
		cth = sectors / s
		h = (cth + 1023) / 1024
		if h < 4 {
			h = 4
		}
		if cth >= h*1024 || h > 16 {
			s, h = 31, 16
			cth = sectors / s
		}
		if cth >= h*1024 {
			s, h = 63, 16
			cth = sectors / s
		}
	}
	return uint16(cth / h), uint8(h), uint8(s)
}

// appendVHDFooter turns the raw disk at name into a fixed VHD.
func appendVHDFooter(name string, size int64, epoch time.Time, digest string) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(vhdFooter(size, epoch, digest), size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeGCE writes the raw disk as disk.raw in a gzip-compressed tar, as
// Google Compute Engine imports it: GNU tar format, one entry, owner 0:0
// without names, mode 0644, the image's epoch as mtime; the compression is
// repro's fixed gzip (pkg/compress), so the bytes depend only on the disk.
func writeGCE(out, raw string, epoch time.Time) error {
	in, err := os.Open(raw)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	zw, err := compress.NewWriter(f, compress.Gzip)
	if err != nil {
		f.Close()
		return err
	}
	tw := tar.NewWriter(zw)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     "disk.raw",
		Mode:     0o644,
		Size:     fi.Size(),
		ModTime:  epoch,
		Format:   tar.FormatGNU,
	}
	err = tw.WriteHeader(hdr)
	if err == nil {
		_, err = io.Copy(tw, in)
	}
	if err == nil {
		err = tw.Close()
	}
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing the GCE tar.gz: %w", err)
	}
	return nil
}
