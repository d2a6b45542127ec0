package compress

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
)

// UnprovenError is CheckGzipBlocks failing to prove a stream: it is not
// in the block form, a block does not end where it should, or it does not
// decompress to the expected bytes. It says nothing about whether the
// stream is sound: the caller decompresses it whole to find out.
type UnprovenError struct{ Why string }

func (e *UnprovenError) Error() string { return "gzip blocks not proven: " + e.Why }

func unproven(format string, args ...any) error {
	return &UnprovenError{Why: fmt.Sprintf(format, args...)}
}

// syncMarker ends a deflate sync flush: an empty stored block, LEN 0 and
// NLEN 0xffff, after which the stream is byte-aligned between blocks.
// pgzip ends every block but the last with one.
var syncMarker = []byte{0, 0, 0xff, 0xff}

// gzipPlainHeader is a gzip member header without optional fields (FLG
// 0): the header of both output formats; MTIME, XFL and OS may be any.
const gzipPlainHeader = 10

// windowSize is deflate's window: the history a block may refer back to.
const windowSize = 32 << 10

// CheckGzipBlocks proves, on several cores, that the gzip member in blob
// (size bytes, of the form NewWriter writes: GzipBlockSize blocks, each
// ended by a sync flush, then an empty final block) decompresses to
// exactly the bytes want writes, and returns their SHA-256. want is
// called once, on the caller's goroutine, while the blocks are checked
// on others; a write fails (and want should return) once the check has
// failed.
//
// Decompression is sequential by nature; the proof is by induction on
// the blocks. The stream is cut after each sync marker (a guess: such
// bytes may also occur inside a block). Block i, decompressed on its own
// from its cut, with the 32 KiB of want's bytes before it as the window,
// must give exactly want's i-th GzipBlockSize bytes and end a deflate
// block exactly at its last bit; the last must end the member, followed
// only by the gzip trailer with want's CRC-32 and size. Block 0 starts
// the stream as any decompressor starts it; if block i starts in the
// state a whole decompression reaches there (between blocks, at that
// byte, the window want's bytes before it), it ends in the state block
// i+1 was started in. So the whole stream decompresses to want's bytes,
// byte for byte. Any step that does not hold is an *UnprovenError; a
// cancelled ctx is ctx's error. Memory is a few blocks per core,
// whatever the size.
func CheckGzipBlocks(ctx context.Context, blob io.ReaderAt, size int64, want func(io.Writer) error) ([32]byte, error) {
	if size < gzipPlainHeader+8 {
		return [32]byte{}, unproven("%d bytes are too few for a gzip member", size)
	}
	cuts, err := syncCuts(blob, gzipPlainHeader, size-8)
	if err != nil {
		return [32]byte{}, err
	}
	return checkBlocks(ctx, &wholeBlob{r: blob, size: size, cuts: cuts}, want)
}

// CopyCheckGzipBlocks copies src to dst, as io.Copy does, and proves as
// CheckGzipBlocks does that the copied gzip member decompresses to the
// bytes want writes, checking each block as soon as it has arrived: on a
// slow source, the proof ends about when the copy does. dst is read back
// (ReadAt) as it is written. The copy always runs to src's end, whatever
// the check finds, so that on an *UnprovenError dst holds all n bytes
// for the caller to read another way; an error of src or dst is
// returned before any finding of the check.
func CopyCheckGzipBlocks(ctx context.Context, dst interface {
	io.Writer
	io.ReaderAt
}, src io.Reader, want func(io.Writer) error) (sum [32]byte, n int64, err error) {
	a := newArriving(ctx, dst)
	copied := make(chan error, 1)
	go func() { copied <- a.copyFrom(src) }()
	sum, err = checkBlocks(ctx, a, want)
	cerr := <-copied
	if cerr != nil {
		return sum, a.n, cerr
	}
	return sum, a.n, err
}

// blockSource is a gzip member, cut into blocks.
type blockSource interface {
	io.ReaderAt
	// block says where block i is, once that is known: bytes [start,
	// end), and whether it is the member's last; ok is false when the
	// member has no block i.
	block(ctx context.Context, i int) (start, end int64, last, ok bool, err error)
}

// wholeBlob is a member whose bytes are all there.
type wholeBlob struct {
	r    io.ReaderAt
	size int64
	cuts []int64
}

func (w *wholeBlob) ReadAt(p []byte, off int64) (int, error) { return w.r.ReadAt(p, off) }

func (w *wholeBlob) block(_ context.Context, i int) (start, end int64, last, ok bool, err error) {
	return cutBlock(w.cuts, w.size, i)
}

// cutBlock is block i of a member of size bytes with these cuts.
func cutBlock(cuts []int64, size int64, i int) (start, end int64, last, ok bool, err error) {
	start = gzipPlainHeader
	if i > 0 {
		if i > len(cuts) {
			return 0, 0, false, false, nil
		}
		start = cuts[i-1]
	}
	if i < len(cuts) {
		return start, cuts[i], false, true, nil
	}
	return start, size, true, true, nil
}

