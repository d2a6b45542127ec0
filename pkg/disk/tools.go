package disk

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/reprobuild/repro/pkg/fault"
)

// Tool is a host program that a disk needs.
type Tool struct {
	Name    string `json:"name"`
	Package string `json:"package"` // the Debian package that ships it
	Path    string `json:"-"`
	Version string `json:"version"`
	// versionArgs print the version; nil: the version comes from the run.
	versionArgs []string
}

// toolTable lists every tool, with its Debian package and how it tells its
// version.
var toolTable = map[string]Tool{
	"mke2fs":     {Name: "mke2fs", Package: "e2fsprogs", versionArgs: []string{"-V"}},
	"debugfs":    {Name: "debugfs", Package: "e2fsprogs", versionArgs: []string{"-V"}},
	"e2fsck":     {Name: "e2fsck", Package: "e2fsprogs", versionArgs: []string{"-V"}},
	"sfdisk":     {Name: "sfdisk", Package: "fdisk", versionArgs: []string{"--version"}},
	"qemu-img":   {Name: "qemu-img", Package: "qemu-utils", versionArgs: []string{"--version"}},
	"mkfs.erofs": {Name: "mkfs.erofs", Package: "erofs-utils"},
	"fsck.erofs": {Name: "fsck.erofs", Package: "erofs-utils", versionArgs: []string{"-V"}},
	"mksquashfs": {Name: "mksquashfs", Package: "squashfs-tools", versionArgs: []string{"-version"}},
}

// sbinDirs are searched after PATH: Debian keeps mke2fs and sfdisk in
// /usr/sbin, which an ordinary user's PATH often lacks.
var sbinDirs = []string{"/usr/local/sbin", "/usr/sbin", "/sbin"}

// requiredTools names the tools a disk of this filesystem and format needs.
func requiredTools(fsType FSType, format Format) []string {
	names := []string{"sfdisk"}
	switch fsType {
	case Ext4:
		names = append(names, "mke2fs", "debugfs", "e2fsck")
	case EROFS:
		names = append(names, "mkfs.erofs", "fsck.erofs")
	case SquashFS:
		names = append(names, "mksquashfs")
	}
	if format == QCOW2 || format == VMDK {
		names = append(names, "qemu-img")
	}
	return names
}

// FindTools looks up every tool that a disk of this filesystem and format
// needs, in the directories of path (a PATH value) and then the sbin
// directories. A missing tool is an operational error that names every
// missing tool and its Debian package.
func FindTools(fsType FSType, format Format, path string) (map[string]*Tool, error) {
	found := map[string]*Tool{}
	var missing, pkgs []string
	for _, name := range requiredTools(fsType, format) {
		t := toolTable[name]
		p := lookPath(name, path)
		if p == "" {
			missing = append(missing, name)
			if !contains(pkgs, t.Package) {
				pkgs = append(pkgs, t.Package)
			}
			continue
		}
		t.Path = p
		found[name] = &t
	}
	if len(missing) > 0 {
		return nil, fault.Op(fmt.Errorf("%s not found (looked in PATH and %s); install the Debian package %s (apt-get install %s)",
			strings.Join(missing, ", "), strings.Join(sbinDirs, ", "), strings.Join(pkgs, ", "), strings.Join(pkgs, " ")))
	}
	return found, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// lookPath finds an executable regular file called name.
func lookPath(name, path string) string {
	dirs := append(filepath.SplitList(path), sbinDirs...)
	for _, d := range dirs {
		if d == "" || !filepath.IsAbs(d) {
			continue // a relative PATH entry would depend on the working directory
		}
		p := filepath.Join(d, name)
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// versions fills in each tool's version, from its first line of output.
func versions(ctx context.Context, tools map[string]*Tool, env []string) error {
	for _, t := range tools {
		if t.versionArgs == nil {
			continue
		}
		cmd := exec.CommandContext(ctx, t.Path, t.versionArgs...)
		cmd.Env = env
		out, _ := cmd.CombinedOutput() // some print their version and exit 1
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if line == "" {
			return fault.Op(fmt.Errorf("%s %s printed no version", t.Path, strings.Join(t.versionArgs, " ")))
		}
		t.Version = strings.TrimSpace(line)
	}
	return nil
}

// run runs a tool in dir with env and returns its stdout; a failure names
// the tool and quotes what it printed.
func run(ctx context.Context, t *Tool, dir string, env []string, args ...string) ([]byte, error) {
	return runStdin(ctx, t, dir, env, nil, args...)
}

// runStdin is run with stdin.
func runStdin(ctx context.Context, t *Tool, dir string, env []string, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, t.Path, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return nil, &ToolError{Tool: t.Name, Err: err, Output: msg}
	}
	return stdout.Bytes(), nil
}

// ToolError is a host tool that failed: its name, how it ended and what it
// said (its standard error, or its output when that was empty).
type ToolError struct {
	Tool   string
	Err    error
	Output string
}

func (e *ToolError) Error() string {
	return fmt.Sprintf("%s: %v: %s", e.Tool, e.Err, lastLines(e.Output, 12))
}

func (e *ToolError) Unwrap() error { return e.Err }

// outOfSpace reports whether the tool said it ran out of room: mke2fs's
// "Could not allocate block", or the C library's strerror(ENOSPC), "No
// space left on device". The tool's output is the only word it gives of
// why it failed.
func (e *ToolError) outOfSpace() bool {
	return strings.Contains(e.Output, "Could not allocate") || strings.Contains(e.Output, "No space left")
}

// command is a prepared run whose output is kept.
type command struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
}

func newCmd(ctx context.Context, t *Tool, dir string, env []string, args ...string) *command {
	c := &command{cmd: exec.CommandContext(ctx, t.Path, args...)}
	c.cmd.Dir, c.cmd.Env = dir, env
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	return c
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append([]string{"…"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
