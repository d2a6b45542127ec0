package spec

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// Defaults of apt and accounts.
const (
	DefaultComponent = "main"
	DefaultHome      = "/nonexistent"
	DefaultShell     = "/usr/sbin/nologin"
)

// AccountFiles are the files that accounts writes; a spec with accounts
// may not write them with contents as well.
var AccountFiles = []string{"/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"}

var (
	// pkgNameRE is a Debian package name (Debian Policy 5.6.1).
	pkgNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	// wantedRE is a packages entry: a name, optionally :arch, then
	// optionally =version or a (op version) constraint.
	wantedRE = regexp.MustCompile(`^([a-z0-9][a-z0-9+.-]+)(:[a-z0-9-]+)?(=[A-Za-z0-9.+~:-]+| *\((<<|<=|=|>=|>>) *[A-Za-z0-9.+~:-]+\))?$`)
	// accountRE is a user or group name as Debian's adduser accepts it by
	// default, at most 32 bytes.
	accountRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	// suiteRE is a suite or component name: dists/<suite>/ and
	// <component>/binary-<arch>/ are paths of the repository.
	snapshotRE = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z$`)
	suiteRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*(/[A-Za-z0-9][A-Za-z0-9._+-]*)*$`)
)

// UsrMerge reports whether packages are laid out merged into /usr: the
// apt.usrmerge setting, true when absent.
func (s *Spec) UsrMerge() bool {
	return s.Apt == nil || s.Apt.UsrMerge == nil || *s.Apt.UsrMerge
}

// HasPackages reports whether any layer installs Debian packages.
func (s *Spec) HasPackages() bool {
	for _, l := range s.Layers {
		if len(l.Packages) > 0 {
			return true
		}
	}
	return false
}

// PackageName returns the package name of a packages entry
// ("nginx-light=1.22.1-9" is nginx-light).
func PackageName(entry string) string {
	if m := wantedRE.FindStringSubmatch(entry); m != nil {
		return m[1]
	}
	return entry
}

// packages checks layer i's packages.
func (v *validator) packages(i int) {
	l := v.s.Layers[i]
	f := fmt.Sprintf("layers[%d].packages", i)
	if len(l.Packages) == 0 {
		v.errorf(f, "layer %q has no packages; name at least one, like packages: [ca-certificates], or remove the layer", l.Name)
		return
	}
	if v.s.Apt == nil {
		v.keyErrorf(f, "packages come from the repositories of apt:, and the spec has none; add apt: at the top level with sources and keyring (see specs/README.md)")
	}
	seen := map[string]int{}
	for j, p := range l.Packages {
		pf := fmt.Sprintf("%s[%d]", f, j)
		if !wantedRE.MatchString(p) {
			hint := ""
			if lower := strings.ToLower(strings.TrimSpace(p)); lower != p && wantedRE.MatchString(lower) {
				hint = fmt.Sprintf(" (Debian package names are lower case: %s)", lower)
			}
			v.errorf(pf, "%q is not a package; write a Debian package name, optionally with =version or a constraint like \"nginx-light (>= 1.22)\"%s", p, hint)
			continue
		}
		name := PackageName(p)
		if k, dup := seen[name]; dup {
			v.errorf(pf, "%s is also named by %s[%d]; name each package once per layer", name, f, k)
			continue
		}
		seen[name] = j
	}
}

