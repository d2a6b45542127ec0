package disk

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"path"
	"sort"
	"strings"
)

// The kernel package ships its modules but not their indexes: depmod runs
// in its postinst. These are the indexes depmod would write, made from
// each module's .modinfo section (name=, depends=, alias=, softdep=) and
// the package's modules.order and modules.builtin(.modinfo): the text
// files (modules.dep, modules.alias, modules.softdep, modules.devname) and
// the binary tries that libkmod reads (modules.dep.bin, modules.alias.bin,
// modules.symbols.bin, modules.builtin.bin, modules.builtin.alias.bin) in
// kmod's index format 2.1. Symbols are not indexed (modules.symbols is
// empty): the kernel asks for modules by alias and name, and depends=
// already names every dependency.

// kmodule is one module of the kernel package.
type kmodule struct {
	rel      string // path under /lib/modules/VERSION: kernel/drivers/block/virtio_blk.ko
	name     string // as the kernel names it: underscores
	depends  []string
	aliases  []string
	softdeps []string
	idx      int // position in modules.order, then path order
	sortIdx  int // position in depmod's topological order
}

// modName normalizes a module name as libkmod does: "-" becomes "_".
func modName(s string) string {
	s = path.Base(s)
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	return strings.ReplaceAll(s, "-", "_")
}

// readModinfo reads a module's .modinfo section.
func readModinfo(rel string, data []byte) (*kmodule, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("kernel module %s: %w", rel, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("kernel module %s has no .modinfo section", rel)
	}
	info, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("kernel module %s: %w", rel, err)
	}
	m := &kmodule{rel: rel, name: modName(rel)}
	for _, kv := range bytes.Split(info, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue
		}
		switch k {
		case "name":
			m.name = modName(v)
		case "depends":
			for _, d := range strings.Split(v, ",") {
				if d != "" {
					m.depends = append(m.depends, modName(d))
				}
			}
		case "alias":
			m.aliases = append(m.aliases, v)
		case "softdep":
			m.softdeps = append(m.softdeps, v)
		}
	}
	return m, nil
}

// moduleSet is the modules of one kernel, in depmod's order.
type moduleSet struct {
	mods    []*kmodule
	byName  map[string]*kmodule
	builtin []string // module names, modules.builtin's order
	// builtinAliases are alias → module name, from modules.builtin.modinfo.
	builtinAliases [][2]string
}

// newModuleSet orders mods as modules.order (order, one path a line)
// lists them, the rest after in path order.
func newModuleSet(mods []*kmodule, order, builtin, builtinModinfo []byte) (*moduleSet, error) {
	pos := map[string]int{}
	for i, l := range strings.Split(string(order), "\n") {
		l = strings.TrimSpace(l)
		if l != "" {
			if _, ok := pos[l]; !ok {
				pos[l] = i
			}
		}
	}
	sort.Slice(mods, func(i, j int) bool {
		pi, oki := pos[mods[i].rel]
		pj, okj := pos[mods[j].rel]
		if oki != okj {
			return oki
		}
		if oki && pi != pj {
			return pi < pj
		}
		return mods[i].rel < mods[j].rel
	})
	s := &moduleSet{mods: mods, byName: map[string]*kmodule{}}
	for i, m := range mods {
		m.idx = i
		if _, dup := s.byName[m.name]; !dup {
			s.byName[m.name] = m
		}
	}
	s.topoSort()
	for _, l := range strings.Split(string(builtin), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			s.builtin = append(s.builtin, modName(l))
		}
	}
	for _, kv := range bytes.Split(builtinModinfo, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if mod, key, ok2 := strings.Cut(k, "."); ok && ok2 && key == "alias" {
			s.builtinAliases = append(s.builtinAliases, [2]string{v, modName(mod)})
		}
	}
	return s, nil
}

func (s *moduleSet) isBuiltin(name string) bool {
	for _, b := range s.builtin {
		if b == name {
			return true
		}
	}
	return false
}

// topoSort numbers the modules as depmod orders them: Kahn's algorithm
// over "is used by", with the modules nobody uses as a stack (in module
// order), each module's dependencies visited in the order depends= gives.
// A module comes before every module it needs.
func (s *moduleSet) topoSort() {
	users := make([]int, len(s.mods))
	for _, m := range s.mods {
		for _, d := range s.direct(m) {
			users[d.idx]++
		}
	}
	var stack []int
	for i, n := range users {
		if n == 0 {
			stack = append(stack, i)
		}
	}
	for i := range s.mods {
		s.mods[i].sortIdx = len(s.mods) + i // modules in a cycle go last
	}
	n := 0
	for len(stack) > 0 {
		m := s.mods[stack[len(stack)-1]]
		stack = stack[:len(stack)-1]
		m.sortIdx = n
		n++
		for _, d := range s.direct(m) {
			if users[d.idx]--; users[d.idx] == 0 {
				stack = append(stack, d.idx)
			}
		}
	}
}

