package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/reprobuild/repro/pkg/build"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/verify"
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
same --platform, --var, --version, --compression and --format as the build
did. The output format comes, when --format does not say, from REF's
verified provenance (with --key; a provenance that records none means
format 1), else from the format REF's history records, else from the
spec's format:, the lock's, or the newest, as a build chooses it.

When they match it prints "verified" and exits 0. When they do not, it
exits 1 and, with --against, explains every difference down to the layer,
file and field (as repro diff does). If REF was built with another output
format than the rebuild (recorded in its history), it says so first.

Examples:
  repro verify --expect sha256:3f1c…
  repro verify --against registry.example.com/app:v1.2.0 --version v1.2.0
  repro verify --format 1 --expect sha256:6252…   (an image an older release built)`,
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		o := &verifyOpts{g: g}
		o.shape.register(fs)
		fs.StringVar(&o.expect, "expect", "", "the digest the rebuild must have (`sha256:…`)")
		fs.StringVar(&o.against, "against", "", "the image (`REF`) the rebuild must equal")
		fs.StringVar(&o.key, "key", "", "also check REF's cosign signature and every attestation it carries with this public key `FILE`; its provenance then supplies the build's epoch, the layers' epochs (so that a shallow clone verifies a full clone's build), version, vars, platforms, compression and output format")
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
	target := verify.Target{Digest: o.expect, Name: o.against}
	if o.against != "" {
		if target.Artifact, err = openRef(ctx, o.against, o.shape.insecure); err != nil {
			return err
		}
		defer target.Artifact.Close()
		target.Local = isLocal(o.against)
	}
	req, err := o.shape.request(ctx, o.g, work)
	if err != nil {
		return err
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
			given := verify.Given{Version: o.fs.Changed("version"), Platforms: o.fs.Changed("platform"), Compression: o.fs.Changed("compression"), Format: o.fs.Changed("format"), Vars: o.fs.Changed("var")}
			if notes, err = verify.FromProvenance(&req, prov, given); err != nil {
				return err
			}
		} else {
			o.g.log.Info("no verified provenance: the build flags given are used as they are", "ref", o.against)
		}
	}
	bar := newProgress(o.g)
	req.Progress = bar.layer
	res, built, err := verify.Rebuild(ctx, req, target)
	bar.done()
	if err != nil {
		return err
	}
	res.Notes = append(notes, res.Notes...)
	what := o.against
	if what == "" {
		what = res.Expected
	}
	if n := onePlatformNote(built, res, what, o.shape.file); n != "" {
		res.Notes = append(res.Notes, n)
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

// isLocal reports whether s names a layout or an archive.
func isLocal(s string) bool {
	r, err := imageref.Parse(s)
	return err == nil && r.Transport != imageref.Registry
}

// onePlatformNote says how to verify one platform's image against a spec
// of several: the rebuilt index holds the very image expected (given by
// --expect or --against), so --platform is what was missing; "" when that
// is not the difference.
func onePlatformNote(built *build.Built, res *verify.Result, what, file string) string {
	if built == nil || built.Result == nil || res.Verified || built.Index == nil {
		return ""
	}
	ms, err := built.Manifests()
	if err != nil {
		return ""
	}
	for _, m := range ms {
		if m.Descriptor.Digest.String() == res.Expected {
			p := m.Platform.String()
			return fmt.Sprintf("%s is the %s image of the index %s builds; pass --platform %s to verify that image alone", what, p, file, p)
		}
	}
	return ""
}
