package spec

import (
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

type validator struct {
	s    *Spec
	d    *decoder
	vars map[string]string
}

func (v *validator) errorf(field, format string, args ...any) {
	v.d.Errs = append(v.d.Errs, v.s.ErrorAt(field, format, args...))
}

// keyErrorf records an error about the key of mapping entry field, located
// at the key rather than at its value.
func (v *validator) keyErrorf(field, format string, args ...any) {
	e := v.s.ErrorAt(field, format, args...)
	if p, ok := v.s.keys[field]; ok {
		e.Pos = p
	}
	v.d.Errs = append(v.d.Errs, e)
}

var (
	// nameRE is a path component of an OCI distribution repository name.
	nameRE   = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	hexRE    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	varKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	portRE   = regexp.MustCompile(`^([0-9]{1,5})(?:/(tcp|udp|sctp))?$`)
	signalRE = regexp.MustCompile(`^(?:SIG(?:HUP|INT|QUIT|ILL|TRAP|ABRT|IOT|BUS|FPE|KILL|USR1|SEGV|USR2|PIPE|ALRM|TERM|STKFLT|CHLD|CONT|STOP|TSTP|TTIN|TTOU|URG|XCPU|XFSZ|VTALRM|PROF|WINCH|IO|POLL|PWR|SYS|RTMIN|RTMIN\+(?:[1-9]|1[0-5])|RTMAX|RTMAX-(?:[1-9]|1[0-4]))|[1-9]|[1-5][0-9]|6[0-4])$`)
)

func (v *validator) validate() {
	s := v.s
	if s.Version != 1 {
		v.errorf("version", "this repro reads spec format version 1, not %d; write version: 1 (a newer repro may read this spec)", s.Version)
	}
	if _, given := s.pos["format"]; given && !slices.Contains(Formats, s.Format) {
		v.errorf("format", "this repro writes output formats 2 and 1, not %d; write format: 2 (the newest) or format: 1 (what older releases wrote)", s.Format)
	}
	switch {
	case s.Name == "":
		v.errorf("name", "the image name is empty; give one, like name: my-app")
	case !nameRE.MatchString(s.Name):
		v.errorf("name", "%q is not an image name; use lower-case letters and digits, separated by ., _, __ or dashes, like my-app", s.Name)
	}
	switch s.Base {
	case "":
		s.Base = "scratch"
	case "scratch":
	default:
		// The reference's syntax and pin are checked where it is resolved
		// (packages base and lock), which know the transports.
		if strings.TrimSpace(s.Base) != s.Base || strings.ContainsAny(s.Base, " \t\n") {
			v.errorf("base", "%q: a base reference has no spaces; write host/repo:tag@sha256:…, oci:DIR@sha256:…, oci-archive:FILE or scratch", s.Base)
		}
	}
	v.context()
	if len(s.Platforms) == 0 {
		s.Platforms = []Platform{{OS: "linux", Arch: "amd64"}}
	}
	seenPlat := map[string]int{}
	for i, p := range s.Platforms {
		if j, dup := seenPlat[p.String()]; dup {
			v.errorf(fmt.Sprintf("platforms[%d]", i), "%s is listed twice (also as platforms[%d]); list each platform once", p, j)
		}
		seenPlat[p.String()] = i
	}
	for k := range s.Vars {
		if !varKeyRE.MatchString(k) {
			v.keyErrorf("vars."+k, "%q is not a variable name; use letters, digits and _, not starting with a digit, so that a template can name it as {{.Vars.NAME}}", k)
		}
	}
	for i := range s.Layers {
		v.layer(i)
	}
	v.config()
	v.apt()
	v.accounts()
	v.systemd()
	if s.Secrets != nil {
		for i, a := range s.Secrets.Allow {
			f := fmt.Sprintf("secrets.allow[%d]", i)
			if a.Path != "" && !strings.HasPrefix(a.Path, "/") {
				v.errorf(f+".path", "%q is not absolute; write an image path like /etc/ssl/private/test.key or a glob like /usr/local/go/src/**", a.Path)
			} else if a.Path != "" {
				if err := checkGlob(strings.TrimPrefix(a.Path, "/")); err != nil {
					v.errorf(f+".path", "%s", err.Error())
				}
			}
			if a.SHA256 != "" && !hexRE.MatchString(a.SHA256) {
				v.errorf(f+".sha256", "%q is not a SHA-256; give 64 lower-case hex digits (sha256sum prints them)", a.SHA256)
			}
			if a.Reason == "" && a.Path != "" {
				v.errorf(f+".reason", "say why this secret may ship: every allow entry needs a reason")
			}
		}
	}
	for k := range s.Annotations {
		if strings.TrimSpace(k) != k {
			v.keyErrorf("annotations."+k, "%q: annotation keys may not start or end with spaces; remove them", k)
		}
	}
	v.templates()
}

func (v *validator) layer(i int) {
	l := &v.s.Layers[i]
	f := fmt.Sprintf("layers[%d]", i)
	if l.Name == "" {
		l.Name = fmt.Sprintf("layer-%d", i+1)
	}
	_, hasContents := v.s.pos[f+".contents"]
	_, hasPackages := v.s.pos[f+".packages"]
	switch {
	case hasContents && hasPackages:
		later := f + ".packages"
		if v.s.PosOf(f+".contents").Line > v.s.PosOf(later).Line {
			later = f + ".contents"
		}
		v.keyErrorf(later, "a layer has contents or packages, not both; move one of them to a layer of its own")
		return
	case hasPackages:
		v.packages(i)
		return
	case len(l.Contents) == 0 && hasContents:
		v.errorf(f+".contents", "layer %q has no entries; add one, or remove the layer", l.Name)
	case len(l.Contents) == 0:
		v.errorf(f, "layer %q has no contents; add contents: with at least one entry (or packages: with Debian packages), or remove the layer", l.Name)
	}
	seen := map[string]int{}
	for j := range l.Contents {
		c := &l.Contents[j]
		cf := fmt.Sprintf("%s.contents[%d]", f, j)
		v.content(c, cf)
		if c.Path == "" {
			continue
		}
		if k, dup := seen[c.Path]; dup {
			v.errorf(cf+".path", "%s is also written by %s.contents[%d] (line %d); one layer writes a path once, so remove one of them", c.Path, f, k, v.s.PosOf(fmt.Sprintf("%s.contents[%d].path", f, k)).Line)
		}
		seen[c.Path] = j
	}
}

// CleanPath cleans an image path and checks that it is absolute and names
// something other than the root.
func CleanPath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("empty path; give an absolute path like /etc/motd")
	}
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("%q holds a NUL byte, which no path may; remove it", p)
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%q is not absolute; image paths start with /, like /%s", p, strings.TrimPrefix(p, "./"))
	}
	c := path.Clean(p)
	if c == "/" {
		return "", fmt.Errorf("%q is the root directory, which every image has; name a path under it, like /app", p)
	}
	for _, seg := range strings.Split(c[1:], "/") {
		if strings.HasPrefix(seg, ".wh.") {
			return "", fmt.Errorf("%q: names starting with .wh. are reserved for whiteouts; use type: remove to delete a path", p)
		}
	}
	return c, nil
}

