package disk

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/rootfs"
)

// BootLayout names what --boot adds to the disk layout (see the package
// documentation): the EFI system partition and its files, the initramfs
// and the /init in it (initInit, whose sha256 the record carries), the
// files written into the root filesystem and the default command line.
// The same image gives the same bytes within one BootLayout.
const BootLayout = "repro-boot/1"

// initAMD64 is /init of the initramfs: pkg/disk/internal/initprog, built
// by make generate (CGO off, paths trimmed, no build ID, stripped) with the
// Go toolchain that go.mod pins; check-generate rebuilds it and compares.
//
//go:embed initramfs/init-amd64
var initAMD64 []byte

const (
	espType = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	// espSize is the EFI system partition's size: room for a Debian cloud
	// kernel (14 MiB), the initramfs and the loader, several times over.
	espSize = 64 << 20
	// bootLoader is where Debian's systemd-boot-efi puts the loader.
	bootLoader = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
)

// rootModules are the kernel modules the initramfs carries, with their
// dependencies, so that the root device is found on the hypervisors of the
// clouds: virtio (QEMU/KVM, GCE), SCSI disks (virtio-scsi, GCE), Hyper-V
// storage (Azure), Xen block devices (older AWS instances). nvme (AWS
// Nitro, GCE) and ext4 are built into Debian's cloud kernel; a root module
// that is built in is left out, one that the kernel lacks is reported.
var rootModules = []string{"virtio_pci", "virtio_blk", "virtio_scsi", "sd_mod", "nvme", "hv_storvsc", "xen_blkfront"}

// Boot is what the record says about a bootable disk.
type Boot struct {
	Layout  string `json:"layout"`
	Kernel  string `json:"kernel"`  // the image's path of the kernel
	Release string `json:"release"` // its version: /lib/modules/RELEASE
	Loader  string `json:"loader"`  // the image's path of the boot loader
	Cmdline string `json:"cmdline"`
	ESP     struct {
		PartitionGUID string `json:"partitionGUID"`
		Start         int64  `json:"start"`
		Size          int64  `json:"size"`
		Serial        string `json:"serial"`
	} `json:"esp"`
	Init      string   `json:"init"`      // sha256 of /init
	Initramfs string   `json:"initramfs"` // sha256 of the initramfs
	Modules   []string `json:"modules"`   // the initramfs's modules, load order
	Missing   []string `json:"missingModules,omitempty"`
	// Added are the files written into the root filesystem.
	Added []string `json:"added"`
}

// bootFiles are what the image must have for --boot, found in the plan.
type bootFiles struct {
	kernel  *node
	kpath   string
	release string
	modules string // the real path of /lib/modules/RELEASE
	loader  *node
}

// findBoot finds the kernel and loader of the image; their absence is bad
// input.
func (p *plan) findBoot(arch string) (*bootFiles, error) {
	if arch != "amd64" {
		return nil, fault.Bad(fmt.Errorf("bootable disks are amd64 disks (the image is %s)", arch))
	}
	bf := &bootFiles{}
	var kernels []string
	for _, n := range p.nodes {
		if d, f := path.Split(n.path); d == "/boot/" && strings.HasPrefix(f, "vmlinuz-") && (n.kind == rootfs.Regular || n.kind == rootfs.Hardlink) {
			kernels = append(kernels, n.path)
		}
	}
	if len(kernels) == 0 {
		return nil, fault.Bad(fmt.Errorf("the image has no kernel (/boot/vmlinuz-*), so a bootable disk has nothing to boot; add a kernel package such as linux-image-cloud-amd64 to a layer's packages"))
	}
	sort.Slice(kernels, func(i, j int) bool { return versionLess(kernels[i], kernels[j]) })
	bf.kpath = kernels[len(kernels)-1]
	bf.kernel, _ = p.resolve(bf.kpath)
	bf.release = strings.TrimPrefix(path.Base(bf.kpath), "vmlinuz-")
	mod, ok := p.resolvePath("/lib/modules/" + bf.release)
	if !ok || p.byPath[mod].kind != rootfs.Dir {
		return nil, fault.Bad(fmt.Errorf("the image has the kernel %s but no /lib/modules/%s; add the kernel's whole package", bf.kpath, bf.release))
	}
	bf.modules = mod
	loader, ok := p.resolve(bootLoader)
	if !ok || loader.kind != rootfs.Regular {
		return nil, fault.Bad(fmt.Errorf("the image has no boot loader (%s); add the package systemd-boot-efi to a layer's packages", bootLoader))
	}
	bf.loader = loader
	return bf, nil
}

