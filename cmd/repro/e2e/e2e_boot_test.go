package e2e

// End to end for repro disk --boot: a VM image from real Debian packages
// (the kernel, systemd, systemd-boot, nginx) served from a local signed
// repository, with systemd.enable making nginx start; the disk is checked
// with the tools that read disks (sfdisk, fsck.fat, mtools, e2fsck,
// debugfs, qemu-img, tar, kmod's depmod) and booted by OVMF under TCG, on
// virtio (qcow2) and on NVMe (the vhd). Each boot is bounded; the guest's
// nginx must answer an HTTP GET through QEMU's user networking.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/reprobuild/repro/internal/testtool"
)

// bootWanted are the packages of the VM image.
var bootWanted = []string{"base-files", "linux-image-cloud-amd64", "systemd-sysv", "systemd-boot-efi", "nginx-light"}

const ovmf = "/usr/share/ovmf/OVMF.fd"

// bootSpec is the VM image's spec; %s is the repository's url.
const bootSpec = `version: 1
name: vm
epoch: 1700000000
platforms: [linux/amd64]
apt:
  sources:
    - url: %s
      suites: [bookworm]
      components: [main]
  keyring: keys/test.asc
  prefer: {awk: mawk}
layers:
  - name: debian
    packages: [base-files, linux-image-cloud-amd64, systemd-sysv, systemd-boot-efi, nginx-light]
  - name: config
    contents:
      # What nginx's postinst would have linked.
      - path: /etc/nginx/sites-enabled/default
        type: symlink
        target: /etc/nginx/sites-available/default
      - path: /etc/nginx/modules-enabled/50-mod-http-echo.conf
        type: symlink
        target: /usr/share/nginx/modules-available/mod-http-echo.conf
      - path: /var/www/html/index.html
        content: "hello from a disk repro made\n"
      # DHCP on the first Ethernet link, by systemd-networkd.
      - path: /etc/systemd/network/80-dhcp.network
        content: "[Match]\nName=en*\n\n[Network]\nDHCP=ipv4\n"
accounts:
  groups:
    - {name: www-data, gid: 33}
  users:
    - {name: www-data, uid: 33, gid: 33, home: /var/www}
systemd:
  enable: [nginx.service, systemd-networkd.service]
`

// bootImage builds the VM image into an OCI layout and returns its
// reference and the .debs it came from.
func bootImage(t *testing.T) (ref string, debs []string) {
	t.Helper()
	debs = aptDebs(t, bootWanted)
	repo := newAptRepo(t, "bookworm", debs)
	ctx := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ctx, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(ctx, "keys", "test.asc"), []byte(repo.key), 0o644)
	os.WriteFile(filepath.Join(ctx, "repro.yaml"), []byte(fmt.Sprintf(bootSpec, repo.url)), 0o644)
	repro(t, ctx, "lock", "-q")
	lay := filepath.Join(t.TempDir(), "vm")
	r := repro(t, ctx, "build", "-o", "oci:"+lay+":v1")
	for _, want := range []string{
		"link=/etc/systemd/system/multi-user.target.wants/nginx.service target=/lib/systemd/system/nginx.service",
		"link=/etc/systemd/system/dbus-org.freedesktop.network1.service target=/lib/systemd/system/systemd-networkd.service",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the build did not report %s", want)
		}
	}
	// What the skipped postinst scripts of systemd, the kernel and nginx
	// would have done, and what repro did instead (for the closing note).
	for _, l := range strings.Split(r.stderr, "\n") {
		if regexp.MustCompile(`postinst of (systemd|systemd-sysv|linux-image-\S+|nginx-common|nginx-light): `).MatchString(l) {
			t.Logf("build: %s", strings.TrimSpace(l))
		}
	}
	return "oci:" + lay + ":v1", debs
}

type bootRecord struct {
	Disk struct {
		SHA256      string `json:"sha256"`
		Size        int64  `json:"size"`
		VirtualSize int64  `json:"virtualSize"`
		Format      string `json:"format"`
	} `json:"disk"`
	PartitionTable struct {
		PartitionGUID string `json:"partitionGUID"`
		Start         int64  `json:"start"`
		Size          int64  `json:"size"`
	} `json:"partitionTable"`
	Boot struct {
		Layout  string   `json:"layout"`
		Release string   `json:"release"`
		Cmdline string   `json:"cmdline"`
		Init    string   `json:"init"`
		Modules []string `json:"modules"`
		Added   []string `json:"added"`
		ESP     struct {
			PartitionGUID string `json:"partitionGUID"`
			Start         int64  `json:"start"`
			Size          int64  `json:"size"`
			Serial        string `json:"serial"`
		} `json:"esp"`
	} `json:"boot"`
}

