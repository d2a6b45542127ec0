package compress_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/reprobuild/repro/internal/testtool"
	"github.com/reprobuild/repro/pkg/compress"
)

// write compresses in with a, in odd-sized pieces as a tar writer would,
// teeing into tee when it is not nil.
func write(t *testing.T, a compress.Algorithm, in []byte, tee io.Writer) []byte {
	t.Helper()
	var out bytes.Buffer
	var zw io.WriteCloser
	var err error
	if tee == nil {
		zw, err = compress.NewWriter(&out, a)
	} else {
		zw, err = compress.NewTeeWriter(&out, a, compress.Newest, tee)
	}
	if err != nil {
		t.Fatal(err)
	}
	for p := in; len(p) > 0; {
		n := min(len(p), 512+len(p)%7919)
		if _, err := zw.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestTeeSeesTheStream: the tee gets exactly the uncompressed stream, the
// compressed bytes are those NewWriter writes, and they decompress to the
// input. Sizes around the chunk boundaries, and none.
func TestTeeSeesTheStream(t *testing.T) {
	input := testInput(compress.ZstdChunk + 3)
	for _, a := range []compress.Algorithm{compress.Gzip, compress.Zstd} {
		for _, size := range []int{0, 1, compress.ZstdChunk, compress.ZstdChunk + 3} {
			in := input[:size]
			tee := sha256.New()
			got := write(t, a, in, tee)
			if want := write(t, a, in, nil); !bytes.Equal(got, want) {
				t.Errorf("%s, %d bytes: NewTeeWriter wrote other bytes than NewWriter", a, size)
			}
			if want := sha256.Sum256(in); !bytes.Equal(tee.Sum(nil), want[:]) {
				t.Errorf("%s, %d bytes: the tee saw another stream", a, size)
			}
			zr, err := compress.NewReader(bytes.NewReader(got), a)
			if err != nil {
				t.Fatal(err)
			}
			back, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(back, in) {
				t.Errorf("%s, %d bytes: round trip: %v, equal %v", a, size, err, bytes.Equal(back, in))
			}
		}
	}
}

type failWriter struct{ after int }

var errFull = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after < len(p) {
		return 0, errFull
	}
	w.after -= len(p)
	return len(p), nil
}

// TestWriteErrorsSurface: a destination that fails makes Write or Close
// fail with its error, with and without a tee; nothing hangs.
func TestWriteErrorsSurface(t *testing.T) {
	in := testInput(3 << 20)
	for _, a := range []compress.Algorithm{compress.Gzip, compress.Zstd} {
		for _, tee := range []io.Writer{nil, sha256.New()} {
			zw, err := compress.NewTeeWriter(&failWriter{after: 1 << 19}, a, compress.Newest, tee)
			if err != nil {
				t.Fatal(err)
			}
			var first error
			for p := in; len(p) > 0 && first == nil; p = p[min(len(p), 1<<16):] {
				_, first = zw.Write(p[:min(len(p), 1<<16)])
			}
			if err := zw.Close(); first == nil {
				first = err
			}
			if !errors.Is(first, errFull) {
				t.Errorf("%s, tee %v: err = %v, want %v", a, tee != nil, first, errFull)
			}
		}
	}
}

// testInput is n bytes of text that compresses a few times over, made
// cheaply (the race detector makes benchInput slow).
func testInput(n int) []byte {
	words := []string{"layer ", "digest ", "tar ", "zstd ", "gzip ", "\n", "repro ", "0o644 ", "sha256:"}
	out := make([]byte, 0, n+16)
	x := uint32(2463534242)
	for len(out) < n {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		out = append(out, words[x%uint32(len(words))]...)
		if x%5 == 0 {
			out = append(out, byte('a'+x%26))
		}
	}
	return out[:n]
}

// TestCloseTwiceAndWriteAfterClose: a second Close returns the first's
// result, and a Write after Close is an error, not a panic.
func TestCloseTwiceAndWriteAfterClose(t *testing.T) {
	for _, a := range []compress.Algorithm{compress.Gzip, compress.Zstd} {
		for _, tee := range []io.Writer{nil, sha256.New()} {
			var out bytes.Buffer
			zw, err := compress.NewTeeWriter(&out, a, compress.Newest, tee)
			if err != nil {
				t.Fatal(err)
			}
			zw.Write([]byte("hello"))
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Errorf("%s, tee %v: second Close: %v", a, tee != nil, err)
			}
			if _, err := zw.Write(testInput(5 << 20)); err == nil {
				t.Errorf("%s, tee %v: Write after Close succeeded", a, tee != nil)
			}
		}
	}
}

// TestMemoryDoesNotGrowWithCores: the zstd writer's buffers in flight
// are capped, whatever GOMAXPROCS says.
func TestMemoryDoesNotGrowWithCores(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses 64 MiB")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(64))
	defer debug.SetGCPercent(debug.SetGCPercent(20))
	in := testInput(1 << 20)
	peak := testtool.HeapPeak(func() {
		zw, err := compress.NewWriter(io.Discard, compress.Zstd)
		if err != nil {
			t.Fatal(err)
		}
		for range 64 {
			zw.Write(in)
		}
		zw.Close()
	})
	// Uncapped, this peaks near 240 MiB; capped, 100-135 MiB depending on
	// when the collector runs (under -race too): 176 MiB tells them apart
	// without flaking.
	if p := peak; p > 176<<20 {
		t.Errorf("zstd at GOMAXPROCS 64 peaked at %d MiB of heap", p>>20)
	} else {
		t.Logf("zstd at GOMAXPROCS 64: heap peak %d MiB", p>>20)
	}
}
