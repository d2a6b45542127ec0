package disk

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reprobuild/repro/internal/testtool"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/rootfs"
)

var testEpoch = time.Unix(1700000000, 0).UTC()

// TestFAT32 writes an ESP and has dosfstools' fsck.fat and mtools read it.
func TestFAT32(t *testing.T) {
	tools := testtool.Require(t, "fsck.fat", "mtype", "mdir")
	files := []fatFile{
		{path: "EFI/BOOT/BOOTX64.EFI", data: bytes.Repeat([]byte("MZ"), 70000)},
		{path: "loader/loader.conf", data: []byte("timeout 0\n")},
		{path: "loader/entries/repro.conf", data: []byte("title x\n")},
		{path: "repro/vmlinuz", data: bytes.Repeat([]byte{1, 2, 3}, 1<<20)},
		{path: "repro/initrd", data: nil},
		{path: "a-rather-long-name.conf", data: []byte("long\n")},
		{path: "a-rather-long-name.conv", data: []byte("long 2\n")},
	}
	img, err := fat32(64<<20, files, "ESP", 0x12345678, testEpoch, 2048)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := fat32(64<<20, append([]fatFile{files[3]}, files...), "ESP", 0x12345678, testEpoch, 2048)
	if !bytes.Equal(img, again) {
		t.Error("the same files in another order give other bytes")
	}
	f := filepath.Join(t.TempDir(), "esp.img")
	os.WriteFile(f, img, 0o644)
	if out, err := exec.Command(tools["fsck.fat"], "-n", "-v", f).CombinedOutput(); err != nil || !strings.Contains(string(out), "128992 data clusters") {
		t.Fatalf("fsck.fat: %v\n%s", err, out)
	}
	for _, ff := range files {
		cmd := exec.Command(tools["mtype"], "-i", f, "::/"+ff.path)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		out, err := cmd.Output()
		if err != nil || !bytes.Equal(out, ff.data) {
			t.Errorf("mtype %s: %v, %d bytes, want %d", ff.path, err, len(out), len(ff.data))
		}
	}
	cmd := exec.Command(tools["mdir"], "-i", f, "::/")
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, _ := cmd.Output()
	if !strings.Contains(string(out), "Volume Serial Number is 1234-5678") || !strings.Contains(string(out), "A-RATH~1 CON") || !strings.Contains(string(out), "A-RATH~2 CON") || !strings.Contains(string(out), "2023-11-14  22:13") {
		t.Errorf("mdir ::/\n%s", out)
	}
	if _, err := fat32(64<<20, []fatFile{{path: "a/b:c"}}, "ESP", 1, testEpoch, 0); err == nil {
		t.Error("a name with : was accepted")
	}
	if _, err := fat32(16<<20, nil, "ESP", 1, testEpoch, 0); err == nil {
		t.Error("a 16 MiB FAT32 was accepted (too few clusters)")
	}
}

// TestNewc checks the initramfs archive's layout field by field.
func TestNewc(t *testing.T) {
	a := newc([]cpioEntry{{path: "lib/modules/x.ko", mode: 0o644, data: []byte("abc")}, {path: "init", mode: 0o755, data: []byte("#!")}}, 1700000000)
	if len(a)%512 != 0 {
		t.Errorf("not padded to 512: %d", len(a))
	}
	var names []string
	for off := 0; ; {
		h := string(a[off : off+110])
		if h[:6] != "070701" {
			t.Fatalf("bad magic at %d: %q", off, h[:6])
		}
		field := func(i int) int64 { v, _ := strconv.ParseInt(h[6+8*i:14+8*i], 16, 64); return v }
		nameLen, size := int(field(11)), int(field(6))
		name := string(a[off+110 : off+110+nameLen-1])
		if name == "TRAILER!!!" {
			break
		}
		if field(2) != 0 || field(3) != 0 || field(5) != 1700000000 {
			t.Errorf("%s: uid %d gid %d mtime %d", name, field(2), field(3), field(5))
		}
		names = append(names, name)
		off += (110 + nameLen + 3) &^ 3
		off += (size + 3) &^ 3
	}
	if got := strings.Join(names, " "); got != "init lib lib/modules lib/modules/x.ko" {
		t.Errorf("entries: %s", got)
	}
}

