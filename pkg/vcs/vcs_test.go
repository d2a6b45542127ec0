package vcs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reprobuild/repro/internal/testtool"
)

// repo is a git repository for tests, whose commits have the times given.
type repo struct {
	t   *testing.T
	dir string
}

func newRepo(t *testing.T) *repo {
	t.Helper()
	testtool.Require(t, "git")
	r := &repo{t: t, dir: t.TempDir()}
	r.git(0, "init", "-q", "-b", "main")
	return r
}

func (r *repo) git(at int64, args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.dir}, args...)...)
	date := "@" + itoa(at) + " +0000"
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@example.com", "GIT_AUTHOR_DATE="+date, "GIT_COMMITTER_DATE="+date, "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (r *repo) write(rel, content string) {
	r.t.Helper()
	p := filepath.Join(r.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *repo) commit(at int64) {
	r.t.Helper()
	r.git(at, "add", "-A")
	r.git(at, "commit", "-q", "-m", "at "+itoa(at))
}

func TestReadDirtyAndLabels(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t)
	r.write("a", "1\n")
	r.write(".gitignore", "out/\n")
	r.commit(1000)
	info, err := Read(ctx, r.dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Dirty || info.Shallow || info.CommitTime != 1000 || len(info.Commit) != 40 {
		t.Fatalf("clean repo: %+v", info)
	}
	if info.ShortCommit() != info.Commit[:12] || info.CommitOrUnknown() != info.Commit || info.Version() != info.Commit[:12] {
		t.Errorf("clean labels: %q %q %q", info.ShortCommit(), info.CommitOrUnknown(), info.Version())
	}
	// Untracked and ignored files do not make Read call it dirty.
	r.write("new", "x")
	r.write("out/layer", "x")
	if info, _ := Read(ctx, r.dir); info.Dirty {
		t.Error("an untracked file made the tree dirty for Read")
	}
	for name, change := range map[string]func(){
		"modified": func() { r.write("a", "2\n") },
		"staged":   func() { r.write("a", "2\n"); r.git(0, "add", "a") },
		"deleted":  func() { os.Remove(filepath.Join(r.dir, "a")) },
	} {
		t.Run(name, func(t *testing.T) {
			change()
			defer r.git(0, "checkout", "-q", "HEAD", "--", "a")
			defer r.git(0, "reset", "-q")
			info, err := Read(ctx, r.dir)
			if err != nil {
				t.Fatal(err)
			}
			if !info.Dirty {
				t.Fatal("not dirty")
			}
			if got, want := info.ShortCommit(), info.Commit[:12]+"-dirty"; got != want {
				t.Errorf("ShortCommit %q, want %q", got, want)
			}
			if got, want := info.CommitOrUnknown(), info.Commit+"-dirty"; got != want {
				t.Errorf("CommitOrUnknown %q, want %q", got, want)
			}
			// As git describe --dirty says it.
			if got, want := info.Version(), r.git(0, "describe", "--tags", "--always", "--abbrev=12", "--dirty"); got != want {
				t.Errorf("Version %q, git describe --dirty %q", got, want)
			}
		})
	}
	r.git(1001, "tag", "v1.2.3")
	r.write("a", "3\n")
	index := filepath.Join(r.dir, ".git", "index")
	before, _ := os.ReadFile(index)
	if info, _ := Read(ctx, r.dir); info.Version() != "v1.2.3-dirty" {
		t.Errorf("tagged, dirty: Version %q", info.Version())
	}
	// Reading wrote nothing: the index is as git left it.
	if after, _ := os.ReadFile(index); string(after) != string(before) {
		t.Error("Read rewrote the index")
	}
	outside := t.TempDir()
	if info, err := Read(ctx, outside); err != nil || info.Commit != "" || info.ShortCommit() != "unknown" || info.Version() != "" {
		t.Errorf("outside git: %+v, %v", info, err)
	}
}

func TestUntracked(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t)
	r.write(".gitignore", "*.o\n")
	r.write("src/a.go", "a")
	r.commit(1000)
	r.write("src/b.go", "b")
	r.write("src/c.o", "ignored")
	r.write("other/d", "not asked")
	r.write("weird[1]", "literal")
	got, err := Untracked(ctx, r.dir, []string{"src", "src/a.go", "weird[1]", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"src/b.go", "weird[1]"}, got); d != "" {
		t.Errorf("untracked (-want +got):\n%s", d)
	}
	// From a subdirectory (a context below the repository's top).
	got, err = Untracked(ctx, filepath.Join(r.dir, "src"), []string{"."})
	if err != nil || len(got) != 1 || got[0] != "b.go" {
		t.Errorf("from src: %v, %v", got, err)
	}
}

