package attest_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/pkg/attest"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
)

func buildInput() attest.BuildInput {
	return attest.BuildInput{
		SpecPath: "deploy/repro.yaml", SpecSHA256: strings.Repeat("ab", 32),
		Name: "api", Vars: map[string]string{"env": "prod", "a": "1"},
		Platforms: []string{"linux/amd64", "linux/arm64"}, Version: "v1.2.3",
		Epoch: 1700000000, EpochSource: "spec", FormatVersion: "repro-layer/1",
		Compression: attest.Compression{Algorithm: "zstd", Settings: "zstd: fixed"},
		Base: &attest.BasePin{Ref: "registry.example.com/debian:12@sha256:" + strings.Repeat("1", 64), Digest: "sha256:" + strings.Repeat("1", 64),
			MediaType: "application/vnd.oci.image.index.v1+json",
			Platforms: map[string]string{"linux/arm64": "sha256:" + strings.Repeat("3", 64), "linux/amd64": "sha256:" + strings.Repeat("2", 64)}},
		URLs:      map[string]string{"https://b.example/x": strings.Repeat("5", 64), "https://a.example/y": strings.Repeat("4", 64)},
		GitCommit: strings.Repeat("c", 40),
		LockPath:  "deploy/repro.lock.json", LockSHA256: strings.Repeat("6", 64),
		Manifests:    map[string]string{"linux/arm64": "sha256:" + strings.Repeat("8", 64), "linux/amd64": "sha256:" + strings.Repeat("7", 64)},
		ReproVersion: "v0.9.0",
	}
}

// TestProvenance: the provenance records every input, reads back to the
// same value, and its bytes do not depend on map order.
func TestProvenance(t *testing.T) {
	p, err := attest.NewProvenance(buildInput())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := p.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		q, _ := attest.NewProvenance(buildInput())
		again, _ := q.Bytes()
		if !bytes.Equal(raw, again) {
			t.Fatalf("two encodings differ:\n%s\n%s", raw, again)
		}
	}
	back, err := attest.ParseProvenance(raw)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, back); diff != "" {
		t.Errorf("read back differs (-want +got):\n%s", diff)
	}
	ref, d := back.BaseDigest()
	if ref != buildInput().Base.Ref || d != buildInput().Base.Digest {
		t.Errorf("BaseDigest = %s %s", ref, d)
	}
	if got := back.BasePlatforms(); !cmp.Equal(got, buildInput().Base.Platforms) {
		t.Errorf("BasePlatforms = %v", got)
	}
	if got := back.URLs(); !cmp.Equal(got, buildInput().URLs) {
		t.Errorf("URLs = %v", got)
	}
	if got := back.Manifests(); !cmp.Equal(got, buildInput().Manifests) {
		t.Errorf("Manifests = %v", got)
	}
	if back.GitCommit() != strings.Repeat("c", 40) {
		t.Errorf("GitCommit = %q", back.GitCommit())
	}
	ep, ip := back.BuildDefinition.ExternalParameters, back.BuildDefinition.InternalParameters
	if ep.Version != "v1.2.3" || ep.Spec.URI != "deploy/repro.yaml" || ep.Vars["env"] != "prod" || ip.Epoch != 1700000000 || ip.Compression.Algorithm != "zstd" || ip.FormatVersion != "repro-layer/1" {
		t.Errorf("parameters: %+v %+v", ep, ip)
	}
	if back.RunDetails.Builder.ID != attest.BuilderID+"@v0.9.0" {
		t.Errorf("builder.id = %s", back.RunDetails.Builder.ID)
	}
	// Every timestamp is the epoch.
	for _, ts := range []string{back.RunDetails.Metadata.StartedOn, back.RunDetails.Metadata.FinishedOn} {
		if ts != "2023-11-14T22:13:20Z" {
			t.Errorf("timestamp %s is not the epoch", ts)
		}
	}
	// The dependencies are sorted.
	var names []string
	for _, d := range back.BuildDefinition.ResolvedDependencies {
		names = append(names, d.Name+" "+d.URI)
	}
	want := []string{
		"base registry.example.com/debian:12@sha256:" + strings.Repeat("1", 64),
		"base:linux/amd64 registry.example.com/debian:12@sha256:" + strings.Repeat("1", 64),
		"base:linux/arm64 registry.example.com/debian:12@sha256:" + strings.Repeat("1", 64),
		"git ",
		"lockfile deploy/repro.lock.json",
		"url https://a.example/y",
		"url https://b.example/x",
	}
	if !cmp.Equal(names, want) {
		t.Errorf("dependencies:\n%s", cmp.Diff(want, names))
	}
}

