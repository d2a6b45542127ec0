package apt

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprobuild/repro/pkg/fault"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/apt")

// universe is a small archive in two suites that exercises every rule of
// Resolve: versions with epochs, OR-groups, virtual packages with one and
// several providers, versioned Provides, :any, Architecture: all and
// foreign architectures, conflicts and breaks.
const universeMain = `
Package: app
Version: 1.0-1
Architecture: amd64
Pre-Depends: init-system-helpers (>= 1.54~)
Depends: libc6 (>= 2.36), awk, debconf (>= 0.5) | debconf-2.0, perl:any, libz-ng | zlib1g (>= 1:1.2), mail-transport-agent
Recommends: never-installed

Package: libc6
Version: 2.31-13
Architecture: amd64
Depends: libgcc-s1

Package: libgcc-s1
Version: 12.2.0-14
Architecture: amd64
Depends: gcc-12-base (= 12.2.0-14), libc6 (>= 2.35)

Package: gcc-12-base
Version: 12.2.0-14
Architecture: amd64

Package: init-system-helpers
Version: 1.65.2
Architecture: all
Depends: perl-base (>= 5.20.1-3)

Package: perl-base
Version: 5.36.0-7
Architecture: amd64

Package: perl
Version: 5.36.0-7
Architecture: amd64
Multi-Arch: allowed
Depends: perl-base (= 5.36.0-7)

Package: mawk
Version: 1.3.4.20200120-3.1
Architecture: amd64
Provides: awk

Package: debconf
Version: 1.5.82
Architecture: all
Provides: debconf-2.0

Package: cdebconf
Version: 0.270
Architecture: amd64
Provides: debconf-2.0

Package: zlib1g
Version: 1:1.2.13.dfsg-1
Architecture: amd64

Package: exim4-daemon-light
Version: 4.96-15
Architecture: amd64
Provides: mail-transport-agent
Conflicts: mail-transport-agent

Package: postfix
Version: 3.7.10-0
Architecture: amd64
Provides: mail-transport-agent
Conflicts: mail-transport-agent

Package: never-installed
Version: 1
Architecture: all

Package: app
Version: 9.0
Architecture: arm64
`

const universeUpdates = `
Package: libc6
Version: 2.36-9+deb12u4
Architecture: amd64
Depends: libgcc-s1

Package: zlib1g
Version: 1.3
Architecture: amd64

Package: newlib
Version: 1.0
Architecture: amd64
Provides: oldlib

Package: newlib
Version: 2.0
Architecture: amd64

Package: uses-oldlib
Version: 1
Architecture: amd64
Depends: oldlib

Package: versioned-user
Version: 1
Architecture: amd64
Depends: virt (>= 2)

Package: virt-one
Version: 1
Architecture: amd64
Provides: virt (= 1)

Package: virt-three
Version: 1
Architecture: amd64
Provides: virt (= 3)

Package: virt-unversioned
Version: 1
Architecture: amd64
Provides: virt

Package: or-user
Version: 1
Architecture: amd64
Depends: left | right, right

Package: left
Version: 1
Architecture: all

Package: right
Version: 1
Architecture: all

Package: wants-sh
Version: 1
Architecture: amd64
Depends: dash

Package: dash
Version: 0.5.12-2
Architecture: amd64

Package: busybox
Version: 1:1.35.0-4
Architecture: amd64
Provides: dash

Package: any-user
Version: 1
Architecture: amd64
Depends: perl-base:any

Package: breaker
Version: 1
Architecture: amd64
Breaks: libc6 (<< 2.36)

Package: foreign-user
Version: 1
Architecture: amd64
Depends: libc6:arm64

Package: old-dep
Version: 1
Architecture: amd64
Depends: libc6 (>= 3)
`

func universe(t *testing.T) *Index {
	t.Helper()
	var all []*Package
	for _, s := range []struct{ suite, text string }{{"bookworm", universeMain}, {"bookworm-updates", universeUpdates}} {
		pkgs, err := ParseStanzas(strings.NewReader(s.text))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkgs {
			p.Source, p.Suite, p.Component = "http://deb.example/debian", s.suite, "main"
		}
		all = append(all, pkgs...)
	}
	return NewIndex("amd64", all, nil)
}

