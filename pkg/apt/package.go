package apt

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"pault.ag/go/debian/dependency"
	"pault.ag/go/debian/version"
)

// Package is one binary package: a stanza of a repository's Packages
// index, of a dpkg status file, or the control file of a .deb.
type Package struct {
	Name         string
	Version      string
	Architecture string
	// MultiArch is the Multi-Arch field: "", "same", "foreign" or "allowed".
	MultiArch string
	Essential bool
	// Important is the Important: yes field (not the priority).
	Important bool
	// Priority is the Priority field (required, important, standard,
	// optional, extra), which apt's provider choice ranks.
	Priority string
	// SourcePackage is the source package's name (the Source field
	// without its version; the binary's own name when absent), and
	// SourceVersion its version when the Source field gives one.
	SourcePackage, SourceVersion string

	// Raw relationship fields, as written in the stanza.
	Depends, PreDepends, Conflicts, Breaks, Replaces, Provides string
	// Recommends, Suggests and Enhances are never installed; they are
	// read only because apt's cache numbers packages in the order they
	// are first named, and its provider choice breaks ties by that number.
	Recommends, Suggests, Enhances string

	// Where the package comes from; empty for installed packages.
	Source    string // the repository URL (Source.URL)
	Suite     string
	Component string
	Filename  string // relative to Source
	Size      int64
	SHA256    string
	// PinPriority is apt's pin priority of the suite the package comes
	// from: 500, or 100 for a NotAutomatic suite with ButAutomaticUpgrades
	// (backports), or 1 for NotAutomatic alone (experimental); 0 counts
	// as 500.
	PinPriority int

	// RequiredBy names the packages of the same resolution that depend on
	// this one; Resolve sets it.
	RequiredBy []string

	ver  version.Version
	lazy *lazyRelations // shared by copies; nil in a Package made by hand
}

// lazyRelations holds what is parsed on first use. It sits behind a
// pointer so that a Package can be copied (Resolve returns copies).
type lazyRelations struct {
	relOnce  sync.Once
	rel      *relations
	relErr   error
	provOnce sync.Once
	prov     []provision
	provErr  error
}

// relations are a package's parsed relationship fields.
type relations struct {
	preDepends, depends, conflicts, breaks, replaces []dependency.Relation
}

// provision is one entry of a Provides field.
type provision struct {
	name    string
	version string // "" when unversioned
	ver     version.Version
	by      *Package
}

// String is name=version, the way apt-get names a package version.
func (p *Package) String() string { return p.Name + "=" + p.Version }

// relations parses the relationship fields, once.
func (p *Package) relations() (*relations, error) {
	if p.lazy == nil {
		return p.parseRelations()
	}
	l := p.lazy
	l.relOnce.Do(func() { l.rel, l.relErr = p.parseRelations() })
	return l.rel, l.relErr
}

func (p *Package) parseRelations() (*relations, error) {
	r := &relations{}
	var err error
	parse := func(field, value string) []dependency.Relation {
		if err != nil || strings.TrimSpace(value) == "" {
			return nil
		}
		d, e := dependency.Parse(strings.ReplaceAll(value, "\n", " "))
		if e != nil {
			err = fmt.Errorf("package %s: parsing %s %q: %w", p, field, value, e)
			return nil
		}
		return d.Relations
	}
	r.preDepends = parse("Pre-Depends", p.PreDepends)
	r.depends = parse("Depends", p.Depends)
	r.conflicts = parse("Conflicts", p.Conflicts)
	r.breaks = parse("Breaks", p.Breaks)
	r.replaces = parse("Replaces", p.Replaces)
	if err == nil {
		_, err = p.provisions()
	}
	return r, err
}

// provisions parses the Provides field, once. It is apart from relations
// because an index needs every candidate's Provides, and only the
// relations of the packages that resolution reaches.
func (p *Package) provisions() ([]provision, error) {
	if p.lazy == nil {
		return parseProvides(p)
	}
	l := p.lazy
	l.provOnce.Do(func() { l.prov, l.provErr = parseProvides(p) })
	return l.prov, l.provErr
}