func TestParseProvenanceRejects(t *testing.T) {
	p, _ := attest.NewProvenance(buildInput())
	raw, _ := p.Bytes()
	for name, b := range map[string][]byte{
		"unknown field": bytes.Replace(raw, []byte(`"buildType"`), []byte(`"surprise":1,"buildType"`), 1),
		"other type":    bytes.Replace(raw, []byte(attest.BuildType), []byte("https://example.com/other"), 1),
		"not json":      []byte("{"),
	} {
		if _, err := attest.ParseProvenance(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestStatement(t *testing.T) {
	d := "sha256:" + strings.Repeat("9", 64)
	raw, err := attest.NewStatement("example.com/app", d, attest.SPDXType, []byte(`{"b":1, "a":2}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"example.com/app","digest":{"sha256":"` + strings.Repeat("9", 64) + `"}}],"predicateType":"https://spdx.dev/Document","predicate":{"b":1,"a":2}}`
	if string(raw) != want {
		t.Errorf("statement:\n%s\nwant\n%s", raw, want)
	}
	st, err := attest.ParseStatement(raw)
	if err != nil || !st.Names(d) || st.Names("sha256:"+strings.Repeat("0", 64)) {
		t.Errorf("ParseStatement: %v %+v", err, st)
	}
	if _, err := attest.NewStatement("x", d, attest.SPDXType, []byte("{")); err == nil {
		t.Error("an invalid predicate was accepted")
	}
}

// --- SBOM -------------------------------------------------------------------

type entry struct {
	name, body, link string
	typ              byte
}

func tarLayer(t *testing.T, entries ...entry) v1.Layer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: e.typ, Linkname: e.link, ModTime: time.Unix(1, 0)}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
		}
		if e.typ == tar.TypeDir {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return static.NewLayer(b.Bytes(), types.OCIUncompressedLayer)
}

const dpkgStatus = `Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u4
Source: glibc
Description: GNU C Library
 continuation line: not a field

Package: removed-one
Status: deinstall ok config-files
Version: 1.0

Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4+deb12u5
`

// image makes a two-layer "base" (dpkg status, os-release) and repro's
// layers on top (files, a hard link, a Go binary: this test's own).
func image(t *testing.T, arch string, goBinary []byte) v1.Image {
	t.Helper()
	base := tarLayer(t,
		entry{name: "etc/", typ: tar.TypeDir},
		entry{name: "etc/os-release", body: "ID=debian\nVERSION_ID=\"12\"\n"},
		entry{name: "var/lib/dpkg/status", body: dpkgStatus},
	)
	base2 := tarLayer(t,
		entry{name: "var/lib/dpkg/status.d/tzdata", body: "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n"},
		entry{name: "var/lib/dpkg/status.d/tzdata.md5sums", body: "d41d8cd98f00b204e9800998ecf8427e  usr/share/zoneinfo/UTC\n"},
	)
	app := tarLayer(t,
		entry{name: "app/", typ: tar.TypeDir},
		entry{name: "app/server", body: string(goBinary)},
		entry{name: "app/server-link", typ: tar.TypeLink, link: "app/server"},
		entry{name: "app/a.txt", body: "hello " + arch + "\n"},
		entry{name: "app/.wh.gone", body: ""},
	)
	shared := tarLayer(t, entry{name: "etc/motd", body: "shared\n"})
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: arch, Created: v1.Time{Time: time.Unix(1700000000, 0)},
		RootFS: v1.RootFS{Type: "layers"}})
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{CreatedBy: "debian base"}},
		mutate.Addendum{Layer: base2, History: v1.History{CreatedBy: "more base"}},
		mutate.Addendum{Layer: shared, History: v1.History{CreatedBy: `repro: layer "shared"`}},
		mutate.Addendum{Layer: app, History: v1.History{CreatedBy: `repro: layer "app"`}},
	)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(mutate.ConfigMediaType(img, types.OCIConfigJSON), types.OCIManifestSchema1)
	return mutate.Annotations(img, map[string]string{
		"org.opencontainers.image.base.name":   "registry.example.com/library/debian:12",
		"org.opencontainers.image.base.digest": "sha256:" + strings.Repeat("b", 64),
	}).(v1.Image)
}

