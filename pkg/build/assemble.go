package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/internal/canonical"
	"github.com/reprobuild/repro/pkg/base"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/spec"
)

// Part is one platform's image, built and pushed elsewhere (one CI
// runner's `repro build --platform P --push-by-digest`), that Assemble
// puts in the index.
type Part struct {
	// Ref names the image by digest (host/repo@sha256:…); the provenance
	// records it.
	Ref string
	// Image is the image Ref names.
	Image v1.Image
}

// ErrNotTheSpecs: a part is not what the spec would make for its
// platform, or the parts do not cover the spec's platforms exactly once.
var ErrNotTheSpecs = errors.New("the images given are not the ones the spec makes")

// ErrPartFormat and ErrPartCompression: a part was built in another output
// format, or with another compression, than the index is assembled with.
// The index must be given the format and compression its parts' builds
// were given (cmd says with which flags).
var (
	ErrPartFormat      = errors.New("the index is assembled in another output format than the part was built in")
	ErrPartCompression = errors.New("the index is assembled with another compression than the part was built with")
)

// Assemble makes the image index that req's spec describes from parts
// built elsewhere, one per platform of the spec (after req.Platforms), in
// any order. Nothing is rebuilt: each part's platform, manifest
// annotations and config (all but its rootfs and history, which its
// layers make) must be what this spec, lock and request expand to, and
// the index is then byte for byte the one Run gives for the same
// platforms on one machine. A part that does not fit is bad input
// (ErrNotTheSpecs), with the reason.
func Assemble(ctx context.Context, req Request, parts []Part) (*Built, error) {
	log, alg, err := withDefaults("Assemble", req)
	if err != nil {
		return nil, err
	}
	b, err := prepare(ctx, req, alg, log)
	if err != nil {
		return nil, err
	}
	s := b.Spec
	plats, err := selectPlatforms(s, req.Platforms)
	if err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return fault.Bad(&classError{fmt.Errorf(format, args...), ErrNotTheSpecs})
	}
	names := make([]string, len(plats))
	for i, p := range plats {
		names[i] = p.String()
	}
	byPlatform := map[spec.Platform]Part{}
	for _, part := range parts {
		p, err := partPlatform(part)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(plats, p) {
			return nil, bad("%s is a %s image; the spec %s, for the platforms asked for, builds %s", part.Ref, p, s.File, strings.Join(names, ", "))
		}
		if prev, ok := byPlatform[p]; ok {
			return nil, bad("%s is given twice (%s and %s); give one image per platform", p, prev.Ref, part.Ref)
		}
		byPlatform[p] = part
	}
	var missing []string
	for _, p := range plats {
		if _, ok := byPlatform[p]; !ok {
			missing = append(missing, p.String())
		}
	}
	if len(missing) > 0 {
		return nil, bad("no manifest for %s: every platform the spec builds (%s) must be given, so that no runner's failure ships a partial index", strings.Join(missing, ", "), strings.Join(names, ", "))
	}
	if len(plats) < 2 {
		return nil, bad("the spec, for the platforms asked for, builds one platform, %s, which needs no index: its image is %s", names[0], byPlatform[plats[0]].Ref)
	}
	bld := &builder{s: s, opts: Options{Values: b.Values, Compression: alg, Format: b.Format, Cache: req.Cache, Log: log, Base: b.Base, Lock: b.Lock, ScanBase: req.ScanBase}}
	res := &Result{Platforms: plats}
	imgs := make([]v1.Image, len(plats))
	for i, p := range plats {
		part := byPlatform[p]
		if err := bld.matches(ctx, p, part); err != nil {
			return nil, err
		}
		imgs[i] = part.Image
	}
	idx, err := bld.index(plats, imgs)
	if err != nil {
		return nil, err
	}
	if res.Artifact, err = imageref.IndexArtifact(idx); err != nil {
		return nil, fault.Op(err)
	}
	b.Result = res
	for _, p := range plats {
		b.PartRefs = append(b.PartRefs, byPlatform[p].Ref)
	}
	return b, nil
}

// partPlatform is the platform a part's config names.
func partPlatform(part Part) (spec.Platform, error) {
	mt, err := part.Image.MediaType()
	if err != nil {
		return spec.Platform{}, fault.Op(fmt.Errorf("reading %s: %w", part.Ref, err))
	}
	if mt != types.OCIManifestSchema1 {
		return spec.Platform{}, fault.Bad(&classError{fmt.Errorf("%s is a %s, not an OCI image manifest such as repro build writes", part.Ref, mt), ErrNotTheSpecs})
	}
	cf, err := part.Image.ConfigFile()
	if err != nil {
		return spec.Platform{}, fault.Op(fmt.Errorf("reading the config of %s: %w", part.Ref, err))
	}
	return spec.Platform{OS: cf.OS, Arch: cf.Architecture, Variant: cf.Variant}, nil
}

