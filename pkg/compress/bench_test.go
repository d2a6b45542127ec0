package compress_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/reprobuild/repro/pkg/compress"
)

// benchSize is the size of the benchmarks' input.
const benchSize = 32 << 20

// benchWords is the vocabulary of the input: source-like text, which
// compresses about as well as a tree of Go code (4-5x with gzip).
var benchWords = []string{
	"func", "return", "if", "err", "!=", "nil", "{", "}", "(", ")", ":=", "=",
	"for", "range", "var", "const", "type", "struct", "interface", "package",
	"import", "string", "int", "int64", "byte", "[]byte", "error", "bool",
	"true", "false", "len", "cap", "make", "append", "copy", "delete", "map",
	"chan", "go", "defer", "select", "case", "default", "switch", "break",
	"continue", "else", "fmt.Errorf", "ctx", "context.Context", "io.Reader",
	"io.Writer", "os.Open", "path", "name", "size", "mode", "entries", "layer",
	"digest", "hash", "buf", "n", "i", "j", "k", "v", "ok", "b", "w", "r",
	"//", "the", "a", "of", "to", "is", "in", "and", "that", "it", "with",
	"0", "1", "2", "0o755", "0o644", "1 << 20", "\"%s: %w\"", "t.Fatal",
}

// benchInput is the fixed input: the same 32 MB on every run and machine.
var benchInput = sync.OnceValue(func() []byte {
	rng := rand.New(rand.NewPCG(1, 0))
	out := make([]byte, 0, benchSize+64)
	var lines [][2]int // recent lines, as offsets into out
	for len(out) < benchSize {
		if len(lines) > 0 && rng.IntN(4) == 0 {
			// A line repeated from a little earlier, as code repeats
			// itself.
			l := lines[rng.IntN(len(lines))]
			out = append(out, out[l[0]:l[1]]...)
			continue
		}
		start := len(out)
		for d := rng.IntN(4); d > 0; d-- {
			out = append(out, '\t')
		}
		for w := 2 + rng.IntN(9); w > 0; w-- {
			i := min(rng.IntN(len(benchWords)), rng.IntN(len(benchWords)), rng.IntN(len(benchWords)))
			out = append(out, benchWords[i]...)
			if w > 1 {
				out = append(out, ' ')
			}
		}
		if rng.IntN(32) == 0 {
			out = fmt.Appendf(out, " id%x", rng.Uint32())
		}
		out = append(out, '\n')
		if len(lines) < 64 {
			lines = append(lines, [2]int{start, len(out)})
		} else {
			lines[rng.IntN(64)] = [2]int{start, len(out)}
		}
	}
	return out[:benchSize]
})

type countingDiscard struct{ n int64 }

func (c *countingDiscard) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// benchCompress times compress.NewWriter(a) over the fixed input, in
// 1 MiB writes as layer.Write's buffer hands it over, to a counting
// io.Discard. MB/s counts input bytes; "ratio" is input/output.
func benchCompress(b *testing.B, a compress.Algorithm) {
	in := benchInput() // generated before the timed section
	b.SetBytes(int64(len(in)))
	var out countingDiscard
	for b.Loop() {
		out.n = 0
		zw, err := compress.NewWriter(&out, a)
		if err != nil {
			b.Fatal(err)
		}
		for p := in; len(p) > 0; {
			k := min(len(p), 1<<20)
			if _, err := zw.Write(p[:k]); err != nil {
				b.Fatal(err)
			}
			p = p[k:]
		}
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(in))/float64(out.n), "ratio")
}

func BenchmarkGzip(b *testing.B) { benchCompress(b, compress.Gzip) }
func BenchmarkZstd(b *testing.B) { benchCompress(b, compress.Zstd) }

var _ io.Writer = (*countingDiscard)(nil)

// benchGzipBlob is the fixed input compressed as a layer is.
var benchGzipBlob = sync.OnceValue(func() []byte {
	var out bytes.Buffer
	zw, _ := compress.NewWriter(&out, compress.Gzip)
	zw.Write(benchInput())
	zw.Close()
	return out.Bytes()
})

// BenchmarkGunzipCheck is the check a cache hit had before
// CheckGzipBlocks, and still has when that cannot prove a stream:
// decompress whole, on one core, and hash.
func BenchmarkGunzipCheck(b *testing.B) {
	blob := benchGzipBlob()
	b.SetBytes(int64(len(benchInput())))
	for b.Loop() {
		zr, err := compress.NewReaderAhead(bytes.NewReader(blob), compress.Gzip)
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, zr); err != nil {
			b.Fatal(err)
		}
		zr.Close()
	}
}

// BenchmarkCheckGzipBlocks is the same proof on every core, the
// expected bytes coming from memory as a regenerated tar would.
func BenchmarkCheckGzipBlocks(b *testing.B) {
	blob, in := benchGzipBlob(), benchInput()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := compress.CheckGzipBlocks(context.Background(), bytes.NewReader(blob), int64(len(blob)), func(w io.Writer) error {
			for p := in; len(p) > 0; p = p[min(len(p), 64<<10):] {
				w.Write(p[:min(len(p), 64<<10)])
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}