var (
	goBinOnce sync.Once
	goBin     []byte
	goBinErr  error
)

// goBinary compiles testdata/gobin, a Go program that depends on go-cmp,
// once.
func goBinary(t *testing.T) []byte {
	t.Helper()
	goBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "attest-gobin-")
		if err != nil {
			goBinErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "gobin")
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./testdata/gobin")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			goBinErr = fmt.Errorf("building testdata/gobin: %v\n%s", err, b)
			return
		}
		goBin, goBinErr = os.ReadFile(out)
	})
	if goBinErr != nil {
		t.Fatal(goBinErr)
	}
	return goBin
}

func hexSum(b []byte, sha1sum bool) string {
	if sha1sum {
		s := sha1.Sum(b)
		return hex.EncodeToString(s[:])
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestScan: the inventory holds repro's layers' files (hashed, the hard
// link resolved, whiteouts left out, base layers left out), the base, the
// Go binary's modules, and the installed dpkg packages.
func TestScan(t *testing.T) {
	ctx := context.Background()
	bin := goBinary(t)
	img := image(t, "amd64", bin)
	inv, err := attest.Scan(ctx, "api", imageref.Artifact{Image: img}, attest.ScanOptions{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Images) != 1 || inv.Created != 1700000000 {
		t.Fatalf("inventory: %+v", inv)
	}
	ii := inv.Images[0]
	if ii.Platform != "linux/amd64" || ii.Base == nil || ii.Base.Name != "registry.example.com/library/debian:12" {
		t.Errorf("platform %s, base %+v", ii.Platform, ii.Base)
	}
	if len(ii.Layers) != 2 || ii.Layers[0].Index != 2 || ii.Layers[1].Index != 3 {
		t.Fatalf("layers: %+v", ii.Layers)
	}
	var files []string
	for _, f := range ii.Layers[1].Files {
		files = append(files, f.Path)
		if f.Path == "/app/server" || f.Path == "/app/server-link" {
			if f.SHA256 != hexSum(bin, false) || f.SHA1 != hexSum(bin, true) {
				t.Errorf("%s: hashes %s %s", f.Path, f.SHA256, f.SHA1)
			}
		}
	}
	if want := []string{"/app/a.txt", "/app/server", "/app/server-link"}; !cmp.Equal(files, want) {
		t.Errorf("files %v, want %v", files, want)
	}
	if len(ii.GoBinaries) != 1 { // the hard link is the same file
		t.Fatalf("Go binaries: %+v", ii.GoBinaries)
	}
	gb := ii.GoBinaries[0]
	found := false
	for _, d := range gb.Deps {
		if d.Path == "github.com/google/go-cmp" && d.Version == "v0.7.0" && strings.HasPrefix(d.Sum, "h1:") {
			found = true
		}
	}
	if gb.Path != "/app/server" || !strings.HasPrefix(gb.GoVersion, "go1.") || !found {
		t.Errorf("Go binary: %s %s, %d deps (go-cmp found: %v)", gb.Path, gb.GoVersion, len(gb.Deps), found)
	}
	var pkgs []string
	for _, p := range ii.Packages {
		pkgs = append(pkgs, p.Name+"="+p.Version+" src="+p.Source)
	}
	if want := []string{"base-files=12.4+deb12u5 src=", "libc6=2.36-9+deb12u4 src=glibc", "tzdata=2024a-0+deb12u1 src="}; !cmp.Equal(pkgs, want) {
		t.Errorf("packages %v, want %v", pkgs, want)
	}
	if ii.DistroID != "debian" || ii.DistroVersion != "12" {
		t.Errorf("distro %q %q", ii.DistroID, ii.DistroVersion)
	}
	// An explicit count of added layers overrides the history.
	one := 1
	inv, err = attest.Scan(ctx, "api", imageref.Artifact{Image: img}, attest.ScanOptions{AddedLayers: &one})
	if err != nil || len(inv.Images[0].Layers) != 1 || inv.Images[0].Layers[0].Index != 3 {
		t.Errorf("AddedLayers 1: %v %+v", err, inv)
	}
}

func TestAPK(t *testing.T) {
	db := "C:Q1abc\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\n\nP:busybox-binsh\nV:1.36.1-r5\nA:x86_64\nL:GPL-2.0-only\no:busybox\n\n"
	l := tarLayer(t, entry{name: "lib/apk/db/installed", body: db}, entry{name: "etc/os-release", body: "ID=alpine\nVERSION_ID=3.19.1\n"})
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: l})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := attest.Scan(context.Background(), "alp", imageref.Artifact{Image: img}, attest.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := attest.SBOM(inv, attest.SPDXJSON, "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64\u0026distro=alpine-3.19.1",
		"pkg:apk/alpine/busybox-binsh@1.36.1-r5?arch=x86_64\u0026distro=alpine-3.19.1",
	} {
		if !strings.Contains(string(doc), strings.ReplaceAll(want, "\u0026", "&")) {
			t.Errorf("the SBOM lacks %s:\n%s", want, doc)
		}
	}
}

type spdxDoc struct {
	SPDXVersion  string `json:"spdxVersion"`
	CreationInfo struct {
		Created string `json:"created"`
	} `json:"creationInfo"`
	Packages []struct {
		Name                    string `json:"name"`
		SPDXID                  string `json:"SPDXID"`
		FilesAnalyzed           bool   `json:"filesAnalyzed"`
		PackageVerificationCode *struct {
			Value string `json:"packageVerificationCodeValue"`
		} `json:"packageVerificationCode"`
		ExternalRefs []struct {
			ReferenceLocator string `json:"referenceLocator"`
		} `json:"externalRefs"`
	} `json:"packages"`
	Files []struct {
		FileName  string `json:"fileName"`
		SPDXID    string `json:"SPDXID"`
		Checksums []struct {
			Algorithm string `json:"algorithm"`
		} `json:"checksums"`
	} `json:"files"`
	Relationships []struct {
		From string `json:"spdxElementId"`
		Type string `json:"relationshipType"`
		To   string `json:"relatedSpdxElement"`
	} `json:"relationships"`
}

// TestSBOMIndex: an index's SBOM has a package per platform, files of a
// layer the platforms share once, identifiers that resolve, SHA-1 on every
// file (SPDX 2.3 requires it), and the same bytes every time.
func TestSBOMIndex(t *testing.T) {
	ctx := context.Background()
	bin := goBinary(t)
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: image(t, "amd64", bin), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: image(t, "arm64", bin), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	gen := func(f attest.Format) []byte {
		inv, err := attest.Scan(ctx, "api", imageref.Artifact{Index: idx}, attest.ScanOptions{TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		b, err := attest.SBOM(inv, f, "v0.9.0")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	raw := gen(attest.SPDXJSON)
	if again := gen(attest.SPDXJSON); !bytes.Equal(raw, again) {
		t.Fatal("two SPDX documents of one index differ")
	}
	var doc spdxDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.CreationInfo.Created != "2023-11-14T22:13:20Z" {
		t.Errorf("version %s, created %s", doc.SPDXVersion, doc.CreationInfo.Created)
	}
	ids := map[string]bool{"SPDXRef-DOCUMENT": true}
	purls := map[string]bool{}
	for _, p := range doc.Packages {
		if ids[p.SPDXID] {
			t.Errorf("duplicate SPDXID %s", p.SPDXID)
		}
		ids[p.SPDXID] = true
		// A package that contains files says so, with their verification code.
		if strings.HasPrefix(p.SPDXID, "SPDXRef-Image-") && (!p.FilesAnalyzed || p.PackageVerificationCode == nil || len(p.PackageVerificationCode.Value) != 40) {
			t.Errorf("%s: filesAnalyzed %v, verification code %+v", p.SPDXID, p.FilesAnalyzed, p.PackageVerificationCode)
		}
		for _, r := range p.ExternalRefs {
			purls[r.ReferenceLocator] = true
		}
	}
	motd := 0
	for _, f := range doc.Files {
		if ids[f.SPDXID] {
			t.Errorf("duplicate SPDXID %s", f.SPDXID)
		}
		ids[f.SPDXID] = true
		if f.FileName == "/etc/motd" {
			motd++
		}
		if len(f.Checksums) == 0 || f.Checksums[0].Algorithm != "SHA1" {
			t.Errorf("%s lacks a SHA1 checksum", f.FileName)
		}
	}
	if motd != 1 {
		t.Errorf("/etc/motd, in a layer both platforms share, is listed %d times", motd)
	}
	for _, r := range doc.Relationships {
		if !ids[r.From] || !ids[r.To] {
			t.Errorf("relationship %s %s %s names an unknown element", r.From, r.Type, r.To)
		}
	}
	for _, want := range []string{
		"pkg:oci/debian@sha256%3A" + strings.Repeat("b", 64) + "?repository_url=registry.example.com%2Flibrary%2Fdebian&tag=12",
		"pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc",
		"pkg:oci/api@sha256%3A",
	} {
		ok := false
		for p := range purls {
			if strings.HasPrefix(p, want) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("no purl %s among %v", want, purls)
		}
	}
	if !purls["pkg:golang/github.com/google/go-cmp@v0.7.0"] || !purls["pkg:golang/github.com/reprobuild/repro"] {
		t.Errorf("the Go binary's modules are missing: %v", purls)
	}

	cdx := gen(attest.CycloneDXJSON)
	if again := gen(attest.CycloneDXJSON); !bytes.Equal(cdx, again) {
		t.Fatal("two CycloneDX documents of one index differ")
	}
	var bom struct {
		BOMFormat, SpecVersion, SerialNumber string
		Metadata                             struct{ Timestamp string }
		Components                           []struct {
			BOMRef string `json:"bom-ref"`
			Type   string
		}
		Dependencies []struct {
			Ref       string
			DependsOn []string
		}
	}
	if err := json.Unmarshal(cdx, &bom); err != nil {
		t.Fatal(err)
	}
	if bom.BOMFormat != "CycloneDX" || bom.SpecVersion != "1.5" || !strings.HasPrefix(bom.SerialNumber, "urn:uuid:") || bom.Metadata.Timestamp != "2023-11-14T22:13:20Z" {
		t.Errorf("bom header: %s %s %s %s", bom.BOMFormat, bom.SpecVersion, bom.SerialNumber, bom.Metadata.Timestamp)
	}
	refs := map[string]bool{"Index": true}
	for _, c := range bom.Components {
		if refs[c.BOMRef] {
			t.Errorf("duplicate bom-ref %s", c.BOMRef)
		}
		refs[c.BOMRef] = true
	}
	for _, d := range bom.Dependencies {
		for _, to := range append([]string{d.Ref}, d.DependsOn...) {
			if !refs[to] {
				t.Errorf("dependency names unknown %s", to)
			}
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, s := range []string{"spdx-json", "cyclonedx-json"} {
		if _, err := attest.ParseFormat(s); err != nil {
			t.Error(err)
		}
	}
	if _, err := attest.ParseFormat("spdx-tag-value"); err == nil {
		t.Error("spdx-tag-value accepted")
	}
}

// TestPinnedDebDigests: a package the build installed from a pinned .deb
// carries the .deb's sha256 in both SBOM formats; the others carry none.
func TestPinnedDebDigests(t *testing.T) {
	img := image(t, "amd64", []byte("not a go binary"))
	sum := strings.Repeat("ab", 32)
	inv, err := attest.Scan(context.Background(), "app", imageref.Artifact{Image: img}, attest.ScanOptions{
		PackageDigests: map[string]string{attest.PackageKey("tzdata", "2024a-0+deb12u1", "all"): sum},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range inv.Images[0].Packages {
		got[p.Name] = p.SHA256
	}
	if got["tzdata"] != sum || got["libc6"] != "" {
		t.Fatalf("package digests %v", got)
	}
	for _, f := range []attest.Format{attest.SPDXJSON, attest.CycloneDXJSON} {
		doc, err := attest.SBOM(inv, f, "test")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(string(doc), sum) != 1 {
			t.Errorf("%s: the .deb digest appears %d times, want once", f, strings.Count(string(doc), sum))
		}
	}
}

// brokenImage fails to list its layers.
type brokenImage struct{ v1.Image }

func (brokenImage) Layers() ([]v1.Layer, error) { return nil, errors.New("gone") }

// TestImageSBOM is Scan then SBOM, with a failure to read the image an
// operational one that says what was being read.
func TestImageSBOM(t *testing.T) {
	ctx := context.Background()
	img := image(t, "amd64", goBinary(t))
	opts := attest.ScanOptions{TempDir: t.TempDir()}
	got, err := attest.ImageSBOM(ctx, "api", imageref.Artifact{Image: img}, attest.SPDXJSON, "test", opts)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := attest.Scan(ctx, "api", imageref.Artifact{Image: img}, opts)
	if err != nil {
		t.Fatal(err)
	}
	want, err := attest.SBOM(inv, attest.SPDXJSON, "test")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("ImageSBOM differs from Scan then SBOM")
	}
	_, err = attest.ImageSBOM(ctx, "api", imageref.Artifact{Image: brokenImage{img}}, attest.SPDXJSON, "test", opts)
	if fault.KindOf(err) != fault.Operational || !strings.HasPrefix(fmt.Sprint(err), "reading the image for its SBOM: ") {
		t.Errorf("a broken image: err = %v (kind %v)", err, fault.KindOf(err))
	}
}

// TestPredicateTypeOf: cosign's names for the predicate types, and a URI
// as it is; any other word is refused.
func TestPredicateTypeOf(t *testing.T) {
	for kind, want := range map[string]string{
		"provenance": attest.ProvenanceType, "slsaprovenance1": attest.ProvenanceType,
		"sbom": attest.SPDXType, "spdx": attest.SPDXType, "spdxjson": attest.SPDXType,
		"cyclonedx": attest.CycloneDXType, "https://example.com/p/v1": "https://example.com/p/v1",
	} {
		if got, ok := attest.PredicateTypeOf(kind); !ok || got != want {
			t.Errorf("PredicateTypeOf(%q) = %q, %v; want %q", kind, got, ok, want)
		}
	}
	for _, kind := range []string{"", "slsa", "SBOM"} {
		if _, ok := attest.PredicateTypeOf(kind); ok {
			t.Errorf("PredicateTypeOf(%q) is taken", kind)
		}
	}
}
