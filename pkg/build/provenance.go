package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/reprobuild/repro/pkg/attest"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/lock"
	"github.com/reprobuild/repro/pkg/sign"
)

// ProvenanceInput is what the SLSA provenance of b records: the spec and
// lock by path (relative to the repository's root) and digest, the
// values, the epoch and its source, the base pin, every url and Debian
// pin, and the manifests built. reproVersion is the builder's version.
func (b *Built) ProvenanceInput(reproVersion string) (attest.BuildInput, error) {
	s := b.Spec
	specPath := filepath.Join(s.SpecDir, filepath.Base(s.File))
	raw, err := os.ReadFile(specPath)
	if err != nil {
		return attest.BuildInput{}, fault.Op(fmt.Errorf("reading %s for the provenance: %w", s.File, err))
	}
	root := b.VCS.Root
	bi := attest.BuildInput{
		SpecPath: relPath(root, specPath), SpecSHA256: sha256Hex(raw),
		Name: s.Name, Vars: b.Values.Vars, Version: b.Values.Version,
		Epoch: b.Values.Epoch, EpochSource: b.epochSource(),
		FormatVersion: b.Format.String(),
		LayerEpochs:   b.LayerEpochs,
		Compression:   attest.Compression{Algorithm: string(b.Compression), Settings: b.Compression.FormatSettings(b.Format)},
		GitCommit:     b.Values.GitCommit,
		URLs:          map[string]string{},
		Manifests:     map[string]string{},
		Dependencies:  b.aptDependencies(),
		ReproVersion:  reproVersion,
	}
	bi.Dependencies = append(bi.Dependencies, b.goDependencies()...)
	ms, err := b.Manifests()
	if err != nil {
		return attest.BuildInput{}, err
	}
	for _, m := range ms {
		bi.Platforms = append(bi.Platforms, m.Platform.String())
		bi.Manifests[m.Platform.String()] = m.Digest.String()
	}
	// An assembled index names each per-platform build it took, by the
	// ref it was given and its digest.
	for i, ref := range b.PartRefs {
		m := ms[i]
		bi.Dependencies = append(bi.Dependencies, attest.ResourceDescriptor{
			Name: attest.DepPart + m.Platform.String(), URI: ref,
			Digest: map[string]string{m.Digest.Algorithm: m.Digest.Hex}, MediaType: string(m.MediaType)})
	}
	for _, l := range s.Layers {
		for _, c := range l.Contents {
			if c.URL != "" {
				bi.URLs[c.URL] = c.SHA256
			}
		}
	}
	if base := b.Base; base != nil {
		bp := &attest.BasePin{Ref: base.Ref.Raw, Digest: base.Pin.Digest.String(), MediaType: string(base.Pin.MediaType), Platforms: map[string]string{}}
		for _, p := range bi.Platforms {
			if d, err := base.Pin.PlatformManifest(p); err == nil {
				bp.Platforms[p] = d.String()
			}
		}
		bi.Base = bp
	}
	lockPath := filepath.Join(s.SpecDir, lock.FileName)
	if lraw, err := os.ReadFile(lockPath); err == nil {
		bi.LockPath, bi.LockSHA256 = relPath(root, lockPath), sha256Hex(lraw)
	}
	return bi, nil
}

// Provenance is the SLSA v1 provenance of b, encoded; reproVersion is
// the builder's version.
func (b *Built) Provenance(reproVersion string) ([]byte, error) {
	bi, err := b.ProvenanceInput(reproVersion)
	if err != nil {
		return nil, err
	}
	p, err := attest.NewProvenance(bi)
	if err != nil {
		return nil, fault.Op(err)
	}
	return p.Bytes()
}

// SBOM is the SBOM of b in format: the files of the layers the build
// added, the base's and the Debian packages (with the pinned .debs'
// digests). reproVersion names the tool that wrote it.
func (b *Built) SBOM(ctx context.Context, format attest.Format, reproVersion string) ([]byte, error) {
	added := len(b.Spec.Layers)
	inv, err := attest.Scan(ctx, b.Spec.Name, b.Artifact, attest.ScanOptions{AddedLayers: &added, TempDir: b.workDir, PackageDigests: b.debDigests()})
	if err != nil {
		return nil, fault.Op(fmt.Errorf("reading the image for its SBOM: %w", err))
	}
	b.goVersions(inv)
	doc, err := attest.SBOM(inv, format, reproVersion)
	if err != nil {
		return nil, fault.Op(err)
	}
	return doc, nil
}

