package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const tinySpec = `version: 1
name: tiny
layers:
  - name: files
    contents:
      - path: /etc/motd
        content: "hi\n"
annotations:
  org.opencontainers.image.revision: "{{.GitCommit}}"
  short: "{{.GitShortCommit}}"
  version: "{{.Version}}"
`

func writeSpec(t *testing.T, dir, yaml string) string {
	t.Helper()
	p := filepath.Join(dir, "repro.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExitCodesAndMessages(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, tinySpec)
	os.Mkdir(filepath.Join(dir, "adir"), 0o755)
	os.WriteFile(filepath.Join(dir, "afile"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "nobase.yaml"), []byte("version: 1\nname: t\nbase: oci-archive:nope.tar\nlayers:\n  - contents:\n      - {path: /a, content: a}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "tagbase.yaml"), []byte("version: 1\nname: t\nbase: oci:somedir:v1\nlayers:\n  - contents:\n      - {path: /a, content: a}\n"), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\nname: tiny\nlayers:\n  - contents:\n      - path: /x\n        mode: \"0o99\"\n        content: a\n"), 0o644)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
		stdout string
	}{
		{"no args", nil, 2, "", "Usage:"},
		{"help", []string{"help"}, 0, "", "Commands:"},
		{"help build", []string{"help", "build"}, 0, "", "--compression"},
		{"build --help", []string{"build", "--help"}, 0, "", "Examples:"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"; run repro help`, ""},
		{"mistyped command", []string{"buidl"}, 2, `unknown command "buidl"; did you mean repro build?`, ""},
		{"unknown flag", []string{"build", "--frob"}, 2, "unknown flag: --frob", ""},
		{"missing spec", []string{"build", "-f", "nope.yaml"}, 2, "nope.yaml: no such spec file", ""},
		{"bad spec", []string{"build", "-f", "bad.yaml"}, 2, `bad.yaml:6:15: layers[0].contents[0].mode: "0o99" is not an octal mode`, ""},
		{"bad platform", []string{"build", "--platform", "linux/arm64"}, 2, "builds only linux/amd64", ""},
		{"bad compression", []string{"build", "--compression", "xz"}, 2, `unknown compression "xz"`, ""},
		{"bad var", []string{"build", "--var", "novalue"}, 2, "write key=value", ""},
		{"bad output", []string{"build", "-o", "dir:/tmp/x"}, 2, "not supported", ""},
		{"bare path output", []string{"build", "-o", "./plain"}, 2, `did you mean oci:./plain`, ""},
		{"archive output is a directory", []string{"build", "-o", "oci:out:t", "-o", "oci-archive:adir"}, 2, "adir is a directory; an archive output is a file", ""},
		{"layout output is a file", []string{"build", "-o", "oci:afile"}, 2, "afile is a file; an oci: output is a directory", ""},
		{"missing archive base", []string{"build", "-f", "nobase.yaml"}, 2, "nobase.yaml:3:7: base: " + filepath.Join(dir, "nope.tar") + " does not exist", ""},
		{"bad base before --locked", []string{"build", "--locked", "-f", "tagbase.yaml"}, 2, "tagbase.yaml:3:7: base: ", ""},
		{"ok", []string{"build", "-o", "oci:out:t"}, 0, "", "sha256:"},
		{"globals before the command", []string{"-q", "--json", "version"}, 0, "", `"formatVersion":`},
		{"globals alone", []string{"-q"}, 2, "", "Usage:"},
		{"version with an argument", []string{"version", "extra"}, 2, `unexpected argument "extra"`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := invocation{dir: dir}.run(t, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) || !strings.Contains(r.stdout, tc.stdout) {
				t.Errorf("exit %d (want %d)\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
		})
	}
}

func TestQuietJSONAndMetadata(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, tinySpec)
	for _, args := range [][]string{{"build", "-q", "-o", "oci:out:t"}, {"-q", "build", "-o", "oci:out:t"}} {
		r := repro(t, dir, args...)
		if r.stderr != "" || !strings.HasPrefix(lastLine(r.stdout), "sha256:") || strings.Count(r.stdout, "\n") != 1 {
			t.Errorf("%s: stdout %q stderr %q", strings.Join(args, " "), r.stdout, r.stderr)
		}
	}
	r := repro(t, dir, "build", "--json", "-q", "-o", "oci:out:t", "--metadata-file", "meta.json")
	var got buildResult
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("--json output %q: %v", r.stdout, err)
	}
	if got.Digest != lastLine(repro(t, dir, "build", "-q", "-o", "oci:out:t").stdout) || len(got.Manifests) != 1 || got.Manifests[0].Platform != "linux/amd64" {
		t.Errorf("--json: %+v", got)
	}
	meta, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil || !strings.Contains(string(meta), got.Digest) {
		t.Errorf("metadata file: %s %v", meta, err)
	}
	v := repro(t, dir, "version", "--json")
	var vj versionJSON
	if err := json.Unmarshal([]byte(v.stdout), &vj); err != nil || vj.FormatVersion == "" || len(vj.Libraries) != 2 {
		t.Errorf("version --json: %s", v.stdout)
	}
}

