package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/pflag"

	"github.com/reprobuild/repro/pkg/build"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/output"
	"github.com/reprobuild/repro/pkg/sign"
)

var indexCmd = &command{
	name:  "index",
	usage: "index [-f repro.yaml] [build flags] REF@sha256:… … [-o REF]… [--push] [--sign --key FILE]",
	short: "assemble the spec's image index from per-platform images built elsewhere",
	long: `
Index is the merge step of a build fanned out over CI runners. Each runner
builds one platform and pushes it by digest, with no tag:

  repro build --platform linux/arm64 --push-by-digest registry.example.com/app

and one job gives every digest to repro index, in any order:

  repro index registry.example.com/app@sha256:… registry.example.com/app@sha256:… --push

Index assembles the image index the spec describes for those platforms:
the same manifest order, annotations and media types, so its digest is the
one repro build of every platform gives on one machine (it prints it, last
line on stdout, with or without -o and --push). Nothing is rebuilt.

It refuses (exit 2, with the reason) a platform given twice, a platform of
the spec (after --platform) that is missing, a platform the spec does not
build, and an image the spec would not make: one whose platform,
annotations, or config other than its rootfs and history differ from what
this spec and these flags (--version, --var, the commit) expand to, or
whose own layers are of another output format (--format, recorded in the
history) or compression (--compression) than these flags give. So a
failed runner, or one that built another version or commit, cannot put a
partial or foreign index under the release tags. With --scan-base it
reports the secrets in the base's layers, as build does.

-o writes layouts and archives (fetching the blobs); --push sends the
spec's tags, only once the index is complete; --sign signs the index and
attaches the SBOM and the SLSA provenance, which names every per-platform
image as a resolved dependency.

Examples:
  repro index -f repro.yaml $(cat digests.txt) --push --sign --key cosign.key
  repro index -f repro.yaml --version v1.2.3 host/app@sha256:… host/app@sha256:… -o oci:out/app:v1.2.3
specs/ci holds GitHub Actions, GitLab CI and Kubernetes examples.`,
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		o := &indexOpts{g: g}
		o.shape.register(fs)
		fs.StringArrayVarP(&o.outputs, "output", "o", nil, "also write the index to `REF` (repeatable): a layout, an archive or a registry")
		fs.BoolVar(&o.push, "push", false, "push the index to every tag the spec lists (templates expanded)")
		fs.StringVar(&o.metadataFile, "metadata-file", "", "also write the result as JSON to `FILE`")
		fs.BoolVar(&o.sign, "sign", false, "sign every registry and oci: output (--key or --keyless), attaching the SBOM and provenance attestations")
		o.signing.register(fs)
		fs.BoolVar(&o.sbom, "sbom", true, "with --sign, attach the SPDX SBOM attestation")
		fs.BoolVar(&o.provenance, "provenance", true, "with --sign, attach the SLSA v1 provenance attestation")
		return o.run
	},
}

type indexOpts struct {
	g            *globals
	shape        shapeFlags
	outputs      []string
	push         bool
	metadataFile string
	sign         bool
	signing      signingFlags
	sbom         bool
	provenance   bool
}

func (o *indexOpts) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fault.Bad(errors.New("name the per-platform images, by digest (host/repo@sha256:…, as build --push-by-digest prints them)"))
	}
	var parts []imageref.Reference
	for _, a := range args {
		r, err := imageref.Parse(a)
		if err != nil {
			return fault.Bad(err)
		}
		if _, ok := r.Name.(name.Digest); !ok && r.Digest == "" {
			repo := a
			if r.Transport == imageref.Registry {
				repo = r.Name.Context().Name()
			}
			return fault.Bad(fmt.Errorf("%s: repro index takes images by digest (%s@sha256:…), as build --push-by-digest prints them, so that what it assembles cannot move", a, repo))
		}
		parts = append(parts, r.WithInsecure(o.shape.insecure))
	}
	given, err := checkOutputs(o.outputs)
	if err != nil {
		return err
	}
	if !o.push && len(given) == 0 && o.sign {
		return fault.Bad(errors.New("--sign signs what index writes: add --push or -o"))
	}
	signer, err := o.signing.signerIf(ctx, o.sign)
	if err != nil {
		return err
	}
	work, removeWork, err := workDir("repro-index-")
	if err != nil {
		return err
	}
	defer removeWork()
	start := time.Now()
	req, err := o.shape.request(ctx, o.g, work)
	if err != nil {
		return err
	}
	var opened []build.Part
	for _, r := range parts {
		a, err := imageref.Open(ctx, r, remoteOptions(ctx)...)
		if err != nil {
			return err
		}
		defer a.Close()
		if a.Image == nil {
			return fault.Bad(fmt.Errorf("%s is an image index; repro index takes one image per platform", r))
		}
		opened = append(opened, build.Part{Ref: r.String(), Image: a.Image})
	}
	b, err := build.Assemble(ctx, req, opened)
	if err != nil {
		return err
	}
	refs, tags, err := outputRefs(b, o.outputs, o.push, o.shape.insecure)
	if err != nil {
		return err
	}
	if o.sign {
		if err := checkSignable(refs); err != nil {
			return err
		}
	}
	art := b.Artifact
	if err := writeOutputs(ctx, o.g, refs, art, output.Options{DefaultTag: "latest", Log: o.g.log, Remote: remoteOptions(ctx)}); err != nil {
		return err
	}
	if o.sign {
		if err := signBuilt(ctx, o.g, b, refs, signer, o.sbom, o.provenance); err != nil {
			return err
		}
	}
	o.g.log.Info("assembled", "name", b.Spec.Name, "digest", b.Descriptor.Digest.String(), "platforms", len(b.Platforms), "took", time.Since(start).Round(time.Millisecond))
	out, err := resultOf(b, refs, tags)
	if err != nil {
		return err
	}
	if o.metadataFile != "" {
		if err := writeMetadata(o.metadataFile, out); err != nil {
			return err
		}
	}
	if o.g.json {
		return json.NewEncoder(o.g.stdout).Encode(out)
	}
	fmt.Fprintln(o.g.stdout, b.Descriptor.Digest.String())
	return nil
}

// signerIf is the signer --key or --keyless names when signing, and nil
// when not; either flag without --sign is bad usage.
func (f *signingFlags) signerIf(ctx context.Context, signing bool) (*sign.Signer, error) {
	if signing {
		return f.signer(ctx)
	}
	if f.key != "" || f.keyless {
		return nil, fault.Bad(errors.New("--key and --keyless sign with --sign; add --sign"))
	}
	return nil, nil
}

// resultOf is what build and index print with --json and write to
// --metadata-file.
func resultOf(b *build.Built, refs []imageref.Reference, tags []string) (buildResult, error) {
	out := buildResult{
		Digest: b.Descriptor.Digest.String(), MediaType: string(b.Descriptor.MediaType), Name: b.Spec.Name, Version: b.Values.Version, Epoch: b.Values.Epoch,
		FormatVersion: b.Format.String(), Compression: string(b.Compression), Outputs: []string{}, Tags: tags,
	}
	for _, r := range refs {
		out.Outputs = append(out.Outputs, r.String())
	}
	ms, err := b.Manifests()
	if err != nil {
		return out, err
	}
	for _, m := range ms {
		out.Manifests = append(out.Manifests, manifestResult{Platform: m.Platform.String(), Digest: m.Digest.String(), Size: m.Size})
	}
	return out, nil
}
