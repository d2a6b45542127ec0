package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/pflag"

	"github.com/reprobuild/repro/pkg/disk"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
)

var diskCmd = &command{
	name:  "disk",
	usage: "disk REF -o FILE [--format raw|qcow2|vmdk|vhd|gce] [--size 2G] [--fs ext4|erofs|squashfs] [--boot [--cmdline ARGS]] [--packer DIR] [--platform P]",
	short: "make a reproducible VM disk of an image's root filesystem",
	long: `
Disk makes a VM disk of REF's root filesystem (whiteouts and opaque
directories applied) that is reproducible bit for bit: the same image gives
the same bytes on any machine, under any umask, TMPDIR, time zone or
working directory, as root or not. The disk is GPT with one partition,
typed as the Linux root partition of the image's architecture, from 1 MiB
to 1 MiB before the end; its GUIDs and the filesystem UUID are derived from
the image's digest. Owners, modes, times and xattrs in the filesystem are
the image's, never the host's. A JSON record beside the disk (FILE.json)
names the image digest, the disk's sha256, the format, the filesystem and
the versions of the tools that made it. The disk's sha256 is printed last
on stdout.

Paths that a disk cannot carry (a name with a line break, a hard link to
something that is not a regular file of the image, a file under a symlink)
are skipped with a warning and listed in the record; nothing is ever
written outside repro's private work directory under $TMPDIR. The output
and its record appear together or not at all.

--format defaults to the output's extension (.qcow2, .vmdk, .vhd, .tar.gz
for gce; else raw). A vmdk names its own file inside, so its bytes depend
on FILE's base name. vhd is a fixed VHD, as Azure takes it (its footer's
time is the image's epoch and its unique id comes from the digest); gce is
disk.raw in a GNU-format tar.gz, as Google Compute Engine imports it.

--boot makes the disk UEFI-bootable (amd64): partition 1 is a 64 MiB EFI
system partition (FAT32, written by repro: serial from the digest, every
time the image's epoch) holding the image's systemd-boot (from the Debian
package systemd-boot-efi) at \EFI\BOOT\BOOTX64.EFI, a loader entry, the
image's kernel (/boot/vmlinuz-*) and an initramfs that repro makes: its
/init is a small static program of repro's (its sha256 is in the record),
with the modules a root disk needs on the common hypervisors (virtio,
virtio-scsi and sd_mod, Hyper-V storage, Xen block; nvme and ext4 are built
into Debian's cloud kernel). Partition 2 is the root, found by PARTUUID.
The root filesystem also gets /etc/fstab (root and /boot/efi), an empty
/etc/machine-id (each machine makes its own on first boot) and the module
indexes depmod would have written (modules.dep, modules.alias and their
.bin forms). The command line is root=PARTUUID=… rootfstype=… rw
console=tty0 console=ttyS0,115200, then --cmdline. An image without a
kernel or without systemd-boot is bad input (exit 2).
--fs erofs needs root for owners other than 0:0 (mkfs.erofs 1.5 reads
owners from files) and gives every file the image's epoch as mtime;
squashfs carries every owner and mode through a pseudo file.

Host tools: sfdisk (fdisk), mke2fs, debugfs and e2fsck (e2fsprogs),
qemu-img (qemu-utils) for qcow2 and vmdk, mkfs.erofs and fsck.erofs
(erofs-utils), mksquashfs (squashfs-tools). A missing one exits 3 and
names its Debian package.

--packer DIR writes a Packer HCL2 template that boots the disk
(disk_image, iso_checksum pinned to the disk's sha256) and a variables
file; packer validate DIR and packer build DIR work as they are with
Debian's packer 1.6.6 and with Packer 1.9 (plugins.pkr.hcl.example is the
required_plugins block for Packer 1.10 and later, to copy in). With --boot,
the build boots the disk with OVMF and repro-boot-check.sh checks the
serial console (and an HTTP port, if asked) from the host, then stops the
VM; DIR/cloud/aws and DIR/cloud/gce are templates that also import the
disk (amazon-import, googlecompute-import).

Examples:
  repro disk oci:out/app:v1 -o app.qcow2 --size 1G
  repro disk oci:out/app:v1 -o app.raw --platform linux/arm64
  repro disk oci:out/app:v1 -o app.qcow2 --packer packer/
  repro disk oci:out/vm:v1 -o vm.qcow2 --boot --size 2G
  repro disk oci:out/vm:v1 -o vm.vhd --boot --cmdline "quiet"`,
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		o := &diskOpts{g: g}
		fs.StringVarP(&o.out, "output", "o", "", "write the disk to `FILE` (and its record to FILE.json)")
		fs.StringVar(&o.format, "format", "", "disk format: raw, qcow2, vmdk, vhd or gce (default: from FILE's extension, else raw)")
		fs.BoolVar(&o.boot, "boot", false, "make the disk UEFI-bootable: ESP, systemd-boot, the image's kernel, an initramfs (amd64)")
		fs.StringVar(&o.cmdline, "cmdline", "", "with --boot: `ARGS` added to the kernel command line")
		fs.StringVar(&o.size, "size", "2G", "disk `SIZE`, in whole MiB (2G, 512M, 1024MiB)")
		fs.StringVar(&o.fs, "fs", "ext4", "root filesystem: ext4, erofs or squashfs")
		fs.StringVar(&o.packer, "packer", "", "also write a Packer template for the disk into `DIR`")
		fs.StringVar(&o.platform, "platform", "", "for an index: the image of this platform (`os/arch[/variant]`; default: the host's, linux/"+runtime.GOARCH+")")
		fs.StringArrayVar(&o.insecure, "insecure-registry", nil, "speak plain HTTP to this registry `HOST` (repeatable)")
		return o.run
	},
}

