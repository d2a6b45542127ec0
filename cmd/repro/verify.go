package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/spf13/pflag"

	"github.com/reprobuild/repro/pkg/attest"
	"github.com/reprobuild/repro/pkg/build"
	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/diff"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/output"
)

var verifyCmd = &command{
	name:  "verify",
	usage: "verify [-f repro.yaml] (--expect sha256:… | --against REF) [build flags]",
	short: "rebuild from source and prove (or disprove) a published digest",
	long: `
Verify rebuilds the spec in isolation, into a temporary directory (your
outputs are never touched; the cache is used as a build would use it), and
compares the result with --expect (a digest) or --against (an image
reference). It takes every build flag that shapes the image, so give the
same --platform, --var, --version and --compression as the build did.

When they match it prints "verified" and exits 0. When they do not, it
exits 1 and, with --against, explains every difference down to the layer,
file and field (as repro diff does). If REF was built with another output
format version (recorded in its history), it says so first: a
compression-only difference is then expected, not a mystery.

Examples:
  repro verify --expect sha256:3f1c…
  repro verify --against registry.example.com/app:v1.2.0 --version v1.2.0`,
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		o := &verifyOpts{g: g}
		o.shape.register(fs)
		fs.StringVar(&o.expect, "expect", "", "the digest the rebuild must have (`sha256:…`)")
		fs.StringVar(&o.against, "against", "", "the image (`REF`) the rebuild must equal")
		fs.StringVar(&o.key, "key", "", "also check REF's cosign signature and every attestation it carries with this public key `FILE`; its provenance then supplies the build's epoch, version, vars, platforms and compression")
		o.fs = fs
		return o.run
	},
}

type verifyOpts struct {
	g       *globals
	shape   shapeFlags
	expect  string
	against string
	key     string
	fs      *pflag.FlagSet
}

type verifyResult struct {
	Verified bool         `json:"verified"`
	Rebuilt  string       `json:"rebuilt"`
	Expected string       `json:"expected"`
	Notes    []string     `json:"notes,omitempty"`
	Diff     *diff.Report `json:"diff,omitempty"`
	// Damaged says what is wrong with a layout or archive that names the
	// rebuilt digest but does not hold its bytes.
	Damaged string `json:"damaged,omitempty"`
}

