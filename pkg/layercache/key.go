package layercache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/layer"
)

// Key names a layer by everything that makes its bytes (see the package
// documentation).
type Key [sha256.Size]byte

func (k Key) String() string { return hex.EncodeToString(k[:]) }

// ParseKey reads a key's hex form.
func ParseKey(s string) (Key, error) {
	var k Key
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(k) {
		return k, fmt.Errorf("%q is not a layer cache key (64 hex digits)", s)
	}
	copy(k[:], b)
	return k, nil
}

// Sum is a SHA-256.
type Sum = [sha256.Size]byte

// Contents are the content hashes that a key was made of, by the path the
// layer writer shows each file's content under.
type Contents struct {
	want map[string]Sum
	mu   sync.Mutex
	got  map[string]Sum
}

// header writes the lines every key starts with.
func header(h hash.Hash, opts layer.Options, kind, builder string) error {
	if !opts.Format.Known() {
		return fmt.Errorf("unknown output format %d", int(opts.Format))
	}
	if _, err := compress.Parse(string(opts.Compression)); err != nil {
		return err
	}
	fmt.Fprintf(h, "repro-layer-cache/1\nbuilder %s\nformat %s\ncompression %s\nsettings %s\ntar %s\nepoch %d\nkind %s\n",
		strconv.Quote(builder), opts.Format, opts.Compression, strconv.Quote(opts.Compression.FormatSettings(opts.Format)),
		strconv.Quote(layer.TarRule(opts.Format)), opts.Epoch, kind)
	return nil
}

// EntriesKey is the key of the layer that layer.Write makes of entries
// with opts (its Progress and Observe aside), written by builder (the
// build ID of the program: another program may write other bytes, or
// find other secrets). Each regular file's content
// is hashed through sc when it has a HostPath (sc may be nil), else read
// through its Open. The Contents it returns check, as the layer is
// written, that the files still hash as the key says.
func EntriesKey(entries []layer.Entry, opts layer.Options, sc *StatCache, builder string) (Key, *Contents, error) {
	h := sha256.New()
	if err := header(h, opts, "entries", builder); err != nil {
		return Key{}, nil, err
	}
	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return entries[order[a]].Path < entries[order[b]].Path })
	sums := make([]Sum, len(entries))
	if err := hashAll(entries, sums, sc); err != nil {
		return Key{}, nil, err
	}
	byPath := make(map[string]int, len(entries))
	var line []byte
	for _, i := range order {
		e := &entries[i]
		byPath[e.Path] = i
		mtime := opts.Epoch
		if opts.Format != compress.Format1 && e.MTime != nil {
			mtime = max(0, min(*e.MTime, opts.Epoch))
		}
		sum, size := "-", int64(0)
		if e.Type == layer.Regular {
			sum, size = hex.EncodeToString(sums[i][:]), e.Size
		}
		var xs []string
		for k, v := range e.Xattrs {
			xs = append(xs, strconv.Quote(k)+"="+strconv.Quote(v))
		}
		sort.Strings(xs)
		// "%s %s %o %d %d %s %d %d %s %s\n", without fmt's cost.
		line = append(line[:0], e.Type.String()...)
		line = append(line, ' ')
		line = strconv.AppendQuote(line, e.Path)
		line = append(line, ' ')
		line = strconv.AppendUint(line, uint64(e.Mode), 8)
		line = append(line, ' ')
		line = strconv.AppendInt(line, int64(e.UID), 10)
		line = append(line, ' ')
		line = strconv.AppendInt(line, int64(e.GID), 10)
		line = append(line, ' ')
		line = strconv.AppendQuote(line, e.Target)
		line = append(line, ' ')
		line = strconv.AppendInt(line, mtime, 10)
		line = append(line, ' ')
		line = strconv.AppendInt(line, size, 10)
		line = append(line, ' ')
		line = append(line, sum...)
		line = append(line, ' ')
		line = append(line, strings.Join(xs, ",")...)
		line = append(line, '\n')
		h.Write(line)
	}
	c := &Contents{want: map[string]Sum{}, got: map[string]Sum{}}
	// The writer shows a hard-link group's content under the group's first
	// path in sort order (pkg/layer's tar rule): expect it there.
	groups := map[int][]string{} // regular entry -> the paths linked to it
	for _, i := range order {
		e := &entries[i]
		if e.Type != layer.Hardlink {
			continue
		}
		t, ok := byPath[e.Target]
		seen := map[string]bool{e.Path: true}
		for ok && entries[t].Type == layer.Hardlink && !seen[entries[t].Path] {
			seen[entries[t].Path] = true
			t, ok = byPath[entries[t].Target]
		}
		if ok && entries[t].Type == layer.Regular {
			groups[t] = append(groups[t], e.Path)
		}
	}
	for _, i := range order {
		e := &entries[i]
		if e.Type != layer.Regular {
			continue
		}
		p := e.Path
		for _, l := range groups[i] {
			p = min(p, l)
		}
		c.want[p] = sums[i]
	}
	var k Key
	h.Sum(k[:0])
	return k, c, nil
}

