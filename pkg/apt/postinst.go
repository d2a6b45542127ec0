package apt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/reprobuild/repro/pkg/layer"
)

// Action is one thing that a skipped maintainer script or trigger would
// have done, and what repro did about it.
type Action struct {
	Package string `json:"package"`
	// Script is postinst, or trigger for a trigger's work.
	Script string `json:"script"`
	// What names the work: "update-alternatives awk", "CA bundle".
	What string `json:"what"`
	// Status is ActionDone, ActionReported or ActionIgnored.
	Status string `json:"status"`
	// How says what repro wrote, or why it did nothing.
	How string `json:"how"`
}

// The statuses of an Action.
const (
	// ActionDone: repro wrote what the script would have.
	ActionDone = "done"
	// ActionReported: the image lacks what the script would have made;
	// the spec can add it (the How says how).
	ActionReported = "reported"
	// ActionIgnored: the script's work does not belong in an image
	// (starting services, upgrade housekeeping, debconf questions).
	ActionIgnored = "ignored"
)

// MaintScriptsDir is where Entries records, for each package with a
// maintainer script or trigger, the Actions as JSON (<package>.json), so
// that the SBOM of the image can say them.
const MaintScriptsDir = "/var/lib/repro/maintscripts"

// ExcludedFile is where a build records the packages apt.exclude left
// out of a layer (a JSON list of Exclusion), for the SBOM.
const ExcludedFile = "/var/lib/repro/apt-excluded.json"

// scriptKind is a kind of work found in postinst scripts, by a pattern,
// with what repro does about it when no handler did the work.
type scriptKind struct {
	name   string
	re     *regexp.Regexp
	status string
	how    string
}

// scriptKinds are the kinds of postinst work measured across the
// closures of Debian 12's Priority >= standard packages and the examples
// (nginx, ca-certificates, tzdata, systemd, openssl, a cloud kernel):
// handlers below do the common ones; the rest are reported or ignored by
// name, here.
var scriptKinds = []scriptKind{
	{"update-alternatives", regexp.MustCompile(`update-alternatives\s+(--quiet\s+)?--install`), ActionReported, "the call uses shell variables; add the link under contents"},
	{"update-ca-certificates", regexp.MustCompile(`update-ca-certificates`), ActionReported, "install ca-certificates in the same layer"},
	{"systemd units", regexp.MustCompile(`deb-systemd-helper\s+(enable|update-state|unmask)`), ActionReported, "enable units with systemd.enable"},
	{"starting services", regexp.MustCompile(`deb-systemd-invoke|invoke-rc\.d|systemctl\s+(--system\s+)?(start|restart|daemon-reload|reload)`), ActionIgnored, "nothing runs while an image is built"},
	{"sysv init links", regexp.MustCompile(`update-rc\.d`), ActionIgnored, "an image has no sysv init to start"},
	{"conffile moves", regexp.MustCompile(`dpkg-maintscript-helper`), ActionIgnored, "upgrade housekeeping: a fresh install has nothing to move"},
	{"debconf", regexp.MustCompile(`\bdb_(get|input|go|set|version|metaget)\b`), ActionIgnored, "the questions' defaults are what an unattended install takes"},
	{"accounts", regexp.MustCompile(`\b(adduser|addgroup|useradd|groupadd)\b`), ActionReported, "add the users and groups under accounts"},
	{"systemd-sysusers", regexp.MustCompile(`systemd-sysusers`), ActionReported, "add the sysusers.d accounts under accounts"},
	{"systemd-tmpfiles", regexp.MustCompile(`systemd-tmpfiles`), ActionReported, "systemd makes the tmpfiles.d entries at boot; add what a container needs under contents"},
	{"ownership", regexp.MustCompile(`\b(chown|chgrp|dpkg-statoverride)\b`), ActionReported, "set uid, gid and mode of the paths under contents"},
	{"directories", regexp.MustCompile(`\bmkdir\b|\binstall\s+-[a-z]*d`), ActionReported, "add the directories under contents"},
	{"symlinks", regexp.MustCompile(`\bln\s+-[a-z]*s`), ActionReported, "add the links under contents"},
	{"python bytecode", regexp.MustCompile(`py3compile|pycompile`), ActionIgnored, "Python compiles modules when it imports them"},
	{"/etc/shells", regexp.MustCompile(`update-shells|add-shell`), ActionReported, "add the shells to /etc/shells under contents"},
	{"ucf", regexp.MustCompile(`\bucfr?\b`), ActionIgnored, "the configuration file shipped is the one ucf would install"},
	{"pam-auth-update", regexp.MustCompile(`pam-auth-update`), ActionReported, "/etc/pam.d/common-* are not written; add them under contents"},
	{"kernel modules and initramfs", regexp.MustCompile(`update-initramfs|depmod|linux-update-symlinks`), ActionReported, "repro disk --boot makes the initramfs; modules.dep is not written"},
	{"capabilities", regexp.MustCompile(`\bsetcap\b`), ActionReported, "give the file capabilities under contents"},
	{"machine id", regexp.MustCompile(`systemd-machine-id-setup`), ActionIgnored, "a machine id belongs to a running system, not an image"},
	{"/etc/localtime", regexp.MustCompile(`/etc/localtime`), ActionReported, "set apt.timezone"},
	{"documentation indexes", regexp.MustCompile(`update-mime|install-info|mandb`), ActionIgnored, "caches of documentation"},
}

