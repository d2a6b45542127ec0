package secrets

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/reprobuild/repro/internal/glob"
)

// Allow is one secrets.allow entry of the spec.
type Allow struct {
	// Path is an absolute image path or a ** glob.
	Path string
	// SHA256, when set, narrows the entry to that exact file.
	SHA256 string
	// Rule, when set, narrows the entry to that rule.
	Rule   string
	Reason string
	// Field names the entry in the spec (secrets.allow[0]) for reports.
	Field string
}

// Finding is one secret found.
type Finding struct {
	Layer   string `json:"layer"`
	Path    string `json:"path"` // image path, or config.env.NAME and the like
	Rule    string `json:"rule"`
	Excerpt string `json:"excerpt"` // redacted
	// AllowedBy is the allow entry that let it pass; empty for a blocking finding.
	AllowedBy string `json:"allowedBy,omitempty"`
	Reason    string `json:"reason,omitempty"`

	sha string // the file's content SHA-256, for the allow list
}

// Raw is a finding before the allow list judged it: what the layer cache
// keeps with a layer, to replay when the layer is not written again.
type Raw struct {
	Path    string `json:"path"`
	SHA256  string `json:"sha256"`
	Rule    string `json:"rule"`
	Excerpt string `json:"excerpt"` // redacted
}

// Raws are the findings recorded so far in layer, before the allow list.
func (g *Guard) Raws(layer string) []Raw {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Raw
	for _, f := range g.found {
		if f.Layer == layer {
			out = append(out, Raw{Path: f.Path, SHA256: f.sha, Rule: f.Rule, Excerpt: f.Excerpt})
		}
	}
	return out
}

// Replay records a cached layer's findings, as if its files had been
// scanned again, judged by this guard's allow list.
func (g *Guard) Replay(layer string, raws []Raw) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range raws {
		f := Finding{Layer: layer, Path: r.Path, Rule: r.Rule, Excerpt: r.Excerpt, sha: r.SHA256}
		for _, a := range g.allow {
			if a.covers(r.Path, r.SHA256, r.Rule) {
				f.AllowedBy, f.Reason = a.Field, a.Reason
				break
			}
		}
		g.found = append(g.found, f)
	}
}

func (f Finding) String() string {
	where := f.Path
	if f.Layer != "" {
		where = fmt.Sprintf("layer %s: %s", f.Layer, f.Path)
	}
	return fmt.Sprintf("%s: rule %s: %s", where, f.Rule, f.Excerpt)
}

// Guard scans what a build adds. It is safe for concurrent use.
type Guard struct {
	allow []Allow
	mu    sync.Mutex
	found []Finding
}

// NewGuard returns a guard with the spec's allow entries.
func NewGuard(allow []Allow) *Guard { return &Guard{allow: allow} }

// Findings are every finding so far, blocking and allowed, sorted.
func (g *Guard) Findings() []Finding {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := append([]Finding(nil), g.found...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Layer != out[j].Layer {
			return out[i].Layer < out[j].Layer
		}
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Rule < out[j].Rule
	})
	return out
}

// Blocking are the findings no allow entry covers.
func (g *Guard) Blocking() []Finding {
	var out []Finding
	for _, f := range g.Findings() {
		if f.AllowedBy == "" {
			out = append(out, f)
		}
	}
	return out
}

func (g *Guard) record(layer, p, sha string, hits []hit) {
	if len(hits) == 0 {
		return
	}
	seen := map[string]bool{}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, h := range hits {
		key := h.rule + "\x00" + h.text
		if seen[key] {
			continue
		}
		seen[key] = true
		f := Finding{Layer: layer, Path: p, Rule: h.rule, Excerpt: redact(h.text), sha: sha}
		for _, a := range g.allow {
			if a.covers(p, sha, h.rule) {
				f.AllowedBy, f.Reason = a.Field, a.Reason
				break
			}
		}
		g.found = append(g.found, f)
	}
}

func (a Allow) covers(p, sha, rule string) bool {
	if a.Rule != "" && a.Rule != rule {
		return false
	}
	if a.SHA256 != "" && a.SHA256 != sha {
		return false
	}
	return a.Path == p || glob.Match(a.Path, p, false)
}

