package e2e

// Golden OS images from the real Debian archive: specs/examples/nginx and
// specs/examples/golden-nginx, unchanged, locked and built from
// deb.debian.org (bookworm, bookworm-updates and bookworm-security, signed
// by the keyring the examples ship). The archive moves, so the test
// asserts properties, never digests: every pin is apt-cache policy's
// candidate given the same sources, a security update wins where it is
// the newest, and under podman nginx -t passes, awk runs, /var/run is a
// link and (golden-nginx) openssl reads over 100 certificates from the CA
// bundle. syft, reading the image as a scanner does, finds exactly the
// packages of repro's SBOM, with the same versions and PURL qualifiers.

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reprobuild/repro/internal/testtool"
	"github.com/reprobuild/repro/pkg/apt"
	"github.com/reprobuild/repro/pkg/lock"
)

// goldenSources are the examples' apt sources, as apt writes them.
var goldenSources = []string{
	"http://deb.debian.org/debian bookworm main",
	"http://deb.debian.org/debian bookworm-updates main",
	"http://deb.debian.org/debian-security bookworm-security main",
}

func TestE2EGoldenRealArchive(t *testing.T) {
	if testing.Short() {
		t.Skip("locks and builds from Debian's archive")
	}
	testtool.Require(t, "apt-get", "apt-cache")
	for _, ex := range []struct {
		name  string
		certs bool // ca-certificates and openssl are in the image
	}{
		{"nginx", false},
		{"golden-nginx", true},
	} {
		t.Run(ex.name, func(t *testing.T) { goldenExample(t, ex.name, ex.certs) })
	}
}

