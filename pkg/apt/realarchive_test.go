package apt

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/reprobuild/repro/internal/testtool"
	"github.com/reprobuild/repro/pkg/cache"
)

// The real-archive tests read Debian's archive through the mirrors that
// this machine's apt is configured with (CI reaches them too), and check
// properties, never digests: the archive moves. They compare repro with
// apt-get and apt-cache given the same sources, in a private state
// directory.

// debianKeyring is Debian's archive keyring, as the debian-archive-keyring
// package installs it (binary OpenPGP).
const debianKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// hostSource is one deb line of the host's apt sources.
type hostSource struct {
	uri        string
	suites     []string
	components []string
}

// hostDebianSources reads /etc/apt/sources.list and sources.list.d (one-line
// and deb822 forms) and returns the sources that carry the given suites of
// Debian (by suite name), one per URI.
func hostDebianSources(t *testing.T, suites ...string) []hostSource {
	t.Helper()
	var all []hostSource
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	files = append([]string{"/etc/apt/sources.list"}, files...)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if strings.HasSuffix(f, ".sources") {
			for _, stanza := range strings.Split(string(b), "\n\n") {
				fields := map[string]string{}
				for _, l := range strings.Split(stanza, "\n") {
					if k, v, ok := strings.Cut(l, ":"); ok && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, " ") {
						fields[strings.ToLower(k)] = strings.TrimSpace(v)
					}
				}
				if !strings.Contains(" "+fields["types"]+" ", " deb ") {
					continue
				}
				for _, u := range strings.Fields(fields["uris"]) {
					all = append(all, hostSource{uri: u, suites: strings.Fields(fields["suites"]), components: strings.Fields(fields["components"])})
				}
			}
			continue
		}
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		opts := regexp.MustCompile(`\[[^]]*\]\s*`)
		for sc.Scan() {
			f := strings.Fields(opts.ReplaceAllString(sc.Text(), ""))
			if len(f) >= 4 && f[0] == "deb" {
				all = append(all, hostSource{uri: f[1], suites: []string{f[2]}, components: f[3:]})
			}
		}
	}
	var out []hostSource
	for _, want := range suites {
		found := false
		for _, s := range all {
			for _, su := range s.suites {
				if su == want && strings.HasPrefix(s.uri, "http") {
					found = true
					k := -1
					for i := range out {
						if out[i].uri == s.uri {
							k = i
						}
					}
					if k < 0 {
						out = append(out, hostSource{uri: s.uri, components: []string{"main"}})
						k = len(out) - 1
					}
					out[k].suites = append(out[k].suites, su)
				}
			}
		}
		if !found {
			unavailableApt(t, "the host's apt sources have no "+want)
		}
	}
	return out
}

// realApt sets up apt with the given sources, signed by Debian's keyring
// (see testtool.Apt), and returns the environment that points apt at it.
func realApt(t *testing.T, sources []hostSource) []string {
	t.Helper()
	var list strings.Builder
	for _, s := range sources {
		for _, su := range s.suites {
			fmt.Fprintf(&list, "deb [signed-by=%s] %s %s %s\n", debianKeyring, s.uri, su, strings.Join(s.components, " "))
		}
	}
	env, _ := testtool.Apt(t, list.String())
	return env
}

// aptPolicy returns apt-cache policy's candidate of each name.
func aptPolicy(t *testing.T, env []string, names []string) map[string]string {
	t.Helper()
	out := run(t, "", env, "apt-cache", append([]string{"policy"}, names...)...)
	got := map[string]string{}
	pkg := ""
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, " ") && strings.HasSuffix(l, ":") {
			pkg = strings.TrimSuffix(l, ":")
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Candidate: "); ok && pkg != "" {
			got[pkg] = v
		}
	}
	return got
}

func TestRealArchive(t *testing.T) {
	if testing.Short() {
		t.Skip("reads Debian's archive")
	}
	testtool.Require(t, "apt-get", "apt-cache")
	if _, err := os.Stat(debianKeyring); err != nil {
		testtool.Require(t, debianKeyring)
	}
	keyring, err := os.ReadFile(debianKeyring)
	must(t, err)
	hs := hostDebianSources(t, "bookworm", "bookworm-updates", "bookworm-security")
	t0 := time.Now()
	env := realApt(t, hs)
	t.Logf("apt-get update: %v", time.Since(t0).Round(time.Millisecond))

	var sources []Source
	for _, s := range hs {
		sources = append(sources, Source{URL: s.uri, Suites: s.suites, Components: s.components})
	}
	ctx := context.Background()
	c := cache.New(t.TempDir())
	t1 := time.Now()
	idx, err := FetchIndex(ctx, c, Config{Sources: sources, Keyring: keyring, Arch: "amd64"}, FetchOptions{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("FetchIndex: %d packages in %v", len(idx.Packages), time.Since(t1).Round(time.Millisecond))
	suites := map[string]bool{}
	for _, d := range idx.Digests {
		suites[d.Suite] = true
		if len(d.Indexes) == 0 {
			t.Errorf("%s %s: no index read", d.URL, d.Suite)
		}
	}
	for _, s := range []string{"bookworm", "bookworm-updates", "bookworm-security"} {
		if !suites[s] {
			t.Errorf("suite %s not read", s)
		}
	}

	securityWins := 0
	for _, wanted := range [][]string{
		{"nginx", "ca-certificates", "tzdata"},
		{"nginx-light", "busybox-static", "base-files"},
		{"openssl", "curl", "libssl3"},
		{"systemd", "linux-image-cloud-amd64", "systemd-boot-efi"},
		{"bsd-mailx", "exim4-daemon-light"},
	} {
		t.Run(strings.Join(wanted, "+"), func(t *testing.T) {
			res, err := idx.Solve(wanted, nil, ResolveOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var got, names []string
			for _, p := range res.Packages {
				got = append(got, p.String())
				names = append(names, p.Name)
			}
			sort.Strings(got)
			want := aptSimulate(t, env, wanted)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("closure differs from apt-get -s:\n%s", diffLists(want, got))
			}
			policy := aptPolicy(t, env, names)
			for _, p := range res.Packages {
				if policy[p.Name] != p.Version {
					t.Errorf("%s: repro pins %s, apt-cache policy's candidate is %s", p.Name, p.Version, policy[p.Name])
				}
				if p.Suite == "bookworm-security" {
					securityWins++
					// Security wins only where it is newer than the others.
					for _, o := range idx.byName[p.Name][1:] {
						if compareVersions(o, p) >= 0 {
							t.Errorf("%s: security's %s taken over %s of %s", p.Name, p.Version, o.Version, o.Suite)
						}
					}
				}
			}
			for _, ch := range res.Choices {
				t.Logf("%s: %s of %v (%s)", ch.Virtual, ch.Provider, ch.Providers, ch.Reason)
			}
			t.Logf("%d packages, as apt-get -s and apt-cache policy say", len(got))
		})
	}
	if securityWins == 0 {
		t.Errorf("no package came from bookworm-security; its fixes of nginx, libssl3 and others should be there")
	}
}