func (v *validator) content(c *Content, f string) {
	if p, err := CleanPath(c.Path); err != nil {
		v.errorf(f+".path", "%s", err.Error())
	} else {
		c.Path = p
	}
	var given []string
	for _, g := range []struct {
		name string
		set  bool
	}{{"source", c.Source != ""}, {"content", c.Content != nil}, {"url", c.URL != ""}, {"go", c.Go != ""}} {
		if g.set {
			given = append(given, g.name)
		}
	}
	sources := len(given)
	if sources > 1 {
		// Point at whichever of them comes later in the file.
		second := given[1]
		for _, g := range given {
			if v.s.PosOf(f+"."+g).Line > v.s.PosOf(f+"."+second).Line {
				second = g
			}
		}
		v.errorf(f+"."+second, "an entry takes one of source, content, url and go, and this one has %s; keep one", strings.Join(given, " and "))
		return
	}
	switch c.Type {
	case "":
		if sources == 0 {
			v.errorf(f, "nothing to write at %s; give source, content, url or go, or a type: dir, symlink, hardlink or remove", c.Path)
			return
		}
		c.Type = TypeFile
	case TypeFile:
		if sources == 0 {
			v.errorf(f+".type", "type file needs source, content, url or go; add one")
			return
		}
	case TypeDir, TypeSymlink, TypeHardlink, TypeRemove:
		if sources > 0 {
			v.errorf(f+".type", "type %s takes no %s; remove it, or remove the type to write a file", c.Type, given[0])
			return
		}
	default:
		v.errorf(f+".type", "unknown type %q; use file, dir, symlink, hardlink or remove", c.Type)
		return
	}
	notWith := func(field string, set bool, why string) {
		if set {
			v.errorf(f+"."+field, "%s; remove it", why)
		}
	}
	isFile := c.Type == TypeFile
	notWith("target", c.Target != "" && c.Type != TypeSymlink && c.Type != TypeHardlink, "target is only for symlink and hardlink")
	notWith("exclude", len(c.Exclude) > 0 && c.Source == "", "exclude is only for a directory source")
	notWith("sha256", c.SHA256 != "" && c.URL == "", "sha256 is only for url")
	notWith("capabilities", len(c.Capabilities) > 0 && !isFile, "capabilities are only for files")
	notWith("ldflags", len(c.LDFlags) > 0 && c.Go == "", "ldflags are only for go")
	notWith("tags", len(c.BuildTags) > 0 && c.Go == "", "tags are only for go")
	if c.Go != "" {
		v.goEntry(c, f)
	}
	if c.Type == TypeRemove {
		notWith("mode", c.Mode != nil, "a remove entry has no mode")
		notWith("uid", c.UID != nil, "a remove entry has no owner")
		notWith("gid", c.GID != nil, "a remove entry has no owner")
	}
	if c.Type == TypeHardlink {
		notWith("mode", c.Mode != nil, "a hard link shares its target's mode")
		notWith("uid", c.UID != nil, "a hard link shares its target's owner")
		notWith("gid", c.GID != nil, "a hard link shares its target's owner")
	}
	if c.Type == TypeSymlink {
		notWith("mode", c.Mode != nil, "symlinks are always 0777")
	}
	switch c.Type {
	case TypeSymlink:
		if c.Target == "" {
			v.errorf(f+".target", "a symlink needs a target; add target: with the path it points to, like target: /usr/bin/app")
		}
	case TypeHardlink:
		if c.Target == "" {
			v.errorf(f+".target", "a hard link needs a target; add target: with the absolute path of a regular file of the same layer")
		} else if t, err := CleanPath(c.Target); err != nil {
			v.errorf(f+".target", "%s", err.Error())
		} else {
			c.Target = t
			if t == c.Path {
				v.errorf(f+".target", "%s is the link's own path; a hard link points at another regular file of the same layer", t)
			}
		}
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.errorf(f+".url", "%q is not an http or https URL; write it like https://example.com/file", c.URL)
		}
		if c.SHA256 == "" {
			v.errorf(f+".url", "a url needs its sha256 beside it; add sha256: with the file's SHA-256 in lower-case hex (sha256sum prints it)")
		}
	}
	if c.SHA256 != "" && !hexRE.MatchString(c.SHA256) {
		v.errorf(f+".sha256", "%q is not a SHA-256; give 64 lower-case hex digits", c.SHA256)
	}
	if strings.HasPrefix(c.Source, "/") {
		v.errorf(f+".source", "%q is absolute; sources are relative to the directory holding the spec (the build context): copy the file there and name it relative to it", c.Source)
	}
	for i, pat := range c.Exclude {
		if err := checkGlob(pat); err != nil {
			v.errorf(fmt.Sprintf("%s.exclude[%d]", f, i), "%s", err.Error())
		}
	}
	for i, name := range c.Capabilities {
		if _, ok := Capability(name); !ok {
			v.errorf(fmt.Sprintf("%s.capabilities[%d]", f, i), "unknown capability %q; use a name from capabilities(7), like cap_net_bind_service", name)
		}
	}
}

