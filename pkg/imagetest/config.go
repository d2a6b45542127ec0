package imagetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/reprobuild/repro/pkg/fault"
)

// SchemaVersion is the one schema version of container-structure-test's
// test files that repro reads.
const SchemaVersion = "2.0.0"

// File is one test file (-c tests.yaml), as container-structure-test's
// schema 2.0.0 defines it.
type File struct {
	// Path is the file's name as given; results and messages use it.
	Path string `yaml:"-"`

	SchemaVersion       string              `yaml:"schemaVersion"`
	GlobalEnvVars       []EnvVar            `yaml:"globalEnvVars"`
	CommandTests        []CommandTest       `yaml:"commandTests"`
	FileExistenceTests  []FileExistenceTest `yaml:"fileExistenceTests"`
	FileContentTests    []FileContentTest   `yaml:"fileContentTests"`
	MetadataTest        MetadataTest        `yaml:"metadataTest"`
	ContainerRunOptions RunOptions          `yaml:"containerRunOptions"`
}

// EnvVar is a key and a value: an environment variable, or a label in a
// metadata test. With IsRegex (metadata tests only) the value is a regular
// expression that the image's value must match somewhere.
type EnvVar struct {
	Key     string `yaml:"key"`
	Value   string `yaml:"value"`
	IsRegex bool   `yaml:"isRegex"`
}

// CommandTest runs a command in a container of the image (through podman)
// and checks its output and exit code.
type CommandTest struct {
	Name           string     `yaml:"name"`
	Setup          [][]string `yaml:"setup"`
	Teardown       [][]string `yaml:"teardown"`
	EnvVars        []EnvVar   `yaml:"envVars"`
	ExitCode       int        `yaml:"exitCode"`
	Command        string     `yaml:"command"`
	Args           []string   `yaml:"args"`
	ExpectedOutput []string   `yaml:"expectedOutput"`
	ExcludedOutput []string   `yaml:"excludedOutput"`
	ExpectedError  []string   `yaml:"expectedError"`
	ExcludedError  []string   `yaml:"excludedError"`
}

// FileExistenceTest checks that a path exists (or not), and its type and
// permissions, owner and group, and executable bits.
type FileExistenceTest struct {
	Name string `yaml:"name"`
	Path string `yaml:"path"`
	// ShouldExist defaults to true.
	ShouldExist bool `yaml:"shouldExist"`
	// Permissions is Go's fs.FileMode.String() of the path, like
	// "-rwxr-xr-x" or "drwxr-x---"; empty is not checked.
	Permissions string `yaml:"permissions"`
	// UID and GID default to -1: not checked.
	UID            int    `yaml:"uid"`
	GID            int    `yaml:"gid"`
	IsExecutableBy string `yaml:"isExecutableBy"` // any, owner, group or other
}

// FileContentTest checks a file's content against regular expressions.
type FileContentTest struct {
	Name             string   `yaml:"name"`
	Path             string   `yaml:"path"`
	ExpectedContents []string `yaml:"expectedContents"`
	ExcludedContents []string `yaml:"excludedContents"`
}

// MetadataTest checks the image config. Empty fields are not checked;
// Entrypoint and Cmd are checked when given, and an empty list means the
// config's must be empty too.
type MetadataTest struct {
	Env              []EnvVar  `yaml:"env"`
	UnboundEnv       []EnvVar  `yaml:"unboundEnv"`
	ExposedPorts     []string  `yaml:"exposedPorts"`
	UnexposedPorts   []string  `yaml:"unexposedPorts"`
	Entrypoint       *[]string `yaml:"entrypoint"`
	Cmd              *[]string `yaml:"cmd"`
	Workdir          string    `yaml:"workdir"`
	Volumes          []string  `yaml:"volumes"`
	UnmountedVolumes []string  `yaml:"unmountedVolumes"`
	Labels           []EnvVar  `yaml:"labels"`
	User             string    `yaml:"user"`
}

func (m *MetadataTest) empty() bool {
	return len(m.Env) == 0 && len(m.UnboundEnv) == 0 && len(m.ExposedPorts) == 0 &&
		len(m.UnexposedPorts) == 0 && m.Entrypoint == nil && m.Cmd == nil && m.Workdir == "" &&
		len(m.Volumes) == 0 && len(m.UnmountedVolumes) == 0 && len(m.Labels) == 0 && m.User == ""
}

