package yamlpos

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The alias budget (see the package doc).
const (
	// NodeCost is what each node costs beyond its scalar's bytes.
	NodeCost = 64
	// AliasFactor and AliasSlack bound the expanded size of a document:
	// AliasFactor times its written size plus AliasSlack bytes.
	AliasFactor = 4
	AliasSlack  = 8 << 20
)

// Place names a struct type for messages ("config", "an entry of
// layers").
type Place struct {
	Type  reflect.Type
	Where string
}

// Schema is what a caller tells the decoder about its types.
type Schema struct {
	// Places name the struct types, for messages about a key written in
	// the wrong mapping.
	Places []Place
	// RootNotMapping is the message for a document whose top level is not
	// a mapping; %s is given the keys of the root type.
	RootNotMapping string
	// Scalar, when set, decodes a value of type t from scalar node n
	// itself: it returns handled false to leave it to the decoder, or the
	// value, or a message saying what is wrong with n.
	Scalar func(t reflect.Type, n *yaml.Node) (v reflect.Value, msg string, handled bool)
	// Want, when set, names what a value of type t is, for "expected …"
	// messages about a node that is not a scalar ("an octal mode").
	Want func(t reflect.Type) string
	// Defaults, when set, gives a struct its values before its keys are
	// stored, where they are not Go's zero values.
	Defaults func(v reflect.Value)
	// Unknown, when set, explains key k of a mapping of type t at path
	// before the decoder does: a key that moved, or one not supported; ""
	// leaves it to the decoder.
	Unknown func(t reflect.Type, path, k string) string
}

// Decoder stores YAML nodes into Go values strictly, recording where each
// value and key is.
type Decoder struct {
	File   string
	Schema *Schema
	// Pos is where each field's value starts, by field path; Keys where
	// each mapping entry's key starts.
	Pos, Keys map[string]Pos
	// Errs is every problem found, in the order found.
	Errs ErrorList

	budget int64
	limit  int64
	via    *yaml.Node // the alias being expanded, if any
	// example is the example tag of the struct field being decoded, at
	// its path: a bad value of it is answered with its example.
	example example
}

type example struct{ path, value string }

// NewDecoder returns a decoder for the document under root.
func NewDecoder(file string, root *yaml.Node, schema *Schema) *Decoder {
	if schema == nil {
		schema = &Schema{}
	}
	limit := AliasFactor*written(root) + AliasSlack
	return &Decoder{File: file, Schema: schema, Pos: map[string]Pos{}, Keys: map[string]Pos{}, budget: limit, limit: limit}
}

// written is the cost of the tree under n, each node counted once,
// without following aliases.
func written(n *yaml.Node) int64 {
	c := cost(n)
	for _, k := range n.Content {
		c += written(k)
	}
	return c
}

func cost(n *yaml.Node) int64 { return int64(len(n.Value)) + NodeCost }

// Exhausted reports whether the alias budget ran out; what decoded then
// is incomplete.
func (d *Decoder) Exhausted() bool { return d.budget < 0 }