// context checks context: and points Dir at it: the spec's directory or
// one of its parents, named by .. segments only, so that the spec stays
// inside its build context (verify copies the context and finds the spec
// in the copy; git reads the spec as a file of the context).
func (v *validator) context() {
	s := v.s
	c := s.Context
	if _, given := s.pos["context"]; !given || c == "." {
		return
	}
	for _, seg := range strings.Split(strings.TrimSuffix(c, "/"), "/") {
		if seg != ".." {
			v.errorf("context", "%q: the context is the spec's directory or one of its parents, written as .. segments (.., ../..); move the spec under the directory it builds from", c)
			return
		}
	}
	s.Dir = filepath.Join(s.SpecDir, filepath.FromSlash(c))
}

// SpecPath is the spec file's path relative to the build context,
// slash-separated: its base name unless context: names a parent.
func (s *Spec) SpecPath() string {
	rel, err := filepath.Rel(s.Dir, s.SpecDir)
	if err != nil || s.SpecDir == "" {
		rel = "."
	}
	return path.Join(filepath.ToSlash(rel), filepath.Base(s.File))
}

var buildTagRE = regexp.MustCompile(`^[A-Za-z0-9_.]+$`)

// goEntry checks a go: entry: a package directory of the context, build
// tags, and linker flags that leave the build ID alone.
func (v *validator) goEntry(c *Content, f string) {
	pkg := c.Go
	switch {
	case strings.Contains(pkg, "{{"):
		v.errorf(f+".go", "%q: go is not a template; name the package directory, like ./cmd/server", pkg)
	case strings.HasPrefix(pkg, "/"):
		v.errorf(f+".go", "%q is absolute; name the main package's directory relative to the spec's directory (the build context), like ./cmd/server", pkg)
	case strings.ContainsRune(pkg, 0) || strings.Contains(pkg, "\\"):
		v.errorf(f+".go", "%q is not a package directory; write it with / between names, like ./cmd/server", pkg)
	case strings.HasSuffix(pkg, "...") || strings.ContainsAny(pkg, "@*?["):
		v.errorf(f+".go", "%q names more than one package or a version; name one main package's directory of the context, like ./cmd/server", pkg)
	default:
		clean := path.Clean(pkg)
		if clean == ".." || strings.HasPrefix(clean, "../") {
			v.errorf(f+".go", "%q leaves the build context (the spec's directory, or the parent context: names); set context: to the directory holding the module (context: ../..), or name a package inside it", pkg)
		}
	}
	for i, tag := range c.BuildTags {
		if !buildTagRE.MatchString(tag) {
			v.errorf(fmt.Sprintf("%s.tags[%d]", f, i), "%q is not a build tag; use letters, digits, _ and ., like netgo", tag)
		}
	}
	for i, fl := range c.LDFlags {
		g := fmt.Sprintf("%s.ldflags[%d]", f, i)
		switch {
		case strings.TrimSpace(fl) == "":
			v.errorf(g, "an empty linker flag; remove it")
		case !strings.HasPrefix(fl, "-"):
			v.errorf(g, "%q is not a linker flag; flags start with -, like \"-X main.version={{.Version}}\" (one flag and its value per item)", fl)
		case strings.HasPrefix(strings.TrimLeft(fl, "-"), "buildid"):
			v.errorf(g, "%q: the build ID is always empty, so that builds are reproducible; remove it", fl)
		case strings.HasPrefix(strings.TrimLeft(fl, "-"), "linkmode") || strings.HasPrefix(strings.TrimLeft(fl, "-"), "extld"):
			v.errorf(g, "%q: go entries link internally with cgo off (no host linker, no host libraries); remove it", fl)
		}
	}
}