// syncCuts are the offsets in (from, to) just after each sync marker.
// A marker ending at to is the member's final empty stored block, which
// klauspost's flate writes on Close: not a cut.
func syncCuts(r io.ReaderAt, from, to int64) ([]int64, error) {
	var cuts []int64
	buf := make([]byte, 1<<20)
	keep := len(syncMarker) - 1
	for off := from; off < to; {
		n := min(int64(len(buf)), to-off)
		if _, err := r.ReadAt(buf[:n], off); err != nil {
			return nil, err
		}
		cuts = appendCuts(cuts, buf[:n], off, from, to)
		if off+n >= to {
			break
		}
		// A marker may straddle two reads: read its first bytes again.
		off += n - int64(keep)
	}
	return cuts, nil
}

// appendCuts appends to cuts the offsets in [from, to) just after each
// sync marker in b, which starts at offset off; cuts already found are
// not found again.
func appendCuts(cuts []int64, b []byte, off, from, to int64) []int64 {
	for i := 0; ; {
		k := bytes.Index(b[i:], syncMarker)
		if k < 0 {
			return cuts
		}
		i += k + len(syncMarker)
		if cut := off + int64(i); cut >= from && cut < to && (len(cuts) == 0 || cut > cuts[len(cuts)-1]) {
			cuts = append(cuts, cut)
		}
	}
}

// arriving is a member being copied into dst: its blocks are known as
// the bytes after them arrive.
type arriving struct {
	ctx  context.Context
	dst  io.Writer
	r    io.ReaderAt
	mu   sync.Mutex
	cond *sync.Cond
	n    int64   // bytes written to dst
	cuts []int64 // cut after each sync marker past the header
	done bool    // the copy has ended
	err  error   // and how
}

func newArriving(ctx context.Context, dst interface {
	io.Writer
	io.ReaderAt
}) *arriving {
	a := &arriving{ctx: ctx, dst: dst, r: dst}
	a.cond = sync.NewCond(&a.mu)
	return a
}