func readBootRecord(t *testing.T, file string) bootRecord {
	t.Helper()
	var rec bootRecord
	data, err := os.ReadFile(file + ".json")
	if err == nil {
		err = json.Unmarshal(data, &rec)
	}
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// freePort is a loopback TCP port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// bootAndGet boots a disk with OVMF under TCG (drive: qemu's -drive and
// -device arguments), waits at most bootWait for the serial console to
// say nginx started, then GETs / through a forwarded port. It returns the
// seconds to nginx and the body.
func bootAndGet(t *testing.T, name string, drive []string) (float64, string) {
	t.Helper()
	const bootWait = 300 * time.Second
	port := freePort(t)
	serial := filepath.Join(t.TempDir(), name+".serial")
	args := append([]string{"-machine", "q35", "-accel", "tcg", "-m", "1024", "-smp", "2",
		"-nodefaults", "-display", "none", "-no-reboot", "-bios", ovmf,
		"-serial", "file:" + serial,
		"-nic", fmt.Sprintf("user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:%d-:80", port)}, drive...)
	cmd := exec.Command("qemu-system-x86_64", args...)
	var qout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &qout, &qout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	console := func() string {
		b, _ := os.ReadFile(serial)
		return ansi.ReplaceAllString(string(b), "")
	}
	deadline := time.After(bootWait)
	for !strings.Contains(console(), "Started nginx.service") {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("%s: qemu exited before nginx started (%v)\n%s\nconsole:\n%s", name, err, qout.String(), tail(console(), 80))
		case <-deadline:
			t.Fatalf("%s: nginx did not start within %s; console:\n%s", name, bootWait, tail(console(), 80))
		case <-time.After(500 * time.Millisecond):
		}
	}
	upAfter := time.Since(start).Seconds()
	if c := console(); !strings.Contains(c, "repro-init: root PARTUUID=") {
		t.Errorf("%s: the console does not show repro's /init finding the root", name)
	}
	if c := console(); strings.Contains(c, "FAILED") {
		t.Errorf("%s: a unit failed:\n%s", name, grepLines(c, "FAILED"))
	}
	client := &http.Client{Timeout: 10 * time.Second}
	var body string
	var lastErr error
	for i := 0; i < 30; i++ {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				body = string(b)
				break
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		lastErr = err
		time.Sleep(time.Second)
	}
	if body == "" {
		t.Fatalf("%s: no answer from the guest's nginx: %v; console:\n%s", name, lastErr, tail(console(), 40))
	}
	t.Logf("%s: nginx started %.1fs after qemu did (TCG, OVMF), and answered", name, upAfter)
	return upAfter, body
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func grepLines(s, pat string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, pat) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestE2EDiskBootUEFI is the CI boot test: the VM image's disk, twice under
// perturbation (identical), checked part by part, booted from qcow2 on
// virtio and from the vhd on NVMe; the gce tar holds the same raw disk.
func TestE2EDiskBootUEFI(t *testing.T) {
	t.Parallel()
	testtool.Require(t, "qemu-system-x86_64", "qemu-img", "sfdisk", "mke2fs", "debugfs", "e2fsck", "fsck.fat", "mtype", "mdir",
		"dpkg-scanpackages", "dpkg-deb", "gpg", "tar")
	if _, err := os.Stat(ovmf); err != nil {
		if testtool.InCI() {
			t.Fatalf("%s: %v (the ovmf package)", ovmf, err)
		}
		t.Skipf("%s: %v (apt-get install ovmf)", ovmf, err)
	}
	ref, debs := bootImage(t)
	work := t.TempDir()

	// Two builds under another umask, TZ, TMPDIR and directory.
	qcow := filepath.Join(work, "a", "vm.qcow2")
	other := filepath.Join(work, "b", "vm.qcow2")
	start := time.Now()
	pdir := filepath.Join(work, "a", "packer")
	a := invocation{dir: t.TempDir(), umask: "022", env: []string{"TMPDIR=" + t.TempDir(), "TZ=UTC"}}.run(t, "disk", ref, "-o", qcow, "--boot", "--size", "512M", "--packer", pdir)
	t.Logf("disk --boot (qcow2, 512 MiB) took %.1fs", time.Since(start).Seconds())
	b := invocation{dir: t.TempDir(), umask: "077", env: []string{"TMPDIR=" + t.TempDir(), "TZ=Pacific/Chatham", "LC_ALL=C.UTF-8"}}.run(t, "disk", ref, "-o", other, "--boot", "--size", "512M")
	if a.code != 0 || b.code != 0 {
		t.Fatalf("repro disk --boot: exit %d / %d\n%s\n%s", a.code, b.code, a.stderr, b.stderr)
	}
	if fileSHA256(qcow) != fileSHA256(other) || lastLine(a.stdout) != "sha256:"+fileSHA256(qcow) {
		t.Fatalf("two --boot disks differ: %s %s (printed %s)", fileSHA256(qcow), fileSHA256(other), lastLine(a.stdout))
	}
	rec := readBootRecord(t, qcow)
	if rec.Boot.Layout != "repro-boot/1" || len(rec.Boot.Init) != 64 || !strings.Contains(rec.Boot.Cmdline, "root=PARTUUID="+strings.ToLower(rec.PartitionTable.PartitionGUID)) || !strings.Contains(rec.Boot.Cmdline, "console=ttyS0") {
		t.Errorf("record: %+v", rec.Boot)
	}
	for _, m := range []string{"virtio_pci", "virtio_blk", "virtio_scsi", "sd_mod", "hv_storvsc", "xen_blkfront"} {
		if !contains(rec.Boot.Modules, m) {
			t.Errorf("the initramfs lacks %s: %v", m, rec.Boot.Modules)
		}
	}
	fi, _ := os.Stat(qcow)
	t.Logf("qcow2: %d bytes for a %d-byte disk; ESP %d MiB, root %d MiB", fi.Size(), rec.Disk.VirtualSize, rec.Boot.ESP.Size>>20, rec.PartitionTable.Size>>20)
	t.Logf("written into the root for the boot (in place of postinst work): %s", strings.Join(rec.Boot.Added, " "))

	t.Run("packer-validate", func(t *testing.T) { packerValidate(t, pdir) })

	raw := filepath.Join(work, "vm.raw")
	testtool.Run(t, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow, raw)
	t.Run("partitions", func(t *testing.T) {
		out := testtool.Run(t, "sfdisk", "--json", raw)
		var pt struct {
			PartitionTable struct {
				Partitions []struct {
					Start int64  `json:"start"`
					Size  int64  `json:"size"`
					Type  string `json:"type"`
					UUID  string `json:"uuid"`
					Name  string `json:"name"`
				} `json:"partitions"`
			} `json:"partitiontable"`
		}
		if err := json.Unmarshal([]byte(out), &pt); err != nil {
			t.Fatal(err)
		}
		ps := pt.PartitionTable.Partitions
		if len(ps) != 2 || ps[0].Type != "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" || ps[0].UUID != rec.Boot.ESP.PartitionGUID ||
			ps[1].Type != "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709" || ps[1].UUID != rec.PartitionTable.PartitionGUID || ps[0].Start*512 != rec.Boot.ESP.Start {
			t.Errorf("partitions: %s", out)
		}
	})
	esp := extract(t, raw, rec.Boot.ESP.Start, rec.Boot.ESP.Size, "esp.img")
	root := extract(t, raw, rec.PartitionTable.Start, rec.PartitionTable.Size, "root.img")
	t.Run("esp", func(t *testing.T) {
		testtool.Run(t, "fsck.fat", "-n", "-v", esp)
		env := []string{"MTOOLS_SKIP_CHECK=1"}
		mt := func(args ...string) string {
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Env = append(os.Environ(), env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
			}
			return string(out)
		}
		entry := mt("mtype", "-i", esp, "::/loader/entries/repro.conf")
		if !strings.Contains(entry, "options "+rec.Boot.Cmdline+"\n") || !strings.Contains(entry, "linux /repro/vmlinuz") {
			t.Errorf("loader entry:\n%s", entry)
		}
		if conf := mt("mtype", "-i", esp, "::/loader/loader.conf"); !strings.Contains(conf, "timeout 0") {
			t.Errorf("loader.conf:\n%s", conf)
		}
		loader := mt("mtype", "-i", esp, "::/EFI/BOOT/BOOTX64.EFI")
		if !strings.HasPrefix(loader, "MZ") || !strings.Contains(loader, "systemd-boot") {
			t.Errorf("BOOTX64.EFI is not systemd-boot (%d bytes)", len(loader))
		}
		listing := mt("mdir", "-i", esp, "-/", "::/")
		for _, f := range []string{"vmlinuz", "initrd", "BOOTX64  EFI", "repro.conf", "loader.conf"} {
			if !strings.Contains(listing, f) {
				t.Errorf("the ESP lacks %s:\n%s", f, listing)
			}
		}
		// Every time is the image's epoch (2023-11-14 22:13:20 UTC).
		if strings.Count(listing, "2023-11-14") < 8 || regexp.MustCompile(`20(2[4-9]|[3-9]\d)-`).MatchString(listing) {
			t.Errorf("ESP times are not the epoch:\n%s", listing)
		}
	})
	t.Run("root", func(t *testing.T) {
		testtool.Run(t, "e2fsck", "-fn", root)
		cat := func(p string) string { return testtool.Run(t, "debugfs", "-R", "cat "+p, root) }
		fstab := cat("/etc/fstab")
		if !strings.Contains(fstab, "PARTUUID="+strings.ToLower(rec.PartitionTable.PartitionGUID)+"\t/\text4") || !strings.Contains(fstab, "/boot/efi\tvfat") {
			t.Errorf("fstab:\n%s", fstab)
		}
		if mid := cat("/etc/machine-id"); mid != "" {
			t.Errorf("machine-id = %q, want empty", mid)
		}
		link := testtool.Run(t, "debugfs", "-R", "stat /etc/systemd/system/multi-user.target.wants/nginx.service", root)
		if !strings.Contains(link, "Fast link dest: \"/lib/systemd/system/nginx.service\"") {
			t.Errorf("nginx is not enabled:\n%s", link)
		}
		// The indexes match what kmod's own depmod writes for the same
		// modules (modules.dep by its lines' contents: depmod orders a
		// module's dependencies by symbol, repro by depends=; kmod reads
		// either; repro indexes no symbols).
		want := depmodOracle(t, debs, rec.Boot.Release)
		moddir := "/usr/lib/modules/" + rec.Boot.Release + "/"
		for _, f := range []string{"modules.dep.bin", "modules.alias", "modules.alias.bin", "modules.builtin.bin", "modules.builtin.alias.bin", "modules.softdep", "modules.devname"} {
			if !contains(rec.Boot.Added, moddir+f) {
				t.Errorf("the record does not list %s", moddir+f)
			}
			dump := filepath.Join(t.TempDir(), f)
			testtool.Run(t, "debugfs", "-R", "dump "+moddir+f+" "+dump, root)
			got, _ := os.ReadFile(dump)
			w, _ := os.ReadFile(filepath.Join(want, f))
			if f == "modules.dep.bin" {
				continue // its values are modules.dep's lines, compared below
			}
			if !bytes.Equal(got, w) {
				t.Errorf("%s: %d bytes differ from depmod's %d", f, len(got), len(w))
			}
		}
		got := depLines(cat(moddir + "modules.dep"))
		w, _ := os.ReadFile(filepath.Join(want, "modules.dep"))
		if wl := depLines(string(w)); strings.Join(got, "\n") != strings.Join(wl, "\n") || len(got) < 1000 {
			t.Errorf("modules.dep: %d lines, depmod's %d; they differ", len(got), len(wl))
		}
	})

	t.Run("boot-qcow2-virtio", func(t *testing.T) {
		_, body := bootAndGet(t, "qcow2-virtio", []string{"-drive", "file=" + qcow + ",if=virtio,format=qcow2,snapshot=on"})
		if body != "hello from a disk repro made\n" {
			t.Errorf("GET / = %q", body)
		}
	})

	vhd := filepath.Join(work, "vm.vhd")
	repro(t, work, "disk", ref, "-o", vhd, "--boot", "--size", "512M")
	t.Run("vhd", func(t *testing.T) {
		// A fixed VHD has its footer only at the end, where qemu's probe
		// does not look: name the format.
		info := testtool.Run(t, "qemu-img", "info", "-f", "vpc", "--output=json", vhd)
		var qi struct {
			Format      string `json:"format"`
			VirtualSize int64  `json:"virtual-size"`
		}
		json.Unmarshal([]byte(info), &qi)
		if qi.Format != "vpc" || qi.VirtualSize != 512<<20 {
			t.Errorf("qemu-img info: %s", info)
		}
		fi, _ := os.Stat(vhd)
		if fi.Size() != 512<<20+512 || fileSHA256Prefix(t, vhd, 512<<20) != fileSHA256(raw) {
			t.Errorf("the vhd is not the raw disk and a footer (%d bytes)", fi.Size())
		}
		t.Logf("vhd: %d bytes (fixed: the disk and a 512-byte footer)", fi.Size())
		_, body := bootAndGet(t, "vhd-nvme", []string{"-drive", "file=" + vhd + ",if=none,id=d0,format=vpc,snapshot=on", "-device", "nvme,drive=d0,serial=repro"})
		if body != "hello from a disk repro made\n" {
			t.Errorf("GET / = %q", body)
		}
	})

	gce := filepath.Join(work, "vm.tar.gz")
	repro(t, work, "disk", ref, "-o", gce, "--boot", "--size", "512M")
	t.Run("gce", func(t *testing.T) {
		listing := testtool.Run(t, "tar", "-tvzf", gce)
		if fi, err := os.Stat(gce); err == nil {
			t.Logf("gce tar.gz: %d bytes", fi.Size())
		}
		if !strings.HasPrefix(listing, "-rw-r--r-- 0/0       536870912 2023-11-14") || strings.Count(listing, "\n") != 1 || !strings.Contains(listing, " disk.raw\n") {
			t.Errorf("tar -tvzf: %q", listing)
		}
		f, err := os.Open(gce)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		var hdr [512]byte
		if _, err := io.ReadFull(zr, hdr[:]); err != nil {
			t.Fatal(err)
		}
		if string(hdr[257:265]) != "ustar  \x00" {
			t.Errorf("not a GNU tar header: magic %q", hdr[257:265])
		}
		tr := tar.NewReader(io.MultiReader(bytes.NewReader(hdr[:]), zr))
		if _, err := tr.Next(); err != nil {
			t.Fatal(err)
		}
		h := newSHA()
		if _, err := io.Copy(h, tr); err != nil {
			t.Fatal(err)
		}
		if h.hex() != fileSHA256(raw) {
			t.Errorf("disk.raw is not the raw disk")
		}
	})
}

// extract copies size bytes at off of a disk into a file of its own.
func extract(t *testing.T, disk string, off, size int64, name string) string {
	t.Helper()
	in, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out := filepath.Join(t.TempDir(), name)
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, io.NewSectionReader(in, off, size)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return out
}

// depmodOracle runs kmod's depmod (from the kmod and libkmod2 .debs) over
// the kernel package's modules and returns the directory it indexed.
func depmodOracle(t *testing.T, debs []string, release string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range debs {
		b := filepath.Base(d)
		if strings.HasPrefix(b, "kmod_") || strings.HasPrefix(b, "libkmod2_") || strings.HasPrefix(b, "linux-image-"+release+"_") {
			testtool.Run(t, "dpkg-deb", "-x", d, dir)
		}
	}
	kmod := filepath.Join(dir, "bin", "kmod")
	if _, err := os.Stat(kmod); err != nil {
		t.Fatalf("no kmod in the .debs: %v", err)
	}
	// kmod is a multi-call binary: it is depmod when called so.
	depmod := filepath.Join(dir, "bin", "depmod")
	if err := os.Symlink("kmod", depmod); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(depmod, "-b", dir, release)
	libs, _ := filepath.Glob(filepath.Join(dir, "usr", "lib", "*-linux-gnu"))
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+strings.Join(libs, ":"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("depmod: %v\n%s", err, out)
	}
	return filepath.Join(dir, "lib", "modules", release)
}

// depLines is modules.dep with each line's dependencies sorted.
func depLines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		mod, deps, _ := strings.Cut(l, ":")
		d := strings.Fields(deps)
		sort.Strings(d)
		out = append(out, mod+":"+strings.Join(d, " "))
	}
	return out
}