func TestResolveGolden(t *testing.T) {
	idx := universe(t)
	var out strings.Builder
	for _, tc := range []struct {
		name      string
		wanted    []string
		installed string
		prefer    map[string]string
	}{
		{name: "app, preferring postfix", wanted: []string{"app"}, prefer: map[string]string{"mail-transport-agent": "postfix"}},
		{name: "app and exim4, no preference needed", wanted: []string{"exim4-daemon-light", "app"}},
		{name: "app over a base holding libc6 and perl", wanted: []string{"app", "app"}, prefer: map[string]string{"mail-transport-agent": "postfix"},
			installed: "Package: libc6\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\nStatus: install ok installed\n\nPackage: perl-base\nVersion: 5.36.0-7\nArchitecture: amd64\n\nPackage: original-awk\nVersion: 1\nArchitecture: amd64\nProvides: awk\n"},
		{name: "a base holding an old libc6 is upgraded", wanted: []string{"libgcc-s1"},
			installed: "Package: libc6\nVersion: 2.31-13\nArchitecture: amd64\n"},
		{name: "OR-group takes what is pulled in anyway", wanted: []string{"or-user"}},
		{name: "versioned provides", wanted: []string{"versioned-user"}},
		{name: "real package before provider", wanted: []string{"wants-sh"}},
		{name: "wanted versions, older than the candidates", wanted: []string{"zlib1g (<< 1:0)", "gcc-12-base=12.2.0-14"}},
	} {
		fmt.Fprintf(&out, "# %s: %s\n", tc.name, strings.Join(tc.wanted, " "))
		var inst []*Package
		if tc.installed != "" {
			var err error
			inst, err = ParseStatus(strings.NewReader(tc.installed))
			if err != nil {
				t.Fatal(err)
			}
		}
		got, err := idx.Resolve(tc.wanted, inst, tc.prefer)
		if err != nil {
			fmt.Fprintf(&out, "error: %v\n\n", err)
			continue
		}
		for _, p := range got {
			fmt.Fprintf(&out, "%s %s %s required-by=%s\n", p, p.Architecture, p.Suite, strings.Join(p.RequiredBy, ","))
		}
		out.WriteString("\n")
	}
	golden(t, "resolve.golden", out.String())
}

func TestResolveErrors(t *testing.T) {
	idx := universe(t)
	for _, tc := range []struct {
		wanted    []string
		prefer    map[string]string
		want      string
		installed string
	}{
		{[]string{"app"}, map[string]string{"mail-transport-agent": "sendmail"}, "apt.prefer names sendmail for mail-transport-agent, but its providers are exim4-daemon-light, postfix", ""},
		{[]string{"uses-oldlib"}, nil, "uses-oldlib=1 depends on oldlib, which cannot be installed: oldlib: no such package", ""},
		{[]string{"nope"}, nil, "package nope: no such package", ""},
		{[]string{"any-user"}, nil, "perl-base=5.36.0-7 is not Multi-Arch: allowed", ""},
		{[]string{"breaker"}, nil, "breaker=1 breaks libc6 (<< 2.36) (libc6=2.31-13 is installed)", "Package: libc6\nVersion: 2.31-13\nArchitecture: amd64\n"},
		{[]string{"libgcc-s1", "libc6=2.31-13"}, nil, "libgcc-s1=12.2.0-14 depends on libc6 (>= 2.35), which cannot be installed: libc6 (>= 2.35): libc6=2.31-13 is selected, and only one version can be", ""},
		{[]string{"exim4-daemon-light", "postfix"}, nil, "exim4-daemon-light=4.96-15 conflicts with mail-transport-agent (postfix=3.7.10-0 is selected)", ""},
		{[]string{"foreign-user"}, nil, "architecture arm64 is not the one being installed", ""},
		{[]string{"old-dep"}, nil, "libc6 (>= 3): the newest version is 2.36-9+deb12u4", ""},
		{[]string{"a | b"}, nil, "is not a package name", ""},
	} {
		inst, err := ParseStatus(strings.NewReader(tc.installed))
		must(t, err)
		_, err = idx.Resolve(tc.wanted, inst, tc.prefer)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Resolve(%v): err = %v\nwant one containing %q", tc.wanted, err, tc.want)
			continue
		}
		if fault.KindOf(err) != fault.BadInput {
			t.Errorf("Resolve(%v): kind %v", tc.wanted, fault.KindOf(err))
		}
	}
}

