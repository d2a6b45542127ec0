package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/reprobuild/repro/pkg/fault"
)

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestBlob(t *testing.T) {
	ctx := context.Background()
	c := New(t.TempDir())
	body := "layer bytes"
	var calls atomic.Int32
	fetch := func(context.Context) (io.ReadCloser, error) {
		calls.Add(1)
		return io.NopCloser(strings.NewReader(body)), nil
	}
	// Many builds sharing the cache at once all get the verified blob.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := c.Blob(ctx, digestOf(body), "blob", fetch)
			if err != nil {
				t.Error(err)
				return
			}
			if b, _ := os.ReadFile(p); string(b) != body {
				t.Errorf("read %q", b)
			}
		}()
	}
	wg.Wait()
	n := calls.Load()
	if _, err := c.Blob(ctx, digestOf(body), "blob", fetch); err != nil || calls.Load() != n {
		t.Errorf("a cached blob was fetched again (err %v)", err)
	}
	// A corrupted entry is dropped and fetched again.
	p, _ := c.Lookup(digestOf(body))
	os.WriteFile(p, []byte("tampered"), 0o644)
	if _, err := c.Lookup(digestOf(body)); err == nil {
		t.Error("Lookup accepted a corrupt entry")
	}
	if _, err := c.Blob(ctx, digestOf(body), "blob", fetch); err != nil || calls.Load() != n+1 {
		t.Errorf("corrupt entry not refetched: %v", err)
	}
	// Bytes that do not match the digest are refused and not stored.
	want := digestOf("something else")
	_, err := c.Blob(ctx, want, "blob", fetch)
	var m *MismatchError
	if fault.KindOf(err) != fault.Operational || !errors.As(err, &m) || m.Got != digestOf(body) {
		t.Errorf("err = %v", err)
	}
	if _, err := c.Lookup(want); err == nil {
		t.Error("a mismatching blob was stored")
	}
	// Offline, a missing blob says so.
	off := New(t.TempDir(), Offline(true))
	_, err = off.Blob(ctx, want, "the base layer", fetch)
	if fault.KindOf(err) != fault.Operational || !strings.Contains(err.Error(), "the base layer") || !errors.Is(err, ErrOffline) || strings.Contains(err.Error(), "--") {
		t.Errorf("offline err = %v", err)
	}
	entries, _ := os.ReadDir(c.dir + "/blobs/sha256")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp") {
			t.Errorf("temp file left: %s", e.Name())
		}
	}
}

// ggcrReader fails at its end as go-containerregistry's verifying reader
// does when the bytes do not match.
type ggcrReader struct{ b []byte }

func (r *ggcrReader) Read(p []byte) (int, error) {
	n := copy(p, r.b)
	r.b = r.b[n:]
	if len(r.b) == 0 {
		return n, errors.New(`error verifying sha256 checksum after reading 5 bytes; got "sha256:…", want "sha256:…"`)
	}
	return n, nil
}

// TestCorruptBlob: a blob the source serves with other bytes than its
// digest's is exit 3, worded as repro, naming both digests; nothing is
// stored.
func TestCorruptBlob(t *testing.T) {
	c := New(t.TempDir())
	want := strings.Repeat("a", 64)
	_, err := c.Blob(context.Background(), want, "layer 0 sha256:"+want+" of reg/x@sha256:b", func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(&ggcrReader{[]byte("wrong")}), nil
	})
	sum := sha256.Sum256([]byte("wrong"))
	var ce *CorruptError
	if !errors.As(err, &ce) || fault.KindOf(err) != fault.Operational {
		t.Fatalf("err = %v, want a CorruptError, exit 3", err)
	}
	msg := err.Error()
	for _, w := range []string{"layer 0 sha256:" + want + " of reg/x", "its bytes hash to sha256:" + hex.EncodeToString(sum[:]), "not the digest it is named by", "serves corrupt data"} {
		if !strings.Contains(msg, w) {
			t.Errorf("%q does not say %q", msg, w)
		}
	}
	if strings.Contains(msg, "error verifying") {
		t.Errorf("%q still reads as go-containerregistry's", msg)
	}
	if _, err := c.Lookup(want); err == nil {
		t.Error("the corrupt blob was stored")
	}
}