// matches checks that part is what the spec makes for p, but for its
// layers: the config without rootfs and history, and the manifest's
// annotations.
func (b *builder) matches(ctx context.Context, p spec.Platform, part Part) error {
	var bi *base.Image
	if b.opts.Base != nil {
		var err error
		if bi, err = b.opts.Base.Resolver.Open(ctx, b.opts.Base.Ref, b.opts.Base.Pin, p.String()); err != nil {
			if fault.KindOf(err) == fault.BadInput {
				return fault.Bad(&classError{b.s.ErrorAt("base", "%v", err), err})
			}
			return err
		}
	}
	if bi != nil && b.opts.ScanBase {
		if err := b.scanBase(ctx, bi, p); err != nil {
			return err
		}
	}
	want, err := b.config(p, bi, nil, nil)
	if err != nil {
		return err
	}
	if err := b.sameFormat(p, part, bi); err != nil {
		return err
	}
	raw, err := part.Image.RawConfigFile()
	if err != nil {
		return fault.Op(fmt.Errorf("reading the config of %s: %w", part.Ref, err))
	}
	var got ocispec.Image
	if err := json.Unmarshal(raw, &got); err != nil {
		return fault.Bad(&classError{fmt.Errorf("the config of %s: %w", part.Ref, err), ErrNotTheSpecs})
	}
	for _, c := range []*ocispec.Image{want, &got} {
		c.RootFS, c.History = ocispec.RootFS{}, nil
	}
	wantRaw, err := canonical.JSON(want)
	if err != nil {
		return err
	}
	gotRaw, err := canonical.JSON(&got)
	if err != nil {
		return err
	}
	if !bytes.Equal(wantRaw, gotRaw) {
		return fault.Bad(&classError{fmt.Errorf("%s (%s): its config is not what this spec makes: %s", part.Ref, p, jsonDiff(gotRaw, wantRaw)), ErrNotTheSpecs})
	}
	wantAnn, err := b.annotations()
	if err != nil {
		return err
	}
	if bi != nil {
		wantAnn[ocispec.AnnotationBaseImageDigest] = bi.ManifestDigest.String()
		if n := b.opts.Base.Ref.Name(); n != "" {
			wantAnn[ocispec.AnnotationBaseImageName] = n
		}
	}
	m, err := part.Image.Manifest()
	if err != nil {
		return fault.Op(fmt.Errorf("reading %s: %w", part.Ref, err))
	}
	if d := annotationDiff(m.Annotations, wantAnn); d != "" {
		return fault.Bad(&classError{fmt.Errorf("%s (%s): its annotations are not what this spec and these values make: %s (was it built with another version, other vars or from another commit?)", part.Ref, p, d), ErrNotTheSpecs})
	}
	return nil
}

// sameFormat checks that the layers repro wrote in part (those above the
// base's) are of the build's output format, as the history records it,
// and of its compression, as their media types say: the index is then
// the one a build gives, byte for byte.
func (b *builder) sameFormat(p spec.Platform, part Part, bi *base.Image) error {
	m, err := part.Image.Manifest()
	if err != nil {
		return fault.Op(fmt.Errorf("reading %s: %w", part.Ref, err))
	}
	own := m.Layers
	if bi != nil && len(bi.Layers) <= len(own) {
		own = own[len(bi.Layers):]
	}
	cf, err := part.Image.ConfigFile()
	if err != nil {
		return fault.Op(fmt.Errorf("reading the config of %s: %w", part.Ref, err))
	}
	// The history's last entries are those of its own layers (the
	// base's, before them, keep the base's format).
	n := len(own)
	for k := len(cf.History) - 1; k >= 0 && n > 0; k-- {
		h := cf.History[k]
		if h.EmptyLayer {
			continue
		}
		n--
		if strings.HasPrefix(h.CreatedBy, "repro: ") && h.Comment != b.opts.Format.String() {
			return fault.Bad(&classError{fmt.Errorf("%s (%s) was built in output format %q, and this index is of %s: %w", part.Ref, p, h.Comment, b.opts.Format, ErrPartFormat), ErrNotTheSpecs})
		}
	}
	want := b.opts.Compression.MediaType()
	for _, l := range own {
		if string(l.MediaType) != want {
			return fault.Bad(&classError{fmt.Errorf("%s (%s) has a layer of %s, and this index's compression, %s, writes %s: %w", part.Ref, p, l.MediaType, b.opts.Compression, want, ErrPartCompression), ErrNotTheSpecs})
		}
	}
	return nil
}

// annotationDiff says how got differs from want, key by key; "" when equal.
func annotationDiff(got, want map[string]string) string {
	keys := slices.Sorted(maps.Keys(want))
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []string
	for _, k := range slices.Compact(keys) {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			out = append(out, fmt.Sprintf("%s is missing (the spec makes %q)", k, w))
		case !wok:
			out = append(out, fmt.Sprintf("%s = %q, which the spec does not make", k, g))
		case g != w:
			out = append(out, fmt.Sprintf("%s = %q, the spec makes %q", k, g, w))
		}
	}
	return strings.Join(out, "; ")
}

// jsonDiff names the top-level fields (and config.* fields) in which two
// configs differ.
func jsonDiff(got, want []byte) string {
	var g, w map[string]any
	if json.Unmarshal(got, &g) != nil || json.Unmarshal(want, &w) != nil {
		return "it does not parse"
	}
	flat := func(m map[string]any) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok && k == "config" {
				for sk, sv := range sub {
					raw, _ := canonical.JSON(sv)
					out["config."+sk] = string(raw)
				}
				continue
			}
			raw, _ := canonical.JSON(v)
			out[k] = string(raw)
		}
		return out
	}
	return annotationDiff(flat(g), flat(w))
}
