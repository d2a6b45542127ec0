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

// FormatVersion names the output format: the tar rule (package layer) and
// the compression settings below, together. Changing a byte that either
// writes is a new version, never a silent change.
const FormatVersion = "repro-layer/1"

// The format has not been published yet, so its first version still
// changes in place: zstd moved from one frame to parallel 4 MiB frames
// before any image carried "repro-layer/1".

// Algorithm is a layer compression.
type Algorithm string

const (
	Gzip Algorithm = "gzip"
	Zstd Algorithm = "zstd"
)

// Fixed settings. They are part of FormatVersion.
const (
	// GzipLevel is the deflate level. Level 5 of klauspost's deflate is
	// within 5% of gzip -6's size at a fraction of its time.
	GzipLevel = 5
	// GzipBlockSize is pgzip's block size: the unit of parallel work, and a
	// fixed property of the stream.
	GzipBlockSize = 1 << 20
	// gzipOS is the OS byte of the gzip header: 255, unknown.
	gzipOS = 255
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

// Settings describes a's fixed settings, for `repro version` and provenance.
func (a Algorithm) Settings() string {
	switch a {
	case Zstd:
		return fmt.Sprintf("zstd: klauspost/compress zstd, level %s, window %d, independent frames of %d bytes (the last shorter), each with its content size and checksum", ZstdLevel, ZstdWindow, ZstdChunk)
	default:
		return fmt.Sprintf("gzip: klauspost/pgzip level %d, %d-byte blocks with 32 KiB dictionaries, header without name, comment, mtime or extra, OS %d", GzipLevel, GzipBlockSize, gzipOS)
	}
}

// NewWriter returns a writer that compresses into w with a's fixed
// settings. Close flushes the stream; it does not close w.
func NewWriter(w io.Writer, a Algorithm) (io.WriteCloser, error) {
	return NewTeeWriter(w, a, nil)
}

// NewTeeWriter is NewWriter that also gives tee, when not nil, the
// uncompressed stream, in order: a hash, such as a layer's diff ID. tee is
// written on the compressor's goroutines, never the caller's, and must not
// fail; the stream is final once Close returns.
func NewTeeWriter(w io.Writer, a Algorithm, tee io.Writer) (io.WriteCloser, error) {
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
		zw.Header = pgzip.Header{OS: gzipOS}
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

// Libraries are the modules whose code writes compressed bytes; `repro
// version` prints their versions, because they fix the bytes.
var Libraries = []string{"github.com/klauspost/compress", "github.com/klauspost/pgzip"}