// Attestations are what signing b attaches (sign.SignOutputs): its SPDX
// SBOM when sbom is set, then its SLSA v1 provenance when provenance is
// set. reproVersion is the builder's version.
func (b *Built) Attestations(ctx context.Context, sbom, provenance bool, reproVersion string) ([]sign.Attestation, error) {
	var atts []sign.Attestation
	if sbom {
		doc, err := b.SBOM(ctx, attest.SPDXJSON, reproVersion)
		if err != nil {
			return nil, err
		}
		atts = append(atts, sign.Attestation{PredicateType: attest.SPDXType, Predicate: doc})
	}
	if provenance {
		p, err := b.Provenance(reproVersion)
		if err != nil {
			return nil, err
		}
		atts = append(atts, sign.Attestation{PredicateType: attest.ProvenanceType, Predicate: p})
	}
	return atts, nil
}

// epochSource is where the build's epoch came from, as the provenance
// records it.
func (b *Built) epochSource() string {
	if b.Epoch.Source == EpochGiven && b.Values.Epoch == 0 {
		return string(EpochDefault)
	}
	if b.Epoch.Source == EpochGiven {
		// A rebuild of given values: the epoch came from outside the spec.
		return string(EpochEnv)
	}
	return string(b.Epoch.Source)
}

// debDigests are the sha256 of every .deb the lock pins for the platforms
// built, for the SBOM's package entries.
func (b *Built) debDigests() map[string]string {
	out := map[string]string{}
	if b.Lock == nil {
		return out
	}
	for _, p := range b.Platforms {
		for _, l := range b.Lock.Apt[p.String()].Layers {
			for _, p := range l.Pins {
				out[attest.PackageKey(p.Name, p.Version, p.Architecture)] = p.SHA256
			}
		}
	}
	return out
}

// aptDependencies are the Debian pins of the platforms built, for the
// provenance: each source's InRelease and Packages indexes, and every
// .deb, by sha256, each once.
func (b *Built) aptDependencies() []attest.ResourceDescriptor {
	if b.Lock == nil {
		return nil
	}
	var deps []attest.ResourceDescriptor
	seen := map[string]bool{}
	add := func(d attest.ResourceDescriptor) {
		k := d.Name + "\x00" + d.URI + "\x00" + d.Digest["sha256"]
		if !seen[k] {
			seen[k] = true
			deps = append(deps, d)
		}
	}
	for _, p := range b.Platforms {
		a, ok := b.Lock.Apt[p.String()]
		if !ok {
			continue
		}
		for _, src := range a.Sources {
			base := strings.TrimSuffix(src.URL, "/") + "/dists/" + src.Suite + "/"
			add(attest.ResourceDescriptor{Name: "apt-inrelease", URI: base + "InRelease", Digest: map[string]string{"sha256": src.InRelease}})
			for _, ix := range src.Indexes {
				add(attest.ResourceDescriptor{Name: "apt-index", URI: base + ix.Path, Digest: map[string]string{"sha256": ix.SHA256}})
			}
		}
		for _, l := range a.Layers {
			for _, p := range l.Pins {
				add(attest.ResourceDescriptor{Name: "deb:" + p.Name + "=" + p.Version + ":" + p.Architecture, URI: p.URL(), Digest: map[string]string{"sha256": p.SHA256}})
			}
		}
	}
	return deps
}

// relPath is path (absolute) relative to root, with slashes; its base
// name when it is not under root, so that no machine's directory layout
// leaks into the provenance.
func relPath(root, path string) string {
	if root != "" {
		if real, err := filepath.EvalSymlinks(path); err == nil {
			path = real
		}
		if r, err := filepath.Rel(root, path); err == nil && !strings.HasPrefix(r, "..") {
			return filepath.ToSlash(r)
		}
	}
	return filepath.Base(path)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
