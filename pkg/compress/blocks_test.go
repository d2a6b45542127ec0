package compress_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/reprobuild/repro/pkg/compress"
)

// tarLike is n bytes a layer might hold: runs of text that compress,
// with stretches of noise that do not.
func tarLike(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, 0, n)
	words := [][]byte{[]byte("usr/share/doc/"), []byte("0000644\x00"), []byte("ustar\x0000"), []byte("func main() {\n\treturn\n}\n"), make([]byte, 512)}
	for len(b) < n {
		if r.IntN(8) == 0 {
			k := r.IntN(4096)
			for range k {
				b = append(b, byte(r.Uint32()))
			}
			continue
		}
		b = append(b, words[r.IntN(len(words))]...)
	}
	return b[:n]
}

func wants(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		// In odd pieces, as the tar writer writes.
		for p := data; len(p) > 0; {
			n := min(len(p), 1+len(p)%10007)
			if _, err := w.Write(p[:n]); err != nil {
				return err
			}
			p = p[n:]
		}
		return nil
	}
}

// checkBlocks runs CheckGzipBlocks on blob, and CopyCheckGzipBlocks on
// blob arriving in pieces of every size, and wants the same finding of
// both.
func checkBlocks(blob []byte, want []byte) ([32]byte, error) {
	sum, err := compress.CheckGzipBlocks(context.Background(), bytes.NewReader(blob), int64(len(blob)), wants(want))
	dst := &memFile{}
	sum2, n, err2 := compress.CopyCheckGzipBlocks(context.Background(), dst, &pieces{b: blob}, wants(want))
	switch {
	case n != int64(len(blob)) || !bytes.Equal(dst.b, blob):
		return sum, fmt.Errorf("CopyCheckGzipBlocks copied %d bytes, not the %d of the blob", n, len(blob))
	case (err == nil) != (err2 == nil) || unprovenErr(err) != unprovenErr(err2) || sum != sum2:
		return sum, fmt.Errorf("CheckGzipBlocks found %x, %v; CopyCheckGzipBlocks %x, %v", sum, err, sum2, err2)
	}
	return sum, err
}

// memFile is a file in memory, safe for a writer and readers at once.
type memFile struct {
	mu sync.Mutex
	b  []byte
}

func (m *memFile) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.b = append(m.b, p...)
	return len(p), nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// pieces reads b in pieces of changing sizes, 1 byte to 300 KiB, as a
// network body arrives.
type pieces struct {
	b []byte
	i int
}

func (p *pieces) Read(q []byte) (int, error) {
	if len(p.b) == 0 {
		return 0, io.EOF
	}
	p.i++
	k := min(len(q), len(p.b), []int{1, 3, 7, 300 << 10, 4096, 65536, 2}[p.i%7])
	copy(q, p.b[:k])
	p.b = p.b[k:]
	return k, nil
}

// TestCheckGzipBlocksProves: the streams NewWriter writes, at every size
// around the block boundaries, are proven to be their bytes.
func TestCheckGzipBlocksProves(t *testing.T) {
	const mb = compress.GzipBlockSize
	for _, n := range []int{0, 1, 511, 32 << 10, mb - 1, mb, mb + 1, 2 * mb, 5*mb + mb/2} {
		data := tarLike(n, uint64(n))
		blob := write(t, compress.Gzip, data, nil)
		sum, err := checkBlocks(blob, data)
		if err != nil {
			t.Errorf("%d bytes: %v", n, err)
			continue
		}
		if sum != sha256.Sum256(data) {
			t.Errorf("%d bytes: sum %x, want %x", n, sum, sha256.Sum256(data))
		}
	}
}

// maxTriesForTest is compress.maxTries.
const maxTriesForTest = 64

func unprovenErr(err error) bool {
	var u *compress.UnprovenError
	return errors.As(err, &u)
}

// TestCheckGzipBlocksRefuses: a stream that is not exactly the bytes
// expected is never proven.
func TestCheckGzipBlocksRefuses(t *testing.T) {
	const mb = compress.GzipBlockSize
	data := tarLike(3*mb+12345, 7)
	blob := write(t, compress.Gzip, data, nil)
	for _, at := range []int{0, 1000, mb - 1, mb, mb + 70000, 2*mb + 5, len(data) - 1} {
		other := bytes.Clone(data)
		other[at] ^= 1
		if _, err := checkBlocks(blob, other); !unprovenErr(err) {
			t.Errorf("one byte different at %d: err = %v, want unproven", at, err)
		}
	}
	for name, other := range map[string][]byte{
		"one byte longer":     append(bytes.Clone(data), 0),
		"one byte shorter":    data[:len(data)-1],
		"one block shorter":   data[:2*mb+12345],
		"one block longer":    append(bytes.Clone(data), make([]byte, mb)...),
		"nothing":             nil,
		"the blocks reversed": append(append(bytes.Clone(data[mb:2*mb]), data[:mb]...), data[2*mb:]...),
	} {
		if _, err := checkBlocks(blob, other); !unprovenErr(err) {
			t.Errorf("%s: err = %v, want unproven", name, err)
		}
	}
	// A flipped bit anywhere past the header's MTIME, XFL and OS (which
	// the blob's digest covers, and no decompressor reads).
	r := rand.New(rand.NewPCG(3, 3))
	data, blob = data[:mb+mb/2], write(t, compress.Gzip, data[:mb+mb/2], nil)
	for range 100 {
		bad := bytes.Clone(blob)
		at := r.IntN(len(bad)-10) + 10
		bad[at] ^= 1 << r.IntN(8)
		if sum, err := checkBlocks(bad, data); err == nil {
			t.Fatalf("bit flipped at %d of %d: proven (%x)", at, len(bad), sum)
		} else if !unprovenErr(err) {
			t.Fatalf("bit flipped at %d: err = %v, want unproven", at, err)
		}
	}
	for _, cut := range []int{0, 9, 17, len(blob) / 2, len(blob) - 9, len(blob) - 1} {
		if _, err := checkBlocks(blob[:cut], data); !unprovenErr(err) {
			t.Errorf("blob cut to %d bytes: err = %v, want unproven", cut, err)
		}
	}
	if _, err := checkBlocks(append(bytes.Clone(blob), blob...), data); !unprovenErr(err) {
		t.Errorf("two members: err = %v, want unproven", err)
	}
}

