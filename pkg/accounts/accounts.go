package accounts

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/reprobuild/repro/pkg/base"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/layer"
	"github.com/reprobuild/repro/pkg/spec"
)

// Files are the files that Entries reads of the base and writes.
var Files = spec.AccountFiles

// accountLine is one line of /etc/passwd or /etc/group (or of their
// shadow files, which carry no id: theirs comes from the other file).
type accountLine struct {
	name string
	id   int
	text string
	spec bool // written from the spec, not kept from the base
}

// accountFile is a parsed account file of the base.
type accountFile struct {
	lines map[string]*accountLine
	// other are lines that name no entry (blank, comment, NIS +/-):
	// kept, after the entries, in the base's order.
	other []string
	// mode, uid and gid of the base's file; ok when the base has it.
	mode     int64
	uid, gid int
	ok       bool
}

// parseAccounts reads an account file of the base; idField is the index
// of the id field (2 for passwd and group), or -1 for shadow files.
func parseAccounts(f *base.File, idField, fields int) (*accountFile, error) {
	af := &accountFile{lines: map[string]*accountLine{}}
	if f == nil || f.Type != tar.TypeReg {
		return af, nil
	}
	af.ok, af.mode, af.uid, af.gid = true, f.Mode, f.UID, f.GID
	for _, text := range strings.Split(string(f.Data), "\n") {
		parts := strings.Split(text, ":")
		if text == "" || strings.HasPrefix(text, "#") || strings.HasPrefix(text, "+") || strings.HasPrefix(text, "-") || len(parts) < 2 {
			if text != "" {
				af.other = append(af.other, text)
			}
			continue
		}
		l := &accountLine{name: parts[0], id: -1, text: text}
		if idField >= 0 {
			if len(parts) != fields {
				return nil, fmt.Errorf("%s: line %q has %d fields, not %d", f.Path, text, len(parts), fields)
			}
			id, err := strconv.Atoi(parts[idField])
			if err != nil || id < 0 {
				return nil, fmt.Errorf("%s: line %q has no numeric id", f.Path, text)
			}
			l.id = id
		}
		if _, dup := af.lines[l.name]; !dup { // the first line of a name is the one that counts
			af.lines[l.name] = l
		}
	}
	return af, nil
}

// byID returns the lines sorted by id, then name.
func byID(lines map[string]*accountLine) []*accountLine {
	out := make([]*accountLine, 0, len(lines))
	for _, l := range lines {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].id != out[j].id {
			return out[i].id < out[j].id
		}
		return out[i].name < out[j].name
	})
	return out
}

