package attest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/reprobuild/repro/internal/canonical"
)

// Predicate types, as the in-toto statement names them, and the names
// cosign's CLI gives them (cosign verify-attestation --type NAME).
const (
	ProvenanceType = "https://slsa.dev/provenance/v1" // cosign: slsaprovenance1
	SPDXType       = "https://spdx.dev/Document"      // cosign: spdxjson
	CycloneDXType  = "https://cyclonedx.org/bom"      // cosign: cyclonedx
)

// PredicateTypeOf is the predicate type that kind names: provenance
// (slsaprovenance1), sbom (spdx, spdxjson), cyclonedx, or a predicate type
// URI as it is; false for any other word.
func PredicateTypeOf(kind string) (string, bool) {
	switch kind {
	case "provenance", "slsaprovenance1":
		return ProvenanceType, true
	case "sbom", "spdx", "spdxjson":
		return SPDXType, true
	case "cyclonedx":
		return CycloneDXType, true
	}
	return kind, strings.Contains(kind, "://")
}

// BuildType is the provenance's buildType: it names the meaning of the
// parameters below. A change to their meaning is a new build type.
const BuildType = "https://github.com/reprobuild/repro/buildtypes/image/v1"

// BuilderID is the provenance's builder.id, followed by "@" and repro's
// version.
const BuilderID = "https://github.com/reprobuild/repro"

// Names of the resolved dependencies.
const (
	DepBase     = "base"     // the spec's base, by the digest it names
	DepBaseImg  = "base:"    // prefix: the base's manifest for one platform (base:linux/amd64)
	DepURL      = "url"      // a url content, by its sha256
	DepGit      = "git"      // the build context's commit
	DepLockFile = "lockfile" // the lock file, when there is one
	DepPart     = "part:"    // prefix: a per-platform build an index was assembled from (part:linux/arm64), by its ref and digest
	// DepGoToolchain is the Go toolchain that go: entries compiled with:
	// its version (go1.26.8) is the annotation "version".
	DepGoToolchain = "go-toolchain"
	// DepGoModule is the prefix of a Go module that a go: entry's program
	// was built from (go-module:golang.org/x/sys): URI its purl
	// (pkg:golang/PATH@VERSION), digest dirHash its go.sum hash (in hex),
	// annotations version, goSum (h1:…), programs (the image paths that
	// use it) and, for the main module, main.
	DepGoModule = "go-module:"
)

// Provenance is a SLSA v1 provenance predicate, as repro writes it.
type Provenance struct {
	BuildDefinition BuildDefinition `json:"buildDefinition"`
	RunDetails      RunDetails      `json:"runDetails"`
}

// BuildDefinition is what the build was asked to do, with what.
type BuildDefinition struct {
	BuildType            string               `json:"buildType"`
	ExternalParameters   ExternalParameters   `json:"externalParameters"`
	InternalParameters   InternalParameters   `json:"internalParameters"`
	ResolvedDependencies []ResourceDescriptor `json:"resolvedDependencies,omitempty"`
}

// ExternalParameters are the inputs a user controls.
type ExternalParameters struct {
	// Spec is the spec file: its path relative to the root of the git
	// repository holding it (its base name outside git), and its digest.
	Spec ResourceDescriptor `json:"spec"`
	// Name is the spec's name.
	Name string `json:"name"`
	// Vars are the template variables in effect: the spec's, with the
	// --var overrides applied.
	Vars map[string]string `json:"vars"`
	// Platforms are the platforms built, in the spec's order.
	Platforms []string `json:"platforms"`
	// Version is the .Version template value.
	Version string `json:"version"`
}

// InternalParameters are the inputs repro chooses or derives.
type InternalParameters struct {
	// Epoch is every timestamp of the image, in seconds since 1970.
	Epoch int64 `json:"epoch"`
	// EpochSource says where the epoch came from: spec, git,
	// SOURCE_DATE_EPOCH or default (0).
	EpochSource string `json:"epochSource"`
	// FormatVersion is the output-format version (the tar rule and the
	// compression settings together).
	FormatVersion string `json:"formatVersion"`
	// Compression is the layer compression and its fixed settings.
	Compression Compression `json:"compression"`
	// LayerEpochs are the epochs that git gave the layers (output format
	// 2 with epoch: git), in seconds since 1970, by the layer's field in
	// the spec (layers[0], accounts, systemd) and then by platform: a
	// rebuild from a clone that cannot say them (a shallow one, or none)
	// takes them from here.
	LayerEpochs map[string]map[string]int64 `json:"layerEpochs,omitempty"`
}

