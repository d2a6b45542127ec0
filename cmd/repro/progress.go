package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress draws one status line on a terminal for long work; it draws
// nothing when stderr is not a terminal or with -q.
type progress struct {
	mu   sync.Mutex
	w    io.Writer
	last time.Time
	on   bool
}

func newProgress(g *globals) *progress {
	f, ok := g.stderr.(*os.File)
	return &progress{w: g.stderr, on: ok && term.IsTerminal(int(f.Fd())) && !g.quiet && !g.json}
}

// layer reports bytes written for a layer, at most ten times a second.
func (p *progress) layer(name, platform string, written int64) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.last) > 100*time.Millisecond {
		p.last = now
		fmt.Fprintf(p.w, "\r\033[K  layer %s (%s): %s written", name, platform, humanBytes(written))
	}
}

// push reports a registry push's bytes, at most ten times a second.
func (p *progress) push(ref string, complete, total int64) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.last) > 100*time.Millisecond || complete == total {
		p.last = now
		fmt.Fprintf(p.w, "\r\033[K  pushing %s: %s of %s", ref, humanBytes(complete), humanBytes(total))
	}
}

// done clears the status line.
func (p *progress) done() {
	if p.on {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