// Entries writes the accounts of s over the base's account files (bf, by
// path; nil without a base): /etc/passwd, /etc/group and /etc/shadow, and /etc/gshadow when the
// base has one. A spec entry replaces the base's entry of the same name;
// an id that the base gives another name is an error. root (uid and gid
// 0) is always there. Lines are sorted by id; shadow lines follow their
// passwd (or group) line's order. Passwords of the spec's users are
// locked (*). Errors are bad input, at the field of s they concern.
func Entries(s *spec.Spec, bf map[string]*base.File) ([]layer.Entry, error) {
	a := s.Accounts
	if a == nil {
		return nil, nil
	}
	passwd, err := parseAccounts(bf["/etc/passwd"], 2, 7)
	if err != nil {
		return nil, fault.Bad(fmt.Errorf("the base's account files: %w", err))
	}
	group, err := parseAccounts(bf["/etc/group"], 2, 4)
	if err != nil {
		return nil, fault.Bad(fmt.Errorf("the base's account files: %w", err))
	}
	shadow, _ := parseAccounts(bf["/etc/shadow"], -1, 0)
	gshadow, _ := parseAccounts(bf["/etc/gshadow"], -1, 0)

	if _, ok := group.lines["root"]; !ok {
		group.lines["root"] = &accountLine{name: "root", id: 0, text: "root:x:0:", spec: true}
		gshadow.lines["root"] = &accountLine{name: "root", text: "root:*::", spec: true}
	}
	if _, ok := passwd.lines["root"]; !ok {
		passwd.lines["root"] = &accountLine{name: "root", id: 0, text: "root:x:0:0:root:/root:/bin/sh", spec: true}
		shadow.lines["root"] = &accountLine{name: "root", text: lockedShadow("root"), spec: true}
	}
	for i, g := range a.Groups {
		f := fmt.Sprintf("accounts.groups[%d]", i)
		if h := holder(group.lines, g.Name, *g.GID); h != "" {
			return nil, fault.Bad(s.ErrorAt(f+".gid", "gid %d is %s's in the base's /etc/group; give %s another gid, or name the group %s", *g.GID, h, g.Name, h))
		}
		members := ""
		if old, ok := group.lines[g.Name]; ok {
			members = old.text[strings.LastIndexByte(old.text, ':')+1:]
		}
		group.lines[g.Name] = &accountLine{name: g.Name, id: *g.GID, text: fmt.Sprintf("%s:x:%d:%s", g.Name, *g.GID, members), spec: true}
		if _, ok := gshadow.lines[g.Name]; !ok {
			gshadow.lines[g.Name] = &accountLine{name: g.Name, text: g.Name + ":*::", spec: true}
		}
	}
	gids := map[int]bool{}
	for _, l := range group.lines {
		gids[l.id] = true
	}
	for i, u := range a.Users {
		f := fmt.Sprintf("accounts.users[%d]", i)
		if h := holder(passwd.lines, u.Name, *u.UID); h != "" {
			return nil, fault.Bad(s.ErrorAt(f+".uid", "uid %d is %s's in the base's /etc/passwd; give %s another uid, or name the user %s", *u.UID, h, u.Name, h))
		}
		if !gids[*u.GID] {
			return nil, fault.Bad(s.ErrorAt(f+".gid", "no group has gid %d, in accounts.groups or in the base's /etc/group; add it to accounts.groups", *u.GID))
		}
		gecos := ""
		if old, ok := passwd.lines[u.Name]; ok {
			gecos = strings.Split(old.text, ":")[4]
		}
		passwd.lines[u.Name] = &accountLine{name: u.Name, id: *u.UID, text: fmt.Sprintf("%s:x:%d:%d:%s:%s:%s", u.Name, *u.UID, *u.GID, gecos, u.Home, u.Shell), spec: true}
		shadow.lines[u.Name] = &accountLine{name: u.Name, text: lockedShadow(u.Name), spec: true}
	}

	passwdOrder, groupOrder := byID(passwd.lines), byID(group.lines)
	render := func(order []*accountLine, lines map[string]*accountLine, other []string) []byte {
		var buf bytes.Buffer
		done := map[string]bool{}
		for _, l := range order {
			if sl, ok := lines[l.name]; ok {
				buf.WriteString(sl.text + "\n")
				done[l.name] = true
			}
		}
		var rest []string
		for name := range lines {
			if !done[name] {
				rest = append(rest, name)
			}
		}
		sort.Strings(rest)
		for _, name := range rest {
			buf.WriteString(lines[name].text + "\n")
		}
		for _, text := range other {
			buf.WriteString(text + "\n")
		}
		return buf.Bytes()
	}
	shadowGID := 0
	if g, ok := group.lines["shadow"]; ok {
		shadowGID = g.id
	}
	type file struct {
		path      string
		data      []byte
		af        *accountFile
		mode, gid int
	}
	files := []file{
		{"/etc/passwd", render(passwdOrder, passwd.lines, passwd.other), passwd, 0o644, 0},
		{"/etc/group", render(groupOrder, group.lines, group.other), group, 0o644, 0},
		{"/etc/shadow", render(passwdOrder, shadow.lines, shadow.other), shadow, 0o640, shadowGID},
	}
	if gshadow.ok {
		files = append(files, file{"/etc/gshadow", render(groupOrder, gshadow.lines, gshadow.other), gshadow, 0o640, shadowGID})
	}
	var out []layer.Entry
	for _, f := range files {
		mode, uid, gid := uint32(f.mode), 0, f.gid
		if f.af.ok {
			// The base's file keeps its mode and owner.
			mode, uid, gid = uint32(f.af.mode), f.af.uid, f.af.gid
		}
		data := f.data
		out = append(out, layer.Entry{
			Path: f.path, Type: layer.Regular, Mode: mode, UID: uid, GID: gid, Size: int64(len(data)),
			Open:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
			Origin: "accounts",
		})
	}
	return out, nil
}

// holder returns the name that holds id in lines when it is not name,
// or "".
func holder(lines map[string]*accountLine, name string, id int) string {
	for _, l := range byID(lines) {
		if l.id == id && l.name != name {
			return l.name
		}
	}
	return ""
}

// lockedShadow is the shadow line of a user with a locked password and no
// password ageing (the empty fields): nothing in it depends on a date.
func lockedShadow(name string) string {
	return name + ":*:::::::"
}
