package build

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/pkg/base"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/spec"
)

// BenchmarkRebuildOnBase measures the rebuild of a small app layer on a
// 100 MB base from a registry, with a warm cache (the base is pulled once,
// before the timer), and the push of the result when only the app layer
// changed (the registry already has the base's blobs).
func BenchmarkRebuildOnBase(b *testing.B) {
	host, img := registryBase(b, 25<<20, 4, "base:1") // 4 layers of 25 MiB: a 100 MiB base
	d, _ := img.Digest()
	dir := b.TempDir()
	app := filepath.Join(dir, "app.txt")
	yaml := fmt.Sprintf("version: 1\nname: app\nbase: %s/base:1@%s\nlayers:\n  - name: app\n    contents:\n      - {path: /app/app.txt, source: app.txt}\n", host, d)
	if err := os.WriteFile(filepath.Join(dir, "repro.yaml"), []byte(yaml), 0o644); err != nil {
		b.Fatal(err)
	}
	os.WriteFile(app, []byte("v0"), 0o644)
	s, err := spec.Load(filepath.Join(dir, "repro.yaml"), spec.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	c := cache.New(b.TempDir())
	r := base.NewResolver(c, nil)
	bref, _ := base.ParseRef(s.Base)
	pin, err := r.Resolve(context.Background(), bref)
	if err != nil {
		b.Fatal(err)
	}
	buildOnce := func(i int) *Result {
		os.WriteFile(app, []byte(fmt.Sprintf("version %d", i)), 0o644)
		res, err := Build(context.Background(), s, Options{
			Values: spec.Values{Name: "app", Vars: map[string]string{}}, Compression: compress.Gzip,
			Cache: c, WorkDir: b.TempDir(), Base: &Base{Ref: bref, Pin: pin, Resolver: r},
		})
		if err != nil {
			b.Fatal(err)
		}
		return res
	}
	buildOnce(-1) // warm the cache
	out, _ := name.ParseReference(host + "/app:latest")
	b.Run("rebuild-warm", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			buildOnce(i)
		}
	})
	b.Run("push-one-layer-changed", func(b *testing.B) {
		var imgs []v1.Image
		for i := 0; i < b.N; i++ {
			imgs = append(imgs, buildOnce(1000+i).Image)
		}
		if err := remote.Write(out, buildOnce(999).Image); err != nil { // base blobs now in the registry
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := remote.Write(out, imgs[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// registryBase serves a random linux/amd64 image of layers layers of size
// bytes each, at host/repoTag in an in-memory registry that lives as long
// as the test.
func registryBase(tb testing.TB, size, layers int64, repoTag string) (string, v1.Image) {
	tb.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	tb.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(size, layers)
	if err != nil {
		tb.Fatal(err)
	}
	img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		tb.Fatal(err)
	}
	ref, _ := name.ParseReference(host + "/" + repoTag)
	if err := remote.Write(ref, img); err != nil {
		tb.Fatal(err)
	}
	return host, img
}
