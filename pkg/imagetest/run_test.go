package imagetest

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/reprobuild/repro/pkg/imageref"
)

type ent struct {
	name     string
	typ      byte
	mode     int64
	uid, gid int
	body     string
	link     string
}

func layer(t *testing.T, entries ...ent) v1.Layer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid, Linkname: e.link, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	data := b.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testImage is a small image that exercises what a filesystem can hold:
// owners, setuid, symbolic links (relative, absolute, through a directory
// link), a hard link, a whiteout, an opaque directory, a directory a layer
// implies without an entry.
func testImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image,
		layer(t,
			ent{name: "usr/", typ: tar.TypeDir, mode: 0o755},
			ent{name: "usr/bin/", typ: tar.TypeDir, mode: 0o755},
			ent{name: "usr/bin/app", typ: tar.TypeReg, mode: 0o4755, body: "#!app\nversion 1.2.3\n"},
			ent{name: "usr/bin/tool", typ: tar.TypeReg, mode: 0o750, uid: 0, gid: 50, body: "tool"},
			ent{name: "bin", typ: tar.TypeSymlink, mode: 0o777, link: "usr/bin"},
			ent{name: "etc/", typ: tar.TypeDir, mode: 0o755},
			ent{name: "etc/secret", typ: tar.TypeReg, mode: 0o600, uid: 1000, gid: 1000, body: "password=hunter2\n"},
			ent{name: "etc/config", typ: tar.TypeReg, mode: 0o644, body: "port = 8080\nmode = prod\n"},
			ent{name: "etc/config-link", typ: tar.TypeSymlink, mode: 0o777, link: "/etc/config"},
			ent{name: "etc/dangling", typ: tar.TypeSymlink, mode: 0o777, link: "nowhere"},
			ent{name: "etc/loop", typ: tar.TypeSymlink, mode: 0o777, link: "loop"},
			ent{name: "etc/hard", typ: tar.TypeLink, link: "etc/config"},
			ent{name: "var/lib/data/file", typ: tar.TypeReg, mode: 0o640, uid: 999, gid: 999, body: "data"}, // var/, var/lib/ implied
			ent{name: "opt/old/", typ: tar.TypeDir, mode: 0o755},
			ent{name: "opt/old/gone", typ: tar.TypeReg, mode: 0o644, body: "x"},
			ent{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		),
		layer(t,
			ent{name: "etc/.wh.secret", typ: tar.TypeReg},
			ent{name: "opt/old/.wh..wh..opq", typ: tar.TypeReg},
			ent{name: "opt/old/new", typ: tar.TypeReg, mode: 0o644, body: "y"},
		),
	)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config = v1.Config{
		Env:          []string{"PATH=/usr/bin", "APP_HOME=/usr/bin", "EMPTY=", "VERSION=1.2.3"},
		Entrypoint:   []string{"/usr/bin/app"},
		WorkingDir:   "/srv",
		User:         "1000:1000",
		ExposedPorts: map[string]struct{}{"8080/tcp": {}, "53/udp": {}},
		Volumes:      map[string]struct{}{"/data": {}},
		Labels:       map[string]string{"org.opencontainers.image.version": "1.2.3", "team": "core"},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func run(t *testing.T, img v1.Image, yaml string, opts Options) *Summary {
	t.Helper()
	f, err := Parse("tests.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Run(context.Background(), imageref.Artifact{Image: img}, []*File{f}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verdicts maps each result's name to PASS, FAIL or SKIP.
func verdicts(s *Summary) map[string]string {
	out := map[string]string{}
	for _, r := range s.Results {
		v := "FAIL"
		switch {
		case r.Skipped:
			v = "SKIP"
		case r.Pass:
			v = "PASS"
		}
		out[r.Name] = v
	}
	return out
}

func expectVerdicts(t *testing.T, s *Summary, want map[string]string) {
	t.Helper()
	got := verdicts(s)
	for name, w := range want {
		if got[name] != w {
			var errs []string
			for _, r := range s.Results {
				if r.Name == name {
					errs = r.Errors
				}
			}
			t.Errorf("%s: %s, want %s %q", name, got[name], w, errs)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d results, want %d: %v", len(got), len(want), got)
	}
}

func TestFileExistence(t *testing.T) {
	s := run(t, testImage(t), `schemaVersion: "2.0.0"
globalEnvVars:
  - {key: CONF, value: /etc}
fileExistenceTests:
  - {name: setuid, path: /usr/bin/app, permissions: urwxr-xr-x, uid: 0, gid: 0, isExecutableBy: other}
  - {name: setuid wrong, path: /usr/bin/app, permissions: -rwxr-xr-x}
  - {name: group only, path: /usr/bin/tool, permissions: -rwxr-x---, gid: 50, isExecutableBy: group}
  - {name: not by other, path: /usr/bin/tool, isExecutableBy: other}
  - {name: not executable, path: /etc/config, isExecutableBy: any}
  - {name: owner from the layer, path: /var/lib/data/file, uid: 999, gid: 999, permissions: -rw-r-----}
  - {name: owner wrong, path: /var/lib/data/file, uid: 0}
  - {name: group wrong, path: /var/lib/data/file, gid: 0}
  - {name: implied directory, path: /var/lib, permissions: drwxr-xr-x, uid: 0}
  - {name: root, path: /, permissions: drwxr-xr-x}
  - {name: sticky, path: /tmp, permissions: dtrwxrwxrwx}
  - {name: symlink itself, path: /etc/config-link, permissions: Lrwxrwxrwx}
  - {name: dangling symlink exists, path: /etc/dangling}
  - {name: through a directory link, path: /bin/app, permissions: urwxr-xr-x}
  - {name: relative path, path: usr/bin/tool}
  - {name: hard link is its file, path: /etc/hard, permissions: -rw-r--r--}
  - {name: whiteout hides, path: /etc/secret, shouldExist: false}
  - {name: whiteout hides wrongly expected, path: /etc/secret}
  - {name: opaque dir hides, path: /opt/old/gone, shouldExist: false}
  - {name: opaque dir keeps its own, path: /opt/old/new}
  - {name: exists but should not, path: /etc/config, shouldExist: false}
  - {name: env in path, path: $CONF/config}
  - {name: image env in path, path: "${APP_HOME}/tool"}
  - {name: missing, path: /nope}
  - {name: under a file, path: /etc/config/x}
  - {name: loop, path: /etc/loop/x}
`, Options{})
	expectVerdicts(t, s, map[string]string{
		"File Existence Test: setuid":                          "PASS",
		"File Existence Test: setuid wrong":                    "FAIL",
		"File Existence Test: group only":                      "PASS",
		"File Existence Test: not by other":                    "FAIL",
		"File Existence Test: not executable":                  "FAIL",
		"File Existence Test: owner from the layer":            "PASS",
		"File Existence Test: owner wrong":                     "FAIL",
		"File Existence Test: group wrong":                     "FAIL",
		"File Existence Test: implied directory":               "PASS",
		"File Existence Test: root":                            "PASS",
		"File Existence Test: sticky":                          "PASS",
		"File Existence Test: symlink itself":                  "PASS",
		"File Existence Test: dangling symlink exists":         "PASS",
		"File Existence Test: through a directory link":        "PASS",
		"File Existence Test: relative path":                   "PASS",
		"File Existence Test: hard link is its file":           "PASS",
		"File Existence Test: whiteout hides":                  "PASS",
		"File Existence Test: whiteout hides wrongly expected": "FAIL",
		"File Existence Test: opaque dir hides":                "PASS",
		"File Existence Test: opaque dir keeps its own":        "PASS",
		"File Existence Test: exists but should not":           "FAIL",
		"File Existence Test: env in path":                     "PASS",
		"File Existence Test: image env in path":               "PASS",
		"File Existence Test: missing":                         "FAIL",
		"File Existence Test: under a file":                    "FAIL",
		"File Existence Test: loop":                            "FAIL",
	})
	if s.Err() == nil {
		t.Error("Err() is nil with failures")
	}
	for _, r := range s.Results {
		if r.Name == "File Existence Test: setuid wrong" && !strings.Contains(r.Errors[0], "permissions urwxr-xr-x, want -rwxr-xr-x") {
			t.Errorf("message %q", r.Errors)
		}
	}
}

func TestFileContent(t *testing.T) {
	s := run(t, testImage(t), `schemaVersion: "2.0.0"
fileContentTests:
  - {name: regex, path: /etc/config, expectedContents: ["^port = \\d+$", "(?m)^mode = prod$"]}
  - {name: "anchors are the whole content without (?m)", path: /etc/config, expectedContents: ["^mode = prod"]}
  - {name: excluded absent, path: /etc/config, excludedContents: [debug]}
  - {name: excluded present, path: /etc/config, excludedContents: ["mode = p.od"]}
  - {name: expected absent, path: /etc/config, expectedContents: [staging]}
  - {name: through absolute symlink, path: /etc/config-link, expectedContents: [port]}
  - {name: through a directory link, path: /bin/app, expectedContents: ["version 1\\.2"]}
  - {name: hard link, path: /etc/hard, expectedContents: [port]}
  - {name: whited out, path: /etc/secret}
  - {name: directory, path: /etc}
  - {name: dangling, path: /etc/dangling}
  - {name: empty lists pass, path: /usr/bin/tool}
`, Options{})
	expectVerdicts(t, s, map[string]string{
		"File Content Test: regex":                                      "FAIL", // ^...$ without (?m) spans the whole content
		"File Content Test: anchors are the whole content without (?m)": "FAIL",
		"File Content Test: excluded absent":                            "PASS",
		"File Content Test: excluded present":                           "FAIL",
		"File Content Test: expected absent":                            "FAIL",
		"File Content Test: through absolute symlink":                   "PASS",
		"File Content Test: through a directory link":                   "PASS",
		"File Content Test: hard link":                                  "PASS",
		"File Content Test: whited out":                                 "FAIL",
		"File Content Test: directory":                                  "FAIL",
		"File Content Test: dangling":                                   "FAIL",
		"File Content Test: empty lists pass":                           "PASS",
	})
}

func TestMetadata(t *testing.T) {
	img := testImage(t)
	for _, c := range []struct {
		name, yaml string
		pass       bool
	}{
		{"everything", `
  envVars: [{key: PATH, value: /usr/bin}, {key: EMPTY, value: ""}, {key: VERSION, value: '^1\.\d+', isRegex: true}]
  unboundEnvVars: [{key: HOME}]
  labels: [{key: team, value: core}, {key: org.opencontainers.image.version, value: '^1\.', isRegex: true}]
  exposedPorts: ["8080", "53"]
  unexposedPorts: ["22", "8080/tcp"]
  entrypoint: [/usr/bin/app]
  cmd: []
  workdir: /srv
  user: "1000:1000"
  volumes: [/data]
  unmountedVolumes: [/srv]`, true},
		{"global env vars count", `
  envVars: [{key: GLOBAL, value: /usr/bin/x}]`, true},
		{"env missing", `
  envVars: [{key: HOME, value: /root}]`, false},
		{"env differs", `
  envVars: [{key: PATH, value: /bin}]`, false},
		{"env regex differs", `
  envVars: [{key: VERSION, value: '^2', isRegex: true}]`, false},
		{"env set but should not", `
  unboundEnvVars: [{key: PATH}]`, false},
		{"label differs", `
  labels: [{key: team, value: edge}]`, false},
		{"label missing", `
  labels: [{key: owner, value: x}]`, false},
		{"port with its protocol, as container-structure-test compares", `
  exposedPorts: ["8080/tcp"]`, false},
		{"port not exposed", `
  exposedPorts: ["9090"]`, false},
		{"port exposed but should not", `
  unexposedPorts: ["53"]`, false},
		{"entrypoint differs", `
  entrypoint: [/usr/bin/tool]`, false},
		{"entrypoint must be empty", `
  entrypoint: []`, false},
		{"cmd must be empty, and is", `
  cmd: []`, true},
		{"cmd given, none set", `
  cmd: [serve]`, false},
		{"workdir differs", `
  workdir: /`, false},
		{"user differs", `
  user: root`, false},
		{"volume missing", `
  volumes: [/srv]`, false},
		{"volume mounted but should not", `
  unmountedVolumes: [/data]`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := run(t, img, "schemaVersion: \"2.0.0\"\nglobalEnvVars: [{key: GLOBAL, value: $PATH/x}]\nmetadataTest:"+c.yaml+"\n", Options{})
			if len(s.Results) != 1 {
				t.Fatalf("%d results", len(s.Results))
			}
			r := s.Results[0]
			if r.Name != "Metadata Test" || r.Pass != c.pass {
				t.Errorf("%s: pass %v, want %v; errors %q", r.Name, r.Pass, c.pass, r.Errors)
			}
		})
	}
	// The protocol quirk says what to write instead.
	s := run(t, img, "schemaVersion: \"2.0.0\"\nmetadataTest:\n  exposedPorts: [\"8080/tcp\"]\n", Options{})
	if e := s.Results[0].Errors; len(e) != 1 || !strings.Contains(e[0], `write "8080"`) {
		t.Errorf("the port message: %q", e)
	}
	// An empty metadataTest is no test at all.
	s = run(t, img, "schemaVersion: \"2.0.0\"\nmetadataTest: {}\nfileExistenceTests: [{name: a, path: /etc}]\n", Options{})
	if s.Total != 1 {
		t.Errorf("an empty metadataTest ran: %d results", s.Total)
	}
}

func TestCommandTestsSkippedWithoutRuntime(t *testing.T) {
	s := run(t, testImage(t), `schemaVersion: "2.0.0"
commandTests:
  - {name: version, command: /usr/bin/app, args: [--version], expectedOutput: ["1.2.3"]}
`, Options{})
	r := s.Results[0]
	if r.Pass || !r.Skipped || s.Skip != 1 || s.Pass != 0 || s.Fail != 0 || s.Total != 1 {
		t.Errorf("a command test without a runtime: %+v, summary %+v", r, s)
	}
	if s.Err() != nil {
		t.Errorf("Err() = %v for a skipped test", s.Err())
	}
}

// fakePodman writes a podman stand-in that logs its arguments and answers
// as podman would: pull prints an image ID, run prints the command line it
// was given, and "run … /fail" exits 3 with stderr.
func fakePodman(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	logFile := filepath.Join(dir, "log")
	script := `#!/bin/sh
echo "$*" >> ` + logFile + `
while [ $# -gt 0 ]; do
  case "$1" in
  --*) shift 2 ;;
  *) break ;;
  esac
done
case "$1" in
image) exit 1 ;;
pull) echo abc123 ;;
commit) echo committed1 ;;
rm|rmi|untag) ;;
run)
  cid=""
  while [ $# -gt 0 ]; do
    case "$1" in
    --cidfile) cid=$2; shift 2 ;;
    --entrypoint|--env|--user|--cap-add|--volume|--env-file) shift 2 ;;
    run|--rm|--privileged|--tty) shift ;;
    *) break ;;
    esac
  done
  shift # the image
  [ -n "$cid" ] && echo container1 > "$cid"
  if [ "$1" = /fail ]; then echo "it failed" >&2; exit 3; fi
  if [ "$1" = /missing ]; then echo "Error: executable file not found" >&2; exit 127; fi
  echo "ran: $*"
  ;;
esac
`
	p := filepath.Join(dir, "podman")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p, logFile
}

func TestCommandTestsThroughPodman(t *testing.T) {
	podman, logFile := fakePodman(t)
	tmp := filepath.Join("/tmp", "repro-imagetest-fake")
	os.MkdirAll(tmp, 0o755)
	t.Cleanup(func() { os.RemoveAll(tmp) })
	opts := Options{Runtime: &Podman{Command: []string{podman, "--root", "/r"}, TempDir: tmp, Platform: "linux/amd64"}}
	s := run(t, testImage(t), `schemaVersion: "2.0.0"
globalEnvVars: [{key: G, value: "$VERSION-g"}]
containerRunOptions: {user: "0", capabilities: [NET_ADMIN], bindMounts: ["/a:/b"], envVars: [HOST_VAR]}
commandTests:
  - name: output
    command: /usr/bin/app
    args: [--home, $APP_HOME, "${G}"]
    envVars: [{key: T, value: "$G-t"}]
    expectedOutput: ["ran: /usr/bin/app --home /usr/bin 1\\.2\\.3-g"]
    excludedOutput: [error]
  - {name: exit code, command: /fail, exitCode: 3, expectedError: [failed], excludedError: [panic]}
  - {name: wrong exit code, command: /fail}
  - {name: not runnable, command: /missing}
  - {name: setup, setup: [[/usr/bin/app, init]], command: /usr/bin/app, expectedOutput: [ran]}
  - {name: expected output missing, command: /usr/bin/app, expectedOutput: [nothing-like-this]}
`, opts)
	expectVerdicts(t, s, map[string]string{
		"Command Test: output":                  "PASS",
		"Command Test: exit code":               "PASS",
		"Command Test: wrong exit code":         "FAIL",
		"Command Test: not runnable":            "FAIL",
		"Command Test: setup":                   "PASS",
		"Command Test: expected output missing": "FAIL",
	})
	log, _ := os.ReadFile(logFile)
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	for _, want := range []string{
		"--root /r image exists ",
		"--root /r pull -q oci:/tmp/repro-imagetest-fake/repro-test-",
		"--root /r run --rm --entrypoint  --user 0 --env HOST_VAR --cap-add NET_ADMIN --volume /a:/b --env G=1.2.3-g --env T=1.2.3-g-t abc123 /usr/bin/app --home /usr/bin 1.2.3-g",
		"--root /r run --cidfile ",
		"--root /r commit -q container1",
		"--root /r rm -f container1",
		"--root /r run --rm --entrypoint  --user 0 --env HOST_VAR --cap-add NET_ADMIN --volume /a:/b --env G=1.2.3-g committed1 /usr/bin/app",
		"--root /r rmi -f committed1",
	} {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, want) {
				found = true
			}
		}
		if !found {
			t.Errorf("podman was not called as %q; calls:\n%s", want, log)
		}
	}
	entries, _ := os.ReadDir(tmp)
	if len(entries) != 0 {
		t.Errorf("the staged image was left in %s: %v", tmp, entries)
	}
	for _, r := range s.Results {
		if r.Name == "Command Test: output" && !strings.HasPrefix(r.Stdout, "ran: ") {
			t.Errorf("stdout not kept: %+v", r)
		}
	}
}

func TestCommandTestsOfAnotherPlatformAreSkipped(t *testing.T) {
	podman, _ := fakePodman(t)
	opts := Options{Runtime: &Podman{Command: []string{podman}, TempDir: "/tmp", Platform: "linux/s390x"}}
	s := run(t, testImage(t), "schemaVersion: \"2.0.0\"\ncommandTests: [{name: a, command: /usr/bin/app}]\n", opts)
	if r := s.Results[0]; !r.Skipped || !strings.Contains(r.Errors[0], "the image is linux/amd64 and podman runs linux/s390x") {
		t.Errorf("%+v", r)
	}
}

func TestPodmanNeedsALowerCaseTempDir(t *testing.T) {
	podman, _ := fakePodman(t)
	opts := Options{Runtime: &Podman{Command: []string{podman}, TempDir: t.TempDir(), Platform: "linux/amd64"}}
	f, _ := Parse("t.yaml", []byte("schemaVersion: \"2.0.0\"\ncommandTests: [{name: a, command: /usr/bin/app}]\n"))
	_, err := Run(context.Background(), imageref.Artifact{Image: testImage(t)}, []*File{f}, opts)
	if err == nil || !strings.Contains(err.Error(), "set TMPDIR to a lower-case directory") {
		t.Errorf("error %v", err)
	}
}

// TestJUnitTimes: JUnit times are decimal seconds, to the microsecond:
// 10.345µs is 0.000010, not 1.0345e-05 (what encoding/xml makes of a
// float64), and two minutes 120.000000, not 120.
func TestJUnitTimes(t *testing.T) {
	s := &Summary{Pass: 2, Total: 2, Duration: 2 * time.Minute, Results: []*Result{
		{Name: "fast", Pass: true, Duration: 10345 * time.Nanosecond},
		{Name: "slow", Pass: true, Duration: 1234567891 * time.Nanosecond},
	}}
	var b bytes.Buffer
	if err := s.WriteJUnit(&b, ""); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<testsuites failures="0" tests="2" time="120.000000">`, `<testcase name="fast" time="0.000010">`, `<testcase name="slow" time="1.234568">`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("JUnit has no %s:\n%s", want, b.String())
		}
	}
}

// TestReports checks the three formats' shapes: container-structure-test's
// JSON field names, its JUnit elements, a parseable text layout.
func TestReports(t *testing.T) {
	tick := time.Unix(0, 0)
	clock := func() time.Time { tick = tick.Add(250 * time.Millisecond); return tick }
	s := run(t, testImage(t), `schemaVersion: "2.0.0"
commandTests: [{name: cmd, command: /x}]
fileExistenceTests: [{name: ok, path: /etc}, {name: bad, path: /nope}]
`, Options{Clock: clock})
	var js bytes.Buffer
	if err := s.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(js.Bytes(), &generic); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Pass", "Fail", "Skip", "Total", "Duration", "Results"} {
		if _, ok := generic[k]; !ok {
			t.Errorf("JSON has no %s: %s", k, js.String())
		}
	}
	if generic["Total"] != 3.0 || generic["Pass"] != 1.0 || generic["Fail"] != 1.0 || generic["Duration"] != 750e6 {
		t.Errorf("JSON summary: %s", js.String())
	}
	results := generic["Results"].([]any)
	okRes := results[1].(map[string]any)
	if okRes["Name"] != "File Existence Test: ok" || okRes["Pass"] != true || okRes["Duration"] != 250e6 {
		t.Errorf("a passing result: %v", okRes)
	}
	if _, has := okRes["Errors"]; has {
		t.Errorf("a passing result carries Errors: %v", okRes)
	}
	if _, has := okRes["Skipped"]; has {
		t.Errorf("a test that ran carries Skipped: %v", okRes)
	}

	var xb bytes.Buffer
	if err := s.WriteJUnit(&xb, ""); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(xb.String(), `<?xml version="1.0" encoding="UTF-8"?><testsuites failures="1" tests="3" time="0.750000"`) {
		t.Errorf("JUnit starts %q", xb.String())
	}
	var doc struct {
		Suite struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name     string   `xml:"name,attr"`
				Time     float64  `xml:"time,attr"`
				Failures []string `xml:"failure"`
				Skipped  *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(xb.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Suite.Name != DefaultSuiteName || len(doc.Suite.Cases) != 3 {
		t.Fatalf("JUnit suite: %+v", doc.Suite)
	}
	if c := doc.Suite.Cases[0]; c.Skipped == nil || len(c.Failures) != 0 {
		t.Errorf("the skipped case: %+v", c)
	}
	if c := doc.Suite.Cases[2]; len(c.Failures) != 1 || c.Time != 0.25 || c.Name != "File Existence Test: bad" {
		t.Errorf("the failed case: %+v", c)
	}
	var tb bytes.Buffer
	s.WriteText(&tb)
	for _, want := range []string{"====== Test file: tests.yaml ======", "=== RUN: File Existence Test: bad\n--- FAIL\n", "--- SKIP", "Passes:      1\nFailures:    1\nSkipped:     1\n", "Total tests: 3\n\nFAIL\n"} {
		if !strings.Contains(tb.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, tb.String())
		}
	}
}

func TestRunIndexNamesPlatforms(t *testing.T) {
	img := testImage(t)
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	f, _ := Parse("t.yaml", []byte("schemaVersion: \"2.0.0\"\nfileExistenceTests: [{name: etc, path: /etc}]\n"))
	s, err := Run(context.Background(), imageref.Artifact{Index: idx}, []*File{f}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Results) != 1 || s.Results[0].Name != "[linux/amd64] File Existence Test: etc" {
		t.Errorf("results %+v", s.Results)
	}
}

func TestRunNestedIndexAndPlatform(t *testing.T) {
	img := testImage(t)
	arm := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}})
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm})
	f, _ := Parse("t.yaml", []byte("schemaVersion: \"2.0.0\"\nfileExistenceTests: [{name: etc, path: /etc}]\n"))
	s, err := Run(context.Background(), imageref.Artifact{Index: idx}, []*File{f}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range s.Results {
		names = append(names, r.Name)
	}
	if strings.Join(names, "|") != "[linux/amd64] File Existence Test: etc|[linux/arm64/v8] File Existence Test: etc" {
		t.Errorf("results %q", names)
	}
	s, err = Run(context.Background(), imageref.Artifact{Index: idx}, []*File{f}, Options{Platform: "linux/arm64/v8"})
	if err != nil || len(s.Results) != 1 || s.Results[0].Name != "File Existence Test: etc" {
		t.Errorf("--platform linux/arm64/v8: %v, %+v", err, s)
	}
	_, err = Run(context.Background(), imageref.Artifact{Index: idx}, []*File{f}, Options{Platform: "linux/s390x"})
	if err == nil || !strings.Contains(err.Error(), "the index has no linux/s390x image; it has linux/amd64, linux/arm64/v8") {
		t.Errorf("a platform the index lacks: %v", err)
	}
	if _, err := Run(context.Background(), imageref.Artifact{Index: empty.Index}, []*File{f}, Options{}); err == nil || !strings.Contains(err.Error(), "the index holds no image to test") {
		t.Errorf("an empty index: %v", err)
	}
}
