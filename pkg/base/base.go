package base

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
)

// Resolver pins and opens bases.
type Resolver struct {
	cache  *cache.Cache
	remote []remote.Option
	log    *slog.Logger
}

// NewResolver returns a resolver that pulls through c with remoteOpts
// (auth, transport). log may be nil.
func NewResolver(c *cache.Cache, log *slog.Logger, remoteOpts ...remote.Option) *Resolver {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Resolver{cache: c, remote: remoteOpts, log: log}
}

// Ref is a parsed base reference.
type Ref struct {
	// Raw is the reference as the spec writes it.
	Raw string
	ref imageref.Reference
	// Digest is the digest the reference pins, if any.
	Digest string
}

// ParseRef parses a base reference: a registry reference, oci:DIR@sha256:…
// or oci-archive:FILE[:TAG].
func ParseRef(s string) (Ref, error) {
	r, err := imageref.Parse(s)
	if err != nil {
		return Ref{}, err
	}
	out := Ref{Raw: s, ref: r}
	switch r.Transport {
	case imageref.Registry:
		if d, ok := r.Name.(name.Digest); ok {
			out.Digest = d.DigestStr()
		}
	case imageref.OCI:
		if r.Digest == "" {
			return Ref{}, fmt.Errorf("%q: a base layout must be pinned by digest: oci:DIR@sha256:…", s)
		}
		out.Digest = r.Digest
	case imageref.OCIArchive:
	default:
		return Ref{}, fmt.Errorf("%q: a base is a registry reference, oci:DIR@sha256:… or oci-archive:FILE", s)
	}
	return out, nil
}

// Local reports whether the base is a file on this machine.
func (r Ref) Local() bool { return r.ref.Transport != imageref.Registry }

// Name is the base's name for the org.opencontainers.image.base.name
// annotation: repository and tag, never the digest. Local bases have none,
// because their path would tie the image to the build machine.
func (r Ref) Name() string {
	if r.Local() {
		return ""
	}
	s := r.Raw
	if i := strings.Index(s, "@"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimPrefix(s, "docker://")
	return s
}

// Pin is a base resolved to digests.
type Pin struct {
	// Digest is what the reference names: an index or a manifest.
	Digest    v1.Hash
	MediaType types.MediaType
	// Platforms maps os/arch[/variant] to the manifest for it.
	Platforms map[string]v1.Hash
}

// Resolve pins ref: asks the registry (or reads the layout) what it names
// now, and lists the manifest of each platform the base provides.
func (r *Resolver) Resolve(ctx context.Context, ref Ref) (Pin, error) {
	if ref.Local() {
		a, err := imageref.Open(ctx, ref.ref)
		if err != nil {
			return Pin{}, err
		}
		defer a.Close()
		return pinOf(a)
	}
	var digest v1.Hash
	if ref.Digest != "" {
		h, err := v1.NewHash(ref.Digest)
		if err != nil {
			return Pin{}, fault.Bad(err)
		}
		digest = h
	} else {
		if r.cache.IsOffline() {
			return Pin{}, fault.Op(fmt.Errorf("%s names a tag, and resolving a tag needs the registry (%w); pin it with repro lock or @sha256:…", ref.Raw, cache.ErrOffline))
		}
		d, err := remote.Head(ref.ref.Name, r.opts(ctx)...)
		if err != nil {
			return Pin{}, imageref.RegistryError(ref.ref.Name.Context().RegistryStr(), "resolving "+ref.Raw, err)
		}
		digest = d.Digest
	}
	raw, err := r.manifest(ctx, ref, digest)
	if err != nil {
		return Pin{}, err
	}
	p, err := pinFromManifest(digest, raw)
	if err != nil {
		return Pin{}, err
	}
	if d, single := p.Platforms[""]; single {
		// A single manifest: its platform is in its config.
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			return Pin{}, fault.Op(fmt.Errorf("base manifest %s: %w", digest, err))
		}
		cp, err := r.blob(ctx, ref, m.Config.Digest, "config")
		if err != nil {
			return Pin{}, err
		}
		cfg, err := os.ReadFile(cp)
		if err != nil {
			return Pin{}, fault.Op(err)
		}
		plat, err := configPlatform(cfg)
		if err != nil {
			return Pin{}, fault.Bad(err)
		}
		delete(p.Platforms, "")
		p.Platforms[plat] = d
	}
	return p, nil
}

