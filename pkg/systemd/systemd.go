package systemd

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// Kind is the type of a Tree entry.
type Kind int

const (
	File Kind = iota
	Dir
	Symlink
)

// Tree is the part of an image's filesystem that enabling reads: the unit
// directories and the symlinks that lead to them (/lib → usr/lib).
type Tree struct {
	entries map[string]*entry
}

type entry struct {
	kind   Kind
	target string // a symlink's target, as written
	data   []byte // a file's content
}

// NewTree returns an empty tree.
func NewTree() *Tree { return &Tree{entries: map[string]*entry{}} }

// Wanted says whether an image path can matter to Enable: a top-level
// symlink or directory, or anything under a unit directory (or its
// unmerged twin), so that callers read only these.
func Wanted(p string) bool {
	for _, d := range SearchPath {
		if p == d || strings.HasPrefix(p, d+"/") || strings.HasPrefix(d, p+"/") {
			return true
		}
	}
	return strings.Count(p, "/") == 1
}

// InUnitDir says whether p is a unit directory of SearchPath or under one
// (not merely a parent of one, such as /etc or /usr).
func InUnitDir(p string) bool {
	for _, d := range SearchPath {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// HasNonDir says whether the tree holds something other than a
// directory at p (a symlink such as /lib → usr/lib, or a file).
func (t *Tree) HasNonDir(p string) bool {
	e, ok := t.entries[p]
	return ok && e.kind != Dir
}

// Add puts an entry at p (absolute, clean), replacing what was there.
func (t *Tree) Add(p string, kind Kind, target string, data []byte) {
	if kind != Dir {
		t.Remove(p)
	}
	t.entries[p] = &entry{kind: kind, target: target, data: data}
}

// Remove removes p and everything under it (a whiteout).
func (t *Tree) Remove(p string) {
	delete(t.entries, p)
	prefix := strings.TrimSuffix(p, "/") + "/"
	for k := range t.entries {
		if strings.HasPrefix(k, prefix) {
			delete(t.entries, k)
		}
	}
}

// resolve follows symlinks in every component of p; it returns the real
// path and its entry (nil when nothing is there).
func (t *Tree) resolve(p string) (string, *entry) {
	todo := strings.Split(strings.Trim(p, "/"), "/")
	cur := "/"
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		e := t.entries[next]
		if e != nil && e.kind == Symlink && (len(todo) > 0) {
			if hops++; hops > 64 {
				return next, nil
			}
			if strings.HasPrefix(e.target, "/") {
				cur = "/"
			}
			todo = append(strings.Split(strings.Trim(e.target, "/"), "/"), todo...)
			continue
		}
		cur = next // a directory, or one implied by the paths under it
	}
	return cur, t.entries[cur]
}

// Link is a symlink that enabling makes: at Path, pointing at Target.
type Link struct {
	Path, Target string
}

// SearchPath is the system unit search path, in order.
var SearchPath = []string{
	"/etc/systemd/system.control",
	"/etc/systemd/system",
	"/etc/systemd/system.attached",
	"/usr/local/lib/systemd/system",
	"/lib/systemd/system",
	"/usr/lib/systemd/system",
}

// ConfigDir is where enabling writes its links.
const ConfigDir = "/etc/systemd/system"

// Error is a unit that cannot be enabled, and why.
type Error struct {
	Unit, Msg string
}

func (e *Error) Error() string { return e.Unit + ": " + e.Msg }

// Enable returns the links that enabling units makes in t, and warnings
// (units named by Also= that are missing).
func Enable(t *Tree, units []string) ([]Link, []string, error) {
	links := map[string]string{}
	var warnings []string
	done := map[string]bool{}
	type job struct {
		name string
		aux  string // the unit whose Also= names it
	}
	var queue []job
	for _, u := range units {
		queue = append(queue, job{name: u})
	}
	for len(queue) > 0 {
		j := queue[0]
		queue = queue[1:]
		if done[j.name] {
			continue
		}
		done[j.name] = true
		u, err := t.load(j.name)
		if err != nil {
			if j.aux != "" {
				warnings = append(warnings, fmt.Sprintf("%s (named by Also= in %s): %v", j.name, j.aux, err))
				continue
			}
			return nil, nil, &Error{Unit: j.name, Msg: err.Error()}
		}
		ls, also, err := u.links()
		if err != nil {
			return nil, nil, &Error{Unit: j.name, Msg: err.Error()}
		}
		for _, l := range ls {
			if old, ok := links[l.Path]; ok && old != l.Target {
				return nil, nil, &Error{Unit: j.name, Msg: fmt.Sprintf("%s would point at both %s and %s", l.Path, old, l.Target)}
			}
			links[l.Path] = l.Target
		}
		for _, a := range also {
			queue = append(queue, job{name: a, aux: u.name})
		}
	}
	var out []Link
	for p, target := range links {
		if _, e := t.resolve(p); e != nil {
			if e.kind == Symlink && e.target == target {
				continue // already enabled
			}
			return nil, nil, &Error{Unit: path.Base(p), Msg: fmt.Sprintf("the image already has %s (%s); enabling would replace it", p, describe(e))}
		}
		out = append(out, Link{Path: p, Target: target})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, warnings, nil
}

func describe(e *entry) string {
	switch e.kind {
	case Symlink:
		return "a symlink to " + e.target
	case Dir:
		return "a directory"
	}
	return "a file"
}

// unit is a unit file found for a name.
type unit struct {
	name     string // the name enabled: foo.service, foo@.service, foo@bar.service
	path     string // where the file was found
	install  map[string][]string
	template bool // name is a template (foo@.service)
}

// splitName returns prefix, instance and suffix of a unit name.
func splitName(name string) (prefix, instance, suffix string, ok bool) {
	dot := strings.LastIndexByte(name, '.')
	if dot <= 0 {
		return "", "", "", false
	}
	base, suffix := name[:dot], name[dot+1:]
	switch suffix {
	case "service", "socket", "device", "mount", "automount", "swap", "target", "path", "timer", "slice", "scope":
	default:
		return "", "", "", false
	}
	if strings.ContainsAny(base, "/") || base == "" {
		return "", "", "", false
	}
	prefix, instance, _ = strings.Cut(base, "@")
	if prefix == "" {
		return "", "", "", false
	}
	return prefix, instance, suffix, true
}

// load finds a unit by name in the search path.
func (t *Tree) load(name string) (*unit, error) {
	prefix, instance, suffix, ok := splitName(name)
	if !ok {
		return nil, fmt.Errorf("not a unit name (NAME.service, NAME.socket, NAME.timer, …)")
	}
	names := []string{name}
	if instance != "" {
		names = append(names, prefix+"@."+suffix) // an instance of a template
	}
	for hops := 0; hops < 64; hops++ {
		var found string
		var e *entry
		var as string
		for _, n := range names {
			for _, dir := range SearchPath {
				if _, ee := t.resolve(path.Join(dir, n)); ee != nil {
					found, e, as = path.Join(dir, n), ee, n
					break
				}
			}
			if e != nil {
				break
			}
		}
		if e == nil {
			return nil, fmt.Errorf("no unit file of that name in %s; is the package that ships it in a layer?", strings.Join(SearchPath, ", "))
		}
		// A unit file that is a symlink: masked (to /dev/null), or an alias
		// of the unit it names.
		if link := e; link.kind == Symlink {
			if link.target == "/dev/null" {
				return nil, fmt.Errorf("%s is masked (a symlink to /dev/null)", found)
			}
			target := path.Base(link.target)
			if _, _, _, ok := splitName(target); !ok {
				return nil, fmt.Errorf("%s is a symlink to %s, which is not a unit", found, link.target)
			}
			if as != name { // a template reached through an instance
				tp, _, tsuf, _ := splitName(target)
				target = tp + "@" + instance + "." + tsuf
			}
			name = target
			prefix, instance, suffix, _ = splitName(name)
			names = []string{name}
			if instance != "" {
				names = append(names, prefix+"@."+suffix)
			}
			continue
		}
		if e.kind != File {
			return nil, fmt.Errorf("%s is not a file", found)
		}
		if len(e.data) == 0 {
			return nil, fmt.Errorf("%s is empty: masked", found)
		}
		inst, err := parseInstall(e.data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", found, err)
		}
		return &unit{name: name, path: found, install: inst, template: instance == "" && strings.Contains(name, "@")}, nil
	}
	return nil, fmt.Errorf("more than 64 symlinks between unit names")
}

// parseInstall reads the [Install] section of a unit file: KEY=VALUE
// lines, # and ; comments, a trailing backslash continuing a line, an
// empty value resetting the list, values split on whitespace with quotes.
func parseInstall(data []byte) (map[string][]string, error) {
	out := map[string][]string{}
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	section := ""
	seen := false
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		for strings.HasSuffix(l, "\\") && i+1 < len(lines) {
			i++
			next := strings.TrimSpace(lines[i])
			if strings.HasPrefix(next, "#") || strings.HasPrefix(next, ";") {
				next = ""
			}
			l = strings.TrimSuffix(l, "\\") + " " + next
		}
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";") {
			continue
		}
		if strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]") {
			section = l[1 : len(l)-1]
			if section == "Install" {
				seen = true
			}
			continue
		}
		if section != "Install" {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "WantedBy", "RequiredBy", "Alias", "Also":
			if v == "" {
				out[k] = nil
				continue
			}
			words, err := splitWords(v)
			if err != nil {
				return nil, fmt.Errorf("[Install] %s=: %w", k, err)
			}
			out[k] = append(out[k], words...)
		case "DefaultInstance":
			out[k] = []string{v}
		}
	}
	if !seen {
		return nil, nil
	}
	return out, nil
}

func splitWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	quote := byte(0)
	has := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote, has = c, true
		case c == ' ' || c == '\t':
			if has || cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
				has = false
			}
		default:
			cur.WriteByte(c)
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unbalanced quotes in %q", s)
	}
	if has || cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out, nil
}

// links are the unit's symlinks and the units its Also= names.
func (u *unit) links() ([]Link, []string, error) {
	if u.install == nil {
		return nil, nil, fmt.Errorf("%s has no [Install] section, so enabling it makes nothing (it is static, or started by another unit)", u.path)
	}
	prefix, instance, suffix, _ := splitName(u.name)
	name := u.name
	if u.template {
		def := u.install["DefaultInstance"]
		wants := len(u.install["WantedBy"]) + len(u.install["RequiredBy"])
		if len(def) == 0 && wants > 0 {
			return nil, nil, fmt.Errorf("%s is a template without DefaultInstance=; enable an instance (%s@NAME.%s)", u.name, prefix, suffix)
		}
		if len(def) > 0 {
			instance = def[0]
			name = prefix + "@" + instance + "." + suffix
		}
	}
	expand := func(s string) (string, error) {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if s[i] != '%' {
				b.WriteByte(s[i])
				continue
			}
			if i+1 >= len(s) {
				return "", fmt.Errorf("%q ends in %%", s)
			}
			i++
			switch s[i] {
			case 'n':
				b.WriteString(name)
			case 'N':
				b.WriteString(strings.TrimSuffix(name, "."+suffix))
			case 'p':
				b.WriteString(prefix)
			case 'i':
				b.WriteString(instance)
			case 'j':
				j := prefix
				if k := strings.LastIndexByte(prefix, '-'); k >= 0 {
					j = prefix[k+1:]
				}
				b.WriteString(j)
			case '%':
				b.WriteByte('%')
			default:
				return "", fmt.Errorf("the specifier %%%c in %q is not one repro expands (%%n %%N %%p %%i %%j %%%%)", s[i], s)
			}
		}
		return b.String(), nil
	}
	var out []Link
	for _, kind := range []struct{ key, dir string }{{"WantedBy", ".wants"}, {"RequiredBy", ".requires"}} {
		for _, v := range u.install[kind.key] {
			t, err := expand(v)
			if err != nil {
				return nil, nil, err
			}
			if _, _, _, ok := splitName(t); !ok {
				return nil, nil, fmt.Errorf("[Install] %s=%s is not a unit name", kind.key, v)
			}
			out = append(out, Link{Path: path.Join(ConfigDir, t+kind.dir, name), Target: u.path})
		}
	}
	for _, v := range u.install["Alias"] {
		a, err := expand(v)
		if err != nil {
			return nil, nil, err
		}
		_, ainst, asuf, ok := splitName(a)
		if !ok || asuf != suffix {
			return nil, nil, fmt.Errorf("[Install] Alias=%s: an alias must be a unit name of the same type (.%s)", v, suffix)
		}
		if aTemplate := ainst == "" && strings.Contains(a, "@"); u.template != aTemplate {
			return nil, nil, fmt.Errorf("[Install] Alias=%s: a template's alias is a template, and only a template's", v)
		}
		if a == u.name {
			continue
		}
		out = append(out, Link{Path: path.Join(ConfigDir, a), Target: u.path})
	}
	var also []string
	for _, v := range u.install["Also"] {
		a, err := expand(v)
		if err != nil {
			return nil, nil, err
		}
		also = append(also, a)
	}
	return out, also, nil
}
