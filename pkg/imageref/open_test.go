package imageref_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"net/http/httptest"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/output"
)

func ociImage(t *testing.T) v1.Image {
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	return mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
}

func readLayers(img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// TestOpenEveryTransport writes one image through each transport and
// opens it again: the digest must survive the round trip.
func TestOpenEveryTransport(t *testing.T) {
	ctx := context.Background()
	img := ociImage(t)
	want, _ := img.Digest()
	dir := t.TempDir()
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, ref := range []string{
		"oci:" + filepath.Join(dir, "layout") + ":v1",
		"oci-archive:" + filepath.Join(dir, "a.tar") + ":v1",
		"docker-archive:" + filepath.Join(dir, "d.tar") + ":app:v1",
		host + "/team/app:v1",
	} {
		t.Run(strings.SplitN(ref, ":", 2)[0], func(t *testing.T) {
			r, err := imageref.Parse(ref)
			if err != nil {
				t.Fatal(err)
			}
			if err := output.Write(ctx, r, imageref.Artifact{Image: img}, output.Options{}); err != nil {
				t.Fatal(err)
			}
			a, err := imageref.Open(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			got, err := a.Image.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if r.Transport != imageref.DockerArchive && got != want {
				t.Errorf("digest %s, want %s", got, want)
			}
			if err := readLayers(a.Image); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestOpenDetectsCorruptBlob(t *testing.T) {
	ctx := context.Background()
	img := ociImage(t)
	dir := filepath.Join(t.TempDir(), "layout")
	r, _ := imageref.Parse("oci:" + dir + ":v1")
	if err := output.Write(ctx, r, imageref.Artifact{Image: img}, output.Options{}); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	changeBlob(t, dir, d)
	a, err := imageref.Open(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := readLayers(a.Image); !errors.Is(err, imageref.ErrDigestMismatch) {
		t.Errorf("err = %v, want a digest mismatch", err)
	}
}

func TestOpenNamesTags(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "layout")
	for _, tag := range []string{"a", "b"} {
		r, _ := imageref.Parse("oci:" + dir + ":" + tag)
		if err := output.Write(ctx, r, imageref.Artifact{Image: ociImage(t)}, output.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	for ref, want := range map[string]string{"oci:" + dir: "tags: a, b", "oci:" + dir + ":c": `no image tagged "c"`} {
		r, _ := imageref.Parse(ref)
		if _, err := imageref.Open(ctx, r); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", ref, err, want)
		}
	}
	// One image under two tags is one image: no tag is needed.
	same := filepath.Join(t.TempDir(), "same")
	img := ociImage(t)
	for _, tag := range []string{"v1", "latest"} {
		r, _ := imageref.Parse("oci:" + same + ":" + tag)
		if err := output.Write(ctx, r, imageref.Artifact{Image: img}, output.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := imageref.Parse("oci:" + same)
	a, err := imageref.Open(ctx, r)
	if err != nil {
		t.Fatalf("one image under two tags: %v", err)
	}
	if want, _ := img.Digest(); a.Descriptor.Digest != want {
		t.Errorf("opened %s, want %s", a.Descriptor.Digest, want)
	}
	a.Close()
}

// indexLayout writes a random index of two images to a layout, tagged v1.
func indexLayout(t *testing.T) (idx v1.ImageIndex, dir string, r imageref.Reference) {
	t.Helper()
	idx, err := random.Index(64, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(t.TempDir(), "layout")
	r, _ = imageref.Parse("oci:" + dir + ":v1")
	if err := output.Write(context.Background(), r, imageref.Artifact{Index: idx}, output.Options{}); err != nil {
		t.Fatal(err)
	}
	return idx, dir, r
}

// changeBlob flips a byte in the middle of blob h of the layout dir.
func changeBlob(t *testing.T, dir string, h v1.Hash) {
	t.Helper()
	p := filepath.Join(dir, "blobs", "sha256", h.Hex)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestReadManifests reads an index's manifests and configs whole, and
// finds an image's config changed on disk.
func TestReadManifests(t *testing.T) {
	ctx := context.Background()
	idx, dir, r := indexLayout(t)
	a, err := imageref.Open(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ReadManifests(); err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	img, _ := idx.Image(im.Manifests[1].Digest)
	cfg, _ := img.ConfigName()
	changeBlob(t, dir, cfg)
	if a, err = imageref.Open(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := a.ReadManifests(); !errors.Is(err, imageref.ErrDigestMismatch) {
		t.Errorf("a changed config: err = %v, want a digest mismatch", err)
	}
}

// TestValidate reads an index's blobs whole, layers too: a layer changed on
// disk is found by Validate, where ReadManifests, which reads no layer, does
// not see it; an image alone validates too.
func TestValidate(t *testing.T) {
	ctx := context.Background()
	idx, dir, r := indexLayout(t)
	a, err := imageref.Open(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Validate(); err != nil {
		t.Fatalf("a whole index: %v", err)
	}
	im, _ := idx.IndexManifest()
	img, _ := idx.Image(im.Manifests[1].Digest)
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	changeBlob(t, dir, d)
	if a, err = imageref.Open(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := a.ReadManifests(); err != nil {
		t.Errorf("ReadManifests reads no layer, yet: %v", err)
	}
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), im.Manifests[1].Digest.String()) {
		t.Errorf("a changed layer: err = %v, want one naming its image %s", err, im.Manifests[1].Digest)
	}
	one, err := imageref.ImageArtifact(ociImage(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := one.Validate(); err != nil {
		t.Errorf("an image: %v", err)
	}
}

// TestOpenUntaggedCountsSignedImage: cosign's layout format marks the last
// signed image's entry with kind …/image, and leaves an older signature's
// entry with only its sha256-<hex>.sig tag. Without a tag, the signed image
// still counts as an image and the signature does not: two images are
// ambiguous (it silently opened the unsigned one), and the tags offered
// are the images' only.
func TestOpenUntaggedCountsSignedImage(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "layout")
	for _, tag := range []string{"v1", "v2"} {
		r, _ := imageref.Parse("oci:" + dir + ":" + tag)
		if err := output.Write(ctx, r, imageref.Artifact{Image: ociImage(t)}, output.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "index.json")
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	sig := idx.Manifests[0] // any blob will do: only the annotations are read
	sig.Annotations = map[string]string{"org.opencontainers.image.ref.name": "sha256-" + strings.Repeat("ab", 32) + ".sig"}
	for i := range idx.Manifests {
		if idx.Manifests[i].Annotations["org.opencontainers.image.ref.name"] == "v2" {
			idx.Manifests[i].Annotations["kind"] = "dev.cosignproject.cosign/image"
		}
	}
	idx.Manifests = append(idx.Manifests, sig)
	raw, _ = json.Marshal(idx)
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	r, _ := imageref.Parse("oci:" + dir)
	a, err := imageref.Open(ctx, r)
	if err == nil {
		a.Close()
		t.Fatalf("opened %s; want an error naming the tags v1 and v2", a.Descriptor.Digest)
	}
	if want := "holds 2 images; name one with :TAG (tags: v1, v2)"; !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
}

// TestOpenNotLayoutNamesLayoutsInside: oci:out, where builds wrote the
// layouts out/app and out/web, is not a layout, and the error names the
// layouts in it; a missing directory says what an oci: reference names.
func TestOpenNotLayoutNamesLayoutsInside(t *testing.T) {
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "out")
	for _, name := range []string{"web", "app"} {
		r, _ := imageref.Parse("oci:" + filepath.Join(out, name) + ":v1")
		if err := output.Write(ctx, r, imageref.Artifact{Image: ociImage(t)}, output.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(out, "notes"), 0o755)
	for ref, want := range map[string]string{
		"oci:" + out:                         "not an OCI layout (no oci-layout file), but it holds the layouts app, web: name one, like oci:" + filepath.Join(out, "app"),
		"oci:" + filepath.Join(out, "notes"): "not an OCI layout (no oci-layout file)",
		"oci:" + filepath.Join(out, "none"):  "does not exist; an oci: reference names an OCI layout: a directory holding oci-layout",
	} {
		r, _ := imageref.Parse(ref)
		_, err := imageref.Open(ctx, r)
		if err == nil || fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want bad input holding %q", ref, err, want)
		}
	}
}