// RunOptions shape the containers of command tests.
type RunOptions struct {
	User         string   `yaml:"user"`
	Privileged   bool     `yaml:"privileged"`
	AllocateTty  bool     `yaml:"allocateTty"`
	EnvVars      []string `yaml:"envVars"` // names, passed on from the environment podman runs in
	EnvFile      string   `yaml:"envFile"`
	Capabilities []string `yaml:"capabilities"`
	BindMounts   []string `yaml:"bindMounts"`
}

// Error is one problem with a test file, located in it.
type Error struct {
	File      string
	Line, Col int
	Field     string // like fileExistenceTests[0].uid; empty for the file as a whole
	Msg       string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in the test files, in file order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// LoadFiles reads and checks each test file. Its errors are fault.BadInput;
// problems with the files' content are an ErrorList, compiler style.
func LoadFiles(paths []string) ([]*File, error) {
	if len(paths) == 0 {
		return nil, fault.Bad(errors.New("give at least one test file with -c tests.yaml"))
	}
	var files []*File
	var all ErrorList
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fault.Bad(fmt.Errorf("%s: no such test file", p))
			}
			return nil, fault.Bad(fmt.Errorf("reading test file: %w", err))
		}
		f, err := Parse(p, data)
		var list ErrorList
		switch {
		case errors.As(err, &list):
			all = append(all, list...)
		case err != nil:
			return nil, err
		default:
			files = append(files, f)
		}
	}
	if len(all) > 0 {
		return nil, fault.Bad(all)
	}
	return files, nil
}

// Parse decodes and checks one test file (YAML or JSON). Unknown keys are
// errors; so are a missing or unknown schemaVersion, tests without a name
// or path, regular expressions that do not compile and isExecutableBy
// values other than any, owner, group and other.
func Parse(name string, data []byte) (*File, error) {
	d := &decoder{file: name}
	root := d.parse(data)
	if root == nil {
		return nil, fault.Bad(d.errs)
	}
	f := &File{Path: name}
	d.decode(root, "", reflect.ValueOf(f).Elem())
	if len(d.errs) == 0 {
		d.check(root, f)
	}
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool {
			a, b := d.errs[i], d.errs[j]
			return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
		})
		return nil, fault.Bad(d.errs)
	}
	return f, nil
}

// decoder stores YAML nodes into the structs above, strictly: it records
// an error, with the node's position, for every key the struct does not
// have and every value of the wrong kind.
type decoder struct {
	file string
	errs ErrorList
}

func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) {
	e := &Error{File: d.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

func (d *decoder) parse(data []byte) (root *yaml.Node) {
	defer func() {
		if r := recover(); r != nil {
			root = nil
			d.errs = append(d.errs, &Error{File: d.file, Line: 1, Col: 1, Msg: fmt.Sprintf("invalid YAML: %v", r)})
		}
	}()
	var doc yaml.Node
	err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc)
	if errors.Is(err, io.EOF) {
		d.errs = append(d.errs, &Error{File: d.file, Line: 1, Col: 1, Msg: `the file is empty; start it with schemaVersion: "2.0.0"`})
		return nil
	}
	if err != nil {
		e := &Error{File: d.file, Msg: "invalid YAML: " + err.Error()}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Col = 1
			e.Msg = "invalid YAML: " + strings.TrimSpace(yamlLine.ReplaceAllString(err.Error(), ""))
		}
		d.errs = append(d.errs, e)
		return nil
	}
	root = &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		d.errorf(root, "", `a test file is a mapping, starting with schemaVersion: "2.0.0"`)
		return nil
	}
	return root
}

