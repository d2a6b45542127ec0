package compress

import (
	"errors"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// ZstdChunk is the size of the independent zstd frames repro writes: the
// stream is cut every ZstdChunk bytes, each piece is compressed on its own
// (in parallel), and the frames are written in order. A zstd stream may be
// any number of frames, and every decoder reads them as one. The bytes
// depend only on the input and these settings, never on how many frames
// are compressed at once.
const ZstdChunk = 4 << 20

// zstdWriter compresses fixed chunks on worker goroutines and writes the
// frames in order.
type zstdWriter struct {
	w       io.Writer
	tee     io.Writer // the uncompressed stream, in order; may be nil
	buf     []byte
	jobs    chan *zjob
	order   chan *zjob
	done    chan struct{}
	mu      sync.Mutex
	err     error
	closed  bool
	chunks  int
	pool    sync.Pool // input chunks
	outPool sync.Pool // compressed frames
	workers sync.WaitGroup
}

type zjob struct {
	in  []byte
	out []byte
	ok  chan struct{}
}

func newZstdWriter(w io.Writer, workers int, tee io.Writer) (*zstdWriter, error) {
	if workers < 1 {
		workers = 1
	}
	z := &zstdWriter{
		w:     w,
		tee:   tee,
		jobs:  make(chan *zjob, workers),
		order: make(chan *zjob, workers+1),
		done:  make(chan struct{}),
	}
	z.pool.New = func() any { b := make([]byte, 0, ZstdChunk); return &b }
	// A frame of incompressible input is a little larger than the input.
	z.outPool.New = func() any { b := make([]byte, 0, ZstdChunk+ZstdChunk/64+1024); return &b }
	encoders := make([]*zstd.Encoder, workers)
	for i := range encoders {
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(ZstdLevel),
			zstd.WithWindowSize(ZstdWindow),
			zstd.WithEncoderCRC(true),
			zstd.WithZeroFrames(true),
			zstd.WithSingleSegment(false),
			zstd.WithLowerEncoderMem(false),
			zstd.WithEncoderConcurrency(1),
		)
		if err != nil {
			return nil, err
		}
		encoders[i] = enc
	}
	for _, enc := range encoders {
		z.workers.Add(1)
		go func(enc *zstd.Encoder) {
			defer z.workers.Done()
			for j := range z.jobs {
				j.out = enc.EncodeAll(j.in, j.out[:0])
				close(j.ok)
			}
			enc.Close()
		}(enc)
	}
	go z.writeInOrder()
	return z, nil
}

func (z *zstdWriter) fail(err error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.err == nil {
		z.err = err
	}
}

func (z *zstdWriter) failed() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.err
}

func (z *zstdWriter) writeInOrder() {
	defer close(z.done)
	for j := range z.order {
		if z.tee != nil {
			z.tee.Write(j.in) // while a worker compresses j.in
		}
		<-j.ok
		if z.failed() == nil {
			if _, err := z.w.Write(j.out); err != nil {
				z.fail(err)
			}
		}
		buf := j.in[:0]
		z.pool.Put(&buf)
		out := j.out[:0]
		z.outPool.Put(&out)
	}
}

func (z *zstdWriter) Write(p []byte) (int, error) {
	if z.closed {
		return 0, errors.New("zstd: write after close")
	}
	if err := z.failed(); err != nil {
		return 0, err // the destination failed: compress no more
	}
	n := len(p)
	for len(p) > 0 {
		if z.buf == nil {
			z.buf = *z.pool.Get().(*[]byte)
		}
		k := min(len(p), ZstdChunk-len(z.buf))
		z.buf = append(z.buf, p[:k]...)
		p = p[k:]
		if len(z.buf) == ZstdChunk {
			z.flushChunk()
		}
	}
	return n, z.failed()
}

func (z *zstdWriter) flushChunk() {
	j := &zjob{in: z.buf, out: *z.outPool.Get().(*[]byte), ok: make(chan struct{})}
	z.buf = nil
	z.chunks++
	z.order <- j // blocks when too many chunks are in flight: bounded memory
	z.jobs <- j
}

// Close compresses what is left (an empty stream still gets one frame)
// and waits for every frame to be written. A second Close returns the
// first's error.
func (z *zstdWriter) Close() error {
	if z.closed {
		return z.failed()
	}
	z.closed = true
	if len(z.buf) > 0 || z.chunks == 0 {
		if z.buf == nil {
			z.buf = *z.pool.Get().(*[]byte)
		}
		z.flushChunk()
	}
	close(z.jobs)
	close(z.order)
	<-z.done
	z.workers.Wait()
	return z.failed()
}