func fileSHA256Prefix(t *testing.T, name string, n int64) string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := newSHA()
	if _, err := io.Copy(h, io.LimitReader(f, n)); err != nil {
		t.Fatal(err)
	}
	return h.hex()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type shaWriter struct{ h hash.Hash }

func newSHA() *shaWriter                         { return &shaWriter{sha256.New()} }
func (s *shaWriter) Write(p []byte) (int, error) { return s.h.Write(p) }
func (s *shaWriter) hex() string                 { return hex.EncodeToString(s.h.Sum(nil)) }

// packerValidate checks a --boot template directory as users run it, with
// Debian's packer 1.6.6 and with Packer 1.9.5 (packer-1.9.5 on PATH; .ci/run
// builds it with go install): the directory and each cloud directory
// validate, and every file is as packer fmt writes it.
func packerValidate(t *testing.T, dir string) {
	tools := testtool.Require(t, "packer", "packer-1.9.5")
	want := []string{"cloud/aws/aws-import.pkr.hcl", "cloud/gce/gce-import.pkr.hcl", "plugins.pkr.hcl.example", "repro-boot-check.sh", "repro-disk.pkr.hcl", "repro-disk.pkrvars.hcl"}
	var got []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			got = append(got, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("the Packer directory holds %v, want %v", got, want)
	}
	for _, bin := range []string{tools["packer"], tools["packer-1.9.5"]} {
		for _, sub := range []string{".", "cloud/aws", "cloud/gce"} {
			cmd := exec.Command(bin, "validate", ".")
			cmd.Dir = filepath.Join(dir, sub)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "CHECKPOINT_DISABLE=1", "PACKER_PLUGIN_PATH=" + t.TempDir()}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s validate %s: %v\n%s", bin, sub, err, out)
			}
			cmd = exec.Command(bin, "fmt", "-check", ".")
			cmd.Dir = filepath.Join(dir, sub)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "CHECKPOINT_DISABLE=1"}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s fmt -check %s: %v\n%s", bin, sub, err, out)
			}
		}
	}
	tmpl, _ := os.ReadFile(filepath.Join(dir, "repro-disk.pkr.hcl"))
	for _, w := range []string{`["-bios", var.ovmf]`, `["-netdev", local.netdev]`, `machine_type     = "q35"`, `provisioner "shell-local"`, "not reproducible"} {
		if !strings.Contains(string(tmpl), w) {
			t.Errorf("the template lacks %s", w)
		}
	}
	for f, w := range map[string]string{"cloud/aws/aws-import.pkr.hcl": `post-processor "amazon-import"`, "cloud/gce/gce-import.pkr.hcl": `post-processor "googlecompute-import"`} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		if !strings.Contains(string(b), w) || !strings.Contains(string(b), "never run this against") {
			t.Errorf("%s lacks %s", f, w)
		}
	}
}