func pinOf(a *imageref.Artifact) (Pin, error) {
	p := Pin{Digest: a.Descriptor.Digest, MediaType: a.Descriptor.MediaType, Platforms: map[string]v1.Hash{}}
	if a.Index != nil {
		im, err := a.Index.IndexManifest()
		if err != nil {
			return Pin{}, err
		}
		p.addPlatforms(im.Manifests, false)
		return p, nil
	}
	// Only the platform is wanted: decoding the whole config (a 100 MB
	// one cost 600 MB) would be waste.
	raw, err := a.Image.RawConfigFile()
	if err != nil {
		return Pin{}, err
	}
	plat, err := configPlatform(raw)
	if err != nil {
		return Pin{}, fault.Bad(err)
	}
	p.Platforms[plat] = a.Descriptor.Digest
	return p, nil
}

// addPlatforms records each image entry of an index that names a
// platform, by its name; the first entry for a platform wins, as the image
// spec says. With untyped, an entry without a media type counts as an
// image (a manifest list as a registry serves it may leave it out).
// Nested indexes are not followed (PlatformManifest says so).
func (p *Pin) addPlatforms(entries []v1.Descriptor, untyped bool) {
	for _, d := range entries {
		if d.Platform == nil || !(d.MediaType.IsImage() || untyped && d.MediaType == "") {
			continue
		}
		name := imageref.PlatformName(*d.Platform)
		if _, dup := p.Platforms[name]; !dup {
			p.Platforms[name] = d.Digest
		}
	}
}

// configPlatform names the platform a raw image config gives, decoding
// only its platform fields: a config's os, architecture, variant and
// os.version are v1.Platform's JSON fields.
func configPlatform(config []byte) (string, error) {
	var p v1.Platform
	if err := json.Unmarshal(config, &p); err != nil {
		return "", fmt.Errorf("the base's config is not valid JSON: %v", err)
	}
	return imageref.PlatformName(p), nil
}

type manifestHead struct {
	MediaType types.MediaType `json:"mediaType"`
	Manifests []v1.Descriptor `json:"manifests"`
	Config    v1.Descriptor   `json:"config"`
}

func pinFromManifest(digest v1.Hash, raw []byte) (Pin, error) {
	var m manifestHead
	if err := json.Unmarshal(raw, &m); err != nil {
		return Pin{}, fault.Op(fmt.Errorf("manifest %s: %w", digest, err))
	}
	p := Pin{Digest: digest, MediaType: m.MediaType, Platforms: map[string]v1.Hash{}}
	if len(m.Manifests) > 0 || m.MediaType.IsIndex() {
		if p.MediaType == "" {
			p.MediaType = types.OCIImageIndex
		}
		p.addPlatforms(m.Manifests, true)
		return p, nil
	}
	// A single manifest: its platform is in its config, which the caller
	// reads; record it under the empty key until then.
	if p.MediaType == "" {
		p.MediaType = types.OCIManifestSchema1
	}
	p.Platforms[""] = digest
	return p, nil
}

// PlatformManifest picks the manifest for platform (os/arch[/variant]).
// An arm64 base without a variant matches arm64/v8 and the other way
// round. The error names the platforms the base has. It reads the pin,
// not an index: a lock pins a base by these names, which is why this is
// not match.Platforms (which compares whole v1.Platforms, and holds
// arm64 and arm64/v8 apart).
func (p Pin) PlatformManifest(platform string) (v1.Hash, error) {
	if d, ok := p.Platforms[platform]; ok {
		return d, nil
	}
	if d, ok := p.Platforms[""]; ok && len(p.Platforms) == 1 {
		return d, nil // a single-platform base; its config is checked when opened
	}
	alt := map[string]string{"linux/arm64": "linux/arm64/v8", "linux/arm64/v8": "linux/arm64"}
	if d, ok := p.Platforms[alt[platform]]; ok {
		return d, nil
	}
	var have []string
	for k := range p.Platforms {
		have = append(have, k)
	}
	sort.Strings(have)
	if len(have) == 0 {
		// An index of indexes, or one whose entries name no platform (or a
		// lock without platforms): none is followed or guessed.
		return v1.Hash{}, fault.Bad(fmt.Errorf("the base %s has no %s image: it lists no image with a platform (an index that nests indexes is not followed); name one platform's image by its digest, or re-lock the base if a lock pins it", p.Digest, platform))
	}
	return v1.Hash{}, fault.Bad(fmt.Errorf("the base %s has no %s image; it has %s", p.Digest, platform, strings.Join(have, ", ")))
}

