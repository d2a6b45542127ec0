package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/reprobuild/repro/internal/atomicfs"
	"github.com/reprobuild/repro/pkg/attest"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
)

var sbomCmd = &command{
	name:  "sbom",
	usage: "sbom REF [--format spdx-json|cyclonedx-json] [-o FILE]",
	short: "print the SBOM of an image",
	long: `
Sbom reads the image (or each image of the index) that REF names and prints
its software bill of materials: SPDX 2.3 JSON by default, CycloneDX 1.5
JSON with --format cyclonedx-json.

It lists every file of the layers repro added (path, SHA-1 and SHA-256,
per layer), the base image as a package (pkg:oci/…), every Go binary's
main module and dependencies (from its build info), and the packages of
the base's dpkg status (/var/lib/dpkg/status, /var/lib/dpkg/status.d) or
apk database, when it has one. Which layers repro added is read from the
image's history.

The document is deterministic: its time is the image's created time (the
build's epoch), identifiers derive from content, everything is sorted.
repro build --sign attaches the same SPDX document as an attestation,
where the main module of each program that a go: entry compiled has the
build's version (.Version) in place of Go's "(devel)".

Examples:
  repro sbom oci:out/app:v1
  repro sbom registry.example.com/app:v1 --format cyclonedx-json -o app.cdx.json`,
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		o := &sbomOpts{g: g}
		fs.StringVar(&o.format, "format", string(attest.SPDXJSON), "the `FORMAT`: spdx-json or cyclonedx-json")
		fs.StringVarP(&o.out, "output", "o", "", "write the SBOM to `FILE` instead of stdout")
		fs.StringVar(&o.name, "name", "", "the image `NAME` to record (default: the repository's or the layout directory's last element)")
		fs.StringArrayVar(&o.insecure, "insecure-registry", nil, "speak plain HTTP to this registry `HOST` (repeatable; loopback needs none)")
		return o.run
	},
}

type sbomOpts struct {
	g        *globals
	format   string
	out      string
	name     string
	insecure []string
}

func (o *sbomOpts) run(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return fault.Bad(errors.New("name one image: repro sbom REF"))
	}
	format, err := attest.ParseFormat(o.format)
	if err != nil {
		return fault.Bad(fmt.Errorf("--format: %w", err))
	}
	ref, err := imageref.Parse(args[0])
	if err != nil {
		return fault.Bad(err)
	}
	ref = ref.WithInsecure(o.insecure)
	art, err := imageref.Open(ctx, ref, remoteOptions(ctx)...)
	if err != nil {
		return err
	}
	defer art.Close()
	name := o.name
	if name == "" {
		name = ref.ShortName()
	}
	doc, err := sbomOf(ctx, name, *art, format)
	if err != nil {
		return err
	}
	doc = append(doc, '\n')
	if o.out != "" {
		if err := atomicfs.WriteFile(o.out, doc); err != nil {
			return fmt.Errorf("-o: %w", err)
		}
		return nil
	}
	_, err = o.g.stdout.Write(doc)
	return err
}