func goldenExample(t *testing.T, name string, certs bool) {
	dir := filepath.Join(t.TempDir(), name)
	copyTree(t, filepath.Join(moduleRoot(t), "specs", "examples", name), dir, false)
	spec := filepath.Join(dir, "repro.yaml")
	os.Remove(lock.PathFor(spec)) // locked from scratch, against today's archive
	tmp := t.TempDir()
	cache := filepath.Join(tmp, "cache")

	r, lockTook := timed(t, dir, "lock", "-f", spec, "--cache-dir", cache)
	if r.code == 3 && !testtool.InCI() && strings.Contains(r.stderr, "deb.debian.org") {
		t.Skipf("Debian's archive is not reachable: %s", r.stderr)
	}
	if r.code != 0 {
		t.Fatalf("repro lock: exit %d\n%s", r.code, r.stderr)
	}
	if r = repro(t, dir, "lock", "--check", "-f", spec, "--cache-dir", cache); r.code != 0 {
		t.Errorf("repro lock --check right after locking: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	lf, err := lock.Read(lock.PathFor(spec))
	if err != nil || lf == nil {
		t.Fatalf("reading the lock: %v", err)
	}
	var pins []apt.Pin
	for _, l := range lf.Apt["linux/amd64"].Layers {
		pins = append(pins, l.Pins...)
	}

	// Every pin is apt's candidate, and security wins where it is newest.
	env := goldenApt(t, filepath.Join(dir, "keys", "debian-bookworm.asc"))
	var names []string
	for _, p := range pins {
		names = append(names, p.Name)
	}
	policy := goldenPolicy(t, env, names)
	security := 0
	for _, p := range pins {
		c, ok := policy[p.Name]
		if !ok {
			t.Errorf("%s: apt-cache policy has no candidate", p.Name)
			continue
		}
		if p.Version != c.version {
			t.Errorf("%s: repro pins %s (%s), apt-cache policy's candidate is %s (%s)", p.Name, p.Version, p.Suite, c.version, strings.Join(c.suites, ", "))
		}
		if len(c.suites) == 1 && c.suites[0] == "bookworm-security" {
			security++
			if p.Suite != "bookworm-security" {
				t.Errorf("%s %s is only in bookworm-security, but the lock says %q", p.Name, p.Version, p.Suite)
			}
		}
	}
	if security == 0 {
		t.Errorf("no pin is a security update (apt-cache policy finds none newest in bookworm-security among %d packages)", len(pins))
	}

	// Build with an empty cache of .debs.
	out := filepath.Join(tmp, "out")
	r, buildCold := timed(t, dir, "build", "-f", spec, "--locked", "--cache-dir", cache, "-o", "oci:"+out+":"+name)
	if r.code != 0 {
		t.Fatalf("repro build: exit %d\n%s", r.code, r.stderr)
	}
	// (A warm rebuild giving the same digest is TestE2EAptNginx's, on stable bytes.)
	t.Logf("%s: %d packages (%d security updates); lock %v; build (cold cache) %v", name, len(pins), security,
		lockTook.Round(10*time.Millisecond), buildCold.Round(10*time.Millisecond))

	t.Run("podman", func(t *testing.T) {
		podman := testtool.Podman(t)
		if podman == nil {
			return
		}
		ref := testtool.OCIRef(t, out, name)
		run := func(entrypoint string, args ...string) string {
			t.Helper()
			cmd := exec.Command(podman[0], slices.Concat(podman[1:], []string{"run", "--rm", "--entrypoint", entrypoint, ref}, args)...)
			b, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("podman run %s %s: %v\n%s", entrypoint, strings.Join(args, " "), err, b)
			}
			return string(b)
		}
		if o := run("/usr/sbin/nginx", "-t"); !strings.Contains(o, "test is successful") {
			t.Errorf("nginx -t:\n%s", o)
		}
		if o := run("/usr/bin/awk", "BEGIN { print 6 * 7 }"); !strings.HasSuffix(o, "42\n") {
			t.Errorf("awk printed %q", o)
		}
		if certs {
			o := run("/usr/bin/openssl", "storeutl", "-noout", "-certs", "/etc/ssl/certs/ca-certificates.crt")
			m := regexp.MustCompile(`Total found: (\d+)`).FindStringSubmatch(o)
			if n := 0; m == nil {
				t.Errorf("openssl storeutl found no certificates:\n%s", o)
			} else if n, _ = strconv.Atoi(m[1]); n <= 100 {
				t.Errorf("openssl storeutl found %d certificates in the CA bundle; Debian's has over 100", n)
			}
		}
		// The container's file system, as podman made it.
		id := strings.TrimSpace(testtool.Run(t, podman[0], slices.Concat(podman[1:], []string{"create", "--pull=never", ref})...))
		export := filepath.Join(t.TempDir(), "fs.tar")
		testtool.Run(t, podman[0], slices.Concat(podman[1:], []string{"export", "-o", export, id})...)
		links := tarSymlinks(t, export, "var/run", "var/lock", "usr/bin/awk", "etc/localtime")
		for link, want := range map[string]string{"var/run": "/run", "var/lock": "/run/lock", "usr/bin/awk": "/etc/alternatives/awk"} {
			if links[link] != want {
				t.Errorf("/%s in the container: a link to %q, want %q", link, links[link], want)
			}
		}
		if certs && links["etc/localtime"] != "/usr/share/zoneinfo/Etc/UTC" {
			t.Errorf("/etc/localtime in the container: a link to %q, want /usr/share/zoneinfo/Etc/UTC", links["etc/localtime"])
		}
	})

	t.Run("syft", func(t *testing.T) {
		tools := testtool.Require(t, "syft")
		if tools == nil {
			return
		}
		sbom := repro(t, dir, "sbom", "oci:"+out+":"+name, "--format", "cyclonedx-json")
		ours := cyclonedxDebs(t, []byte(sbom.stdout))
		cmd := exec.Command(tools["syft"], "oci-dir:"+out, "-o", "json", "-q")
		cmd.Env = append(os.Environ(), "SYFT_CHECK_FOR_APP_UPDATE=false")
		b, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				b = append(b, ee.Stderr...)
			}
			t.Fatalf("syft: %v\n%s", err, b)
		}
		theirs := syftDebs(t, b)
		if len(theirs) == 0 {
			t.Fatalf("syft found no Debian package:\n%.2000s", b)
		}
		if len(ours) != len(pins) {
			t.Errorf("repro's SBOM lists %d Debian packages, the lock %d", len(ours), len(pins))
		}
		var keys []string
		for k := range ours {
			keys = append(keys, k)
		}
		for k := range theirs {
			if _, ok := ours[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			o, ok1 := ours[k]
			s, ok2 := theirs[k]
			switch {
			case !ok1:
				t.Errorf("syft finds %s %s; repro's SBOM does not list it", k, s.version)
			case !ok2:
				t.Errorf("repro's SBOM lists %s %s; syft does not find it", k, o.version)
			case o != s:
				t.Errorf("%s: repro's SBOM says %+v, syft %+v", k, o, s)
			}
		}
		t.Logf("syft and repro's SBOM agree on %d packages", len(theirs))
	})
}

// goldenApt sets up apt with goldenSources signed by keyring (see
// testtool.Apt), and returns the environment that points apt at it.
func goldenApt(t *testing.T, keyring string) []string {
	t.Helper()
	var list strings.Builder
	for _, s := range goldenSources {
		fmt.Fprintf(&list, "deb [signed-by=%s] %s\n", keyring, s)
	}
	env, _ := testtool.Apt(t, list.String())
	return env
}