// verdicts are what a particular package's script does, read from its
// script (package -> kind -> status, how), where the kind's default would
// say less.
var verdicts = map[string]map[string][2]string{
	"iproute2": {"capabilities": {ActionIgnored, "debconf's default iproute2/setcaps is false: /bin/ip gets no capabilities"}},
	"openssl":  {"symlinks": {ActionDone, "nothing to do: the package ships /usr/lib/ssl, which the script links only when absent"}},
	"libc6":    {"starting services": {ActionIgnored, "restarts services after an upgrade of libc"}},
}

// declarative does, for the packages of this layer, what their postinst
// scripts and triggers would have made that an image needs, and records
// an Action for every kind of work each script does.
func (x *extractor) declarative(pkgs []*debPackage) error {
	byName := map[string]*debPackage{}
	for _, dp := range pkgs {
		byName[dp.name()] = dp
	}
	done := map[string]map[string]bool{} // package -> kinds a handler did
	mark := func(pkg string, kinds ...string) {
		if done[pkg] == nil {
			done[pkg] = map[string]bool{}
		}
		for _, k := range kinds {
			done[pkg][k] = true
		}
	}
	if err := x.alternatives(pkgs, mark); err != nil {
		return err
	}
	if dp := byName["base-files"]; dp != nil {
		x.baseFiles(dp, mark)
	}
	if dp := byName["ca-certificates"]; dp != nil {
		if err := x.caCertificates(dp, mark); err != nil {
			return fmt.Errorf("ca-certificates: building the CA bundle: %w", err)
		}
	}
	if dp := byName["nginx-common"]; dp != nil {
		if err := x.nginxCommon(dp, mark); err != nil {
			return err
		}
	}
	for _, dp := range pkgs {
		x.nginxModule(dp, mark)
	}
	if dp := byName["tzdata"]; dp != nil {
		x.tzdata(dp, mark)
	}
	x.ldconfig(pkgs)
	for _, dp := range pkgs {
		for kind, v := range verdicts[dp.name()] {
			if dp.ctl.postinst == nil || done[dp.name()][kind] {
				continue
			}
			status, how := v[0], v[1]
			if kind == "symlinks" && dp.name() == "openssl" {
				if x.byPath["/usr/lib/ssl"] == nil {
					x.addLink("/usr/lib/ssl", "/etc/ssl", reproOrigin("openssl"))
					how = "/usr/lib/ssl -> /etc/ssl"
				}
			}
			mark(dp.name(), kind)
			x.act(dp.name(), "postinst", kind, status, how)
		}
	}
	// Every other kind of work found in a script, by name.
	for _, dp := range pkgs {
		if dp.ctl.postinst == nil {
			continue
		}
		for _, k := range scriptKinds {
			if done[dp.name()][k.name] || !k.re.Match(dp.ctl.postinst) {
				continue
			}
			x.act(dp.name(), "postinst", k.name, k.status, k.how)
		}
	}
	sort.SliceStable(x.report.Actions, func(i, j int) bool {
		a, b := x.report.Actions[i], x.report.Actions[j]
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		if a.Script != b.Script {
			return a.Script < b.Script
		}
		return a.What < b.What
	})
	// The record for the SBOM, one file per package.
	per := map[string][]Action{}
	for _, a := range x.report.Actions {
		per[a.Package] = append(per[a.Package], a)
	}
	for _, name := range sortedKeys(per) {
		data, err := json.MarshalIndent(per[name], "", "  ")
		if err != nil {
			return err
		}
		x.addFile(MaintScriptsDir+"/"+name+".json", append(data, '\n'), 0o644, 0, 0, "repro: the maintainer-script work of "+name)
	}
	return nil
}

