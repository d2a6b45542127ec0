package disk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reprobuild/repro/internal/atomicfs"
	"github.com/reprobuild/repro/internal/units"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/rootfs"
)

// Layout names the disk layout this package writes (see the package
// documentation). The same image gives the same bytes within one layout.
const Layout = "repro-disk/1"

// Format is the disk file's format.
type Format string

const (
	Raw   Format = "raw"
	QCOW2 Format = "qcow2"
	VMDK  Format = "vmdk"
	// VHD is a fixed VHD: the raw disk and a 512-byte footer, as Azure
	// takes it.
	VHD Format = "vhd"
	// GCE is the raw disk as disk.raw in a gzip-compressed GNU tar, as
	// Google Compute Engine imports it.
	GCE Format = "gce"
)

// FSType is the root partition's filesystem.
type FSType string

const (
	Ext4     FSType = "ext4"
	EROFS    FSType = "erofs"
	SquashFS FSType = "squashfs"
)

// Formats and FSTypes list the accepted values, for flag help.
var (
	Formats = []Format{Raw, QCOW2, VMDK, VHD, GCE}
	FSTypes = []FSType{Ext4, EROFS, SquashFS}
)

// Options shape a disk.
type Options struct {
	Format Format
	FS     FSType
	// Size is the disk's size in bytes: a multiple of 1 MiB, at least
	// MinSize.
	Size int64
	// TempDir holds the private work directory (the flattened tree and the
	// raw filesystem); the caller takes it from $TMPDIR.
	TempDir string
	// Path is the PATH to find host tools in (then the sbin directories).
	Path string
	// Tools, when set, are the tools FindTools found; else Write finds them.
	Tools map[string]*Tool
	// Root says that the process may set any owner on files (euid 0).
	// Only erofs needs it, for per-file owners.
	Root bool
	// Log receives warnings (skipped files) and progress; nil discards.
	Log *slog.Logger
	// Boot makes the disk UEFI-bootable (see BootLayout): an EFI system
	// partition with the image's systemd-boot, kernel and an initramfs.
	Boot bool
	// Cmdline is added to the default kernel command line (Boot only).
	Cmdline string
}

// Record is the JSON record written beside the disk (FILE.json). Every
// field is fixed by the image and the options; none depends on the host
// but the tool versions.
type Record struct {
	Layout   string `json:"layout"`
	Image    string `json:"image"`           // the image's manifest digest
	Index    string `json:"index,omitempty"` // the index it was chosen from
	Platform string `json:"platform"`
	Disk     struct {
		File        string `json:"file"` // base name
		SHA256      string `json:"sha256"`
		Size        int64  `json:"size"`        // bytes of the file
		VirtualSize int64  `json:"virtualSize"` // bytes of the disk it holds
		Format      Format `json:"format"`
	} `json:"disk"`
	PartitionTable struct {
		Type          string `json:"type"`
		DiskGUID      string `json:"diskGUID"`
		PartitionGUID string `json:"partitionGUID"`
		PartitionType string `json:"partitionType"`
		Start         int64  `json:"start"` // bytes
		Size          int64  `json:"size"`
	} `json:"partitionTable"`
	Filesystem struct {
		Type  FSType `json:"type"`
		UUID  string `json:"uuid"`
		Label string `json:"label,omitempty"`
		Files int    `json:"files"` // paths of the image it holds
	} `json:"filesystem"`
	Tools   []Tool    `json:"tools"`
	Skipped []Skipped `json:"skipped,omitempty"`
	// Boot says how the disk boots, when it does.
	Boot *Boot `json:"boot,omitempty"`
}

// ParseSize reads a size like 2G, 256M, 512MiB or 1073741824 (bytes).
// Suffixes are binary (K = 1024), as qemu-img reads them.
func ParseSize(s string) (int64, error) {
	size, err := units.ParseBytes(s)
	if err != nil || size <= 0 {
		return 0, fault.Bad(fmt.Errorf("disk size %q is not a size; write it like 2G, 256M or 512MiB", s))
	}
	if size > 1<<50 {
		return 0, fault.Bad(fmt.Errorf("disk size %s is above the largest disk, 1 PiB", s))
	}
	if size%alignment != 0 {
		return 0, fault.Bad(fmt.Errorf("disk size %s is not a whole number of MiB", s))
	}
	if size < MinSize {
		return 0, fault.Bad(fmt.Errorf("disk size %s is below the smallest disk, %s", s, human(MinSize)))
	}
	return size, nil
}