var yamlLine = regexp.MustCompile(`yaml: line (\d+): `)

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func join(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// defaults are the values a struct has before its keys are stored, where
// they are not Go's zero values.
func defaults(v reflect.Value) {
	if fe, ok := v.Addr().Interface().(*FileExistenceTest); ok {
		fe.ShouldExist, fe.UID, fe.GID = true, -1, -1
	}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if isNull(n) {
		return "nothing"
	}
	return strconv.Quote(n.Value)
}

func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	n = resolve(n)
	t := v.Type()
	if isNull(n) {
		if t.Kind() == reflect.Pointer {
			return // absent: not checked
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		nv := reflect.New(t.Elem())
		d.decode(n, path, nv.Elem())
		v.Set(nv)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected a string, found %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected a whole number, found %s", describe(n))
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, 32)
		if err != nil {
			d.errorf(n, path, "%q is not a whole number", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected true or false, found %s", describe(n))
			return
		}
		// YAML 1.1's words too, as container-structure-test's YAML
		// library reads them.
		switch strings.ToLower(n.Value) {
		case "true", "yes", "on", "y":
			v.SetBool(true)
		case "false", "no", "off", "n":
			v.SetBool(false)
		default:
			d.errorf(n, path, "%q is not a boolean; write true or false", n.Value)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "expected a list, found %s; write one \"- item\" per line, or [a, b]", describe(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, fmt.Sprintf("%s[%d]", path, i), s.Index(i))
		}
		v.Set(s)
	case reflect.Struct:
		d.decodeStruct(n, path, v)
	default:
		panic("imagetest: cannot decode into " + t.String())
	}
}

// unsupported are keys of container-structure-test's schema that repro
// does not run, with what to do instead.
var unsupported = map[string]string{
	"licenseTests": "licenseTests (Debian copyright scanning) are not supported by repro test; remove them, or check /usr/share/doc/*/copyright with fileExistenceTests",
}

func (d *decoder) decodeStruct(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping of keys to values, found %s", describe(n))
		return
	}
	t := v.Type()
	defaults(v)
	fields := map[string]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		fields[tag] = i
		names = append(names, tag)
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys are plain names, found %s", describe(k))
			continue
		}
		kp := join(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			d.errorf(k, kp, "given twice (first on line %d); keep one", line)
			continue
		}
		seen[k.Value] = k.Line
		fi, ok := fields[k.Value]
		if !ok {
			if msg, ok := unsupported[k.Value]; ok && path == "" {
				d.errorf(k, kp, "%s", msg)
				continue
			}
			msg := "unknown key"
			if s := closest(k.Value, names); s != "" {
				msg += fmt.Sprintf("; did you mean %s?", s)
			} else {
				msg += "; known keys here: " + strings.Join(names, ", ")
			}
			d.errorf(k, kp, "%s", msg)
			continue
		}
		d.decode(val, kp, v.Field(fi))
	}
}

