package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/rootfs"
)

var inspectCmd = &command{
	name:  "inspect",
	usage: "inspect REF [--files] [--platform P] [--json]",
	short: "show an image's digest, manifest, config, layers and files",
	long: `
Inspect shows what REF holds: its digest and media type, the manifest (or
the index and each platform's manifest), the config, and each layer's
digest, diff ID, size and media type. With --files it also lists the final
filesystem, whiteouts and opaque directories applied: type, mode, owner,
size, sha256 and link target of every path. Layers are streamed, never
held in memory.

REF is oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE or a
registry reference. For an index, --files lists the filesystem of the
platform given by --platform (default: every platform).

Examples:
  repro inspect oci:out/app:v1
  repro inspect --files --json registry.example.com/app:v1 | jq '.platforms[0].files'`,
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		o := &inspectOpts{g: g}
		fs.BoolVar(&o.files, "files", false, "also list every file of the final filesystem")
		fs.StringVar(&o.platform, "platform", "", "for an index: only this platform (`os/arch[/variant]`)")
		fs.StringArrayVar(&o.insecure, "insecure-registry", nil, "speak plain HTTP to this registry `HOST` (repeatable)")
		return o.run
	},
}

type inspectOpts struct {
	g        *globals
	files    bool
	platform string
	insecure []string
}

type inspectJSON struct {
	Ref       string            `json:"ref"`
	Digest    string            `json:"digest"`
	MediaType string            `json:"mediaType"`
	Size      int64             `json:"size"`
	Index     json.RawMessage   `json:"index,omitempty"`
	Platforms []inspectPlatform `json:"platforms"`
}

// inspectPlatform embeds imageref.Summary, so its fields sit between
// platform and files in the JSON, as they always have.
type inspectPlatform struct {
	Platform string `json:"platform"`
	imageref.Summary
	Files []*rootfs.File `json:"files,omitempty"`
}

func openRef(ctx context.Context, s string, insecure []string) (*imageref.Artifact, error) {
	r, err := imageref.Parse(s)
	if err != nil {
		return nil, fault.Bad(err)
	}
	return imageref.Open(ctx, r.WithInsecure(insecure), remoteOptions(ctx)...)
}

func (o *inspectOpts) run(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return fault.Bad(fmt.Errorf("give one image reference, like oci:out/app:v1"))
	}
	a, err := openRef(ctx, args[0], o.insecure)
	if err != nil {
		return err
	}
	defer a.Close()
	out := inspectJSON{Ref: args[0], Digest: a.Descriptor.Digest.String(), MediaType: string(a.Descriptor.MediaType), Size: a.Descriptor.Size}
	if a.Index != nil {
		raw, err := a.Index.RawManifest()
		if err != nil {
			return err
		}
		out.Index = raw
	}
	if a.Index == nil && o.platform != "" {
		// One image: --platform must be its own, as disk and test refuse another.
		if _, err := a.Pick(o.platform, ""); err != nil {
			return fmt.Errorf("%s: %w", args[0], err)
		}
	}
	imgs, err := a.PlatformImages(o.platform) // nested indexes too, to imageref.MaxIndexDepth
	if err != nil {
		return err
	}
	if len(imgs) == 0 && a.Index != nil && o.platform != "" {
		return fault.Bad(fmt.Errorf("%s has no %s image", args[0], o.platform))
	}
	for _, p := range imgs {
		ip, err := inspectImage(ctx, p.Platform, p.Image, o.files)
		if err != nil {
			return err
		}
		out.Platforms = append(out.Platforms, *ip)
	}
	if o.g.json {
		enc := json.NewEncoder(o.g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	writeInspect(o.g.stdout, &out)
	return nil
}

func inspectImage(ctx context.Context, name string, img v1.Image, files bool) (*inspectPlatform, error) {
	sum, err := imageref.Summarize(img)
	if err != nil {
		return nil, err
	}
	ip := &inspectPlatform{Platform: name, Summary: *sum}
	if files {
		fs, err := rootfs.Read(ctx, img)
		if err != nil {
			if fault.KindOf(err) == fault.BadInput { // a hostile layer (pkg/rootfs limits)
				return nil, err
			}
			return nil, fault.Op(err)
		}
		ip.Files = fs.Files()
	}
	return ip, nil
}

func writeInspect(w io.Writer, out *inspectJSON) {
	fmt.Fprintf(w, "%s\n  digest:     %s\n  media type: %s\n  size:       %d\n", out.Ref, out.Digest, out.MediaType, out.Size)
	if out.Index != nil {
		fmt.Fprintf(w, "index:\n%s\n", indentJSON(out.Index, "  "))
	}
	for _, p := range out.Platforms {
		fmt.Fprintf(w, "\n%s  %s\nmanifest:\n%s\nconfig:\n%s\nlayers:\n", p.Platform, p.Digest, indentJSON(p.Manifest, "  "), indentJSON(p.Config, "  "))
		for i, l := range p.Layers {
			fmt.Fprintf(w, "  [%d] %s\n      diff ID %s, %d bytes, %s\n", i, l.Digest, l.DiffID, l.Size, l.MediaType)
		}
		if p.Files != nil {
			fmt.Fprintf(w, "files (%d):\n", len(p.Files))
			for _, f := range p.Files {
				line := fmt.Sprintf("  %-8s %04o %5d:%-5d %10d", f.Kind, f.Mode, f.UID, f.GID, f.Size)
				if f.SHA256 != "" {
					line += " " + f.SHA256[:12]
				} else {
					line += "             "
				}
				line += " " + f.Path
				if f.Link != "" {
					line += " -> " + f.Link
				}
				fmt.Fprintln(w, line)
			}
		}
	}
}

func indentJSON(raw []byte, indent string) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return indent + string(raw)
	}
	b, _ := json.MarshalIndent(v, indent, "  ")
	return indent + string(b)
}
