package build

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/pkg/base"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/spec"
)

// TestRegistryBaseLayersStayMountable builds on a base from a registry
// and on the same base from a local layout: the registry base's layers
// come out of Layers as *remote.MountableLayers naming the base's
// repository (so a push to that registry can mount them), the app's layers
// do not, and the two images are the same bytes (but for the base name
// that only a registry base records).
func TestRegistryBaseLayersStayMountable(t *testing.T) {
	ctx := context.Background()
	host, img := registryBase(t, 1024, 2, "library/base:1")
	d, _ := img.Digest()
	dir := t.TempDir()
	lp, err := layout.Write(filepath.Join(dir, "base"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.txt"), []byte("app\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	build := func(baseRef string) v1.Image {
		t.Helper()
		yaml := fmt.Sprintf("version: 1\nname: app\nbase: %s\nlayers:\n  - name: app\n    contents:\n      - {path: /app/app.txt, source: app.txt}\n", baseRef)
		if err := os.WriteFile(filepath.Join(dir, "repro.yaml"), []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := spec.Load(filepath.Join(dir, "repro.yaml"), spec.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c := cache.New(t.TempDir())
		r := base.NewResolver(c, nil)
		bref, err := base.ParseRef(s.Base)
		if err != nil {
			t.Fatal(err)
		}
		bref = bref.In(dir)
		pin, err := r.Resolve(ctx, bref)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Build(ctx, s, Options{
			Values: values(s), Compression: compress.Gzip, Cache: c, WorkDir: t.TempDir(),
			Base: &Base{Ref: bref, Pin: pin, Resolver: r},
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.Image
	}
	fromRegistry := build(host + "/library/base:1@" + d.String())
	fromLayout := build("oci:base@" + d.String())

	layers, err := fromRegistry.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 3 {
		t.Fatalf("%d layers, want the base's 2 and the app's", len(layers))
	}
	for i, l := range layers {
		ml, ok := l.(*remote.MountableLayer)
		if i == 2 {
			if ok {
				t.Errorf("the app layer names the repository %s", ml.Reference)
			}
			continue
		}
		ld, _ := l.Digest()
		if !ok || ml.Reference.Context().String() != host+"/library/base" || ml.Reference.Identifier() != ld.String() {
			t.Errorf("base layer %d is %T %+v; want a *remote.MountableLayer naming %s/library/base@%s", i, l, l, host, ld)
			continue
		}
		// Everything else about it is the base layer's: it still reads
		// (and decompresses, for structure tests and diffs).
		rc, err := l.Uncompressed()
		if err != nil {
			t.Errorf("base layer %d: Uncompressed: %v", i, err)
			continue
		}
		io.Copy(io.Discard, rc)
		rc.Close()
	}
	if ls, _ := fromLayout.Layers(); len(ls) != 3 {
		t.Fatalf("layout base: %d layers", len(ls))
	} else if _, ok := ls[0].(*remote.MountableLayer); ok {
		t.Errorf("a layout base's layer names a repository")
	}

	// The same bytes either way: config and layers; the manifests differ
	// only in the base name.
	ca, _ := fromRegistry.RawConfigFile()
	cb, _ := fromLayout.RawConfigFile()
	if !bytes.Equal(ca, cb) {
		t.Errorf("configs differ:\n%s\n%s", ca, cb)
	}
	manifest := func(img v1.Image) map[string]any {
		raw, err := img.RawManifest()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	mr, ml := manifest(fromRegistry), manifest(fromLayout)
	if got := mr["annotations"].(map[string]any)[ocispec.AnnotationBaseImageName]; got != host+"/library/base:1" {
		t.Errorf("base name %v", got)
	}
	delete(mr["annotations"].(map[string]any), ocispec.AnnotationBaseImageName)
	if diff := cmp.Diff(ml, mr); diff != "" {
		t.Errorf("manifests (-layout +registry):\n%s", diff)
	}

	// Pushed by go-containerregistry (no mount in its in-memory registry:
	// it has the blobs already), it reads back as the same image.
	out, _ := name.ParseReference(host + "/app:1")
	if err := remote.Write(out, fromRegistry); err != nil {
		t.Fatal(err)
	}
	back, err := remote.Image(out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mustDigest(t, back), mustDigest(t, fromRegistry); got != want {
		t.Errorf("pushed %s, built %s", got, want)
	}
}

func mustDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