type diskOpts struct {
	g        *globals
	out      string
	format   string
	size     string
	fs       string
	packer   string
	platform string
	insecure []string
	boot     bool
	cmdline  string
}

func (o *diskOpts) run(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return fault.Bad(errors.New("give one image reference, like oci:out/app:v1"))
	}
	if o.out == "" {
		return fault.Bad(errors.New("give the disk file with -o FILE"))
	}
	if o.cmdline != "" && !o.boot {
		return fault.Bad(errors.New("--cmdline is for --boot disks; add --boot"))
	}
	size, err := disk.ParseSize(o.size)
	if err != nil {
		return err
	}
	opts := disk.Options{
		Format:  disk.Format(strings.ToLower(o.format)),
		FS:      disk.FSType(strings.ToLower(o.fs)),
		Size:    size,
		TempDir: os.TempDir(),
		Path:    os.Getenv("PATH"),
		Root:    os.Geteuid() == 0,
		Log:     o.g.log,
		Boot:    o.boot,
		Cmdline: o.cmdline,
	}
	if o.format == "" {
		opts.Format = disk.FormatFor(o.out)
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	if o.packer != "" {
		// The template is written after the disk: a --packer that can
		// never be a directory fails now, not after the work.
		if fi, err := os.Stat(o.packer); err == nil && !fi.IsDir() {
			return fault.Bad(fmt.Errorf("--packer %s is a file; it names the directory the template goes into", o.packer))
		}
		if !disk.PackerFormatOK(opts.Format) {
			return fault.Bad(fmt.Errorf("--packer with --format %s: Packer's qemu builder cannot boot a tar.gz; make a raw or qcow2 disk for Packer (its googlecompute-import template tars the disk itself)", opts.Format))
		}
	}
	// Host tools first: a missing one should not cost a pull.
	if opts.Tools, err = disk.FindTools(opts.FS, opts.Format, opts.Path); err != nil {
		return err
	}
	a, err := openRef(ctx, args[0], o.insecure)
	if err != nil {
		return err
	}
	defer a.Close()
	picked, err := a.Pick(o.platform, "linux/"+runtime.GOARCH)
	if errors.Is(err, imageref.ErrSeveralImages) {
		return fault.Bad(fmt.Errorf("%s is %w; choose one with --platform", args[0], err))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	if picked.ByHost {
		o.g.log.Info("the image is an index: taking the host's platform; choose another with --platform", "platform", picked.Platform, "has", strings.Join(picked.Platforms, ", "))
	}
	rec, err := disk.Write(ctx, picked, o.out, opts)
	if err != nil {
		return err
	}
	if o.packer != "" {
		if err := disk.WritePacker(o.packer, o.out, rec); err != nil {
			return fault.Op(fmt.Errorf("writing the Packer template: %w", err))
		}
	}
	if o.g.json {
		enc := json.NewEncoder(o.g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rec)
	}
	o.g.log.Info("wrote disk", "file", o.out, "format", rec.Disk.Format, "fs", rec.Filesystem.Type,
		"size", rec.Disk.VirtualSize, "files", rec.Filesystem.Files, "skipped", len(rec.Skipped), "record", o.out+".json")
	if o.packer != "" {
		o.g.log.Info("wrote Packer template", "dir", o.packer, "files", strings.Join(disk.PackerFiles(o.boot), " "))
	}
	fmt.Fprintf(o.g.stdout, "sha256:%s\n", rec.Disk.SHA256)
	return nil
}