// FormatFor guesses the format from an output file's name: .qcow2,
// .vmdk and .vhd name theirs, .tar.gz is gce; anything else is raw.
func FormatFor(file string) Format {
	if strings.HasSuffix(strings.ToLower(file), ".tar.gz") {
		return GCE
	}
	switch strings.ToLower(filepath.Ext(file)) {
	case ".qcow2":
		return QCOW2
	case ".vmdk":
		return VMDK
	case ".vhd":
		return VHD
	}
	return Raw
}

// Validate checks the options that need no host.
func (o *Options) Validate() error {
	switch o.Format {
	case Raw, QCOW2, VMDK, VHD, GCE:
	default:
		return fault.Bad(fmt.Errorf("disk format %q: use raw, qcow2, vmdk, vhd or gce", o.Format))
	}
	switch o.FS {
	case Ext4, EROFS, SquashFS:
	default:
		return fault.Bad(fmt.Errorf("filesystem %q: use ext4, erofs or squashfs", o.FS))
	}
	if o.Size < MinSize || o.Size%alignment != 0 {
		return fault.Bad(fmt.Errorf("the disk size must be a whole number of MiB, at least %s", human(MinSize)))
	}
	if o.Boot && o.Size < MinSize+espSize {
		return fault.Bad(fmt.Errorf("a bootable disk needs at least %s (a %s EFI system partition and the root): %w", human(MinSize+espSize), human(espSize), ErrTooSmall))
	}
	if !o.Boot && o.Cmdline != "" {
		return fault.Bad(ErrCmdlineNeedsBoot)
	}
	return nil
}

// builder holds one run's state.
type builder struct {
	opts     Options
	log      *slog.Logger
	tools    map[string]*Tool
	work     string // private work directory
	tree     string // the flattened filesystem, under work
	plan     *plan
	ids      *identifiers
	epoch    time.Time
	fakeTime int64
}

// env is the whole environment of every tool: nothing of the caller's
// environment but PATH, so that locale, time zone and tool configuration
// files of the host play no part.
func (b *builder) env() []string {
	return []string{
		"PATH=" + b.opts.Path,
		"LC_ALL=C",
		"TZ=UTC",
		"TMPDIR=" + b.work,
		"HOME=" + b.work,
		"E2FSPROGS_FAKE_TIME=" + strconv.FormatInt(b.fakeTime, 10),
	}
}