// TestEpochAndGitValues checks where the epoch and the git template values
// come from: SOURCE_DATE_EPOCH, epoch: git, and a 12-digit short commit
// whatever core.abbrev says.
func TestEpochAndGitValues(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	writeSpec(t, dir, tinySpec)
	created := func(env ...string) (string, map[string]string) {
		t.Helper()
		r := invocation{dir: dir, env: env}.run(t, "build", "-q", "-o", "oci:out:t")
		if r.code != 0 {
			t.Fatalf("build: %s", r.stderr)
		}
		raw, err := os.ReadFile(filepath.Join(dir, "out", "blobs", "sha256", strings.TrimPrefix(lastLine(r.stdout), "sha256:")))
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Annotations map[string]string `json:"annotations"`
		}
		json.Unmarshal(raw, &m)
		return m.Annotations["org.opencontainers.image.created"], m.Annotations
	}
	if c, a := created(); c != "1970-01-01T00:00:00Z" || a["org.opencontainers.image.revision"] != "unknown" || a["version"] != "0.0.0" {
		t.Errorf("no epoch: created %s, annotations %v", c, a)
	}
	if c, _ := created("SOURCE_DATE_EPOCH=1700000000"); c != "2023-11-14T22:13:20Z" {
		t.Errorf("SOURCE_DATE_EPOCH: created %s", c)
	}
	git := func(args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE=2001-09-09T01:46:40Z", "GIT_AUTHOR_DATE=2001-09-09T01:46:40Z",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	git("config", "core.abbrev", "7")
	os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("out/\n"), 0o644)
	writeSpec(t, dir, strings.Replace(tinySpec, "name: tiny\n", "name: tiny\nepoch: git\n", 1))
	git("add", ".")
	git("commit", "-q", "-m", "x")
	git("tag", "v1.2.3")
	c, a := created("SOURCE_DATE_EPOCH=5")
	if c != "2001-09-09T01:46:40Z" {
		t.Errorf("epoch: git: created %s", c)
	}
	if len(a["short"]) != 12 || !strings.HasPrefix(a["org.opencontainers.image.revision"], a["short"]) || len(a["org.opencontainers.image.revision"]) != 40 {
		t.Errorf("git values %v", a)
	}
	if a["version"] != "v1.2.3" {
		t.Errorf("version from git describe: %q", a["version"])
	}
	// build --check copies the context without .git: the second build
	// takes the epoch and git values from the first.
	if r := repro(t, dir, "build", "-q", "--check", "-o", "oci:out:checked"); r.code != 0 {
		t.Errorf("build --check with epoch: git: exit %d\n%s", r.code, r.stderr)
	}
}