// Image is a base for one platform, ready to build on.
type Image struct {
	ManifestDigest v1.Hash
	Manifest       *v1.Manifest
	// Config is the base's raw config.
	Config []byte
	// Layers are the base's layers as published, with OCI media types.
	// Those of a registry base are *remote.MountableLayers that name the
	// base's repository, so that a push to that registry can mount them.
	Layers []v1.Layer
}

// Open returns the base image that pin names for platform.
func (r *Resolver) Open(ctx context.Context, ref Ref, pin Pin, platform string) (*Image, error) {
	md, err := pin.PlatformManifest(platform)
	if err != nil {
		return nil, err
	}
	if ref.Local() {
		return r.openLocal(ctx, ref, md, platform)
	}
	raw, err := r.manifest(ctx, ref, md)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fault.Op(fmt.Errorf("base manifest %s: %w", md, err))
	}
	img := &Image{ManifestDigest: md, Manifest: m}
	var missing []string
	blob := func(d v1.Hash, what string) (string, error) {
		p, err := r.blob(ctx, ref, d, what)
		if err != nil && r.offlineMissing(err) {
			missing = append(missing, fmt.Sprintf("%s %s", what, d))
			return "", nil
		}
		return p, err
	}
	cfgPath, err := blob(m.Config.Digest, "config")
	if err != nil {
		return nil, err
	}
	var diffs []v1.Hash
	if cfgPath != "" {
		if img.Config, err = os.ReadFile(cfgPath); err != nil {
			return nil, fault.Op(err)
		}
		if diffs, err = diffIDs(img.Config, m, ref.Raw); err != nil {
			return nil, err
		}
	}
	for i, l := range m.Layers {
		what := fmt.Sprintf("layer %d", i)
		if diffs == nil {
			// Offline without the config: report what is missing.
			if _, err := blob(l.Digest, what); err != nil {
				return nil, err
			}
			continue
		}
		p, err := r.checkedBlob(ctx, ref, l.Digest, diffs[i], what)
		if err != nil && r.offlineMissing(err) {
			missing = append(missing, fmt.Sprintf("%s %s", what, l.Digest))
			continue
		}
		if err != nil {
			return nil, err
		}
		// Naming the base's repository lets a push to the same registry
		// mount the layer from there instead of uploading it.
		img.Layers = append(img.Layers, &remote.MountableLayer{
			Layer:     &cachedLayer{path: p, desc: l},
			Reference: ref.ref.Name.Context().Digest(l.Digest.String()),
		})
	}
	if len(missing) > 0 {
		return nil, fault.Op(fmt.Errorf("the cache lacks %d blobs of the base %s (%s): %s; %w them", len(missing), ref.Raw, platform, strings.Join(missing, "; "), cache.ErrOffline))
	}
	if err := checkPlatform(img.Config, platform); err != nil {
		return nil, err
	}
	return img, nil
}

func checkPlatform(config []byte, platform string) error {
	got, err := configPlatform(config)
	if err != nil {
		return fault.Op(err)
	}
	if got != platform && strings.TrimSuffix(got, "/v8") != strings.TrimSuffix(platform, "/v8") {
		return fault.Bad(fmt.Errorf("the base is a single %s image; it has no %s image", got, platform))
	}
	return nil
}

func (r *Resolver) offlineMissing(err error) bool {
	return errors.Is(err, cache.ErrOffline)
}

