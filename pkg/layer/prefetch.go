package layer

import (
	"context"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"sync"
)

// Reading ahead. Most of a build context is small files, and for those the
// system calls (open, read, close) and the secret guard cost more than the
// tar writer does. Files up to prefetchMax bytes are read whole on worker
// goroutines, in tar order and at most prefetchWindow files ahead of the
// writer, and their Observer sees them there. The tar stream is still
// written by one goroutine, in order, from the same bytes: reading ahead
// changes when a file is read, never what the layer holds.
const (
	// prefetchMax is the largest file read ahead; larger ones are streamed
	// by the writer itself. The secret guard holds files up to 8 MiB
	// whole anyway: reading them whole costs no more memory.
	prefetchMax   = 1 << prefetchShift
	prefetchShift = 23 // 8 MiB
	// prefetchBytes bounds the content read but not yet written.
	prefetchBytes = 2 * prefetchMax
	// prefetchWindow bounds the files read but not yet written.
	prefetchWindow = 256
)

// A file the budget cannot hold would wait for it forever.
var _ [prefetchBytes - prefetchMax]struct{}

// fetch is one file read ahead.
type fetch struct {
	n     *node
	buf   *[]byte // the content, n.Size bytes at the start; nil on error
	err   error
	ready chan struct{} // closed when buf or err is set
}

// prefetcher reads the small regular files of nodes ahead of the writer.
type prefetcher struct {
	order  chan *fetch // the fetches, in tar order
	quit   chan struct{}
	wg     sync.WaitGroup
	budget budget
}

func prefetchable(n *node) bool {
	return n.Type == Regular && n.Size > 0 && n.Size <= prefetchMax
}

func startPrefetch(ctx context.Context, nodes []*node, observe func(*Entry) Observer) *prefetcher {
	p := &prefetcher{order: make(chan *fetch, prefetchWindow), quit: make(chan struct{})}
	p.budget.init(prefetchBytes)
	jobs := make(chan *fetch)
	workers := max(2, runtime.GOMAXPROCS(0))
	p.wg.Add(1 + workers)
	go func() {
		defer p.wg.Done()
		defer close(jobs)
		for _, n := range nodes {
			if !prefetchable(n) {
				continue
			}
			if !p.budget.acquire(n.Size) {
				return
			}
			f := &fetch{n: n, ready: make(chan struct{})}
			select {
			case p.order <- f:
			case <-p.quit:
				return
			}
			select {
			case jobs <- f:
			case <-p.quit:
				return
			}
		}
	}()
	for range workers {
		go func() {
			defer p.wg.Done()
			for f := range jobs {
				f.buf, f.err = readWhole(ctx, f.n, observe)
				close(f.ready)
			}
		}()
	}
	return p
}

// next returns n's content, read ahead; n must be the next prefetchable
// node. Give the buffer back with done.
func (p *prefetcher) next(n *node) (*[]byte, error) {
	f := <-p.order
	if f.n != n {
		panic(fmt.Sprintf("layer: read ahead %s, wanted %s", f.n.Path, n.Path))
	}
	<-f.ready
	return f.buf, f.err
}

// done gives back the buffer of n, written.
func (p *prefetcher) done(n *node, b *[]byte) {
	putBuf(b)
	p.budget.release(n.Size)
}

// stop ends the reading ahead and waits for the workers; the files they
// read but the writer did not take are dropped.
func (p *prefetcher) stop() {
	close(p.quit)
	p.budget.close()
	p.wg.Wait()
}

// budget is a count of bytes that reading ahead may hold.
type budget struct {
	mu     sync.Mutex
	cond   sync.Cond
	free   int64
	closed bool
}

func (b *budget) init(n int64) {
	b.free = n
	b.cond.L = &b.mu
}

// acquire waits until n bytes are free and takes them; it reports false
// when the budget was closed first.
func (b *budget) acquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.free < n && !b.closed {
		b.cond.Wait()
	}
	if b.closed {
		return false
	}
	b.free -= n
	return true
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	b.cond.Broadcast()
}

func (b *budget) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cond.Broadcast()
}

// readWhole reads n's content into a pooled buffer and shows it to the
// observer.
func readWhole(ctx context.Context, n *node, observe func(*Entry) Observer) (*[]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if n.Open == nil {
		return nil, fmt.Errorf("%s: no content", describe(&n.Entry))
	}
	r, err := n.Open()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", describe(&n.Entry), err)
	}
	defer r.Close()
	bp := getBuf(int(n.Size))
	m, err := io.ReadFull(r, (*bp)[:n.Size])
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	} else if err != nil {
		err = fmt.Errorf("reading %s: %w", describe(&n.Entry), err)
	}
	if err == nil {
		err = checkLength(r, &n.Entry, int64(m))
	}
	if err != nil {
		putBuf(bp)
		return nil, err
	}
	if observe != nil {
		switch obs := observe(&n.Entry).(type) {
		case WholeObserver:
			obs.Whole((*bp)[:n.Size])
		default:
			obs.Write((*bp)[:n.Size])
			obs.Done()
		}
	}
	return bp, nil
}

// checkLength reports a file whose length is not the size it had when the
// context was read: m bytes were read, and r should be at its end.
func checkLength(r io.Reader, e *Entry, m int64) error {
	if m != e.Size {
		return fmt.Errorf("%s changed while the layer was written (size %d, now %d); do not edit the context during a build", describe(e), e.Size, m)
	}
	var one [1]byte
	if k, _ := r.Read(one[:]); k > 0 {
		return fmt.Errorf("%s grew while the layer was written; do not edit the context during a build", describe(e))
	}
	return nil
}

// Content buffers come in power-of-two classes from minBuf to prefetchMax.
const minBufShift = 12 // 4 KiB

var bufPools [prefetchShift - minBufShift + 1]sync.Pool

func bufClass(size int) int {
	if size <= 1<<minBufShift {
		return 0
	}
	return bits.Len(uint(size-1)) - minBufShift
}

func getBuf(size int) *[]byte {
	c := bufClass(size)
	if b, ok := bufPools[c].Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 1<<(c+minBufShift))
	return &b
}

func putBuf(b *[]byte) { bufPools[bufClass(cap(*b))].Put(b) }
