package output

import (
	"context"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/layout"
)

// stageLayout adds a to the OCI layout at dir under tag, replacing any
// image that had that tag and keeping every other. The blobs are staged
// (package layout) where no gc can take them; Commit moves them in and
// swaps index.json, under the layout's lock.
func stageLayout(ctx context.Context, dir, tag string, a imageref.Artifact) (Staged, error) {
	bs, err := blobs(a)
	if err != nil {
		return nil, err
	}
	desc, err := descriptor(a)
	if err != nil {
		return nil, err
	}
	entry := ocispec.Descriptor{
		MediaType:   string(desc.MediaType),
		Digest:      digest.Digest(desc.Digest.String()),
		Size:        desc.Size,
		Annotations: map[string]string{ocispec.AnnotationRefName: tag},
	}
	st, err := layout.NewStage(ctx, dir)
	if err != nil {
		return nil, err
	}
	for _, b := range bs {
		if err := st.Put(ctx, digest.Digest(b.digest.String()), b.size, b.open); err != nil {
			st.Abort()
			return nil, err
		}
	}
	return &layoutStage{st: st, entry: entry}, nil
}

// layoutStage is a's blobs staged for a layout: Commit makes them the
// layout's and tags the entry.
type layoutStage struct {
	st    *layout.Stage
	entry ocispec.Descriptor
}

// Commit is not cancelled: it is renames and an index.json swap, once
// the layout's lock is free.
func (s *layoutStage) Commit() error {
	return s.st.Commit(context.Background(), func(idx *layout.Index) error {
		idx.SchemaVersion, idx.MediaType = 2, ocispec.MediaTypeImageIndex
		idx.SetTag(s.entry)
		return nil
	})
}

func (s *layoutStage) Abort() { s.st.Abort() }