// Errorf records an error at p about field.
func (d *Decoder) Errorf(p Pos, field, format string, args ...any) {
	d.Errs = append(d.Errs, &Error{File: d.File, Pos: p, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// At is the position of field, or of the nearest field holding it that
// has one; the zero Pos if none does.
func (d *Decoder) At(field string) Pos {
	for {
		if p, ok := d.Pos[field]; ok {
			return p
		}
		if field == "" {
			return Pos{}
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			field = ""
		} else {
			field = field[:i]
		}
	}
}

// Decode stores the document under root into v, a pointer to a struct.
func (d *Decoder) Decode(root *yaml.Node, v any) {
	d.decode(root, "", reflect.ValueOf(v).Elem())
}

// spend takes cost from the budget, and reports whether it held; the
// first time it does not, it records an error at n.
func (d *Decoder) spend(c int64, n *yaml.Node, path string) bool {
	if d.budget < 0 {
		return false
	}
	if d.budget -= c; d.budget < 0 {
		d.Errorf(NodePos(n), path, "the aliases (*name) in this file expand to too much (more than %d MiB of values); write the values out", (d.limit+1<<20-1)>>20)
		return false
	}
	return true
}

func (d *Decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind == yaml.AliasNode && d.via == nil {
		// Within an alias, the budget's error names the alias (the
		// outermost), where the expansion is asked for.
		d.via = n
		defer func() { d.via = nil }()
	}
	use := n
	if d.via != nil {
		use = d.via
	}
	n = Resolve(n)
	if !d.spend(cost(n), use, path) {
		return
	}
	d.Pos[path] = NodePos(n)
	if IsNull(n) {
		return // absent: leave the zero value
	}
	if !plainTag(n) {
		d.Errorf(NodePos(n), path, "the YAML tag %s is not supported here; remove it and write the value itself", n.Tag)
		return
	}
	t := v.Type()
	if d.Schema.Scalar != nil && t.Kind() != reflect.Pointer {
		if want := d.want(t); want != "" && n.Kind != yaml.ScalarNode {
			d.scalar(n, path, want)
			return
		}
		if n.Kind == yaml.ScalarNode {
			if val, msg, ok := d.Schema.Scalar(t, n); ok {
				if msg != "" {
					d.Errorf(NodePos(n), path, "%s", msg)
					return
				}
				v.Set(val)
				return
			}
		}
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
			like := "0"
			if d.example.path == path && d.example.value != "" {
				like = LastField(path) + ": " + d.example.value
			}
			d.Errorf(NodePos(n), path, "%q is not a whole number from 0 to 2147483647; write the number itself, like %s", n.Value, like)
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
			d.Errorf(NodePos(n), path, "%q is not a boolean; write true or false", n.Value)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			hint := "write one \"- item\" per line, or [a, b]"
			switch {
			case t.Elem().Kind() == reflect.Struct && d.want(t.Elem()) == "":
				hint = "start each entry with \"- \", one level deeper than " + LastField(path) + ":"
			case n.Kind == yaml.ScalarNode:
				hint = fmt.Sprintf("write a list, even of one item: [%q]", n.Value)
			}
			d.Errorf(NodePos(n), path, "expected a list, found %s; %s", KindName(n), hint)
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			ip := fmt.Sprintf("%s[%d]", path, i)
			if IsNull(c) {
				d.Pos[ip] = NodePos(c)
				d.Errorf(NodePos(c), ip, "empty list item; give it a value or remove the \"-\"")
				continue
			}
			d.decode(c, ip, s.Index(i))
			if d.budget < 0 {
				return
			}
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.Errorf(NodePos(n), path, "expected a mapping of names to values, found %s; write one name: value per line, indented under %s:", KindName(n), LastField(path))
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		seen := map[string]Pos{}
		for _, e := range d.entries(n, path, 0) {
			k, val := Resolve(e[0]), e[1]
			if !d.key(k, path) {
				continue
			}
			kp := JoinField(path, k.Value)
			if first, dup := seen[k.Value]; dup {
				d.Errorf(NodePos(k), kp, "given twice (first on line %d); keep one", first.Line)
				continue
			}
			seen[k.Value] = NodePos(k)
			d.Keys[kp] = NodePos(k)
			ev := reflect.New(t.Elem()).Elem()
			d.decode(val, kp, ev)
			if d.budget < 0 {
				return
			}
			m.SetMapIndex(reflect.ValueOf(k.Value), ev)
		}
		v.Set(m)
	case reflect.Struct:
		d.decodeStruct(n, path, v)
	default:
		panic("yamlpos: cannot decode into " + t.String())
	}
}

func (d *Decoder) want(t reflect.Type) string {
	if d.Schema.Want == nil {
		return ""
	}
	return d.Schema.Want(t)
}

// plainTag reports whether n's tag is one that the decoder reads: the
// tags YAML resolves plain values to, or an explicit one of those.
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

// isMergeKey reports whether k is YAML's merge key: <<: *anchor brings in
// the entries of the anchored mapping (or of each of a list of them) that
// the mapping does not give itself.
func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "!!merge" || k.Tag == "")
}

// entries returns the key and value nodes of mapping n, with merge keys
// expanded: n's own entries first, in order, then the merged ones that n
// does not give itself. It records an error for a merge of something
// other than mappings.
func (d *Decoder) entries(n *yaml.Node, path string, depth int) [][2]*yaml.Node {
	var own, merged [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if !isMergeKey(k) {
			own = append(own, [2]*yaml.Node{k, val})
			continue
		}
		srcs := []*yaml.Node{val}
		if r := Resolve(val); r.Kind == yaml.SequenceNode {
			srcs = r.Content
		}
		for _, src := range srcs {
			src = Resolve(src)
			if !d.spend(int64(len(src.Content)+1)*NodeCost, k, path) {
				return own
			}
			if depth > 16 {
				d.Errorf(NodePos(k), path, "<< merges a mapping into itself; merge another mapping")
				return own
			}
			if src.Kind != yaml.MappingNode {
				d.Errorf(NodePos(k), path, "<< merges mappings, found %s; give it *anchor of a mapping, or a list of them", KindName(src))
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
		have[Resolve(e[0]).Value] = true
	}
	for _, e := range merged {
		if k := Resolve(e[0]).Value; !have[k] {
			have[k] = true
			own = append(own, e)
		}
	}
	return own
}

// key reports whether k can be a key, and records an error if not.
func (d *Decoder) key(k *yaml.Node, path string) bool {
	if k.Kind != yaml.ScalarNode || IsNull(k) || k.Value == "" {
		d.Errorf(NodePos(k), path, "keys must be plain names, found %s", KindName(k))
		return false
	}
	return true
}

// scalar reports whether n is a scalar, and records an error if not.
func (d *Decoder) scalar(n *yaml.Node, path, want string) bool {
	if n.Kind == yaml.ScalarNode {
		return true
	}
	d.Errorf(NodePos(n), path, "expected %s, found %s", want, KindName(n))
	return false
}

func (d *Decoder) placeOf(t reflect.Type) string {
	for _, p := range d.Schema.Places {
		if p.Type == t {
			return p.Where
		}
	}
	return t.Name()
}

// unknownKey explains key k, which is not a field of t.
func (d *Decoder) unknownKey(t reflect.Type, k string) string {
	if s := Suggest(k, FieldNames(t)); s != "" && EditDistance(strings.ToLower(k), strings.ToLower(s)) <= 1 {
		return fmt.Sprintf("unknown field; did you mean %q?", s)
	}
	var where []string
	for _, p := range d.Schema.Places {
		if p.Type != t && slices.Contains(FieldNames(p.Type), k) {
			where = append(where, p.Where)
		}
	}
	if len(where) > 0 {
		return fmt.Sprintf("unknown field here; %s is a field of %s, not of %s: move it there", k, strings.Join(where, " and of "), d.placeOf(t))
	}
	if s := Suggest(k, FieldNames(t)); s != "" {
		return fmt.Sprintf("unknown field; did you mean %q?", s)
	}
	return fmt.Sprintf("unknown field; the fields of %s are %s", d.placeOf(t), strings.Join(FieldNames(t), ", "))
}

func (d *Decoder) decodeStruct(n *yaml.Node, path string, v reflect.Value) {
	t := v.Type()
	if n.Kind != yaml.MappingNode {
		if path == "" && d.Schema.RootNotMapping != "" {
			d.Errorf(NodePos(n), path, d.Schema.RootNotMapping, strings.Join(FieldNames(t), ", "), KindName(n))
			return
		}
		d.Errorf(NodePos(n), path, "expected a mapping with keys (%s), found %s; write one key: value per line, indented under %s", strings.Join(FieldNames(t), ", "), KindName(n), LastField(path))
		return
	}
	if d.Schema.Defaults != nil {
		d.Schema.Defaults(v)
	}
	fields := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		if k := Key(t.Field(i)); k != "" {
			fields[k] = i
		}
	}
	seen := map[string]Pos{}
	null := map[string]bool{}
	for _, e := range d.entries(n, path, 0) {
		k, val := Resolve(e[0]), e[1]
		if !d.key(k, path) {
			continue
		}
		if !d.spend(cost(k), k, path) {
			return
		}
		kp := JoinField(path, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			msg := ""
			if d.Schema.Unknown != nil {
				msg = d.Schema.Unknown(t, path, k.Value)
			}
			if msg == "" {
				msg = d.unknownKey(t, k.Value)
			}
			d.Errorf(NodePos(k), kp, "%s", msg)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.Errorf(NodePos(k), kp, "given twice (first on line %d); keep one", first.Line)
			continue
		}
		seen[k.Value] = NodePos(k)
		d.Keys[kp] = NodePos(k)
		null[k.Value] = IsNull(Resolve(val))
		prev := d.example
		d.example = example{kp, t.Field(idx).Tag.Get("example")}
		d.decode(val, kp, v.Field(idx))
		d.example = prev
		if d.budget < 0 {
			return
		}
	}
	d.Pos[path] = NodePos(n)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Tag.Get("required") != "true" {
			continue
		}
		k := Key(f)
		example := ""
		if e := f.Tag.Get("example"); e != "" {
			example = fmt.Sprintf(", like %s: %s", k, e)
		}
		switch p, ok := seen[k]; {
		case !ok:
			d.Errorf(NodePos(n), JoinField(path, k), "required field is missing; add it%s", example)
		case null[k]:
			d.Errorf(p, JoinField(path, k), "required field has no value; give it one%s", example)
		}
	}
}

// Key is the YAML key of struct field f; "" for a field without one.
func Key(f reflect.StructField) string {
	k := f.Tag.Get("yaml")
	if k == "-" || !f.IsExported() {
		return ""
	}
	if i := strings.IndexByte(k, ','); i >= 0 {
		k = k[:i]
	}
	return k
}

// FieldNames are the YAML keys of struct type t, sorted.
func FieldNames(t reflect.Type) []string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if k := Key(t.Field(i)); k != "" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names
}

// Suggest returns the candidate closest to s, if it is close enough to be
// a likely typo.
func Suggest(s string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if dist := EditDistance(strings.ToLower(s), strings.ToLower(c)); dist < bestDist && dist < len(c) {
			best, bestDist = c, dist
		}
	}
	return best
}

// EditDistance is the Levenshtein distance between a and b.
func EditDistance(a, b string) int {
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
