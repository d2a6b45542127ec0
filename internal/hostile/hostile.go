// Package hostile makes the hostile inputs the readers of images are tested
// against: tar streams no honest builder writes, made byte by byte where
// archive/tar refuses to write them. Tests and fuzz seeds use it; nothing
// in the product does.
package hostile

import (
	"bytes"
	"fmt"
	"strconv"
)

// Header is one raw tar header block: a ustar header with the fields a
// test needs, the checksum computed.
func Header(name string, typ byte, size int64) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], "00000000000\x00")
	b[156] = typ
	copy(b[257:263], "ustar\x00")
	copy(b[263:265], "00")
	for i := 148; i < 156; i++ {
		b[i] = ' '
	}
	var sum int64
	for _, c := range b {
		sum += int64(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func pad(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

// paxRecord formats one PAX record: its length counts itself.
func paxRecord(k, v string) string {
	body := " " + k + "=" + v + "\n"
	n := len(body) + 1
	for len(strconv.Itoa(n))+len(body) != n {
		n++
	}
	return strconv.Itoa(n) + body
}

// Sparse is a tar stream with one PAX 1.0 sparse file, name, that claims
// claimed bytes and holds data at its end: the rest are holes. Its size
// on disk is a few KiB whatever it claims.
func Sparse(name string, claimed int64, data []byte) []byte {
	recs := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", name) + paxRecord("GNU.sparse.realsize", strconv.FormatInt(claimed, 10))
	sparseMap := pad([]byte(fmt.Sprintf("1\n%d\n%d\n", claimed-int64(len(data)), len(data))))
	body := append(sparseMap, data...)
	var out bytes.Buffer
	out.Write(Header("./PaxHeaders/"+name, 'x', int64(len(recs))))
	out.Write(pad([]byte(recs)))
	out.Write(Header("GNUSparseFile.0/"+name, '0', int64(len(body))))
	out.Write(pad(body))
	out.Write(make([]byte, 1024))
	return out.Bytes()
}

// Entry is one ordinary entry for Tar.
type Entry struct {
	Name string
	Type byte // '0' file, '1' hard link, '2' symlink, '5' dir
	Link string
	Data []byte
}

// Tar writes entries raw, without the checks archive/tar's writer makes,
// so names and links may escape.
func Tar(entries ...Entry) []byte {
	var out bytes.Buffer
	for _, e := range entries {
		h := Header(e.Name, e.Type, int64(len(e.Data)))
		copy(h[157:257], e.Link)
		for i := 148; i < 156; i++ {
			h[i] = ' '
		}
		var sum int64
		for _, c := range h {
			sum += int64(c)
		}
		copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
		out.Write(h)
		out.Write(pad(append([]byte(nil), e.Data...)))
	}
	out.Write(make([]byte, 1024))
	return out.Bytes()
}

// BadChecksum is a tar stream whose one header's checksum is wrong.
func BadChecksum() []byte {
	b := Tar(Entry{Name: "etc/passwd", Type: '0', Data: []byte("root:x:0:0::/root:/bin/sh\n")})
	b[148] ^= 1
	return b
}
