package imageref

import (
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestParse(t *testing.T) {
	hex := strings.Repeat("a", 64)
	for _, tc := range []struct {
		in                   string
		transport            Transport
		path, tag, digest    string
		registryName, errSub string
	}{
		{in: "oci:out/app", transport: OCI, path: "out/app"},
		{in: "oci:out/app:v1", transport: OCI, path: "out/app", tag: "v1"},
		{in: "oci:/abs/dir@sha256:" + hex, transport: OCI, path: "/abs/dir", digest: "sha256:" + hex},
		{in: "oci-archive:img.tar:v2", transport: OCIArchive, path: "img.tar", tag: "v2"},
		{in: "docker-archive:img.tar", transport: DockerArchive, path: "img.tar"},
		{in: "docker-archive:img.tar:example.com/app:v1", transport: DockerArchive, path: "img.tar", tag: "example.com/app:v1"},
		{in: "127.0.0.1:5000/app:v1", transport: Registry, registryName: "127.0.0.1:5000/app:v1"},
		{in: "registry.example.com/team/app@sha256:" + hex, transport: Registry, registryName: "registry.example.com/team/app@sha256:" + hex},
		{in: "oci:", errSub: "missing path"},
		{in: "oci:dir:bad tag", errSub: "not a valid tag"},
		{in: "oci:dir@sha256:abc", errSub: "not a sha256 digest"},
		{in: "docker://example.com/app:v1", transport: Registry, registryName: "example.com/app:v1"},
		{in: "docker-daemon:app:v1", errSub: "transport is not supported"},
		{in: "dir:/tmp/x", errSub: "transport is not supported"},
		{in: "Bad Name", errSub: "not an image reference"},
		{in: "debian:12", errSub: "names no registry host; repro assumes none: write the full reference, like docker.io/library/debian:12"},
		{in: "nginx", errSub: "like docker.io/library/nginx:latest"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			r, err := Parse(tc.in)
			if tc.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errSub) {
					t.Fatalf("err = %v, want %q", err, tc.errSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Transport != tc.transport || r.Path != tc.path || r.Tag != tc.tag || r.Digest != tc.digest {
				t.Errorf("got %+v", r)
			}
			if tc.registryName != "" && r.Name.String() != tc.registryName {
				t.Errorf("name %s", r.Name)
			}
			if tc.transport != Registry && r.String() != tc.in {
				t.Errorf("String() = %q", r.String())
			}
		})
	}
}

func TestPlatformName(t *testing.T) {
	for _, c := range []struct {
		p    v1.Platform
		want string
	}{
		{v1.Platform{OS: "linux", Architecture: "amd64"}, "linux/amd64"},
		{v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "linux/arm64/v8"},
		{v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.1"}, "windows/amd64"},
		{v1.Platform{OS: "linux", Architecture: "amd64", Features: []string{"sse4"}, OSFeatures: []string{"x"}}, "linux/amd64"},
		{v1.Platform{Architecture: "amd64"}, ""},
	} {
		if got := PlatformName(c.p); got != c.want {
			t.Errorf("PlatformName(%+v) = %q, want %q", c.p, got, c.want)
		}
	}
}

func TestShortName(t *testing.T) {
	for in, want := range map[string]string{
		"registry.example.com/team/app:v1":                     "app",
		"127.0.0.1:5000/app@sha256:" + strings.Repeat("a", 64): "app",
		"oci:out/site:v1":              "site",
		"oci:out/site/":                "site",
		"oci-archive:dist/site.tar:v1": "site",
		"docker-archive:site.tar":      "site",
	} {
		r, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.ShortName(); got != want {
			t.Errorf("%s: ShortName() = %q, want %q", in, got, want)
		}
	}
}
