package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/reprobuild/repro/pkg/base"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/spec"
)

// manyLayerLayout writes an OCI layout holding one linux/amd64 image of n
// tiny layers (one file each), written by hand (go-containerregistry's
// mutate is itself quadratic in layers), and returns its manifest digest.
func manyLayerLayout(tb testing.TB, dir string, n int, configPad int) string {
	tb.Helper()
	blobs := filepath.Join(dir, "blobs", "sha256")
	os.MkdirAll(blobs, 0o755)
	put := func(b []byte) string {
		s := sha256.Sum256(b)
		h := hex.EncodeToString(s[:])
		if err := os.WriteFile(filepath.Join(blobs, h), b, 0o644); err != nil {
			tb.Fatal(err)
		}
		return "sha256:" + h
	}
	type desc struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int    `json:"size"`
	}
	var layers []desc
	var diffs []string
	for i := range n {
		var tb2 bytes.Buffer
		tw := tar.NewWriter(&tb2)
		body := []byte(fmt.Sprintf("layer %d\n", i))
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("l/%05d", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))})
		tw.Write(body)
		tw.Close()
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(tb2.Bytes())
		zw.Close()
		s := sha256.Sum256(tb2.Bytes())
		diffs = append(diffs, "sha256:"+hex.EncodeToString(s[:]))
		layers = append(layers, desc{"application/vnd.oci.image.layer.v1.tar+gzip", put(gz.Bytes()), gz.Len()})
	}
	cfg, _ := json.Marshal(map[string]any{
		"os": "linux", "architecture": "amd64",
		"config":  map[string]any{"Env": []string{"PATH=/bin"}, "Labels": map[string]string{"pad": string(bytes.Repeat([]byte("x"), configPad))}},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": diffs},
		"history": []any{},
	})
	m, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": desc{"application/vnd.oci.image.config.v1+json", put(cfg), len(cfg)},
		"layers": layers,
	})
	md := put(m)
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []desc{{"application/vnd.oci.image.manifest.v1+json", md, len(m)}}})
	os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644)
	os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	return md
}

// benchBuildOnLayout builds a one-file app on the layout base md, with a
// fresh cache each time (the base's layers are checked each time).
func benchBuildOnLayout(b *testing.B, dir, md string) {
	b.Helper()
	yaml := fmt.Sprintf("version: 1\nname: app\nbase: oci:%s@%s\nlayers:\n  - name: app\n    contents:\n      - {path: /app.txt, content: app}\n", filepath.Join(dir, "base"), md)
	os.WriteFile(filepath.Join(dir, "repro.yaml"), []byte(yaml), 0o644)
	s, err := spec.Load(filepath.Join(dir, "repro.yaml"), spec.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		c := cache.New(b.TempDir())
		r := base.NewResolver(c, nil)
		bref, _ := base.ParseRef(s.Base)
		pin, err := r.Resolve(context.Background(), bref)
		if err != nil {
			b.Fatal(err)
		}
		res, err := Build(context.Background(), s, Options{
			Values: spec.Values{Name: "app", Vars: map[string]string{}}, Compression: compress.Gzip,
			Cache: c, WorkDir: b.TempDir(), Base: &Base{Ref: bref, Pin: pin, Resolver: r},
		})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := res.Image.Digest(); err != nil {
			b.Fatal(err)
		}
		if _, err := res.Image.RawManifest(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkManyLayerBase builds on bases of 500, 2,000 and 10,000 layers:
// the time per layer must not grow with the count (linear, not quadratic).
func BenchmarkManyLayerBase(b *testing.B) {
	for _, n := range []int{500, 1000, 2000, 10000} {
		b.Run(fmt.Sprintf("layers=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			md := manyLayerLayout(b, filepath.Join(dir, "base"), n, 0)
			benchBuildOnLayout(b, dir, md)
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(n), "µs/layer")
		})
	}
}

// BenchmarkBigConfigBase builds on a base whose config is 100 MB (one
// label): the allocations per build should be a small multiple of that.
func BenchmarkBigConfigBase(b *testing.B) {
	dir := b.TempDir()
	md := manyLayerLayout(b, filepath.Join(dir, "base"), 1, 100<<20)
	b.ReportAllocs()
	benchBuildOnLayout(b, dir, md)
}

// TestWriteManyLayerLayout writes a base of REPRO_MANY_LAYERS layers to
// REPRO_MANY_LAYERS_DIR, for measuring the binary on it by hand; it
// prints the manifest digest.
func TestWriteManyLayerLayout(t *testing.T) {
	dir := os.Getenv("REPRO_MANY_LAYERS_DIR")
	if dir == "" {
		t.Skip("REPRO_MANY_LAYERS_DIR is not set")
	}
	var n int
	fmt.Sscan(os.Getenv("REPRO_MANY_LAYERS"), &n)
	fmt.Println(manyLayerLayout(t, dir, n, 0))
}
