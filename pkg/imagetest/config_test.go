package imagetest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprobuild/repro/pkg/fault"
)

func parseErr(t *testing.T, yaml string) string {
	t.Helper()
	_, err := Parse("tests.yaml", []byte(yaml))
	if err == nil {
		t.Fatalf("no error for:\n%s", yaml)
	}
	if fault.KindOf(err) != fault.BadInput {
		t.Errorf("error kind %v, want bad input", fault.KindOf(err))
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %v is not an ErrorList", err)
	}
	return err.Error()
}

func TestParseErrorsAreLocated(t *testing.T) {
	for _, c := range []struct {
		name, yaml, want string
	}{
		{"unknown top-level key", "schemaVersion: \"2.0.0\"\nfileExistanceTests: []\n",
			"tests.yaml:2:1: fileExistanceTests: unknown field; did you mean \"fileExistenceTests\"?"},
		{"unknown key in a test", "schemaVersion: \"2.0.0\"\nfileExistenceTests:\n  - name: a\n    path: /a\n    shouldexist: true\n",
			"tests.yaml:5:5: fileExistenceTests[0].shouldexist: unknown field; did you mean \"shouldExist\"?"},
		{"unknown key far from any", "schemaVersion: \"2.0.0\"\nmetadataTest:\n  frobnicate: 1\n",
			"tests.yaml:3:3: metadataTest.frobnicate: unknown field; the fields of metadataTest are cmd, entrypoint, envVars, exposedPorts, labels, unboundEnvVars"},
		{"unknown key in an env var", "schemaVersion: \"2.0.0\"\nglobalEnvVars:\n  - key: A\n    val: b\n",
			"tests.yaml:4:5: globalEnvVars[0].val: unknown field; did you mean \"value\"?"},
		{"missing schemaVersion", "fileExistenceTests: []\n",
			"tests.yaml:1:1: schemaVersion: missing"},
		{"unknown schemaVersion", "schemaVersion: \"3.0.0\"\n",
			`tests.yaml:1:16: schemaVersion: "3.0.0" is not a schema version of container-structure-test; write "2.0.0" (or "1.0.0")`},
		{"old env", "schemaVersion: \"2.0.0\"\nmetadataTest:\n  env: [{key: A, value: b}]\n",
			"tests.yaml:3:3: metadataTest.env: container-structure-test renamed env to envVars in v1.13.0 and no longer reads env; write envVars"},
		{"old unboundEnv", "schemaVersion: \"2.0.0\"\nmetadataTest:\n  unboundEnv: [{key: A}]\n",
			"tests.yaml:3:3: metadataTest.unboundEnv: container-structure-test renamed unboundEnv to unboundEnvVars in v1.13.0 and no longer reads unboundEnv; write unboundEnvVars"},
		{"metadataTest in 1.0.0", "schemaVersion: \"1.0.0\"\nmetadataTest:\n  envVars: [{key: A, value: b}]\n",
			`tests.yaml:2:1: metadataTest: metadataTest is a key of schemaVersion "2.0.0", and this file says "1.0.0"`},
		{"uid in 1.0.0", "schemaVersion: \"1.0.0\"\nfileExistenceTests:\n  - {name: a, path: /a, uid: 0}\n",
			`tests.yaml:3:25: fileExistenceTests[0].uid: uid is a key of schemaVersion "2.0.0"`},
		{"command as a string in 1.0.0", "schemaVersion: \"1.0.0\"\ncommandTests:\n  - {name: a, command: ls}\n",
			`tests.yaml:3:24: commandTests[0].command: expected a list, found "ls"`},
		{"command as a list in 2.0.0", "schemaVersion: \"2.0.0\"\ncommandTests:\n  - {name: a, command: [ls, -l]}\n",
			`tests.yaml:3:24: commandTests[0].command: expected a string, found a list`},
		{"licenseTests not a list", "schemaVersion: \"2.0.0\"\nlicenseTests:\n  debian: true\n",
			"tests.yaml:3:3: licenseTests: expected a list"},
		{"wrong type", "schemaVersion: \"2.0.0\"\nfileExistenceTests:\n  - name: a\n    path: /a\n    uid: root\n",
			`tests.yaml:5:10: fileExistenceTests[0].uid: "root" is not a whole number`},
		{"not a list", "schemaVersion: \"2.0.0\"\nfileContentTests:\n  name: a\n",
			"tests.yaml:3:3: fileContentTests: expected a list"},
		{"bad regex", "schemaVersion: \"2.0.0\"\nfileContentTests:\n  - name: a\n    path: /a\n    expectedContents: [\"(\"]\n",
			"tests.yaml:5:24: fileContentTests[0].expectedContents[0]: not a valid regular expression"},
		{"bad isExecutableBy", "schemaVersion: \"2.0.0\"\nfileExistenceTests:\n  - name: a\n    path: /a\n    isExecutableBy: everyone\n",
			`tests.yaml:5:21: fileExistenceTests[0].isExecutableBy: "everyone" is not one of any, owner, group, other`},
		{"bad permissions", "schemaVersion: \"2.0.0\"\nfileExistenceTests:\n  - name: a\n    path: /a\n    permissions: \"0755\"\n",
			`tests.yaml:5:18: fileExistenceTests[0].permissions: "0755" is not a mode as Go prints it`},
		{"no name", "schemaVersion: \"2.0.0\"\nfileExistenceTests:\n  - path: /a\n",
			"tests.yaml:3:5: fileExistenceTests[0].name: every test needs a name"},
		{"no command", "schemaVersion: \"2.0.0\"\ncommandTests:\n  - name: a\n",
			"tests.yaml:3:5: commandTests[0].command: missing"},
		{"empty setup", "schemaVersion: \"2.0.0\"\ncommandTests:\n  - name: a\n    command: x\n    setup: [[]]\n",
			"tests.yaml:5:13: commandTests[0].setup[0]: an empty command"},
		{"duplicate key", "schemaVersion: \"2.0.0\"\nschemaVersion: \"2.0.0\"\n",
			"tests.yaml:2:1: schemaVersion: given twice (first on line 1)"},
		{"isRegex outside metadata", "schemaVersion: \"2.0.0\"\nglobalEnvVars:\n  - {key: A, value: b, isRegex: true}\n",
			"globalEnvVars[0].isRegex: isRegex applies only to metadataTest envVars and labels"},
		{"empty file", "", "tests.yaml:1:1: the file is empty"},
		{"not YAML", "schemaVersion: [\n", "tests.yaml:"},
		{"a list at the top", "- a\n", "tests.yaml:1:1: a test file is a mapping"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := parseErr(t, c.yaml); !strings.Contains(got, c.want) {
				t.Errorf("error:\n%s\nwant it to contain:\n%s", got, c.want)
			}
		})
	}
}

