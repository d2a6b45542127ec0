package vcs

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Info is what git says about the context's HEAD.
type Info struct {
	// Root is the top of the git work tree holding the context; empty
	// outside git. Paths recorded in provenance are relative to it.
	Root string
	// Commit is HEAD's full hex object name; empty outside git.
	Commit string
	// CommitTime is HEAD's committer time, in seconds since 1970.
	CommitTime int64
	// Describe is `git describe --tags --always --abbrev=12`, of HEAD
	// itself: Version adds the dirt.
	Describe string
	// Dirty is set when the working tree is not what HEAD holds: Read
	// sets it when a tracked file differs from HEAD (in the index or the
	// working tree), as git describe --dirty does; a caller sets it too
	// when the build reads files that git does not track (Untracked).
	Dirty bool
	// Shallow is set in a shallow clone, whose history stops short:
	// there, what changed when is unknowable (History).
	Shallow bool
}

// DirtySuffix marks a dirty tree's commit and version, as git describe
// --dirty marks it.
const DirtySuffix = "-dirty"

func (i Info) dirt() string {
	if i.Dirty {
		return DirtySuffix
	}
	return ""
}

// ShortCommit is the first 12 hex digits of Commit, whatever the clone's
// core.abbrev setting, and -dirty for a dirty tree; "unknown" outside git.
func (i Info) ShortCommit() string {
	if len(i.Commit) < 12 {
		return "unknown"
	}
	return i.Commit[:12] + i.dirt()
}

// CommitOrUnknown is Commit (with -dirty for a dirty tree), or "unknown"
// outside git.
func (i Info) CommitOrUnknown() string {
	if i.Commit == "" {
		return "unknown"
	}
	return i.Commit + i.dirt()
}

// Version is Describe with -dirty for a dirty tree (git describe --tags
// --always --abbrev=12 --dirty); empty outside git.
func (i Info) Version() string {
	if i.Describe == "" {
		return ""
	}
	return i.Describe + i.dirt()
}

// Read asks git about the repository holding dir. A dir outside any
// repository, or a machine without git, gives an empty Info and no error.
// It writes nothing to the repository (not even the index's stat cache).
func Read(ctx context.Context, dir string) (Info, error) {
	if _, err := exec.LookPath("git"); err != nil {
		return Info{}, nil
	}
	root, err := git(ctx, dir, "rev-parse", "--show-toplevel")
	if err != nil {
		return Info{}, nil // not a repository
	}
	out, err := git(ctx, dir, "log", "-1", "--format=%H %ct")
	if err != nil {
		return Info{Root: root}, nil // no commits yet
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		return Info{}, fmt.Errorf("reading git HEAD in %s: unexpected output %q", dir, out)
	}
	t, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return Info{}, fmt.Errorf("reading git HEAD in %s: %w", dir, err)
	}
	info := Info{Root: root, Commit: f[0], CommitTime: t}
	if d, err := git(ctx, dir, "describe", "--tags", "--always", "--abbrev=12"); err == nil {
		info.Describe = d
	}
	// Tracked files that differ from HEAD, in the index or the working
	// tree, anywhere in the repository: git describe --dirty's rule.
	st, err := git(ctx, dir, "status", "--porcelain=v1", "-z", "--untracked-files=no")
	if err != nil {
		return Info{}, fmt.Errorf("reading git status in %s: %w", dir, err)
	}
	info.Dirty = st != ""
	sh, err := git(ctx, dir, "rev-parse", "--is-shallow-repository")
	if err != nil {
		return Info{}, fmt.Errorf("reading git in %s: %w", dir, err)
	}
	info.Shallow = sh == "true"
	return info, nil
}

// Untracked returns the files at or under paths (slash-separated,
// relative to dir) that git neither tracks nor ignores, relative to dir
// and sorted. Ignored files (.gitignore: build outputs) are not listed.
func Untracked(ctx context.Context, dir string, paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	args := []string{"ls-files", "-z", "--others", "--exclude-standard", "--"}
	for _, p := range paths {
		// A literal pathspec: no glob in a file name is expanded.
		args = append(args, ":(literal)"+p)
	}
	out, err := git(ctx, dir, args...)
	if err != nil {
		return nil, fmt.Errorf("listing untracked files in %s: %w", dir, err)
	}
	return splitZ(out), nil
}