// versionLess orders kernel file names by their numbers: 6.1.0-10 after
// 6.1.0-9.
func versionLess(a, b string) bool {
	split := func(s string) []string {
		var out []string
		cur := ""
		digit := false
		for _, r := range s {
			d := r >= '0' && r <= '9'
			if cur != "" && d != digit {
				out = append(out, cur)
				cur = ""
			}
			cur += string(r)
			digit = d
		}
		return append(out, cur)
	}
	x, y := split(a), split(b)
	for i := 0; i < len(x) && i < len(y); i++ {
		if x[i] == y[i] {
			continue
		}
		if x[i][0] >= '0' && x[i][0] <= '9' && y[i][0] >= '0' && y[i][0] <= '9' && len(x[i]) != len(y[i]) {
			return len(x[i]) < len(y[i])
		}
		return x[i] < y[i]
	}
	return len(x) < len(y)
}

// resolvePath follows symlinks in every component of name, as the kernel
// would on the booted disk, and returns the real path.
func (p *plan) resolvePath(name string) (string, bool) {
	todo := strings.Split(strings.Trim(name, "/"), "/")
	cur := "/"
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		n, ok := p.byPath[next]
		if !ok {
			return "", false
		}
		if n.kind == rootfs.Symlink {
			if hops++; hops > 40 {
				return "", false
			}
			t := strings.Split(strings.Trim(n.link, "/"), "/")
			if strings.HasPrefix(n.link, "/") {
				cur = "/"
			}
			todo = append(t, todo...)
			continue
		}
		cur = next
	}
	return cur, true
}

// resolve is resolvePath's node; a hard link is its group's file.
func (p *plan) resolve(name string) (*node, bool) {
	real, ok := p.resolvePath(name)
	if !ok {
		return nil, false
	}
	n := p.byPath[real]
	if n.kind == rootfs.Hardlink {
		n = n.linkTo
	}
	return n, true
}

// read returns a regular file's content from the tree.
func (b *builder) read(n *node) ([]byte, error) {
	root, err := os.OpenRoot(b.tree)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.ReadFile(n.rel())
}

// put writes a file of the root filesystem that --boot adds or replaces:
// owner 0:0, the image's epoch as mtime.
func (b *builder) put(name string, mode int64, data []byte) error {
	p := b.plan
	if why := p.parentProblem(name); why != "" {
		return fault.Bad(fmt.Errorf("a bootable disk writes %s, but %s", name, why))
	}
	root, err := os.OpenRoot(b.tree)
	if err != nil {
		return err
	}
	defer root.Close()
	// Parents the image lacks were just added to the plan; make them.
	var mk []string
	for d := path.Dir(name); d != "/"; d = path.Dir(d) {
		if _, err := root.Lstat(d[1:]); err != nil {
			mk = append(mk, d)
		}
	}
	for i := len(mk) - 1; i >= 0; i-- {
		if err := root.Mkdir(mk[i][1:], 0o700); err != nil {
			return err
		}
		if err := root.Chmod(mk[i][1:], 0o700); err != nil { // whatever the umask
			return err
		}
	}
	if old, ok := p.byPath[name]; ok {
		for _, n := range p.nodes {
			if n.kind == rootfs.Hardlink && (n.linkTo == old || n == old) {
				return fault.Bad(fmt.Errorf("a bootable disk writes %s, which the image has as a hard link; remove it in the spec", name))
			}
		}
		if old.kind == rootfs.Dir {
			return fault.Bad(fmt.Errorf("a bootable disk writes the file %s, which the image has as a directory", name))
		}
		if err := root.Remove(old.rel()); err != nil {
			return err
		}
		if old.kind == rootfs.Regular {
			p.dataBytes -= old.size
		}
		delete(p.byPath, name)
		keep := p.nodes[:0]
		for _, n := range p.nodes {
			if n != old {
				keep = append(keep, n)
			}
		}
		p.nodes = keep
	}
	n := &node{path: name, kind: rootfs.Regular, mode: mode, mtime: p.epoch, size: int64(len(data)), written: true, got: int64(len(data)), nonzero: int64(len(data))}
	if err := root.WriteFile(n.rel(), data, 0o600); err != nil {
		return err
	}
	if err := root.Chmod(n.rel(), 0o600); err != nil {
		return err
	}
	p.add(n)
	p.dataBytes += n.size
	sort.Slice(p.nodes, func(i, j int) bool { return p.nodes[i].path < p.nodes[j].path })
	return nil
}