func TestParseDefaultsAndQuirks(t *testing.T) {
	f, err := Parse("t.yaml", []byte(`schemaVersion: "2.0.0"
fileExistenceTests:
  - name: defaults
    path: /a
  - name: given
    path: /b
    shouldExist: no        # YAML 1.1 words, as container-structure-test reads them
    uid: 0
    gid: 1000
metadataTest:
  exposedPorts: [8080]     # a number where a string goes, as yaml.v2 allows
  cmd: []
  entrypoint:
`))
	if err != nil {
		t.Fatal(err)
	}
	d := f.FileExistenceTests[0]
	if !d.ShouldExist || d.UID != -1 || d.GID != -1 {
		t.Errorf("defaults: shouldExist %v uid %d gid %d, want true -1 -1", d.ShouldExist, d.UID, d.GID)
	}
	g := f.FileExistenceTests[1]
	if g.ShouldExist || g.UID != 0 || g.GID != 1000 {
		t.Errorf("given: shouldExist %v uid %d gid %d", g.ShouldExist, g.UID, g.GID)
	}
	m := f.MetadataTest
	if len(m.ExposedPorts) != 1 || m.ExposedPorts[0] != "8080" {
		t.Errorf("exposedPorts %q", m.ExposedPorts)
	}
	if m.Cmd == nil || len(*m.Cmd) != 0 {
		t.Errorf("cmd: [] must be an empty list, checked; got %v", m.Cmd)
	}
	if m.Entrypoint != nil {
		t.Errorf("entrypoint with no value must be nil, not checked; got %v", *m.Entrypoint)
	}
}

func TestParseJSON(t *testing.T) {
	f, err := Parse("t.json", []byte(`{"schemaVersion": "2.0.0", "metadataTest": {"envVars": [{"key": "A", "value": "^b", "isRegex": true}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if e := f.MetadataTest.EnvVars[0]; e.Key != "A" || e.Value != "^b" || !e.IsRegex {
		t.Errorf("env %+v", e)
	}
}

func TestLoadFilesReportsEveryFile(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	b := filepath.Join(dir, "b.yaml")
	os.WriteFile(a, []byte("schemaVersion: \"2.0.0\"\nbogus: 1\n"), 0o644)
	os.WriteFile(b, []byte("schemaVersion: \"2.0.0\"\nother: 1\n"), 0o644)
	_, err := LoadFiles([]string{a, b})
	if err == nil || !strings.Contains(err.Error(), a+":2:1: bogus") || !strings.Contains(err.Error(), b+":2:1: other") {
		t.Errorf("error %v, want both files' problems", err)
	}
	if _, err := LoadFiles([]string{filepath.Join(dir, "missing.yaml")}); fault.KindOf(err) != fault.BadInput {
		t.Errorf("a missing file: %v", err)
	}
	if _, err := LoadFiles(nil); fault.KindOf(err) != fault.BadInput {
		t.Errorf("no files: %v", err)
	}
}

func TestValidModeString(t *testing.T) {
	for s, want := range map[string]bool{
		"-rw-r--r--": true, "drwxr-xr-x": true, "Lrwxrwxrwx": true, "urwxr-xr-x": true, "dtrwxrwxrwx": true,
		"Dcrw-rw-rw-": true, "0644": false, "-rw-r--r-": false, "-rwsr-xr-x": false, "xrw-r--r--": false,
	} {
		if got := validModeString(s); got != want {
			t.Errorf("validModeString(%q) = %v, want %v", s, got, want)
		}
	}
}
