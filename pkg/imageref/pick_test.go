package imageref

import (
	"errors"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
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
			if i.Descriptor.Digest != d {
				t.Errorf("%s: the descriptor names %s, the image is %s", i.Platform, i.Descriptor.Digest, d)
			}
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
	ia, err := ImageArtifact(img)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := ia.PlatformImages("")
	if d, _ := img.Digest(); err != nil || len(imgs) != 1 || imgs[0].Platform != "linux/riscv64" || imgs[0].Image != img || imgs[0].Descriptor.Digest != d {
		t.Errorf("an image: %v, %+v", err, imgs)
	}
}

// TestPlatformNamesMatchAsSpecsWriteThem: an index entry with an
// os.version (a Windows image) and one in a nested index are found by the
// name a spec or --platform writes. This is why PlatformImages and Pick do
// not use partial.FindImages with match.Platforms, which find neither.
func TestPlatformNamesMatchAsSpecsWriteThem(t *testing.T) {
	win := v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.1234"}
	arm := v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	wimg, _ := random.Image(64, 1)
	aimg, _ := random.Image(64, 1)
	inner := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: aimg, Descriptor: v1.Descriptor{Platform: &arm}})
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: wimg, Descriptor: v1.Descriptor{Platform: &win}},
		mutate.IndexAddendum{Add: inner})
	a := Artifact{Index: idx}
	for name, want := range map[string]v1.Image{"windows/amd64": wimg, "linux/arm64/v8": aimg} {
		imgs, err := a.PlatformImages(name)
		if err != nil || len(imgs) != 1 || imgs[0].Image != want {
			t.Errorf("PlatformImages(%q) = %+v, %v; want the one image", name, imgs, err)
		}
		p, err := a.Pick(name, "linux/amd64")
		if wd, _ := want.Digest(); err != nil {
			t.Errorf("Pick(%q): %v", name, err)
		} else if gd, _ := p.Image.Digest(); gd != wd {
			t.Errorf("Pick(%q) chose %s, want %s", name, gd, wd)
		}
	}
	// What go-containerregistry's matcher would find: nothing.
	for _, p := range []v1.Platform{{OS: "windows", Architecture: "amd64"}, arm} {
		if got, err := partial.FindImages(idx, match.Platforms(p)); err != nil || len(got) != 0 {
			t.Errorf("partial.FindImages(%s) = %d images, %v: go-containerregistry now finds it, and imageref could use it", p, len(got), err)
		}
	}
}

// TestTop: an artifact's top manifest is its index, or its image, or nil.
func TestTop(t *testing.T) {
	img, _ := random.Image(64, 1)
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img})
	if got := (Artifact{Image: img}).Top(); got != img {
		t.Errorf("an image's top is %v", got)
	}
	if got := (Artifact{Image: img, Index: idx}).Top(); got != idx {
		t.Errorf("an index's top is %v", got)
	}
	if got := (Artifact{}).Top(); got != nil {
		t.Errorf("an empty artifact's top is %v, want nil", got)
	}
}