func (r *Resolver) openLocal(ctx context.Context, ref Ref, md v1.Hash, platform string) (*Image, error) {
	lr := ref.ref
	lr.Digest, lr.Tag = md.String(), ""
	if lr.Transport == imageref.OCIArchive {
		// archives are addressed by tag; re-open and walk to the manifest
		lr = ref.ref
	}
	a, err := imageref.Open(ctx, lr)
	if err != nil {
		return nil, err
	}
	var img v1.Image
	if a.Index != nil {
		img, err = a.Index.Image(md)
		if err != nil {
			return nil, fault.Op(fmt.Errorf("base %s has no manifest %s, which the pin names (%v): %w", ref.Raw, md, err, ErrPinMismatch))
		}
	} else {
		img = a.Image
		// An archive is read by its tag: what it holds now must be what
		// the pin names, or the build would claim a base it did not use.
		got, err := img.Digest()
		if err != nil {
			return nil, fault.Op(fmt.Errorf("base %s: %w", ref.Raw, err))
		}
		if got != md {
			return nil, fault.Op(fmt.Errorf("base %s now holds %s, but the pin is %s: %w", ref.Raw, got, md, ErrPinMismatch))
		}
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fault.Bad(err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return nil, fault.Bad(err)
	}
	if err := checkPlatform(cfg, platform); err != nil {
		return nil, err
	}
	out := &Image{ManifestDigest: md, Manifest: m, Config: cfg}
	diffs, err := diffIDs(cfg, m, ref.Raw)
	if err != nil {
		return nil, err
	}
	for i, l := range m.Layers {
		rl, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return nil, fault.Bad(err)
		}
		name := fmt.Sprintf("layer %d (%s) of the base %s", i, l.Digest, ref.Raw)
		got, ok := r.checked(l.Digest)
		if !ok {
			if got, err = checkFile(ctx, rl.Compressed, l.Digest, name); err != nil {
				return nil, err
			}
			r.recordChecked(l.Digest, got)
		}
		if err := claim(got, diffs[i], name); err != nil {
			return nil, err
		}
		out.Layers = append(out.Layers, &localLayer{partialLayer: rl, desc: l})
	}
	return out, nil
}

