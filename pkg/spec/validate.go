package spec

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
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
	v.d.errs = append(v.d.errs, v.s.ErrorAt(field, format, args...))
}

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
	hexRE    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	varKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	portRE   = regexp.MustCompile(`^([0-9]{1,5})(?:/(tcp|udp|sctp))?$`)
	signalRE = regexp.MustCompile(`^(SIG[A-Z0-9+-]+|[0-9]{1,2})$`)
)

func (v *validator) validate() {
	s := v.s
	if s.Version != 1 {
		v.errorf("version", "unsupported spec version %d; this repro reads version: 1", s.Version)
	}
	if s.Name != "" && !nameRE.MatchString(s.Name) {
		v.errorf("name", "%q is not an image name; use lower-case letters, digits and single . _ - between them, like my-app", s.Name)
	}
	switch s.Base {
	case "":
		s.Base = "scratch"
	case "scratch":
	default:
		v.errorf("base", "%q: bases from registries or layouts are not supported by this version of repro; use scratch", s.Base)
	}
	if len(s.Platforms) == 0 {
		s.Platforms = []Platform{{OS: "linux", Arch: "amd64"}}
	}
	seenPlat := map[string]int{}
	for i, p := range s.Platforms {
		if j, dup := seenPlat[p.String()]; dup {
			v.errorf(fmt.Sprintf("platforms[%d]", i), "%s is listed twice (also platforms[%d]); list each platform once", p, j)
		}
		seenPlat[p.String()] = i
	}
	for k := range s.Vars {
		if !varKeyRE.MatchString(k) {
			v.errorf("vars."+k, "%q is not a variable name; use letters, digits and _ and start with a letter, so that {{.Vars.%s}} can name it", k, k)
		}
	}
	for i := range s.Layers {
		v.layer(i)
	}
	v.config()
	for k := range s.Annotations {
		if strings.TrimSpace(k) != k {
			v.errorf("annotations."+k, "annotation keys may not start or end with spaces")
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
	if len(l.Contents) == 0 {
		v.errorf(f, "layer %q has no contents; add contents or remove the layer", l.Name)
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
			v.errorf(cf+".path", "%s is also given by %s.contents[%d]; two entries may not write one path", c.Path, f, k)
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
		return "", fmt.Errorf("path holds a NUL byte")
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%q is not absolute; image paths start with /, like /%s", p, strings.TrimPrefix(p, "./"))
	}
	c := path.Clean(p)
	if c == "/" {
		return "", fmt.Errorf("the root directory / cannot be an entry")
	}
	for _, seg := range strings.Split(c[1:], "/") {
		if strings.HasPrefix(seg, ".wh.") {
			return "", fmt.Errorf("%q: names starting with .wh. are reserved for whiteouts; use type: remove to delete a path", p)
		}
	}
	return c, nil
}

func (v *validator) content(c *Content, f string) {
	if c.Path != "" {
		p, err := CleanPath(c.Path)
		if err != nil {
			v.errorf(f+".path", "%s", err.Error())
		} else {
			c.Path = p
		}
	}
	sources := 0
	for _, set := range []bool{c.Source != "", c.Content != nil, c.URL != ""} {
		if set {
			sources++
		}
	}
	if sources > 1 {
		v.errorf(f, "give only one of source, content and url")
		return
	}
	switch c.Type {
	case "":
		if sources == 0 {
			v.errorf(f, "nothing to write at %s; give source, content or url, or a type (dir, symlink, hardlink, remove)", c.Path)
			return
		}
		c.Type = TypeFile
	case TypeFile:
		if sources == 0 {
			v.errorf(f+".type", "type file needs source, content or url")
			return
		}
	case TypeDir, TypeSymlink, TypeHardlink, TypeRemove:
		if sources > 0 {
			v.errorf(f+".type", "type %s takes no source, content or url", c.Type)
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
			v.errorf(f, "a symlink needs a target")
		}
	case TypeHardlink:
		if c.Target == "" {
			v.errorf(f, "a hard link needs a target: the absolute path of a regular file in the same layer")
		} else if t, err := CleanPath(c.Target); err != nil {
			v.errorf(f+".target", "%s", err.Error())
		} else {
			c.Target = t
			if t == c.Path {
				v.errorf(f+".target", "a hard link cannot point at itself")
			}
		}
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.errorf(f+".url", "%q is not an http or https URL", c.URL)
		}
		if c.SHA256 == "" {
			v.errorf(f, "url needs sha256: the file's SHA-256 in lower-case hex (sha256sum prints it)")
		}
	}
	if c.SHA256 != "" && !hexRE.MatchString(c.SHA256) {
		v.errorf(f+".sha256", "%q is not a SHA-256; give 64 lower-case hex digits", c.SHA256)
	}
	if c.Source != "" {
		if strings.HasPrefix(c.Source, "/") {
			v.errorf(f+".source", "%q is absolute; sources are relative to the directory holding the spec", c.Source)
		}
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
			v.errorf("config.env."+k, "%q is not an environment variable name; use letters, digits and _", k)
		}
	}
	if c.WorkingDir != "" && !strings.HasPrefix(c.WorkingDir, "/") {
		v.errorf("config.workingDir", "%q is not absolute", c.WorkingDir)
	}
	for i, vol := range c.Volumes {
		if !strings.HasPrefix(vol, "/") {
			v.errorf(fmt.Sprintf("config.volumes[%d]", i), "%q is not absolute", vol)
		}
	}
	for i, p := range c.ExposedPorts {
		m := portRE.FindStringSubmatch(p)
		n := 0
		if m != nil {
			n, _ = strconv.Atoi(m[1])
		}
		if m == nil || n < 1 || n > 65535 {
			v.errorf(fmt.Sprintf("config.exposedPorts[%d]", i), "%q is not a port; write port[/tcp|udp|sctp], like \"8080/tcp\"", p)
			continue
		}
		if m[2] == "" {
			c.ExposedPorts[i] = m[1] + "/tcp"
		}
	}
	if c.StopSignal != "" && !signalRE.MatchString(c.StopSignal) {
		v.errorf("config.stopSignal", "%q is not a signal; write a name like SIGTERM or a number", c.StopSignal)
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
			v.d.errs = append(v.d.errs, unwrapSpecError(err))
		}
	}
	for i, l := range s.Layers {
		for j, c := range l.Contents {
			if c.Source != "" {
				for _, p := range s.Platforms {
					check(fmt.Sprintf("layers[%d].contents[%d].source", i, j), c.Source, sample.ForPlatform(p))
					break
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
