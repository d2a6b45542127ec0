package apt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// arReader reads the members of a Unix ar archive (the container of a
// .deb) one after the other, streaming each member's data.
type arReader struct {
	r      io.Reader
	cur    io.Reader // the current member's unread data
	remain int64     // bytes of the current member left, padding included
	off    int64
}

const arMagic = "!<arch>\n"

func newArReader(r io.Reader) (*arReader, error) {
	var magic [8]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, fmt.Errorf("reading the ar magic: %w", err)
	}
	if string(magic[:]) != arMagic {
		return nil, errors.New("not an ar archive (a .deb starts with !<arch>)")
	}
	return &arReader{r: r, off: 8}, nil
}

// arHeader is one member's header.
type arHeader struct {
	Name string
	Size int64
}

// Next skips what is left of the current member and returns the next
// member's header; io.EOF after the last one.
func (a *arReader) Next() (*arHeader, error) {
	if a.remain > 0 {
		n, err := io.CopyN(io.Discard, a.r, a.remain)
		a.off += n
		if err != nil {
			return nil, fmt.Errorf("ar: skipping a member: %w", err)
		}
		a.remain = 0
	}
	var h [60]byte
	n, err := io.ReadFull(a.r, h[:])
	a.off += int64(n)
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("ar: reading a header at offset %d: %w", a.off-int64(n), err)
	}
	if h[58] != '`' || h[59] != '\n' {
		return nil, fmt.Errorf("ar: bad header at offset %d", a.off-60)
	}
	name := strings.TrimRight(string(h[0:16]), " ")
	name = strings.TrimSuffix(name, "/") // GNU ar ends names with /
	sizeField := string(bytes.TrimRight(h[48:58], " "))
	size, err := strconv.ParseInt(sizeField, 10, 64)
	if err != nil || size < 0 {
		return nil, fmt.Errorf("ar: member %q has a bad size %q", name, sizeField)
	}
	if name == "" || strings.HasPrefix(name, "#1/") {
		return nil, fmt.Errorf("ar: member name %q is not supported (a .deb uses short names)", name)
	}
	a.remain = size + size%2
	a.cur = &arMember{a: a, left: size}
	return &arHeader{Name: name, Size: size}, nil
}

// Read reads the current member's data.
func (a *arReader) Read(p []byte) (int, error) {
	if a.cur == nil {
		return 0, io.EOF
	}
	return a.cur.Read(p)
}

type arMember struct {
	a    *arReader
	left int64
}

func (m *arMember) Read(p []byte) (int, error) {
	if m.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > m.left {
		p = p[:m.left]
	}
	n, err := m.a.r.Read(p)
	m.left -= int64(n)
	m.a.remain -= int64(n)
	m.a.off += int64(n)
	if err == io.EOF && m.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
