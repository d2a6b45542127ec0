package build

import (
	"context"
	"runtime"
	"sync"

	"github.com/reprobuild/repro/pkg/layer"
	"github.com/reprobuild/repro/pkg/layercache"
)

// Parallel layers. The builder prepares every layer of every platform in
// the spec's order on its own goroutine (entries, removal warnings,
// epochs, the cache key and lookup: everything whose order shows), and
// hands only the writing of a layer's bytes (tar, compression, the
// store's copy) to a goroutine, at most Options.Jobs at once. What a
// written layer reports (LayerDone, its log line) is reported when the
// builder awaits it, in the spec's order, so progress and --json read as
// a serial build's. Bytes cannot depend on it: a layer's bytes are a
// function of its entries and options alone (package layer), and the
// image is assembled from the layers in order.

// defaultJobs bounds the layers written at once when Options.Jobs is 0:
// each compresses on every core already (pgzip), so more than a few only
// add memory (a write holds its read-ahead budget, 16 MiB, and its
// compressor's blocks).
func defaultJobs() int { return min(runtime.GOMAXPROCS(0), 3) }

// pending is a layer being written, or written.
type pending struct {
	done chan struct{} // closed when l or err is set
	l    *layer.File
	err  error
	// wrap words an error of the write (layerError), on await.
	wrap func(error) error
	// after is what the layer reports once it is written, run by the
	// first await, in order, on the builder's goroutine.
	after   []func(*layer.File)
	awaited bool
}

// ready is a layer known at once (a cache hit).
func ready(l *layer.File) *pending {
	p := &pending{done: make(chan struct{}), l: l}
	close(p.done)
	return p
}

// then adds f to what the layer reports when awaited.
func (p *pending) then(f func(*layer.File)) *pending {
	p.after = append(p.after, f)
	return p
}

// spawn runs work, the writing of a layer, on a goroutine of its own once
// one of the builder's job slots is free (at once with one job).
func (b *builder) spawn(ctx context.Context, work func(context.Context) (*layer.File, error)) *pending {
	p := &pending{done: make(chan struct{})}
	if cap(b.jobs) <= 1 {
		p.l, p.err = work(ctx)
		close(p.done)
		return p
	}
	select {
	case b.jobs <- struct{}{}:
	case <-ctx.Done():
		p.err = ctx.Err()
		close(p.done)
		return p
	}
	b.writers.Add(1)
	go func() {
		defer b.writers.Done()
		defer func() { <-b.jobs }()
		p.l, p.err = work(ctx)
		close(p.done)
	}()
	return p
}

// await waits for p's layer; the first await reports it.
func (b *builder) await(p *pending) (*layer.File, error) {
	<-p.done
	if p.err != nil {
		if p.wrap != nil {
			return nil, p.wrap(p.err)
		}
		return nil, p.err
	}
	if !p.awaited {
		p.awaited = true
		for _, f := range p.after {
			f(p.l)
		}
	}
	return p.l, nil
}

// writing records that pd writes the layer of key k, for waitSame.
//
// b.inflight has no lock: writing and waitSame run only on the builder's
// goroutine, the one that runs Build and prepares every layer in order
// (Build ─► prepare ─► layer ─► write/packageLayer ─► writeCached or
// packageLayer's own lookup, and the spawnStored they share), called
// before or after spawn and never inside the work it is given. The only
// goroutines of a build are spawn's, and their work (layer.Write, the
// store's Put, the shared cache's Put) does not touch b.inflight; what
// they share with the builder's goroutine is pd.done, closed once pd's l
// and err are set. A change that prepares layers on several goroutines
// must guard b.inflight (and b.scanLocks, b.shared, b.epochs) with a
// mutex.
func (b *builder) writing(k layercache.Key, pd *pending) *pending {
	b.inflight[k] = pd
	return pd
}

// waitSame waits until a layer of key k that this build is writing (the
// same layer for another platform) is written, without reporting it: the
// lookup that follows then finds it in the store, as it would in a build
// that writes one layer at a time.
func (b *builder) waitSame(k layercache.Key) {
	if pd, ok := b.inflight[k]; ok {
		<-pd.done
		delete(b.inflight, k)
	}
}

// scanLock is held while a layer's secret findings are gathered (a write
// and the Raws after it, or a hit's Replay): the guard keeps findings by
// layer name, which the platforms' builds of one layer share. Like
// writing, it runs on the builder's goroutine only (b.scanLocks has no
// lock of its own); spawn's work is handed the mutex, not the map.
func (b *builder) scanLock(layerName string) *sync.Mutex {
	m, ok := b.scanLocks[layerName]
	if !ok {
		m = &sync.Mutex{}
		b.scanLocks[layerName] = m
	}
	return m
}