func splitZ(s string) []string {
	var out []string
	for _, p := range strings.Split(s, "\x00") {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// History is when each path under a directory last changed: for every
// path that any commit reachable from HEAD added, modified or deleted
// (renames count as a delete and an add), the newest committer time among
// those commits. Merge commits add no time of their own: the commits they
// bring in count, with their own times. Paths are slash-separated and
// relative to the directory.
type History struct {
	times map[string]int64
}

// ReadHistory reads the history of everything under dir, in one pass
// over the log. In a shallow clone it returns nil: the history stops at
// the clone's boundary, so a path's time there would depend on the depth.
func ReadHistory(ctx context.Context, dir string, shallow bool) (*History, error) {
	if shallow {
		return nil, nil
	}
	out, err := git(ctx, dir, "-c", "core.quotepath=off", "log", "--no-renames", "--format=%x01%ct", "--name-only", "-z", "--relative", "HEAD", "--", ".")
	if err != nil {
		return nil, fmt.Errorf("reading git history in %s: %w", dir, err)
	}
	h := &History{times: map[string]int64{}}
	var t int64
	for _, tok := range strings.Split(out, "\x00") {
		tok = strings.TrimPrefix(tok, "\n")
		switch {
		case tok == "":
		case tok[0] == '\x01':
			if t, err = strconv.ParseInt(tok[1:], 10, 64); err != nil {
				return nil, fmt.Errorf("reading git history in %s: %q: %w", dir, tok, err)
			}
		default:
			if t > h.times[tok] {
				h.times[tok] = t
			}
		}
	}
	return h, nil
}

// Newest is the newest committer time among the commits that touched p
// (a file), or anything under p (a directory) for which keep, given the
// path relative to p, says true. keep nil keeps everything. ok is false
// when no commit touched any of them.
func (h *History) Newest(p string, keep func(rel string) bool) (t int64, ok bool) {
	p = strings.TrimSuffix(path.Clean(p), "/")
	if p == "." {
		p = ""
	}
	for q, qt := range h.times {
		rel := ""
		switch {
		case q == p:
		case p == "":
			rel = q
		case strings.HasPrefix(q, p+"/"):
			rel = q[len(p)+1:]
		default:
			continue
		}
		if rel != "" && keep != nil && !keep(rel) {
			continue
		}
		if !ok || qt > t {
			t, ok = qt, true
		}
	}
	return t, ok
}

// Committed returns the files (and symlinks) that HEAD's tree holds at
// or under dir, slash-separated and relative to it: a file of the context
// that is not among them (untracked, ignored, or added but not committed)
// has no commit of its own. Without a commit it returns an empty set.
func Committed(ctx context.Context, dir string) (map[string]bool, error) {
	out, err := git(ctx, dir, "-c", "core.quotepath=off", "ls-tree", "-r", "-z", "--name-only", "HEAD")
	if err != nil {
		if _, herr := git(ctx, dir, "rev-parse", "--verify", "-q", "HEAD"); herr != nil {
			return map[string]bool{}, nil // no commit yet
		}
		return nil, fmt.Errorf("listing HEAD's files in %s: %w", dir, err)
	}
	set := map[string]bool{}
	for _, p := range splitZ(out) {
		set[p] = true
	}
	return set, nil
}

// Blame returns the committer time of the commit that last changed each
// line of file (relative to dir) as it is in the working tree, by line
// number counting from 1 (index 0 is unused). A line not committed yet
// has time 0; so has every line of a file git does not track.
func Blame(ctx context.Context, dir, file string) ([]int64, error) {
	inHead, err := git(ctx, dir, "ls-tree", "--name-only", "HEAD", "--", file)
	if err != nil {
		return nil, fmt.Errorf("git blame of %s: %w", file, err)
	}
	if inHead == "" {
		return nil, nil // not committed (untracked, or only added): no line is
	}
	out, err := git(ctx, dir, "blame", "--line-porcelain", "--", file)
	if err != nil {
		return nil, fmt.Errorf("git blame of %s: %w", file, err)
	}
	times := []int64{0}
	var cur int64
	uncommitted := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "\t"):
			if uncommitted {
				cur = 0
			}
			times = append(times, cur)
		case strings.HasPrefix(line, "committer-time "):
			cur, err = strconv.ParseInt(strings.TrimPrefix(line, "committer-time "), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("git blame of %s: %q: %w", file, line, err)
			}
		case len(line) >= 40 && isHex(line[:40]) && (len(line) == 40 || line[40] == ' '):
			uncommitted = strings.Trim(line[:40], "0") == ""
		}
	}
	return times, nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	// safe.directory: a context checked out by another user is still read.
	// --no-optional-locks: reading never rewrites the index.
	cmd := exec.CommandContext(ctx, "git", append([]string{"--no-optional-locks", "-c", "safe.directory=*", "-C", dir}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	out := stdout.String()
	if !slices.Contains(args, "-z") {
		out = strings.TrimSpace(out)
	}
	return out, nil
}