// closest returns the name nearest to k, when it is near enough to be a
// typo of it.
func closest(k string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if dist := editDistance(strings.ToLower(k), strings.ToLower(n)); dist < bestD {
			best, bestD = n, dist
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
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// nodeAt finds the value node at a field path (a.b[2].c) under root, for
// the position of an error found after decoding; it returns root when
// the path is not there.
func nodeAt(root *yaml.Node, path string) *yaml.Node {
	n := root
	for _, part := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(part, "[")
		n = resolve(n)
		found := false
		for i := 0; i+1 < len(n.Content) && n.Kind == yaml.MappingNode; i += 2 {
			if n.Content[i].Value == name {
				n, found = n.Content[i+1], true
				break
			}
		}
		if !found {
			return n
		}
		for rest != "" {
			idx, after, _ := strings.Cut(rest, "]")
			i, err := strconv.Atoi(idx)
			n = resolve(n)
			if err != nil || n.Kind != yaml.SequenceNode || i >= len(n.Content) {
				return n
			}
			n = n.Content[i]
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return n
}

// check validates what decoded: what container-structure-test reports as
// a failed test or a log line is bad input here, found before anything
// runs.
func (d *decoder) check(root *yaml.Node, f *File) {
	at := func(path string) *yaml.Node { return nodeAt(root, path) }
	switch f.SchemaVersion {
	case SchemaVersion:
	case "":
		d.errorf(root, "schemaVersion", `missing; repro reads container-structure-test's schema "2.0.0": add schemaVersion: "2.0.0" at the top`)
	default:
		d.errorf(at("schemaVersion"), "schemaVersion", `%q is not supported; repro reads container-structure-test's schema "2.0.0"`, f.SchemaVersion)
	}
	regexes := func(path string, list []string) {
		for i, r := range list {
			if _, err := regexp.Compile(r); err != nil {
				p := fmt.Sprintf("%s[%d]", path, i)
				d.errorf(at(p), p, "not a valid regular expression (Go RE2 syntax): %v", err)
			}
		}
	}
	named := func(path, name string) {
		if strings.TrimSpace(name) == "" {
			d.errorf(at(path), path+".name", "every test needs a name")
		}
	}
	envs := func(path string, list []EnvVar, needValue, regexOK bool) {
		for i, e := range list {
			p := fmt.Sprintf("%s[%d]", path, i)
			if e.Key == "" {
				d.errorf(at(p), p+".key", "missing; give the variable's name")
			}
			if needValue && e.Value == "" {
				d.errorf(at(p), p+".value", "missing; give a value")
			}
			if e.IsRegex && !regexOK {
				d.errorf(at(p+".isRegex"), p+".isRegex", "isRegex applies only to metadataTest env and labels")
			}
			if e.IsRegex {
				if _, err := regexp.Compile(e.Value); err != nil {
					d.errorf(at(p+".value"), p+".value", "not a valid regular expression (Go RE2 syntax): %v", err)
				}
			}
		}
	}
	envs("globalEnvVars", f.GlobalEnvVars, false, false)
	for i, c := range f.CommandTests {
		p := fmt.Sprintf("commandTests[%d]", i)
		named(p, c.Name)
		if c.Command == "" {
			d.errorf(at(p), p+".command", "missing; give the program to run")
		}
		for j, s := range c.Setup {
			if len(s) == 0 {
				q := fmt.Sprintf("%s.setup[%d]", p, j)
				d.errorf(at(q), q, "an empty command; remove it")
			}
		}
		for j, s := range c.Teardown {
			if len(s) == 0 {
				q := fmt.Sprintf("%s.teardown[%d]", p, j)
				d.errorf(at(q), q, "an empty command; remove it")
			}
		}
		envs(p+".envVars", c.EnvVars, true, false)
		regexes(p+".expectedOutput", c.ExpectedOutput)
		regexes(p+".excludedOutput", c.ExcludedOutput)
		regexes(p+".expectedError", c.ExpectedError)
		regexes(p+".excludedError", c.ExcludedError)
	}
	for i, fe := range f.FileExistenceTests {
		p := fmt.Sprintf("fileExistenceTests[%d]", i)
		named(p, fe.Name)
		if fe.Path == "" {
			d.errorf(at(p), p+".path", "missing; give the path to check")
		}
		switch fe.IsExecutableBy {
		case "", "any", "owner", "group", "other":
		default:
			d.errorf(at(p+".isExecutableBy"), p+".isExecutableBy", "%q is not one of any, owner, group, other", fe.IsExecutableBy)
		}
		if fe.Permissions != "" && !validModeString(fe.Permissions) {
			d.errorf(at(p+".permissions"), p+".permissions", "%q is not a mode as Go prints it (fs.FileMode.String()), like -rw-r--r--, drwxr-xr-x or Lrwxrwxrwx", fe.Permissions)
		}
	}
	for i, fc := range f.FileContentTests {
		p := fmt.Sprintf("fileContentTests[%d]", i)
		named(p, fc.Name)
		if fc.Path == "" {
			d.errorf(at(p), p+".path", "missing; give the path of the file")
		}
		regexes(p+".expectedContents", fc.ExpectedContents)
		regexes(p+".excludedContents", fc.ExcludedContents)
	}
	m := f.MetadataTest
	envs("metadataTest.env", m.Env, false, true)
	envs("metadataTest.unboundEnv", m.UnboundEnv, false, false)
	envs("metadataTest.labels", m.Labels, false, true)
	for _, l := range []struct {
		path string
		list []string
	}{{"metadataTest.exposedPorts", m.ExposedPorts}, {"metadataTest.unexposedPorts", m.UnexposedPorts}, {"metadataTest.volumes", m.Volumes}, {"metadataTest.unmountedVolumes", m.UnmountedVolumes}} {
		for i, s := range l.list {
			if s == "" {
				p := fmt.Sprintf("%s[%d]", l.path, i)
				d.errorf(at(p), p, "empty; give a value or remove the entry")
			}
		}
	}
}

// validModeString reports whether s could be what fs.FileMode.String()
// prints: type letters from "dalTLDpSugct?", then nine of rwx-.
func validModeString(s string) bool {
	if len(s) < 10 {
		return false
	}
	typ, perm := s[:len(s)-9], s[len(s)-9:]
	if typ != "-" && strings.Trim(typ, "dalTLDpSugct?") != "" {
		return false
	}
	for i := 0; i < len(perm); i++ {
		if c := perm[i]; c != '-' && c != "rwxrwxrwx"[i] {
			return false
		}
	}
	return true
}