// TestE2EDiskBootBadInput: --boot of an image without a kernel, or one
// with a kernel and no systemd-boot, is bad input (exit 2) that says what
// to add, and writes nothing; so is --cmdline without --boot, and a
// systemd.enable unit that the image lacks (at its line of the spec).
func TestE2EDiskBootBadInput(t *testing.T) {
	t.Parallel()
	testtool.Require(t, diskTools...)
	dir := t.TempDir()
	ref, examples := diskLayout(t, dir)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--boot", "--size", "128M"}, "the image has no kernel (/boot/vmlinuz-*)"},
		{[]string{"--boot", "--size", "64M"}, "a bootable disk needs at least 80 MiB (a 64 MiB EFI system partition and the root): the disk is too small\nrepro disk: raise --size"},
		{[]string{"--cmdline", "quiet"}, "--cmdline is for --boot disks"},
		{[]string{"--boot", "--size", "128M", "--format", "gce", "--packer", filepath.Join(dir, "p")}, "cannot boot a tar.gz"},
	} {
		out := filepath.Join(dir, "out", "d.raw")
		r := invocation{dir: dir}.run(t, append([]string{"disk", ref, "-o", out}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("disk %v: exit %d, want 2 with %q\n%s", tc.args, r.code, tc.want, r.stderr)
		}
		if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
			t.Errorf("disk %v left %s", tc.args, filepath.Join(dir, "out"))
		}
	}
	// A unit the image does not have, named at its line.
	spec := filepath.Join(examples, "go-server", "repro.yaml")
	raw, err := os.ReadFile(spec)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(spec, append(raw, []byte("systemd:\n  enable: [nginx.service]\n")...), 0o644)
	lines := strings.Count(string(raw), "\n")
	r := invocation{dir: examples}.run(t, "build", "-q", "--offline", "--version", e2eVersion, "-f", spec, "-o", "oci:"+filepath.Join(dir, "sd")+":x")
	if want := fmt.Sprintf("repro.yaml:%d:12: systemd.enable[0]: no unit file of that name", lines+2); r.code != 2 || !strings.Contains(r.stderr, want) {
		t.Errorf("build with a missing unit: exit %d, want 2 with %q\n%s", r.code, want, r.stderr)
	}
}