// lookup reads key from a kmod index as libkmod does (exact match).
func lookup(t *testing.T, idx []byte, key string) []string {
	t.Helper()
	be := binary.BigEndian
	if be.Uint32(idx) != 0xB007F457 || be.Uint32(idx[4:]) != 0x00020001 {
		t.Fatal("bad header")
	}
	off := be.Uint32(idx[8:])
	for {
		p := int(off & 0x0FFFFFFF)
		if off&kmodFlagPrefix != 0 {
			end := bytes.IndexByte(idx[p:], 0)
			prefix := string(idx[p : p+end])
			if !strings.HasPrefix(key, prefix) {
				return nil
			}
			key = key[len(prefix):]
			p += end + 1
		}
		var first, last byte
		var children []uint32
		if off&kmodFlagChilds != 0 {
			first, last = idx[p], idx[p+1]
			p += 2
			for c := int(first); c <= int(last); c++ {
				children = append(children, be.Uint32(idx[p:]))
				p += 4
			}
		}
		if key == "" {
			if off&kmodFlagValues == 0 {
				return nil
			}
			n := int(be.Uint32(idx[p:]))
			p += 4
			var out []string
			for i := 0; i < n; i++ {
				p += 4
				end := bytes.IndexByte(idx[p:], 0)
				out = append(out, string(idx[p:p+end]))
				p += end + 1
			}
			return out
		}
		if children == nil || key[0] < first || key[0] > last || children[key[0]-first] == 0 {
			return nil
		}
		off = children[key[0]-first]
		key = key[1:]
	}
}

func TestKmodIndex(t *testing.T) {
	x := newKmodIndex()
	keys := map[string]string{"virtio_blk": "a", "virtio": "b", "virtio_pci": "c", "vfat": "d", "v": "e", "xen_blkfront": "f"}
	for k, v := range keys {
		x.insert(k, v, 1)
	}
	x.insert("virtio", "b0", 0)
	x.insert("virtio", "b2", 1)
	idx := x.bytes()
	for k, v := range keys {
		want := v
		if k == "virtio" {
			want = "b0 b2 b"
		}
		if got := strings.Join(lookup(t, idx, k), " "); got != want {
			t.Errorf("lookup %s = %q, want %q", k, got, want)
		}
	}
	if got := lookup(t, idx, "virt"); got != nil {
		t.Errorf("a prefix found %v", got)
	}
	if a, err := normalizeAlias("pci:v00001AF4d*sv*sd*bc*sc*i*-x[a-b]"); err != nil || a != "pci:v00001AF4d*sv*sd*bc*sc*i*_x[a-b]" {
		t.Errorf("normalizeAlias: %q %v", a, err)
	}
}

func TestModuleOrder(t *testing.T) {
	mods := []*kmodule{
		{rel: "kernel/a/virtio_blk.ko", name: "virtio_blk", depends: []string{"virtio", "virtio_ring"}},
		{rel: "kernel/a/virtio.ko", name: "virtio"},
		{rel: "kernel/a/virtio_ring.ko", name: "virtio_ring", depends: []string{"virtio"}},
		{rel: "kernel/a/loop.ko", name: "loop", depends: []string{"builtin_thing"}},
	}
	s, err := newModuleSet(mods, []byte("kernel/a/virtio.ko\nkernel/a/virtio_ring.ko\nkernel/a/virtio_blk.ko\n"), []byte("kernel/b/builtin_thing.ko\nkernel/b/nvme.ko\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	order, missing, err := s.loadOrder([]string{"virtio_blk", "nvme", "xen-blkfront"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range order {
		names = append(names, m.name)
	}
	if got := strings.Join(names, " "); got != "virtio virtio_ring virtio_blk" {
		t.Errorf("load order %s", got)
	}
	if strings.Join(missing, " ") != "xen-blkfront" {
		t.Errorf("missing %v (nvme is built in)", missing)
	}
	files, err := s.indexFiles()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(files["modules.dep"]), "kernel/a/virtio_blk.ko: kernel/a/virtio_ring.ko kernel/a/virtio.ko\n") {
		t.Errorf("modules.dep:\n%s", files["modules.dep"])
	}
	mods[1].depends = []string{"virtio_blk"}
	s, _ = newModuleSet(mods, nil, []byte("kernel/b/builtin_thing.ko\n"), nil)
	if _, err := s.indexFiles(); err == nil || !strings.Contains(err.Error(), "circle") {
		t.Errorf("a cycle: %v", err)
	}
}

