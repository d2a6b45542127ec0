package output

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/reprobuild/repro/pkg/imageref"
)

// TestWriteAllWritesNoneWhenOneFails stages a layout and an archive, then
// fails on a foreign directory: neither of the first two is left written.
func TestWriteAllWritesNoneWhenOneFails(t *testing.T) {
	dir := t.TempDir()
	foreign := filepath.Join(dir, "foreign")
	os.Mkdir(foreign, 0o755)
	os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("mine"), 0o644)
	lay, tarFile := filepath.Join(dir, "layout"), filepath.Join(dir, "x.tar")
	refs := []imageref.Reference{mustRef(t, "oci:"+lay), mustRef(t, "oci-archive:"+tarFile), mustRef(t, "oci:"+foreign)}
	a := imageref.Artifact{Image: ociImage(t)}
	err := WriteAll(context.Background(), refs, a, Options{}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "writing oci:"+foreign+": ") || !strings.Contains(err.Error(), "not an OCI layout") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(lay, "index.json")); !os.IsNotExist(err) {
		t.Errorf("the layout has an index.json after a failed transaction (stat: %v)", err)
	}
	if _, err := os.Stat(tarFile); !os.IsNotExist(err) {
		t.Errorf("the archive exists after a failed transaction (stat: %v)", err)
	}

	// Without the foreign output, both are written; a watch is asked only
	// for registry outputs.
	watched := 0
	watch := func(imageref.Reference) (func(BlobEvent), func()) { watched++; return nil, nil }
	if err := WriteAll(context.Background(), refs[:2], a, Options{}, watch); err != nil {
		t.Fatal(err)
	}
	if got := readIndexJSON(t, lay); len(got.Manifests) != 1 {
		t.Errorf("the layout lists %d manifests, want 1", len(got.Manifests))
	}
	if _, err := os.Stat(tarFile); err != nil {
		t.Error(err)
	}
	if watched != 0 {
		t.Errorf("watch asked %d times for outputs that are no registry", watched)
	}
}

// TestWriteAllChecksBeforeWriting refuses an index for a docker-archive
// before the layout ahead of it is staged.
func TestWriteAllChecksBeforeWriting(t *testing.T) {
	dir := t.TempDir()
	ri, err := random.Index(64, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	idx := imageref.Artifact{Index: ri}
	lay := filepath.Join(dir, "layout")
	refs := []imageref.Reference{mustRef(t, "oci:"+lay), mustRef(t, "docker-archive:"+filepath.Join(dir, "x.tar"))}
	if err := WriteAll(context.Background(), refs, idx, Options{DockerRef: "x:latest"}, nil); err == nil || strings.HasPrefix(err.Error(), "writing") {
		t.Fatalf("err = %v; want Check's error, unwrapped", err)
	}
	if _, err := os.Stat(lay); !os.IsNotExist(err) {
		t.Errorf("the layout was made before the check failed (stat: %v)", err)
	}
}