func (x *extractor) act(pkg, script, what, status, how string) {
	x.report.Actions = append(x.report.Actions, Action{Package: pkg, Script: script, What: what, Status: status, How: how})
}

// lookup returns the entry at p, usr-merged as the layer lays it out.
func (x *extractor) lookup(p string) *owned {
	if x.opts.UsrMerge {
		p = usrMerge(p)
	}
	return x.byPath[p]
}

// resolve follows symlinks of the layer from p (at most 16), returning
// the entry finally reached.
func (x *extractor) resolve(p string) *owned {
	for i := 0; i < 16; i++ {
		o := x.lookup(p)
		if o == nil || o.e.Type != layer.Symlink {
			return o
		}
		t := o.e.Target
		if !path.IsAbs(t) {
			t = path.Join(path.Dir(o.e.Path), t)
		}
		p = path.Clean(t)
	}
	return nil
}

func (x *extractor) read(o *owned) ([]byte, error) {
	rc, err := o.e.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxControlMember))
}

// repro marks entries repro writes in the package's stead.
func reproOrigin(pkg string) string { return "repro, for the postinst of " + pkg }

func (x *extractor) addFile(p string, data []byte, mode uint32, uid, gid int, origin string) {
	x.byPath[p] = &owned{e: layer.Entry{
		Path: p, Type: layer.Regular, Mode: mode, UID: uid, GID: gid, Size: int64(len(data)),
		Open:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		Origin: origin,
	}}
}

func (x *extractor) addLink(p, target, origin string) {
	x.byPath[p] = &owned{e: layer.Entry{Path: p, Type: layer.Symlink, Mode: 0o777, Target: target, Origin: origin}}
}

func (x *extractor) addDir(p string, mode uint32, uid, gid int, origin string) {
	if o := x.byPath[p]; o != nil && o.e.Type == layer.Dir {
		o.e.Mode, o.e.UID, o.e.GID = mode, uid, gid
		return
	}
	x.byPath[p] = &owned{e: layer.Entry{Path: p, Type: layer.Dir, Mode: mode, UID: uid, GID: gid, Origin: origin}}
}

// Debian's fixed group and user ids (base-passwd).
const (
	gidAdm     = 4
	gidMail    = 8
	gidUtmp    = 43
	uidWWWData = 33
)

// ---- update-alternatives ------------------------------------------------

type alternative struct {
	pkg, link, name, path string
	priority              int
	slaves                [][3]string // link, name, path
}

var continuation = regexp.MustCompile(`\\\r?\n[ \t]*`)

