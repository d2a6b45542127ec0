package imageref

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// ImageArtifact is img as an Artifact, with its descriptor.
func ImageArtifact(img v1.Image) (Artifact, error) {
	d, err := partial.Descriptor(img)
	if err != nil {
		return Artifact{}, err
	}
	return Artifact{Descriptor: *d, Image: img}, nil
}

// IndexArtifact is idx as an Artifact, with its descriptor.
func IndexArtifact(idx v1.ImageIndex) (Artifact, error) {
	d, err := partial.Descriptor(idx)
	if err != nil {
		return Artifact{}, err
	}
	return Artifact{Descriptor: *d, Index: idx}, nil
}

// Manifest is what an image and an index both are: a manifest, with its
// digest, size and media type.
type Manifest interface {
	partial.Describable
	RawManifest() ([]byte, error)
}

// Top is a's index, or its image: the manifest its reference names (nil
// when a holds neither).
func (a Artifact) Top() Manifest {
	if a.Index != nil {
		return a.Index
	}
	if a.Image != nil {
		return a.Image
	}
	return nil
}

// ReadManifests reads a's manifest or index, and each image's manifest
// and config, each checked against its digest as it is read: whether a is
// there whole, short of its layers (a signature vouches for manifests).
func (a *Artifact) ReadManifests() error {
	images := []v1.Image{a.Image}
	if a.Index != nil {
		all, err := a.Images() // nested indexes too, to MaxIndexDepth
		if err != nil {
			return err
		}
		images = images[:0]
		for _, ii := range all {
			img, err := ii.Image()
			if err != nil {
				return err
			}
			images = append(images, img)
		}
	}
	for _, img := range images {
		if _, err := img.RawManifest(); err != nil {
			return err
		}
		if _, err := img.RawConfigFile(); err != nil {
			return err
		}
	}
	return nil
}

// Validate reads every blob of a, layers too (ReadManifests reads all but
// the layers), and checks each against its digest and size: whether a is
// there whole. go-containerregistry's validate.Index for an index (its
// nested indexes too), validate.Image for an image.
func (a Artifact) Validate() error {
	if a.Index != nil {
		return validate.Index(a.Index)
	}
	return validate.Image(a.Image)
}

// PlatformImage is one image of an artifact, opened, with its platform's
// name (PlatformName's form; empty for an index entry that names none).
type PlatformImage struct {
	Platform string
	// Descriptor is the image's entry in the index that lists it, or the
	// artifact's own descriptor for an image.
	Descriptor v1.Descriptor
	Image      v1.Image
}

// PlatformImages are a's images (Images: nested indexes too, in their
// place), opened and named by platform; only those of platform when one
// is given (none may be). An image is named by its config's platform, and
// is not checked against platform.
//
// Not partial.FindImages with match.Platforms: FindImages reads only the
// top index (an index that nests one, as an index with attestations does,
// would show none of its images), and returns no descriptors to name an
// image by; match.Platforms compares whole platforms (v1.Platform.Equals),
// so "windows/amd64" would not find an entry whose os.version is set. A
// name here is PlatformName's, as specs, locks and --platform write it.
func (a Artifact) PlatformImages(platform string) ([]PlatformImage, error) {
	if a.Index == nil {
		cf, err := a.Image.ConfigFile()
		if err != nil {
			return nil, err
		}
		return []PlatformImage{{PlatformName(ConfigPlatform(cf)), a.Descriptor, a.Image}}, nil
	}
	all, err := a.Images()
	if err != nil {
		return nil, err
	}
	var imgs []PlatformImage
	for _, ii := range all {
		d := ii.Descriptor
		name := ""
		if d.Platform != nil {
			name = PlatformName(*d.Platform)
		}
		if platform != "" && name != platform {
			continue
		}
		img, err := ii.Image()
		if err != nil {
			return nil, fmt.Errorf("reading image %s of index %s: %w", d.Digest, ii.Parent, err)
		}
		imgs = append(imgs, PlatformImage{name, d, img})
	}
	return imgs, nil
}