// parseProvides parses a Provides field by hand: a comma-separated list of
// names, each with an optional "(= version)" and an optional ":arch"
// qualifier (ignored: one architecture is installed).
func parseProvides(p *Package) ([]provision, error) {
	var out []provision
	for _, item := range strings.Split(p.Provides, ",") {
		item = strings.Join(strings.Fields(item), " ")
		if item == "" {
			continue
		}
		pr := provision{by: p}
		name, rest, versioned := strings.Cut(item, "(")
		name = strings.TrimSpace(name)
		if i := strings.IndexByte(name, ':'); i >= 0 {
			name = name[:i]
		}
		if name == "" || strings.ContainsAny(name, " |") {
			return nil, fmt.Errorf("package %s: bad Provides entry %q", p, item)
		}
		pr.name = name
		if versioned {
			body, ok := strings.CutSuffix(strings.TrimSpace(rest), ")")
			op, v, _ := strings.Cut(strings.TrimSpace(body), " ")
			if !ok || op != "=" {
				// "=" may also be written without a space.
				if ok && strings.HasPrefix(body, "=") {
					op, v = "=", body[1:]
				} else {
					return nil, fmt.Errorf("package %s: bad Provides entry %q: only (= version) is allowed", p, item)
				}
			}
			pv, err := version.Parse(strings.TrimSpace(v))
			if err != nil {
				return nil, fmt.Errorf("package %s: bad Provides entry %q: %w", p, item, err)
			}
			pr.version, pr.ver = strings.TrimSpace(v), pv
		}
		out = append(out, pr)
	}
	return out, nil
}

