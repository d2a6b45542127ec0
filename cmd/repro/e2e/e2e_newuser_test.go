package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// What a new user trips on, found by using repro as one would: a fresh
// clone, the README's commands, broken inputs, and every message read.

// jsonError is the error that --json prints on stdout.
type jsonError struct {
	Error    string `json:"error"`
	ExitCode int    `json:"exitCode"`
	Kind     string `json:"kind"`
}

// TestE2ENewUserJSONErrors: with --json, every failure is a JSON error on
// stdout, with the exit code it exits with: usage mistakes found before
// the command runs (an unknown command or flag, a bad --timeout or
// --max-layer-size) and a test file's errors, which printed nothing on
// stdout, as well as the errors that already did.
func TestE2ENewUserJSONErrors(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, tinySpec)
	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: x\n    path: /x\n    shouldExits: true\n"), 0o644)
	repro(t, dir, "build", "-q", "-o", "oci:out:v1")
	for _, tc := range []struct {
		args []string
		want string // in the JSON error
	}{
		{[]string{"--json", "buidl"}, `unknown command "buidl"; did you mean repro build?`},
		{[]string{"build", "--json", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"--json", "build", "--timeout", "0s"}, "--timeout 0s: give a positive duration"},
		{[]string{"inspect", "oci:out:v1", "--json", "--max-layer-size", "12XB"}, `--max-layer-size "12XB"`},
		{[]string{"--json", "help", "nope"}, "repro help nope: unknown command"},
		{[]string{"test", "--json", "oci:out:v1", "-c", "bad.yaml"}, `bad.yaml:5:5: fileExistenceTests[0].shouldExits: unknown field; did you mean "shouldExist"?`},
		{[]string{"build", "--json", "--test", "bad.yaml", "-o", "oci:never:v1"}, `bad.yaml:5:5: fileExistenceTests[0].shouldExits`},
		{[]string{"build", "--json", "--compression", "lz4"}, `unknown compression "lz4"`},
	} {
		r := invocation{dir: dir}.run(t, tc.args...)
		var e jsonError
		if err := json.Unmarshal([]byte(r.stdout), &e); err != nil {
			t.Errorf("repro %q: stdout is not a JSON error (%v): %q\nstderr: %s", tc.args, err, r.stdout, r.stderr)
			continue
		}
		if r.code != 2 || e.ExitCode != 2 || e.Kind != "bad input" || !strings.Contains(e.Error, tc.want) {
			t.Errorf("repro %q: exit %d, JSON %+v; want exit 2 and an error holding %q", tc.args, r.code, e, tc.want)
		}
		if strings.Contains(e.Error, "\n") {
			t.Errorf("repro %q: the JSON error spans lines: %q", tc.args, e.Error)
		}
		if !strings.Contains(r.stderr, tc.want) {
			t.Errorf("repro %q: stderr lacks %q:\n%s", tc.args, tc.want, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "never")); err == nil {
		t.Error("build --test with a bad test file wrote its output")
	}
	// Without --json, stdout stays empty.
	if r := (invocation{dir: dir}).run(t, "buidl"); r.code != 2 || r.stdout != "" {
		t.Errorf("repro buidl: exit %d, stdout %q", r.code, r.stdout)
	}
}