func (v *validator) apt() {
	s := v.s
	a := s.Apt
	if a == nil {
		return
	}
	packagesKey := false
	for i := range s.Layers {
		if _, ok := s.pos[fmt.Sprintf("layers[%d].packages", i)]; ok {
			packagesKey = true
		}
	}
	if !packagesKey {
		v.keyErrorf("apt", "no layer has packages, so apt: would be read for nothing; add packages: to a layer, or remove apt:")
	}
	if _, given := s.pos["apt.sources"]; given && len(a.Sources) == 0 {
		v.errorf("apt.sources", "no sources; give at least one, like - {url: http://deb.debian.org/debian, suites: [bookworm], components: [main]}")
	}
	seen := map[string]string{}
	for i := range a.Sources {
		src := &a.Sources[i]
		f := fmt.Sprintf("apt.sources[%d]", i)
		if src.URL != "" {
			u, err := url.Parse(src.URL)
			switch {
			case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
				v.errorf(f+".url", "%q is not an http or https URL; write the repository's URL, like http://deb.debian.org/debian", src.URL)
			case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
				v.errorf(f+".url", "%q: a repository URL has no query, fragment or user; write it like http://deb.debian.org/debian", src.URL)
			case strings.Contains(u.Path, "/dists/"):
				v.errorf(f+".url", "%q points into dists/; give the repository's root (the directory holding dists/ and pool/)", src.URL)
			}
		}
		if _, given := s.pos[f+".suites"]; given && len(src.Suites) == 0 {
			v.errorf(f+".suites", "no suites; name at least one, like suites: [bookworm]")
		}
		for j, suite := range src.Suites {
			sf := fmt.Sprintf("%s.suites[%d]", f, j)
			if !suiteRE.MatchString(suite) {
				v.errorf(sf, "%q is not a suite name; write one like bookworm or bookworm-updates", suite)
				continue
			}
			key := strings.TrimSuffix(src.URL, "/") + " " + suite
			if prev, dup := seen[key]; dup {
				v.errorf(sf, "%s %s is also read by %s; read each suite of a repository once", src.URL, suite, prev)
				continue
			}
			seen[key] = sf
		}
		if _, given := s.pos[f+".components"]; given && len(src.Components) == 0 {
			v.errorf(f+".components", "no components; name at least one, like components: [main], or remove the key for the default [main]")
		}
		if len(src.Components) == 0 {
			src.Components = []string{DefaultComponent}
		}
		comps := map[string]bool{}
		for j, c := range src.Components {
			cf := fmt.Sprintf("%s.components[%d]", f, j)
			switch {
			case !suiteRE.MatchString(c):
				v.errorf(cf, "%q is not a component name; write one like main or contrib", c)
			case comps[c]:
				v.errorf(cf, "%s is listed twice; list each component once", c)
			}
			comps[c] = true
		}
	}
	if a.Keyring != "" {
		if err := contextPath(a.Keyring); err != nil {
			v.errorf("apt.keyring", "%s", err.Error())
		}
	}
	for j, x := range a.Exclude {
		if !pkgNameRE.MatchString(x) {
			v.errorf(fmt.Sprintf("apt.exclude[%d]", j), "%q is not a package name; write the package to leave out, like debconf", x)
		}
	}
	if a.Timezone != "" {
		if c := path.Clean(a.Timezone); c != a.Timezone || strings.HasPrefix(c, "/") || c == ".." || strings.HasPrefix(c, "../") || strings.ContainsAny(a.Timezone, " \x00") {
			v.errorf("apt.timezone", "%q is not a time zone name; write one of /usr/share/zoneinfo, like Etc/UTC or Europe/Berlin", a.Timezone)
		}
	}
	if sn := a.Snapshot; sn != nil {
		if u, err := url.Parse(sn.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.errorf("apt.snapshot.url", "%q is not an http or https URL; write the snapshot archive's base, like http://snapshot.debian.org/archive", sn.URL)
		}
		if sn.Timestamp != "" && !snapshotRE.MatchString(sn.Timestamp) {
			v.errorf("apt.snapshot.timestamp", "%q is not a snapshot timestamp; write it as snapshot.debian.org does, like 20250520T000000Z", sn.Timestamp)
		}
	}
	for _, k := range sortedKeys(a.Prefer) {
		f := "apt.prefer." + k
		if !pkgNameRE.MatchString(k) {
			v.keyErrorf(f, "%q is not a package name; write the virtual package, like awk: mawk", k)
		}
		if p := a.Prefer[k]; !pkgNameRE.MatchString(p) {
			v.errorf(f, "%q is not a package name; write the provider to take for %s, like awk: mawk", p, k)
		}
	}
}

