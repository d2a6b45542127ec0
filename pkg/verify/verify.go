package verify

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/reprobuild/repro/pkg/attest"
	"github.com/reprobuild/repro/pkg/build"
	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/diff"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/output"
	"github.com/reprobuild/repro/pkg/spec"
)

// Target is what a rebuild must equal: a digest, or an image or index
// opened from a reference (whose digest it then must have).
type Target struct {
	// Digest is the digest the rebuild must have (sha256:…), when
	// Artifact is not set.
	Digest string
	// Artifact, when set, is the published image or index; the rebuild
	// must have its digest, and a mismatch is explained file by file.
	Artifact *imageref.Artifact
	// Name names Artifact in the report (the reference as the user
	// wrote it).
	Name string
	// Local says Artifact is a layout or an archive, which must also
	// hold every blob, hashing right (a registry checks digests itself).
	Local bool
}

// Result is a rebuild's verdict.
type Result struct {
	Verified bool         `json:"verified"`
	Rebuilt  string       `json:"rebuilt"`
	Expected string       `json:"expected"`
	Notes    []string     `json:"notes,omitempty"`
	Diff     *diff.Report `json:"diff,omitempty"`
	// Damaged says what is wrong with a layout or archive that names the
	// rebuilt digest but does not hold its bytes.
	Damaged string `json:"damaged,omitempty"`
}

