package imagetest

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/reprobuild/repro/internal/yamlpos"
	"github.com/reprobuild/repro/pkg/fault"
)

// SchemaVersion is container-structure-test's current schema version of
// test files, the one whose keys File declares.
const SchemaVersion = "2.0.0"

// SchemaVersion1 is its first schema, which it still reads: command tests
// give the command as a list, there is no metadataTest, and
// fileExistenceTests check neither owners nor executable bits. Parse reads
// it into a File as container-structure-test does.
const SchemaVersion1 = "1.0.0"

// MaxTestFileSize is the largest test file that LoadFiles reads: test
// files hold tests, not data, and a bigger one is refused before it is
// read.
const MaxTestFileSize = 16 << 20

// maxErrors bounds how many problems one file reports.
const maxErrors = 20

// File is one test file (-c tests.yaml), as container-structure-test's
// schema 2.0.0 defines it (pkg/types/v2 of its source).
type File struct {
	// Path is the file's name as given; results and messages use it.
	Path string `yaml:"-"`

	SchemaVersion       string              `yaml:"schemaVersion"`
	GlobalEnvVars       []EnvVar            `yaml:"globalEnvVars"`
	CommandTests        []CommandTest       `yaml:"commandTests"`
	FileExistenceTests  []FileExistenceTest `yaml:"fileExistenceTests"`
	FileContentTests    []FileContentTest   `yaml:"fileContentTests"`
	MetadataTest        MetadataTest        `yaml:"metadataTest"`
	LicenseTests        []LicenseTest       `yaml:"licenseTests"`
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
	EnvVars          []EnvVar  `yaml:"envVars"`
	UnboundEnvVars   []EnvVar  `yaml:"unboundEnvVars"`
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
	return len(m.EnvVars) == 0 && len(m.UnboundEnvVars) == 0 && len(m.ExposedPorts) == 0 &&
		len(m.UnexposedPorts) == 0 && m.Entrypoint == nil && m.Cmd == nil && m.Workdir == "" &&
		len(m.Volumes) == 0 && len(m.UnmountedVolumes) == 0 && len(m.Labels) == 0 && m.User == ""
}