// manifest returns the raw manifest or index d of ref, through the cache.
func (r *Resolver) manifest(ctx context.Context, ref Ref, d v1.Hash) ([]byte, error) {
	p, err := r.cache.Blob(ctx, d.Hex, "manifest "+d.String()+" of "+ref.Raw, func(ctx context.Context) (io.ReadCloser, error) {
		dig := ref.ref.Name.Context().Digest(d.String())
		desc, err := remote.Get(dig, r.opts(ctx)...)
		if err != nil {
			return nil, imageref.RegistryError(dig.RegistryStr(), "pulling "+ref.Raw, err)
		}
		return io.NopCloser(bytes.NewReader(desc.Manifest)), nil
	})
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// blob returns the path of blob d of ref, through the cache.
func (r *Resolver) blob(ctx context.Context, ref Ref, d v1.Hash, what string) (string, error) {
	return r.teeBlob(ctx, ref, d, what, nil)
}

// teeBlob is blob, with the fetched bytes (if any are fetched) also
// written to tee.
func (r *Resolver) teeBlob(ctx context.Context, ref Ref, d v1.Hash, what string, tee func() io.Writer) (string, error) {
	return r.cache.Blob(ctx, d.Hex, what+" "+d.String()+" of "+ref.Raw, func(ctx context.Context) (io.ReadCloser, error) {
		dig := ref.ref.Name.Context().Digest(d.String())
		l, err := remote.Layer(dig, r.opts(ctx)...)
		if err != nil {
			return nil, imageref.RegistryError(dig.RegistryStr(), "pulling "+ref.Raw, err)
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, imageref.RegistryError(dig.RegistryStr(), "pulling "+ref.Raw, err)
		}
		if tee != nil {
			return teeReadCloser{io.TeeReader(rc, tee()), rc}, nil
		}
		return rc, nil
	})
}

type teeReadCloser struct {
	io.Reader
	io.Closer
}

// checkedBlob is the path of layer d of ref in the cache, checked (see
// check.go) against the diff ID the config claims for it: as it is
// fetched, or, if the cache holds it unchecked, read from there.
func (r *Resolver) checkedBlob(ctx context.Context, ref Ref, d, diffID v1.Hash, what string) (string, error) {
	name := fmt.Sprintf("%s (%s) of the base %s", what, d, ref.Raw)
	if got, ok := r.checked(d); ok {
		if err := claim(got, diffID, name); err != nil {
			return "", err
		}
		return r.blob(ctx, ref, d, what)
	}
	var tc *teeCheck
	p, err := r.teeBlob(ctx, ref, d, what, func() io.Writer { tc = newTeeCheck(ctx, name); return tc })
	if err != nil {
		if tc != nil {
			tc.abort()
		}
		return "", err
	}
	var got v1.Hash
	if tc != nil {
		got, err = tc.finish()
	} else {
		got, err = checkFile(ctx, func() (io.ReadCloser, error) { return os.Open(p) }, d, name)
	}
	if err != nil {
		if fault.KindOf(err) == fault.BadInput {
			// Not a layer at all: the cache keeps only blobs a build may use.
			os.Remove(p)
		}
		return "", err
	}
	// A valid layer, whatever this config claims of it.
	r.recordChecked(d, got)
	if err := claim(got, diffID, name); err != nil {
		return "", err
	}
	return p, nil
}

func (r *Resolver) opts(ctx context.Context) []remote.Option {
	return append([]remote.Option{remote.WithContext(ctx)}, r.remote...)
}

// ociLayerType maps Docker layer media types to their OCI equivalents; the
// bytes are the same.
func ociLayerType(mt types.MediaType) types.MediaType {
	switch mt {
	case types.DockerLayer, types.DockerForeignLayer:
		return types.OCILayer
	case types.DockerUncompressedLayer:
		return types.OCIUncompressedLayer
	}
	return mt
}

// cachedLayer is a base layer in the cache. Only its compressed bytes are
// ever read by a build.
type cachedLayer struct {
	path string
	desc v1.Descriptor
}

var _ v1.Layer = (*cachedLayer)(nil)

func (l *cachedLayer) Digest() (v1.Hash, error) { return l.desc.Digest, nil }
func (l *cachedLayer) Size() (int64, error)     { return l.desc.Size, nil }
func (l *cachedLayer) MediaType() (types.MediaType, error) {
	return ociLayerType(l.desc.MediaType), nil
}
func (l *cachedLayer) Compressed() (io.ReadCloser, error) { return os.Open(l.path) }
func (l *cachedLayer) DiffID() (v1.Hash, error) {
	return v1.Hash{}, errors.New("base layers' diff IDs come from the base config")
}
func (l *cachedLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("base layers are copied as published, never decompressed")
}

// localLayer is a base layer read from a local layout.
type localLayer struct {
	partialLayer
	desc v1.Descriptor
}

type partialLayer = interface {
	Digest() (v1.Hash, error)
	Size() (int64, error)
	Compressed() (io.ReadCloser, error)
}

func (l *localLayer) MediaType() (types.MediaType, error) {
	return ociLayerType(l.desc.MediaType), nil
}
func (l *localLayer) DiffID() (v1.Hash, error) {
	return v1.Hash{}, errors.New("base layers' diff IDs come from the base config")
}
func (l *localLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("base layers are copied as published, never decompressed")
}

// WithInsecure marks the reference to be spoken to over plain HTTP when
// its registry is one of hosts.
func (r Ref) WithInsecure(hosts []string) Ref {
	r.ref = r.ref.WithInsecure(hosts)
	return r
}

// Path is a local base's file or directory ("" for a registry base).
func (r Ref) Path() string {
	if !r.Local() {
		return ""
	}
	return r.ref.Path
}

// In resolves a local base's relative path against dir, the build
// context, so a spec means the same base from any working directory.
func (r Ref) In(dir string) Ref {
	if r.Local() && !filepath.IsAbs(r.ref.Path) {
		r.ref.Path = filepath.Join(dir, r.ref.Path)
	}
	return r
}