// contextPath checks a path that names a file of the build context.
func contextPath(p string) error {
	switch {
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q is absolute; name a file of the build context, relative to the spec's directory (copy the keyring there)", p)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("%q holds a NUL byte; remove it", p)
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return fmt.Errorf("%q leaves the build context; copy the file into the spec's directory and name it from there", p)
	}
	if c == "." {
		return fmt.Errorf("%q is the build context itself; name the keyring file", p)
	}
	return nil
}

func (v *validator) accounts() {
	s := v.s
	a := s.Accounts
	if a == nil {
		return
	}
	if len(a.Groups) == 0 && len(a.Users) == 0 {
		v.keyErrorf("accounts", "no groups and no users; add some, like users: [{name: app, uid: 10001, gid: 10001}], or remove accounts:")
	}
	for i, l := range s.Layers {
		for j, c := range l.Contents {
			for _, af := range AccountFiles {
				if c.Path == af {
					v.errorf(fmt.Sprintf("layers[%d].contents[%d].path", i, j), "accounts: writes %s (merged over the base's); a layer may not write it too: remove this entry, or remove accounts: and write the account files yourself", af)
					break
				}
			}
		}
	}
	names := map[string]string{}
	ids := map[int]string{}
	for i, g := range a.Groups {
		f := fmt.Sprintf("accounts.groups[%d]", i)
		v.accountName(f+".name", g.Name, names, "group")
		if g.GID != nil {
			if prev, dup := ids[*g.GID]; dup {
				v.errorf(f+".gid", "gid %d is also %s's; give each group its own id", *g.GID, prev)
			} else {
				ids[*g.GID] = g.Name
			}
		}
	}
	names = map[string]string{}
	ids = map[int]string{}
	for i := range a.Users {
		u := &a.Users[i]
		f := fmt.Sprintf("accounts.users[%d]", i)
		v.accountName(f+".name", u.Name, names, "user")
		if u.UID != nil {
			if prev, dup := ids[*u.UID]; dup {
				v.errorf(f+".uid", "uid %d is also %s's; give each user its own id", *u.UID, prev)
			} else {
				ids[*u.UID] = u.Name
			}
		}
		if u.Home == "" {
			u.Home = DefaultHome
		}
		if u.Shell == "" {
			u.Shell = DefaultShell
		}
		for _, fld := range []struct{ key, val string }{{"home", u.Home}, {"shell", u.Shell}} {
			switch {
			case !strings.HasPrefix(fld.val, "/"):
				v.errorf(f+"."+fld.key, "%q is not absolute; write the path from /, like /%s", fld.val, strings.TrimPrefix(fld.val, "./"))
			case strings.ContainsAny(fld.val, ":\n\r\x00"):
				v.errorf(f+"."+fld.key, "%q holds a colon or a line break, which /etc/passwd cannot carry; remove it", fld.val)
			}
		}
	}
}

// accountName checks a user or group name and that it is given once.
func (v *validator) accountName(f, name string, seen map[string]string, what string) {
	if name == "" {
		return // required: reported already
	}
	if !accountRE.MatchString(name) {
		v.errorf(f, "%q is not a %s name; start with a lower-case letter or _, then up to 31 lower-case letters, digits, _ or -, like www-data", name, what)
		return
	}
	if prev, dup := seen[name]; dup {
		v.errorf(f, "%s %s is also %s; list each %s once", what, name, prev, what)
		return
	}
	seen[name] = strings.TrimSuffix(f, ".name")
}

// HasGo reports whether some layer compiles a Go program (a go: entry),
// which the lock must pin a toolchain for.
func (s *Spec) HasGo() bool {
	for _, l := range s.Layers {
		for _, c := range l.Contents {
			if c.Go != "" {
				return true
			}
		}
	}
	return false
}
