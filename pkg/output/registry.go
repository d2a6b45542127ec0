package output

import (
	"context"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/reprobuild/repro/pkg/imageref"
)

// stageRegistry pushes a to the reference's repository by digest:
// blobs first, then manifests, then the index. Commit then points the tag
// at it, so a tag never names an image whose parts are missing.
// Credentials come from the docker config and its credential helpers.
func stageRegistry(ctx context.Context, ref imageref.Reference, a Artifact, opts Options) (Staged, error) {
	ro := append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, opts.Remote...)
	d, err := descriptor(a)
	if err != nil {
		if opts.Progress != nil {
			close(opts.Progress) // as a push would
		}
		return nil, err
	}
	byDigest := ref.Name.Context().Digest(d.Digest.String())
	push := ro
	if opts.Progress != nil {
		push = append(append([]remote.Option(nil), ro...), remote.WithProgress(opts.Progress))
	}
	if a.Index != nil {
		err = remote.WriteIndex(byDigest, a.Index, push...)
	} else {
		err = remote.Write(byDigest, a.Image, push...)
	}
	if err != nil {
		return nil, imageref.RegistryError(ref.Name.Context().RegistryStr(), "pushing to "+ref.Name.String(), err)
	}
	return &tagStage{ctx: ctx, ref: ref, a: a, opts: opts, ro: ro}, nil
}

type tagStage struct {
	ctx  context.Context
	ref  imageref.Reference
	a    Artifact
	opts Options
	ro   []remote.Option
}

func (t *tagStage) Commit() error {
	tag, ok := t.ref.Name.(name.Tag)
	if !ok {
		return nil // pushed by digest: nothing to point
	}
	var taggable remote.Taggable = t.a.Image
	if t.a.Index != nil {
		taggable = t.a.Index
	}
	if err := remote.Tag(tag, taggable, t.ro...); err != nil {
		return imageref.RegistryError(tag.RegistryStr(), "tagging "+tag.String(), err)
	}
	t.opts.Log.Info("pushed", "ref", tag.String())
	return nil
}

// Abort leaves the pushed blobs and manifests: untagged, the registry's
// garbage collection takes them.
func (t *tagStage) Abort() {}