// Write makes the disk of p's image at out, and the record at
// out+".json", with p.Index (when not empty) recorded as the index the
// image was chosen from (imageref.Artifact.Pick gives p). Both files appear
// together, renamed from a staging directory beside out; on failure
// neither does.
func Write(ctx context.Context, p imageref.Picked, out string, opts Options) (*Record, error) {
	img := p.Image
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	b := &builder{opts: opts, log: opts.Log}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.tools = opts.Tools
	if b.tools == nil {
		var err error
		if b.tools, err = FindTools(opts.FS, opts.Format, opts.Path); err != nil {
			return nil, err
		}
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	b.ids = newIdentifiers(digest.String())
	b.epoch = time.Unix(0, 0).UTC()
	if !cf.Created.IsZero() && cf.Created.Unix() > 0 {
		b.epoch = cf.Created.Time.UTC()
	}
	// e2fsprogs takes a fake time of 0 as "none" and reads the clock.
	b.fakeTime = max(b.epoch.Unix(), 1)

	// Stage beside the output, so that the final rename is atomic; first,
	// so that an unwritable destination fails before the work.
	out, err = filepath.Abs(out)
	if err != nil {
		return nil, fault.Op(err)
	}
	if fi, err := os.Stat(out); err == nil && fi.IsDir() {
		return nil, fault.Bad(fmt.Errorf("%s is %w", out, ErrOutputIsDir))
	}
	created, err := atomicfs.MkdirAll(filepath.Dir(out))
	if err != nil {
		return nil, fault.Op(fmt.Errorf("creating the output directory: %w", err))
	}
	committed := false
	defer func() {
		if !committed {
			atomicfs.RemoveEmpty(created) // a failed disk leaves no directories behind
		}
	}()
	stage, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return nil, fault.Op(fmt.Errorf("creating a staging directory beside %s: %w", out, err))
	}
	defer os.RemoveAll(stage)

	fsys, err := rootfs.Read(ctx, img)
	if err != nil {
		err = fmt.Errorf("reading the image's filesystem: %w", err)
		if fault.KindOf(err) == fault.BadInput { // a hostile layer (pkg/rootfs limits)
			return nil, err
		}
		return nil, fault.Op(err)
	}
	b.plan = newPlan(fsys, b.epoch)
	for _, s := range b.plan.skipped {
		b.log.Warn("not on the disk", "path", s.Path, "reason", s.Reason)
	}
	part := layoutFor(opts.Size)
	var esp *partition
	var bf *bootFiles
	if opts.Boot {
		if bf, err = b.plan.findBoot(cf.Architecture); err != nil {
			return nil, err
		}
		esp = &partition{start: alignment, size: espSize}
		part = partition{start: alignment + espSize, size: opts.Size - 2*alignment - espSize}
	}
	if err := b.plan.checkFits(part.size, opts.Size); err != nil {
		return nil, err
	}
	if err := b.checkFS(); err != nil {
		return nil, err
	}

	b.work, err = os.MkdirTemp(opts.TempDir, "repro-disk-")
	if err != nil {
		return nil, fault.Op(fmt.Errorf("creating the work directory: %w", err))
	}
	defer removeAll(b.work)
	if err := versions(ctx, b.tools, b.env()); err != nil {
		return nil, err
	}
	b.tree = filepath.Join(b.work, "tree")
	if err := os.Mkdir(b.tree, 0o700); err != nil {
		return nil, fault.Op(err)
	}
	b.log.Debug("flattening", "files", len(b.plan.nodes), "bytes", b.plan.dataBytes)
	if err := b.plan.write(ctx, b.tree, img, fsys); err != nil {
		return nil, classify(err)
	}
	var boot *bootSetup
	if opts.Boot {
		if boot, err = b.makeBoot(bf, opts.Cmdline, *esp, part); err != nil {
			return nil, classify(err)
		}
	}

	fsImage := filepath.Join(b.work, "fs.img")
	b.log.Debug("making the filesystem", "type", opts.FS, "bytes", part.size)
	switch opts.FS {
	case Ext4:
		err = makeExt4(ctx, b, fsImage, part.size)
	case EROFS:
		err = makeEROFS(ctx, b, fsImage)
	case SquashFS:
		err = makeSquashFS(ctx, b, fsImage)
	}
	if err != nil {
		return nil, classify(err)
	}
	// The tree is packed: remove it while the disk is assembled.
	treeGone := make(chan struct{})
	go func() { removeAll(b.tree); close(treeGone) }()
	defer func() { <-treeGone }()
	if fi, err := os.Stat(fsImage); err != nil {
		return nil, fault.Op(err)
	} else if fi.Size() > part.size {
		return nil, badSize(fmt.Errorf("the %s filesystem takes %s, more than the %s partition", opts.FS, human(fi.Size()), human(part.size)))
	}

	// Named as the output: a vmdk names its own file inside.
	staged := filepath.Join(stage, filepath.Base(out))
	raw := staged
	if opts.Format != Raw && opts.Format != VHD {
		raw = filepath.Join(b.work, "disk.raw")
	}
	typ, isRoot := rootType(cf.Architecture)
	if !isRoot {
		b.log.Warn("no Linux root partition type for this architecture; the partition is typed as Linux filesystem data", "arch", cf.Architecture)
	}
	if err := b.assemble(ctx, raw, fsImage, part, typ, boot); err != nil {
		return nil, classify(err)
	}
	switch opts.Format {
	case VHD:
		err = appendVHDFooter(staged, opts.Size, b.epoch, digest.String())
	case GCE:
		err = writeGCE(staged, raw, b.epoch)
	case QCOW2:
		err = b.convert(ctx, raw, staged, "qcow2", "compat=1.1,cluster_size=65536,refcount_bits=16,lazy_refcounts=off,preallocation=off,extended_l2=off,compression_type=zlib")
	case VMDK:
		err = b.convert(ctx, raw, staged, "vmdk", "subformat=monolithicSparse,adapter_type=ide,hwversion=4")
		if err == nil {
			err = fixVMDKCID(staged, b.ids.vmdkCID)
		}
	}
	if err != nil {
		return nil, classify(err)
	}

	rec := &Record{Layout: Layout, Image: digest.String(), Index: p.Index, Platform: imageref.PlatformName(imageref.ConfigPlatform(cf))}
	sum, size, err := hashFile(staged)
	if err != nil {
		return nil, fault.Op(err)
	}
	rec.Disk.File, rec.Disk.SHA256, rec.Disk.Size, rec.Disk.VirtualSize, rec.Disk.Format = filepath.Base(out), sum, size, opts.Size, opts.Format
	rec.PartitionTable.Type, rec.PartitionTable.DiskGUID, rec.PartitionTable.PartitionGUID = "gpt", strings.ToUpper(b.ids.disk), strings.ToUpper(b.ids.partition)
	rec.PartitionTable.PartitionType, rec.PartitionTable.Start, rec.PartitionTable.Size = typ, part.start, part.size
	rec.Filesystem.Type, rec.Filesystem.UUID = opts.FS, b.ids.fs
	if opts.FS == Ext4 {
		rec.Filesystem.Label = "root"
	}
	for _, n := range b.plan.nodes {
		if !n.implied {
			rec.Filesystem.Files++
		}
	}
	names := make([]string, 0, len(b.tools))
	for n := range b.tools {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		rec.Tools = append(rec.Tools, *b.tools[n])
	}
	rec.Skipped = b.plan.skipped
	if boot != nil {
		rec.Boot = boot.rec
	}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(staged+".json", append(data, '\n'), 0o644); err != nil {
		return nil, fault.Op(err)
	}
	// Fixed modes, as pkg/output writes them, whatever the umask.
	for _, f := range []string{staged, staged + ".json"} {
		if err := os.Chmod(f, 0o644); err != nil {
			return nil, fault.Op(err)
		}
	}
	if err := os.Rename(staged+".json", out+".json"); err != nil {
		return nil, fault.Op(err)
	}
	if err := os.Rename(staged, out); err != nil {
		os.Remove(out + ".json")
		return nil, fault.Op(err)
	}
	committed = true
	return rec, nil
}

