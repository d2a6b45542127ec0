package build

// Tests of format 2's layer epochs (package layer's doc): a commit that
// touches one layer's inputs changes that layer, the config and the
// manifest, and nothing else.

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/reprobuild/repro/internal/testtool"
	"github.com/reprobuild/repro/pkg/base"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/lock"
	"github.com/reprobuild/repro/pkg/spec"
)

// gitRepo is a work tree whose commits have the committer times given.
type gitRepo struct {
	t   *testing.T
	dir string
}

func (r *gitRepo) git(at int64, args ...string) {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.dir, "-c", "commit.gpgsign=false"}, args...)...)
	date := "@" + strconv.FormatInt(at, 10) + " +0000"
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.com", "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date, "GIT_CONFIG_GLOBAL=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func (r *gitRepo) write(rel, text string) {
	r.t.Helper()
	p := filepath.Join(r.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *gitRepo) commit(at int64) {
	r.t.Helper()
	r.git(at, "add", "-A")
	r.git(at, "commit", "-q", "-m", "at "+strconv.FormatInt(at, 10))
}

// epochsSpec has a package layer (os), a context layer (app: a tree with
// excludes), an inline layer (etc) and accounts. %s is the apt: block.
const epochsSpec = `version: 1
name: web
epoch: git
%slayers:
  - name: os
    packages: [nginx-light]
  - name: app
    contents:
      - path: /srv/app
        source: app
        exclude: ["*.map"]
  # the inline layer
  - name: etc
    contents:
      - {path: /etc/motd, content: "hello\n"}
      - {path: /run/web, type: dir}
      - {path: /etc/nginx/sites-enabled/default, type: symlink, target: ../sites-available/default}
accounts:
  groups: [{name: www-data, gid: 33}]
  users: [{name: www-data, uid: 33, gid: 33, home: /var/www}]
config:
  cmd: [/usr/sbin/nginx]
`

// built is one build's layers: digests and each layer's set of mtimes.
type built struct {
	digest string
	layers []string
	mtimes []string
	b      *Built
	log    string
}

func buildAt(t *testing.T, file string, c *cache.Cache, mod func(*Request)) built {
	t.Helper()
	var logs strings.Builder
	req := Request{File: file, Cache: c, WorkDir: t.TempDir(), Log: slog.New(slog.NewTextHandler(&logs, nil))}
	if mod != nil {
		mod(&req)
	}
	b, err := Run(context.Background(), req)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, logs.String())
	}
	out := built{digest: b.Descriptor.Digest.String(), b: b, log: logs.String()}
	ls, err := b.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		d, _ := l.Digest()
		out.layers = append(out.layers, d.String())
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int64]bool{}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			seen[h.ModTime.Unix()] = true
		}
		rc.Close()
		var ts []string
		for m := range seen {
			ts = append(ts, strconv.FormatInt(m, 10))
		}
		sort.Strings(ts)
		out.mtimes = append(out.mtimes, strings.Join(ts, ","))
	}
	return out
}

// changed names the layers (os, app, etc, accounts) whose digests differ.
func changed(a, b built) []string {
	names := []string{"os", "app", "etc", "accounts"}
	var out []string
	for i := range a.layers {
		if a.layers[i] != b.layers[i] {
			out = append(out, names[i])
		}
	}
	return out
}

