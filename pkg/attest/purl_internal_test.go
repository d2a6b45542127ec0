package attest

import (
	"strings"
	"testing"
)

// A binNMU's control file names its source with the source's version
// ("libcap2 (1:2.66-4+deb12u3)"): the PURL's upstream= carries it, as syft
// writes it, even where the source's name is the package's.
func TestDebUpstreamVersion(t *testing.T) {
	ps := parseDpkgStatus([]byte("Package: libcap2\nVersion: 1:2.66-4+deb12u3+b1\nArchitecture: amd64\nSource: libcap2 (1:2.66-4+deb12u3)\n\n"+
		"Package: libc6\nVersion: 2.36-9\nArchitecture: amd64\nSource: glibc\n\nPackage: mawk\nVersion: 1.3.4\nArchitecture: amd64\n"), false)
	var got []string
	for _, p := range ps {
		got = append(got, osPURL(p, "debian", "12"))
	}
	want := []string{
		"pkg:deb/debian/libcap2@1%3A2.66-4%2Bdeb12u3%2Bb1?arch=amd64&distro=debian-12&upstream=libcap2%401%3A2.66-4%2Bdeb12u3",
		"pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12&upstream=glibc",
		"pkg:deb/debian/mawk@1.3.4?arch=amd64&distro=debian-12",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("PURLs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