// direct is m's dependencies that are modules, in depends= order, once each.
func (s *moduleSet) direct(m *kmodule) []*kmodule {
	var out []*kmodule
	seen := map[string]bool{}
	for _, d := range m.depends {
		if dm, ok := s.byName[d]; ok && !seen[d] {
			seen[d] = true
			out = append(out, dm)
		}
	}
	return out
}

// deps returns every module that m needs, transitively, in depmod's order
// (each before the modules it needs itself: a modules.dep line, loaded
// from its end). A dependency that is neither a module nor built in, or a
// cycle, is an error.
func (s *moduleSet) deps(m *kmodule) ([]*kmodule, error) {
	var out []*kmodule
	state := map[string]int{}
	var visit func(n *kmodule, chain []string) error
	visit = func(n *kmodule, chain []string) error {
		for _, d := range n.depends {
			dm, ok := s.byName[d]
			if !ok {
				if s.isBuiltin(d) {
					continue
				}
				return fmt.Errorf("kernel module %s depends on %s, which the kernel package does not have", n.name, d)
			}
			switch state[d] {
			case 1:
				return fmt.Errorf("kernel modules depend on each other in a circle: %s", strings.Join(append(chain, d), " → "))
			case 2:
				continue
			}
			state[d] = 1
			if err := visit(dm, append(chain, d)); err != nil {
				return err
			}
			state[d] = 2
			out = append(out, dm)
		}
		return nil
	}
	state[m.name] = 1
	if err := visit(m, []string{m.name}); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].sortIdx < out[j].sortIdx })
	return out, nil
}

// loadOrder is the modules to load, dependencies first, for the named
// roots; a root that is built in is left out, and one that the kernel
// lacks altogether is reported in missing.
func (s *moduleSet) loadOrder(roots []string) (order []*kmodule, missing []string, err error) {
	seen := map[string]bool{}
	for _, r := range roots {
		m, ok := s.byName[modName(r)]
		if !ok {
			if !s.isBuiltin(modName(r)) {
				missing = append(missing, r)
			}
			continue
		}
		deps, err := s.deps(m)
		if err != nil {
			return nil, nil, err
		}
		for i := len(deps) - 1; i >= 0; i-- {
			if !seen[deps[i].name] {
				seen[deps[i].name] = true
				order = append(order, deps[i])
			}
		}
		if !seen[m.name] {
			seen[m.name] = true
			order = append(order, m)
		}
	}
	return order, missing, nil
}

// indexFiles are the files depmod would write into /lib/modules/VERSION.
func (s *moduleSet) indexFiles() (map[string][]byte, error) {
	var dep bytes.Buffer
	depIdx, aliasIdx := newKmodIndex(), newKmodIndex()
	for _, m := range s.mods {
		deps, err := s.deps(m)
		if err != nil {
			return nil, err
		}
		line := m.rel + ":"
		for _, d := range deps {
			line += " " + d.rel
		}
		dep.WriteString(line + "\n")
		depIdx.insert(m.name, line, uint32(m.idx))
	}
	var alias bytes.Buffer
	alias.WriteString("# Aliases extracted from modules themselves.\n")
	var softdep bytes.Buffer
	softdep.WriteString("# Soft dependencies extracted from modules themselves.\n")
	var devname bytes.Buffer
	devname.WriteString("# Device nodes to trigger on-demand module loading.\n")
	for _, m := range s.mods {
		var dev, node string
		for _, a := range m.aliases {
			fmt.Fprintf(&alias, "alias %s %s\n", a, m.name)
			key, err := normalizeAlias(a)
			if err != nil {
				continue // depmod warns and leaves it out too
			}
			aliasIdx.insert(key, m.name, uint32(m.idx))
			if v, ok := strings.CutPrefix(a, "devname:"); ok {
				dev = v
			}
			var maj, min int
			if n, _ := fmt.Sscanf(a, "char-major-%d-%d", &maj, &min); n == 2 && node == "" {
				node = fmt.Sprintf("c%d:%d", maj, min)
			} else if n, _ := fmt.Sscanf(a, "block-major-%d-%d", &maj, &min); n == 2 && node == "" {
				node = fmt.Sprintf("b%d:%d", maj, min)
			}
		}
		for _, sd := range m.softdeps {
			fmt.Fprintf(&softdep, "softdep %s %s\n", m.name, sd)
		}
		if dev != "" && node != "" {
			fmt.Fprintf(&devname, "%s %s %s\n", m.name, dev, node)
		}
	}
	builtinIdx := newKmodIndex()
	for _, b := range s.builtin {
		builtinIdx.insert(b, "", 0)
	}
	builtinAlias := newKmodIndex()
	for _, a := range s.builtinAliases {
		if key, err := normalizeAlias(a[0]); err == nil {
			builtinAlias.insert(key, a[1], 0) // depmod gives them all priority 0
		}
	}
	out := map[string][]byte{
		"modules.dep":               dep.Bytes(),
		"modules.dep.bin":           depIdx.bytes(),
		"modules.alias":             alias.Bytes(),
		"modules.alias.bin":         aliasIdx.bytes(),
		"modules.softdep":           softdep.Bytes(),
		"modules.symbols":           []byte("# Aliases for symbols, used by symbol_request().\n"),
		"modules.symbols.bin":       newKmodIndex().bytes(),
		"modules.builtin.bin":       builtinIdx.bytes(),
		"modules.builtin.alias.bin": builtinAlias.bytes(),
		"modules.devname":           devname.Bytes(),
	}
	for k, v := range out {
		if v == nil {
			out[k] = []byte{}
		}
	}
	return out, nil
}