// parseAlternatives finds the update-alternatives --install calls of a
// script: link, name, path, priority and the --slave triples. A call whose
// words are not literal (shell variables, command substitution) is
// returned by the name it installs, or its line, in dynamic.
func parseAlternatives(script []byte) (alts []alternative, dynamic []string) {
	text := continuation.ReplaceAllString(string(script), " ")
	for _, line := range strings.Split(text, "\n") {
		i := strings.Index(line, "update-alternatives")
		if i < 0 || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		words := strings.Fields(line[i+len("update-alternatives"):])
		for k, w := range words {
			if w == ";" || w == "&&" || w == "||" || w == "|" || strings.HasPrefix(w, ">") || strings.HasPrefix(w, "2>") {
				words = words[:k]
				break
			}
			if strings.HasSuffix(w, ";") {
				words = append(words[:k], strings.TrimSuffix(w, ";"))
				break
			}
		}
		for len(words) > 0 && (words[0] == "--quiet" || words[0] == "--force") {
			words = words[1:]
		}
		if len(words) == 0 || words[0] != "--install" {
			continue
		}
		literal := true
		for k := range words {
			w := strings.Trim(words[k], `"'`)
			if strings.ContainsAny(w, "$`()") {
				literal = false
			}
			words[k] = w
		}
		if !literal || len(words) < 5 {
			name := "a call in " + strings.TrimSpace(line)
			if len(words) >= 3 && !strings.ContainsAny(words[2], "$`") {
				name = words[2]
			}
			dynamic = append(dynamic, name)
			continue
		}
		prio, err := strconv.Atoi(words[4])
		if err != nil {
			dynamic = append(dynamic, words[2])
			continue
		}
		a := alternative{link: words[1], name: words[2], path: words[3], priority: prio}
		rest := words[5:]
		for len(rest) >= 4 && rest[0] == "--slave" {
			a.slaves = append(a.slaves, [3]string{rest[1], rest[2], rest[3]})
			rest = rest[4:]
		}
		alts = append(alts, a)
	}
	return alts, dynamic
}

// alternatives makes the links of every update-alternatives group the
// layer's postinst scripts install: for each name the highest priority
// wins, as update-alternatives' auto mode decides (equal priorities: the
// path first in byte order). link -> /etc/alternatives/name -> path, and
// each slave whose path the layer holds.
func (x *extractor) alternatives(pkgs []*debPackage, mark func(string, ...string)) error {
	best := map[string]alternative{}
	var all []alternative
	for _, dp := range pkgs {
		if dp.ctl.postinst == nil {
			continue
		}
		alts, dynamic := parseAlternatives(dp.ctl.postinst)
		for _, d := range dynamic {
			x.act(dp.name(), "postinst", "update-alternatives "+d, ActionReported, "the call is not literal (shell variables); add its links under contents")
		}
		if len(alts) > 0 && len(dynamic) == 0 {
			mark(dp.name(), "update-alternatives")
		}
		for _, a := range alts {
			a.pkg = dp.name()
			all = append(all, a)
			if x.resolve(a.path) == nil {
				continue // update-alternatives refuses a path that does not exist
			}
			if b, ok := best[a.name]; !ok || a.priority > b.priority || (a.priority == b.priority && a.path < b.path) {
				best[a.name] = a
			}
		}
	}
	for _, a := range all {
		b, ok := best[a.name]
		switch {
		case !ok:
			x.act(a.pkg, "postinst", "update-alternatives "+a.name, ActionReported, fmt.Sprintf("%s is not in the layer, so there is no %s", a.path, a.link))
			continue
		case b.pkg != a.pkg || b.path != a.path:
			x.act(a.pkg, "postinst", "update-alternatives "+a.name, ActionDone, fmt.Sprintf("%s (priority %d) lost to %s of %s (priority %d)", a.path, a.priority, b.path, b.pkg, b.priority))
			continue
		}
		link := a.link
		if x.opts.UsrMerge {
			link = usrMerge(link)
		}
		origin := reproOrigin(a.pkg)
		if o := x.byPath[link]; o != nil {
			x.act(a.pkg, "postinst", "update-alternatives "+a.name, ActionReported, fmt.Sprintf("%s is shipped by %s, and update-alternatives does not replace a file", a.link, o.pkg.name()))
			continue
		}
		x.addLink(link, "/etc/alternatives/"+a.name, origin)
		x.addLink("/etc/alternatives/"+a.name, a.path, origin)
		how := fmt.Sprintf("%s -> /etc/alternatives/%s -> %s (priority %d)", a.link, a.name, a.path, a.priority)
		for _, s := range a.slaves {
			sl := s[0]
			if x.opts.UsrMerge {
				sl = usrMerge(sl)
			}
			if x.resolve(s[2]) == nil || x.byPath[sl] != nil {
				continue
			}
			x.addLink(sl, "/etc/alternatives/"+s[1], origin)
			x.addLink("/etc/alternatives/"+s[1], s[2], origin)
			how += fmt.Sprintf("; %s -> %s", s[0], s[2])
		}
		x.act(a.pkg, "postinst", "update-alternatives "+a.name, ActionDone, how)
	}
	return nil
}

