package disk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/rootfs"
)

// erofs and squashfs read owners, modes and xattrs from the files that
// they pack, so what the host allows decides what they can carry: checkFS
// refuses, before any work, an image that they could not carry faithfully.

// checkFS refuses an image that the chosen filesystem cannot carry as it
// is, and drops what it can carry only without (device nodes on erofs).
// mkfs.erofs 1.5 and mksquashfs 4.5 take directory owners (erofs: every
// owner) from the files they pack, and only root can set those; a
// squashfs pseudo file can carry the owners of files but not of
// directories with children.
func (b *builder) checkFS() error {
	if b.opts.FS == Ext4 {
		return nil
	}
	for _, n := range b.plan.nodes {
		if n.kind == rootfs.Hardlink {
			continue
		}
		if n.kind == rootfs.Symlink && len(n.xattrs) > 0 {
			return fault.Bad(fmt.Errorf("%s: the symlink %s has xattrs, which repro cannot hand to the packer (%w)", b.opts.FS, n.path, ErrPackerLimit))
		}
		if b.opts.Root {
			continue
		}
		if n.uid != 0 || n.gid != 0 {
			return fault.Bad(fmt.Errorf("%s: %s is owned by %d:%d; the packer takes owners from the files it packs, which only root can set (%w)", b.opts.FS, n.path, n.uid, n.gid, ErrPackerLimit))
		}
		need := int64(0o500)
		if n.kind == rootfs.Regular && b.opts.FS == EROFS {
			need = 0o400
		} else if n.kind != rootfs.Dir {
			need = 0
		}
		if n.mode&need != need {
			return fault.Bad(fmt.Errorf("%s: %s has mode %04o, which the packer cannot read unless repro runs as root (%w)", b.opts.FS, n.path, n.mode, ErrPackerLimit))
		}
	}
	if b.opts.FS != EROFS {
		return nil
	}
	var keep []*node
	for _, n := range b.plan.nodes {
		switch n.kind {
		case rootfs.CharDev, rootfs.BlockDev, rootfs.FIFO:
			b.plan.skip(n.path, "erofs takes device nodes from the files it packs, and repro creates none on the host; an ext4 or squashfs disk carries them")
			b.log.Warn("not on the disk", "path", n.path, "reason", "a device node on erofs")
			continue
		}
		keep = append(keep, n)
	}
	b.plan.nodes = keep
	differ := 0
	for _, n := range b.plan.nodes {
		if n.kind != rootfs.Hardlink && !n.mtime.Equal(b.epoch) {
			differ++
		}
	}
	if differ > 0 {
		b.log.Warn("erofs: mkfs.erofs -T gives every file the image's epoch as its mtime", "files with another mtime", differ)
	}
	return nil
}

// setXattrs puts the image's xattrs on the tree's files, for the packers
// that read them from there. A symlink's are refused by checkFS.
func (b *builder) setXattrs() (bool, error) {
	has := false
	for _, n := range b.plan.nodes {
		if len(n.xattrs) == 0 || n.kind == rootfs.Hardlink || n.kind == rootfs.Symlink {
			continue
		}
		has = true
		names := make([]string, 0, len(n.xattrs))
		for k := range n.xattrs {
			names = append(names, k)
		}
		sort.Strings(names)
		p := filepath.Join(b.tree, n.rel())
		if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeSymlink != 0 {
			return false, fmt.Errorf("%s: not the file repro wrote", n.path)
		}
		for _, k := range names {
			if err := syscall.Setxattr(p, k, []byte(n.xattrs[k]), 0); err != nil {
				if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.ENOTSUP) {
					return false, fault.Bad(fmt.Errorf("%s: cannot give %s the xattr %s here (%v); the packer reads xattrs from files (%w)", b.opts.FS, n.path, k, err, ErrPackerLimit))
				}
				return false, fmt.Errorf("setting xattr %s on %s: %w", k, n.path, err)
			}
		}
	}
	return has, nil
}

// applyAttrs gives the tree's files the image's owners (as root), modes
// and directory times, for the packers that read them from there: every
// file for erofs; the directories for squashfs, whose pseudo file carries
// the rest. Children before parents, so that a directory's final mode
// cannot lock repro out of it; owners before modes, as chown clears
// setuid and setgid.
func (b *builder) applyAttrs() error {
	root, err := os.OpenRoot(b.tree)
	if err != nil {
		return err
	}
	defer root.Close()
	for i := len(b.plan.nodes) - 1; i >= 0; i-- {
		n := b.plan.nodes[i]
		if n.kind == rootfs.Hardlink || b.opts.FS == SquashFS && n.kind != rootfs.Dir {
			continue
		}
		if b.opts.Root {
			if err := root.Lchown(n.rel(), n.uid, n.gid); err != nil {
				return fmt.Errorf("chown %s: %w", n.path, err)
			}
		}
		if n.kind == rootfs.Symlink {
			continue
		}
		if err := root.Chmod(n.rel(), goMode(n.mode)); err != nil {
			return fmt.Errorf("chmod %s: %w", n.path, err)
		}
		if n.kind == rootfs.Dir {
			sec, _ := timeFields(n.mtime)
			t := time.Unix(sec, int64(n.mtime.Nanosecond()))
			if err := root.Chtimes(n.rel(), t, t); err != nil {
				return fmt.Errorf("setting the times of %s: %w", n.path, err)
			}
		}
	}
	return nil
}