func checkGlob(pat string) error {
	if pat == "" {
		return fmt.Errorf("empty pattern")
	}
	if strings.HasPrefix(pat, "/") {
		return fmt.Errorf("%q is absolute; exclude patterns are relative to the copied directory", pat)
	}
	for _, seg := range strings.Split(strings.TrimSuffix(pat, "/"), "/") {
		if seg == "**" {
			continue
		}
		if strings.Contains(seg, "**") {
			return fmt.Errorf("%q: ** must be a whole path segment, like **/*.map", pat)
		}
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Errorf("%q is not a valid glob: %v", pat, err)
		}
	}
	return nil
}

func (v *validator) config() {
	c := &v.s.Config
	for k := range c.Env {
		if !envKeyRE.MatchString(k) {
			v.keyErrorf("config.env."+k, "%q is not an environment variable name; use letters, digits and _, not starting with a digit", k)
		}
	}
	if c.WorkingDir != "" && !strings.HasPrefix(c.WorkingDir, "/") {
		v.errorf("config.workingDir", "%q is not absolute; write the path from /, like /%s", c.WorkingDir, strings.TrimPrefix(c.WorkingDir, "./"))
	}
	for i, vol := range c.Volumes {
		if !strings.HasPrefix(vol, "/") {
			v.errorf(fmt.Sprintf("config.volumes[%d]", i), "%q is not absolute; write the path from /, like /%s", vol, strings.TrimPrefix(vol, "./"))
		}
	}
	for i, p := range c.ExposedPorts {
		m := portRE.FindStringSubmatch(p)
		n := 0
		if m != nil {
			n, _ = strconv.Atoi(m[1])
		}
		if m == nil || n < 1 || n > 65535 {
			v.errorf(fmt.Sprintf("config.exposedPorts[%d]", i), "%q is not a port; write a number from 1 to 65535 and optionally /tcp, /udp or /sctp, like \"8080/tcp\"", p)
			continue
		}
		if m[2] == "" {
			c.ExposedPorts[i] = m[1] + "/tcp"
		}
	}
	if c.StopSignal != "" && !signalRE.MatchString(c.StopSignal) {
		hint := "a name like SIGTERM, or a number from 1 to 64"
		if up := "SIG" + strings.TrimPrefix(strings.ToUpper(c.StopSignal), "SIG"); signalRE.MatchString(up) {
			hint = up
		}
		v.errorf("config.stopSignal", "%q is not a signal; write %s", c.StopSignal, hint)
	}
	if strings.ContainsAny(c.User, " \t\n") {
		v.errorf("config.user", "%q is not a user; write user[:group], like 65532:65532", c.User)
	}
}