var (
	// ErrTooSmall is wrapped by the error of a disk too small for what it
	// holds: bad input, whose remedy is a larger Options.Size.
	ErrTooSmall = errors.New("the disk is too small")
	// ErrPackerLimit is wrapped by the error of an image that the erofs or
	// squashfs packer cannot take as repro runs: it takes owners, modes and
	// xattrs from the files it packs, which only root can set, and no
	// xattrs of symlinks. Ext4 (written by repro itself) takes them all.
	ErrPackerLimit = errors.New("the packer cannot take this here; ext4, or running as root, can")
	// ErrCmdlineNeedsBoot: Options.Cmdline is set on a disk that does not
	// boot (Options.Boot is false).
	ErrCmdlineNeedsBoot = errors.New("a kernel command line is for bootable disks")
	// ErrOutputIsDir is wrapped by the error of a disk's path that names
	// a directory: a disk is a file.
	ErrOutputIsDir = errors.New("a directory, and a disk is a file")
)

// badSize marks a disk too small for the image: bad input (ErrTooSmall).
func badSize(err error) error {
	return fault.Bad(fmt.Errorf("%w (%w)", err, ErrTooSmall))
}

// classify keeps an error's class and makes anything unclassified
// operational; a cancelled context stays itself.
func classify(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if fault.KindOf(err) != fault.Operational {
		return err
	}
	return fault.Op(err)
}