func TestBuildRunsTestsBeforeWriting(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, tinySpec)
	os.WriteFile(filepath.Join(dir, "pass.yaml"), []byte("schemaVersion: 2.0.0\nfileContentTests:\n  - name: motd\n    path: /etc/motd\n    expectedContents: ['^hi']\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "fail.yaml"), []byte("schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: missing\n    path: /nope\n    shouldExist: true\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("schemaVersion: 2.0.0\nfileExistenceTests:\n  - nme: x\n"), 0o644)
	if r := (invocation{dir: dir}).run(t, "build", "-q", "--test", "pass.yaml", "-o", "oci:ok:t"); r.code != 0 {
		t.Errorf("passing tests: exit %d\n%s", r.code, r.stderr)
	}
	r := invocation{dir: dir}.run(t, "build", "-q", "--test", "fail.yaml", "-o", "oci:failed:t")
	if _, err := os.Stat(filepath.Join(dir, "failed")); r.code != 1 || err == nil || !strings.Contains(r.stderr, "nothing was written") {
		t.Errorf("failing tests: exit %d, output exists: %v\n%s", r.code, err == nil, r.stderr)
	}
	r = invocation{dir: dir}.run(t, "build", "-q", "--test", "bad.yaml", "-o", "oci:bad:t")
	if r.code != 2 || !strings.Contains(r.stderr, "bad.yaml:3:") {
		t.Errorf("bad test file: exit %d\n%s", r.code, r.stderr)
	}
}

// TestCorruptLock: a lock file that is not one is bad input located by
// line and column, and lock --update writes it anew instead of failing on
// it.
func TestCorruptLock(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, tinySpec)
	lockFile := filepath.Join(dir, "repro.lock.json")
	os.WriteFile(lockFile, []byte("{\n  \"version\": 1,\n  \"bases\": {d}\n}\n"), 0o644)
	r := invocation{dir: dir}.run(t, "build", "-o", "oci:out:t")
	if r.code != 2 || !strings.Contains(r.stderr, "repro.lock.json:3:14: invalid character") {
		t.Errorf("build over a corrupt lock: exit %d\n%s", r.code, r.stderr)
	}
	if r := (invocation{dir: dir}).run(t, "lock"); r.code != 2 {
		t.Errorf("lock over a corrupt lock: exit %d, want 2\n%s", r.code, r.stderr)
	}
	repro(t, dir, "lock", "--update")
	// The lock records the output format the spec builds (2, the default).
	if b, _ := os.ReadFile(lockFile); string(b) != "{\n  \"version\": 1,\n  \"format\": 2\n}\n" {
		t.Errorf("lock --update wrote %q", b)
	}
	repro(t, dir, "build", "-o", "oci:out:t")
}

// TestOutputWithoutPermission: an oci: output the user may not read is
// an operational failure (exit 3) that says so, not "not an OCI layout".
func TestOutputWithoutPermission(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run repro as another user")
	}
	shared, err := os.MkdirTemp("", "repro-perm-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(shared)
	os.Chmod(shared, 0o755)
	closed := filepath.Join(shared, "closed")
	os.Mkdir(closed, 0o700) // root's; nobody may not look in
	writeSpec(t, shared, tinySpec)
	bin := filepath.Join(shared, "repro")
	data, err := os.ReadFile(reproBin)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(bin, data, 0o755)
	cmd := exec.Command(bin, "build", "-q", "-o", "oci:"+filepath.Join(closed, "x"))
	cmd.Dir = shared
	tmp := filepath.Join(shared, "tmp")
	os.Mkdir(tmp, 0o777)
	os.Chmod(tmp, 0o777)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + tmp, "TMPDIR=" + tmp}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(string(out), "permission denied") || strings.Contains(string(out), "not an OCI layout") {
		t.Errorf("an output nobody may read: %v\n%s", err, out)
	}
}

// TestSignRefusesAnIncompleteImage: a layout whose manifest blob is gone
// is not signed (a signature vouches for a manifest that must be there).
func TestSignRefusesAnIncompleteImage(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, tinySpec)
	d := lastLine(repro(t, dir, "build", "-q", "-o", "oci:lay:v1").stdout)
	repro(t, dir, "keygen", "-q", "--out", "k")
	if err := os.Remove(filepath.Join(dir, "lay", "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))); err != nil {
		t.Fatal(err)
	}
	r := invocation{dir: dir}.run(t, "sign", "oci:lay:v1", "--key", "k.key")
	if r.code != 2 || !strings.Contains(r.stderr, "the image cannot be read whole") {
		t.Errorf("signing a layout without its manifest: exit %d\n%s", r.code, r.stderr)
	}
}