// templates parses every template field and test-expands it with sample
// values, so that syntax errors, unknown fields and missing vars are caught
// at load.
func (v *validator) templates() {
	s := v.s
	vars := map[string]string{}
	for k, val := range s.Vars {
		vars[k] = val
	}
	for k, val := range v.vars {
		vars[k] = val
	}
	sample := Values{Name: s.Name, Version: "0.0.0", GitCommit: strings.Repeat("0", 40), GitShortCommit: strings.Repeat("0", 12), Date: DateOf(0), Vars: vars}
	check := func(field, text string, data any) {
		if !strings.Contains(text, "{{") {
			return
		}
		if _, err := s.Expand(field, text, data); err != nil {
			v.d.Errs = append(v.d.Errs, unwrapSpecError(err))
		}
	}
	for i, l := range s.Layers {
		for j, c := range l.Contents {
			if !strings.Contains(c.Source, "{{") {
				continue
			}
			// Sources that leave the context (by .. or a symlink) are
			// the build's to find: it sees the expanded path.
			field := fmt.Sprintf("layers[%d].contents[%d].source", i, j)
			for _, p := range s.Platforms {
				if _, err := s.Expand(field, c.Source, sample.ForPlatform(p)); err != nil {
					v.d.Errs = append(v.d.Errs, unwrapSpecError(err))
					break
				}
			}
		}
	}
	for i, l := range s.Layers {
		for j, c := range l.Contents {
			for k, fl := range c.LDFlags {
				if !strings.Contains(fl, "{{") {
					continue
				}
				field := fmt.Sprintf("layers[%d].contents[%d].ldflags[%d]", i, j, k)
				for _, p := range s.Platforms {
					if _, err := s.Expand(field, fl, sample.ForPlatform(p)); err != nil {
						v.d.Errs = append(v.d.Errs, unwrapSpecError(err))
						break
					}
				}
			}
		}
	}
	for _, k := range sortedKeys(s.Config.Env) {
		check("config.env."+k, s.Config.Env[k], sample)
	}
	for _, k := range sortedKeys(s.Config.Labels) {
		check("config.labels."+k, s.Config.Labels[k], sample)
	}
	for _, k := range sortedKeys(s.Annotations) {
		check("annotations."+k, s.Annotations[k], sample)
	}
	for i, t := range s.Tags {
		check(fmt.Sprintf("tags[%d]", i), t, sample)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// unitNameRE matches the unit names systemd.enable takes: NAME.TYPE, with
// an optional @INSTANCE (empty for a template).
var unitNameRE = regexp.MustCompile(`^[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]*)?\.(service|socket|mount|automount|swap|target|path|timer|slice)$`)

func (v *validator) systemd() {
	sd := v.s.Systemd
	if sd == nil {
		return
	}
	if len(sd.Enable) == 0 {
		v.keyErrorf("systemd", "nothing to enable; list units, like enable: [nginx.service], or remove systemd:")
	}
	seen := map[string]bool{}
	for i, u := range sd.Enable {
		f := fmt.Sprintf("systemd.enable[%d]", i)
		switch {
		case !unitNameRE.MatchString(u):
			v.errorf(f, "%q is not a unit name; write it as systemctl takes it, with its type: nginx.service, ssh.socket, getty@tty1.service", u)
		case seen[u]:
			v.errorf(f, "%s is listed twice; list it once", u)
		}
		seen[u] = true
	}
}