// mkdir adds a directory of the root filesystem, if the image lacks it.
func (b *builder) mkdir(name string) error {
	if _, ok := b.plan.byPath[name]; ok {
		return nil
	}
	if why := b.plan.parentProblem(name + "/x"); why != "" {
		return fault.Bad(fmt.Errorf("a bootable disk makes %s, but %s", name, why))
	}
	root, err := os.OpenRoot(b.tree)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, n := range b.plan.nodes {
		if n.implied && strings.HasPrefix(name+"/", n.path+"/") {
			if _, err := root.Lstat(n.rel()); err != nil {
				if err := root.Mkdir(n.rel(), 0o700); err != nil {
					return err
				}
				if err := root.Chmod(n.rel(), 0o700); err != nil {
					return err
				}
			}
		}
	}
	sort.Slice(b.plan.nodes, func(i, j int) bool { return b.plan.nodes[i].path < b.plan.nodes[j].path })
	return nil
}

// bootSetup is what makeBoot made: the ESP image and the record's part.
type bootSetup struct {
	esp  []byte
	rec  *Boot
	part partition // the ESP on the disk
}

// makeBoot reads the kernel, its modules and the loader from the tree,
// writes the module indexes, /etc/fstab and an empty /etc/machine-id into
// the root filesystem, and makes the initramfs and the ESP.
func (b *builder) makeBoot(bf *bootFiles, cmdline string, esp, rootPart partition) (*bootSetup, error) {
	p := b.plan
	rec := &Boot{Layout: BootLayout, Kernel: bf.kpath, Release: bf.release, Loader: bootLoader}
	// The modules, as depmod would index them.
	var mods []*kmodule
	data := map[string][]byte{}
	prefix := bf.modules + "/"
	for _, n := range p.nodes {
		if !strings.HasPrefix(n.path, prefix+"kernel/") || !strings.HasSuffix(n.path, ".ko") {
			continue
		}
		f := n
		if f.kind == rootfs.Hardlink {
			f = f.linkTo
		}
		if f.kind != rootfs.Regular {
			continue
		}
		raw, err := b.read(f)
		if err != nil {
			return nil, err
		}
		rel := strings.TrimPrefix(n.path, prefix)
		m, err := readModinfo(rel, raw)
		if err != nil {
			return nil, fault.Bad(err)
		}
		mods = append(mods, m)
		data[rel] = raw
	}
	readOpt := func(name string) ([]byte, error) {
		n, ok := p.resolve(bf.modules + "/" + name)
		if !ok || n.kind != rootfs.Regular {
			return nil, nil
		}
		return b.read(n)
	}
	order, err := readOpt("modules.order")
	if err != nil {
		return nil, err
	}
	builtin, err := readOpt("modules.builtin")
	if err != nil {
		return nil, err
	}
	builtinInfo, err := readOpt("modules.builtin.modinfo")
	if err != nil {
		return nil, err
	}
	set, err := newModuleSet(mods, order, builtin, builtinInfo)
	if err != nil {
		return nil, err
	}
	index, err := set.indexFiles()
	if err != nil {
		return nil, fault.Bad(err)
	}
	names := make([]string, 0, len(index))
	for k := range index {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		name := bf.modules + "/" + k
		if err := b.put(name, 0o644, index[k]); err != nil {
			return nil, err
		}
		rec.Added = append(rec.Added, name)
	}
	roots := append([]string(nil), rootModules...)
	switch b.opts.FS {
	case EROFS:
		roots = append(roots, "erofs")
	case SquashFS:
		roots = append(roots, "squashfs")
	}
	load, missing, err := set.loadOrder(roots)
	if err != nil {
		return nil, fault.Bad(err)
	}
	rec.Missing = missing

	// The command line.
	fstype, rw := string(b.opts.FS), "rw"
	if b.opts.FS != Ext4 {
		rw = "ro"
	}
	rec.Cmdline = fmt.Sprintf("root=PARTUUID=%s rootfstype=%s %s console=tty0 console=ttyS0,115200", b.ids.partition, fstype, rw)
	if c := strings.TrimSpace(cmdline); c != "" {
		rec.Cmdline += " " + c
	}
	if strings.ContainsAny(rec.Cmdline, "\n\r") {
		return nil, fault.Bad(fmt.Errorf("the kernel command line holds a line break"))
	}

	// The root filesystem's own files.
	rootOpts, pass := "defaults", 1
	if b.opts.FS != Ext4 {
		rootOpts, pass = "ro", 0
	}
	fstab := fmt.Sprintf("# Written by repro disk --boot (%s): the root filesystem and the EFI\n# system partition, by their GPT partition GUIDs.\nPARTUUID=%s\t/\t%s\t%s\t0\t%d\nPARTUUID=%s\t/boot/efi\tvfat\tumask=0077,nofail\t0\t0\n",
		BootLayout, b.ids.partition, fstype, rootOpts, pass, b.ids.esp)
	if err := b.mkdir("/boot/efi"); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		mode int64
		data string
	}{
		{"/etc/fstab", 0o644, fstab},
		// Empty: systemd takes the boot for the first, makes an id, and
		// (on a writable root) commits it. Every machine made from the
		// disk gets its own.
		{"/etc/machine-id", 0o444, ""},
	} {
		real, ok := p.resolvePath(path.Dir(f.name))
		if !ok {
			real = path.Dir(f.name)
		}
		name := path.Join(real, path.Base(f.name))
		if err := b.put(name, f.mode, []byte(f.data)); err != nil {
			return nil, err
		}
		rec.Added = append(rec.Added, name)
	}
	sort.Strings(rec.Added)

	// The initramfs.
	initSum := sha256.Sum256(initAMD64)
	rec.Init = hex.EncodeToString(initSum[:])
	entries := []cpioEntry{
		{path: "init", mode: 0o755, data: initAMD64},
		{path: "dev", dir: true, mode: 0o755},
		{path: "proc", dir: true, mode: 0o555},
		{path: "sys", dir: true, mode: 0o555},
		{path: "root", dir: true, mode: 0o700},
	}
	var list bytes.Buffer
	for _, m := range load {
		p := "lib/modules/" + bf.release + "/" + m.rel
		entries = append(entries, cpioEntry{path: p, mode: 0o644, data: data[m.rel]})
		fmt.Fprintf(&list, "/%s\n", p)
		rec.Modules = append(rec.Modules, m.name)
	}
	entries = append(entries, cpioEntry{path: "etc/repro-init/modules", mode: 0o644, data: list.Bytes()})
	initrd := newc(entries, b.epoch.Unix())
	sum := sha256.Sum256(initrd)
	rec.Initramfs = hex.EncodeToString(sum[:])

	// The ESP.
	kernel, err := b.read(bf.kernel)
	if err != nil {
		return nil, err
	}
	loader, err := b.read(bf.loader)
	if err != nil {
		return nil, err
	}
	title := "repro disk"
	if n, ok := p.resolve("/etc/os-release"); ok && n.kind == rootfs.Regular {
		if osr, err := b.read(n); err == nil {
			for _, l := range strings.Split(string(osr), "\n") {
				if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
					title = strings.Trim(v, `"'`)
				}
			}
		}
	}
	entry := fmt.Sprintf("title %s\nversion %s\nlinux /repro/vmlinuz\ninitrd /repro/initrd\noptions %s\n", title, bf.release, rec.Cmdline)
	files := []fatFile{
		{path: "EFI/BOOT/BOOTX64.EFI", data: loader},
		{path: "loader/loader.conf", data: []byte("timeout 0\neditor no\n")},
		{path: "loader/entries/repro.conf", data: []byte(entry)},
		{path: "repro/vmlinuz", data: kernel},
		{path: "repro/initrd", data: initrd},
	}
	serial := binary.BigEndian.Uint32(b.ids.fatSerial[:])
	img, err := fat32(esp.size, files, "ESP", serial, b.epoch, uint32(esp.start/sector))
	if err != nil {
		return nil, fault.Bad(err)
	}
	rec.ESP.PartitionGUID, rec.ESP.Start, rec.ESP.Size = strings.ToUpper(b.ids.esp), esp.start, esp.size
	rec.ESP.Serial = fmt.Sprintf("%04X-%04X", serial>>16, serial&0xffff)
	return &bootSetup{esp: img, rec: rec, part: esp}, nil
}