// assemble writes the disk: raw, of the disk's size, with a GPT and the
// filesystem image copied into the partition.
func (b *builder) assemble(ctx context.Context, raw, fsImage string, part partition, typ string, boot *bootSetup) error {
	f, err := os.OpenFile(raw, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(b.opts.Size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	var esp *partition
	if boot != nil {
		esp = &boot.part
	}
	if err := partitionDisk(ctx, b.tools["sfdisk"], b.work, b.env(), raw, gptScript(b.ids, part, typ, esp)); err != nil {
		return err
	}
	if boot != nil {
		espImage := filepath.Join(b.work, "esp.img")
		if err := os.WriteFile(espImage, boot.esp, 0o600); err != nil {
			return err
		}
		if err := copyInto(raw, espImage, boot.part.start); err != nil {
			return err
		}
	}
	return copyInto(raw, fsImage, part.start)
}

// convert turns the raw disk into a qcow2 or vmdk file at out. Every
// format option is given, so that a change of qemu-img's defaults does not
// change the bytes. No -W: out-of-order writes make the layout vary.
func (b *builder) convert(ctx context.Context, raw, out, format, options string) error {
	_, err := run(ctx, b.tools["qemu-img"], b.work, b.env(), "convert", "-q", "-f", "raw", "-O", format, "-o", options, raw, out)
	return err
}

// copyInto copies src into dst at off, leaving src's holes as holes.
func copyInto(dst, src string, off int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	fi, err := in.Stat()
	if err != nil {
		out.Close()
		return err
	}
	buf := make([]byte, 1<<20)
	var pos int64
	for pos < fi.Size() {
		// SEEK_DATA (3) finds the next data; the host file system may not
		// know holes, then everything is data.
		data, err := in.Seek(pos, 3)
		if err != nil {
			data = pos
		}
		if data >= fi.Size() {
			break
		}
		hole, err := in.Seek(data, 4) // SEEK_HOLE
		if err != nil || hole <= data {
			hole = fi.Size()
		}
		for p := data; p < hole; {
			n, err := in.ReadAt(buf[:min(int64(len(buf)), hole-p)], p)
			if n > 0 && !isZero(buf[:n]) {
				if _, werr := out.WriteAt(buf[:n], off+p); werr != nil {
					out.Close()
					return werr
				}
			}
			p += int64(n)
			if err != nil && !errors.Is(err, io.EOF) {
				out.Close()
				return err
			}
			if n == 0 {
				break
			}
		}
		pos = hole
	}
	return out.Close()
}

// removeAll removes the work directory, first giving its directories back
// the permissions that applyAttrs may have taken away. WalkDir calls fn on
// a directory before reading it, so the chmod comes first.
func removeAll(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() && d.Type()&fs.ModeSymlink == 0 {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	os.RemoveAll(dir)
}

// hashFile returns the sha256 (hex) and size of a file. Holes are hashed
// as the zeros they read as, without reading them.
func hashFile(name string) (string, int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	zero := make([]byte, 1<<20)
	var pos int64
	for pos < fi.Size() {
		data, err := f.Seek(pos, 3) // SEEK_DATA
		if err != nil {
			data = pos // no holes known (or none left: ENXIO); read on
			if errors.Is(err, syscall.ENXIO) {
				data = fi.Size()
			}
		}
		for ; pos < data; pos += int64(min(len(zero), int(data-pos))) {
			h.Write(zero[:min(len(zero), int(data-pos))])
		}
		if pos >= fi.Size() {
			break
		}
		hole, err := f.Seek(pos, 4) // SEEK_HOLE
		if err != nil || hole <= pos {
			hole = fi.Size()
		}
		for pos < hole {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), hole-pos)], pos)
			h.Write(buf[:n])
			pos += int64(n)
			if err != nil && !errors.Is(err, io.EOF) {
				return "", 0, err
			}
			if n == 0 {
				return "", 0, fmt.Errorf("%s: short read at %d", name, pos)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)), fi.Size(), nil
}
