package layercache

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/reprobuild/repro/internal/atomicfs"
	"github.com/reprobuild/repro/internal/rawfile"
)

// RacyWindow is how recent a file's mtime or ctime may be, before the
// session that hashes it starts, for its hash to be kept: files changed
// more recently are hashed again by the next build. It covers the kernel's
// coarse file clock and file systems whose timestamps are whole seconds
// (or FAT's two).
const RacyWindow = 3 * time.Second

// statKey is what a record is valid for.
type statKey struct {
	dev, ino, size   uint64
	mtimeNs, ctimeNs int64
	mode             uint32
}

type statRec struct {
	st  statKey
	sum Sum
}

// StatCache maps context files, by their stat, to their content hashes.
type StatCache struct {
	file   string
	start  time.Time
	loaded chan struct{}      // closed once old and cur are made
	old    map[string]statRec // as loaded
	mu     sync.Mutex
	cur    map[string]statRec // this session's: hits and fresh hashes
	dirty  bool               // cur has a record old has not (mu)
	read   atomic.Int64       // files whose bodies were read
}

// statCacheMagic starts a stat cache file; another first line makes the
// file unknown, and it is ignored.
const statCacheMagic = "repro-stat-cache/1"

// OpenStatCache loads the stat cache in file (missing or unreadable: empty)
// for a session that starts at start, the caller's clock's now (read
// before any file is hashed). The file is read and parsed on a goroutine
// of its own, meanwhile the caller walks its context; the first lookup
// waits for it.
func OpenStatCache(file string, start time.Time) *StatCache {
	c := &StatCache{file: file, start: start, loaded: make(chan struct{})}
	go func() {
		defer close(c.loaded)
		c.old = loadStatCache(file)
		c.cur = make(map[string]statRec, len(c.old))
	}()
	return c
}

// loadStatCache reads the records of the stat cache file, none when it is
// missing or not all of it parses.
func loadStatCache(file string) map[string]statRec {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	magic, rest, _ := bytes.Cut(b, []byte("\n"))
	if string(magic) != statCacheMagic {
		return nil
	}
	n := bytes.Count(rest, []byte("\n"))
	old := make(map[string]statRec, n)
	for len(rest) > 0 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\n"))
		if len(l) == 0 {
			continue
		}
		p, r, ok := parseRec(string(l))
		if !ok {
			return nil
		}
		old[p] = r
	}
	return old
}

func parseRec(l string) (string, statRec, bool) {
	f := strings.SplitN(l, " ", 8)
	if len(f) != 8 {
		return "", statRec{}, false
	}
	var r statRec
	sum, err := hex.DecodeString(f[0])
	if err != nil || len(sum) != len(r.sum) {
		return "", statRec{}, false
	}
	copy(r.sum[:], sum)
	var nums [6]int64
	for i := range nums {
		if nums[i], err = strconv.ParseInt(f[1+i], 10, 64); err != nil {
			return "", statRec{}, false
		}
	}
	r.st = statKey{dev: uint64(nums[0]), ino: uint64(nums[1]), size: uint64(nums[2]), mtimeNs: nums[3], ctimeNs: nums[4], mode: uint32(nums[5])}
	p := f[7]
	if len(p) >= 2 && p[0] == '"' && p[len(p)-1] == '"' && !strings.ContainsAny(p[1:len(p)-1], `\"`) {
		p = p[1 : len(p)-1] // what strconv.Quote left as it was
	} else if p, err = strconv.Unquote(p); err != nil {
		return "", statRec{}, false
	}
	return p, r, true
}

func keyOf(st *syscall.Stat_t) statKey {
	return statKey{
		dev: uint64(st.Dev), ino: st.Ino, size: uint64(st.Size),
		mtimeNs: st.Mtim.Nano(), ctimeNs: st.Ctim.Nano(), mode: st.Mode,
	}
}

// Read is how many file bodies this session has read.
func (c *StatCache) Read() int64 { return c.read.Load() }

// Sum returns the SHA-256 and size of the regular file at path (absolute,
// a final symlink not followed), from the cache when its stat is
// unchanged, else by reading it.
func (c *StatCache) Sum(path string) (Sum, int64, error) {
	var st syscall.Stat_t
	if err := lstat(path, &st); err != nil {
		return Sum{}, 0, err
	}
	return c.SumStat(path, &st)
}

