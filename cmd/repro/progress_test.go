package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/reprobuild/repro/internal/units"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/output"
)

// screen plays what pushBars writes as a terminal would: \r, \n, ESC[K
// (clear to the end of the line), ESC[nA (n lines up) and ESC[J (clear to
// the end of the screen). It fails the test on anything else, and on a
// line longer than the width (which a terminal would wrap).
type screen struct {
	t        *testing.T
	width    int
	rows     [][]rune
	row, col int
}

func (s *screen) play(out string) {
	s.t.Helper()
	for i := 0; i < len(out); {
		switch {
		case out[i] == '\r':
			s.col = 0
			i++
		case out[i] == '\n':
			s.row, s.col = s.row+1, 0
			i++
		case strings.HasPrefix(out[i:], "\033[K"):
			if s.row < len(s.rows) && s.col < len(s.rows[s.row]) {
				s.rows[s.row] = s.rows[s.row][:s.col]
			}
			i += 3
		case strings.HasPrefix(out[i:], "\033[J"):
			if s.row < len(s.rows) {
				if s.col < len(s.rows[s.row]) {
					s.rows[s.row] = s.rows[s.row][:s.col]
				}
				s.rows = s.rows[:s.row+1]
			}
			i += 3
		case strings.HasPrefix(out[i:], "\033["):
			j := strings.IndexByte(out[i:], 'A')
			n, err := strconv.Atoi(out[i+2 : i+j])
			if j < 0 || err != nil {
				s.t.Fatalf("unknown escape %q", out[i:min(i+8, len(out))])
			}
			s.row = max(0, s.row-n)
			i += j + 1
		default:
			r := []rune(out[i:])[0]
			for len(s.rows) <= s.row {
				s.rows = append(s.rows, nil)
			}
			line := s.rows[s.row]
			for len(line) <= s.col {
				line = append(line, ' ')
			}
			line[s.col] = r
			s.rows[s.row] = line
			s.col++
			if s.col >= s.width {
				s.t.Errorf("a line reaches column %d of %d: %q", s.col, s.width, string(line))
			}
			i += len(string(r))
		}
	}
}

// lines is what the screen shows, trailing blanks cut.
func (s *screen) lines() []string {
	var out []string
	for _, r := range s.rows {
		out = append(out, strings.TrimRight(string(r), " "))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

func hash(c byte) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(string(c), 64)}
}

// fakeBars are bars on a buffer with a clock the test moves.
func fakeBars(width int) (*pushBars, *bytes.Buffer, *time.Time) {
	var buf bytes.Buffer
	clock := time.Unix(1700000000, 0)
	p := newPushBars(&buf, "127.0.0.1:5000/app:1", true, width)
	p.now = func() time.Time { return clock }
	return p, &buf, &clock
}

