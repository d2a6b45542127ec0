package build

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/reprobuild/repro/pkg/apt"
	"github.com/reprobuild/repro/pkg/attest"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/lock"
	"github.com/reprobuild/repro/pkg/spec"
)

// TestAptDependencies: the provenance of a build with Debian packages
// records each source's InRelease and index digests and every .deb pin,
// once, for the platforms built.
func TestAptDependencies(t *testing.T) {
	src := apt.SourceDigest{URL: "http://deb.example/debian/", Suite: "bookworm", InRelease: "aa",
		Indexes: []apt.IndexDigest{{Path: "main/binary-amd64/Packages.xz", SHA256: "bb"}}}
	pin := apt.Pin{Name: "nginx-light", Version: "1.22.1-9", Architecture: "amd64", Filename: "pool/main/n/nginx/nginx-light_1.22.1-9_amd64.deb", SHA256: "cc", Source: "http://deb.example/debian"}
	b := &Built{
		Result: &Result{Platforms: []spec.Platform{{OS: "linux", Arch: "amd64"}}},
		Lock: &lock.File{Apt: map[string]lock.Apt{
			"linux/amd64": {Sources: []apt.SourceDigest{src}, Layers: []lock.AptLayer{{Pins: []apt.Pin{pin}}, {Pins: []apt.Pin{pin}}}},
			"linux/arm64": {Sources: []apt.SourceDigest{{URL: "http://other/", Suite: "x", InRelease: "dd"}}},
		}},
	}
	deps := b.aptDependencies()
	got := map[string]string{}
	for _, d := range deps {
		got[d.Name+" "+d.URI] = d.Digest["sha256"]
	}
	want := map[string]string{
		"apt-inrelease http://deb.example/debian/dists/bookworm/InRelease":                 "aa",
		"apt-index http://deb.example/debian/dists/bookworm/main/binary-amd64/Packages.xz": "bb",
		"deb:nginx-light=1.22.1-9:amd64 " + pin.URL():                                      "cc",
	}
	if len(deps) != len(want) {
		t.Errorf("%d dependencies, want %d: %v", len(deps), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
}

func TestDebDigests(t *testing.T) {
	pin := apt.Pin{Name: "tzdata", Version: "2024a-0+deb12u1", Architecture: "all", SHA256: "cc"}
	b := &Built{
		Result: &Result{Platforms: []spec.Platform{{OS: "linux", Arch: "amd64"}}},
		Lock:   &lock.File{Apt: map[string]lock.Apt{"linux/amd64": {Layers: []lock.AptLayer{{Pins: []apt.Pin{pin}}}}}},
	}
	if got := b.debDigests(); len(got) != 1 || got["tzdata=2024a-0+deb12u1:all"] != "cc" {
		t.Errorf("debDigests = %v", got)
	}
	if got := (&Built{Result: b.Result}).debDigests(); len(got) != 0 {
		t.Errorf("no lock: %v", got)
	}
}

// TestProvenanceOfARun: the provenance of a built spec in a git
// repository names the spec by its path from the repository's root (which
// vcs.Info gives), records the epoch's source, the values and the
// manifests, and reads back.
func TestProvenanceOfARun(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	repo := t.TempDir()
	dir := filepath.Join(repo, "images", "app")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "repro.yaml")
	if err := os.WriteFile(file, []byte("version: 1\nname: app\nepoch: git\nlayers:\n  - contents:\n      - {path: /etc/motd, content: hi}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE=2001-09-09T01:46:40Z", "GIT_AUTHOR_DATE=2001-09-09T01:46:40Z",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "x")
	b, err := Run(context.Background(), Request{File: file, Version: "v1", Cache: cache.New(t.TempDir()), WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if b.VCS.Root == "" || b.Epoch.Source != EpochGit || b.Values.Epoch != 1000000000 {
		t.Fatalf("vcs %+v, epoch %+v", b.VCS, b.Epoch)
	}
	raw, err := b.Provenance("test")
	if err != nil {
		t.Fatal(err)
	}
	p, err := attest.ParseProvenance(raw)
	if err != nil {
		t.Fatal(err)
	}
	ext, in := p.BuildDefinition.ExternalParameters, p.BuildDefinition.InternalParameters
	if ext.Spec.URI != "images/app/repro.yaml" || ext.Version != "v1" || ext.Name != "app" || in.Epoch != 1000000000 ||
		p.Manifests()["linux/amd64"] != b.Descriptor.Digest.String() {
		t.Errorf("provenance: %s", raw)
	}
	if in.EpochSource != "git" {
		t.Errorf("epoch source %q, want git", in.EpochSource)
	}
	doc, err := b.SBOM(context.Background(), attest.SPDXJSON, "test")
	if err != nil || len(doc) == 0 {
		t.Errorf("SBOM: %v", err)
	}
	// What signing attaches: the SBOM, then the provenance, each as asked.
	atts, err := b.Attestations(context.Background(), true, true, "test")
	if err != nil || len(atts) != 2 || atts[0].PredicateType != attest.SPDXType || !bytes.Equal(atts[0].Predicate, doc) ||
		atts[1].PredicateType != attest.ProvenanceType || !bytes.Equal(atts[1].Predicate, raw) {
		t.Errorf("Attestations: %v, %d of them", err, len(atts))
	}
	if atts, err := b.Attestations(context.Background(), false, true, "test"); err != nil || len(atts) != 1 || atts[0].PredicateType != attest.ProvenanceType {
		t.Errorf("Attestations without the SBOM: %v, %d of them", err, len(atts))
	}
}