// TestCheckGzipBlocksOtherWriters: streams of other forms are unproven,
// so the caller decompresses them whole; none is taken for another.
func TestCheckGzipBlocksOtherWriters(t *testing.T) {
	data := tarLike(3<<20, 11)
	var plain bytes.Buffer
	zw := gzip.NewWriter(&plain)
	zw.Write(data)
	zw.Close()
	if _, err := checkBlocks(plain.Bytes(), data); !unprovenErr(err) {
		t.Errorf("the standard library's gzip: err = %v, want unproven", err)
	}

	// Noise is stored, not compressed: a sync marker inside the data is
	// a false candidate, tried and passed over.
	noise := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{5}).Read(noise)
	for _, at := range []int{100, 1<<20 + 4000, 2<<20 + 77, 2<<20 + 99} {
		copy(noise[at:], []byte{0, 0, 0xff, 0xff})
	}
	blob := write(t, compress.Gzip, noise, nil)
	if sum, err := checkBlocks(blob, noise); err != nil || sum != sha256.Sum256(noise) {
		t.Errorf("sync markers in stored data: %x, %v", sum, err)
	}
	// More false candidates before a block than it tries: unproven.
	for at := 1000; at < 1000+8*(maxTriesForTest+10); at += 8 {
		copy(noise[at:], []byte{0, 0, 0xff, 0xff})
	}
	blob = write(t, compress.Gzip, noise, nil)
	if _, err := checkBlocks(blob, noise); !unprovenErr(err) {
		t.Errorf("%d sync markers in a block: err = %v, want unproven", maxTriesForTest+10, err)
	}
	// The fallback, decompressing whole, still reads it right.
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(got, noise) {
		t.Fatalf("decompressed whole: %d bytes, %v", len(got), err)
	}
}

// TestCheckGzipBlocksErrors: want's error and a cancelled context are
// returned as they are, not as unproven.
func TestCheckGzipBlocksErrors(t *testing.T) {
	data := tarLike(4<<20, 13)
	blob := write(t, compress.Gzip, data, nil)
	boom := errors.New("boom")
	_, err := compress.CheckGzipBlocks(context.Background(), bytes.NewReader(blob), int64(len(blob)), func(w io.Writer) error {
		w.Write(data[:1<<20])
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("want fails: err = %v, want boom", err)
	}
	// A source that fails is the finding, whatever the blocks before.
	dst := &memFile{}
	broken := io.MultiReader(bytes.NewReader(blob[:len(blob)/2]), iotest.ErrReader(boom))
	if _, n, err := compress.CopyCheckGzipBlocks(context.Background(), dst, broken, wants(data)); !errors.Is(err, boom) || n != int64(len(blob)/2) {
		t.Errorf("the source fails: %d bytes, err = %v, want %d and boom", n, err, len(blob)/2)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := compress.CheckGzipBlocks(ctx, bytes.NewReader(blob), int64(len(blob)), wants(data)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v, want context.Canceled", err)
	}
}

// FuzzCheckGzipBlocks: whatever the blob, a proof means the standard
// library's gzip reader gives exactly the bytes expected.
func FuzzCheckGzipBlocks(f *testing.F) {
	for _, n := range []int{0, 100, 70000} {
		data := tarLike(n, uint64(n))
		var out bytes.Buffer
		zw, _ := compress.NewWriter(&out, compress.Gzip)
		zw.Write(data)
		zw.Close()
		f.Add(out.Bytes(), data)
	}
	f.Fuzz(func(t *testing.T, blob, data []byte) {
		sum, err := checkBlocks(blob, data)
		if err != nil {
			return
		}
		if sum != sha256.Sum256(data) {
			t.Fatalf("sum %x is not the data's", sum)
		}
		zr, err := gzip.NewReader(bytes.NewReader(blob))
		if err != nil {
			t.Fatalf("proven, but gzip refuses the header: %v", err)
		}
		zr.Multistream(false)
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("proven, but gzip reads %d bytes (%v), want %d", len(got), err, len(data))
		}
	})
}
