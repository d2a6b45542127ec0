package disk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/reprobuild/repro/pkg/rootfs"
)

// mke2fsConf replaces the host's /etc/mke2fs.conf, so that the host's
// defaults never shape the filesystem. Every value mke2fs would look up is
// here; the command line repeats the ones that matter most.
const mke2fsConf = `[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384
	reserved_ratio = 5.0
	lazy_itable_init = false
	lazy_journal_init = false
	hash_alg = half_md4

[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
	repro = {
		inode_ratio = 16384
	}
`

const ext4Block = 4096

// makeExt4 makes fsImage, an ext4 filesystem of size bytes holding the
// plan: mke2fs -d copies the tree that plan.write made, then one debugfs
// script gives every inode the image's metadata, and e2fsck checks it.
func makeExt4(ctx context.Context, b *builder, fsImage string, size int64) error {
	conf := filepath.Join(b.work, "mke2fs.conf")
	if err := os.WriteFile(conf, []byte(mke2fsConf), 0o600); err != nil {
		return err
	}
	env := append(b.env(), "MKE2FS_CONFIG="+conf)
	// Enough inodes for the image, whatever the ratio gives.
	inodes := max(size/16384, int64(len(b.plan.nodes))*5/4+256)
	f, err := os.OpenFile(fsImage, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	args := []string{
		"-q", "-F", "-t", "ext4", "-T", "repro", "-b", strconv.Itoa(ext4Block), "-I", "256",
		"-N", strconv.FormatInt(inodes, 10), "-m", "5", "-L", "root", "-U", b.ids.fs,
		"-E", "hash_seed=" + b.ids.hashSeed + ",root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0,nodiscard,no_copy_xattrs",
		"-d", b.tree, fsImage, strconv.FormatInt(size/ext4Block, 10),
	}
	if _, err := run(ctx, b.tools["mke2fs"], b.work, env, args...); err != nil {
		if te := (*ToolError)(nil); errors.As(err, &te) && te.outOfSpace() {
			return badSize(fmt.Errorf("the image does not fit in the filesystem: %w", err))
		}
		return err
	}
	script, err := debugfsScript(b.plan, filepath.Join(b.work, "xattr"))
	if err != nil {
		return err
	}
	scriptFile := filepath.Join(b.work, "debugfs.in")
	if err := os.WriteFile(scriptFile, []byte(script), 0o600); err != nil {
		return err
	}
	if err := debugfs(ctx, b.tools["debugfs"], b.work, env, scriptFile, fsImage); err != nil {
		return err
	}
	// A self-check before anything is written beside the output.
	if _, err := run(ctx, b.tools["e2fsck"], b.work, append(env, "E2FSCK_CONFIG=/dev/null"), "-fn", fsImage); err != nil {
		return fmt.Errorf("the filesystem repro made does not pass e2fsck -fn (a bug; please report it): %w", err)
	}
	return nil
}

// debugfs runs the script with -w and fails on any complaint: debugfs
// itself exits 0 whatever its commands do.
func debugfs(ctx context.Context, t *Tool, dir string, env []string, script, image string) error {
	cmd := []string{"-w", "-f", script, image}
	c := newCmd(ctx, t, dir, env, cmd...)
	if err := c.cmd.Run(); err != nil {
		return fmt.Errorf("debugfs: %w: %s", err, lastLines(c.stderr.String(), 12))
	}
	var complaints []string
	for _, line := range strings.Split(strings.TrimSpace(c.stderr.String()), "\n") {
		if line == "" || strings.HasPrefix(line, "debugfs ") && strings.Contains(line, "(") {
			continue // the version banner
		}
		complaints = append(complaints, line)
	}
	if len(complaints) > 0 {
		return fmt.Errorf("debugfs could not apply the image's metadata: %s", lastLines(strings.Join(complaints, "\n"), 12))
	}
	return nil
}

// quote makes s one argument of a debugfs command: debugfs (through libss)
// reads "…" as one word, with "" standing for a quote. Line breaks cannot
// be quoted; the plan skips names that hold one.
func quote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// typeBits are the file-type bits of an inode's mode.
func typeBits(k rootfs.Kind) int64 {
	switch k {
	case rootfs.Dir:
		return 0o040000
	case rootfs.Symlink:
		return 0o120000
	case rootfs.CharDev:
		return 0o020000
	case rootfs.BlockDev:
		return 0o060000
	case rootfs.FIFO:
		return 0o010000
	}
	return 0o100000
}

// timeFields splits t the way ext4 stores it: seconds (low 32 bits) and
// the extra field, nanoseconds << 2 with the epoch bits. Times before 1970
// or after 2446 (the last second ext4 can hold) are clamped.
func timeFields(t time.Time) (sec int64, extra uint32) {
	sec, ns := t.Unix(), int64(t.Nanosecond())
	if sec < 0 {
		sec, ns = 0, 0
	}
	if last := int64(1<<34 - 1<<31 - 1); sec > last {
		sec, ns = last, 0
	}
	epochBits := uint32((sec-int64(int32(sec)))>>32) & 3
	return sec, uint32(ns)<<2 | epochBits
}

// debugfsScript creates the device nodes and sets every inode's mode,
// owner, times and xattrs to the image's. Xattr values are written as files
// under xattrDir, since they may hold any byte.
func debugfsScript(p *plan, xattrDir string) (string, error) {
	if strings.ContainsAny(xattrDir, "\n\r") {
		return "", fmt.Errorf("the temporary directory %q holds a line break", xattrDir)
	}
	var b strings.Builder
	for _, n := range p.nodes {
		switch n.kind {
		case rootfs.CharDev, rootfs.BlockDev, rootfs.FIFO:
			fmt.Fprintf(&b, "cd %s\n", quote(path.Dir(n.path)))
			switch n.kind {
			case rootfs.CharDev:
				fmt.Fprintf(&b, "mknod %s c %d %d\n", quote(path.Base(n.path)), n.devmajor, n.devminor)
			case rootfs.BlockDev:
				fmt.Fprintf(&b, "mknod %s b %d %d\n", quote(path.Base(n.path)), n.devmajor, n.devminor)
			default:
				fmt.Fprintf(&b, "mknod %s p\n", quote(path.Base(n.path)))
			}
			b.WriteString("cd /\n")
		}
	}
	nx := 0
	for _, n := range p.nodes {
		if n.kind == rootfs.Hardlink || len(n.xattrs) == 0 {
			continue
		}
		names := make([]string, 0, len(n.xattrs))
		for k := range n.xattrs {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if nx == 0 {
				if err := os.Mkdir(xattrDir, 0o700); err != nil {
					return "", err
				}
			}
			vf := filepath.Join(xattrDir, strconv.Itoa(nx))
			nx++
			if err := os.WriteFile(vf, []byte(n.xattrs[k]), 0o600); err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "ea_set -f %s %s %s\n", quote(vf), quote(n.path), quote(k))
		}
	}
	// The inodes, directory by directory: after a cd, each command looks
	// up one name rather than a whole path (three times faster on Go's
	// source tree).
	byDir := map[string][]*node{}
	var dirs []string
	for _, n := range p.nodes {
		if n.kind == rootfs.Hardlink {
			continue // its group's regular file carries the inode's metadata
		}
		dir := path.Dir(n.path)
		if n.path == "/" {
			dir = "/"
		}
		if _, ok := byDir[dir]; !ok {
			dirs = append(dirs, dir)
		}
		byDir[dir] = append(byDir[dir], n)
	}
	sort.Strings(dirs)
	for _, dir := range dirs {
		fmt.Fprintf(&b, "cd %s\n", quote(dir))
		for _, n := range byDir[dir] {
			name := path.Base(n.path)
			switch {
			case n.path == "/":
				name = "."
			case strings.HasPrefix(name, "<"):
				name = "./" + name // "<12>" alone would name inode 12
			}
			q := quote(name)
			mode := n.mode & 0o7777
			if n.kind == rootfs.Symlink {
				mode = 0o777 // what Linux gives every symlink, whatever the layer says
			}
			fmt.Fprintf(&b, "sif %s mode 0%o\n", q, typeBits(n.kind)|mode)
			fmt.Fprintf(&b, "sif %s uid %d\nsif %s gid %d\n", q, n.uid, q, n.gid)
			sec, extra := timeFields(n.mtime)
			for _, field := range []string{"atime", "ctime", "mtime", "crtime"} {
				fmt.Fprintf(&b, "sif %s %s @%d\nsif %s %s_extra %d\n", q, field, sec, q, field, extra)
			}
		}
	}
	b.WriteString("cd /\n")
	if _, ok := p.byPath["/lost+found"]; !ok {
		// mke2fs made it at the fake time; give it the image's epoch like
		// every other implied directory.
		sec, extra := timeFields(p.epoch)
		q := quote("/lost+found")
		for _, field := range []string{"atime", "ctime", "mtime", "crtime"} {
			fmt.Fprintf(&b, "sif %s %s @%d\nsif %s %s_extra %d\n", q, field, sec, q, field, extra)
		}
	}
	return b.String(), nil
}