// ---- base-files -----------------------------------------------------------

// baseFiles does base-files' first configure: the /var/run and /var/lock
// links to /run, the directories and files it makes, and its copies of
// the default dot files.
func (x *extractor) baseFiles(dp *debPackage, mark func(string, ...string)) {
	name := dp.name()
	origin := reproOrigin(name)
	var made []string
	// migrate_directory: the package ships /var/run and /var/lock as
	// directories; what others ship there moves to /run.
	for _, m := range [][2]string{{"/var/run", "/run"}, {"/var/lock", "/run/lock"}} {
		from, to := m[0], m[1]
		for _, p := range sortedKeys(x.byPath) {
			if !strings.HasPrefix(p, from+"/") {
				continue
			}
			o := x.byPath[p]
			delete(x.byPath, p)
			np := to + strings.TrimPrefix(p, from)
			if prev, ok := x.byPath[np]; ok && prev.e.Type == layer.Dir && o.e.Type == layer.Dir {
				continue
			}
			o.e.Path = np
			x.byPath[np] = o
		}
		delete(x.byPath, from)
		x.addLink(from, to, origin)
		made = append(made, from+" -> "+to)
	}
	x.addDir("/run/lock", 0o1777, 0, 0, origin)
	if x.byPath["/etc/dpkg/origins/debian"] != nil && x.byPath["/etc/dpkg/origins/default"] == nil {
		x.addLink("/etc/dpkg/origins/default", "debian", origin)
		made = append(made, "/etc/dpkg/origins/default -> debian")
	}
	for _, c := range [][2]string{{"dot.profile", "/root/.profile"}, {"dot.bashrc", "/root/.bashrc"}, {"profile", "/etc/profile"}, {"motd", "/etc/motd"}, {"info.dir", "/usr/share/info/dir"}} {
		src := x.byPath["/usr/share/base-files/"+c[0]]
		if src == nil || x.byPath[c[1]] != nil || src.e.Type != layer.Regular {
			continue
		}
		if c[1] == "/usr/share/info/dir" && x.byPath["/usr/share/info"] == nil {
			continue
		}
		e := src.e
		e.Path, e.Origin = c[1], origin
		x.byPath[c[1]] = &owned{e: e}
		made = append(made, c[1])
	}
	for _, d := range []string{"/mnt", "/srv", "/opt", "/etc/opt", "/var/opt", "/media"} {
		if x.byPath[d] == nil {
			x.addDir(d, 0o755, 0, 0, origin)
		}
	}
	x.addDir("/var/mail", 0o2775, 0, gidMail, origin)
	if x.byPath["/var/spool/mail"] == nil {
		x.addLink("/var/spool/mail", "../mail", origin)
	}
	for _, d := range []string{"/usr/local", "/usr/local/share", "/usr/local/share/man", "/usr/local/bin", "/usr/local/games", "/usr/local/lib", "/usr/local/include", "/usr/local/sbin", "/usr/local/src", "/usr/local/etc"} {
		if x.byPath[d] == nil {
			x.addDir(d, 0o755, 0, 0, origin)
		}
	}
	x.addLink("/usr/local/man", "share/man", origin)
	for _, f := range []struct {
		p    string
		mode uint32
	}{{"/var/log/wtmp", 0o664}, {"/var/log/btmp", 0o660}, {"/var/log/lastlog", 0o664}} {
		if x.byPath[f.p] == nil {
			x.addFile(f.p, nil, f.mode, 0, gidUtmp, origin)
		}
	}
	made = append(made, "/mnt /srv /opt /etc/opt /var/opt /media /var/mail /usr/local/*", "/var/spool/mail -> ../mail", "/var/log/wtmp btmp lastlog (root:utmp)")
	mark(name, "symlinks", "directories", "ownership")
	x.act(name, "postinst", "first configure", ActionDone, strings.Join(made, "; "))
}

// ---- ca-certificates ------------------------------------------------------

const caCertificatesConfHeader = `# This file lists certificates that you wish to use or to ignore to be
# installed in /etc/ssl/certs.
# update-ca-certificates(8) will update /etc/ssl/certs by reading this file.
#
# This is autogenerated by dpkg-reconfigure ca-certificates.
# Certificates should be installed under /usr/share/ca-certificates
# and files with extension '.crt' is recognized as available certs.
#
# line begins with # is comment.
# line begins with ! is certificate filename to be deselected.
#
`

