package build

import (
	"bytes"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/internal/canonical"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/output"
	"github.com/reprobuild/repro/pkg/spec"
)

// image is a built image: raw manifest and config, and layer files.
type image struct {
	manifest []byte
	config   []byte
	layers   []v1.Layer
}

var _ partial.CompressedImageCore = (*image)(nil)

func newImage(cfg *ocispec.Image, layers []v1.Layer, annotations map[string]string) (v1.Image, error) {
	rawCfg, err := canonical.JSON(cfg)
	if err != nil {
		return nil, err
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageConfig,
			Digest:    digest.FromBytes(rawCfg),
			Size:      int64(len(rawCfg)),
		},
		Layers:      []ocispec.Descriptor{},
		Annotations: annotations,
	}
	for _, l := range layers {
		d, err := partial.Descriptor(l)
		if err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: string(d.MediaType), Digest: digest.Digest(d.Digest.String()), Size: d.Size})
	}
	raw, err := canonical.JSON(m)
	if err != nil {
		return nil, err
	}
	img, err := partial.CompressedToImage(&image{manifest: raw, config: rawCfg, layers: layers})
	if err != nil {
		return nil, err
	}
	// A registry base's layers name their repository, for a push to mount
	// them; output keeps them recognisable through partial's wrapping.
	return output.KeepMountable(img, layers), nil
}

func (i *image) RawConfigFile() ([]byte, error) { return i.config, nil }
func (i *image) RawManifest() ([]byte, error)   { return i.manifest, nil }
func (i *image) MediaType() (types.MediaType, error) {
	return types.OCIManifestSchema1, nil
}

func (i *image) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, l := range i.layers {
		if d, _ := l.Digest(); d == h {
			return l, nil
		}
	}
	if d, _ := partial.ConfigName(i); d == h {
		return partial.ConfigLayer(i)
	}
	return nil, fmt.Errorf("blob %s is not in this image", h)
}

// index is a built multi-platform image index.
type index struct {
	raw    []byte
	images map[v1.Hash]v1.Image
}

var _ v1.ImageIndex = (*index)(nil)

// index is the index of imgs, the images of plats (in that order).
func (b *builder) index(plats []spec.Platform, imgs []v1.Image) (v1.ImageIndex, error) {
	ann, err := b.annotations()
	if err != nil {
		return nil, err
	}
	idx := ocispec.Index{
		Versioned:   specs.Versioned{SchemaVersion: 2},
		MediaType:   ocispec.MediaTypeImageIndex,
		Manifests:   []ocispec.Descriptor{},
		Annotations: ann,
	}
	images := map[v1.Hash]v1.Image{}
	for i, p := range plats {
		d, err := imgs[i].Digest()
		if err != nil {
			return nil, fault.Op(fmt.Errorf("the %s image: %w", p, err))
		}
		size, err := imgs[i].Size()
		if err != nil {
			return nil, fault.Op(fmt.Errorf("the %s image: %w", p, err))
		}
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageManifest,
			Digest:    digest.Digest(d.String()),
			Size:      size,
			Platform:  &ocispec.Platform{Architecture: p.Arch, OS: p.OS, Variant: p.Variant},
		})
		images[d] = imgs[i]
	}
	raw, err := canonical.JSON(idx)
	if err != nil {
		return nil, err
	}
	return &index{raw: raw, images: images}, nil
}

func (x *index) MediaType() (types.MediaType, error) { return types.OCIImageIndex, nil }
func (x *index) Digest() (v1.Hash, error)            { return partial.Digest(x) }
func (x *index) Size() (int64, error)                { return partial.Size(x) }
func (x *index) RawManifest() ([]byte, error)        { return x.raw, nil }
func (x *index) IndexManifest() (*v1.IndexManifest, error) {
	return v1.ParseIndexManifest(bytes.NewReader(x.raw))
}
func (x *index) Image(h v1.Hash) (v1.Image, error) {
	if img, ok := x.images[h]; ok {
		return img, nil
	}
	return nil, fmt.Errorf("image %s is not in this index", h)
}
func (x *index) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	return nil, fmt.Errorf("index %s holds no nested index", h)
}
