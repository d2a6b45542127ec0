package spec

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Pos is a line and column in the spec file, both counting from 1.
type Pos struct{ Line, Col int }

// positions maps a field path (layers[0].contents[1].mode) to a place in
// the file.
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
	pos  positions // where each field's value starts
	keys positions // where each mapping entry's key starts
	errs ErrorList
	// budget bounds the nodes visited, counting each use of an alias anew,
	// so that a small file of nested aliases cannot expand without end.
	budget int
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

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unexpected node"
}

// countNodes counts the nodes of a tree, not following aliases.
func countNodes(n *yaml.Node) int {
	c := 1
	for _, k := range n.Content {
		c += countNodes(k)
	}
	return c
}

// decode stores node n into v, whose field path is path.
func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	n = resolve(n)
	if !d.spend(1, n, path) {
		return
	}
	d.pos[path] = nodePos(n)
	if isNull(n) {
		return // absent: leave the zero value
	}
	if !plainTag(n) {
		d.errorf(nodePos(n), path, "the YAML tag %s is not supported here; remove it and write the value itself", n.Tag)
		return
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
			d.errorf(nodePos(n), path, "%q is not a whole number from 0 to 2147483647; write the number itself, like 0", n.Value)
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
			hint := "write one \"- item\" per line, or [a, b]"
			switch {
			case t.Elem().Kind() == reflect.Struct && t.Elem() != platformType:
				hint = "start each entry with \"- \", one level deeper than " + lastField(path) + ":"
			case n.Kind == yaml.ScalarNode:
				hint = fmt.Sprintf("write a list, even of one item: [%q]", n.Value)
			}
			d.errorf(nodePos(n), path, "expected a list, found %s; %s", kindName(n), hint)
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			ip := fmt.Sprintf("%s[%d]", path, i)
			if isNull(c) {
				d.pos[ip] = nodePos(c)
				d.errorf(nodePos(c), ip, "empty list item; give it a value or remove the \"-\"")
				continue
			}
			d.decode(c, ip, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(nodePos(n), path, "expected a mapping of names to values, found %s; write one name: value per line, indented under %s:", kindName(n), lastField(path))
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		seen := map[string]Pos{}
		for _, e := range d.entries(n, path, 0) {
			k, val := resolve(e[0]), e[1]
			if !d.key(k, path) {
				continue
			}
			kp := joinField(path, k.Value)
			if first, dup := seen[k.Value]; dup {
				d.errorf(nodePos(k), kp, "given twice (first on line %d); keep one", first.Line)
				continue
			}
			seen[k.Value] = nodePos(k)
			d.keys[kp] = nodePos(k)
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

// spend takes cost from the budget, and reports whether it held; the first
// time it does not, it records an error at n.
func (d *decoder) spend(cost int, n *yaml.Node, path string) bool {
	if d.budget < 0 {
		return false
	}
	if d.budget -= cost; d.budget < 0 {
		d.errorf(nodePos(n), path, "the aliases (*name) in this file expand to too much; write the values out")
		return false
	}
	return true
}

// plainTag reports whether n's tag is one that the spec reads: the tags
// YAML resolves plain values to, or an explicit one of those.
func plainTag(n *yaml.Node) bool {
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str", "!!int", "!!float", "!!bool", "!!null", "!!timestamp", "!", "":
			return true
		}
		return false
	case yaml.MappingNode:
		return n.Tag == "!!map" || n.Tag == ""
	case yaml.SequenceNode:
		return n.Tag == "!!seq" || n.Tag == ""
	}
	return true
}

// mergeKey is YAML's merge key: <<: *anchor brings in the entries of the
// anchored mapping (or of each of a list of them) that the mapping does
// not give itself.
func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "!!merge" || k.Tag == "")
}