// Known is the content hash of the regular file at path with lstat st,
// when the cache holds it.
func (c *StatCache) Known(path string, st *syscall.Stat_t) (Sum, bool) {
	<-c.loaded
	k := keyOf(st)
	r, ok := c.old[path]
	if !ok || r.st != k || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return Sum{}, false
	}
	c.mu.Lock()
	c.cur[path] = r
	c.mu.Unlock()
	return r.sum, true
}

// SumStat is Sum with path's lstat already made (by the walk that found
// the file, just before).
func (c *StatCache) SumStat(path string, st *syscall.Stat_t) (Sum, int64, error) {
	<-c.loaded
	k := keyOf(st)
	if r, ok := c.old[path]; ok && r.st == k && st.Mode&syscall.S_IFMT == syscall.S_IFREG {
		c.mu.Lock()
		c.cur[path] = r
		c.mu.Unlock()
		return r.sum, int64(k.size), nil
	}
	sum, k, err := c.hash(path)
	if err != nil {
		return Sum{}, 0, err
	}
	return sum, int64(k.size), nil
}

func lstat(path string, st *syscall.Stat_t) error {
	for {
		err := syscall.Lstat(path, st)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "lstat", Path: path, Err: err}
		}
		return nil
	}
}

// hashBufs are hash's read buffers: one per hashing goroutine, not one
// per file (a 32 KiB allocation per file was most of a cold key's garbage).
var hashBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// hash reads path (internal/rawfile: no poller registration, a final
// symlink not followed) and records its hash if its stat held still and
// is old enough.
func (c *StatCache) hash(path string) (Sum, statKey, error) {
	f, err := rawfile.Open(path)
	if err != nil {
		return Sum{}, statKey{}, err
	}
	defer f.Close()
	var before, after syscall.Stat_t
	if err := f.Stat(&before); err != nil {
		return Sum{}, statKey{}, err
	}
	if before.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return Sum{}, statKey{}, fmt.Errorf("%s is not a regular file", path)
	}
	c.read.Add(1)
	h := sha256.New()
	bp := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(bp)
	if _, err := io.CopyBuffer(h, f, *bp); err != nil {
		return Sum{}, statKey{}, err
	}
	if err := f.Stat(&after); err != nil {
		return Sum{}, statKey{}, err
	}
	var s Sum
	h.Sum(s[:0])
	k := keyOf(&before)
	racy := c.start.Add(-RacyWindow).UnixNano()
	if k == keyOf(&after) && k.mtimeNs < racy && k.ctimeNs < racy {
		c.mu.Lock()
		c.cur[path] = statRec{st: k, sum: s}
		c.dirty = true
		c.mu.Unlock()
	}
	return s, k, nil
}

// Save writes this session's records (the files it hashed or found
// unchanged) to the cache file, atomically.
func (c *StatCache) Save() error {
	<-c.loaded
	c.mu.Lock()
	if c.unchanged() {
		c.mu.Unlock()
		return nil
	}
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	fmt.Fprintln(w, statCacheMagic)
	for p, r := range c.cur {
		fmt.Fprintf(w, "%x %d %d %d %d %d %d %s\n", r.sum, int64(r.st.dev), int64(r.st.ino), int64(r.st.size), r.st.mtimeNs, r.st.ctimeNs, r.st.mode, strconv.Quote(p))
	}
	c.mu.Unlock()
	w.Flush()
	if err := os.MkdirAll(filepath.Dir(c.file), 0o755); err != nil {
		return err
	}
	if err := atomicfs.WriteFile(c.file, b.Bytes()); err != nil {
		return err
	}
	return nil
}

// unchanged says the session's records are the loaded ones, so that the
// file need not be written again (c.mu held): every record not hashed
// this session is a loaded one, so with none hashed and as many as were
// loaded, they are all of them.
func (c *StatCache) unchanged() bool {
	return !c.dirty && len(c.cur) == len(c.old)
}

// StatCacheFile is the stat cache file, under the layer store dir, of the
// context at root.
func StatCacheFile(storeDir, root string) string {
	h := sha256.Sum256([]byte(root))
	return filepath.Join(storeDir, "stat", hex.EncodeToString(h[:16]))
}
