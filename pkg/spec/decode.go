package spec

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Pos is a line and column in the spec file, both counting from 1.
type Pos struct{ Line, Col int }

// positions maps a field path (layers[0].contents[1].mode) to where its
// value starts in the file.
type positions map[string]Pos

// Error is one problem with a spec, located in the file.
type Error struct {
	File  string
	Pos   Pos
	Field string // field path; empty for the document as a whole
	Msg   string // what is wrong and what to do
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Pos.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Pos.Line, e.Pos.Col)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in a spec, in file order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// maxErrors bounds how many problems one load reports.
const maxErrors = 20

type decoder struct {
	file string
	pos  positions
	errs ErrorList
}

func (d *decoder) errorf(p Pos, field, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Pos: p, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func nodePos(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

func joinField(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

var (
	modeType     = reflect.TypeOf(Mode(0))
	epochType    = reflect.TypeOf(Epoch{})
	platformType = reflect.TypeOf(Platform{})
)

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unexpected node"
}

// decode stores node n into v, whose field path is path.
func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.pos[path] = nodePos(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // absent: leave the zero value
	}
	t := v.Type()
	switch {
	case t == modeType:
		if !d.scalar(n, path, "an octal mode like \"0644\"") {
			return
		}
		m, err := ParseMode(n.Value)
		if err != nil {
			d.errorf(nodePos(n), path, "%s", err.Error())
			return
		}
		v.Set(reflect.ValueOf(m))
		return
	case t == epochType:
		if !d.scalar(n, path, "seconds since 1970 or the word git") {
			return
		}
		e, err := parseEpoch(n.Value)
		if err != nil {
			d.errorf(nodePos(n), path, "%s", err.Error())
			return
		}
		v.Set(reflect.ValueOf(e))
		return
	case t == platformType:
		if !d.scalar(n, path, "a platform like linux/amd64") {
			return
		}
		p, err := ParsePlatform(n.Value)
		if err != nil {
			d.errorf(nodePos(n), path, "%s", err.Error())
			return
		}
		v.Set(reflect.ValueOf(p))
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		nv := reflect.New(t.Elem())
		d.decode(n, path, nv.Elem())
		v.Set(nv)
	case reflect.String:
		if !d.scalar(n, path, "a string") {
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		if !d.scalar(n, path, "a whole number") {
			return
		}
		i, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil || i < 0 || i > 1<<31-1 {
			d.errorf(nodePos(n), path, "%q is not a whole number from 0 to 2147483647", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		if !d.scalar(n, path, "true or false") {
			return
		}
		switch n.Value {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.errorf(nodePos(n), path, "%q is not a boolean; write true or false", n.Value)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(nodePos(n), path, "expected a list, found %s; write [a, b] or one \"- item\" per line", kindName(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, fmt.Sprintf("%s[%d]", path, i), s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(nodePos(n), path, "expected a mapping of names to values, found %s", kindName(n))
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Value == "" {
				d.errorf(nodePos(k), path, "keys must be non-empty strings")
				continue
			}
			kp := joinField(path, k.Value)
			if seen[k.Value] {
				d.errorf(nodePos(k), kp, "key given twice; keep one")
				continue
			}
			seen[k.Value] = true
			ev := reflect.New(t.Elem()).Elem()
			d.decode(val, kp, ev)
			m.SetMapIndex(reflect.ValueOf(k.Value), ev)
		}
		v.Set(m)
	case reflect.Struct:
		d.decodeStruct(n, path, v)
	default:
		panic("spec: cannot decode into " + t.String())
	}
}

// scalar reports whether n is a scalar, and records an error if not.
func (d *decoder) scalar(n *yaml.Node, path, want string) bool {
	if n.Kind == yaml.ScalarNode {
		return true
	}
	d.errorf(nodePos(n), path, "expected %s, found %s", want, kindName(n))
	return false
}

// laterKeys are keys of the contract that this version does not build yet.
var laterKeys = map[string]string{
	"apt":      "Debian package sources are not supported by this version of repro",
	"packages": "Debian packages are not supported by this version of repro",
	"accounts": "accounts are not supported by this version of repro",
	"secrets":  "the secret guard's allow-list is not supported by this version of repro",
}

func (d *decoder) decodeStruct(n *yaml.Node, path string, v reflect.Value) {
	t := v.Type()
	if n.Kind != yaml.MappingNode {
		d.errorf(nodePos(n), path, "expected a mapping with keys (%s), found %s", strings.Join(fieldNames(t), ", "), kindName(n))
		return
	}
	fields := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		if k := yamlKey(t.Field(i)); k != "" {
			fields[k] = i
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := joinField(path, k.Value)
		idx, ok := fields[k.Value]
		switch {
		case !ok && laterKeys[k.Value] != "":
			d.errorf(nodePos(k), kp, "%s; remove it", laterKeys[k.Value])
			continue
		case !ok:
			msg := "unknown field"
			if s := suggest(k.Value, fieldNames(t)); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += fmt.Sprintf("; the fields here are %s", strings.Join(fieldNames(t), ", "))
			}
			d.errorf(nodePos(k), kp, "%s", msg)
			continue
		case seen[k.Value]:
			d.errorf(nodePos(k), kp, "field given twice; keep one")
			continue
		}
		seen[k.Value] = true
		d.decode(val, kp, v.Field(idx))
	}
	d.pos[path] = nodePos(n)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Tag.Get("required") == "true" && !seen[yamlKey(f)] {
			d.errorf(nodePos(n), joinField(path, yamlKey(f)), "required field is missing")
		}
	}
}

func yamlKey(f reflect.StructField) string {
	k := f.Tag.Get("yaml")
	if k == "-" || !f.IsExported() {
		return ""
	}
	if i := strings.IndexByte(k, ','); i >= 0 {
		k = k[:i]
	}
	return k
}

func fieldNames(t reflect.Type) []string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if k := yamlKey(t.Field(i)); k != "" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names
}

// suggest returns the candidate closest to s, if it is close enough to be a
// likely typo.
func suggest(s string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if dist := editDistance(strings.ToLower(s), strings.ToLower(c)); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func sortErrors(l ErrorList) {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Pos.Line != l[j].Pos.Line {
			return l[i].Pos.Line < l[j].Pos.Line
		}
		return l[i].Pos.Col < l[j].Pos.Col
	})
}