func TestPushBarsRedrawInPlace(t *testing.T) {
	p, buf, clock := fakeBars(80)
	scr := &screen{t: t, width: 80}
	const mib = 1 << 20
	a, b, c := hash('a'), hash('b'), hash('c')
	p.event(output.BlobEvent{Digest: a, Size: 4 * mib, Status: output.BlobSending, Sent: mib})
	p.event(output.BlobEvent{Digest: b, Size: 100, Status: output.BlobExists})
	p.event(output.BlobEvent{Digest: c, Size: 200, Status: output.BlobMounted, From: "library/base"})
	scr.play(buf.String())
	buf.Reset()
	want := []string{
		"pushing 127.0.0.1:5000/app:1",
		"  aaaaaaaaaaaa  [==========                              ] 1.0 MiB / 4.0 MiB",
		"  bbbbbbbbbbbb  already in the registry",
		"  cccccccccccc  mounted from library/base",
	}
	if got := scr.lines(); !slices.Equal(got, want) {
		t.Errorf("screen:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Bytes within a tenth of a second of the last drawing draw nothing.
	p.event(output.BlobEvent{Digest: a, Size: 4 * mib, Status: output.BlobSending, Sent: 2 * mib})
	if buf.Len() != 0 {
		t.Errorf("bytes 0s after a drawing drew %q", buf.String())
	}
	*clock = clock.Add(150 * time.Millisecond)
	p.event(output.BlobEvent{Digest: a, Size: 4 * mib, Status: output.BlobSending, Sent: 3 * mib})
	scr.play(buf.String())
	buf.Reset()
	want[1] = "  aaaaaaaaaaaa  [==============================          ] 3.0 MiB / 4.0 MiB"
	if got := scr.lines(); !slices.Equal(got, want) {
		t.Errorf("screen:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Finishing draws at once, whatever the clock; end leaves it there.
	p.event(output.BlobEvent{Digest: a, Size: 4 * mib, Status: output.BlobSent, Sent: 4 * mib})
	p.end()
	p.event(output.BlobEvent{Digest: hash('d'), Size: 1, Status: output.BlobSending})
	scr.play(buf.String())
	want[1] = "  aaaaaaaaaaaa  pushed 4.0 MiB"
	if got := scr.lines(); !slices.Equal(got, want) {
		t.Errorf("screen:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if scr.row != len(want) || scr.col != 0 {
		t.Errorf("the cursor is at %d:%d, want the start of the line below the drawing", scr.row, scr.col)
	}
}

func TestPushBarsFoldFinishedBlobs(t *testing.T) {
	p, buf, _ := fakeBars(60)
	for i := range 25 {
		p.event(output.BlobEvent{Digest: hash("0123456789abcdefghijklmno"[i]), Size: 10, Status: output.BlobExists})
		if i == 3 {
			p.event(output.BlobEvent{Digest: hash('z'), Size: 1 << 30, Status: output.BlobSending, Sent: 1 << 29})
		}
	}
	scr := &screen{t: t, width: 60}
	scr.play(buf.String())
	got := scr.lines()
	if len(got) != 2+maxBlobLines {
		t.Fatalf("%d lines, want the push, the fold and %d blobs:\n%s", len(got), maxBlobLines, strings.Join(got, "\n"))
	}
	if got[1] != "  (16 more blobs done)" {
		t.Errorf("fold line %q", got[1])
	}
	// The blob still sending stays, among the newest finished ones.
	if !strings.HasPrefix(got[2], "  zzzzzzzzzzzz  [") || !strings.HasSuffix(got[2], "] 512.0 MiB / 1.0 GiB") {
		t.Errorf("the blob being sent: %q", got[2])
	}
	if got[len(got)-1] != "  oooooooooooo  already in the registry" {
		t.Errorf("last line %q", got[len(got)-1])
	}
}

func TestPushBarsNarrowTerminal(t *testing.T) {
	p, buf, _ := fakeBars(20) // taken as 40, the least drawn for
	p.event(output.BlobEvent{Digest: hash('a'), Size: 123 << 20, Status: output.BlobSending, Sent: 45 << 20})
	p.event(output.BlobEvent{Digest: hash('b'), Size: 1, Status: output.BlobMounted, From: "a/very/long/repository/name/that/goes/on"})
	p.end()
	scr := &screen{t: t, width: 40}
	scr.play(buf.String()) // fails on a line of 40 columns or more
	if got := scr.lines(); len(got) != 3 || got[1] != "  aaaaaaaaaaaa  45.0 MiB / 123.0 MiB" {
		t.Errorf("narrow screen:\n%s", strings.Join(got, "\n"))
	}
}

// TestPushBarsOnlyOnTerminal: no bars when stderr is not a terminal (a
// file, a buffer), nor with -q or --json.
func TestPushBarsOnlyOnTerminal(t *testing.T) {
	if newPushBars(io.Discard, "r", false, 80) != nil {
		t.Error("bars for a writer that is not a terminal")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, g := range []*globals{{stderr: f}, {stderr: &bytes.Buffer{}}, {stderr: os.Stderr, quiet: true}, {stderr: os.Stderr, json: true}} {
		if pushBarsFor(g, "r") != nil {
			t.Errorf("bars with stderr %T, -q %v, --json %v", g.stderr, g.quiet, g.json)
		}
	}

	// A push with stderr in a file writes nothing there.
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := imageref.Parse(strings.TrimPrefix(srv.URL, "http://") + "/app:1")
	if err != nil {
		t.Fatal(err)
	}
	g := &globals{stdout: io.Discard, stderr: f, log: slog.New(slog.DiscardHandler)}
	if err := writeOutputs(context.Background(), g, []imageref.Reference{ref}, imageref.Artifact{Image: img}, output.Options{}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := f.Stat(); fi.Size() != 0 {
		raw, _ := os.ReadFile(f.Name())
		t.Errorf("the push wrote %q to a stderr that is no terminal", raw)
	}
}

// TestPushBarsOfARealPush draws a push to go-containerregistry's
// in-memory registry, one of whose blobs is there already: every blob ends
// on the screen, pushed or already in the registry.
func TestPushBarsOfARealPush(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(64<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	repo, _ := name.NewRepository(host + "/app")
	if err := remote.WriteLayer(repo, layers[0]); err != nil {
		t.Fatal(err)
	}
	ref, err := imageref.Parse(host + "/app:1")
	if err != nil {
		t.Fatal(err)
	}
	p, buf, _ := fakeBars(100)
	if err := output.Write(context.Background(), ref, imageref.Artifact{Image: img}, output.Options{Progress: p.event}); err != nil {
		t.Fatal(err)
	}
	p.end()
	scr := &screen{t: t, width: 100}
	scr.play(buf.String())
	got := strings.Join(scr.lines(), "\n")
	short := func(d v1.Hash) string { return "  " + d.Hex[:12] + "  " }
	for i, l := range layers {
		d, _ := l.Digest()
		size, _ := l.Size()
		want := short(d) + "pushed " + units.Bytes(size)
		if i == 0 {
			want = short(d) + "already in the registry"
		}
		if !strings.Contains(got, want) {
			t.Errorf("no line %q on the screen:\n%s", want, got)
		}
	}
	cfg, _ := img.ConfigName()
	if !strings.Contains(got, short(cfg)+"pushed ") {
		t.Errorf("no line for the config %s:\n%s", cfg, got)
	}
	if n := len(scr.lines()); n != 1+len(layers)+1 {
		t.Errorf("%d lines, want the push, %d layers and the config:\n%s", n, len(layers), got)
	}
}

// TestLogClearsTheStatusLine: a log line written while a layer's status
// line is on the screen replaces it, and the status comes back below.
func TestLogClearsTheStatusLine(t *testing.T) {
	var out bytes.Buffer
	g := &globals{stderr: &out}
	p := &progress{w: &out, on: true}
	g.setStatus(p)
	log := newLogger(g)
	p.layer("big", "linux/amd64", 12<<20)
	log.Info("layer written", "layer", "big")
	p.last = time.Time{}
	p.layer("small", "linux/amd64", 136)
	p.done()
	s := &screen{t: t, width: 200}
	s.play(out.String())
	want := []string{`level=INFO msg="layer written" layer=big`}
	if got := s.lines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("screen:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(out.String(), "writtenlevel=") {
		t.Errorf("a log line ran on from the status line: %q", out.String())
	}
}

// TestLogClearsThePushBars: a log line during a push (a retry, say) takes
// the bars off the screen; they come back below it, whole.
func TestLogClearsThePushBars(t *testing.T) {
	bars, out, _ := fakeBars(80)
	g := &globals{stderr: out}
	g.setStatus(bars)
	log := newLogger(g)
	bars.event(output.BlobEvent{Digest: hash('a'), Size: 100, Status: output.BlobSending, Sent: 10})
	log.Warn("retrying", "status", 503)
	bars.event(output.BlobEvent{Digest: hash('a'), Size: 100, Status: output.BlobSent, Sent: 100})
	bars.end()
	s := &screen{t: t, width: 80}
	s.play(out.String())
	got := s.lines()
	if len(got) != 3 || got[0] != "level=WARN msg=retrying status=503" || !strings.HasPrefix(got[1], "pushing ") || !strings.Contains(got[2], "pushed 100 B") {
		t.Errorf("screen:\n%s", strings.Join(got, "\n"))
	}
}
