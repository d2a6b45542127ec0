package gc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
)

// Registry collects a registry repository: every tag is listed and read;
// the manifests of the images that go are deleted through the registry
// API (by digest, which removes every tag naming them), then the
// manifests of deleted indexes that nothing kept uses, then the
// signatures, attestations and SBOMs (cosign's sha256-<hex>.sig/.att/.sbom
// tags) of what went. The registry must allow deletes (docker-registry:
// storage.delete.enabled: true); the blobs are its own garbage
// collector's to remove.
func Registry(ctx context.Context, repo name.Repository, o Options) (*Report, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	reg := &registry{repo: repo, opts: append([]remote.Option{remote.WithContext(ctx)}, o.Remote...), log: o.Log}
	host := repo.RegistryStr()
	tags, err := remote.List(repo, reg.opts...)
	if err != nil {
		return nil, imageref.RegistryError(host, "listing the tags of "+repo.String(), err)
	}
	sort.Strings(tags)
	var units []*unit
	byDigest := map[v1.Hash]*unit{}
	raws := map[v1.Hash][]byte{}
	for _, t := range tags {
		desc, err := remote.Get(repo.Tag(t), reg.opts...)
		if err != nil {
			return nil, imageref.RegistryError(host, "reading "+repo.Tag(t).String(), err)
		}
		u := byDigest[desc.Digest]
		if u == nil {
			u = &unit{digest: desc.Digest, mediaType: string(desc.MediaType)}
			byDigest[desc.Digest] = u
			units = append(units, u)
			raws[desc.Digest] = desc.Manifest
		}
		u.tags = append(u.tags, t)
	}
	for _, u := range units {
		if err := checkDepth(reg, u.digest, raws[u.digest]); err != nil {
			return nil, fmt.Errorf("%s: %w", repo, err)
		}
	}
	for _, u := range units {
		u.classifyTags()
		describe(u, raws[u.digest], reg)
	}
	plan(units, o)
	r := report(repo.String(), units, o)

	// The manifests of deleted indexes that stay nowhere else.
	gone := deletedManifests(units)
	var children []v1.Hash
	for h := range gone {
		if byDigest[h] == nil {
			children = append(children, h)
		}
	}
	sort.Slice(children, func(i, j int) bool { return children[i].String() < children[j].String() })
	var childItems []Item
	for _, h := range children {
		childItems = append(childItems, Item{Digest: h.String(), Kind: kindManifest, Reason: "a manifest of a deleted index"})
	}
	// Images and indexes first, then their manifests, then signatures: an
	// interrupted run leaves an orphaned signature, never an unsigned
	// image.
	var images, sigs []Item
	for _, it := range r.Deleted {
		if it.Kind == kindSignature || it.Kind == kindAttestation || it.Kind == kindSBOM {
			sigs = append(sigs, it)
		} else {
			images = append(images, it)
		}
	}
	r.Deleted = append(append(images, childItems...), sigs...)
	if r.Deleted == nil {
		r.Deleted = []Item{}
	}
	if o.DryRun {
		return r, nil
	}
	for _, it := range r.Deleted {
		if err := reg.delete(it); err != nil {
			return r, err
		}
	}
	return r, nil
}

type registry struct {
	repo name.Repository
	opts []remote.Option
	log  *slog.Logger
}

func (g *registry) manifest(h v1.Hash) ([]byte, error) {
	desc, err := remote.Get(g.repo.Digest(h.String()), g.opts...)
	if err != nil {
		return nil, err
	}
	return desc.Manifest, nil
}

func (g *registry) blob(h v1.Hash) ([]byte, error) {
	l, err := remote.Layer(g.repo.Digest(h.String()), g.opts...)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxManifest+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxManifest {
		return nil, fmt.Errorf("blob %s is too big for a config", h)
	}
	return b, nil
}

func (g *registry) delete(it Item) error {
	ref := g.repo.Digest(it.Digest)
	g.log.Info("deleting", "manifest", ref.String(), "kind", it.Kind)
	err := remote.Delete(ref, g.opts...)
	if err == nil {
		return nil
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch {
		case te.StatusCode == http.StatusNotFound && it.Kind == kindManifest:
			return nil // already gone with its index, or never pushed
		case te.StatusCode == http.StatusMethodNotAllowed || hasCode(te, transport.UnsupportedErrorCode):
			return fault.Op(fmt.Errorf("deleting %s: the registry refuses deletes (%v); enable them (docker-registry: storage.delete.enabled: true)", ref, err))
		}
	}
	return imageref.RegistryError(g.repo.RegistryStr(), "deleting "+ref.String(), err)
}

func hasCode(te *transport.Error, code transport.ErrorCode) bool {
	for _, d := range te.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}