// Rebuild builds req (its WorkDir must be set, and is where the rebuilt
// image is written to be compared) and compares the result with target.
// When req names no output format and the target's history records one
// (FormatOf), the rebuild takes it, so that an image an older release
// built verifies as it is; a note says so. A mismatch is a Result with
// Verified false, not an error.
func Rebuild(ctx context.Context, req build.Request, target Target) (*Result, *build.Built, error) {
	if req.WorkDir == "" {
		return nil, nil, fmt.Errorf("verify.Rebuild: the request has no WorkDir")
	}
	want := target.Digest
	var notes []string
	if target.Artifact != nil {
		want = target.Artifact.Descriptor.Digest.String()
		if f, ok := FormatOf(target.Artifact); ok && req.Format == 0 {
			req.Format = f
			notes = append(notes, fmt.Sprintf("output format %s, as %s's history records it", f, target.Name))
		}
	}
	b, err := build.Run(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	res := &Result{Rebuilt: b.Descriptor.Digest.String(), Expected: want, Notes: notes}
	res.Verified = res.Rebuilt == res.Expected
	if res.Verified && target.Artifact != nil && target.Local {
		// A layout or archive names the right digest; it must also hold
		// the bytes: every blob present and hashing to its digest.
		if err := target.Artifact.Validate(); err != nil {
			res.Verified = false
			res.Damaged = err.Error()
		}
	}
	if res.Verified || target.Artifact == nil || res.Damaged != "" {
		return res, b, nil
	}
	res.Notes = append(res.Notes, FormatNotes(target.Artifact, b.Format)...)
	ref := imageref.Reference{Transport: imageref.OCI, Path: filepath.Join(req.WorkDir, "rebuilt"), Tag: "rebuilt"}
	if err := output.Write(ctx, ref, b.Artifact, output.Options{}); err != nil {
		return nil, nil, err
	}
	got, err := imageref.Open(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	defer got.Close()
	if res.Diff, err = diff.Compare(ctx, target.Artifact, got, target.Name, "rebuilt from "+req.File); err != nil {
		return nil, nil, err
	}
	return res, b, nil
}

// Given says which inputs of a request its caller set on purpose: the
// provenance does not override those.
type Given struct {
	Version, Platforms, Compression, Format, Vars bool
}

// FromProvenance takes the build's inputs from a verified provenance into
// req, where given does not say the caller set them: version, platforms,
// compression, output format (a provenance that records none was written
// before formats were chosen: format 1), vars, and always the epoch and
// the Go toolchain. It returns notes on what it took.
func FromProvenance(req *build.Request, p *attest.Provenance, given Given) ([]string, error) {
	ext, in := p.BuildDefinition.ExternalParameters, p.BuildDefinition.InternalParameters
	var notes []string
	if !given.Format {
		f := compress.Format1
		if in.FormatVersion != "" {
			var err error
			if f, err = compress.ParseFormat(in.FormatVersion); err != nil {
				return nil, fault.Bad(fmt.Errorf("the provenance's output format: %w; verify with a repro that writes it", err))
			}
		}
		req.Format = f
	}
	if !given.Version && ext.Version != "" {
		req.Version = ext.Version
	}
	if !given.Platforms && len(ext.Platforms) > 0 {
		req.Platforms = nil
		for _, s := range ext.Platforms {
			pl, err := spec.ParsePlatform(s)
			if err != nil {
				return nil, fault.Bad(fmt.Errorf("the provenance's platform %q: %w", s, err))
			}
			req.Platforms = append(req.Platforms, pl)
		}
	}
	if !given.Compression && in.Compression.Algorithm != "" {
		alg, err := compress.Parse(in.Compression.Algorithm)
		if err != nil {
			return nil, fault.Bad(fmt.Errorf("the provenance's compression: %w", err))
		}
		req.Compression = alg
	}
	if !given.Vars && len(ext.Vars) > 0 {
		if req.Vars == nil {
			req.Vars = map[string]string{}
		}
		for k, v := range ext.Vars {
			req.Vars[k] = v
		}
	}
	if d, ok := p.Dependency(attest.DepGoToolchain); ok && build.ValidToolchain(d.Annotations["version"]) {
		req.GoToolchain = d.Annotations["version"]
		notes = append(notes, "from the verified provenance: Go toolchain "+req.GoToolchain)
	}
	req.Epoch = &build.Epoch{Time: time.Unix(in.Epoch, 0).UTC(), Source: build.EpochGiven}
	if len(in.LayerEpochs) > 0 {
		// The layer epochs git gave the published build: a shallow clone
		// (or a copy without .git) cannot say them, a full one agrees.
		req.LayerEpochs = build.LayerEpochs(in.LayerEpochs)
		notes = append(notes, fmt.Sprintf("from the verified provenance: the epochs of %d layers, as git gave them", len(in.LayerEpochs)))
	}
	plats := make([]string, len(req.Platforms))
	for i, p := range req.Platforms {
		plats[i] = p.String()
	}
	alg := req.Compression
	if alg == "" {
		alg = compress.Gzip
	}
	format := "the build's default"
	if req.Format != 0 {
		format = req.Format.String()
	}
	notes = append(notes, fmt.Sprintf("from the verified provenance: version %q, platforms %v, compression %s, output format %s, epoch %d, %d vars", req.Version, plats, alg, format, in.Epoch, len(ext.Vars)))
	return notes, nil
}

// FormatNotes says when the published image a was written with another
// output format than rebuilt, the rebuild's: repro records the format in
// each history entry of its own layers.
func FormatNotes(a *imageref.Artifact, rebuilt compress.Format) []string {
	f, ok := FormatOf(a)
	if !ok || f == rebuilt {
		return nil
	}
	return []string{fmt.Sprintf("the published image was written with output format %s and the rebuild with %s: rebuild in output format %d", f, rebuilt, int(f))}
}

// FormatOf is the output format that repro recorded in the history of a
// (an index: of its first image), if it names one this repro writes.
func FormatOf(a *imageref.Artifact) (compress.Format, bool) {
	all, err := a.Images() // an index's first image, nested or not
	if err != nil || len(all) == 0 {
		return 0, false
	}
	img, err := all[0].Image()
	if err != nil {
		return 0, false
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return 0, false
	}
	for _, h := range cf.History {
		if strings.HasPrefix(h.Comment, "repro-layer/") {
			f, err := compress.ParseFormat(h.Comment)
			return f, err == nil
		}
	}
	return 0, false
}
