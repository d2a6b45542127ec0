// Package disk turns an image's root filesystem into a VM disk that is as
// reproducible as the image: the same image gives the same disk bytes, on
// any machine, under any umask, TMPDIR, time zone or working directory,
// whether or not repro runs as root.
//
// # Layout (repro-disk/1)
//
// The disk is a GPT disk of 512-byte sectors with one partition, from 1 MiB
// to 1 MiB before the end, typed as the Linux root partition of the image's
// architecture (the Discoverable Partitions types, "Linux filesystem" for an
// architecture without one). The disk GUID, the partition GUID and the
// filesystem UUID are derived from the image's manifest digest. The
// partition holds ext4 (default), erofs or squashfs. Changing a byte of this
// layout for the same image is a new layout version; Layout names it and
// the JSON record beside each disk carries it.
//
// # Bootable disks (repro-boot/1)
//
// With Options.Boot (amd64), partition 1 is a 64 MiB EFI system partition
// and the root partition follows it. The ESP is FAT32 written here (fat.go:
// one sector per cluster, the serial from the digest, every time the
// image's epoch, directories and files in path order, VFAT long names
// where 8.3 does not fit) and holds the image's systemd-boot at
// \EFI\BOOT\BOOTX64.EFI, loader/loader.conf (timeout 0), one loader entry
// (loader/entries/repro.conf), the image's newest /boot/vmlinuz-* as
// /repro/vmlinuz and the initramfs as /repro/initrd. The initramfs (cpio
// newc, uncompressed, sorted, owner 0:0, mtime the epoch) holds /init, the
// embedded program of internal/initprog (its sha256 is in the record), the
// modules that rootModules names with their dependencies, and their load
// order. The root filesystem gets the module indexes depmod would have
// written (kmod.go), /etc/fstab and an empty /etc/machine-id; the record
// lists them. The command line is root=PARTUUID=… rootfstype=… rw (ro for
// erofs and squashfs) console=tty0 console=ttyS0,115200 and the caller's
// additions. Changing any of this for the same image is a new BootLayout.
//
// vhd (a fixed VHD: the raw disk and a footer) and gce (disk.raw in a GNU
// tar, gzip at pkg/compress's fixed settings) are written here too.
//
// # How the filesystem is made
//
// The flattened filesystem (pkg/rootfs: whiteouts and opaque directories
// applied) is written into a private work directory through an os.Root, so
// that nothing can land outside it: paths are clean and absolute in rootfs,
// an entry whose parent is not a directory of the image is skipped, symlinks
// are created as symlinks and never followed, hard links must name a
// regular file of the image, and device nodes are never created on the host.
// Files that cannot be carried (a name with a newline, a component over 255
// bytes) are skipped with a warning and listed in the record.
//
// ext4 comes from mke2fs -d with a fixed configuration (MKE2FS_CONFIG, never
// the host's /etc/mke2fs.conf), a fixed UUID and hash seed,
// E2FSPROGS_FAKE_TIME and LC_ALL=C, and no host xattrs; then one debugfs -w
// script creates the device nodes and sets mode, owner, every timestamp and
// the xattrs of every inode to the image's values, so that the host's
// owners, modes and access times never reach the disk. e2fsck -fn checks the
// result before anything is written beside the output. erofs (mkfs.erofs -T
// -U) and squashfs (mksquashfs with -mkfs-time, -all-time and a pseudo file
// carrying every mode and owner) are the alternatives.
//
// qcow2 and vmdk come from qemu-img convert; the vmdk descriptor's random
// CID is replaced by one derived from the digest. Outputs are staged in a
// directory beside the target and renamed into place, so a failed run
// leaves nothing.
//
// # Limits
//
// The image's regular files may hold at most as many bytes (by their
// apparent size) as the filesystem: a hostile "sparse" file far larger than
// the disk is refused before anything is written. All-zero blocks become
// holes. Host tools are found on the PATH that the caller passes, then in
// /usr/local/sbin, /usr/sbin and /sbin; a missing one is an operational
// error (exit 3) naming its Debian package.
//
// The package reads neither the environment nor the clock: the caller
// passes PATH and the temporary directory.
package disk
