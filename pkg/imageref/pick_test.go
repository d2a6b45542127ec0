package imageref

import (
	"errors"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/reprobuild/repro/pkg/fault"
)

func TestPick(t *testing.T) {
	var idx v1.ImageIndex = empty.Index
	imgs := map[string]v1.Image{}
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}} {
		img, err := random.Image(64, 1)
		if err != nil {
			t.Fatal(err)
		}
		imgs[PlatformName(p)] = img
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	a := Artifact{Index: idx}
	for _, c := range []struct {
		platform, host, want string
		byHost               bool
	}{
		{"linux/arm64/v8", "linux/amd64", "linux/arm64/v8", false},
		{"", "linux/amd64", "linux/amd64", true},
		{"", "linux/arm64", "linux/arm64/v8", true},
	} {
		p, err := a.Pick(c.platform, c.host)
		if err != nil {
			t.Fatalf("Pick(%q, %q): %v", c.platform, c.host, err)
		}
		wd, _ := imgs[c.want].Digest()
		gd, _ := p.Image.Digest()
		if p.Platform != c.want || gd != wd || p.ByHost != c.byHost || p.Index == "" || len(p.Platforms) != 2 {
			t.Errorf("Pick(%q, %q) = %+v, want the %s image (by host %v)", c.platform, c.host, p, c.want, c.byHost)
		}
	}
	if _, err := a.Pick("", "linux/s390x"); !errors.Is(err, ErrSeveralImages) || fault.KindOf(err) != fault.BadInput {
		t.Errorf("several, none the host's: %v", err)
	}
	if _, err := a.Pick("linux/ppc64le", "linux/amd64"); err == nil || fault.KindOf(err) != fault.BadInput {
		t.Errorf("a platform the index lacks: %v", err)
	}
	one := Artifact{Image: imgs["linux/amd64"]}
	if p, err := one.Pick("", "linux/arm64"); err != nil || p.Image != one.Image || p.Index != "" {
		t.Errorf("an image: %+v, %v", p, err)
	}
}

// TestPlatformImages lists an index's images in its order, or those of
// one platform, and an image with its config's platform.
func TestPlatformImages(t *testing.T) {
	var idx v1.ImageIndex = empty.Index
	var want []string
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "arm64", Variant: "v8"}, {OS: "linux", Architecture: "amd64"}} {
		img, err := random.Image(64, 1)
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
		d, _ := img.Digest()
		want = append(want, PlatformName(p)+" "+d.String())
	}
	names := func(imgs []PlatformImage) []string {
		var out []string
		for _, i := range imgs {
			d, _ := i.Image.Digest()
			out = append(out, i.Platform+" "+d.String())
		}
		return out
	}
	a := Artifact{Index: idx}
	for platform, w := range map[string][]string{"": want, "linux/amd64": want[1:], "linux/s390x": nil} {
		imgs, err := a.PlatformImages(platform)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(imgs); !slices.Equal(got, w) {
			t.Errorf("PlatformImages(%q) = %v, want %v", platform, got, w)
		}
	}
	img, _ := random.Image(64, 1)
	cf, _ := img.ConfigFile()
	cf.OS, cf.Architecture = "linux", "riscv64"
	img, _ = mutate.ConfigFile(img, cf)
	imgs, err := Artifact{Image: img}.PlatformImages("")
	if err != nil || len(imgs) != 1 || imgs[0].Platform != "linux/riscv64" || imgs[0].Image != img {
		t.Errorf("an image: %v, %+v", err, imgs)
	}
}
