package compress

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Algorithm is a layer compression.
type Algorithm string

const (
	Gzip Algorithm = "gzip"
	Zstd Algorithm = "zstd"
)

// Fixed settings. They are part of every output format (format.go says
// what differs between formats).
const (
	// GzipLevel is the deflate level. Level 5 of klauspost's deflate is
	// within 5% of gzip -6's size at a fraction of its time.
	GzipLevel = 5
	// GzipBlockSize is pgzip's block size: the unit of parallel work, and a
	// fixed property of the stream.
	GzipBlockSize = 1 << 20
	// gzipOS is the OS byte of the gzip header (RFC 1952 2.3.1): 255,
	// "unknown", so that the bytes do not claim a host system.
	gzipOS = 255
	// gzipXFL is the XFL byte of the gzip header: 0, neither "maximum
	// compression" (2) nor "fastest" (4), which level 5 is not. pgzip
	// derives it from the level; a test reads it.
	gzipXFL = 0
	// ZstdLevel is klauspost's "default" level (about zstd -3).
	ZstdLevel = zstd.SpeedDefault
	// ZstdWindow is the window size; no larger than a frame's content.
	ZstdWindow = 4 << 20
)

// Parse returns the algorithm named s.
func Parse(s string) (Algorithm, error) {
	switch Algorithm(s) {
	case Gzip, Zstd:
		return Algorithm(s), nil
	}
	return "", fmt.Errorf("unknown compression %q; use gzip or zstd", s)
}

// MediaType is the OCI layer media type for a tar compressed with a.
func (a Algorithm) MediaType() string {
	switch a {
	case Zstd:
		return "application/vnd.oci.image.layer.v1.tar+zstd"
	default:
		return "application/vnd.oci.image.layer.v1.tar+gzip"
	}
}

// FormatSettings describes a's fixed settings in format f, for `repro
// version` and provenance.
func (a Algorithm) FormatSettings(f Format) string {
	switch a {
	case Zstd:
		return fmt.Sprintf("zstd: klauspost/compress zstd, level %s, window %d, independent frames of %d bytes (the last shorter), each with its content size and checksum", ZstdLevel, ZstdWindow, ZstdChunk)
	default:
		mtime := "MTIME 0"
		if f == Format1 {
			mtime = "MTIME 0x886E0900 (pgzip's value for the zero time)"
		}
		return fmt.Sprintf("gzip: klauspost/pgzip level %d, %d-byte blocks with 32 KiB dictionaries, header without name, comment or extra, %s, XFL %d, OS %d", GzipLevel, GzipBlockSize, mtime, gzipXFL, gzipOS)
	}
}

// NewWriter returns a writer that compresses into w with a's fixed
// settings, in the newest format. Close flushes the stream; it does not
// close w.
func NewWriter(w io.Writer, a Algorithm) (io.WriteCloser, error) {
	return NewTeeWriter(w, a, Newest, nil)
}

// NewTeeWriter returns a writer that compresses into w with a's fixed
// settings in format f, and also gives tee, when not nil, the
// uncompressed stream, in order: a hash, such as a layer's diff ID. tee is
// written on the compressor's goroutines, never the caller's, and must not
// fail; the stream is final once Close returns.
func NewTeeWriter(w io.Writer, a Algorithm, f Format, tee io.Writer) (io.WriteCloser, error) {
	if !f.Known() {
		return nil, fmt.Errorf("unknown output format %d", int(f))
	}
	switch a {
	case Gzip:
		zw, err := pgzip.NewWriterLevel(w, GzipLevel)
		if err != nil {
			return nil, err
		}
		// Blocks in flight bound memory (2 x blocks x block size) and
		// parallelism; they never change the bytes.
		if err := zw.SetConcurrency(GzipBlockSize, 2*workers()); err != nil {
			return nil, err
		}
		zw.Header = gzipHeader(f)
		if tee == nil {
			return &gzipWriter{w: zw}, nil
		}
		// pgzip copies the stream into its blocks on the caller's
		// goroutine: that copy and the tee move to a pipe's.
		return newChunkPipe(func(b []byte) error {
			tee.Write(b)
			_, err := zw.Write(b)
			return err
		}, zw.Close), nil
	case Zstd:
		return newZstdWriter(w, workers(), tee)
	}
	return nil, fmt.Errorf("unknown compression %q", a)
}

// gzipWriter guards pgzip's writer, which panics on a Write after Close
// and closes twice.
type gzipWriter struct {
	w      *pgzip.Writer
	closed bool
	err    error
}

func (g *gzipWriter) Write(p []byte) (int, error) {
	if g.closed {
		return 0, errors.New("gzip: write after close")
	}
	return g.w.Write(p)
}

func (g *gzipWriter) Close() error {
	if !g.closed {
		g.closed, g.err = true, g.w.Close()
	}
	return g.err
}

// maxWorkers caps the compressing goroutines, and with them the memory
// in flight (zstd: about 2 x workers chunks of ZstdChunk bytes): past a
// few cores, the one goroutine writing the tar stream (about 1 GB/s at
// best) is the limit, and four zstd workers keep up with it.
const maxWorkers = 4

func workers() int { return min(runtime.GOMAXPROCS(0), maxWorkers) }

// NewReader decompresses r, which a compressed.
func NewReader(r io.Reader, a Algorithm) (io.ReadCloser, error) {
	switch a {
	case Gzip:
		return gzip.NewReader(r)
	case Zstd:
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return nil, fmt.Errorf("unknown compression %q", a)
}

// NewReaderAhead is NewReader decompressing on a goroutine of its own, a
// few blocks ahead of the reader (gzip: pgzip's reader, four blocks of
// GzipBlockSize; klauspost's inflate, which is faster than the standard
// library's): for a whole stream that is hashed as it is read, such as a
// shared cache entry's check, where the hashing and the inflating then
// take two cores. The bytes read are NewReader's.
func NewReaderAhead(r io.Reader, a Algorithm) (io.ReadCloser, error) {
	if a == Gzip {
		return pgzip.NewReaderN(r, GzipBlockSize, 4)
	}
	return NewReader(r, a)
}

// Libraries are the modules whose code writes compressed bytes; `repro
// version` prints their versions, because they fix the bytes.
var Libraries = []string{"github.com/klauspost/compress", "github.com/klauspost/pgzip"}
