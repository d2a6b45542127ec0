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

// readmeTour is the README's "A short tour": its spec, the commands of its
// sh block, and the error its example shows.
func readmeTour(t *testing.T) (spec string, cmds [][]string, errLine string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, tour, ok := strings.Cut(string(raw), "\n## A short tour\n")
	if !ok {
		t.Fatal("README.md has no section A short tour")
	}
	tour, _, _ = strings.Cut(tour, "\n## ")
	var blocks []string
	for parts := strings.Split(tour, "```"); len(parts) > 2; parts = parts[2:] {
		blocks = append(blocks, parts[1])
	}
	if len(blocks) < 3 || !strings.HasPrefix(blocks[0], "yaml\n") || !strings.HasPrefix(blocks[1], "sh\n") {
		t.Fatalf("the tour's blocks are not yaml, sh, the error: %q", blocks)
	}
	for _, line := range strings.Split(strings.TrimPrefix(blocks[1], "sh\n"), "\n") {
		line, _, _ = strings.Cut(line, "#")
		if f := strings.Fields(line); len(f) > 0 && f[0] == "repro" {
			cmds = append(cmds, f[1:])
		}
	}
	return strings.TrimPrefix(blocks[0], "yaml\n"), cmds, strings.TrimSpace(blocks[2])
}

