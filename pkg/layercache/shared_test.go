package layercache

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/pkg/compress"

	"github.com/reprobuild/repro/pkg/layer"
)

// memRegistry is a repository on go-containerregistry's in-memory
// registry, for the test.
func memRegistry(t *testing.T) name.Repository {
	t.Helper()
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	repo, err := name.NewRepository(u.Host + "/cache")
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// The shared cache on go-containerregistry's in-memory registry: a
// readwrite Put stores an entry once (first write wins); a Get on a fresh
// store fetches it with its extra, its hashes checked; read mode writes
// nothing; a key with no entry is a miss.
func TestShared(t *testing.T) {
	repo := memRegistry(t)
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
	got, ref, err := ro.Get(ctx, k, st, nil)
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
	if got, _, err := ro.Get(ctx, other, st, nil); got != nil || err != nil {
		t.Errorf("a missing key: %v %v", got, err)
	}
}

// Shared.Get given the layer's stream: a gzip entry of this build's layer
// is proven block by block; one of other bytes is refused, however well
// it hashes; a zstd entry, and a gzip one of another writer's blocks, are
// decompressed whole and compared; a package layer's (no stream) is
// hashed.
func TestSharedChecks(t *testing.T) {
	repo := memRegistry(t)
	ctx := context.Background()
	dir := t.TempDir()
	big := make([]byte, 3<<20+777)
	for i := range big {
		big[i] = "repro layer cache "[i%18] ^ byte(i>>14)
	}
	if err := os.WriteFile(filepath.Join(dir, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	es := tree(t, dir)
	rw := &Shared{Repo: repo, Write: true, Now: time.Now}
	stream := func(es []layer.Entry, o layer.Options) func(io.Writer) error {
		return func(w io.Writer) error { return layer.WriteFormatTar(ctx, w, es, o.Format, o.Epoch) }
	}
	fresh := func() *Store { return Open(filepath.Join(t.TempDir(), "layers"), time.Now, "b") }
	entry := func(o layer.Options) (Key, *layer.File) {
		l, err := layer.Write(ctx, es, t.TempDir(), o)
		if err != nil {
			t.Fatal(err)
		}
		k := key(t, es, o, nil)
		if wrote, err := rw.Put(ctx, k, l, nil); !wrote || err != nil {
			t.Fatalf("Put: %v %v", wrote, err)
		}
		return k, l
	}
	get := func(k Key, want func(io.Writer) error, check Check, l v1.Layer) {
		t.Helper()
		got, _, err := rw.Get(ctx, k, fresh(), want)
		if err != nil || got == nil {
			t.Fatalf("Get: %v %v", got, err)
		}
		wd, _ := l.Digest()
		wdi, _ := l.DiffID()
		gd, _ := got.Digest()
		gdi, _ := got.DiffID()
		if gd != wd || gdi != wdi || got.Checked() != check {
			t.Errorf("Get: %s %s checked %q, want %s %s %q", gd, gdi, got.Checked(), wd, wdi, check)
		}
	}

	k, l := entry(opts())
	get(k, stream(es, opts()), CheckBlocks, l)
	get(k, nil, CheckHashed, l)

	// The same key, other bytes: a file changed since the entry was
	// written (as a poisoned entry would differ) is not the layer.
	other := bytes.Clone(big)
	other[2<<20] ^= 1
	if err := os.WriteFile(filepath.Join(dir, "big"), other, 0o644); err != nil {
		t.Fatal(err)
	}
	var se *SharedError
	if got, _, err := rw.Get(ctx, k, fresh(), stream(entriesOf(t, dir), opts())); got != nil || !errors.As(err, &se) || !strings.Contains(err.Error(), "not the layer this build writes") {
		t.Fatalf("Get of other bytes: %v, %v", got, err)
	}
	os.WriteFile(filepath.Join(dir, "big"), big, 0o644)

	zo := opts()
	zo.Compression = compress.Zstd
	zk, zl := entry(zo)
	get(zk, stream(es, zo), CheckCompared, zl)

	// The standard library's gzip: no sync flushes, not proven by
	// blocks; compared whole.
	var tarBuf, gz bytes.Buffer
	if err := stream(es, opts())(&tarBuf); err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(&gz)
	zw.Write(tarBuf.Bytes())
	zw.Close()
	p := filepath.Join(t.TempDir(), "blob")
	os.WriteFile(p, gz.Bytes(), 0o644)
	sum, dsum := sha256.Sum256(gz.Bytes()), sha256.Sum256(tarBuf.Bytes())
	fl := fileLayer{path: p, digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}, diffID: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(dsum[:])}, size: int64(gz.Len()), mt: types.MediaType(compress.Gzip.MediaType())}
	var sk Key
	sk[0] = 7
	if wrote, err := rw.Put(ctx, sk, fl, nil); !wrote || err != nil {
		t.Fatalf("Put: %v %v", wrote, err)
	}
	get(sk, stream(es, opts()), CheckCompared, fl)
	// want failing: the entry cannot be judged, and is not used.
	if got, _, err := rw.Get(ctx, sk, fresh(), func(io.Writer) error { return errors.New("a file is gone") }); got != nil || !errors.As(err, &se) {
		t.Fatalf("Get with a failing stream: %v, %v", got, err)
	}
}