// caCertificates does what ca-certificates' postinst does on a fresh,
// unattended install: /etc/ca-certificates.conf enabling every
// certificate of /usr/share/ca-certificates (debconf's default), then
// update-ca-certificates: a <name>.pem link in /etc/ssl/certs for each
// enabled certificate, the bundle /etc/ssl/certs/ca-certificates.crt (the
// certificates in the order of the conf file, each ending in a newline),
// and openssl rehash's <subject hash>.<n> links.
func (x *extractor) caCertificates(dp *debPackage, mark func(string, ...string)) error {
	name := dp.name()
	origin := reproOrigin(name)
	const dir = "/usr/share/ca-certificates/"
	var certs []string
	for p, o := range x.byPath {
		if strings.HasPrefix(p, dir) && strings.HasSuffix(p, ".crt") && o.e.Type == layer.Regular {
			certs = append(certs, strings.TrimPrefix(p, dir))
		}
	}
	sort.Strings(certs)
	var conf []byte
	if o := x.byPath["/etc/ca-certificates.conf"]; o != nil && o.e.Type == layer.Regular {
		b, err := x.read(o)
		if err != nil {
			return err
		}
		conf = b
	} else {
		var b bytes.Buffer
		b.WriteString(caCertificatesConfHeader)
		for _, c := range certs {
			b.WriteString(c + "\n")
		}
		conf = b.Bytes()
		x.addFile("/etc/ca-certificates.conf", conf, 0o644, 0, 0, origin)
	}
	var bundle bytes.Buffer
	type pem struct{ name, file string }
	var pems []pem
	for _, line := range strings.Split(string(conf), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "!") {
			continue
		}
		o := x.byPath[dir+line]
		if o == nil {
			continue // update-ca-certificates warns and goes on
		}
		data, err := x.read(o)
		if err != nil {
			return err
		}
		bundle.Write(data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			bundle.WriteByte('\n')
		}
		base := strings.TrimSuffix(path.Base(line), ".crt")
		base = strings.NewReplacer(" ", "_", "(", "=", ")", "=", ",", "_").Replace(base)
		link := "/etc/ssl/certs/" + base + ".pem"
		x.addLink(link, dir+line, origin)
		pems = append(pems, pem{name: base + ".pem", file: dir + line})
	}
	if bundle.Len() == 0 {
		x.act(name, "postinst", "update-ca-certificates", ActionReported, "no certificate is enabled in /etc/ca-certificates.conf, so there is no bundle")
		return nil
	}
	x.addFile("/etc/ssl/certs/ca-certificates.crt", bundle.Bytes(), 0o644, 0, 0, origin)
	// openssl rehash: one link per distinct certificate, by subject hash.
	sort.Slice(pems, func(i, j int) bool { return pems[i].name < pems[j].name })
	seen := map[string]bool{}
	next := map[string]int{}
	hashed := 0
	for _, p := range pems {
		data, err := x.read(x.byPath[p.file])
		if err != nil {
			return err
		}
		h, fp, err := subjectHash(data)
		if err != nil {
			return fmt.Errorf("%s: %w", p.file, err)
		}
		if h == "" || seen[fp] {
			continue // not a single certificate, or one already linked
		}
		seen[fp] = true
		n := next[h]
		next[h]++
		x.addLink(fmt.Sprintf("/etc/ssl/certs/%s.%d", h, n), p.name, origin)
		hashed++
	}
	if x.byPath["/usr/local/share/ca-certificates"] == nil {
		x.addDir("/usr/local/share/ca-certificates", 0o755, 0, 0, origin)
	}
	mark(name, "update-ca-certificates", "debconf", "directories", "ownership")
	x.act(name, "postinst", "update-ca-certificates", ActionDone, fmt.Sprintf("/etc/ca-certificates.conf (every certificate enabled, debconf's default), /etc/ssl/certs/ca-certificates.crt of %d certificates, %d .pem links and %d subject-hash links", len(pems), len(pems), hashed))
	return nil
}