// TestE2ENewUserReadmeTour runs the README's tour as written, in a fresh
// directory with the Go module and site it names: every repro command of
// it must work in order (its first repro build failed: the go: entry
// needs the lock's toolchain pin, and the tour never said repro lock),
// and the error it shows must be the one the binary prints.
func TestE2ENewUserReadmeTour(t *testing.T) {
	spec, cmds, errLine := readmeTour(t)
	dir := t.TempDir()
	writeSpec(t, dir, spec)
	for name, text := range map[string]string{
		"go.mod":             "module example.com/hello\n\ngo 1.26\n",
		"cmd/server/main.go": "package main\n\nvar version string\n\nfunc main() { println(\"hello\", version) }\n",
		"site/index.html":    "<h1>hi</h1>\n",
		"site/app.js.map":    "{}\n",
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"GOFLAGS=", "GOTOOLCHAIN=local"}
	if len(cmds) == 0 {
		t.Fatal("the tour runs no repro command")
	}
	for _, args := range cmds {
		if r := (invocation{dir: dir, env: env}).run(t, args...); r.code != 0 {
			t.Fatalf("the tour's repro %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	for _, p := range []string{"out/hello/index.json", "hello.tar", "repro.lock.json"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("the tour wrote no %s: %v", p, err)
		}
	}
	// The error it shows: mode "0o99" added under the motd's content.
	bad := strings.Replace(spec, "        content: \"hello\\n\"\n", "        content: \"hello\\n\"\n        mode: \"0o99\"\n", 1)
	if bad == spec {
		t.Fatal("the tour's spec has no motd content line")
	}
	writeSpec(t, dir, bad)
	r := invocation{dir: dir, env: env}.run(t, "build")
	if r.code != 2 || strings.TrimSpace(r.stderr) != errLine {
		t.Errorf("the tour's error: exit %d, printed\n%s\nthe README shows\n%s", r.code, r.stderr, errLine)
	}
}

// TestE2ENewUserVerifyOnePlatform: verifying one platform's image (built
// with --platform) against its spec of two platforms fails, as it must,
// and says what to pass; the diff says image against index, and which
// platforms each has. It said only that the digests differ, with
// "linux/amd64: identical" below.
func TestE2ENewUserVerifyOnePlatform(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, "version: 1\nname: two\nplatforms: [linux/amd64, linux/arm64]\nlayers:\n  - name: a\n    contents:\n      - {path: /etc/motd, content: \"hi\\n\"}\n")
	repro(t, dir, "build", "-q", "--platform", "linux/amd64", "-o", "oci:out:v1")
	r := invocation{dir: dir}.run(t, "verify", "-q", "--against", "oci:out:v1")
	for _, want := range []string{
		"note: oci:out:v1 is the linux/amd64 image of the index repro.yaml builds; pass --platform linux/amd64 to verify that image alone",
		`platforms: ["linux/amd64"] -> ["linux/amd64","linux/arm64"]`,
	} {
		if r.code != 1 || !strings.Contains(r.stdout, want) {
			t.Errorf("verify of one platform's image: exit %d, stdout lacks %q:\n%s%s", r.code, want, r.stdout, r.stderr)
		}
	}
	r = invocation{dir: dir}.run(t, "verify", "-q", "--against", "oci:out:v1", "--platform", "linux/amd64")
	if r.code != 0 {
		t.Errorf("verify --platform linux/amd64: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The same with --expect and the image's digest.
	digest := strings.TrimSpace(repro(t, dir, "build", "-q", "--platform", "linux/amd64", "-o", "oci:out:v1").stdout)
	r = invocation{dir: dir}.run(t, "verify", "-q", "--expect", digest)
	if want := "note: " + digest + " is the linux/amd64 image of the index repro.yaml builds; pass --platform linux/amd64"; r.code != 1 || !strings.Contains(r.stdout, want) {
		t.Errorf("verify --expect of one platform's image: exit %d, stdout lacks %q:\n%s%s", r.code, want, r.stdout, r.stderr)
	}
}

// TestE2ENewUserMetadataFile: --metadata-file is checked before the build,
// like -o: a path under a missing directory is made, as -o, sbom -o, disk
// -o and keygen --out make theirs (it failed, exit 3, naming a temporary
// file), and a path that cannot be written fails before anything is
// written (the outputs were written, then the command failed).
func TestE2ENewUserMetadataFile(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, tinySpec)
	os.WriteFile(filepath.Join(dir, "afile"), nil, 0o644)
	repro(t, dir, "build", "-q", "--metadata-file", "meta/new/m.json", "-o", "oci:ok:v1")
	var m buildResult
	if raw, err := os.ReadFile(filepath.Join(dir, "meta", "new", "m.json")); err != nil || json.Unmarshal(raw, &m) != nil || m.Digest == "" {
		t.Errorf("--metadata-file under a new directory: %v, %+v", err, m)
	}
	r := invocation{dir: dir}.run(t, "build", "-q", "--metadata-file", "afile/m.json", "-o", "oci:never:v1")
	if r.code != 3 || !strings.Contains(r.stderr, "--metadata-file afile/m.json") || strings.Contains(r.stderr, ".tmp-") {
		t.Errorf("--metadata-file under a file: exit %d, want 3 naming the flag and the file:\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "never")); err == nil {
		t.Error("a build whose --metadata-file cannot be written wrote its output")
	}
}

// TestE2ENewUserCheckSaysItOnce: build --check says once that it builds
// again, perturbed (it said so twice, from pkg/verify and from cmd).
func TestE2ENewUserCheckSaysItOnce(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, tinySpec)
	r := repro(t, dir, "build", "--check", "-o", "oci:out:v1")
	if n := strings.Count(r.stderr, "building again, perturbed"); n != 1 {
		t.Errorf("build --check said %d times that it builds again:\n%s", n, r.stderr)
	}
	if !strings.Contains(r.stderr, "--check: identical") {
		t.Errorf("build --check did not say the builds were identical:\n%s", r.stderr)
	}
}

// TestE2ENewUserPlatformOfOneImage: --platform names the image to read; on
// a single image of another platform, test and inspect refuse it, as disk
// does (test ran the amd64 image's tests and passed for --platform
// linux/arm64, and took linux/amd65; inspect showed the amd64 image).
func TestE2ENewUserPlatformOfOneImage(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, tinySpec)
	os.WriteFile(filepath.Join(dir, "t.yaml"), []byte("schemaVersion: 2.0.0\nfileExistenceTests:\n  - {name: motd, path: /etc/motd, shouldExist: true}\n"), 0o644)
	repro(t, dir, "build", "-q", "-o", "oci:out:v1") // linux/amd64
	for _, args := range [][]string{
		{"test", "oci:out:v1", "-c", "t.yaml", "--platform", "linux/arm64"},
		{"inspect", "oci:out:v1", "--platform", "linux/arm64"},
		{"disk", "oci:out:v1", "-o", "d.raw", "--platform", "linux/arm64"},
	} {
		r := invocation{dir: dir}.run(t, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "a linux/amd64 image, not linux/arm64") {
			t.Errorf("repro %s: exit %d, want 2 naming the image's platform:\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	repro(t, dir, "test", "oci:out:v1", "-c", "t.yaml", "--platform", "linux/amd64")
	repro(t, dir, "inspect", "oci:out:v1", "--platform", "linux/amd64")
}

// TestE2ENewUserSecretInConfigHasItsLine: a secret the spec's own config
// or annotations hold is named at its line in the spec, like every other
// bad input of a spec (it was named by field alone).
func TestE2ENewUserSecretInConfigHasItsLine(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, "version: 1\nname: s\nconfig:\n  env: {DB_PASSWORD: hunter2hunter2}\n  labels:\n    tok: ghp_0123456789abcdefghijABCDEFGHIJ012345\n")
	r := invocation{dir: dir}.run(t, "build", "-o", "oci:out:v1")
	for _, want := range []string{
		"  repro.yaml:4:22: config.env.DB_PASSWORD: rule env-secret",
		"  repro.yaml:6:10: config.labels.tok: rule github-token",
	} {
		if r.code != 2 || !strings.Contains(r.stderr, want) {
			t.Errorf("exit %d, stderr lacks %q:\n%s", r.code, want, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("a build the secret guard stopped wrote its output")
	}
}

// TestE2ENewUserCacheSubcommand: repro cache with no subcommand, a typo of
// prune, or an extra argument says which (each said only "usage: …").
func TestE2ENewUserCacheSubcommand(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cache"}, "name what to do with the cache: repro cache prune"},
		{[]string{"cache", "purge", "--max-age", "30d"}, `unknown subcommand "purge"; did you mean prune?`},
		{[]string{"cache", "list"}, `unknown subcommand "list"; the cache has one: repro cache prune`},
		{[]string{"cache", "prune", "old", "--max-age", "30d"}, `unexpected argument "old"`},
	} {
		r := invocation{dir: dir}.run(t, append(tc.args, "--cache-dir", filepath.Join(dir, "c"))...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("repro %s: exit %d, want 2 and %q:\n%s", strings.Join(tc.args, " "), r.code, tc.want, r.stderr)
		}
	}
}

// TestE2ENewUserConnectionRefused: a registry that nobody listens at is an
// operational failure that names the host and says what to check (it gave
// Go's two dial errors and nothing to do); --json has the host.
func TestE2ENewUserConnectionRefused(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, tinySpec)
	const hint = "nothing listens at 127.0.0.1:1: check its host and port, and that the server is running"
	for _, args := range [][]string{
		{"inspect", "127.0.0.1:1/app:v1"},
		{"build", "-o", "127.0.0.1:1/app:v1"},
	} {
		r := invocation{dir: dir}.run(t, args...)
		if r.code != 3 || !strings.Contains(r.stderr, hint) {
			t.Errorf("repro %s: exit %d, want 3 and %q:\n%s", strings.Join(args, " "), r.code, hint, r.stderr)
		}
	}
	r := invocation{dir: dir}.run(t, "inspect", "--json", "127.0.0.1:1/app:v1")
	var e struct {
		jsonError
		Host string `json:"host"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &e); err != nil || e.ExitCode != 3 || e.Host != "127.0.0.1:1" || !strings.Contains(e.Error, hint) {
		t.Errorf("inspect --json: %v, %+v\n%s", err, e, r.stdout)
	}
}

// TestE2ENewUserSkippedCommandTests: commandTests skipped for want of a
// runtime are reported as skipped, and the run says how to run them (the
// report said "none was given", naming no flag).
func TestE2ENewUserSkippedCommandTests(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, tinySpec)
	os.WriteFile(filepath.Join(dir, "cmd.yaml"), []byte("schemaVersion: 2.0.0\ncommandTests:\n  - {name: ls, command: ls}\n"), 0o644)
	repro(t, dir, "build", "-q", "-o", "oci:out:v1")
	const hint = "give --runtime podman to run them"
	if r := repro(t, dir, "test", "oci:out:v1", "-c", "cmd.yaml"); !strings.Contains(r.stderr, hint) || !strings.Contains(r.stdout, "Skipped:     1") {
		t.Errorf("test: stdout\n%s\nstderr lacks %q:\n%s", r.stdout, hint, r.stderr)
	}
	if r := repro(t, dir, "build", "--test", "cmd.yaml", "-o", "oci:out:v2"); !strings.Contains(r.stderr, hint) {
		t.Errorf("build --test: stderr lacks %q:\n%s", hint, r.stderr)
	}
}

// TestE2ENewUserMakeExamplesSkipsWhatNeedsALock: make examples builds every
// example --offline but those its case pattern skips; an example with
// packages: and no committed lock cannot build that way (golden-nginx
// failed make examples on a fresh clone, exit 1: "the lock does not pin
// the packages of layers[0]"), so the Makefile must skip it.
func TestE2ENewUserMakeExamplesSkipsWhatNeedsALock(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	_, rule, ok := strings.Cut(string(mk), "\nexamples:")
	if !ok {
		t.Fatal("the Makefile has no examples target")
	}
	_, pat, ok := strings.Cut(rule, "case $$s in ")
	if !ok {
		t.Fatal("make examples skips nothing with a case pattern")
	}
	pat, _, _ = strings.Cut(pat, ")")
	specs, _ := filepath.Glob(filepath.Join(root, "specs", "examples", "*", "*.yaml"))
	if len(specs) == 0 {
		t.Fatal("no example specs")
	}
	for _, s := range specs {
		rel, _ := filepath.Rel(root, s)
		skipped := false
		for _, p := range strings.Split(pat, "|") {
			if strings.Contains("/"+rel, strings.Trim(p, "*")) { // */nginx/*: a directory named nginx
				skipped = true
			}
		}
		raw, _ := os.ReadFile(s)
		_, lockErr := os.Stat(filepath.Join(filepath.Dir(s), "repro.lock.json"))
		if !skipped && strings.Contains(string(raw), "\n    packages:") && lockErr != nil {
			t.Errorf("make examples builds %s --offline, which has packages: and no committed repro.lock.json; skip it in the examples target", rel)
		}
	}
}

// TestE2ENewUserBadTagAtItsLine: a spec tag that does not expand to a
// registry reference is refused by --push at its line in the spec, before
// anything is written (it was blamed on -o, after the build); without
// --push the build warns, at the same line, and writes its -o.
func TestE2ENewUserBadTagAtItsLine(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, "version: 1\nname: s\ntags: [\"127.0.0.1:1/x:{{.Version}}\", \"127.0.0.1:1/Upper:v1\"]\nlayers: []\n")
	const want = `repro.yaml:3:8: tags[0]: "127.0.0.1:1/x:1.0+meta" (from "127.0.0.1:1/x:{{.Version}}") is not a registry reference`
	r := invocation{dir: dir}.run(t, "build", "--push", "--version", "1.0+meta", "-o", "oci:never:v1")
	if r.code != 2 || !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "-o:") {
		t.Errorf("build --push: exit %d, want 2 and %q:\n%s", r.code, want, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "never")); err == nil {
		t.Error("build --push with a bad tag wrote its output")
	}
	r = invocation{dir: dir}.run(t, "build", "--version", "1.0+meta", "-o", "oci:out:v1")
	if r.code != 0 || !strings.Contains(r.stderr, "repro.yaml:3:8: tags[0]: ") || !strings.Contains(r.stderr, "1.0+meta") || !strings.Contains(r.stderr, "--push would refuse it") {
		t.Errorf("build without --push: exit %d, want 0 and a warning %q:\n%s", r.code, want, r.stderr)
	}
	writeSpec(t, dir, "version: 1\nname: s\ntags: [\"127.0.0.1:1/Upper:v1\"]\nlayers: []\n")
	if r := (invocation{dir: dir}).run(t, "build", "--push"); r.code != 2 || !strings.Contains(r.stderr, `repro.yaml:3:8: tags[0]: "127.0.0.1:1/Upper:v1" is not a registry reference`) {
		t.Errorf("a tag with upper case: exit %d\n%s", r.code, r.stderr)
	}
}

// TestE2ENewUserLockedWithoutALock: build --locked of a spec whose lock was
// never written says that there is no lock (it said the lock "does not
// pin" what it names, of a file that does not exist), and how to write it.
func TestE2ENewUserLockedWithoutALock(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, "version: 1\nname: s\nbase: 127.0.0.1:1/library/debian:12\nlayers: []\n")
	r := invocation{dir: dir}.run(t, "build", "--locked")
	for _, want := range []string{"--locked: there is no repro.lock.json, so nothing is pinned: ", "run repro lock -f repro.yaml"} {
		if r.code != 2 || !strings.Contains(r.stderr, want) {
			t.Errorf("build --locked with no lock: exit %d, want 2 and %q:\n%s", r.code, want, r.stderr)
		}
	}
}

// TestE2ENewUserLockedStaleLock: build --locked with a lock that pins the
// base but not a url the spec gained since names the url at its spec line
// (it named the lock file, and no line).
func TestE2ENewUserLockedStaleLock(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, `version: 1
name: s
base: 127.0.0.1:1/library/debian:12
layers:
  - contents:
      - path: /f
        url: http://127.0.0.1:1/f
        sha256: `+strings.Repeat("0", 64)+"\n")
	lockJSON := `{"version": 1, "bases": {"127.0.0.1:1/library/debian:12": {"digest": "sha256:` + strings.Repeat("1", 64) + `", "mediaType": "application/vnd.oci.image.index.v1+json", "platforms": {}}}}`
	if err := os.WriteFile(filepath.Join(dir, "repro.lock.json"), []byte(lockJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	r := invocation{dir: dir}.run(t, "build", "--locked")
	for _, want := range []string{"repro.yaml:7:14: layers[0].contents[0].url: the lock does not pin url http://127.0.0.1:1/f\n", "run repro lock -f repro.yaml"} {
		if r.code != 2 || !strings.Contains(r.stderr, want) {
			t.Errorf("build --locked with a stale lock: exit %d, want 2 and %q:\n%s", r.code, want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "repro.lock.json does not pin") || strings.Contains(r.stderr, "--locked: repro.yaml") {
		t.Errorf("build --locked with a stale lock names the lock, not the spec line:\n%s", r.stderr)
	}
}

// TestE2ENewUserSpecIsADirectory: build -f . says that . is a directory,
// and gives the spec in it to -f (it said "not a regular file"); a
// directory with no repro.yaml is told what a spec is.
func TestE2ENewUserSpecIsADirectory(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, "version: 1\nname: s\nlayers: []\n")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ f, want string }{
		{".", "repro build: . is a directory, not a spec; the spec in it is ./repro.yaml\nrepro build: give the spec itself: -f ./repro.yaml\n"},
		{"sub", "repro build: sub is a directory, not a spec; a spec is a file, like repro.yaml\nrepro build: give -f the spec file's path\n"},
	} {
		r := invocation{dir: dir}.run(t, "build", "-f", c.f)
		if r.code != 2 || r.stderr != c.want {
			t.Errorf("build -f %s: exit %d, want 2 and:\n%s\ngot:\n%s", c.f, r.code, c.want, r.stderr)
		}
	}
}
