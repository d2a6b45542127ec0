package vcs

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// Info is what git says about the context's HEAD.
type Info struct {
	// Commit is HEAD's full hex object name; empty outside git.
	Commit string
	// CommitTime is HEAD's committer time, in seconds since 1970.
	CommitTime int64
	// Describe is `git describe --tags --always --abbrev=12`.
	Describe string
}

// ShortCommit is the first 12 hex digits of Commit, whatever the clone's
// core.abbrev setting; "unknown" outside git.
func (i Info) ShortCommit() string {
	if len(i.Commit) < 12 {
		return "unknown"
	}
	return i.Commit[:12]
}

// CommitOrUnknown is Commit, or "unknown" outside git.
func (i Info) CommitOrUnknown() string {
	if i.Commit == "" {
		return "unknown"
	}
	return i.Commit
}

// Read asks git about the repository holding dir. A dir outside any
// repository, or a machine without git, gives an empty Info and no error.
func Read(ctx context.Context, dir string) (Info, error) {
	if _, err := exec.LookPath("git"); err != nil {
		return Info{}, nil
	}
	out, err := git(ctx, dir, "log", "-1", "--format=%H %ct")
	if err != nil {
		return Info{}, nil // not a repository, or no commits yet
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		return Info{}, fmt.Errorf("reading git HEAD in %s: unexpected output %q", dir, out)
	}
	t, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return Info{}, fmt.Errorf("reading git HEAD in %s: %w", dir, err)
	}
	info := Info{Commit: f[0], CommitTime: t}
	if d, err := git(ctx, dir, "describe", "--tags", "--always", "--abbrev=12"); err == nil {
		info.Describe = d
	}
	return info, nil
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	// safe.directory: a context checked out by another user is still read.
	cmd := exec.CommandContext(ctx, "git", append([]string{"-c", "safe.directory=*", "-C", dir}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}