// ---- nginx ----------------------------------------------------------------

// nginxCommon does nginx-common's first configure: /var/log/nginx
// root:adm, its access.log and error.log www-data:adm 0640, the default
// site enabled, and /var/www/html/index.nginx-debian.html.
func (x *extractor) nginxCommon(dp *debPackage, mark func(string, ...string)) error {
	name := dp.name()
	origin := reproOrigin(name)
	var made []string
	if o := x.byPath["/var/log/nginx"]; o != nil && o.e.Type == layer.Dir {
		o.e.Mode, o.e.UID, o.e.GID = 0o755, 0, gidAdm
		for _, f := range []string{"/var/log/nginx/access.log", "/var/log/nginx/error.log"} {
			if x.byPath[f] == nil {
				x.addFile(f, nil, 0o640, uidWWWData, gidAdm, origin)
			}
		}
		made = append(made, "/var/log/nginx root:adm 0755 with access.log and error.log www-data:adm 0640")
	}
	if x.byPath["/etc/nginx/sites-enabled/default"] == nil && x.byPath["/etc/nginx/sites-enabled"] != nil && x.byPath["/etc/nginx/sites-available"] != nil {
		x.addLink("/etc/nginx/sites-enabled/default", "/etc/nginx/sites-available/default", origin)
		made = append(made, "/etc/nginx/sites-enabled/default -> /etc/nginx/sites-available/default")
	}
	if src := x.byPath["/usr/share/nginx/html/index.html"]; src != nil && src.e.Type == layer.Regular && x.byPath["/var/www/html/index.nginx-debian.html"] == nil {
		x.addDir("/var/www", 0o755, 0, 0, origin)
		x.addDir("/var/www/html", 0o755, 0, 0, origin)
		e := src.e
		e.Path, e.Mode, e.UID, e.GID, e.Origin = "/var/www/html/index.nginx-debian.html", 0o644, 0, 0, origin
		x.byPath[e.Path] = &owned{e: e}
		made = append(made, "/var/www/html/index.nginx-debian.html")
	}
	mark(name, "ownership", "symlinks", "directories", "debconf")
	x.act(name, "postinst", "first configure", ActionDone, strings.Join(made, "; "))
	return nil
}

var confpairRE = regexp.MustCompile(`for confpair in ([^;]*);`)

// nginxModule makes the modules-enabled link of a libnginx-mod-* package
// (its postinst links /usr/share/nginx/modules-available/<from> as
// /etc/nginx/modules-enabled/<to> for each from:to pair).
func (x *extractor) nginxModule(dp *debPackage, mark func(string, ...string)) {
	if !strings.HasPrefix(dp.name(), "libnginx-mod-") || dp.ctl.postinst == nil {
		return
	}
	m := confpairRE.FindSubmatch(dp.ctl.postinst)
	if m == nil {
		return
	}
	var made []string
	for _, pair := range strings.Fields(string(m[1])) {
		from, to, ok := strings.Cut(pair, ":")
		if !ok || strings.ContainsAny(pair, "$`/") {
			continue
		}
		src := "/usr/share/nginx/modules-available/" + from
		if x.byPath[src] == nil {
			continue
		}
		x.addLink("/etc/nginx/modules-enabled/"+to, src, reproOrigin(dp.name()))
		made = append(made, "/etc/nginx/modules-enabled/"+to+" -> "+src)
	}
	if len(made) > 0 {
		mark(dp.name(), "symlinks")
		x.act(dp.name(), "postinst", "nginx module", ActionDone, strings.Join(made, "; "))
	}
}

// ---- tzdata ---------------------------------------------------------------