// ParseStanzas reads a Packages index, a dpkg status file or a control
// file: RFC 822-like stanzas separated by blank lines. It streams, and
// keeps only the fields repro uses (a Packages index of Debian's main,
// 63,000 stanzas, holds many more).
func ParseStanzas(r io.Reader) ([]*Package, error) {
	var out []*Package
	err := scanStanzas(r, func(n int, v map[string]string) error {
		p, err := fromParagraph(v)
		if err != nil {
			return fmt.Errorf("stanza %d: %w", n, err)
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// keptFields are the fields scanStanzas returns.
var keptFields = map[string]bool{
	"Package": true, "Version": true, "Architecture": true, "Multi-Arch": true, "Essential": true,
	"Depends": true, "Pre-Depends": true, "Conflicts": true, "Breaks": true, "Replaces": true, "Provides": true,
	"Filename": true, "Size": true, "SHA256": true, "Status": true,
	"Priority": true, "Important": true, "Source": true,
	"Recommends": true, "Suggests": true, "Enhances": true,
}

// scanStanzas calls fn with the kept fields of each stanza of r, numbered
// from 1. Field names are matched as written (Debian writes them in one
// case); continuation lines are joined with newlines; # comment lines
// are skipped. The map is reused between calls.
func scanStanzas(r io.Reader, fn func(n int, fields map[string]string) error) error {
	br := bufio.NewReaderSize(r, 1<<16)
	fields := map[string]string{}
	var cont strings.Builder
	key := "" // the field being read, when kept
	inField := false
	n := 0
	flush := func() {
		if key != "" && cont.Len() > 0 {
			fields[key] += cont.String()
		}
		cont.Reset()
	}
	end := func() error {
		flush()
		key, inField = "", false
		if len(fields) == 0 {
			return nil
		}
		n++
		err := fn(n, fields)
		clear(fields)
		return err
	}
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A very long line: read the rest of it.
			long := append([]byte(nil), b...)
			for err == bufio.ErrBufferFull {
				b, err = br.ReadSlice('\n')
				long = append(long, b...)
			}
			b = long
		}
		if err != nil && err != io.EOF {
			return err
		}
		text := bytes.TrimRight(b, "\r\n")
		switch {
		case len(b) == 0 && err == io.EOF:
			return end()
		case len(bytes.TrimSpace(text)) == 0:
			if e := end(); e != nil {
				return e
			}
		case text[0] == '#':
		case text[0] == ' ' || text[0] == '\t':
			if !inField {
				return fmt.Errorf("line %d: a continuation line outside a field", line)
			}
			if key != "" {
				c := bytes.TrimRight(text[1:], " \t")
				if string(c) == "." {
					c = nil
				}
				cont.WriteByte('\n')
				cont.Write(c)
			}
		default:
			flush()
			i := bytes.IndexByte(text, ':')
			if i <= 0 {
				return fmt.Errorf("line %d: %q is not a field", line, text)
			}
			inField = true
			key = ""
			if name := string(text[:i]); keptFields[name] {
				key = name
				fields[key] = string(bytes.TrimSpace(text[i+1:]))
			}
		}
		if err == io.EOF {
			return end()
		}
	}
}

// statusField is the field of a dpkg status stanza that says whether the
// package is installed.
const statusField = "Status"

func fromParagraph(v map[string]string) (*Package, error) {
	p := &Package{
		Name:         strings.TrimSpace(v["Package"]),
		Version:      strings.TrimSpace(v["Version"]),
		Architecture: strings.TrimSpace(v["Architecture"]),
		MultiArch:    strings.TrimSpace(v["Multi-Arch"]),
		Essential:    strings.EqualFold(strings.TrimSpace(v["Essential"]), "yes"),
		Important:    strings.EqualFold(strings.TrimSpace(v["Important"]), "yes"),
		Priority:     strings.TrimSpace(v["Priority"]),
		Recommends:   v["Recommends"],
		Suggests:     v["Suggests"],
		Enhances:     v["Enhances"],
		Depends:      v["Depends"],
		PreDepends:   v["Pre-Depends"],
		Conflicts:    v["Conflicts"],
		Breaks:       v["Breaks"],
		Replaces:     v["Replaces"],
		Provides:     v["Provides"],
		Filename:     strings.TrimSpace(v["Filename"]),
		SHA256:       strings.TrimSpace(v["SHA256"]),
		lazy:         &lazyRelations{},
	}
	if p.Name == "" {
		return nil, fmt.Errorf("no Package field")
	}
	if p.Version == "" {
		return nil, fmt.Errorf("package %s: no Version field", p.Name)
	}
	ver, err := version.Parse(p.Version)
	if err != nil {
		return nil, fmt.Errorf("package %s: version %q: %w", p.Name, p.Version, err)
	}
	p.ver = ver
	p.SourcePackage, p.SourceVersion = p.Name, ""
	if src := strings.Fields(v["Source"]); len(src) > 0 {
		p.SourcePackage = src[0]
		if len(src) > 1 {
			p.SourceVersion = strings.Trim(strings.Join(src[1:], ""), "()")
		}
	}
	if s := strings.TrimSpace(v["Size"]); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("package %s: bad Size %q", p, s)
		}
		p.Size = n
	}
	return p, nil
}

// compareVersions orders two packages' versions as dpkg does.
func compareVersions(a, b *Package) int { return version.Compare(a.ver, b.ver) }

// satisfies reports whether version v meets the relation's constraint.
func satisfies(v version.Version, rel *dependency.VersionRelation) bool {
	if rel == nil {
		return true
	}
	want, err := version.Parse(rel.Number)
	if err != nil {
		return false
	}
	c := version.Compare(v, want)
	switch rel.Operator {
	case ">=", ">":
		return c >= 0
	case "<=", "<":
		return c <= 0
	case ">>":
		return c > 0
	case "<<":
		return c < 0
	case "=":
		return c == 0
	}
	return false
}

// possibilityString writes a possibility the way Debian does: name[:arch] (op version).
func possibilityString(p dependency.Possibility) string {
	s := p.Name
	if q := archQualifier(p); q != "" {
		s += ":" + q
	}
	if p.Version != nil {
		s += " (" + p.Version.Operator + " " + p.Version.Number + ")"
	}
	return s
}

func relationString(r dependency.Relation) string {
	parts := make([]string, len(r.Possibilities))
	for i, p := range r.Possibilities {
		parts[i] = possibilityString(p)
	}
	return strings.Join(parts, " | ")
}

// archQualifier is a possibility's ":arch" qualifier ("any", "native",
// "amd64"), or "".
func archQualifier(p dependency.Possibility) string {
	if p.Arch == nil {
		return ""
	}
	return p.Arch.String()
}
