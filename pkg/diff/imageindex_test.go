package diff

import (
	"context"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/pkg/imageref"
)

// TestImageAgainstIndex: an image compared with an index of two platforms
// is compared with the index's image of its platform, and the report says
// that one is an image and the other an index of more platforms. It said
// only that the digests differ, and "linux/amd64: identical", with no
// word of the index's other platform.
func TestImageAgainstIndex(t *testing.T) {
	amd := imageOf(t, nil, layerFrom(t, tarOf(t, baseFiles...), 6))
	arm := imageOf(t, []string{"A=1"})
	cf, _ := arm.Image.ConfigFile()
	cf = cf.DeepCopy()
	cf.Architecture = "arm64"
	armImg, err := mutate.ConfigFile(arm.Image, cf)
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx,
		mutate.IndexAddendum{Add: amd.Image, Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: armImg, Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	d, err := partial.Descriptor(idx)
	if err != nil {
		t.Fatal(err)
	}
	b := &imageref.Artifact{Descriptor: *d, Index: idx}
	r, err := Compare(context.Background(), amd, b, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	r.WriteText(&text)
	for _, want := range []string{
		`mediaType: "application/vnd.oci.image.manifest.v1+json" -> "application/vnd.oci.image.index.v1+json"`,
		`platforms: ["linux/amd64"] -> ["linux/amd64","linux/arm64"]`,
		"linux/amd64: identical",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, text.String())
		}
	}
	if r.Identical {
		t.Error("an image and an index reported identical")
	}
}