func TestHistory(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t)
	r.write("ctx/app/main.js", "1")
	r.write("ctx/app/main.js.map", "1")
	r.write("ctx/web/index.html", "1")
	r.write("ctx/old-name", "x")
	r.write("outside", "1")
	r.commit(1000)
	r.write("ctx/app/main.js.map", "2") // an excluded file changes
	r.write("outside", "2")             // a file outside the context changes
	r.commit(2000)
	r.git(3000, "mv", "ctx/old-name", "ctx/new-name") // a rename
	r.commit(3000)
	r.write("ctx/web/gone", "x")
	r.commit(3500)
	os.Remove(filepath.Join(r.dir, "ctx/web/gone")) // a deletion under a tree
	r.commit(4000)
	// A side branch merged: its commit counts with its own time; the
	// merge adds none.
	r.git(0, "checkout", "-q", "-b", "side", "HEAD~1")
	r.write("ctx/side", "s")
	r.commit(3600)
	r.git(0, "checkout", "-q", "main")
	r.git(5000, "merge", "-q", "--no-ff", "-m", "merge", "side")

	h, err := ReadHistory(ctx, filepath.Join(r.dir, "ctx"), false)
	if err != nil {
		t.Fatal(err)
	}
	noMaps := func(rel string) bool { return !strings.HasSuffix(rel, ".map") }
	for _, tc := range []struct {
		path string
		keep func(string) bool
		want int64
		ok   bool
	}{
		{"app/main.js", nil, 1000, true},
		{"app", nil, 2000, true},
		{"app", noMaps, 1000, true}, // excludes leave their commits out
		{"app/", noMaps, 1000, true},
		{"new-name", nil, 3000, true}, // a renamed file: the rename
		{"old-name", nil, 3000, true},
		{"web", nil, 4000, true}, // a deleted file under a tree counts
		{"web/index.html", nil, 1000, true},
		{"side", nil, 3600, true},
		{"", nil, 4000, true}, // the whole context
		{"missing", nil, 0, false},
		{"ap", nil, 0, false}, // a prefix of a name is not a parent
	} {
		got, ok := h.Newest(tc.path, tc.keep)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Newest(%q) = %d, %v; want %d, %v", tc.path, got, ok, tc.want, tc.ok)
		}
	}
	if _, ok := h.Newest("../outside", nil); ok {
		t.Error("a path outside the context has a time")
	}

	// A shallow clone: Read says so, and there is no history to read.
	clone := filepath.Join(t.TempDir(), "clone")
	r.git(0, "clone", "-q", "--depth", "1", "file://"+r.dir, clone)
	info, err := Read(ctx, clone)
	if err != nil || !info.Shallow || info.CommitTime != 5000 {
		t.Fatalf("shallow clone: %+v, %v", info, err)
	}
	if h, err := ReadHistory(ctx, clone, info.Shallow); h != nil || err != nil {
		t.Errorf("shallow history: %v, %v", h, err)
	}
}

func TestBlame(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t)
	r.write("repro.yaml", "a\nb\nc\n")
	r.commit(1000)
	r.write("repro.yaml", "a\nB\nc\nd\n")
	r.commit(2000)
	r.write("repro.yaml", "x\na\nB\nc\nd\n") // a line above, not committed
	got, err := Blame(ctx, r.dir, "repro.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]int64{0, 0, 1000, 2000, 1000, 2000}, got); d != "" {
		t.Errorf("blame (-want +got):\n%s", d)
	}
	r.write("new.yaml", "a\n")
	if got, err := Blame(ctx, r.dir, "new.yaml"); got != nil || err != nil {
		t.Errorf("untracked: %v, %v", got, err)
	}
	r.git(0, "add", "new.yaml")
	if got, err := Blame(ctx, r.dir, "new.yaml"); got != nil || err != nil {
		t.Errorf("added, not committed: %v, %v", got, err)
	}
}

// TestReadRoot: Info.Root is the top of the work tree, read from a
// subdirectory too and before the first commit; empty outside git.
func TestReadRoot(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t)
	root, err := filepath.EvalSymlinks(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(r.dir, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if info, err := Read(ctx, sub); err != nil || info.Root != root || info.Commit != "" {
		t.Errorf("no commits yet: %+v, %v", info, err)
	}
	r.write("a/b/f", "x")
	r.commit(1000)
	if info, err := Read(ctx, sub); err != nil || info.Root != root || info.CommitTime != 1000 {
		t.Errorf("in the repository: %+v, %v", info, err)
	}
	if info, err := Read(ctx, t.TempDir()); err != nil || info.Root != "" || info.Commit != "" {
		t.Errorf("outside git: %+v, %v", info, err)
	}
}

// TestCommitted: HEAD's files under a subdirectory, relative to it; an
// untracked, an ignored and an added-but-uncommitted file are not among
// them, nor a file outside the directory.
func TestCommitted(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t)
	if got, err := Committed(ctx, r.dir); err != nil || len(got) != 0 {
		t.Errorf("before the first commit: %v, %v", got, err)
	}
	r.write("ctx/a", "1")
	r.write("ctx/sub/b c", "1")
	r.write("ctx/.gitignore", "out/\n")
	r.write("top", "1")
	r.commit(1000)
	r.write("ctx/untracked", "1")
	r.write("ctx/out/built", "1")
	r.write("ctx/added", "1")
	r.git(0, "add", "ctx/added")
	got, err := Committed(ctx, filepath.Join(r.dir, "ctx"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"a": true, "sub/b c": true, ".gitignore": true}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("committed (-want +got):\n%s", d)
	}
}
