package layer_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/layer"
)

// The synthetic build context of the benchmarks: benchFiles files, about
// benchBytes in all, in nested directories, with text-like content that
// compresses about as well as source code. The same seed gives the same
// tree on every run and machine.
const (
	benchFiles = 2000
	benchBytes = 50 << 20
	benchSeed  = 1
)

// benchWords is the vocabulary of the synthetic files.
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

// benchText returns n bytes of pseudo-random, source-like text: indented
// lines of words drawn with a skewed distribution.
func benchText(rng *rand.Rand, n int) []byte {
	out := make([]byte, 0, n+64)
	var lines [][2]int // recent lines, as offsets into out
	for len(out) < n {
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
			// The minimum of three draws favours the first words, as real
			// code favours its keywords.
			i := min(rng.IntN(len(benchWords)), rng.IntN(len(benchWords)), rng.IntN(len(benchWords)))
			out = append(out, benchWords[i]...)
			if w > 1 {
				out = append(out, ' ')
			}
		}
		if rng.IntN(32) == 0 {
			// An identifier or literal that is rarely repeated.
			out = fmt.Appendf(out, " id%x", rng.Uint32())
		}
		out = append(out, '\n')
		if len(lines) < 64 {
			lines = append(lines, [2]int{start, len(out)})
		} else {
			lines[rng.IntN(64)] = [2]int{start, len(out)}
		}
	}
	return out[:n]
}

// benchTree writes the synthetic tree into dir/src and returns the
// number of content bytes.
func benchTree(tb testing.TB, dir string) int64 {
	tb.Helper()
	rng := rand.New(rand.NewPCG(benchSeed, 0))
	avg := benchBytes / benchFiles
	sizes := make([]int, benchFiles)
	total := 0
	for i := range sizes {
		// Mostly small files and a few large ones, as in a source tree.
		s := rng.IntN(avg)
		if rng.IntN(8) == 0 {
			s = avg + rng.IntN(5*avg)
		}
		sizes[i] = s
		total += s
	}
	var written int64
	for i, s := range sizes {
		// Scale to benchBytes in all.
		s = int(int64(s) * benchBytes / int64(total))
		p := filepath.Join(dir, "src", fmt.Sprintf("d%02d", i%20), fmt.Sprintf("e%d", i%7), fmt.Sprintf("f%04d.go", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if i%50 == 0 {
			mode = 0o755
		}
		if err := os.WriteFile(p, benchText(rng, s), mode); err != nil {
			tb.Fatal(err)
		}
		written += int64(s)
	}
	return written
}

// benchEntries builds the synthetic tree and returns its entries, as a
// spec's `{path: /src, source: src/}` gives them, and the content bytes.
func benchEntries(tb testing.TB) ([]layer.Entry, int64) {
	tb.Helper()
	dir := tb.TempDir()
	n := benchTree(tb, dir)
	c, err := layer.OpenSourceDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	entries, err := c.Source("src/", "/src", nil, layer.Attrs{})
	if err != nil {
		tb.Fatal(err)
	}
	return entries, n
}

// BenchmarkWrite times layer.Write on the synthetic tree: reading the
// files, the tar stream, compression, both digests and the file written.
// MB/s counts the files' content bytes. The tree is generated, and its
// entries listed, before the timed section; each layer file is removed
// outside it.
func BenchmarkWrite(b *testing.B) {
	entries, n := benchEntries(b)
	for _, alg := range []compress.Algorithm{compress.Gzip, compress.Zstd} {
		b.Run(string(alg), func(b *testing.B) {
			out := b.TempDir()
			opts := layer.Options{Format: compress.Newest, Compression: alg}
			ctx := context.Background()
			b.SetBytes(n)
			var size int64
			for b.Loop() {
				l, err := layer.Write(ctx, entries, out, opts)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				size, _ = l.Size()
				if err := os.Remove(l.Path()); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(n)/float64(size), "ratio")
		})
	}
}

// BenchmarkWriteTar times the uncompressed canonical tar stream alone, to
// io.Discard: what BenchmarkWrite spends outside compression and hashing.
func BenchmarkWriteTar(b *testing.B) {
	entries, n := benchEntries(b)
	ctx := context.Background()
	b.SetBytes(n)
	for b.Loop() {
		if err := layer.WriteTar(ctx, io.Discard, entries, 0); err != nil {
			b.Fatal(err)
		}
	}
}
