package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/term"

	"github.com/reprobuild/repro/internal/units"
	"github.com/reprobuild/repro/pkg/output"
)

// progress draws one status line on a terminal while layers are written;
// it draws nothing when stderr is not a terminal or with -q or --json. A
// log line clears the status line first (see logWriter), and the next
// report draws it again below the log.
type progress struct {
	mu     sync.Mutex
	w      io.Writer
	last   time.Time
	on     bool
	active bool // a status line is on the screen
}

func newProgress(g *globals) *progress {
	f, ok := g.stderr.(*os.File)
	p := &progress{w: g.stderr, on: ok && term.IsTerminal(int(f.Fd())) && !g.quiet && !g.json}
	if p.on {
		g.setStatus(p)
	}
	return p
}

// clear takes the status line off the screen.
func (p *progress) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
}

func (p *progress) clearLocked() {
	if p.active {
		fmt.Fprint(p.w, "\r\033[K")
		p.active = false
	}
}

// writeAbove clears the status line and writes b, with no draw between.
func (p *progress) writeAbove(w io.Writer, b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	return w.Write(b)
}

// logWriter is the log's way to stderr: it clears a status line first, so
// that a log line never runs on from one.
type logWriter struct{ g *globals }

func (w logWriter) Write(b []byte) (int, error) {
	w.g.statusMu.Lock()
	c := w.g.status
	w.g.statusMu.Unlock()
	if c != nil {
		return c.writeAbove(w.g.stderr, b)
	}
	return w.g.stderr.Write(b)
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
		fmt.Fprintf(p.w, "\r\033[K  layer %s (%s): %s written", name, platform, units.Bytes(written))
		p.active = true
	}
}

// status shows a layer's fate when it was not written: cached.
func (p *progress) status(name, platform, status string) {
	if !p.on || status == "built" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r\033[K  layer %s (%s): %s", name, platform, status)
	p.active = true
}

// done clears the status line.
func (p *progress) done() {
	if p.on {
		p.clear()
	}
}

// pushBars draws a registry push on a terminal: a line naming the push,
// then one line per blob it touches (the first 12 hex digits of its
// digest, then a bar with bytes sent of its size, or what became of it:
// pushed, already in the registry, or mounted from another repository),
// redrawn in place. Finished blobs beyond maxBlobLines fold into one
// line, so the drawing stays a few lines high. It draws nothing before the
// first blob, so a push with nothing to send (the registry has the
// manifest) draws nothing at all.
type pushBars struct {
	mu     sync.Mutex
	w      io.Writer
	ref    string
	width  int
	now    func() time.Time
	last   time.Time
	blobs  []*blobLine // in the order first heard of
	byHash map[v1.Hash]*blobLine
	drawn  int // lines of the last drawing
	ended  bool
}

// blobLine is the latest news of one blob.
type blobLine struct {
	output.BlobEvent
}

func (l *blobLine) finished() bool { return l.Status != output.BlobSending }

// maxBlobLines is how many blob lines a drawing shows at most.
const maxBlobLines = 10

// newPushBars returns the bars of the push to ref, drawn on w, a terminal
// width columns wide; nil when w is not a terminal (or with -q, --json).
func newPushBars(w io.Writer, ref string, terminal bool, width int) *pushBars {
	if !terminal {
		return nil
	}
	if width < 40 {
		width = 40
	}
	return &pushBars{w: w, ref: ref, width: width, now: time.Now, byHash: map[v1.Hash]*blobLine{}}
}

// pushBarsFor returns the bars of the push to ref on stderr, or nil when
// stderr is not a terminal or with -q or --json.
func pushBarsFor(g *globals, ref string) *pushBars {
	f, ok := g.stderr.(*os.File)
	if !ok || g.quiet || g.json || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		width = 80
	}
	return newPushBars(f, ref, true, width)
}

// event takes a blob's news: a change of state is drawn at once, bytes at
// most ten times a second.
func (p *pushBars) event(e output.BlobEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return
	}
	l := p.byHash[e.Digest]
	changed := l == nil || l.Status != e.Status
	if l == nil {
		l = &blobLine{}
		p.byHash[e.Digest] = l
		p.blobs = append(p.blobs, l)
	}
	l.BlobEvent = e
	if now := p.now(); changed || now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.draw()
	}
}

// writeAbove takes the drawing off the screen and writes b (a log line)
// in its place, with no draw between; the next event draws the bars
// again, below.
func (p *pushBars) writeAbove(w io.Writer, b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn > 0 && !p.ended {
		fmt.Fprintf(p.w, "\033[%dA\r\033[J", p.drawn)
		p.drawn = 0
	}
	return w.Write(b)
}

// end draws the last state and leaves it on the screen.
func (p *pushBars) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.ended && len(p.blobs) > 0 {
		p.draw()
	}
	p.ended = true
}

// draw moves up over the last drawing and writes the new one, each line
// cleared first and cut to the terminal's width (a wrapped line would
// throw the count of lines to move up off).
func (p *pushBars) draw() {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\033[%dA", p.drawn)
	}
	lines := p.lines()
	for _, line := range lines {
		if len(line) > p.width-1 {
			line = line[:p.width-1]
		}
		b.WriteString("\r\033[K")
		b.WriteString(line)
		b.WriteString("\n")
	}
	b.WriteString("\033[J") // a shorter drawing leaves nothing below
	p.drawn = len(lines)
	io.WriteString(p.w, b.String())
}

// lines is the drawing: the push, then the blobs, the oldest finished
// ones folded when there are more than maxBlobLines.
func (p *pushBars) lines() []string {
	fold := len(p.blobs) - maxBlobLines
	var shown []*blobLine
	folded := 0
	for _, l := range p.blobs {
		if folded < fold && l.finished() {
			folded++
			continue
		}
		shown = append(shown, l)
	}
	out := []string{"pushing " + p.ref}
	if folded > 0 {
		out = append(out, fmt.Sprintf("  (%d more blobs done)", folded))
	}
	for _, l := range shown {
		out = append(out, "  "+l.Digest.Hex[:min(12, len(l.Digest.Hex))]+"  "+p.state(l))
	}
	return out
}

// state is what a blob line says after the digest.
func (p *pushBars) state(l *blobLine) string {
	switch l.Status {
	case output.BlobExists:
		return "already in the registry"
	case output.BlobMounted:
		return "mounted from " + l.From
	case output.BlobSent:
		return "pushed " + units.Bytes(l.Size)
	}
	counts := units.Bytes(l.Sent) + " / " + units.Bytes(l.Size)
	// "  " + 12 + "  " + "[" bar "]" + " " + counts, within width-1.
	n := min(p.width-1-2-12-2-2-1-len(counts), 40)
	if n < 5 {
		return counts
	}
	done := 0
	if l.Size > 0 {
		done = int(int64(n) * min(l.Sent, l.Size) / l.Size)
	}
	return "[" + strings.Repeat("=", done) + strings.Repeat(" ", n-done) + "] " + counts
}
