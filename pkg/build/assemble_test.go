package build

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/output"
	"github.com/reprobuild/repro/pkg/spec"
)

// TestAssemble: per-platform images built one at a time (as CI runners
// do), given in any order, assemble into the index a build of every
// platform gives, byte for byte, on a base too; what the spec would not
// make is refused, with the reason.
func TestAssemble(t *testing.T) {
	ctx := context.Background()
	baseSpec := setup(t, "version: 1\nname: base\nplatforms: [linux/amd64, linux/arm64]\nlayers:\n  - contents:\n      - {path: /etc/base, content: base}\nconfig:\n  env: {FROM_BASE: \"1\"}\n  cmd: [/bin/base]\n", nil)
	res, err := Build(ctx, baseSpec, opts(t, baseSpec))
	if err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(t.TempDir(), "base")
	if err := output.Write(ctx, imageref.Reference{Transport: imageref.OCI, Path: layout, Tag: "v1"}, imageref.Artifact{Index: res.Index}, output.Options{}); err != nil {
		t.Fatal(err)
	}
	app := setup(t, fmt.Sprintf(`version: 1
name: app
base: oci:%s@%s
platforms: [linux/amd64, linux/arm64, linux/arm/v7]
layers:
  - contents:
      - {path: /etc/arch, content: "{{.Arch}}"}
      - {path: /etc/plat, source: "p-{{.Arch}}"}
vars: {tier: dev}
config:
  env: {TIER: "{{.Vars.tier}}"}
annotations: {org.opencontainers.image.version: "{{.Version}}"}
`, layout, res.Descriptor.Digest), map[string]string{"p-amd64": "a", "p-arm64": "b", "p-arm": "c"})
	// The base has no linux/arm/v7: every request narrows the spec to
	// the base's two platforms.
	file := filepath.Join(app.Dir, "repro.yaml")
	env := time.Unix(1700000000, 0)
	req := func(version string, plats ...string) Request {
		r := Request{File: file, SourceDateEpoch: &env, Version: version, Cache: cache.New(t.TempDir()), WorkDir: t.TempDir()}
		for _, p := range plats {
			pl, err := spec.ParsePlatform(p)
			if err != nil {
				t.Fatal(err)
			}
			r.Platforms = append(r.Platforms, pl)
		}
		return r
	}
	whole, err := Run(ctx, req("v1", "linux/amd64", "linux/arm64"))
	if err != nil {
		t.Fatal(err)
	}
	part := func(version, plat string) Part {
		b, err := Run(ctx, req(version, plat))
		if err != nil {
			t.Fatal(err)
		}
		return Part{Ref: "reg.example/app@" + b.Descriptor.Digest.String(), Image: b.Image}
	}
	amd, arm := part("v1", "linux/amd64"), part("v1", "linux/arm64")
	got, err := Assemble(ctx, req("v1", "linux/amd64", "linux/arm64"), []Part{arm, amd})
	if err != nil {
		t.Fatal(err)
	}
	if got.Descriptor.Digest != whole.Descriptor.Digest {
		t.Fatalf("assembled %s; the build of both platforms gave %s", got.Descriptor.Digest, whole.Descriptor.Digest)
	}
	a, _ := got.Index.RawManifest()
	w, _ := whole.Index.RawManifest()
	if string(a) != string(w) {
		t.Fatalf("index bytes differ:\n%s\n%s", a, w)
	}
	if len(got.PartRefs) != 2 || got.PartRefs[0] != amd.Ref || got.PartRefs[1] != arm.Ref {
		t.Errorf("parts, in the spec's order: %v", got.PartRefs)
	}
	in, err := got.ProvenanceInput("test")
	if err != nil {
		t.Fatal(err)
	}
	var named int
	for _, d := range in.Dependencies {
		if strings.HasPrefix(d.Name, "part:") && (d.URI == amd.Ref || d.URI == arm.Ref) && d.MediaType == "application/vnd.oci.image.manifest.v1+json" {
			named++
		}
	}
	if named != 2 {
		t.Errorf("the provenance names %d of the 2 parts: %+v", named, in.Dependencies)
	}

	prod := req("v1", "linux/amd64", "linux/arm64")
	prod.Vars = map[string]string{"tier": "prod"}
	for _, c := range []struct {
		name  string
		req   Request
		parts []Part
		want  string
	}{
		{"twice", req("v1", "linux/amd64", "linux/arm64"), []Part{amd, amd, arm}, "linux/amd64 is given twice"},
		{"missing", req("v1", "linux/amd64", "linux/arm64"), []Part{amd}, "no manifest for linux/arm64"},
		{"not built", req("v1", "linux/amd64"), []Part{amd, arm}, "builds linux/amd64"},
		{"another version", req("v1", "linux/amd64", "linux/arm64"), []Part{part("v2", "linux/amd64"), arm}, `org.opencontainers.image.version = "v2", the spec makes "v1"`},
		{"another var in the config", prod, []Part{amd, arm}, `config.Env = "[\"FROM_BASE=1\",\"TIER=dev\"]", the spec makes "[\"FROM_BASE=1\",\"TIER=prod\"]"`},
	} {
		_, err := Assemble(ctx, c.req, c.parts)
		if !errors.Is(err, ErrNotTheSpecs) || fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want ErrNotTheSpecs, bad input, with %q", c.name, err, c.want)
		}
	}
}
