package imageref_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"

	"github.com/reprobuild/repro/pkg/imageref"
)

// TestSummarize: an image's digest, manifest and config as stored and each
// layer's descriptor, in inspect --json's key order; an image of no layers
// has an empty list, not null.
func TestSummarize(t *testing.T) {
	img := ociImage(t)
	s, err := imageref.Summarize(img)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	m, _ := img.RawManifest()
	c, _ := img.RawConfigFile()
	if s.Digest != d.String() || !bytes.Equal(s.Manifest, m) || !bytes.Equal(s.Config, c) {
		t.Errorf("summary %s, want %s with its manifest and config as stored", s.Digest, d)
	}
	layers, _ := img.Layers()
	if len(s.Layers) != len(layers) {
		t.Fatalf("%d layers, want %d", len(s.Layers), len(layers))
	}
	for i, l := range layers {
		ld, _ := l.Digest()
		id, _ := l.DiffID()
		size, _ := l.Size()
		mt, _ := l.MediaType()
		want := imageref.LayerSummary{Digest: ld.String(), DiffID: id.String(), Size: size, MediaType: string(mt)}
		if s.Layers[i] != want {
			t.Errorf("layer %d: %+v, want %+v", i, s.Layers[i], want)
		}
	}
	b, err := json.Marshal(s.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"digest":"` + s.Layers[0].Digest + `","diffID":"` + s.Layers[0].DiffID + `","size":`; !bytes.HasPrefix(b, []byte(want)) {
		t.Errorf("layer JSON %s, want it to start %s", b, want)
	}

	s, err = imageref.Summarize(empty.Image)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(s); !bytes.HasSuffix(b, []byte(`,"layers":[]}`)) || !bytes.HasPrefix(b, []byte(`{"digest":`)) {
		t.Errorf("an image of no layers: %s, want digest first and an empty layer list last", b)
	}
}
