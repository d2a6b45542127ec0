package compress

import (
	"errors"
	"sync"
)

// chunkPipe hands a stream, in chunks of pipeChunk bytes, to a goroutine
// that consumes it (gzip: tees it and feeds pgzip), so that the goroutine
// writing the stream does neither. pipeBuffers chunks circulate: memory stays bounded, and a
// slow consumer holds the writer back.
type chunkPipe struct {
	cur  []byte
	full chan []byte
	free chan []byte
	done chan struct{}

	finish func() error

	mu     sync.Mutex
	err    error // the consumer's first error
	closed bool
}

const (
	pipeChunk   = 1 << 20
	pipeBuffers = 3
)

// newChunkPipe starts the consumer. consume is called with each chunk, in
// order, on one goroutine; after it fails, chunks are dropped and Write
// and Close return its error. Close calls finish after the last chunk.
func newChunkPipe(consume func([]byte) error, finish func() error) *chunkPipe {
	p := &chunkPipe{
		finish: finish,
		full:   make(chan []byte, pipeBuffers),
		free:   make(chan []byte, pipeBuffers),
		done:   make(chan struct{}),
	}
	for range pipeBuffers - 1 {
		p.free <- make([]byte, 0, pipeChunk)
	}
	p.cur = make([]byte, 0, pipeChunk)
	go func() {
		defer close(p.done)
		for b := range p.full {
			if p.failed() == nil {
				if err := consume(b); err != nil {
					p.mu.Lock()
					p.err = err
					p.mu.Unlock()
				}
			}
			p.free <- b[:0]
		}
	}()
	return p
}

func (p *chunkPipe) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *chunkPipe) Write(b []byte) (int, error) {
	if p.closed {
		return 0, errors.New("write after close")
	}
	if err := p.failed(); err != nil {
		return 0, err // the consumer failed: send no more
	}
	n := len(b)
	for len(b) > 0 {
		k := copy(p.cur[len(p.cur):cap(p.cur)], b)
		p.cur = p.cur[:len(p.cur)+k]
		b = b[k:]
		if len(p.cur) == cap(p.cur) {
			p.full <- p.cur
			p.cur = <-p.free
		}
	}
	return n, p.failed()
}

// Close sends what is left, waits for the consumer, and finishes. It may
// be called more than once.
func (p *chunkPipe) Close() error {
	if p.closed {
		return p.failed()
	}
	p.closed = true
	if len(p.cur) > 0 {
		p.full <- p.cur
		p.cur = nil
	}
	close(p.full)
	<-p.done
	if err := p.finish(); err != nil {
		p.mu.Lock()
		if p.err == nil {
			p.err = err // a second Close returns it too
		}
		p.mu.Unlock()
	}
	return p.failed()
}
