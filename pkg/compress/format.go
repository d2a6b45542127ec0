package compress

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/pgzip"
)

// Format is an output format: the tar rule (package layer) and the
// compression settings, together. A format, once released, never changes:
// every byte that any of its layers holds is fixed by its number, the
// entries and the algorithm. A change to a byte is a new format; the old
// one stays writable, so that an image built years ago can be rebuilt and
// proven by any later repro.
//
// The bytes depend on the encoder's code as well as its settings:
// klauspost/pgzip v1.3.0 and klauspost/compress v1.20.4 write them today,
// and golden tests (header bytes and whole-stream digests, per format and
// algorithm) pin what they write. When an upgrade of either module changes
// a byte, the old encoder is kept for the formats that used it, under this
// module's own path if need be; it is never silently replaced.
type Format int

const (
	// Format1 ("repro-layer/1") is what repro wrote before formats were
	// chosen: every entry's mtime is the build's epoch, and the gzip
	// header's MTIME is 0x886E0900, which pgzip v1.3.0 writes for the
	// zero time.Time (uint32(time.Time{}.Unix())).
	Format1 Format = 1
	// Format2 ("repro-layer/2") differs from format 1 in exactly two
	// ways: the gzip header's MTIME is zero, and entries carry their
	// layer's epoch (or their own mtime, clamped to it) rather than the
	// build's epoch (package layer's doc). zstd is written as in format 1.
	Format2 Format = 2
)

// Newest is the default format of a build.
const Newest = Format2

// Formats lists every format this repro writes, newest first.
var Formats = []Format{Format2, Format1}

// Known reports whether f is a format this repro writes.
func (f Format) Known() bool { return f == Format1 || f == Format2 }

// String is the format's name, as history comments, provenance and
// `repro version` give it: repro-layer/N.
func (f Format) String() string { return "repro-layer/" + strconv.Itoa(int(f)) }

// ParseFormat reads a format given as its number (2) or its name
// (repro-layer/2).
func ParseFormat(s string) (Format, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(s, "repro-layer/"))
	if err != nil || !Format(n).Known() {
		return 0, fmt.Errorf("unknown output format %q; this repro writes %s", s, formatList())
	}
	return Format(n), nil
}

func formatList() string {
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = fmt.Sprintf("%d (%s)", int(f), f)
	}
	return strings.Join(names, ", ")
}

// gzipHeader is the gzip member header of format f (RFC 1952 2.3). pgzip
// writes ID1 ID2 (1f 8b), CM 8 (deflate), FLG from the fields set here
// (none: no FEXTRA, FNAME, FCOMMENT, FHCRC, FTEXT), MTIME as
// uint32(ModTime.Unix()), XFL from the level (gzipXFL) and OS from the
// header. Every field is given here; none is left to the library.
func gzipHeader(f Format) pgzip.Header {
	h := pgzip.Header{
		Name:    "",  // no FNAME: the name would tie the layer to a file
		Comment: "",  // no FCOMMENT
		Extra:   nil, // no FEXTRA
		OS:      gzipOS,
	}
	switch f {
	case Format1:
		// The zero time: pgzip v1.3.0 writes 0x886E0900 for it. Kept, on
		// purpose, so that format 1 stays byte for byte what it was.
		h.ModTime = time.Time{}
	default:
		// MTIME 0: "no time stamp is available" (RFC 1952).
		h.ModTime = time.Unix(0, 0)
	}
	return h
}
