package e2e

// Layer epochs (format 2, epoch: git) through the binary, for what the
// package tests leave to it: url: entries, the systemd layer, and a
// verify from a shallow clone of a build made in a full one.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// gitAt runs git in dir with author and committer time at (seconds).
func gitAt(t *testing.T, dir string, at int64, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "commit.gpgsign=false"}, args...)...)
	cmd.Dir = dir
	date := "@" + strconv.FormatInt(at, 10) + " +0000"
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.com", "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date, "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commitAt writes files into dir (a git work tree) and commits them all
// at time at.
func commitAt(t *testing.T, dir string, at int64, files map[string]string) {
	t.Helper()
	writeFiles(t, dir, files)
	gitAt(t, dir, at, "add", "-A")
	gitAt(t, dir, at, "commit", "-q", "--allow-empty", "-m", "at "+strconv.FormatInt(at, 10))
}

// layerDigests are the layer digests of the image tagged tag in layout.
func layerDigests(t *testing.T, layout, tag string) []string {
	t.Helper()
	var m ocispec.Manifest
	e2eUnmarshal(t, e2eBlob(t, layout, e2eTagged(t, layout, tag).Digest.String()), &m)
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.Digest.String())
	}
	return out
}

// epochsSpec: a url: layer, a layer holding a unit file, an app layer of
// a file and inline content, and the systemd layer that enables the unit.
const epochsE2ESpec = `version: 1
name: epochs
epoch: git
layers:
  - name: fetched
    contents:
      - path: /opt/tool.txt
        url: %s
        sha256: %s
  - name: units
    contents:
      - path: /etc/systemd/system/app.service
        source: app.service
  - name: app
    contents:
      - path: /etc/app.conf
        source: app.conf
      - {path: /etc/motd, content: "%s"}
systemd:
  enable: [app.service]
config:
  cmd: [/bin/app]
`

// epochLayers names the layers of epochsE2ESpec's image, in order.
var epochLayers = []string{"fetched", "units", "app", "systemd"}

// TestE2ELayerEpochsURLAndSystemd: with epoch: git, a url: layer and the
// systemd layer keep their bytes when a commit edits another layer's
// lines of the spec or another layer's source; an edit of the unit file
// re-stamps the unit's layer and the systemd layer (whose links follow
// the units), an edit of the systemd: lines the systemd layer, and an
// edit of the config no layer.
func TestE2ELayerEpochsURLAndSystemd(t *testing.T) {
	const tool = "a fetched tool\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/tool.txt" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, tool)
	}))
	t.Cleanup(srv.Close)
	spec := func(motd string) string {
		return fmt.Sprintf(epochsE2ESpec, srv.URL+"/tool.txt", e2eSHA256Hex(tool), motd)
	}
	unit := "[Unit]\nDescription=app\n\n[Service]\nExecStart=/bin/app\n\n[Install]\nWantedBy=multi-user.target\n"
	dir := t.TempDir()
	gitAt(t, dir, 1700000000, "init", "-q", "-b", "main")
	commitAt(t, dir, 1700000000, map[string]string{"repro.yaml": spec(`v1\n`), "app.service": unit, "app.conf": "a=1\n", ".gitignore": ".repro-cache/\n"})
	repro(t, dir, "lock")
	commitAt(t, dir, 1700000100, nil)

	layout := filepath.Join(t.TempDir(), "out")
	// The cache inside the work tree, ignored, as specs/ci's workflows
	// keep it (--cache-dir .repro-cache): the url's file is read from
	// there, and is not a source of the context.
	cache := filepath.Join(dir, ".repro-cache")
	build := func(tag string) []string {
		t.Helper()
		repro(t, dir, "build", "-q", "--no-cache", "--cache-dir", cache, "-o", "oci:"+layout+":"+tag)
		ls := layerDigests(t, layout, tag)
		if len(ls) != len(epochLayers) {
			t.Fatalf("%d layers, want %d (%v)", len(ls), len(epochLayers), epochLayers)
		}
		return ls
	}
	diff := func(a, b []string) []string {
		var out []string
		for i := range a {
			if a[i] != b[i] {
				out = append(out, epochLayers[i])
			}
		}
		return out
	}
	first := build("first")

	steps := []struct {
		name  string
		at    int64
		files map[string]string
		want  string // the layers that must change, comma-separated
	}{
		{"another layer's spec lines", 1700000200, map[string]string{"repro.yaml": spec(`v2\n`)}, "app"},
		{"another layer's source", 1700000300, map[string]string{"app.conf": "a=2\n"}, "app"},
		{"the unit file", 1700000400, map[string]string{"app.service": strings.Replace(unit, "Description=app", "Description=the app", 1)}, "units,systemd"},
		{"the systemd: lines", 1700000450, map[string]string{"repro.yaml": strings.Replace(spec(`v2\n`), "enable: [app.service]", "enable: [app.service] # the app", 1)}, "systemd"},
		{"the config", 1700000500, map[string]string{"repro.yaml": strings.NewReplacer("cmd: [/bin/app]", "cmd: [/bin/app, -v]", "enable: [app.service]", "enable: [app.service] # the app").Replace(spec(`v2\n`))}, ""},
	}
	prev := first
	for i, s := range steps {
		commitAt(t, dir, s.at, s.files)
		got := build(fmt.Sprintf("step%d", i))
		if d := strings.Join(diff(prev, got), ","); d != s.want {
			t.Errorf("a commit that edits %s changed layers [%s], want [%s]", s.name, d, s.want)
		}
		prev = got
	}
}

