package output

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/reprobuild/repro/pkg/imageref"
)

// stageRegistry pushes a to the reference's repository by digest:
// blobs first, then manifests, then the index. Commit then points the tag
// at it, so a tag never names an image whose parts are missing.
// Credentials come from the docker config and its credential helpers.
// Blobs the registry has are skipped; a layer that names its repository
// in the same registry (a *remote.MountableLayer, as base layers pulled
// from a registry are) is mounted from there rather than uploaded.
func stageRegistry(ctx context.Context, ref imageref.Reference, a imageref.Artifact, opts Options) (Staged, error) {
	common := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	ro := slices.Concat(common, opts.Remote)
	if opts.Transport != nil {
		ro = append(ro, remote.WithTransport(opts.Transport))
	}
	d, err := descriptor(a)
	if err != nil {
		return nil, err
	}
	byDigest := ref.Name.Context().Digest(d.Digest.String())
	p := &pusher{target: ref.Name.Context(), progress: opts.Progress}
	push := ro
	if opts.Progress != nil {
		all, err := blobs(a)
		if err != nil {
			return nil, err
		}
		p.sizes = map[v1.Hash]int64{}
		for _, b := range all {
			p.sizes[b.digest] = b.size
		}
		// The observer goes over opts.Transport and after the caller's
		// options, so a transport among them does not replace it.
		next := opts.Transport
		if next == nil {
			next = remote.DefaultTransport
		}
		obs := remote.WithTransport(&observer{next: next, p: p})
		push = slices.Concat(ro, []remote.Option{obs})
	}
	pa := p.artifact(a)
	for try := 1; ; try++ {
		if pa.Index != nil {
			err = remote.WriteIndex(byDigest, pa.Index, push...)
		} else {
			err = remote.Write(byDigest, pa.Image, push...)
		}
		if err == nil || try == manifestTries || !manifestBlobUnknown(err) || sleep(ctx, time.Duration(try)*manifestRetryPause) != nil {
			break
		}
		opts.Log.Warn("the registry did not yet know a blob it had accepted; pushing again", "ref", ref.Name.String(), "try", try+1)
	}
	p.close()
	if err != nil {
		return nil, imageref.RegistryError(ref.Name.Context().RegistryStr(), "pushing to "+ref.Name.String(), err)
	}
	return &tagStage{ctx: ctx, ref: ref, a: a, opts: opts, ro: ro}, nil
}

type tagStage struct {
	ctx  context.Context
	ref  imageref.Reference
	a    imageref.Artifact
	opts Options
	ro   []remote.Option
}

func (t *tagStage) Commit() error {
	tag, ok := t.ref.Name.(name.Tag)
	if !ok {
		return nil // pushed by digest: nothing to point
	}
	if err := remote.Tag(tag, t.a.Top(), t.ro...); err != nil {
		return imageref.RegistryError(tag.RegistryStr(), "tagging "+tag.String(), err)
	}
	t.opts.Log.Info("pushed", "ref", tag.String())
	return nil
}

// Abort leaves the pushed blobs and manifests: untagged, the registry's
// garbage collection takes them.
func (t *tagStage) Abort() {}

// manifestTries bounds how often a push is tried again when the registry
// refuses its manifest for a blob it has just accepted. docker-registry
// (distribution) rewrites a repository's blob link in place, so two
// pushes of one blob at once, as a fleet of runners sharing a layer
// makes, can leave the manifest PUT reading a half-written link:
// MANIFEST_BLOB_UNKNOWN (with DIGEST_INVALID) although the blob is there
// (moby/moby#22854, containerd/nerdctl#2404). Pushing again HEADs every
// blob and uploads only what is still missing.
const (
	manifestTries      = 3
	manifestRetryPause = 500 * time.Millisecond
)

func manifestBlobUnknown(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	for _, d := range te.Errors {
		if d.Code == transport.ManifestBlobUnknownErrorCode {
			return true
		}
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