// normalizeAlias makes "-" "_" outside brackets, as libkmod compares.
func normalizeAlias(a string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(a); i++ {
		c := a[i]
		switch c {
		case '-':
			b.WriteByte('_')
		case ']':
			return "", fmt.Errorf("unmatched bracket")
		case '[':
			j := strings.IndexByte(a[i:], ']')
			if j < 0 {
				return "", fmt.Errorf("unmatched bracket")
			}
			b.WriteString(a[i : i+j+1])
			i += j
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// kmodIndex is kmod's on-disk trie (index format 2.1): a root offset after
// the magic and version; each node is an optional NUL-terminated prefix,
// an optional child table (first and last character, then an offset for
// each character between), and optional values (a count, then priority
// and NUL-terminated string each). Offsets carry the node's flags in their
// top bits. Values are kept in priority order, a later insert of the same
// priority before the earlier, as kmod keeps them.
type kmodIndex struct{ root *kmodNode }

type kmodNode struct {
	prefix   string
	children map[byte]*kmodNode
	values   []kmodValue
}

type kmodValue struct {
	priority uint32
	value    string
}

func newKmodIndex() *kmodIndex { return &kmodIndex{root: &kmodNode{}} }

func (x *kmodIndex) insert(key, value string, priority uint32) {
	n := x.root
	i := 0
	for {
		// Split n where its prefix stops matching.
		j := 0
		for ; j < len(n.prefix); j++ {
			if i+j >= len(key) || n.prefix[j] != key[i+j] {
				child := &kmodNode{prefix: n.prefix[j+1:], children: n.children, values: n.values}
				ch := n.prefix[j]
				n.prefix, n.children, n.values = n.prefix[:j], map[byte]*kmodNode{ch: child}, nil
				break
			}
		}
		i += j
		if i == len(key) {
			n.addValue(value, priority)
			return
		}
		ch := key[i]
		c, ok := n.children[ch]
		if !ok {
			if n.children == nil {
				n.children = map[byte]*kmodNode{}
			}
			c = &kmodNode{prefix: key[i+1:]}
			c.addValue(value, priority)
			n.children[ch] = c
			return
		}
		n = c
		i++
	}
}

func (n *kmodNode) addValue(value string, priority uint32) {
	k := len(n.values)
	for k > 0 && n.values[k-1].priority > priority {
		k--
	}
	// kmod inserts before the first value of a priority not lower: a new
	// value of the same priority goes first.
	for k > 0 && n.values[k-1].priority == priority {
		k--
	}
	n.values = append(n.values, kmodValue{})
	copy(n.values[k+1:], n.values[k:])
	n.values[k] = kmodValue{priority, value}
}

const (
	kmodFlagPrefix = 0x80000000
	kmodFlagValues = 0x40000000
	kmodFlagChilds = 0x20000000
)

func (n *kmodNode) span() (first, last byte) {
	first, last = 0xff, 0
	for c := range n.children {
		first, last = min(first, c), max(last, c)
	}
	return first, last
}

// write writes n's subtree, children first (as kmod 30, Debian 12's
// depmod, writes it; newer kmod writes the node first, and both read
// the same), and returns n's offset with its flags.
func (n *kmodNode) write(b *bytes.Buffer) uint32 {
	be := binary.BigEndian
	var childOffs []uint32
	var first, last byte
	if len(n.children) > 0 {
		first, last = n.span()
		for c := int(first); c <= int(last); c++ {
			var off uint32
			if ch, ok := n.children[byte(c)]; ok {
				off = ch.write(b)
			}
			childOffs = append(childOffs, off)
		}
	}
	off := uint32(b.Len())
	if n.prefix != "" {
		b.WriteString(n.prefix)
		b.WriteByte(0)
		off |= kmodFlagPrefix
	}
	if len(n.children) > 0 {
		b.WriteByte(first)
		b.WriteByte(last)
		for _, c := range childOffs {
			b.Write(be.AppendUint32(nil, c))
		}
		off |= kmodFlagChilds
	}
	if len(n.values) > 0 {
		b.Write(be.AppendUint32(nil, uint32(len(n.values))))
		for _, v := range n.values {
			b.Write(be.AppendUint32(nil, v.priority))
			b.WriteString(v.value)
			b.WriteByte(0)
		}
		off |= kmodFlagValues
	}
	return off
}

func (x *kmodIndex) bytes() []byte {
	var b bytes.Buffer
	be := binary.BigEndian
	b.Write(be.AppendUint32(nil, 0xB007F457))
	b.Write(be.AppendUint32(nil, 0x0002<<16|0x0001))
	b.Write(be.AppendUint32(nil, 0)) // the root's offset, once known
	root := x.root.write(&b)
	out := b.Bytes()
	be.PutUint32(out[8:], root)
	return out
}