func TestLayerEpochsOneCommitOneLayer(t *testing.T) {
	testtool.Require(t, "git")
	ar, k := aptWorld(t)
	r := &gitRepo{t: t, dir: t.TempDir()}
	r.git(0, "init", "-q", "-b", "main")
	aptBlock := fmt.Sprintf("apt:\n  sources: [{url: %s, suites: [stable]}]\n  keyring: keys/repo.asc\n", ar.URL)
	r.write("repro.yaml", fmt.Sprintf(epochsSpec, aptBlock))
	r.write("keys/repo.asc", string(k.Public))
	r.write("app/main.js", "one\n")
	r.write("app/main.js.map", "map one\n")
	r.write("app/lib/util.js", "util\n")
	file := filepath.Join(r.dir, "repro.yaml")
	c := cache.New(t.TempDir())
	s, err := spec.Load(file, spec.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lf, _, err := lock.Resolve(context.Background(), s, nil, false, base.NewResolver(c, nil), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := lf.Write(lock.PathFor(file)); err != nil {
		t.Fatal(err)
	}
	const t1 = 1700000000
	r.commit(t1)
	first := buildAt(t, file, c, nil)
	// The .debs' files keep their mtime (1600000000); what repro writes
	// in the package layer takes the newest of them; the rest is HEAD's.
	if want := []string{"1600000000", "1700000000", "1700000000", "1700000000"}; strings.Join(first.mtimes, " ") != strings.Join(want, " ") {
		t.Errorf("mtimes by layer %v, want %v", first.mtimes, want)
	}

	// A commit to the app: the app layer changes, and only it.
	r.write("app/main.js", "two\n")
	r.commit(t1 + 100)
	second := buildAt(t, file, c, nil)
	if got := changed(first, second); strings.Join(got, " ") != "app" {
		t.Errorf("a commit to app/main.js changed layers %v, want [app]", got)
	}
	if second.mtimes[1] != "1700000100" || second.digest == first.digest {
		t.Errorf("app layer mtimes %s (want 1700000100), image %s", second.mtimes[1], second.digest)
	}
	if got := second.b.LayerEpochs["layers[1]"]["linux/amd64"]; got != t1+100 {
		t.Errorf("LayerEpochs: %v", second.b.LayerEpochs)
	}

	// An excluded file, the config, and a comment on one of app's lines:
	// app is re-stamped (its lines changed), nothing else.
	r.write("app/main.js.map", "map two\n")
	spec2 := strings.Replace(fmt.Sprintf(epochsSpec, aptBlock), "cmd: [/usr/sbin/nginx]", "cmd: [/usr/sbin/nginx, -g, daemon off;]", 1)
	spec2 = strings.Replace(spec2, `        exclude: ["*.map"]`, `        exclude: ["*.map"] # source maps stay out`, 1)
	r.write("repro.yaml", spec2)
	r.commit(t1 + 200)
	third := buildAt(t, file, c, nil)
	if got := changed(second, third); strings.Join(got, " ") != "app" {
		t.Errorf("an excluded file, the config and a comment in app's lines changed layers %v, want [app]", got)
	}
	if third.mtimes[1] != "1700000200" || third.mtimes[2] != "1700000000" {
		t.Errorf("mtimes %v: app's lines re-stamp app, not etc", third.mtimes)
	}
	r.write("repro.yaml", strings.Replace(spec2, "cmd: [/usr/sbin/nginx, -g, daemon off;]", "cmd: [/usr/sbin/nginx]", 1))
	r.write("app/main.js.map", "map three\n")
	r.commit(t1 + 250)
	if got := changed(third, buildAt(t, file, c, nil)); len(got) != 0 {
		t.Errorf("the config and an excluded file changed layers %v", got)
	}

	// The inline layer's own line: etc changes, and only it.
	spec3 := strings.Replace(spec2, `content: "hello\n"`, `content: "hello, world\n"`, 1)
	spec3 = strings.Replace(spec3, "cmd: [/usr/sbin/nginx, -g, daemon off;]", "cmd: [/usr/sbin/nginx]", 1)
	r.write("repro.yaml", spec3)
	r.commit(t1 + 300)
	fourth := buildAt(t, file, c, nil)
	if got := changed(third, fourth); strings.Join(got, " ") != "etc" || fourth.mtimes[2] != "1700000300" {
		t.Errorf("an inline entry's line changed layers %v (etc's mtimes %s)", got, fourth.mtimes[2])
	}

	// A rename inside the tree: the renaming commit stamps the app layer.
	r.git(t1+400, "mv", "app/lib/util.js", "app/lib/helpers.js")
	r.commit(t1 + 400)
	fifth := buildAt(t, file, c, nil)
	if got := changed(fourth, fifth); strings.Join(got, " ") != "app" || fifth.mtimes[1] != "1700000400" {
		t.Errorf("a rename changed layers %v (app's mtimes %s)", got, fifth.mtimes[1])
	}

	// build --check's rebuild: the values and the layer epochs given, in
	// a copy without .git, give the same image.
	copyDir := t.TempDir()
	if out, err := exec.Command("cp", "-a", r.dir+"/.", copyDir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if err := os.RemoveAll(filepath.Join(copyDir, ".git")); err != nil {
		t.Fatal(err)
	}
	copyFile := filepath.Join(copyDir, "repro.yaml")
	again := buildAt(t, copyFile, c, func(q *Request) {
		q.Values, q.Epoch, q.LayerEpochs = &fifth.b.Values, &fifth.b.Epoch, fifth.b.LayerEpochs
	})
	if again.digest != fifth.digest {
		t.Errorf("rebuild with the layer epochs given: %s, first %s", again.digest, fifth.digest)
	}
	// Without them, every layer takes the build's epoch, with a warning.
	bare := buildAt(t, copyFile, c, func(q *Request) { q.Values, q.Epoch = &fifth.b.Values, &fifth.b.Epoch })
	if bare.mtimes[1] != "1700000400" || bare.mtimes[2] != "1700000400" || !strings.Contains(bare.log, "neither git nor the recorded layer epochs") {
		t.Errorf("no git, no layer epochs: mtimes %v, log %s", bare.mtimes, bare.log)
	}

	// A shallow clone: every context layer takes HEAD's time, with a
	// warning; given the full clone's layer epochs (as verify takes them
	// from the provenance), it builds the full clone's image.
	shallow := filepath.Join(t.TempDir(), "clone")
	r.git(0, "clone", "-q", "--depth", "1", "file://"+r.dir, shallow)
	sfile := filepath.Join(shallow, "repro.yaml")
	sh := buildAt(t, sfile, c, nil)
	if want := "1600000000 1700000400 1700000400 1700000400"; strings.Join(sh.mtimes, " ") != want || !strings.Contains(sh.log, "shallow git clone") {
		t.Errorf("shallow clone: mtimes %v, want %s; log %s", sh.mtimes, want, sh.log)
	}
	if sh.layers[0] != fifth.layers[0] {
		t.Error("shallow clone: the package layer differs from the full clone's")
	}
	if got := buildAt(t, sfile, c, func(q *Request) { q.LayerEpochs = fifth.b.LayerEpochs }); got.digest != fifth.digest {
		t.Errorf("shallow clone given the layer epochs: %s, full clone %s", got.digest, fifth.digest)
	}

	// An untracked file in the tree: the layer takes HEAD's time, and the
	// build is dirty.
	r.write("app/new.js", "new\n")
	dirty := buildAt(t, file, c, nil)
	if dirty.mtimes[1] != "1700000400" || !strings.HasSuffix(dirty.b.Values.GitCommit, "-dirty") {
		t.Errorf("untracked file: app mtimes %s, commit %s", dirty.mtimes[1], dirty.b.Values.GitCommit)
	}
	os.Remove(filepath.Join(r.dir, "app/new.js"))

	// Format 1: every entry has the build's epoch, as it always had.
	f1 := buildAt(t, file, c, func(q *Request) { q.Format = compress.Format1 })
	if want := "1700000400 1700000400 1700000400 1700000400"; strings.Join(f1.mtimes, " ") != want || f1.b.LayerEpochs != nil {
		t.Errorf("format 1: mtimes %v, want %s; layer epochs %v", f1.mtimes, want, f1.b.LayerEpochs)
	}

	// The provenance records the layer epochs.
	in, err := fifth.b.ProvenanceInput("test")
	if err != nil {
		t.Fatal(err)
	}
	if in.LayerEpochs["layers[1]"]["linux/amd64"] != t1+400 || in.LayerEpochs["layers[2]"]["linux/amd64"] != t1+300 || in.LayerEpochs["accounts"]["linux/amd64"] != t1 {
		t.Errorf("provenance layer epochs %v", in.LayerEpochs)
	}
	if _, ok := in.LayerEpochs["layers[0]"]; ok {
		t.Errorf("the package layer's epoch comes from its .debs, not git: %v", in.LayerEpochs)
	}
}

// TestLayerEpochsContextAbove: with context: .., sources are read from
// the parent's history and the spec's lines from the spec's own file.
func TestLayerEpochsContextAbove(t *testing.T) {
	testtool.Require(t, "git")
	r := &gitRepo{t: t, dir: t.TempDir()}
	r.git(0, "init", "-q", "-b", "main")
	text := "version: 1\nname: app\nepoch: git\ncontext: ..\nlayers:\n  - name: app\n    contents:\n      - {path: /srv, source: app}\n  - name: etc\n    contents:\n      - {path: /etc/motd, content: \"hi\\n\"}\n"
	r.write("specs/repro.yaml", text)
	r.write("app/index.html", "one\n")
	r.commit(1700000000)
	r.write("app/index.html", "two\n")
	r.commit(1700000100)
	r.write("specs/repro.yaml", strings.Replace(text, `"hi\n"`, `"hello\n"`, 1))
	r.commit(1700000200)
	r.write("specs/repro.yaml", strings.Replace(text, `"hi\n"`, `"hello\n"`, 1)+"config: {cmd: [x]}\n")
	r.commit(1700000300)
	b := buildAt(t, filepath.Join(r.dir, "specs", "repro.yaml"), cache.New(t.TempDir()), nil)
	if want := "1700000100 1700000200"; strings.Join(b.mtimes, " ") != want {
		t.Errorf("mtimes by layer %v, want %s", b.mtimes, want)
	}
}