// hashAll hashes the regular entries' contents, a few at a time; those
// the stat cache knows by the stat they were found with, at once.
func hashAll(entries []layer.Entry, sums []Sum, sc *StatCache) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, 4)
	for i := range entries {
		e := &entries[i]
		if e.Type != layer.Regular {
			continue
		}
		if st, ok := hostStat(e); ok && sc != nil && e.HostPath != "" && uint64(e.Size) == uint64(st.Size) {
			if s, ok := sc.Known(e.HostPath, st); ok {
				sums[i] = s
				continue
			}
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s, err := contentSum(e, sc)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				return
			}
			sums[i] = s
		}()
	}
	wg.Wait()
	return first
}

func contentSum(e *layer.Entry, sc *StatCache) (Sum, error) {
	if e.HostPath != "" && sc != nil {
		var s Sum
		var size int64
		var err error
		if st, ok := hostStat(e); ok {
			s, size, err = sc.SumStat(e.HostPath, st)
		} else {
			s, size, err = sc.Sum(e.HostPath)
		}
		if err != nil {
			return Sum{}, err
		}
		if size != e.Size {
			return Sum{}, fmt.Errorf("%s changed size during the build; do not edit the context during a build", e.HostPath)
		}
		return s, nil
	}
	if e.Open == nil {
		return Sum{}, fmt.Errorf("%s: no content", e.Path)
	}
	r, err := e.Open()
	if err != nil {
		return Sum{}, err
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return Sum{}, err
	}
	if n != e.Size {
		return Sum{}, fmt.Errorf("%s has %d bytes, not %d", e.Path, n, e.Size)
	}
	var s Sum
	h.Sum(s[:0])
	return s, nil
}

// hostStat is the lstat the entry was made with, if it kept one.
func hostStat(e *layer.Entry) (*syscall.Stat_t, bool) {
	if e.HostInfo == nil {
		return nil, false
	}
	st, ok := e.HostInfo.Sys().(*syscall.Stat_t)
	return st, ok
}

// PackagesKey is the key of a package layer: the pinned .deb digests
// ("sha256:<hex>"), in the order the layer unpacks them, and params, the
// builder's canonical description of what else it writes into the layer.
func PackagesKey(opts layer.Options, debs []string, params, builder string) (Key, error) {
	h := sha256.New()
	if err := header(h, opts, "packages", builder); err != nil {
		return Key{}, err
	}
	for _, d := range debs {
		fmt.Fprintf(h, "deb %s\n", strconv.Quote(d))
	}
	fmt.Fprintf(h, "params %s\n", strconv.Quote(params))
	var k Key
	h.Sum(k[:0])
	return k, nil
}

// Observe wraps next (which may be nil) so that every file's content is
// hashed as the layer writer reads it; Check then says whether they all
// hashed as the key said.
func (c *Contents) Observe(next func(*layer.Entry) layer.Observer) func(*layer.Entry) layer.Observer {
	return func(e *layer.Entry) layer.Observer {
		o := &observer{c: c, path: e.Path, h: sha256.New()}
		if next != nil {
			o.next = next(e)
		}
		return o
	}
}

// Check reports whether every file the key counted was written with the
// content it was hashed with.
func (c *Contents) Check() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p, w := range c.want {
		g, ok := c.got[p]
		if !ok {
			return fmt.Errorf("%s was not written", p)
		}
		if g != w {
			return fmt.Errorf("%s changed during the build (its content hashes differently now); do not edit the context during a build", p)
		}
	}
	return nil
}

type observer struct {
	c    *Contents
	path string
	h    hash.Hash
	next layer.Observer
}

func (o *observer) Write(p []byte) (int, error) {
	o.h.Write(p)
	if o.next != nil {
		return o.next.Write(p)
	}
	return len(p), nil
}

func (o *observer) Done() {
	var s Sum
	o.h.Sum(s[:0])
	o.c.mu.Lock()
	o.c.got[o.path] = s
	o.c.mu.Unlock()
	if o.next != nil {
		o.next.Done()
	}
}

// Whole hashes a whole content at once, handing it on as the writer
// would have.
func (o *observer) Whole(content []byte) {
	o.h.Write(content)
	var s Sum
	o.h.Sum(s[:0])
	o.c.mu.Lock()
	o.c.got[o.path] = s
	o.c.mu.Unlock()
	switch n := o.next.(type) {
	case nil:
	case layer.WholeObserver:
		n.Whole(content)
	default:
		n.Write(content)
		n.Done()
	}
}