// redact keeps the start of a secret, enough to recognise it, and hides
// the rest.
func redact(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if strings.HasPrefix(s, "-----BEGIN") {
		if i := strings.Index(s, "----- "); i > 0 {
			return s[:i+5] + " " + keep(s[i+6:], 4) + "…(redacted)"
		}
	}
	return keep(s, 6) + "…(redacted)"
}

func keep(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		r = r[:n]
	}
	return string(r)
}

// maxWhole is the size up to which a file is scanned whole; larger files
// are scanned in windows that overlap by more than any secret is long.
const (
	maxWhole = 8 << 20
	window   = 4 << 20
	overlap  = 64 << 10
)

// scanBufs are FileScanners' buffers, reused: most files are small, and
// growing a new buffer for each cost more than scanning it. Buffers that
// grew past maxPooled are left to the collector.
var scanBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

const maxPooled = 1 << 20

// FileScanner scans one file's content as it is written to it.
type FileScanner struct {
	g     *Guard
	layer string
	path  string
	buf   []byte
	off   int
	hits  []hit
	sum   hash.Hash // only when an allow entry names a sha256
}

// File returns a scanner for the file at p in layer. Write its content,
// then call Done.
func (g *Guard) File(layer, p string) *FileScanner {
	s := &FileScanner{g: g, layer: layer, path: p, buf: (*scanBufs.Get().(*[]byte))[:0]}
	for _, a := range g.allow {
		if a.SHA256 != "" {
			s.sum = sha256.New()
			break
		}
	}
	return s
}

func (s *FileScanner) Write(b []byte) (int, error) {
	if s.sum != nil {
		s.sum.Write(b)
	}
	s.buf = append(s.buf, b...)
	if len(s.buf) >= maxWhole+overlap {
		s.scanWindow(false)
	}
	return len(b), nil
}

// scanWindow scans what is buffered and, unless final, keeps only the tail.
func (s *FileScanner) scanWindow(final bool) {
	if final || mayHold(s.buf) {
		for _, h := range scanContent(s.path, s.buf) {
			h.offset += s.off
			s.hits = append(s.hits, h)
		}
	}
	if !final && len(s.buf) > overlap {
		cut := len(s.buf) - overlap
		s.off += cut
		s.buf = append(s.buf[:0], s.buf[cut:]...)
	}
}

// Whole scans content, the file's whole content, and finishes the file,
// as Write(content) and Done would, without copying it. Use it instead of
// Write and Done, never after Write.
func (s *FileScanner) Whole(content []byte) {
	if len(content) > maxWhole+overlap {
		s.Write(content)
		s.Done()
		return
	}
	if s.sum != nil {
		s.sum.Write(content)
	}
	pooled := s.buf
	s.buf = content
	s.scanWindow(true)
	s.buf = pooled
	s.Done()
}

// Done finishes the file and records what it held.
func (s *FileScanner) Done() {
	if len(s.buf) > 0 || s.off == 0 {
		s.scanWindow(true)
	}
	if cap(s.buf) <= maxPooled {
		b := s.buf[:0]
		scanBufs.Put(&b)
	}
	s.buf = nil
	sum := ""
	if s.sum != nil {
		sum = hex.EncodeToString(s.sum.Sum(nil))
	}
	s.g.record(s.layer, s.path, sum, s.hits)
}

// Config scans config values: env (name and value), and the texts of
// labels, cmd, entrypoint and annotations, each named by its field.
func (g *Guard) Config(env map[string]string, texts map[string]string) {
	for name, v := range env {
		field := "config.env." + name
		g.record("", field, "", append(envSecret(name, v), scanContent(field, []byte(v))...))
	}
	for field, v := range texts {
		g.record("", field, "", scanContent(field, []byte(v)))
	}
}

// Removal is a path an earlier layer added and a later one removes.
func Removal(removed, added string) string {
	return fmt.Sprintf("%s is removed by a later layer, but it was added by an earlier one: its bytes stay in the image; leave it out of the earlier layer instead", path.Clean(added))
}