// entries returns the key and value nodes of mapping n, with merge keys
// expanded: n's own entries first, in order, then the merged ones that n
// does not give itself. It records an error for a merge of something other
// than mappings.
func (d *decoder) entries(n *yaml.Node, path string, depth int) [][2]*yaml.Node {
	var own, merged [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if !isMergeKey(k) {
			own = append(own, [2]*yaml.Node{k, val})
			continue
		}
		srcs := []*yaml.Node{val}
		if r := resolve(val); r.Kind == yaml.SequenceNode {
			srcs = r.Content
		}
		for _, src := range srcs {
			src = resolve(src)
			if !d.spend(len(src.Content)+1, k, path) {
				return own
			}
			if depth > 16 {
				d.errorf(nodePos(k), path, "<< merges a mapping into itself; merge another mapping")
				return own
			}
			if src.Kind != yaml.MappingNode {
				d.errorf(nodePos(k), path, "<< merges mappings, found %s; give it *anchor of a mapping, or a list of them", kindName(src))
				continue
			}
			merged = append(merged, d.entries(src, path, depth+1)...)
		}
	}
	if len(merged) == 0 {
		return own
	}
	have := map[string]bool{}
	for _, e := range own {
		have[resolve(e[0]).Value] = true
	}
	for _, e := range merged {
		if k := resolve(e[0]).Value; !have[k] {
			have[k] = true
			own = append(own, e)
		}
	}
	return own
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// key reports whether k can be a key, and records an error if not.
func (d *decoder) key(k *yaml.Node, path string) bool {
	if k.Kind != yaml.ScalarNode || isNull(k) || k.Value == "" {
		d.errorf(nodePos(k), path, "keys must be plain names, found %s", kindName(k))
		return false
	}
	return true
}

// lastField is the last element of a field path, for hints that quote the
// key as the user wrote it.
func lastField(path string) string {
	if path == "" {
		return "the top level"
	}
	if i := strings.LastIndexAny(path, ".]"); i >= 0 && path[i] == '.' {
		return path[i+1:]
	}
	return path
}

// scalar reports whether n is a scalar, and records an error if not.
func (d *decoder) scalar(n *yaml.Node, path, want string) bool {
	if n.Kind == yaml.ScalarNode {
		return true
	}
	d.errorf(nodePos(n), path, "expected %s, found %s", want, kindName(n))
	return false
}

// laterKeys are keys of the contract that this version does not build yet,
// by the type that holds them, with what to do instead. (None, for now.)
var laterKeys = map[reflect.Type]map[string]string{}

// places names the mappings of a spec, for messages about a key written in
// the wrong one.
var places = []struct {
	t     reflect.Type
	where string
}{
	{reflect.TypeOf(Spec{}), "the top level"},
	{reflect.TypeOf(Config{}), "config"},
	{reflect.TypeOf(Layer{}), "a layer (an entry of layers)"},
	{reflect.TypeOf(Content{}), "an entry of a layer's contents"},
	{reflect.TypeOf(Apt{}), "apt"},
	{reflect.TypeOf(AptSource{}), "an entry of apt.sources"},
	{reflect.TypeOf(Accounts{}), "accounts"},
	{reflect.TypeOf(Group{}), "an entry of accounts.groups"},
	{reflect.TypeOf(User{}), "an entry of accounts.users"},
}

func placeOf(t reflect.Type) string {
	for _, p := range places {
		if p.t == t {
			return p.where
		}
	}
	return t.Name()
}

// unknownKey explains key k, which is not a field of t.
func unknownKey(t reflect.Type, k string) string {
	if s := suggest(k, fieldNames(t)); s != "" && editDistance(strings.ToLower(k), strings.ToLower(s)) <= 1 {
		return fmt.Sprintf("unknown field; did you mean %q?", s)
	}
	var where []string
	for _, p := range places {
		if p.t != t && slices.Contains(fieldNames(p.t), k) {
			where = append(where, p.where)
		}
	}
	if len(where) > 0 {
		return fmt.Sprintf("unknown field here; %s is a field of %s, not of %s: move it there", k, strings.Join(where, " and of "), placeOf(t))
	}
	if s := suggest(k, fieldNames(t)); s != "" {
		return fmt.Sprintf("unknown field; did you mean %q?", s)
	}
	return fmt.Sprintf("unknown field; the fields of %s are %s", placeOf(t), strings.Join(fieldNames(t), ", "))
}

func (d *decoder) decodeStruct(n *yaml.Node, path string, v reflect.Value) {
	t := v.Type()
	if n.Kind != yaml.MappingNode {
		if path == "" {
			d.errorf(nodePos(n), path, "a spec is a mapping of keys (%s), found %s; start it with version: 1", strings.Join(fieldNames(t), ", "), kindName(n))
			return
		}
		d.errorf(nodePos(n), path, "expected a mapping with keys (%s), found %s; write one key: value per line, indented under %s", strings.Join(fieldNames(t), ", "), kindName(n), lastField(path))
		return
	}
	fields := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		if k := yamlKey(t.Field(i)); k != "" {
			fields[k] = i
		}
	}
	seen := map[string]Pos{}
	null := map[string]bool{}
	for _, e := range d.entries(n, path, 0) {
		k, val := resolve(e[0]), e[1]
		if !d.key(k, path) {
			continue
		}
		kp := joinField(path, k.Value)
		idx, ok := fields[k.Value]
		switch {
		case !ok && laterKeys[t][k.Value] != "":
			d.errorf(nodePos(k), kp, "%s", laterKeys[t][k.Value])
			continue
		case !ok:
			d.errorf(nodePos(k), kp, "%s", unknownKey(t, k.Value))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(nodePos(k), kp, "given twice (first on line %d); keep one", first.Line)
			continue
		}
		seen[k.Value] = nodePos(k)
		d.keys[kp] = nodePos(k)
		null[k.Value] = isNull(resolve(val))
		d.decode(val, kp, v.Field(idx))
	}
	d.pos[path] = nodePos(n)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Tag.Get("required") != "true" {
			continue
		}
		k := yamlKey(f)
		example := ""
		if e := f.Tag.Get("example"); e != "" {
			example = fmt.Sprintf(", like %s: %s", k, e)
		}
		switch p, ok := seen[k]; {
		case !ok:
			d.errorf(nodePos(n), joinField(path, k), "required field is missing; add it%s", example)
		case null[k]:
			d.errorf(p, joinField(path, k), "required field has no value; give it one%s", example)
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
		if dist := editDistance(strings.ToLower(s), strings.ToLower(c)); dist < bestDist && dist < len(c) {
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

// related reports whether field paths a and b are the same or one holds the
// other.
func related(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if !strings.HasPrefix(b, a) {
		return false
	}
	return a == "" || len(a) == len(b) || b[len(a)] == '.' || b[len(a)] == '['
}