// TestE2EVerifyShallowClone: an image built and signed in a full clone of
// a repository with epoch: git (its layers' epochs from three commits) is
// verified with repro verify --key from a shallow clone (git clone
// --depth 1), which cannot ask git when each layer last changed: the
// provenance's layer epochs make the rebuild match. Without --key the
// shallow rebuild differs, and says why.
func TestE2EVerifyShallowClone(t *testing.T) {
	origin := t.TempDir()
	spec := `version: 1
name: shallow
epoch: git
layers:
  - name: static
    contents:
      - path: /srv/static.txt
        source: static.txt
  - name: app
    contents:
      - path: /srv/app.txt
        source: app.txt
      - {path: /etc/motd, content: "hi\n"}
config:
  cmd: [/bin/true]
`
	gitAt(t, origin, 1700000000, "init", "-q", "-b", "main")
	commitAt(t, origin, 1700000000, map[string]string{"repro.yaml": spec, "static.txt": "static\n", "app.txt": "1\n"})
	repro(t, origin, "lock")
	commitAt(t, origin, 1700000100, nil)
	commitAt(t, origin, 1700000200, map[string]string{"app.txt": "2\n"})

	keys := t.TempDir()
	repro(t, keys, "keygen", "-q", "--out", "k")
	key, pub := filepath.Join(keys, "k.key"), filepath.Join(keys, "k.pub")
	tmp := t.TempDir()
	full := filepath.Join(tmp, "full")
	gitAt(t, tmp, 1700000300, "clone", "-q", "file://"+origin, full)
	layout := filepath.Join(tmp, "published")
	ref := "oci:" + layout + ":v1"
	iv := invocation{dir: full, env: []string{"COSIGN_PASSWORD="}}
	if r := iv.run(t, "build", "-q", "--version", "1.0.0", "--sign", "--key", key, "-o", ref); r.code != 0 {
		t.Fatalf("build --sign in the full clone: exit %d\n%s", r.code, r.stderr)
	}

	shallow := filepath.Join(tmp, "shallow")
	gitAt(t, tmp, 1700000300, "clone", "-q", "--depth", "1", "file://"+origin, shallow)
	if got := gitAt(t, shallow, 0, "rev-parse", "--is-shallow-repository"); got != "true" {
		t.Fatalf("the clone is not shallow: %s", got)
	}
	r := invocation{dir: shallow}.run(t, "verify", "--key", pub, "--against", ref)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "verified: ") {
		t.Fatalf("verify --key from a shallow clone: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	var out struct {
		Verified bool   `json:"verified"`
		Rebuilt  string `json:"rebuilt"`
	}
	j := invocation{dir: shallow}.run(t, "verify", "--json", "--key", pub, "--against", ref)
	if err := json.Unmarshal([]byte(j.stdout), &out); j.code != 0 || err != nil || !out.Verified || out.Rebuilt != e2eTagged(t, layout, "v1").Digest.String() {
		t.Errorf("verify --json --key from a shallow clone: exit %d, %v: %s\n%s", j.code, err, j.stdout, j.stderr)
	}

	// Without --key the rebuild has no recorded epochs, and a shallow
	// clone gives every layer HEAD's time: it differs, and says so.
	r = invocation{dir: shallow}.run(t, "verify", "--version", "1.0.0", "--against", ref)
	if r.code != 1 || !strings.Contains(r.stderr, "shallow") {
		t.Errorf("verify without --key from a shallow clone: exit %d, want 1 with a warning naming the shallow clone\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}
