package output

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
)

func ociImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	return img
}

func mustRef(t *testing.T, s string) imageref.Reference {
	r, err := imageref.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func readIndexJSON(t *testing.T, dir string) ocispec.Index {
	raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	return idx
}

func TestLayoutKeepsOtherImagesAndReplacesTag(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "layout")
	a, b, c := ociImage(t), ociImage(t), ociImage(t)
	for _, step := range []struct {
		img v1.Image
		tag string
	}{{a, "a"}, {b, "b"}, {c, "a"}} {
		if err := Write(ctx, mustRef(t, "oci:"+dir+":"+step.tag), imageref.Artifact{Image: step.img}, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	idx := readIndexJSON(t, dir)
	got := map[string]string{}
	for _, d := range idx.Manifests {
		got[d.Annotations[ocispec.AnnotationRefName]] = d.Digest.String()
	}
	db, _ := b.Digest()
	dc, _ := c.Digest()
	if len(idx.Manifests) != 2 || got["b"] != db.String() || got["a"] != dc.String() {
		t.Errorf("index.json: %v", got)
	}
	// go-containerregistry reads the layout back and verifies the image.
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := p.Image(dc)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, rc)
		rc.Close()
	}
	// Nothing temporary is left.
	entries, _ := os.ReadDir(filepath.Dir(dir))
	blobs, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	for _, e := range append(entries, blobs...) {
		if strings.Contains(e.Name(), "tmp") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestLayoutRefusesForeignDirectory(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)
	err := Write(context.Background(), mustRef(t, "oci:"+dir), imageref.Artifact{Image: ociImage(t)}, Options{})
	if fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), "not an OCI layout") {
		t.Errorf("err = %v", err)
	}
}

func TestArchivesAreReproducibleAndReadable(t *testing.T) {
	ctx := context.Background()
	img := ociImage(t)
	d, _ := img.Digest()
	dir := t.TempDir()
	var first []byte
	for i := 0; i < 2; i++ {
		f := filepath.Join(dir, "img.tar")
		if err := Write(ctx, mustRef(t, "docker-archive:"+f+":example.com/app:v1"), imageref.Artifact{Image: img}, Options{}); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(f)
		if i == 0 {
			first = b
		} else if string(b) != string(first) {
			t.Error("docker-archive differs between two writes")
		}
	}
	back, err := tarball.ImageFromPath(filepath.Join(dir, "img.tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cn, _ := back.ConfigName()
	want, _ := img.ConfigName()
	if cn != want {
		t.Errorf("docker-archive config %s, want %s", cn, want)
	}

	arch := filepath.Join(dir, "oci.tar")
	if err := Write(ctx, mustRef(t, "oci-archive:"+arch+":v1"), imageref.Artifact{Image: img}, Options{}); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(arch)
	defer f.Close()
	tr := tar.NewReader(f)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == "index.json" {
			raw, _ := io.ReadAll(tr)
			if !strings.Contains(string(raw), d.String()) || !strings.Contains(string(raw), `"org.opencontainers.image.ref.name":"v1"`) {
				t.Errorf("index.json %s", raw)
			}
		}
	}
	if names[0] != "blobs/" || names[len(names)-1] != "oci-layout" {
		t.Errorf("archive entries %v", names)
	}
}

func TestDockerArchiveRefusesIndex(t *testing.T) {
	idx, err := random.Index(64, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	err = Write(context.Background(), mustRef(t, "docker-archive:"+filepath.Join(t.TempDir(), "x.tar")), imageref.Artifact{Index: idx}, Options{DockerRef: "x:latest"})
	if fault.KindOf(err) != fault.BadInput || !errors.Is(err, ErrOnePlatform) || strings.Contains(err.Error(), "--") {
		t.Errorf("err = %v", err)
	}
}

// flippedLayer claims its layer's digest and size but serves other bytes,
// as a layer cache blob changed on disk would (a local hit is not hashed
// before it is written out).
type flippedLayer struct{ v1.Layer }

func (l flippedLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	b[len(b)/2] ^= 1
	return io.NopCloser(strings.NewReader(string(b))), nil
}

// TestFileOutputsCheckBlobDigests: every file output hashes each blob as
// it writes it, and one whose bytes are not its digest's fails the write
// and leaves nothing.
func TestFileOutputsCheckBlobDigests(t *testing.T) {
	ctx := context.Background()
	l, err := random.Layer(4096, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(ociImage(t), flippedLayer{l})
	if err != nil {
		t.Fatal(err)
	}
	ld, _ := l.Digest()
	dir := t.TempDir()
	for _, ref := range []string{
		"oci:" + filepath.Join(dir, "layout") + ":v1",
		"oci-archive:" + filepath.Join(dir, "oci.tar") + ":v1",
		"docker-archive:" + filepath.Join(dir, "docker.tar") + ":example.com/app:v1",
	} {
		err := Write(ctx, mustRef(t, ref), imageref.Artifact{Image: img}, Options{})
		if err == nil || !strings.Contains(err.Error(), ld.String()) {
			t.Errorf("%s: a blob with other bytes than its digest's: %v", ref, err)
		}
	}
	if des, _ := os.ReadDir(dir); len(des) != 0 {
		t.Errorf("failed writes left %v", des)
	}
}