func (a *arriving) copyFrom(src io.Reader) error {
	buf := make([]byte, 256<<10)
	keep := len(syncMarker) - 1
	tail := make([]byte, 0, 2*len(syncMarker)) // the last bytes read, for a marker across reads
	var err error
	for {
		k, rerr := src.Read(buf)
		if k > 0 {
			if _, werr := a.dst.Write(buf[:k]); werr != nil {
				err = werr
				break
			}
			a.mu.Lock()
			// A marker may straddle two reads; markers start past the
			// header. A cut at the very end may be the final block's (see
			// syncCuts): block waits for the bytes after a cut to know.
			join := append(tail, buf[:min(k, keep)]...)
			a.cuts = appendCuts(a.cuts, join, a.n-int64(len(tail)), gzipPlainHeader+int64(len(syncMarker)), 1<<62)
			a.cuts = appendCuts(a.cuts, buf[:k], a.n, gzipPlainHeader+int64(len(syncMarker)), 1<<62)
			a.n += int64(k)
			a.cond.Broadcast()
			a.mu.Unlock()
			if k >= keep {
				tail = append(tail[:0], buf[k-keep:k]...)
			} else {
				tail = append(tail, buf[:k]...)
				tail = tail[max(0, len(tail)-keep):]
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	a.mu.Lock()
	a.done, a.err = true, err
	a.cond.Broadcast()
	a.mu.Unlock()
	return err
}

// wait waits, with a.mu held, until ready() or the copy's end; it is
// false when ctx ends first.
func (a *arriving) wait(ctx context.Context, ready func() bool) bool {
	stop := context.AfterFunc(ctx, func() {
		a.mu.Lock()
		a.cond.Broadcast()
		a.mu.Unlock()
	})
	defer stop()
	for !a.done && !ready() {
		if ctx.Err() != nil {
			return false
		}
		a.cond.Wait()
	}
	return ctx.Err() == nil
}

func (a *arriving) ReadAt(p []byte, off int64) (int, error) {
	a.mu.Lock()
	ok := a.wait(a.ctx, func() bool { return a.n >= off+int64(len(p)) })
	a.mu.Unlock()
	if !ok {
		return 0, a.ctx.Err()
	}
	return a.r.ReadAt(p, off)
}

func (a *arriving) block(ctx context.Context, i int) (start, end int64, last, ok bool, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	// A cut is one once 9 bytes follow it: it is then before the
	// trailer's 8.
	if !a.wait(ctx, func() bool { return len(a.cuts) > i && a.n >= a.cuts[i]+9 }) {
		return 0, 0, false, false, ctx.Err()
	}
	if !a.done {
		return cutBlock(a.cuts, 1<<62, i)
	}
	if a.err != nil {
		return 0, 0, false, false, a.err
	}
	cuts := a.cuts
	for len(cuts) > 0 && cuts[len(cuts)-1] >= a.n-8 {
		cuts = cuts[:len(cuts)-1]
	}
	if a.n < gzipPlainHeader+8 {
		return 0, 0, false, false, unproven("%d bytes are too few for a gzip member", a.n)
	}
	return cutBlock(cuts, a.n, i)
}

// checkBlocks is the proof of CheckGzipBlocks, on src.
func checkBlocks(ctx context.Context, src blockSource, want func(io.Writer) error) (sum [32]byte, err error) {
	hdr := make([]byte, gzipPlainHeader)
	if _, err := src.ReadAt(hdr, 0); err != nil {
		if errors.Is(err, io.EOF) {
			return sum, unproven("too few bytes for a gzip header")
		}
		return sum, err
	}
	if hdr[0] != 0x1f || hdr[1] != 0x8b || hdr[2] != 8 || hdr[3] != 0 {
		return sum, unproven("the header is not a plain gzip header (% x)", hdr[:4])
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	jobs := make(chan blockJob, workers())
	var wg sync.WaitGroup
	for range workers() {
		wg.Go(func() {
			d := newBlockDecoder()
			for j := range jobs {
				var err error
				if ctx.Err() == nil {
					err = d.check(ctx, src, j)
				}
				j.release()
				if err != nil {
					cancel(err)
				}
			}
		})
	}
	g := &blockStream{ctx: ctx, jobs: jobs, crc: crc32.NewIEEE(), sha: sha256.New()}
	werr := want(g)
	if werr == nil && ctx.Err() == nil {
		werr = g.finish()
	}
	close(jobs)
	wg.Wait()
	if c := context.Cause(ctx); c != nil {
		return sum, c
	}
	if werr != nil {
		return sum, werr
	}
	g.sha.Sum(sum[:0])
	return sum, nil
}

// blockJob is one block to check: its index, want's bytes for it (with
// the trailer expected, in the last) and the window before it.
type blockJob struct {
	i      int
	last   bool
	want   *[]byte
	window []byte
}

var blockBufs = sync.Pool{New: func() any { b := make([]byte, 0, GzipBlockSize+8); return &b }}

func (j blockJob) release() { *j.want = (*j.want)[:0]; blockBufs.Put(j.want) }

// blockStream cuts want's bytes into blocks, hashes them, and hands each
// to the checkers.
type blockStream struct {
	ctx    context.Context
	jobs   chan<- blockJob
	i      int // the index of the block being filled
	cur    *[]byte
	window []byte
	crc    hashWriter
	sha    hashWriter
	n      int64
}

type hashWriter interface {
	io.Writer
	Sum([]byte) []byte
}

var errCheckFailed = errors.New("the gzip blocks check has stopped")

func (g *blockStream) Write(p []byte) (int, error) {
	if g.ctx.Err() != nil {
		return 0, errCheckFailed
	}
	g.crc.Write(p)
	g.sha.Write(p)
	g.n += int64(len(p))
	written := len(p)
	for len(p) > 0 {
		if g.cur == nil {
			g.cur = blockBufs.Get().(*[]byte)
		}
		k := min(len(p), GzipBlockSize-len(*g.cur))
		*g.cur = append(*g.cur, p[:k]...)
		p = p[k:]
		if len(*g.cur) == GzipBlockSize {
			if err := g.send(false); err != nil {
				return 0, err
			}
		}
	}
	return written, nil
}

// send hands the block being filled (full, or the last, maybe empty) to
// a checker; the next block's window is the 32 KiB before it.
func (g *blockStream) send(last bool) error {
	if g.cur == nil {
		g.cur = blockBufs.Get().(*[]byte)
	}
	b := *g.cur
	j := blockJob{i: g.i, last: last, want: g.cur, window: g.window}
	if len(b) >= windowSize {
		g.window = append([]byte(nil), b[len(b)-windowSize:]...)
	} else {
		w := append(append([]byte(nil), g.window...), b...)
		g.window = w[max(0, len(w)-windowSize):]
	}
	g.cur = nil
	g.i++
	select {
	case g.jobs <- j:
		return nil
	case <-g.ctx.Done():
		j.release()
		return errCheckFailed
	}
}

// finish sends the last blocks. pgzip flushes its last block of data too
// (shorter than GzipBlockSize, maybe empty), then ends the member with an
// empty final block, which must be followed by the trailer expected.
func (g *blockStream) finish() error {
	if err := g.send(false); err != nil {
		return err
	}
	g.cur = blockBufs.Get().(*[]byte)
	var tr [8]byte
	binary.LittleEndian.PutUint32(tr[:4], binary.BigEndian.Uint32(g.crc.Sum(nil)))
	binary.LittleEndian.PutUint32(tr[4:], uint32(g.n))
	*g.cur = append(*g.cur, tr[:]...)
	return g.send(true)
}

// blockDecoder checks blocks, one at a time.
type blockDecoder struct {
	out []byte
	br  *bufio.Reader
	sec *io.SectionReader
	eob blockEnd // where the last deflate block ended
	// over is how far klauspost's offset runs ahead of the bytes read:
	// see ended.
	over int64
	bad  bool
}

// blockEnd is where a deflate block ended: bits into the section, and
// bytes of output.
type blockEnd struct {
	bits, out int64
	final, ok bool
}

func newBlockDecoder() *blockDecoder {
	return &blockDecoder{out: make([]byte, GzipBlockSize+1), br: bufio.NewReaderSize(nil, 64<<10)}
}

// ended records the end of a deflate block, from klauspost's checkpoint.
// The bit position is not taken from the checkpoint as it is: klauspost
// v1.20.4 counts each byte into its offset as it reads it, and again
// each whole byte still buffered when a stored block starts (dataBlock's
// roffset += offBytes), so the checkpoint can run ahead. What is known
// for certain is read, the bytes the decompressor has taken from the
// bufio reader. With nb the bits it holds unused, the checkpoint is
// 8*(read+over) - nb: after a stored block nb is 0 (dataBlock empties
// it), after a Huffman block over is what it was. So a checkpoint below
// -8*over (from 8*read) is a stored block's, and sets over; any other
// gives nb. Should the model fail (a future klauspost counting
// otherwise), the ends found are wrong and the blocks unproven, never
// proven wrongly: over only grows by what a stored block's nb = 0 shows,
// and the fuzz test holds the proofs to the standard library's reading.
func (d *blockDecoder) ended(cp flate.InflateCheckpoint) {
	pos, _ := d.sec.Seek(0, io.SeekCurrent)
	read := pos - int64(d.br.Buffered())
	e := 8*read - (8*cp.CompressedOffset + int64(cp.BitOffset))
	nb := e + 8*d.over
	if nb < 0 {
		if e%8 != 0 {
			d.bad = true
		}
		d.over, nb = -e/8, 0
	}
	d.eob = blockEnd{bits: 8*read - nb, out: cp.UncompressedOffset, final: cp.Final, ok: true}
}

func (d *blockDecoder) check(ctx context.Context, src blockSource, j blockJob) error {
	start, end, last, ok, err := src.block(ctx, j.i)
	switch {
	case err != nil:
		return err
	case !ok:
		return unproven("the stream has fewer blocks than the bytes expected fill (%d)", j.i)
	case last != j.last:
		return unproven("block %d of the stream is the last: %v; of the bytes expected: %v", j.i, last, j.last)
	}
	d.sec = io.NewSectionReader(src, start, end-start)
	d.br.Reset(d.sec)
	d.eob, d.over, d.bad = blockEnd{}, 0, false
	want := *j.want
	var trailer []byte
	if last {
		want, trailer = want[:len(want)-8], want[len(want)-8:]
	}
	fr := flate.NewReaderOpts(d.br, flate.WithDict(j.window), flate.WithEobCallback(d.ended))
	defer fr.Close()
	got := 0
	for err == nil && got < len(d.out) {
		var n int
		n, err = fr.Read(d.out[got:])
		got += n
	}
	if got > len(want) || !bytes.Equal(d.out[:got], want) {
		return unproven("block %d does not decompress to the bytes expected", j.i)
	}
	size8 := 8 * d.sec.Size()
	if d.bad || !d.eob.ok || d.eob.out != int64(len(want)) {
		return unproven("block %d does not end a deflate block with its bytes (%v)", j.i, err)
	}
	if !last {
		// The section ends where a block ends: the decompressor, wanting
		// the next block's header, finds no byte.
		if err != io.ErrUnexpectedEOF || d.eob.final || d.eob.bits != size8 {
			return unproven("block %d does not end a deflate block at its cut (%v; at bit %d of %d)", j.i, err, d.eob.bits, size8)
		}
		return nil
	}
	if err != io.EOF || !d.eob.final {
		return unproven("the last block does not end the stream (%v)", err)
	}
	// The trailer starts at the byte after the final block's last bit.
	if rest := size8 - (d.eob.bits+7)/8*8; rest != 64 {
		return unproven("%d bits follow the deflate stream, not the 64 of a gzip trailer", rest)
	}
	tr := make([]byte, 8)
	if _, err := src.ReadAt(tr, end-8); err != nil {
		return err
	}
	if !bytes.Equal(tr, trailer) {
		return unproven("the gzip trailer (% x) is not the bytes' CRC-32 and size (% x)", tr, trailer)
	}
	return nil
}
