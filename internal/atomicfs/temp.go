package atomicfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Temporary files and directories carry their owner: the name is
// prefix + "<pid>-<random>" + suffix, and the owner holds an flock on the
// file (or directory) for as long as it uses it. A temporary name is
// stale, and may be removed by anyone, only when both say the owner is
// gone: no process has that pid here, and the flock can be taken. The pid
// alone would let a reused pid keep debris alive (harmless) and cannot
// see a process of another pid namespace on a shared volume (harmful);
// the flock alone has a window between creating the name and locking it.
// Together, a live writer's temporary file is never removed.

// pidWidth bounds the digits taken as a pid (Linux's pid_max is at most
// 2^22): a longer run of digits is not a pid, so not owned by this rule.
const pidWidth = 7

// Temp is a temporary file or directory, locked by this process.
type Temp struct {
	// Path is where it is.
	Path string
	lock *os.File
}

// Release drops the lock without removing the file: for temporary names
// that have been renamed into place (the lock goes with the inode) or are
// about to be.
func (t *Temp) Release() {
	if t.lock != nil {
		t.lock.Close()
		t.lock = nil
	}
}

// Remove removes the temporary file or directory (with what it holds)
// and drops the lock. It is safe to call after Release and twice.
func (t *Temp) Remove() {
	os.RemoveAll(t.Path)
	t.Release()
}

// ownerPattern is the pattern part that names this process.
func ownerPattern() string { return strconv.Itoa(os.Getpid()) + "-*" }

// CreateTemp creates a new file in dir named prefix<pid>-<random>suffix,
// open for writing and locked; close f when done writing, and Release or
// Remove the Temp when done with the name.
func CreateTemp(dir, prefix, suffix string) (*os.File, *Temp, error) {
	f, err := os.CreateTemp(dir, prefix+ownerPattern()+suffix)
	if err != nil {
		return nil, nil, err
	}
	lock, err := os.Open(f.Name())
	if err == nil {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != nil {
			lock.Close()
		}
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return f, &Temp{Path: f.Name(), lock: lock}, nil
}

// MkdirTemp creates a new directory in dir named prefix<pid>-<random>,
// mode 0755, locked until Remove or Release.
func MkdirTemp(dir, prefix string) (*Temp, error) {
	p, err := os.MkdirTemp(dir, prefix+ownerPattern())
	if err != nil {
		return nil, err
	}
	lock, err := os.Open(p)
	if err == nil {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != nil {
			lock.Close()
		}
	}
	if err == nil {
		err = os.Chmod(p, 0o755)
		if err != nil {
			lock.Close()
		}
	}
	if err != nil {
		os.RemoveAll(p)
		return nil, fmt.Errorf("locking %s: %w", p, err)
	}
	return &Temp{Path: p, lock: lock}, nil
}

// Owner returns the pid that name (a base name) carries after prefix, and
// whether it carries one.
func Owner(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, "-")
	if !ok || digits == "" || len(digits) > pidWidth {
		return 0, false
	}
	pid, err := strconv.Atoi(digits)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// alive reports whether a process with this pid exists (EPERM: it does,
// as another user's).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// CleanStale removes the entries of dir whose names start with one of
// prefixes, carry an owner (prefix<pid>-…) and are stale: that pid is not
// a live process and the entry's flock can be taken. It returns the paths
// removed. A missing dir holds nothing stale.
func CleanStale(dir string, prefixes ...string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range ents {
		for _, prefix := range prefixes {
			pid, ok := Owner(e.Name(), prefix)
			if !ok {
				continue
			}
			p := filepath.Join(dir, e.Name())
			if removeIfStale(p, pid) {
				removed = append(removed, p)
			}
			break
		}
	}
	return removed, nil
}

// removeIfStale removes p when its owner pid is gone and nobody holds
// its flock, holding that flock while it removes.
func removeIfStale(p string, pid int) bool {
	if pid == os.Getpid() || alive(pid) {
		return false
	}
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		return false
	}
	return os.RemoveAll(p) == nil
}