// candidate is apt-cache policy's candidate of a package, with the suites
// whose indexes list that version.
type candidate struct {
	version string
	suites  []string
}

// goldenPolicy parses apt-cache policy: each package's candidate and the
// suites of its version table that carry it.
func goldenPolicy(t *testing.T, env []string, names []string) map[string]candidate {
	t.Helper()
	out := aptRun(t, "", env, "apt-cache", append([]string{"policy"}, names...)...)
	got := map[string]candidate{}
	pkg, inVersion := "", ""
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case !strings.HasPrefix(l, " ") && strings.HasSuffix(l, ":"):
			pkg, inVersion = strings.TrimSuffix(l, ":"), ""
		case strings.HasPrefix(strings.TrimSpace(l), "Candidate: "):
			got[pkg] = candidate{version: strings.TrimPrefix(strings.TrimSpace(l), "Candidate: ")}
		case len(f) == 2 && strings.HasPrefix(l, "     ") && !strings.HasPrefix(l, "        "), len(f) == 3 && f[0] == "***":
			inVersion = f[len(f)-2]
		case len(f) >= 3 && strings.HasPrefix(f[1], "http") && inVersion != "" && inVersion == got[pkg].version:
			c := got[pkg]
			suite, _, _ := strings.Cut(f[2], "/")
			c.suites = append(c.suites, suite)
			got[pkg] = c
		}
	}
	return got
}

// tarSymlinks returns the targets of the named symbolic links in a tar.
func tarSymlinks(t *testing.T, file string, names ...string) map[string]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]string{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		n := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/"), "/")
		if slices.Contains(names, n) && h.Typeflag == tar.TypeSymlink {
			got[n] = h.Linkname
		}
	}
}

// debPackage is what a scanner and an SBOM say of a Debian package.
type debPackage struct {
	version, arch, distro, upstream string
}

// debFromPURL reads a pkg:deb PURL.
func debFromPURL(t *testing.T, purl string) (string, debPackage) {
	t.Helper()
	rest, ok := strings.CutPrefix(purl, "pkg:deb/debian/")
	if !ok {
		t.Errorf("PURL %q is not pkg:deb/debian/", purl)
		return "", debPackage{}
	}
	path, query, _ := strings.Cut(rest, "?")
	name, ver, _ := strings.Cut(path, "@")
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Errorf("PURL %q: %v", purl, err)
	}
	v, _ := url.PathUnescape(ver)
	// distro=debian-12 (repro, from os-release's VERSION_ID) and
	// debian-12.15 (syft, from /etc/debian_version) name one release:
	// scanners match on the major version.
	distro, _, _ := strings.Cut(q.Get("distro"), ".")
	return name, debPackage{version: v, arch: q.Get("arch"), distro: distro, upstream: q.Get("upstream")}
}

// cyclonedxDebs returns the pkg:deb components of a CycloneDX SBOM.
func cyclonedxDebs(t *testing.T, b []byte) map[string]debPackage {
	t.Helper()
	type component struct {
		Type       string      `json:"type"`
		Name       string      `json:"name"`
		Version    string      `json:"version"`
		PURL       string      `json:"purl"`
		Components []component `json:"components"`
	}
	var doc struct {
		Components []component `json:"components"`
	}
	e2eUnmarshal(t, b, &doc)
	got := map[string]debPackage{}
	var walk func([]component)
	walk = func(cs []component) {
		for _, c := range cs {
			if strings.HasPrefix(c.PURL, "pkg:deb/") {
				n, p := debFromPURL(t, c.PURL)
				if n != c.Name || p.version != c.Version {
					t.Errorf("SBOM component %s %s has PURL %s", c.Name, c.Version, c.PURL)
				}
				got[n] = p
			}
			walk(c.Components)
		}
	}
	walk(doc.Components)
	return got
}

// syftDebs returns the deb artifacts of syft's JSON.
func syftDebs(t *testing.T, b []byte) map[string]debPackage {
	t.Helper()
	var doc struct {
		Artifacts []struct {
			Name    string `json:"name"`
			Version string `json:"version"`
			Type    string `json:"type"`
			PURL    string `json:"purl"`
		} `json:"artifacts"`
	}
	e2eUnmarshal(t, b, &doc)
	got := map[string]debPackage{}
	for _, a := range doc.Artifacts {
		if a.Type != "deb" {
			continue
		}
		n, p := debFromPURL(t, a.PURL)
		if n != a.Name || p.version != a.Version {
			t.Errorf("syft's %s %s has PURL %s", a.Name, a.Version, a.PURL)
		}
		got[n] = p
	}
	return got
}
