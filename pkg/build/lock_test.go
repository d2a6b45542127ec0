package build

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/lock"
	"github.com/reprobuild/repro/pkg/lock/locktest"
)

// TestLock: locking writes the lock beside the spec when its bytes
// change, and only then; Check writes nothing; an unreadable lock is bad
// input unless Update writes it anew; a base that cannot be one is the
// spec's error, before anything is resolved.
func TestLock(t *testing.T) {
	dir := t.TempDir()
	ref := locktest.Layout(t, filepath.Join(dir, "base"), map[string]string{"/etc/os-release": "ID=test\n"})
	file := filepath.Join(dir, "app", "repro.yaml")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(base string) {
		t.Helper()
		if err := os.WriteFile(file, []byte("version: 1\nname: app\nbase: "+base+"\nlayers:\n  - contents:\n      - {path: /a, content: a}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(ref)
	ctx := context.Background()
	req := LockRequest{File: file, Cache: cache.New(filepath.Join(dir, "cache"))}
	l, err := Lock(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if l.Path != lock.PathFor(file) || !l.Written || len(l.Changes) == 0 {
		t.Fatalf("first lock: %+v", l)
	}
	first, err := os.ReadFile(l.Path)
	if err != nil {
		t.Fatal(err)
	}
	if lf, err := lock.Read(l.Path); err != nil || lf == nil || len(lf.Bases) != 1 {
		t.Fatalf("the lock written: %+v, %v; want its base pinned", lf, err)
	}
	if l, err = Lock(ctx, req); err != nil || l.Written || len(l.Changes) != 0 {
		t.Errorf("locking again: %+v, %v; want nothing written, no change", l, err)
	}
	check := req
	check.Check = true
	if l, err = Lock(ctx, check); err != nil || l.Written || len(lock.Stale(l.Changes)) != 0 {
		t.Errorf("check: %+v, %v; want nothing written, nothing stale", l, err)
	}
	if again, _ := os.ReadFile(lock.PathFor(file)); !bytes.Equal(again, first) {
		t.Error("the lock's bytes changed")
	}

	if err := os.WriteFile(lock.PathFor(file), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(ctx, req); fault.KindOf(err) != fault.BadInput {
		t.Errorf("an unreadable lock: %v; want bad input", err)
	}
	update := req
	update.Update = true
	if l, err = Lock(ctx, update); err != nil || !l.Written {
		t.Fatalf("update over an unreadable lock: %+v, %v", l, err)
	}
	if again, _ := os.ReadFile(lock.PathFor(file)); !bytes.Equal(again, first) {
		t.Errorf("the lock written anew differs:\n%s\nwant\n%s", again, first)
	}

	write("oci:")
	if _, err := Lock(ctx, req); fault.KindOf(err) != fault.BadInput {
		t.Errorf("a base that is no reference: %v; want bad input", err)
	}
}
