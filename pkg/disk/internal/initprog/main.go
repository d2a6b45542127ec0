//go:build linux && amd64

// Command initprog is the /init of the initramfs that repro disk --boot
// writes. It is compiled once, reproducibly (make generate), and its bytes
// are embedded in pkg/disk: they are part of the disk layout's version.
//
// It mounts /dev, /proc and /sys; loads, in order, the kernel modules that
// /etc/repro-init/modules lists (paths of the initramfs; a module the
// hardware does not need fails with ENODEV and is passed over); waits,
// at most rootwait= seconds (default 30), for the partition that root=
// names (PARTUUID=…, as the GPT gives it; or a /dev path); mounts it with
// rootfstype= and rootflags= (ro or rw as the command line says); moves
// /dev, /proc and /sys into it, makes it the root and executes init= (else
// /sbin/init, then /lib/systemd/systemd). Any failure prints why on the
// console and exits, which panics the kernel: there is no shell to drop
// into.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// sysFinitModule is finit_module(2) on amd64 (313); the syscall package
// has no name for it.
const sysFinitModule = 313

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "repro-init: "+format+"\n", args...)
}

func fatal(format string, args ...any) {
	logf(format, args...)
	logf("cannot continue; stopping")
	time.Sleep(time.Second)
	os.Exit(1)
}

func main() {
	// The console, for our messages, whatever the kernel gave us.
	os.MkdirAll("/dev", 0o755)
	if err := syscall.Mount("devtmpfs", "/dev", "devtmpfs", syscall.MS_NOSUID, "mode=0755"); err != nil && !errors.Is(err, syscall.EBUSY) {
		logf("mounting /dev: %v", err)
	}
	if c, err := os.OpenFile("/dev/console", os.O_RDWR, 0); err == nil {
		syscall.Dup3(int(c.Fd()), 1, 0)
		syscall.Dup3(int(c.Fd()), 2, 0)
		c.Close()
	}
	for _, m := range []struct{ dir, fs string }{{"/proc", "proc"}, {"/sys", "sysfs"}} {
		os.MkdirAll(m.dir, 0o555)
		if err := syscall.Mount(m.fs, m.dir, m.fs, syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
			fatal("mounting %s: %v", m.dir, err)
		}
	}
	raw, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		fatal("reading /proc/cmdline: %v", err)
	}
	args := parseCmdline(string(raw))
	loadModules("/etc/repro-init/modules")

	root := args["root"]
	if root == "" {
		fatal("the kernel command line has no root=")
	}
	wait := 30 * time.Second
	if s, ok := args["rootwait"]; ok && s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			wait = time.Duration(n) * time.Second
		}
	}
	start := time.Now()
	var dev string
	for {
		dev = findRoot(root)
		if dev != "" || time.Since(start) > wait {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if dev == "" {
		fatal("no block device is %s after %s; these are: %s", root, wait, strings.Join(blockDevices(), " "))
	}
	logf("root %s is %s (after %.2fs)", root, dev, time.Since(start).Seconds())
	fstype := args["rootfstype"]
	if fstype == "" {
		fstype = "ext4"
	}
	var flags uintptr = syscall.MS_RDONLY
	if _, rw := args["rw"]; rw {
		flags = 0
	}
	os.MkdirAll("/root", 0o755)
	if err := syscall.Mount(dev, "/root", fstype, flags, args["rootflags"]); err != nil {
		fatal("mounting %s (%s) on /root: %v", dev, fstype, err)
	}
	for _, d := range []string{"/dev", "/proc", "/sys"} {
		if fi, err := os.Stat("/root" + d); err == nil && fi.IsDir() {
			if err := syscall.Mount(d, "/root"+d, "", syscall.MS_MOVE, ""); err != nil {
				logf("moving %s: %v", d, err)
			}
		} else {
			syscall.Unmount(d, syscall.MNT_DETACH)
		}
	}
	if err := os.Chdir("/root"); err != nil {
		fatal("%v", err)
	}
	if err := syscall.Mount(".", "/", "", syscall.MS_MOVE, ""); err != nil {
		fatal("moving the root: %v", err)
	}
	if err := syscall.Chroot("."); err != nil {
		fatal("chroot: %v", err)
	}
	os.Chdir("/")
	inits := []string{"/sbin/init", "/lib/systemd/systemd", "/usr/lib/systemd/systemd"}
	if s := args["init"]; s != "" {
		inits = []string{s}
	}
	for _, p := range inits {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		err := syscall.Exec(p, []string{p}, []string{"HOME=/", "TERM=linux"})
		logf("executing %s: %v", p, err)
	}
	fatal("no init to run on the root filesystem (tried %s)", strings.Join(inits, ", "))
}

// parseCmdline splits the kernel command line into key=value words (a
// bare word has the value ""); quotes group words as the kernel reads them.
func parseCmdline(s string) map[string]string {
	out := map[string]string{}
	var word strings.Builder
	quoted := false
	flush := func() {
		if word.Len() > 0 {
			k, v, _ := strings.Cut(word.String(), "=")
			out[k] = v
			word.Reset()
		}
	}
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case !quoted && (r == ' ' || r == '\n' || r == '\t'):
			flush()
		default:
			word.WriteRune(r)
		}
	}
	flush()
	return out
}