// LicenseTest checks Debian copyright files for licences that
// container-structure-test refuses (AGPL, WTFPL): with Debian, every
// /usr/share/doc/PACKAGE/copyright (each package directory must have
// one; libgnutls30 is let pass, as upstream does); and each of Files.
type LicenseTest struct {
	Debian bool     `yaml:"debian"`
	Files  []string `yaml:"files"`
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

// fileV1 is a file of schema 1.0.0 (pkg/types/v1 of
// container-structure-test's source).
type fileV1 struct {
	SchemaVersion      string                `yaml:"schemaVersion"`
	GlobalEnvVars      []EnvVar              `yaml:"globalEnvVars"`
	CommandTests       []commandTestV1       `yaml:"commandTests"`
	FileExistenceTests []fileExistenceTestV1 `yaml:"fileExistenceTests"`
	FileContentTests   []FileContentTest     `yaml:"fileContentTests"`
	LicenseTests       []LicenseTest         `yaml:"licenseTests"`
}

type commandTestV1 struct {
	Name           string     `yaml:"name"`
	Setup          [][]string `yaml:"setup"`
	Teardown       [][]string `yaml:"teardown"`
	EnvVars        []EnvVar   `yaml:"envVars"`
	ExitCode       int        `yaml:"exitCode"`
	Command        []string   `yaml:"command"`
	ExpectedOutput []string   `yaml:"expectedOutput"`
	ExcludedOutput []string   `yaml:"excludedOutput"`
	ExpectedError  []string   `yaml:"expectedError"`
	ExcludedError  []string   `yaml:"excludedError"`
}

type fileExistenceTestV1 struct {
	Name        string `yaml:"name"`
	Path        string `yaml:"path"`
	ShouldExist bool   `yaml:"shouldExist"`
	Permissions string `yaml:"permissions"`
}

// file turns a schema 1.0.0 file into a File: the command list's first
// word is the command and the rest its args; owners are not checked.
func (v *fileV1) file() *File {
	f := &File{SchemaVersion: v.SchemaVersion, GlobalEnvVars: v.GlobalEnvVars, FileContentTests: v.FileContentTests, LicenseTests: v.LicenseTests}
	for _, c := range v.CommandTests {
		t := CommandTest{Name: c.Name, Setup: c.Setup, Teardown: c.Teardown, EnvVars: c.EnvVars, ExitCode: c.ExitCode,
			ExpectedOutput: c.ExpectedOutput, ExcludedOutput: c.ExcludedOutput, ExpectedError: c.ExpectedError, ExcludedError: c.ExcludedError}
		if len(c.Command) > 0 {
			t.Command, t.Args = c.Command[0], c.Command[1:]
		}
		f.CommandTests = append(f.CommandTests, t)
	}
	for _, e := range v.FileExistenceTests {
		f.FileExistenceTests = append(f.FileExistenceTests, FileExistenceTest{Name: e.Name, Path: e.Path, ShouldExist: e.ShouldExist, Permissions: e.Permissions, UID: -1, GID: -1})
	}
	return f
}

// Error is one problem with a test file, located in it.
type Error = yamlpos.Error

// ErrorList is every problem found in the test files, in file order.
type ErrorList = yamlpos.ErrorList

// LoadFiles reads and checks each test file. Its errors are fault.BadInput;
// problems with the files' content are an ErrorList, compiler style. A
// file larger than MaxTestFileSize, or one that is not a regular file, is
// refused before it is read.
func LoadFiles(paths []string) ([]*File, error) {
	if len(paths) == 0 {
		return nil, fault.Bad(errors.New("no test file given"))
	}
	var files []*File
	var all ErrorList
	for _, p := range paths {
		data, err := yamlpos.ReadFile(p, MaxTestFileSize)
		if err != nil {
			switch {
			case errors.Is(err, os.ErrNotExist):
				return nil, fault.Bad(fmt.Errorf("%s: no such test file", p))
			case errors.Is(err, yamlpos.ErrTooLarge), errors.Is(err, yamlpos.ErrNotRegular):
				return nil, fault.Bad(fmt.Errorf("test file %w", err))
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

// Parse decodes and checks one test file (YAML or JSON), of schema 2.0.0
// or 1.0.0. Unknown keys are errors; so are a missing or unknown
// schemaVersion, tests without a name or path, regular expressions that do
// not compile and isExecutableBy values other than any, owner, group and
// other. Aliases expand within the shared decoder's budget.
func Parse(name string, data []byte) (*File, error) {
	root, e := yamlpos.Parse(name, data, yamlpos.ParseOptions{
		Empty:          `the file is empty; start it with schemaVersion: "2.0.0"`,
		SecondDocument: "a test file is one YAML document, and a second one starts here; put it in a file of its own and give both with -c",
	})
	if e != nil {
		return nil, fault.Bad(ErrorList{e})
	}
	if !yamlpos.IsMapping(root) {
		return nil, fault.Bad(ErrorList{{File: name, Pos: yamlpos.NodePos(root), Msg: `a test file is a mapping, starting with schemaVersion: "2.0.0"`}})
	}
	d := yamlpos.NewDecoder(name, root, schema)
	var f *File
	if version(root) == SchemaVersion1 {
		v := &fileV1{}
		d.Decode(root, v)
		f = v.file()
		f.SchemaVersion = SchemaVersion1
	} else {
		f = &File{}
		d.Decode(root, f)
	}
	f.Path = name
	if len(d.Errs) == 0 {
		check(d, f)
	}
	if len(d.Errs) > 0 {
		d.Errs.Sort()
		if len(d.Errs) > maxErrors {
			d.Errs = append(d.Errs[:maxErrors], &Error{File: name, Pos: d.Errs[maxErrors].Pos, Msg: fmt.Sprintf("and %d more problems; fix these first", len(d.Errs)-maxErrors)})
		}
		return nil, fault.Bad(d.Errs)
	}
	return f, nil
}

// version is the value of the top-level schemaVersion key, if it is a
// scalar.
func version(root *yamlpos.Node) string {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if k, v := root.Content[i], yamlpos.Resolve(root.Content[i+1]); k.Value == "schemaVersion" && yamlpos.IsScalar(v) {
			return v.Value
		}
	}
	return ""
}

var (
	fileExistenceType   = reflect.TypeOf(FileExistenceTest{})
	fileExistenceV1Type = reflect.TypeOf(fileExistenceTestV1{})
	metadataType        = reflect.TypeOf(MetadataTest{})
	fileV1Type          = reflect.TypeOf(fileV1{})
	commandV1Type       = reflect.TypeOf(commandTestV1{})
	boolType            = reflect.TypeOf(false)
	intType             = reflect.TypeOf(0)
)

// renamed are keys that container-structure-test renamed, by the type
// that held them: it refuses the old names, and so does repro.
var renamed = map[reflect.Type]map[string]string{
	metadataType: {
		"env":        "envVars",
		"unboundEnv": "unboundEnvVars",
	},
}

// v2Only are keys of schema 2.0.0 that schema 1.0.0 lacks.
var v2Only = map[reflect.Type][]string{
	fileV1Type:          {"metadataTest", "containerRunOptions"},
	fileExistenceV1Type: {"uid", "gid", "isExecutableBy"},
	commandV1Type:       {"args"},
}

var schema = &yamlpos.Schema{
	Places: []yamlpos.Place{
		{Type: reflect.TypeOf(File{}), Where: "the top level"},
		{Type: fileV1Type, Where: "the top level"},
		{Type: metadataType, Where: "metadataTest"},
		{Type: reflect.TypeOf(CommandTest{}), Where: "an entry of commandTests"},
		{Type: commandV1Type, Where: "an entry of commandTests"},
		{Type: fileExistenceType, Where: "an entry of fileExistenceTests"},
		{Type: fileExistenceV1Type, Where: "an entry of fileExistenceTests"},
		{Type: reflect.TypeOf(FileContentTest{}), Where: "an entry of fileContentTests"},
		{Type: reflect.TypeOf(LicenseTest{}), Where: "an entry of licenseTests"},
		{Type: reflect.TypeOf(EnvVar{}), Where: "a key and value (key:, value:)"},
		{Type: reflect.TypeOf(RunOptions{}), Where: "containerRunOptions"},
	},
	RootNotMapping: `a test file is a mapping of keys (%s), found %s; start it with schemaVersion: "2.0.0"`,
	Scalar: func(t reflect.Type, n *yamlpos.Node) (reflect.Value, string, bool) {
		switch t {
		case boolType:
			// YAML 1.1's words too, as container-structure-test's YAML
			// library (yaml.v2) reads them.
			switch strings.ToLower(n.Value) {
			case "true", "yes", "on", "y":
				return reflect.ValueOf(true), "", true
			case "false", "no", "off", "n":
				return reflect.ValueOf(false), "", true
			}
			return reflect.Value{}, fmt.Sprintf("%q is not a boolean; write true or false", n.Value), true
		case intType:
			i, err := strconv.ParseInt(n.Value, 0, 32)
			if err != nil {
				return reflect.Value{}, fmt.Sprintf("%q is not a whole number", n.Value), true
			}
			return reflect.ValueOf(int(i)), "", true
		}
		return reflect.Value{}, "", false
	},
	Defaults: func(v reflect.Value) {
		switch p := v.Addr().Interface().(type) {
		case *FileExistenceTest:
			p.ShouldExist, p.UID, p.GID = true, -1, -1
		case *fileExistenceTestV1:
			p.ShouldExist = true
		}
	},
	Unknown: func(t reflect.Type, _, k string) string {
		if to, ok := renamed[t][k]; ok {
			return fmt.Sprintf("container-structure-test renamed %s to %s in v1.13.0 and no longer reads %s; write %s", k, to, k, to)
		}
		for _, name := range v2Only[t] {
			if name == k {
				return fmt.Sprintf(`%s is a key of schemaVersion "2.0.0", and this file says "1.0.0"; write schemaVersion: "2.0.0" (commandTests then take command: and args:)`, k)
			}
		}
		return ""
	},
}

// check validates what decoded: what container-structure-test reports as
// a failed test or a log line is bad input here, found before anything
// runs.
func check(d *yamlpos.Decoder, f *File) {
	at := d.At
	errorf := d.Errorf
	switch f.SchemaVersion {
	case SchemaVersion, SchemaVersion1:
	case "":
		errorf(at(""), "schemaVersion", `missing; repro reads container-structure-test's schema "2.0.0" (and "1.0.0"): add schemaVersion: "2.0.0" at the top`)
	default:
		errorf(at("schemaVersion"), "schemaVersion", `%q is not a schema version of container-structure-test; write "2.0.0" (or "1.0.0")`, f.SchemaVersion)
	}
	regexes := func(path string, list []string) {
		for i, r := range list {
			if _, err := regexp.Compile(r); err != nil {
				p := fmt.Sprintf("%s[%d]", path, i)
				errorf(at(p), p, "not a valid regular expression (Go RE2 syntax): %v", err)
			}
		}
	}
	named := func(path, name string) {
		if strings.TrimSpace(name) == "" {
			errorf(at(path), path+".name", "every test needs a name")
		}
	}
	envs := func(path string, list []EnvVar, needValue, regexOK bool) {
		for i, e := range list {
			p := fmt.Sprintf("%s[%d]", path, i)
			if e.Key == "" {
				errorf(at(p), p+".key", "missing; give the variable's name")
			}
			if needValue && e.Value == "" {
				errorf(at(p), p+".value", "missing; give a value")
			}
			if e.IsRegex && !regexOK {
				errorf(at(p+".isRegex"), p+".isRegex", "isRegex applies only to metadataTest envVars and labels")
			}
			if e.IsRegex {
				if _, err := regexp.Compile(e.Value); err != nil {
					errorf(at(p+".value"), p+".value", "not a valid regular expression (Go RE2 syntax): %v", err)
				}
			}
		}
	}
	envs("globalEnvVars", f.GlobalEnvVars, false, false)
	for i, c := range f.CommandTests {
		p := fmt.Sprintf("commandTests[%d]", i)
		named(p, c.Name)
		if c.Command == "" {
			errorf(at(p), p+".command", "missing; give the program to run")
		}
		for j, s := range c.Setup {
			if len(s) == 0 {
				q := fmt.Sprintf("%s.setup[%d]", p, j)
				errorf(at(q), q, "an empty command; remove it")
			}
		}
		for j, s := range c.Teardown {
			if len(s) == 0 {
				q := fmt.Sprintf("%s.teardown[%d]", p, j)
				errorf(at(q), q, "an empty command; remove it")
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
			errorf(at(p), p+".path", "missing; give the path to check")
		}
		switch fe.IsExecutableBy {
		case "", "any", "owner", "group", "other":
		default:
			errorf(at(p+".isExecutableBy"), p+".isExecutableBy", "%q is not one of any, owner, group, other", fe.IsExecutableBy)
		}
		if fe.Permissions != "" && !validModeString(fe.Permissions) {
			errorf(at(p+".permissions"), p+".permissions", "%q is not a mode as Go prints it (fs.FileMode.String()), like -rw-r--r--, drwxr-xr-x or Lrwxrwxrwx", fe.Permissions)
		}
	}
	for i, fc := range f.FileContentTests {
		p := fmt.Sprintf("fileContentTests[%d]", i)
		named(p, fc.Name)
		if fc.Path == "" {
			errorf(at(p), p+".path", "missing; give the path of the file")
		}
		regexes(p+".expectedContents", fc.ExpectedContents)
		regexes(p+".excludedContents", fc.ExcludedContents)
	}
	m := f.MetadataTest
	envs("metadataTest.envVars", m.EnvVars, false, true)
	envs("metadataTest.unboundEnvVars", m.UnboundEnvVars, false, false)
	envs("metadataTest.labels", m.Labels, false, true)
	for _, l := range []struct {
		path string
		list []string
	}{{"metadataTest.exposedPorts", m.ExposedPorts}, {"metadataTest.unexposedPorts", m.UnexposedPorts}, {"metadataTest.volumes", m.Volumes}, {"metadataTest.unmountedVolumes", m.UnmountedVolumes}} {
		for i, s := range l.list {
			if s == "" {
				p := fmt.Sprintf("%s[%d]", l.path, i)
				errorf(at(p), p, "empty; give a value or remove the entry")
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
