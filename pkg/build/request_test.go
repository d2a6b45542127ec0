package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reprobuild/repro/internal/testtool"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/output"
	"github.com/reprobuild/repro/pkg/spec"
	"github.com/reprobuild/repro/pkg/vcs"
)

// TestEpochOf: the request's fixed epoch wins, then the spec's (git or
// seconds), then $SOURCE_DATE_EPOCH as the caller read it, then 0; each
// with its source.
func TestEpochOf(t *testing.T) {
	at := func(s int64) time.Time { return time.Unix(s, 0).UTC() }
	env, fixed := at(5), &Epoch{Time: at(7), Source: "provenance"}
	git := vcs.Info{Commit: strings.Repeat("a", 40), CommitTime: 9}
	for _, c := range []struct {
		name string
		yaml string
		req  Request
		info vcs.Info
		want Epoch
	}{
		{"nothing", "", Request{}, vcs.Info{}, Epoch{at(0), EpochDefault}},
		{"env", "", Request{SourceDateEpoch: &env}, vcs.Info{}, Epoch{at(5), EpochEnv}},
		{"spec over env", "epoch: 3\n", Request{SourceDateEpoch: &env}, vcs.Info{}, Epoch{at(3), EpochSpec}},
		{"git over env", "epoch: git\n", Request{SourceDateEpoch: &env}, git, Epoch{at(9), EpochGit}},
		{"fixed over spec", "epoch: 3\n", Request{SourceDateEpoch: &env, Epoch: fixed}, git, Epoch{at(7), "provenance"}},
	} {
		s := setup(t, "version: 1\nname: a\n"+c.yaml+"layers:\n  - contents:\n      - {path: /a, content: a}\n", nil)
		got, err := epochOf(s, c.req, c.info)
		if err != nil || got != c.want {
			t.Errorf("%s: %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}
	s := setup(t, "version: 1\nname: a\nepoch: git\nlayers:\n  - contents:\n      - {path: /a, content: a}\n", nil)
	if _, err := epochOf(s, Request{}, vcs.Info{}); fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), "epoch: git") {
		t.Errorf("epoch: git outside git: %v", err)
	}
}

// TestRunValues: Run resolves the template values: the request's version
// and vars over the spec's, the epoch's date; and given values are taken
// whole.
func TestRunValues(t *testing.T) {
	s := setup(t, "version: 1\nname: app\nvars: {env: dev, keep: k}\nlayers:\n  - contents:\n      - {path: /a, content: a}\nannotations: {v: \"{{.Version}} {{.Vars.env}} {{.Vars.keep}} {{.Date}}\"}\n", nil)
	env := time.Unix(1700000000, 0)
	req := Request{File: filepath.Join(s.Dir, "repro.yaml"), SourceDateEpoch: &env, Version: "v2", Vars: map[string]string{"env": "prod"},
		Cache: cache.New(t.TempDir()), WorkDir: t.TempDir()}
	b, err := Run(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := spec.Values{Name: "app", Version: "v2", GitCommit: "unknown", GitShortCommit: "unknown", Epoch: 1700000000, Date: "20231114", Vars: map[string]string{"env": "prod", "keep": "k"}}
	if diff := cmp.Diff(want, b.Values); diff != "" || b.Epoch.Source != EpochEnv || b.Compression != compress.Gzip {
		t.Errorf("values (-want +got):\n%s\nepoch %+v compression %q", diff, b.Epoch, b.Compression)
	}
	// The same values given whole give the same image, with git not asked.
	req2 := req
	req2.SourceDateEpoch, req2.Version, req2.Vars = nil, "", nil
	req2.Values = &b.Values
	b2, err := Run(context.Background(), req2)
	if err != nil {
		t.Fatal(err)
	}
	if b2.Descriptor.Digest != b.Descriptor.Digest {
		t.Errorf("given values: %s, want %s", b2.Descriptor.Digest, b.Descriptor.Digest)
	}
}

// TestRequestJSON: the plain fields of a request survive JSON (build
// --check hands its rebuild one); the live ones (cache, logger) do not
// travel.
func TestRequestJSON(t *testing.T) {
	env := time.Unix(5, 0).UTC()
	in := Request{File: "/x/repro.yaml", SourceDateEpoch: &env, Epoch: &Epoch{Time: time.Unix(7, 0).UTC(), Source: EpochGiven},
		Version: "v", Vars: map[string]string{"a": "b"}, Values: &spec.Values{Name: "n", Epoch: 7},
		Platforms: []spec.Platform{{OS: "linux", Arch: "arm64", Variant: "v8"}}, Compression: compress.Zstd,
		Locked: true, AllowUnpinned: true, ScanBase: true, Insecure: []string{"reg:5000"},
		Cache: cache.New(t.TempDir()), Log: slog.New(slog.DiscardHandler)}
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Request
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	in.Cache, in.Log = nil, nil
	if diff := cmp.Diff(in, out, cmp.Comparer(func(a, b *cache.Cache) bool { return a == b })); diff != "" {
		t.Errorf("round trip (-in +out):\n%s", diff)
	}
}

// TestRunPolicies: a base given by tag with no lock entry is refused
// (ErrUnpinned, at the spec's base: line), and under Locked a spec that
// the lock does not pin is refused (ErrNotLocked); neither message names
// a flag.
func TestRunPolicies(t *testing.T) {
	s := setup(t, "version: 1\nname: app\nbase: registry.example/base:1\nlayers:\n  - contents:\n      - {path: /a, content: a}\n", nil)
	req := Request{File: filepath.Join(s.Dir, "repro.yaml"), Cache: cache.New(t.TempDir(), cache.Offline(true)), WorkDir: t.TempDir()}
	_, err := Run(context.Background(), req)
	var at *spec.Error
	if !errors.Is(err, ErrUnpinned) || !errors.As(err, &at) || fault.KindOf(err) != fault.BadInput || strings.Contains(err.Error(), "--") {
		t.Errorf("unpinned: %v", err)
	}
	req.Locked = true
	_, err = Run(context.Background(), req)
	if !errors.Is(err, ErrNotLocked) || fault.KindOf(err) != fault.BadInput || strings.Contains(err.Error(), "--") || !strings.Contains(err.Error(), "base registry.example/base:1") {
		t.Errorf("locked: %v", err)
	}
}

// TestRunScanBase: Request.ScanBase reaches the build: a base with a
// private key in it is reported, and the build goes on; without it the
// base is not read for secrets.
func TestRunScanBase(t *testing.T) {
	key := corpusFile(t, "private-key/ec.key")
	baseSpec := setup(t, "version: 1\nname: base\nlayers:\n  - contents:\n      - {path: /root/.ssh/id_ec, source: k}\nsecrets:\n  allow:\n    - {path: /root/.ssh/id_ec, reason: \"a base that leaks, for this test\"}\n", map[string]string{"k": key})
	res, err := Build(context.Background(), baseSpec, opts(t, baseSpec))
	if err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(t.TempDir(), "base")
	if err := output.Write(context.Background(), imageref.Reference{Transport: imageref.OCI, Path: layout, Tag: "v1"}, imageref.Artifact{Image: res.Image}, output.Options{}); err != nil {
		t.Fatal(err)
	}
	app := setup(t, fmt.Sprintf("version: 1\nname: app\nbase: oci:%s@%s\nlayers:\n  - contents:\n      - {path: /etc/motd, content: hi}\n", layout, res.Descriptor.Digest), nil)
	var log bytes.Buffer
	req := Request{File: filepath.Join(app.Dir, "repro.yaml"), ScanBase: true, Cache: cache.New(t.TempDir()), WorkDir: t.TempDir(),
		Log: slog.New(slog.NewTextHandler(&log, nil))}
	if _, err := Run(context.Background(), req); err != nil {
		t.Fatalf("a base's secret must not fail the build: %v", err)
	}
	if !strings.Contains(log.String(), "secret in the base (report only)") || !strings.Contains(log.String(), "/root/.ssh/id_ec: rule private-key") {
		t.Errorf("ScanBase: no report:\n%s", log.String())
	}
	log.Reset()
	req.ScanBase = false
	if _, err := Run(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "secret in the base") {
		t.Error("base scanned without ScanBase")
	}
}

// TestRunDirtyTree: a build from a tree with an uncommitted change to a
// tracked file, or an untracked file the spec reads, warns and its
// .GitShortCommit and .Version end in -dirty; a clean tree's do not.
func TestRunDirtyTree(t *testing.T) {
	testtool.Require(t, "git")
	dir := t.TempDir()
	gitRun := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("repro.yaml", "version: 1\nname: a\nlayers:\n  - name: app\n    contents:\n      - {path: /a, source: a.txt}\n      - {path: /v, content: \"{{.Version}} {{.GitShortCommit}}\"}\n")
	write("a.txt", "a\n")
	gitRun("init", "-q")
	gitRun("add", ".")
	gitRun("commit", "-q", "-m", "one")
	run := func() (spec.Values, string) {
		t.Helper()
		var logs strings.Builder
		b, err := Run(context.Background(), Request{File: filepath.Join(dir, "repro.yaml"), Cache: cache.New(t.TempDir()), WorkDir: t.TempDir(),
			Log: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return b.Values, logs.String()
	}
	v, logs := run()
	if strings.HasSuffix(v.Version, "-dirty") || strings.HasSuffix(v.GitShortCommit, "-dirty") || strings.Contains(logs, "dirty") {
		t.Errorf("clean tree: version %q, short commit %q, log %s", v.Version, v.GitShortCommit, logs)
	}
	write("a.txt", "b\n")
	v, logs = run()
	if !strings.HasSuffix(v.Version, "-dirty") || !strings.HasSuffix(v.GitShortCommit, "-dirty") || !strings.HasSuffix(v.GitCommit, "-dirty") || !strings.Contains(logs, "dirty git tree") {
		t.Errorf("modified tracked file: version %q, short commit %q, log %s", v.Version, v.GitShortCommit, logs)
	}
	gitRun("commit", "-q", "-am", "two")
	write("b.txt", "untracked\n")
	write("repro.yaml", "version: 1\nname: a\nlayers:\n  - name: app\n    contents:\n      - {path: /b, source: b.txt}\n")
	gitRun("commit", "-q", "-am", "three")
	v, logs = run()
	if !strings.HasSuffix(v.Version, "-dirty") || !strings.Contains(logs, "does not track") || !strings.Contains(logs, "b.txt") {
		t.Errorf("untracked source: version %q, log %s", v.Version, logs)
	}
}