// TestE2EDiskBootMore holds the boots that CI leaves out for time; make
// boot-test runs them (REPRO_BOOT_MORE=1): packer build of the --boot
// template, which boots the disk with OVMF and checks the console and
// nginx with repro-boot-check.sh; and the gce tar's disk.raw booted from
// virtio-scsi (the initramfs's virtio_scsi and sd_mod).
func TestE2EDiskBootMore(t *testing.T) {
	if os.Getenv("REPRO_BOOT_MORE") == "" {
		t.Skip("make boot-test runs these boots (REPRO_BOOT_MORE=1)")
	}
	testtool.Require(t, "qemu-system-x86_64", "qemu-img", "packer", "tar")
	ref, _ := bootImage(t)
	work := t.TempDir()
	qcow := filepath.Join(work, "vm.qcow2")
	pdir := filepath.Join(work, "packer")
	repro(t, work, "disk", ref, "-o", qcow, "--boot", "--size", "512M", "--packer", pdir)

	t.Run("packer-build", func(t *testing.T) {
		for _, bin := range []string{"packer", "packer-1.9.5"} {
			if _, err := exec.LookPath(bin); err != nil {
				t.Logf("%s: not on PATH", bin)
				continue
			}
			out := filepath.Join(t.TempDir(), "out")
			serial := filepath.Join(t.TempDir(), "serial.log")
			cmd := exec.Command(bin, "build",
				"-var", "output_directory="+out, "-var", "serial_log="+serial,
				"-var", "boot_expect=Started nginx.service",
				"-var", "http_guest_port=80", "-var", fmt.Sprintf("http_host_port=%d", freePort(t)),
				"-var", fmt.Sprintf("monitor_port=%d", freePort(t)), ".")
			cmd.Dir = pdir
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "CHECKPOINT_DISABLE=1", "PACKER_CACHE_DIR=" + t.TempDir()}
			start := time.Now()
			b, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s build: %v\n%s", bin, err, b)
			}
			for _, want := range []string{"repro: the console shows \"Started nginx.service\"", "repro: GET / through 127.0.0.1:", "HTTP/1.1 200 OK", "repro: asked the guest to stop"} {
				if !strings.Contains(string(b), want) {
					t.Errorf("%s build printed no %q:\n%s", bin, want, b)
				}
			}
			if _, err := os.Stat(filepath.Join(out, "repro-disk")); err != nil {
				t.Errorf("%s wrote no disk: %v", bin, err)
			}
			t.Logf("%s build (boot with OVMF, check, Ctrl-Alt-Del) took %.1fs", bin, time.Since(start).Seconds())
		}
	})

	t.Run("gce-virtio-scsi", func(t *testing.T) {
		gce := filepath.Join(work, "vm.tar.gz")
		repro(t, work, "disk", ref, "-o", gce, "--boot", "--size", "512M")
		dir := t.TempDir()
		testtool.Run(t, "tar", "-xzf", gce, "-C", dir)
		_, body := bootAndGet(t, "gce-virtio-scsi", []string{"-device", "virtio-scsi-pci,id=scsi0",
			"-drive", "file=" + filepath.Join(dir, "disk.raw") + ",if=none,id=d0,format=raw,snapshot=on", "-device", "scsi-hd,drive=d0,bus=scsi0.0"})
		if body != "hello from a disk repro made\n" {
			t.Errorf("GET / = %q", body)
		}
	})
}