// Compression is a layer compression and its fixed settings.
type Compression struct {
	Algorithm string `json:"algorithm"`
	Settings  string `json:"settings"`
}

// ResourceDescriptor is SLSA's (and in-toto's) description of an artifact.
type ResourceDescriptor struct {
	Name        string            `json:"name,omitempty"`
	URI         string            `json:"uri,omitempty"`
	Digest      map[string]string `json:"digest,omitempty"`
	MediaType   string            `json:"mediaType,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// RunDetails are who built it, and when.
type RunDetails struct {
	Builder    Builder              `json:"builder"`
	Metadata   BuildMetadata        `json:"metadata"`
	Byproducts []ResourceDescriptor `json:"byproducts,omitempty"`
}

// Builder names repro and its version.
type Builder struct {
	ID      string            `json:"id"`
	Version map[string]string `json:"version,omitempty"`
}

// BuildMetadata holds the build's times: both are the epoch, so that the
// provenance is reproducible too.
type BuildMetadata struct {
	StartedOn  string `json:"startedOn"`
	FinishedOn string `json:"finishedOn"`
}

// BuildInput is what NewProvenance records.
type BuildInput struct {
	// SpecPath is the spec's path relative to the root of its git
	// repository (its base name outside git); SpecSHA256 its digest (hex).
	SpecPath, SpecSHA256 string
	Name                 string
	Vars                 map[string]string
	Platforms            []string
	Version              string
	Epoch                int64
	EpochSource          string
	FormatVersion        string
	Compression          Compression
	// LayerEpochs are the layer epochs git gave (InternalParameters).
	LayerEpochs map[string]map[string]int64
	// Base is the pinned base; nil for scratch.
	Base *BasePin
	// URLs maps each url the spec fetches to its sha256 (hex).
	URLs map[string]string
	// GitCommit is the context's commit; empty outside git.
	GitCommit string
	// LockPath and LockSHA256 name the lock file, when the build read one.
	LockPath, LockSHA256 string
	// Dependencies are further resolved inputs (Debian packages and
	// their repositories' indexes, for instance), recorded as given.
	Dependencies []ResourceDescriptor
	// Manifests maps each platform built to its image manifest digest
	// (sha256:…); they are the build's byproducts.
	Manifests map[string]string
	// ReproVersion is the version of repro itself.
	ReproVersion string
}

// BasePin is a base resolved to digests.
type BasePin struct {
	// Ref is the base as the spec writes it.
	Ref string
	// Digest (sha256:…) and MediaType are what the reference names.
	Digest, MediaType string
	// Platforms maps os/arch[/variant] to that platform's manifest digest;
	// only the platforms built are recorded.
	Platforms map[string]string
}

// NewProvenance returns the provenance of a build.
func NewProvenance(in BuildInput) (*Provenance, error) {
	if in.SpecSHA256 == "" || in.FormatVersion == "" {
		return nil, fmt.Errorf("provenance: the spec digest and the format version are required")
	}
	vars := map[string]string{}
	for k, v := range in.Vars {
		vars[k] = v
	}
	plats := append([]string{}, in.Platforms...)
	if plats == nil {
		plats = []string{}
	}
	when := time.Unix(in.Epoch, 0).UTC().Format(time.RFC3339)
	p := &Provenance{
		BuildDefinition: BuildDefinition{
			BuildType: BuildType,
			ExternalParameters: ExternalParameters{
				Spec:      ResourceDescriptor{URI: in.SpecPath, Digest: map[string]string{"sha256": in.SpecSHA256}},
				Name:      in.Name,
				Vars:      vars,
				Platforms: plats,
				Version:   in.Version,
			},
			InternalParameters: InternalParameters{
				Epoch:         in.Epoch,
				EpochSource:   in.EpochSource,
				FormatVersion: in.FormatVersion,
				Compression:   in.Compression,
				LayerEpochs:   in.LayerEpochs,
			},
		},
		RunDetails: RunDetails{
			Builder:  Builder{ID: BuilderID + "@" + in.ReproVersion, Version: map[string]string{"repro": in.ReproVersion}},
			Metadata: BuildMetadata{StartedOn: when, FinishedOn: when},
		},
	}
	var deps []ResourceDescriptor
	if b := in.Base; b != nil {
		d, err := digestSet(b.Digest)
		if err != nil {
			return nil, fmt.Errorf("provenance: base: %w", err)
		}
		deps = append(deps, ResourceDescriptor{Name: DepBase, URI: b.Ref, Digest: d, MediaType: b.MediaType})
		for _, plat := range sortedKeys(b.Platforms) {
			d, err := digestSet(b.Platforms[plat])
			if err != nil {
				return nil, fmt.Errorf("provenance: base %s: %w", plat, err)
			}
			deps = append(deps, ResourceDescriptor{Name: DepBaseImg + plat, URI: b.Ref, Digest: d})
		}
	}
	for _, u := range sortedKeys(in.URLs) {
		deps = append(deps, ResourceDescriptor{Name: DepURL, URI: u, Digest: map[string]string{"sha256": in.URLs[u]}})
	}
	if in.GitCommit != "" && in.GitCommit != "unknown" {
		deps = append(deps, ResourceDescriptor{Name: DepGit, Digest: map[string]string{"gitCommit": in.GitCommit}})
	}
	if in.LockSHA256 != "" {
		deps = append(deps, ResourceDescriptor{Name: DepLockFile, URI: in.LockPath, Digest: map[string]string{"sha256": in.LockSHA256}})
	}
	deps = append(deps, in.Dependencies...)
	sort.SliceStable(deps, func(i, j int) bool { return depKey(deps[i]) < depKey(deps[j]) })
	p.BuildDefinition.ResolvedDependencies = deps
	for _, plat := range sortedKeys(in.Manifests) {
		d, err := digestSet(in.Manifests[plat])
		if err != nil {
			return nil, fmt.Errorf("provenance: manifest %s: %w", plat, err)
		}
		p.RunDetails.Byproducts = append(p.RunDetails.Byproducts, ResourceDescriptor{
			Name: plat, Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json"})
	}
	return p, nil
}

// depKey orders dependencies: by name, then URI, then digest.
func depKey(d ResourceDescriptor) string {
	var ds []string
	for _, k := range sortedKeys(d.Digest) {
		ds = append(ds, k+":"+d.Digest[k])
	}
	return d.Name + "\x00" + d.URI + "\x00" + strings.Join(ds, ",")
}

// digestSet turns "sha256:hex" into {"sha256": "hex"}.
func digestSet(d string) (map[string]string, error) {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || alg == "" || hex == "" {
		return nil, fmt.Errorf("%q is not a digest (algorithm:hex)", d)
	}
	return map[string]string{alg: hex}, nil
}

// Bytes is the provenance's canonical JSON encoding.
func (p *Provenance) Bytes() ([]byte, error) { return canonical.JSON(p) }

// ParseProvenance reads a provenance predicate back. Unknown fields are
// errors, so that a provenance written by a newer repro is not half read.
func ParseProvenance(b []byte) (*Provenance, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p Provenance
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("reading provenance: %w", err)
	}
	if p.BuildDefinition.BuildType != BuildType {
		return nil, fmt.Errorf("reading provenance: build type %q; this repro reads %s", p.BuildDefinition.BuildType, BuildType)
	}
	return &p, nil
}

// Dependency returns the first resolved dependency called name.
func (p *Provenance) Dependency(name string) (ResourceDescriptor, bool) {
	for _, d := range p.BuildDefinition.ResolvedDependencies {
		if d.Name == name {
			return d, true
		}
	}
	return ResourceDescriptor{}, false
}

// BaseDigest is the digest (sha256:…) the base reference was pinned to,
// and the reference; empty for scratch.
func (p *Provenance) BaseDigest() (ref, digest string) {
	d, ok := p.Dependency(DepBase)
	if !ok {
		return "", ""
	}
	return d.URI, "sha256:" + d.Digest["sha256"]
}

// BasePlatforms maps each platform built to its base manifest digest.
func (p *Provenance) BasePlatforms() map[string]string {
	out := map[string]string{}
	for _, d := range p.BuildDefinition.ResolvedDependencies {
		if plat, ok := strings.CutPrefix(d.Name, DepBaseImg); ok {
			out[plat] = "sha256:" + d.Digest["sha256"]
		}
	}
	return out
}

// URLs maps each url the build fetched to its sha256 (hex).
func (p *Provenance) URLs() map[string]string {
	out := map[string]string{}
	for _, d := range p.BuildDefinition.ResolvedDependencies {
		if d.Name == DepURL {
			out[d.URI] = d.Digest["sha256"]
		}
	}
	return out
}

// GitCommit is the context's commit; empty when it was not in git.
func (p *Provenance) GitCommit() string {
	d, _ := p.Dependency(DepGit)
	return d.Digest["gitCommit"]
}

// Manifests maps each platform built to its manifest digest (sha256:…).
func (p *Provenance) Manifests() map[string]string {
	out := map[string]string{}
	for _, d := range p.RunDetails.Byproducts {
		out[d.Name] = "sha256:" + d.Digest["sha256"]
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
