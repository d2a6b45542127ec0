package hostile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// descriptor is an OCI descriptor, written by hand so that the corpus
// depends on nothing it tests.
type descriptor struct {
	MediaType string            `json:"mediaType"`
	Digest    string            `json:"digest"`
	Size      int64             `json:"size"`
	Platform  map[string]string `json:"platform,omitempty"`
}

const (
	mtIndex    = "application/vnd.oci.image.index.v1+json"
	mtManifest = "application/vnd.oci.image.manifest.v1+json"
)

type layoutWriter struct{ dir string }

func (w layoutWriter) blob(mt string, b []byte) (descriptor, error) {
	sum := sha256.Sum256(b)
	hx := hex.EncodeToString(sum[:])
	return w.named(mt, hx, b)
}

// named stores b under hex, whatever b hashes to.
func (w layoutWriter) named(mt, hx string, b []byte) (descriptor, error) {
	p := filepath.Join(w.dir, "blobs", "sha256", hx)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return descriptor{}, err
	}
	return descriptor{MediaType: mt, Digest: "sha256:" + hx, Size: int64(len(b))}, os.WriteFile(p, b, 0o644)
}

func (w layoutWriter) finish(top descriptor) error {
	if err := os.WriteFile(filepath.Join(w.dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return err
	}
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mtIndex, "manifests": []descriptor{top}})
	return os.WriteFile(filepath.Join(w.dir, "index.json"), idx, 0o644)
}

func index(children ...descriptor) []byte {
	b, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mtIndex, "manifests": children})
	return b
}

// image writes a small image of the host's linux platform: one
// uncompressed layer holding etc/hostile, its config dated 2020.
func (w layoutWriter) image() (descriptor, error) {
	layer := Tar(Entry{Name: "etc/", Type: '5'}, Entry{Name: "etc/hostile", Type: '0', Data: []byte("nested\n")})
	ld, err := w.blob("application/vnd.oci.image.layer.v1.tar", layer)
	if err != nil {
		return descriptor{}, err
	}
	diff := sha256.Sum256(layer)
	cfg, _ := json.Marshal(map[string]any{
		"created": "2020-01-01T00:00:00Z", "architecture": runtime.GOARCH, "os": "linux",
		"config": map[string]any{"Env": []string{"PATH=/usr/bin:/bin"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(diff[:])}},
	})
	cd, err := w.blob("application/vnd.oci.image.config.v1+json", cfg)
	if err != nil {
		return descriptor{}, err
	}
	m, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mtManifest, "config": cd, "layers": []descriptor{ld}})
	md, err := w.blob(mtManifest, m)
	if err != nil {
		return descriptor{}, err
	}
	md.Platform = map[string]string{"os": "linux", "architecture": runtime.GOARCH}
	return md, nil
}

// NestedIndex writes, in dir, an OCI layout whose index.json names an
// index that nests depth indexes in all (depth 1: an index of the image),
// each listing the next, the innermost listing one small linux image of
// the host's architecture. It returns the outermost index's digest.
func NestedIndex(dir string, depth int) (string, error) {
	w := layoutWriter{dir}
	d, err := w.image()
	if err != nil {
		return "", err
	}
	for i := 0; i < depth; i++ {
		if d, err = w.blob(mtIndex, index(d)); err != nil {
			return "", err
		}
	}
	return d.Digest, w.finish(d)
}

// SelfNamedIndex writes, in dir, an OCI layout holding an index that
// lists its own digest: stored under the name it lists, beside the small
// image, whatever its bytes hash to (content addressing allows no honest
// one). A reader that does not check digests walks it forever. It returns
// that digest.
func SelfNamedIndex(dir string) (string, error) {
	w := layoutWriter{dir}
	img, err := w.image()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte("an index that names itself"))
	hx := hex.EncodeToString(sum[:])
	self := descriptor{MediaType: mtIndex, Digest: "sha256:" + hx, Size: 0}
	raw := index(img, self)
	// The size must be the blob's for size checks to pass: it is written
	// in the blob itself, so find the fixed point.
	for i := 0; i < 8; i++ {
		self.Size = int64(len(raw))
		raw = index(img, self)
	}
	if int64(len(raw)) != self.Size {
		return "", fmt.Errorf("hostile: no size fixed point")
	}
	d, err := w.named(mtIndex, hx, raw)
	if err != nil {
		return "", err
	}
	return d.Digest, w.finish(d)
}