// goMode converts permission bits with setuid, setgid and sticky to an
// os.FileMode.
func goMode(m int64) os.FileMode {
	mode := os.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

// makeEROFS packs the tree with mkfs.erofs: fixed time (-T) and UUID (-U).
func makeEROFS(ctx context.Context, b *builder, fsImage string) error {
	// Owners first: chown drops security.capability.
	if err := b.applyAttrs(); err != nil {
		return err
	}
	hasX, err := b.setXattrs()
	if err != nil {
		return err
	}
	args := []string{"-T" + strconv.FormatInt(max(b.epoch.Unix(), 0), 10), "-U" + b.ids.fs}
	if !b.opts.Root {
		args = append(args, "--all-root") // checkFS made sure that every owner is 0:0
	}
	if !hasX {
		args = append(args, "-x-1") // no xattrs at all: none of the host's either
	}
	out, err := run(ctx, b.tools["mkfs.erofs"], b.work, b.env(), append(args, fsImage, b.tree)...)
	if err != nil {
		return err
	}
	if line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n"); strings.HasPrefix(line, "mkfs.erofs") {
		b.tools["mkfs.erofs"].Version = line
	}
	if _, err := run(ctx, b.tools["fsck.erofs"], b.work, b.env(), fsImage); err != nil {
		return fmt.Errorf("the filesystem repro made does not pass fsck.erofs (a bug; please report it): %w", err)
	}
	return nil
}

// pseudoName escapes a path for a mksquashfs pseudo file: a backslash
// before every byte that is not plainly safe.
func pseudoName(rel string) string {
	var b strings.Builder
	for i := 0; i < len(rel); i++ {
		c := rel[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("/._-+,=@%:", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('\\')
		b.WriteByte(c)
	}
	return b.String()
}

// squashfsPseudo gives mksquashfs the mode, owner and time of every file
// but the directories (mksquashfs 4.5 cannot modify a directory that has
// pseudo children; applyAttrs sets theirs on the tree), and the device
// nodes, which repro never creates on the host.
func squashfsPseudo(p *plan) string {
	var b strings.Builder
	for _, n := range p.nodes {
		if n.kind == rootfs.Dir || n.kind == rootfs.Hardlink {
			continue
		}
		sec, _ := timeFields(n.mtime)
		name := pseudoName(n.rel())
		switch n.kind {
		case rootfs.CharDev:
			fmt.Fprintf(&b, "%s C %d %04o %d %d %d %d\n", name, sec, n.mode, n.uid, n.gid, n.devmajor, n.devminor)
		case rootfs.BlockDev:
			fmt.Fprintf(&b, "%s B %d %04o %d %d %d %d\n", name, sec, n.mode, n.uid, n.gid, n.devmajor, n.devminor)
		case rootfs.FIFO:
			fmt.Fprintf(&b, "%s I %d %04o %d %d f\n", name, sec, n.mode, n.uid, n.gid)
		default:
			fmt.Fprintf(&b, "%s M %d %04o %d %d\n", name, sec, n.mode, n.uid, n.gid)
		}
	}
	return b.String()
}

// makeSquashFS packs the tree with mksquashfs: fixed times, every mode and
// owner from a pseudo file, fixed compression.
func makeSquashFS(ctx context.Context, b *builder, fsImage string) error {
	if err := b.applyAttrs(); err != nil {
		return err
	}
	hasX, err := b.setXattrs()
	if err != nil {
		return err
	}
	pf := filepath.Join(b.work, "squashfs.pseudo")
	if err := os.WriteFile(pf, []byte(squashfsPseudo(b.plan)), 0o600); err != nil {
		return err
	}
	root := b.plan.byPath["/"]
	rootSec, _ := timeFields(root.mtime)
	epoch, _ := timeFields(b.epoch)
	args := []string{b.tree, fsImage, "-noappend", "-no-progress", "-quiet", "-exit-on-error", "-reproducible",
		"-comp", "gzip", "-Xcompression-level", "9", "-b", "131072",
		"-mkfs-time", strconv.FormatInt(epoch, 10),
		"-root-time", strconv.FormatInt(rootSec, 10), "-root-mode", fmt.Sprintf("%04o", root.mode),
		"-root-uid", strconv.Itoa(root.uid), "-root-gid", strconv.Itoa(root.gid),
		"-pf", pf,
	}
	uniform := true
	for _, n := range b.plan.nodes {
		if n.kind != rootfs.Hardlink && !n.mtime.Equal(b.epoch) {
			uniform = false
		}
	}
	if uniform {
		args = append(args, "-all-time", strconv.FormatInt(epoch, 10))
	}
	if !hasX {
		args = append(args, "-no-xattrs")
	}
	if !b.opts.Root {
		args = append(args, "-all-root") // checkFS made sure that every owner is 0:0
	}
	_, err = run(ctx, b.tools["mksquashfs"], b.work, b.env(), args...)
	return err
}
