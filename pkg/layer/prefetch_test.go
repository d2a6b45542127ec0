package layer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reprobuild/repro/internal/testtool"
	"github.com/reprobuild/repro/pkg/compress"
)

// manyFiles are n regular files of the given size, each with its own
// content, in a shuffled order.
func manyFiles(n, size int) []Entry {
	es := make([]Entry, n)
	for i := range es {
		body := strings.Repeat(fmt.Sprintf("file %d says hello\n", i), size/15+1)[:size]
		es[(i*7919)%n] = file(fmt.Sprintf("/d/%04d", i), body, 0o644)
	}
	return es
}

// failing is a regular file whose Open fails.
func failing(p string, size int64) Entry {
	return Entry{Path: p, Type: Regular, Mode: 0o644, Size: size, Open: func() (io.ReadCloser, error) {
		return nil, errors.New("boom")
	}}
}

// TestReadAheadFirstErrorInOrder: when several files cannot be read, the
// error is the first one in tar order, every time, however the workers
// happen to run.
func TestReadAheadFirstErrorInOrder(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 20 {
		es := manyFiles(300, 100)
		es = append(es, failing("/d/0150x", 10), failing("/d/0030x", 10), failing("/d/0290x", 10))
		err := WriteTar(context.Background(), io.Discard, es, 0)
		if err == nil || !strings.Contains(err.Error(), "/d/0030x") || !strings.Contains(err.Error(), "boom") {
			t.Fatalf("err = %v, want the error of /d/0030x", err)
		}
	}
	waitGoroutines(t, before)
}

// waitGoroutines fails when goroutines started by the test outlive it.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines left, want %d:\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReadAheadChangedFiles: a file read ahead, or streamed, whose length
// is not the size it had is an error that says so.
func TestReadAheadChangedFiles(t *testing.T) {
	for _, size := range []int64{100, prefetchMax + 1} {
		body := strings.Repeat("x", int(size))
		for _, tc := range []struct {
			name, content, want string
		}{
			{"shorter", body[:size-1], "changed while the layer was written"},
			{"longer", body + "y", "grew while the layer was written"},
		} {
			e := Entry{Path: "/f", Type: Regular, Mode: 0o644, Size: size, Open: func() (io.ReadCloser, error) {
				return io.NopCloser(strings.NewReader(tc.content)), nil
			}}
			err := WriteTar(context.Background(), io.Discard, []Entry{e}, 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("size %d, %s: err = %v, want %q", size, tc.name, err, tc.want)
			}
		}
	}
}

// TestObserveSeesEveryFileOnce: every regular file reaches the observer
// once, whole and in one piece per Write sequence, whether it was read
// ahead or streamed.
func TestObserveSeesEveryFileOnce(t *testing.T) {
	es := append(manyFiles(500, 3000), file("/big", strings.Repeat("big\n", prefetchMax/2), 0o644), file("/empty", "", 0o644))
	var mu sync.Mutex
	seen := map[string][32]byte{}
	observe := func(e *Entry) Observer {
		return &recorder{done: func(b []byte) {
			mu.Lock()
			defer mu.Unlock()
			if _, dup := seen[e.Path]; dup {
				t.Errorf("%s observed twice", e.Path)
			}
			seen[e.Path] = sha256.Sum256(b)
		}}
	}
	if err := writeTar(context.Background(), io.Discard, es, compress.Newest, 0, observe); err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		r, _ := e.Open()
		b, _ := io.ReadAll(r)
		if got, ok := seen[e.Path]; !ok || got != sha256.Sum256(b) {
			t.Errorf("%s: observed %v, content differs or missing", e.Path, ok)
		}
	}
}

type recorder struct {
	buf  bytes.Buffer
	done func([]byte)
}

func (r *recorder) Write(b []byte) (int, error) { return r.buf.Write(b) }
func (r *recorder) Done()                       { r.done(r.buf.Bytes()) }

// TestReadAheadMemoryBounded writes files just under the read-ahead limit,
// 9 and then 27 times the read-ahead budget in all (3 and 9 under the race
// detector): the heap's peak stays
// near the budget and the compressor's buffers, and does not grow with the
// layer.
func TestReadAheadMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 576 MiB")
	}
	n := 18
	if raceEnabled {
		n = 6 // the race detector makes zstd ten times slower
	}
	small := heapPeak(t, n)
	large := heapPeak(t, 3*n)
	t.Logf("heap peak %d MiB for %d files of 8 MiB, %d MiB for %d", small>>20, n, large>>20, 3*n)
	limit := uint64(128 << 20)
	if raceEnabled {
		limit *= 2
	}
	if large > limit || large > small+32<<20 {
		t.Errorf("heap in use peaked at %d MiB for %d files of 8 MiB and %d MiB for %d; want at most %d MiB, not growing with the layer", small>>20, n, large>>20, 3*n, limit>>20)
	}
}

