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
	"math"
	"slices"
	"sync"
	"sync/atomic"

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
// the blocks, each checked on its own core. The offsets just after each
// sync marker are the candidate starts of blocks (such bytes may also
// occur inside a block: in stored data, say). Block j, decompressed on
// its own from a candidate, with the 32 KiB of want's bytes before it as
// the window, must give exactly want's j-th GzipBlockSize bytes; where
// it then ends deflate blocks, byte-aligned and not final, before giving
// more, are the places block j+1 may start. The chain must hold: block 0
// starts after the header, and each block j+1 at one of block j's ends.
// A decompressor between blocks at such a place, having written want's
// bytes before it, is in the state block j+1 was started in, so the
// whole stream decompresses as the blocks did. The last block must end
// the member with a final block, followed only by the gzip trailer with
// want's CRC-32 and size. So the whole stream decompresses to want's
// bytes, byte for byte; the candidates tried only cost time. Any step
// that does not hold is an *UnprovenError; a cancelled ctx is ctx's
// error. Memory is a few blocks per core, whatever the size.
func CheckGzipBlocks(ctx context.Context, blob io.ReaderAt, size int64, want func(io.Writer) error) ([32]byte, error) {
	if size < gzipPlainHeader+8 {
		return [32]byte{}, unproven("%d bytes are too few for a gzip member", size)
	}
	cuts, err := syncCuts(blob, gzipPlainHeader, size-8)
	if err != nil {
		return [32]byte{}, err
	}
	return checkBlocks(ctx, &wholeBlob{r: blob, n: size, cuts: cuts}, want)
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

// blockSource is a gzip member, and the candidate starts of its blocks.
type blockSource interface {
	io.ReaderAt
	// cut is the m-th candidate (from 0), once it has arrived; ok is
	// false when the member has no more.
	cut(ctx context.Context, m int) (off int64, ok bool, err error)
	// size is the member's size, once all of it has arrived.
	size(ctx context.Context) (int64, error)
}

// wholeBlob is a member whose bytes are all there.
type wholeBlob struct {
	r    io.ReaderAt
	n    int64
	cuts []int64
}

func (w *wholeBlob) ReadAt(p []byte, off int64) (int, error) {
	if off >= w.n {
		return 0, io.EOF
	}
	if off+int64(len(p)) > w.n {
		k, err := w.r.ReadAt(p[:w.n-off], off)
		if err == nil {
			err = io.EOF
		}
		return k, err
	}
	return w.r.ReadAt(p, off)
}

func (w *wholeBlob) cut(_ context.Context, m int) (int64, bool, error) {
	if m >= len(w.cuts) {
		return 0, false, nil
	}
	return w.cuts[m], true, nil
}

func (w *wholeBlob) size(context.Context) (int64, error) { return w.n, nil }

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
			// header. The final block's marker, at the very end, is a
			// candidate that no block starts at: it costs one try.
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

func (a *arriving) cut(ctx context.Context, m int) (int64, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.wait(ctx, func() bool { return len(a.cuts) > m }) {
		return 0, false, ctx.Err()
	}
	if len(a.cuts) > m {
		return a.cuts[m], true, nil
	}
	return 0, false, a.err
}

func (a *arriving) size(ctx context.Context) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.wait(ctx, func() bool { return false }) {
		return 0, ctx.Err()
	}
	return a.n, a.err
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

	var found foundBlocks
	jobs := make(chan blockJob, workers())
	var wg sync.WaitGroup
	for range workers() {
		wg.Go(func() {
			d := newBlockDecoder()
			for j := range jobs {
				var err error
				if ctx.Err() == nil {
					err = d.find(ctx, src, j, &found)
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
	if err := found.chained(g.i); err != nil {
		return sum, err
	}
	g.sha.Sum(sum[:0])
	return sum, nil
}

// foundBlocks is where each block was found to start, and the places its
// successor may start.
type foundBlocks struct {
	mu     sync.Mutex
	blocks []foundBlock
	// skew is how many false candidates the last block found had before
	// its start: where the next block looks first.
	skew atomic.Int64
}

type foundBlock struct {
	start int64
	ends  []int64
	ok    bool
}

func (f *foundBlocks) set(i int, b foundBlock) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.blocks) <= i {
		f.blocks = append(f.blocks, foundBlock{})
	}
	f.blocks[i] = b
}

// chained checks that the n blocks found make one stream: block 0 after
// the header, each block after one of the ends of the block before it.
func (f *foundBlocks) chained(n int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.blocks) != n {
		return unproven("%d blocks found of %d", len(f.blocks), n)
	}
	for i, b := range f.blocks {
		switch {
		case !b.ok:
			return unproven("block %d was not checked", i)
		case i == 0 && b.start != gzipPlainHeader:
			return unproven("block 0 starts at %d, not after the header", b.start)
		case i > 0 && !slices.Contains(f.blocks[i-1].ends, b.start):
			return unproven("block %d starts at %d, where block %d does not end (%v)", i, b.start, i-1, f.blocks[i-1].ends)
		}
	}
	return nil
}

// maxTries bounds the candidates a block tries: past it, so many false
// sync markers make the stream unproven.
const maxTries = 64

// find finds block j's start among the candidates, and where it ends.
func (d *blockDecoder) find(ctx context.Context, src blockSource, j blockJob, found *foundBlocks) error {
	if j.i == 0 {
		ends, err := d.try(ctx, src, gzipPlainHeader, j)
		if err != nil {
			return err
		}
		found.set(0, foundBlock{start: gzipPlainHeader, ends: ends, ok: true})
		return nil
	}
	// Block j starts after j true cuts: candidate j-1 or later. Look
	// first where the false ones before the last block found put it,
	// then after, then before.
	lo := j.i - 1
	first := lo + int(found.skew.Load())
	order := make([]int, 0, maxTries)
	for m := first; m < first+maxTries; m++ {
		order = append(order, m)
	}
	for m := first - 1; m >= lo && len(order) < 2*maxTries; m-- {
		order = append(order, m)
	}
	var why error
	for _, m := range order {
		off, ok, err := src.cut(ctx, m)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		ends, err := d.try(ctx, src, off, j)
		var u *UnprovenError
		if errors.As(err, &u) {
			why = err
			continue
		}
		if err != nil {
			return err
		}
		found.skew.Store(int64(m - lo))
		found.set(j.i, foundBlock{start: off, ends: ends, ok: true})
		return nil
	}
	if why == nil {
		why = unproven("no candidate start for block %d", j.i)
	}
	return why
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

// finish sends the last block (shorter than GzipBlockSize, maybe empty)
// with the trailer the member must end with.
func (g *blockStream) finish() error {
	if g.cur == nil {
		g.cur = blockBufs.Get().(*[]byte)
	}
	var tr [8]byte
	binary.LittleEndian.PutUint32(tr[:4], binary.BigEndian.Uint32(g.crc.Sum(nil)))
	binary.LittleEndian.PutUint32(tr[4:], uint32(g.n))
	*g.cur = append(*g.cur, tr[:]...)
	return g.send(true)
}

// blockDecoder checks blocks, one at a time.
type blockDecoder struct {
	out  []byte
	br   *bufio.Reader
	sec  *io.SectionReader
	want int64     // the bytes block j must give
	ends []int64   // where it then ends deflate blocks, byte-aligned, not final
	last blockEnd  // the last block end
	fin  *blockEnd // the final block's end, if one came after want's bytes
	over int64     // how far klauspost's offset runs ahead of the bytes read: see ended
	bad  bool      // the offsets do not fit that
}

// blockEnd is where a deflate block ended: bits into the section, and
// bytes of output.
type blockEnd struct {
	bits, out int64
	final     bool
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
	end := blockEnd{bits: 8*read - nb, out: cp.UncompressedOffset, final: cp.Final}
	d.last = end
	if end.out != d.want {
		return
	}
	if end.final {
		if d.fin == nil {
			d.fin = &end
		}
		return
	}
	if end.bits%8 == 0 && d.fin == nil && len(d.ends) < 8 {
		d.ends = append(d.ends, end.bits/8)
	}
}

// try decompresses block j from start: it must give want's bytes for the
// block and then end deflate blocks where the next block may start (the
// ends, as offsets in the member); the last must end the member.
func (d *blockDecoder) try(ctx context.Context, src blockSource, start int64, j blockJob) ([]int64, error) {
	d.sec = io.NewSectionReader(src, start, math.MaxInt64-start)
	d.br.Reset(d.sec)
	want := *j.want
	var trailer []byte
	if j.last {
		want, trailer = want[:len(want)-8], want[len(want)-8:]
	}
	d.want, d.ends, d.last, d.fin, d.over, d.bad = int64(len(want)), d.ends[:0], blockEnd{}, nil, 0, false
	fr := flate.NewReaderOpts(d.br, flate.WithDict(j.window), flate.WithEobCallback(d.ended))
	defer fr.Close()
	// Compared as it comes: a false start fails in its first bytes.
	got := 0
	var err error
	for err == nil && got < len(d.out) {
		var n int
		n, err = fr.Read(d.out[got:])
		if k := min(got+n, len(want)); k > got && !bytes.Equal(d.out[got:k], want[got:k]) {
			return nil, unproven("block %d from %d does not decompress to the bytes expected", j.i, start)
		}
		got += n
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	if got < len(want) {
		return nil, unproven("block %d from %d gives %d bytes, not %d (%v)", j.i, start, got, len(want), err)
	}
	if d.bad {
		return nil, unproven("block %d from %d: the decompressor's offsets do not add up", j.i, start)
	}
	ends := make([]int64, len(d.ends))
	for i, e := range d.ends {
		ends[i] = start + e
	}
	if !j.last {
		if len(ends) == 0 {
			return nil, unproven("block %d from %d does not end a deflate block after its bytes", j.i, start)
		}
		return ends, nil
	}
	if got != len(want) || err != io.EOF || d.fin == nil {
		return nil, unproven("the last block, from %d, does not end the stream (%v)", start, err)
	}
	size, err := src.size(ctx)
	if err != nil {
		return nil, err
	}
	// The trailer starts at the byte after the final block's last bit.
	at := start + (d.fin.bits+7)/8
	if size-at != 8 {
		return nil, unproven("%d bytes follow the deflate stream, not the 8 of a gzip trailer", size-at)
	}
	tr := make([]byte, 8)
	if _, err := src.ReadAt(tr, at); err != nil {
		return nil, err
	}
	if !bytes.Equal(tr, trailer) {
		return nil, unproven("the gzip trailer (% x) is not the bytes' CRC-32 and size (% x)", tr, trailer)
	}
	return nil, nil
}