func (o *verifyOpts) run(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return fault.Bad(fmt.Errorf("unexpected argument %q; the spec is given with -f and the image with --against", args[0]))
	}
	if (o.expect == "") == (o.against == "") {
		return fault.Bad(fmt.Errorf("give exactly one of --expect sha256:… and --against REF"))
	}
	if o.expect != "" && (!strings.HasPrefix(o.expect, "sha256:") || len(o.expect) != 71) {
		return fault.Bad(fmt.Errorf("--expect %q is not a digest; write sha256: and 64 hex digits", o.expect))
	}
	work, removeWork, err := workDir("repro-verify-")
	if err != nil {
		return err
	}
	defer removeWork()
	var want *imageref.Artifact
	if o.against != "" {
		if want, err = openRef(ctx, o.against, o.shape.insecure); err != nil {
			return err
		}
		defer want.Close()
		o.expect = want.Descriptor.Digest.String()
	}
	var notes []string
	if o.key != "" {
		if o.against == "" {
			return fault.Bad(fmt.Errorf("--key checks the signature of --against REF; give --against"))
		}
		r, err := imageref.Parse(o.against)
		if err != nil {
			return fault.Bad(err)
		}
		rep, err := verifySigned(ctx, o.g, r.WithInsecure(o.shape.insecure), o.key, nil)
		if err != nil {
			return err
		}
		if prov, err := rep.Provenance(); err == nil {
			notes = append(notes, o.applyProvenance(prov)...)
		} else {
			o.g.log.Info("no verified provenance: the build flags given are used as they are", "ref", o.against)
		}
	}
	b, err := o.shape.build(ctx, o.g, work)
	if err != nil {
		return err
	}
	res := verifyResult{Rebuilt: b.Digest.String(), Expected: o.expect, Notes: notes}
	res.Verified = res.Rebuilt == res.Expected
	if res.Verified && want != nil && isLocal(o.against) {
		// A layout or archive names the right digest; it must also hold
		// the bytes: every blob present and hashing to its digest. (A
		// registry checks digests as blobs arrive.)
		if err := checkBlobs(want); err != nil {
			res.Verified = false
			res.Damaged = err.Error()
		}
	}
	if !res.Verified && want != nil && res.Damaged == "" {
		res.Notes = append(res.Notes, formatNotes(want)...)
		layout := filepath.Join(work, "rebuilt")
		ref := imageref.Reference{Transport: imageref.OCI, Path: layout, Tag: "rebuilt"}
		if err := output.Write(ctx, ref, output.Artifact{Image: b.Image, Index: b.Index}, output.Options{}); err != nil {
			return err
		}
		got, err := imageref.Open(ctx, ref)
		if err != nil {
			return err
		}
		defer got.Close()
		if res.Diff, err = diff.Compare(ctx, want, got, o.against, "rebuilt from "+o.shape.file); err != nil {
			return err
		}
	}
	if o.g.json {
		enc := json.NewEncoder(o.g.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else if res.Verified {
		fmt.Fprintf(o.g.stdout, "verified: %s rebuilds to %s\n", o.shape.file, res.Rebuilt)
	} else if res.Damaged != "" {
		fmt.Fprintf(o.g.stdout, "NOT verified: %s rebuilds to %s, the digest %s names, but %s does not hold that image's bytes: %s\n", o.shape.file, res.Rebuilt, o.against, o.against, res.Damaged)
	} else {
		fmt.Fprintf(o.g.stdout, "NOT verified: %s rebuilds to %s, expected %s\n", o.shape.file, res.Rebuilt, res.Expected)
		for _, n := range res.Notes {
			fmt.Fprintln(o.g.stdout, "note: "+n)
		}
		if res.Diff != nil {
			res.Diff.WriteText(o.g.stdout)
		} else {
			fmt.Fprintln(o.g.stdout, "give --against REF instead of --expect to see what differs")
		}
	}
	if !res.Verified {
		return errSilent{fault.CheckFailed}
	}
	return nil
}

// applyProvenance takes the build's inputs from verified provenance,
// where the user gave no flag for them, and returns notes on what it read.
func (o *verifyOpts) applyProvenance(p *attest.Provenance) []string {
	ext, in := p.BuildDefinition.ExternalParameters, p.BuildDefinition.InternalParameters
	var notes []string
	if in.FormatVersion != "" && in.FormatVersion != compress.FormatVersion {
		notes = append(notes, fmt.Sprintf("the published image was written with output format %s and this repro writes %s: layers may differ in compression only", in.FormatVersion, compress.FormatVersion))
	}
	if !o.fs.Changed("version") && ext.Version != "" {
		o.shape.version = ext.Version
	}
	if !o.fs.Changed("platform") && len(ext.Platforms) > 0 {
		o.shape.platforms = ext.Platforms
	}
	if !o.fs.Changed("compression") && in.Compression.Algorithm != "" {
		o.shape.compression = in.Compression.Algorithm
	}
	if !o.fs.Changed("var") {
		keys := make([]string, 0, len(ext.Vars))
		for k := range ext.Vars {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			o.shape.vars = append(o.shape.vars, k+"="+ext.Vars[k])
		}
	}
	epoch := in.Epoch
	o.shape.epoch = &build.Epoch{Time: time.Unix(epoch, 0).UTC(), Source: "provenance"}
	notes = append(notes, fmt.Sprintf("from the verified provenance: version %q, platforms %v, compression %s, epoch %d, %d vars", o.shape.version, o.shape.platforms, o.shape.compression, epoch, len(ext.Vars)))
	return notes
}

// formatNotes says when the published image was written with another
// output format version, which repro records in each history entry.
func formatNotes(a *imageref.Artifact) []string {
	img := a.Image
	if a.Index != nil {
		im, err := a.Index.IndexManifest()
		if err != nil || len(im.Manifests) == 0 {
			return nil
		}
		if img, err = a.Index.Image(im.Manifests[0].Digest); err != nil {
			return nil
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil
	}
	for _, h := range cf.History {
		if strings.HasPrefix(h.Comment, "repro-layer/") && h.Comment != compress.FormatVersion {
			return []string{fmt.Sprintf("the published image was written with output format %s and this repro writes %s: layers may differ in compression only", h.Comment, compress.FormatVersion)}
		}
	}
	return nil
}

// isLocal reports whether s names a layout or an archive.
func isLocal(s string) bool {
	r, err := imageref.Parse(s)
	return err == nil && r.Transport != imageref.Registry
}

// checkBlobs reads every manifest, config and layer of a and checks each
// against its digest and size.
func checkBlobs(a *imageref.Artifact) error {
	if a.Index != nil {
		return validate.Index(a.Index)
	}
	return validate.Image(a.Image)
}
