package imageref

import (
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/reprobuild/repro/pkg/fault"
)

// ErrSeveralImages is wrapped by Pick's error for an index of several
// images when no platform was asked for and none is the host's: the caller
// has to choose one.
var ErrSeveralImages = errors.New("several images, none of them the host's")

// Picked is the image Pick chose.
type Picked struct {
	Image v1.Image
	// Index is the digest of the index it was chosen from; empty for an
	// image.
	Index string
	// Platform is the image's platform when it was chosen from an index.
	Platform string
	// ByHost says that the index held several images and the host's
	// platform chose among them.
	ByHost bool
	// Platforms are the index's image platforms, in its order.
	Platforms []string
}

// Pick chooses one image of a: the image itself (which must be of
// platform, when one is given), or the index's image of platform (a name
// as PlatformName writes it). With no platform, an index of one image
// gives that one, and an index of several the one of host (such as
// "linux/" + runtime.GOARCH, any variant), as podman and docker choose.
//
// Not match.Platforms over partial.FindImages: the host matches any
// variant of its architecture (match.Platforms compares whole platforms,
// os.version and features too), an index that nests indexes is searched to
// MaxIndexDepth (FindImages reads the top index only), and no image is
// opened before one is chosen.
func (a Artifact) Pick(platform, host string) (Picked, error) {
	if a.Index == nil {
		if platform != "" {
			cf, err := a.Image.ConfigFile()
			if err != nil {
				return Picked{}, fault.Op(err)
			}
			if got := PlatformName(ConfigPlatform(cf)); got != platform {
				return Picked{}, fault.Bad(fmt.Errorf("a %s image, not %s", got, platform))
			}
		}
		return Picked{Image: a.Image}, nil
	}
	d, err := a.Index.Digest()
	if err != nil {
		return Picked{}, fault.Op(err)
	}
	all, err := a.Images()
	if err != nil {
		return Picked{}, err
	}
	p := Picked{Index: d.String()}
	var match []IndexImage
	for _, ii := range all {
		m := ii.Descriptor
		if m.Platform == nil {
			continue
		}
		name := PlatformName(*m.Platform)
		p.Platforms = append(p.Platforms, name)
		if platform == "" || name == platform {
			match = append(match, ii)
		}
	}
	switch {
	case len(match) == 0 && platform != "":
		if len(p.Platforms) == 0 {
			return Picked{}, fault.Bad(fmt.Errorf("no %s image: neither the index nor an index it nests lists an image with a platform", platform))
		}
		return Picked{}, fault.Bad(fmt.Errorf("no %s image (it has %s)", platform, strings.Join(p.Platforms, ", ")))
	case len(match) == 0:
		return Picked{}, fault.Bad(errors.New("an index that holds no image"))
	case len(match) > 1:
		var hosts []IndexImage
		for _, m := range match {
			if n := PlatformName(*m.Descriptor.Platform); n == host || strings.HasPrefix(n, host+"/") {
				hosts = append(hosts, m)
			}
		}
		if len(hosts) != 1 {
			return Picked{}, fault.Bad(fmt.Errorf("an index of %s: %w", strings.Join(p.Platforms, ", "), ErrSeveralImages))
		}
		match, p.ByHost = hosts, true
	}
	p.Platform = PlatformName(*match[0].Descriptor.Platform)
	if p.Image, err = match[0].Image(); err != nil {
		return Picked{}, fault.Op(err)
	}
	return p, nil
}