// heapPeak writes n files just under the read-ahead limit into a zstd
// layer and returns the peak of the heap in use meanwhile. The collector
// runs often meanwhile, so that the heap in use is mostly live memory,
// not garbage awaiting the next cycle.
func heapPeak(t *testing.T, n int) uint64 {
	defer debug.SetGCPercent(debug.SetGCPercent(20))
	const size = prefetchMax - 1
	es := make([]Entry, n)
	for i := range es {
		es[i] = Entry{Path: fmt.Sprintf("/f%02d", i), Type: Regular, Mode: 0o644, Size: size, Open: func() (io.ReadCloser, error) {
			return io.NopCloser(io.LimitReader(repeatReader(byte('a'+i%26)), size)), nil
		}}
	}
	var err error
	peak := testtool.HeapPeak(func() {
		_, err = Write(context.Background(), es, t.TempDir(), Options{Format: compress.Newest, Compression: compress.Zstd})
	})
	if err != nil {
		t.Fatal(err)
	}
	return peak
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// TestFileTurnedFIFO: a context file replaced by a named pipe after the
// context was read is an error, not a build that hangs on the pipe.
func TestFileTurnedFIFO(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := OpenSourceDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	es, err := c.Source("f", "/f", nil, Attrs{})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- WriteTar(context.Background(), io.Discard, es, 0) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no longer a regular file") {
			t.Errorf("err = %v, want a file that is no longer regular", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("writing a layer hung on a FIFO")
	}
}

// TestTreeWalkOrder: the parallel walk gives the entries, in the order,
// that a serial filepath.WalkDir gives, and the first error in that order
// however its goroutines run.
func TestTreeWalkOrder(t *testing.T) {
	dir := t.TempDir()
	for i := range 40 {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", i%7), fmt.Sprintf("e%d", i%3), fmt.Sprintf("f%d", i%2))
		os.MkdirAll(sub, 0o755)
		os.WriteFile(filepath.Join(sub, fmt.Sprintf("file%02d.txt", i)), []byte("x"), 0o644)
		os.WriteFile(filepath.Join(sub, fmt.Sprintf("skip%02d.log", i)), []byte("x"), 0o644)
	}
	os.Symlink("d00", filepath.Join(dir, "link"))
	os.MkdirAll(filepath.Join(dir, "d03", "cache"), 0o755)
	os.WriteFile(filepath.Join(dir, "d03", "cache", "junk"), nil, 0o644)
	exclude := []string{"**/*.log", "d03/cache"}

	var want []string
	want = append(want, "/app")
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		r, _ := filepath.Rel(dir, p)
		if p == dir {
			return nil
		}
		if excluded(exclude, filepath.ToSlash(r), d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		want = append(want, "/app/"+filepath.ToSlash(r))
		return nil
	})
	c, err := OpenSourceDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		es, err := c.Source(".", "/app", exclude, Attrs{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range es {
			got = append(got, e.Path)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("walk order:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}

	// Two FIFOs: the one a serial walk meets first is the one reported.
	if err := syscall.Mkfifo(filepath.Join(dir, "d05", "e2", "f1", "pipe"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	syscall.Mkfifo(filepath.Join(dir, "d01", "e0", "f1", "pipe"), 0o644)
	before := runtime.NumGoroutine()
	for range 20 {
		_, err := c.Source(".", "/app", exclude, Attrs{})
		if err == nil || !strings.Contains(err.Error(), "d01/e0/f1/pipe") {
			t.Fatalf("err = %v, want the FIFO d01/e0/f1/pipe", err)
		}
	}
	waitGoroutines(t, before)
}

type fullWriter struct{ left int }

var errFull = errors.New("no space left on device")

func (w *fullWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		return 0, errFull
	}
	w.left -= len(p)
	return len(p), nil
}

// TestFullDiskNamesNoFile: when the layer's destination fails, the error
// says so, the same every time, and blames none of the files (the failure
// surfaces asynchronously, at whichever file comes next).
func TestFullDiskNamesNoFile(t *testing.T) {
	es := manyFiles(1000, 20000)
	for _, alg := range []compress.Algorithm{compress.Gzip, compress.Zstd} {
		seen := map[string]bool{}
		for range 10 {
			_, err := compressTar(context.Background(), &fullWriter{left: 3000}, es, Options{Format: compress.Newest, Compression: alg})
			if !errors.Is(err, errFull) {
				t.Fatalf("%s: err = %v, want %v", alg, err, errFull)
			}
			seen[err.Error()] = true
		}
		if len(seen) != 1 || !seen["writing the layer: "+errFull.Error()] {
			t.Errorf("%s: errors %v, want only %q", alg, seen, "writing the layer: "+errFull.Error())
		}
	}
}

// TestCancelStopsAStreamedFile: cancelling stops a big file mid-copy, not
// after its last byte.
func TestCancelStopsAStreamedFile(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	const size = 1 << 40 // a terabyte that would take an hour
	e := Entry{Path: "/huge", Type: Regular, Mode: 0o644, Size: size, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(io.LimitReader(repeatReader('x'), size)), nil
	}}
	time.AfterFunc(50*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() { done <- WriteTar(ctx, io.Discard, []Entry{e}, 0) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a cancelled copy ran on")
	}
}
