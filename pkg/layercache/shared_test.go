package layercache

import (
	"context"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/reprobuild/repro/pkg/layer"
)

// The shared cache on go-containerregistry's in-memory registry: a
// readwrite Put stores an entry once (first write wins); a Get on a fresh
// store fetches it with its extra, its hashes checked; read mode writes
// nothing; a key with no entry is a miss.
func TestShared(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	repo, err := name.NewRepository(u.Host + "/cache")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	es := tree(t, dir)
	l, err := layer.Write(ctx, es, t.TempDir(), opts())
	if err != nil {
		t.Fatal(err)
	}
	k := key(t, es, opts(), nil)
	now := func() time.Time { return time.Unix(1800000000, 0) }

	ro := &Shared{Repo: repo, Now: now}
	if wrote, err := ro.Put(ctx, k, l, []byte(`"x"`)); wrote || err != nil {
		t.Fatalf("read mode Put: %v %v", wrote, err)
	}
	if _, err := remote.Head(repo.Tag(k.String())); err == nil {
		t.Fatal("read mode wrote an entry")
	}
	rw := &Shared{Repo: repo, Write: true, Now: now}
	if wrote, err := rw.Put(ctx, k, l, []byte(`"x"`)); !wrote || err != nil {
		t.Fatalf("Put: %v %v", wrote, err)
	}
	if wrote, err := rw.Put(ctx, k, l, []byte(`"y"`)); wrote || err != nil {
		t.Fatalf("a second Put wrote (%v, %v): first write wins", wrote, err)
	}
	img, err := remote.Image(repo.Tag(k.String()))
	if err != nil {
		t.Fatal(err)
	}
	if cf, _ := img.ConfigFile(); !cf.Created.Time.Equal(now()) || cf.Config.Labels[LabelKey] != k.String() {
		t.Errorf("entry config: created %v, labels %v", cf.Created, cf.Config.Labels)
	}

	st := Open(filepath.Join(t.TempDir(), "layers"), time.Now, "b")
	got, ref, err := ro.Get(ctx, k, st)
	if err != nil || got == nil {
		t.Fatalf("Get: %v %v", got, err)
	}
	wd, _ := l.Digest()
	wdi, _ := l.DiffID()
	if gd, _ := got.Digest(); gd != wd || ref.DigestStr() != wd.String() {
		t.Errorf("Get: digest %s (ref %s), want %s", gd, ref, wd)
	}
	if gdi, _ := got.DiffID(); gdi != wdi || string(got.Extra()) != `"x"` {
		t.Errorf("Get: diff ID %s extra %s", gdi, got.Extra())
	}
	if local, err := st.Get(k); err != nil || local == nil {
		t.Errorf("the fetched entry is not in the local store: %v", err)
	}
	var other Key
	other[0] = 1
	if got, _, err := ro.Get(ctx, other, st); got != nil || err != nil {
		t.Errorf("a missing key: %v %v", got, err)
	}
}
