package imageref

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
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