// tzdata writes /etc/localtime and /etc/timezone for EntriesOptions'
// Timezone, as tzdata's postinst does for the zone debconf gives it.
func (x *extractor) tzdata(dp *debPackage, mark func(string, ...string)) {
	name := dp.name()
	mark(name, "/etc/localtime", "debconf", "symlinks")
	tz := x.opts.Timezone
	if tz == "" {
		x.act(name, "postinst", "/etc/localtime", ActionReported, "no apt.timezone, so no /etc/localtime and /etc/timezone (programs use UTC)")
		return
	}
	zone := "/usr/share/zoneinfo/" + tz
	if o := x.resolve(zone); o == nil || o.e.Type != layer.Regular {
		x.act(name, "postinst", "/etc/localtime", ActionReported, fmt.Sprintf("apt.timezone %s: tzdata has no %s", tz, zone))
		return
	}
	origin := reproOrigin(name)
	x.addLink("/etc/localtime", zone, origin)
	x.addFile("/etc/timezone", []byte(tz+"\n"), 0o644, 0, 0, origin)
	x.act(name, "postinst", "/etc/localtime", ActionDone, "/etc/localtime -> "+zone+", /etc/timezone "+tz+" (apt.timezone)")
}

// ---- ldconfig -------------------------------------------------------------

// defaultLibDirs are the directories Debian's dynamic loader searches
// without an ld.so.cache.
var defaultLibDirs = map[string]bool{
	"/lib": true, "/usr/lib": true, "/lib64": true, "/usr/lib64": true,
	"/lib/x86_64-linux-gnu": true, "/usr/lib/x86_64-linux-gnu": true,
	"/lib/aarch64-linux-gnu": true, "/usr/lib/aarch64-linux-gnu": true,
	"/lib/arm-linux-gnueabihf": true, "/usr/lib/arm-linux-gnueabihf": true,
	"/lib/i386-linux-gnu": true, "/usr/lib/i386-linux-gnu": true,
	"/lib/powerpc64le-linux-gnu": true, "/usr/lib/powerpc64le-linux-gnu": true,
	"/lib/s390x-linux-gnu": true, "/usr/lib/s390x-linux-gnu": true,
	"/lib/riscv64-linux-gnu": true, "/usr/lib/riscv64-linux-gnu": true,
}

// holdsFiles reports whether the layer has a file or link under dir.
func (x *extractor) holdsFiles(dir string) bool {
	if x.opts.UsrMerge {
		dir = usrMerge(dir)
	}
	for p, o := range x.byPath {
		if strings.HasPrefix(p, dir+"/") && o.e.Type != layer.Dir {
			return true
		}
	}
	return false
}

var ldconfigRE = regexp.MustCompile(`\bldconfig\b`)

// ldconfig reports the ldconfig trigger: no ld.so.cache is built. That
// matters only when a package adds a library directory in
// /etc/ld.so.conf.d that the loader does not search by default.
func (x *extractor) ldconfig(pkgs []*debPackage) {
	activators, owner := 0, ""
	for _, dp := range pkgs {
		if bytes.Contains(dp.ctl.triggers, []byte("ldconfig")) || (dp.ctl.postinst != nil && ldconfigRE.Match(dp.ctl.postinst)) {
			activators++
			if owner == "" || dp.name() == "libc-bin" {
				owner = dp.name()
			}
		}
	}
	if activators == 0 {
		return
	}
	type extra struct{ conf, dir, pkg string }
	var extras []extra
	for _, p := range sortedKeys(x.byPath) {
		o := x.byPath[p]
		if !strings.HasPrefix(p, "/etc/ld.so.conf.d/") || !strings.HasSuffix(p, ".conf") || o.e.Type != layer.Regular {
			continue
		}
		data, err := x.read(o)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			d := strings.TrimSpace(line)
			if d == "" || strings.HasPrefix(d, "#") || strings.HasPrefix(d, "include ") {
				continue
			}
			d = path.Clean(d)
			if !defaultLibDirs[d] && !defaultLibDirs[usrMerge(d)] && x.holdsFiles(d) {
				extras = append(extras, extra{conf: p, dir: d, pkg: o.pkg.name()})
			}
		}
	}
	if len(extras) == 0 {
		x.act(owner, "trigger", "ldconfig", ActionIgnored, fmt.Sprintf("no ld.so.cache: the %d packages that activate it put their libraries where the loader searches without one (no directory of /etc/ld.so.conf.d holds any other)", activators))
		return
	}
	for _, e := range extras {
		x.act(e.pkg, "trigger", "ldconfig", ActionReported, fmt.Sprintf("no ld.so.cache, and %s adds %s, which the loader does not search without one: set LD_LIBRARY_PATH in config.env, or link the libraries into /usr/lib", e.conf, e.dir))
	}
}
