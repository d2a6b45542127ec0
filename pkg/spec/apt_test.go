package spec

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAptAndAccountsDefaults(t *testing.T) {
	s := parse(t, `
version: 1
name: web
apt:
  sources:
    - url: http://deb.debian.org/debian/
      suites: [bookworm, bookworm-updates]
  keyring: keys/debian.asc
layers:
  - name: os
    packages: [nginx-light=1.22.1-9, "ca-certificates (>= 2023)", libc6:amd64]
accounts:
  groups: [{name: www-data, gid: 33}]
  users: [{name: www-data, uid: 33, gid: 33}]
`, LoadOptions{})
	if got := s.Apt.Sources[0].Components; !cmp.Equal(got, []string{"main"}) {
		t.Errorf("components default %q, want [main]", got)
	}
	if !s.UsrMerge() || !s.HasPackages() {
		t.Errorf("UsrMerge %v, HasPackages %v; want both", s.UsrMerge(), s.HasPackages())
	}
	u := s.Accounts.Users[0]
	if u.Home != DefaultHome || u.Shell != DefaultShell {
		t.Errorf("user defaults: home %q, shell %q", u.Home, u.Shell)
	}
	var names []string
	for _, p := range s.Layers[0].Packages {
		names = append(names, PackageName(p))
	}
	if !cmp.Equal(names, []string{"nginx-light", "ca-certificates", "libc6"}) {
		t.Errorf("PackageName: %q", names)
	}
	off := parse(t, "version: 1\nname: a\napt:\n  sources: [{url: http://x/debian, suites: [s]}]\n  keyring: k.asc\n  usrmerge: false\nlayers: [{packages: [a1]}]\n", LoadOptions{})
	if off.UsrMerge() {
		t.Error("usrmerge: false is not read")
	}
	if plain := parse(t, "version: 1\nname: a\nlayers: [{contents: [{path: /a, content: x}]}]\n", LoadOptions{}); !plain.UsrMerge() || plain.HasPackages() {
		t.Error("a spec without apt: UsrMerge must be true and HasPackages false")
	}
}
