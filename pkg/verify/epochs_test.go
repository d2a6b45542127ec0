package verify

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprobuild/repro/internal/testtool"
	"github.com/reprobuild/repro/pkg/attest"
	"github.com/reprobuild/repro/pkg/build"
	"github.com/reprobuild/repro/pkg/cache"
)

// TestLayerEpochsRebuild: with epoch: git, the layers' own epochs (format
// 2) survive build --check's copy without .git, and verify from a
// shallow clone takes them from the provenance, so both reproduce a
// build from a full clone whose layers have different epochs.
func TestLayerEpochsRebuild(t *testing.T) {
	testtool.Require(t, "git")
	ctx := context.Background()
	dir := t.TempDir()
	git := func(at string, args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t",
			"GIT_AUTHOR_DATE=@"+at+" +0000", "GIT_COMMITTER_DATE=@"+at+" +0000", "GIT_CONFIG_GLOBAL=/dev/null")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	put := func(name, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put("repro.yaml", "version: 1\nname: app\nepoch: git\nlayers:\n  - name: site\n    contents:\n      - {path: /srv, source: site}\n  - name: etc\n    contents:\n      - {path: /etc/motd, content: \"hi\\n\"}\n")
	put("site/index.html", "one\n")
	git("0", "init", "-q", "-b", "main")
	git("1700000000", "add", "-A")
	git("1700000000", "commit", "-q", "-m", "one")
	put("site/index.html", "two\n")
	git("1700000500", "commit", "-q", "-am", "two")
	file := filepath.Join(dir, "repro.yaml")
	b, err := build.Run(ctx, build.Request{File: file, Version: "1.0.0", Cache: cache.New(t.TempDir()), WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.LayerEpochs["layers[0]"]["linux/amd64"]; got != 1700000500 || b.LayerEpochs["layers[1]"]["linux/amd64"] != 1700000000 {
		t.Fatalf("layer epochs %v", b.LayerEpochs)
	}

	// build --check: a copy without .git, the epochs handed over.
	req := build.Request{File: file, Version: "1.0.0", Cache: cache.New(t.TempDir()), WorkDir: t.TempDir()}
	res, err := Check(ctx, b, req, CheckOptions{TempDir: t.TempDir()})
	if err != nil || !res.Identical() {
		t.Errorf("check: %+v, %v", res, err)
	}

	// verify from a shallow clone, the provenance's epochs taken.
	raw, err := b.Provenance("test")
	if err != nil {
		t.Fatal(err)
	}
	p, err := attest.ParseProvenance(raw)
	if err != nil {
		t.Fatal(err)
	}
	clone := filepath.Join(t.TempDir(), "clone")
	git("0", "clone", "-q", "--depth", "1", "file://"+dir, clone)
	vreq := build.Request{File: filepath.Join(clone, "repro.yaml"), Cache: cache.New(t.TempDir()), WorkDir: t.TempDir()}
	notes, err := FromProvenance(&vreq, p, Given{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(notes, "\n"), "epochs of 2 layers") {
		t.Errorf("notes %q", notes)
	}
	vres, _, err := Rebuild(ctx, vreq, Target{Digest: b.Descriptor.Digest.String()})
	if err != nil || !vres.Verified {
		t.Errorf("verify from a shallow clone: %+v, %v", vres, err)
	}
	// Without the provenance's epochs the shallow clone cannot say them.
	bare := build.Request{File: filepath.Join(clone, "repro.yaml"), Version: "1.0.0", Cache: cache.New(t.TempDir()), WorkDir: t.TempDir()}
	if sres, _, err := Rebuild(ctx, bare, Target{Digest: b.Descriptor.Digest.String()}); err != nil || sres.Verified {
		t.Errorf("shallow clone without the layer epochs: %+v, %v (the etc layer should take HEAD's time)", sres, err)
	}
}