// TestResolveProviderChoice checks apt's rules for a virtual package with
// several providers, rule by rule, and that the choice is reported.
func TestResolveProviderChoice(t *testing.T) {
	stanza := func(name, extra string) string {
		return "Package: " + name + "\nVersion: 1\nArchitecture: amd64\nProvides: virt\nFilename: pool/" + name + ".deb\n" + extra + "\n\n"
	}
	for _, tc := range []struct {
		name, text string
		prefer     map[string]string
		installed  string
		want, why  string
	}{
		{"priority", stanza("aaa", "Priority: optional") + stanza("zzz", "Priority: required"), nil, "", "zzz", "Priority: required over optional"},
		{"essential over priority", stanza("aaa", "Priority: required") + stanza("zzz", "Priority: optional\nEssential: yes"), nil, "", "zzz", "Essential: yes"},
		{"important", stanza("aaa", "Priority: optional") + stanza("zzz", "Priority: optional\nImportant: yes"), nil, "", "zzz", "Important: yes"},
		// Equal in all else: the provider apt's cache numbered last.
		{"order", stanza("zzz", "Priority: optional") + stanza("aaa", "Priority: optional"), nil, "", "aaa", "apt's package order (the provider named last in the indexes)"},
		{"order, named earlier by a relation", "Package: first\nVersion: 1\nArchitecture: amd64\nSuggests: aaa\n\n" + stanza("zzz", "Priority: optional") + stanza("aaa", "Priority: optional"), nil, "", "zzz", "apt's package order (the provider named last in the indexes)"},
		{"prefer", stanza("aaa", "Priority: optional") + stanza("zzz", "Priority: required"), map[string]string{"virt": "aaa"}, "", "aaa", "apt.prefer"},
		{"installed", stanza("aaa", "Priority: optional") + stanza("zzz", "Priority: required"), nil, "Package: aaa\nVersion: 1\nArchitecture: amd64\nProvides: virt\n", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := "Package: wants\nVersion: 1\nArchitecture: amd64\nDepends: virt\nFilename: pool/wants.deb\n\n" + tc.text
			pkgs, err := ParseStanzas(strings.NewReader(text))
			must(t, err)
			inst, err := ParseStatus(strings.NewReader(tc.installed))
			must(t, err)
			res, err := NewIndex("amd64", pkgs, nil).Solve([]string{"wants"}, inst, ResolveOptions{Prefer: tc.prefer})
			must(t, err)
			if tc.want == "" {
				if len(res.Choices) != 0 || len(res.Packages) != 1 {
					t.Fatalf("an installed provider needs no choice; got %v, %v", res.Choices, res.Packages)
				}
				return
			}
			if len(res.Choices) != 1 {
				t.Fatalf("choices %v", res.Choices)
			}
			c := res.Choices[0]
			if c.Virtual != "virt" || c.Provider != tc.want || c.Reason != tc.why || len(c.Providers) != 2 {
				t.Errorf("choice %+v; want %s because %q", c, tc.want, tc.why)
			}
			found := false
			for _, p := range res.Packages {
				found = found || p.Name == tc.want
			}
			if !found {
				t.Errorf("%s is not in the result", tc.want)
			}
		})
	}
}

// TestResolveExclude checks that an excluded dependency is left out,
// with what needed it, and that asking for it is an error.
func TestResolveExclude(t *testing.T) {
	idx := universe(t)
	res, err := idx.Solve([]string{"app"}, nil, ResolveOptions{Prefer: map[string]string{"mail-transport-agent": "postfix"}, Exclude: []string{"libc6"}})
	must(t, err)
	for _, p := range res.Packages {
		if p.Name == "libc6" {
			t.Errorf("libc6 is excluded but resolved")
		}
	}
	if len(res.Excluded) != 1 || res.Excluded[0].Name != "libc6" || len(res.Excluded[0].RequiredBy) == 0 {
		t.Errorf("excluded %+v", res.Excluded)
	}
	if _, err := idx.Solve([]string{"libc6"}, nil, ResolveOptions{Exclude: []string{"libc6"}}); err == nil || !strings.Contains(err.Error(), "both asked for and excluded") {
		t.Errorf("asking for an excluded package: %v", err)
	}
}

// TestResolveOrderIndependent checks that the order of wanted packages and
// of the index does not change the result.
func TestResolveOrderIndependent(t *testing.T) {
	idx := universe(t)
	prefer := map[string]string{"mail-transport-agent": "postfix"}
	a, err := idx.Resolve([]string{"app", "or-user", "wants-sh"}, nil, prefer)
	if err != nil {
		t.Fatal(err)
	}
	fresh := universe(t).Packages
	rev := make([]*Package, len(fresh))
	for i, p := range fresh {
		rev[len(rev)-1-i] = p
	}
	idx2 := NewIndex("amd64", rev, nil)
	b, err := idx2.Resolve([]string{"wants-sh", "or-user", "app"}, nil, prefer)
	if err != nil {
		t.Fatal(err)
	}
	if names(a) != names(b) {
		t.Errorf("order changed the result:\n%s\n%s", names(a), names(b))
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("..", "..", "testdata", "apt", name)
	if *update {
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(got), 0o644))
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./pkg/apt -run %s -update to write it)", err, t.Name())
	}
	if string(want) != got {
		t.Errorf("%s differs from the result; run with -update if the change is intended\ngot:\n%s\nwant:\n%s", p, got, want)
	}
}

func TestResolveDidYouMean(t *testing.T) {
	idx := universe(t)
	_, err := idx.Resolve([]string{"exim4-deamon-light"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "did you mean exim4-daemon-light?") {
		t.Errorf("err = %v", err)
	}
	_, err = idx.Resolve([]string{"zzzzzzzz"}, nil, nil)
	if err == nil || strings.Contains(err.Error(), "did you mean") {
		t.Errorf("a name near nothing: %v", err)
	}
}