// loadModules loads each module that list names, in order.
func loadModules(list string) {
	data, err := os.ReadFile(list)
	if err != nil {
		logf("no module list: %v", err)
		return
	}
	for _, p := range strings.Fields(string(data)) {
		f, err := os.Open(p)
		if err != nil {
			logf("module %s: %v", p, err)
			continue
		}
		params, _ := syscall.BytePtrFromString("")
		_, _, errno := syscall.Syscall(sysFinitModule, f.Fd(), uintptr(unsafe.Pointer(params)), 0)
		f.Close()
		switch errno {
		case 0, syscall.EEXIST:
		case syscall.ENODEV, syscall.ENOENT:
			// Hardware that is not there (Hyper-V, Xen on another
			// hypervisor), or a dependency that had none.
		default:
			logf("module %s: %v", filepath.Base(p), errno)
		}
	}
}

// findRoot returns the /dev path of the partition that root names, or "".
func findRoot(root string) string {
	if strings.HasPrefix(root, "/dev/") {
		if _, err := os.Stat(root); err == nil {
			return root
		}
		return ""
	}
	want, ok := strings.CutPrefix(root, "PARTUUID=")
	if !ok {
		fatal("root=%s: only PARTUUID=… and /dev/… are understood", root)
	}
	want = strings.ToLower(want)
	entries, _ := os.ReadDir("/sys/class/block")
	for _, e := range entries {
		sys := "/sys/class/block/" + e.Name()
		partn, err := os.ReadFile(sys + "/partition")
		if err != nil {
			continue
		}
		uevent, _ := os.ReadFile(sys + "/uevent")
		uuid := ""
		for _, l := range strings.Split(string(uevent), "\n") {
			if v, ok := strings.CutPrefix(l, "PARTUUID="); ok {
				uuid = strings.ToLower(v)
			}
		}
		if uuid == "" {
			n, _ := strconv.Atoi(strings.TrimSpace(string(partn)))
			parent, err := filepath.EvalSymlinks(sys + "/..")
			if err != nil {
				continue
			}
			uuid = gptPartUUID("/dev/"+filepath.Base(parent), n)
		}
		if uuid == want {
			dev := "/dev/" + e.Name()
			if _, err := os.Stat(dev); err == nil {
				return dev
			}
		}
	}
	return ""
}

// gptPartUUID reads the GUID of partition n (1-based) from disk's GPT.
func gptPartUUID(disk string, n int) string {
	f, err := os.Open(disk)
	if err != nil {
		return ""
	}
	defer f.Close()
	for _, ss := range []int64{512, 4096} {
		hdr := make([]byte, 92)
		if _, err := f.ReadAt(hdr, ss); err != nil || !bytes.Equal(hdr[:8], []byte("EFI PART")) {
			continue
		}
		lba := int64(binary.LittleEndian.Uint64(hdr[72:80]))
		count := int(binary.LittleEndian.Uint32(hdr[80:84]))
		size := int64(binary.LittleEndian.Uint32(hdr[84:88]))
		if n < 1 || n > count || size < 128 {
			return ""
		}
		e := make([]byte, 128)
		if _, err := f.ReadAt(e, lba*ss+int64(n-1)*size); err != nil {
			return ""
		}
		g := e[16:32]
		return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(g[0:4]), binary.LittleEndian.Uint16(g[4:6]),
			binary.LittleEndian.Uint16(g[6:8]), g[8:10], g[10:16])
	}
	return ""
}

func blockDevices() []string {
	entries, _ := os.ReadDir("/sys/class/block")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) == 0 {
		names = []string{"(none)"}
	}
	return names
}