// TestVHDFooter checks the footer against the specification's rules and
// qemu's geometry for common sizes.
func TestVHDFooter(t *testing.T) {
	f := vhdFooter(1<<30, testEpoch, "sha256:x")
	if string(f[:8]) != "conectix" || binary.BigEndian.Uint64(f[48:]) != 1<<30 || binary.BigEndian.Uint32(f[60:]) != 2 || string(f[28:32]) != "qem2" {
		t.Errorf("footer fields: %x", f[:64])
	}
	var sum uint32
	for i, b := range f {
		if i < 64 || i >= 68 {
			sum += uint32(b)
		}
	}
	if ^sum != binary.BigEndian.Uint32(f[64:]) {
		t.Error("checksum")
	}
	if ts := binary.BigEndian.Uint32(f[24:]); ts != 1700000000-946684800 {
		t.Errorf("timestamp %d", ts)
	}
	if !bytes.Equal(f, vhdFooter(1<<30, testEpoch, "sha256:x")) || bytes.Equal(f[68:84], vhdFooter(1<<30, testEpoch, "sha256:y")[68:84]) {
		t.Error("the unique id is not a function of the digest")
	}
	for size, want := range map[int64][3]int{1 << 30: {2080, 16, 63}, 2 << 30: {4161, 16, 63}, 64 << 20: {963, 8, 17}} {
		c, h, s := vhdGeometry(size / 512)
		if int(c) != want[0] || int(h) != want[1] || int(s) != want[2] {
			t.Errorf("geometry of %d: %d/%d/%d, want %v", size, c, h, s, want)
		}
	}
}

func TestFormatFor(t *testing.T) {
	for f, want := range map[string]Format{"a.vhd": VHD, "a.tar.gz": GCE, "A.TAR.GZ": GCE, "a.qcow2": QCOW2, "a.img": Raw, "a.gz": Raw} {
		if got := FormatFor(f); got != want {
			t.Errorf("FormatFor(%s) = %s, want %s", f, got, want)
		}
	}
}

// TestFindBoot: the kernel is the newest /boot/vmlinuz-*, found through
// usrmerge links; no kernel, no modules directory, no systemd-boot or
// another architecture is bad input naming what to add.
func TestFindBoot(t *testing.T) {
	dir := func(p string) *rootfs.File { return &rootfs.File{Path: p, Kind: rootfs.Dir, Mode: 0o755} }
	reg := func(p string) *rootfs.File { return &rootfs.File{Path: p, Kind: rootfs.Regular, Mode: 0o644} }
	full := []*rootfs.File{
		dir("/boot"), reg("/boot/vmlinuz-6.1.0-9-cloud-amd64"), reg("/boot/vmlinuz-6.1.0-10-cloud-amd64"),
		{Path: "/lib", Kind: rootfs.Symlink, Link: "usr/lib"}, dir("/usr"), dir("/usr/lib"), dir("/usr/lib/modules"),
		dir("/usr/lib/modules/6.1.0-10-cloud-amd64"), dir("/usr/lib/systemd"), dir("/usr/lib/systemd/boot"),
		dir("/usr/lib/systemd/boot/efi"), reg("/usr/lib/systemd/boot/efi/systemd-bootx64.efi"),
	}
	bf, err := newPlan(files(full...), testEpoch).findBoot("amd64")
	if err != nil {
		t.Fatal(err)
	}
	if bf.release != "6.1.0-10-cloud-amd64" || bf.modules != "/usr/lib/modules/6.1.0-10-cloud-amd64" {
		t.Errorf("found %s, modules %s", bf.release, bf.modules)
	}
	without := func(drop string) []*rootfs.File {
		var out []*rootfs.File
		for _, f := range full {
			if !strings.HasPrefix(f.Path, drop) {
				out = append(out, f)
			}
		}
		return out
	}
	for _, tc := range []struct {
		fs   []*rootfs.File
		arch string
		want string
	}{
		{without("/boot/"), "amd64", "has no kernel"},
		{without("/usr/lib/systemd/boot/efi/"), "amd64", "add the package systemd-boot-efi"},
		{without("/usr/lib/modules/6.1.0-10"), "amd64", "no /lib/modules/6.1.0-10-cloud-amd64"},
		{full, "arm64", "amd64 disks"},
	} {
		_, err := newPlan(files(tc.fs...), testEpoch).findBoot(tc.arch)
		if err == nil || !strings.Contains(err.Error(), tc.want) || fault.KindOf(err) != fault.BadInput {
			t.Errorf("want bad input with %q, got %v", tc.want, err)
		}
	}
}
