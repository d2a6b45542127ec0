package main

import (
	"testing"

	"github.com/reprobuild/repro/pkg/apt"
	"github.com/reprobuild/repro/pkg/build"
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
	b := &built{
		res: &build.Result{Manifests: []build.Manifest{{Platform: spec.Platform{OS: "linux", Arch: "amd64"}}}},
		lock: &lock.File{Apt: map[string]lock.Apt{
			"linux/amd64": {Sources: []apt.SourceDigest{src}, Layers: []lock.AptLayer{{Pins: []apt.Pin{pin}}, {Pins: []apt.Pin{pin}}}},
			"linux/arm64": {Sources: []apt.SourceDigest{{URL: "http://other/", Suite: "x", InRelease: "dd"}}},
		}},
	}
	deps := aptDependencies(b)
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
	b := &built{
		res:  &build.Result{Manifests: []build.Manifest{{Platform: spec.Platform{OS: "linux", Arch: "amd64"}}}},
		lock: &lock.File{Apt: map[string]lock.Apt{"linux/amd64": {Layers: []lock.AptLayer{{Pins: []apt.Pin{pin}}}}}},
	}
	if got := debDigests(b); len(got) != 1 || got["tzdata=2024a-0+deb12u1:all"] != "cc" {
		t.Errorf("debDigests = %v", got)
	}
	if got := debDigests(&built{res: b.res}); len(got) != 0 {
		t.Errorf("no lock: %v", got)
	}
}
