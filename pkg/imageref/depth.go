package imageref

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/reprobuild/repro/pkg/fault"
)

// MaxIndexDepth bounds how deep indexes may nest below the one a reference
// names: an index of images is depth 1, an index of such indexes 2. Real
// images nest at most 2 (a multi-platform index inside an index that adds
// attestations); 8 leaves room and keeps a hostile chain of thousands
// from being walked. Content addressing makes a cycle impossible when
// digests are checked, and they are; the limit bounds a cycle anyway.
const MaxIndexDepth = 8

// depthError is the error for indexes nested past MaxIndexDepth.
func depthError(top v1.Hash) error {
	return fault.Bad(fmt.Errorf("index %s nests indexes more than %d deep (repro's limit, imageref.MaxIndexDepth); name an image or an inner index of it by digest", top, MaxIndexDepth))
}

// CheckDepth reads idx and every index it nests, each once, and fails
// with exit 2 when they nest more than MaxIndexDepth deep. Images are not
// read.
func CheckDepth(idx v1.ImageIndex) error {
	top, err := idx.Digest()
	if err != nil {
		return fault.Op(err)
	}
	// checked[d] is the least depth d was found to fit at: found again
	// as deep or shallower, it still fits.
	checked := map[v1.Hash]int{}
	var walk func(x v1.ImageIndex, d v1.Hash, depth int) error
	walk = func(x v1.ImageIndex, d v1.Hash, depth int) error {
		if depth > MaxIndexDepth {
			return depthError(top)
		}
		if at, ok := checked[d]; ok && at <= depth {
			return nil
		}
		im, err := x.IndexManifest()
		if err != nil {
			return fault.Op(fmt.Errorf("reading index %s: %w", d, err))
		}
		for _, c := range im.Manifests {
			if !c.MediaType.IsIndex() {
				continue
			}
			if depth+1 > MaxIndexDepth {
				return depthError(top)
			}
			child, err := x.ImageIndex(c.Digest)
			if err != nil {
				return fault.Op(fmt.Errorf("reading index %s of index %s: %w", c.Digest, d, err))
			}
			if err := walk(child, c.Digest, depth+1); err != nil {
				return err
			}
		}
		checked[d] = depth
		return nil
	}
	return walk(idx, top, 1)
}

// IndexImage is one image an index holds, directly or in a nested index.
type IndexImage struct {
	// Descriptor is the image's entry in the index that lists it.
	Descriptor v1.Descriptor
	// Parent is the digest of the index that lists it.
	Parent v1.Hash
	parent v1.ImageIndex
	image  v1.Image
}

// Image opens the image.
func (i IndexImage) Image() (v1.Image, error) {
	if i.image != nil {
		return i.image, nil
	}
	return i.parent.Image(i.Descriptor.Digest)
}

// Images lists the images of a: those of an index in its order, each
// nested index's images in its place (an index listed twice, once); a itself when it
// is an image (with an empty Parent). Nesting past MaxIndexDepth is exit
// 2.
func (a Artifact) Images() ([]IndexImage, error) {
	if a.Index == nil {
		return []IndexImage{{Descriptor: a.Descriptor, image: a.Image}}, nil
	}
	top, err := a.Index.Digest()
	if err != nil {
		return nil, fault.Op(err)
	}
	var out []IndexImage
	seen := map[v1.Hash]bool{}
	var walk func(x v1.ImageIndex, d v1.Hash, depth int) error
	walk = func(x v1.ImageIndex, d v1.Hash, depth int) error {
		if depth > MaxIndexDepth {
			return depthError(top)
		}
		im, err := x.IndexManifest()
		if err != nil {
			return fault.Op(fmt.Errorf("reading index %s: %w", d, err))
		}
		for _, c := range im.Manifests {
			switch {
			case c.MediaType.IsImage():
				out = append(out, IndexImage{Descriptor: c, Parent: d, parent: x})
			case c.MediaType.IsIndex():
				if depth+1 > MaxIndexDepth {
					return depthError(top)
				}
				if seen[c.Digest] {
					continue // listed twice: its images are listed once
				}
				seen[c.Digest] = true
				child, err := x.ImageIndex(c.Digest)
				if err != nil {
					return fault.Op(fmt.Errorf("reading index %s of index %s: %w", c.Digest, d, err))
				}
				if err := walk(child, c.Digest, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(a.Index, top, 1); err != nil {
		return nil, err
	}
	return out, nil
}
