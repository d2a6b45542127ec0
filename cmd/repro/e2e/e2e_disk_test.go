package e2e

// End-to-end tests of repro disk: the binary makes disks of the go-server
// example and of a hostile image, and the tools that read disks in real
// life (sfdisk, e2fsck, debugfs, qemu-img, packer, unsquashfs, fsck.erofs)
// check them.

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/internal/testtool"
)

// diskRecord is the part of FILE.json that the tests read.
type diskRecord struct {
	Layout string `json:"layout"`
	Image  string `json:"image"`
	Disk   struct {
		File        string `json:"file"`
		SHA256      string `json:"sha256"`
		Size        int64  `json:"size"`
		VirtualSize int64  `json:"virtualSize"`
		Format      string `json:"format"`
	} `json:"disk"`
	PartitionTable struct {
		DiskGUID      string `json:"diskGUID"`
		PartitionGUID string `json:"partitionGUID"`
		PartitionType string `json:"partitionType"`
		Start         int64  `json:"start"`
		Size          int64  `json:"size"`
	} `json:"partitionTable"`
	Filesystem struct {
		Type string `json:"type"`
		UUID string `json:"uuid"`
	} `json:"filesystem"`
	Tools []struct {
		Name, Package, Version string
	} `json:"tools"`
	Skipped []struct {
		Path, Reason string
	} `json:"skipped"`
}

const diskSize = "64M"

var diskTools = []string{"mke2fs", "debugfs", "e2fsck", "sfdisk", "qemu-img"}

// diskLayout builds the go-server example into an OCI layout under dir,
// and returns its reference and the examples it was built from.
func diskLayout(t *testing.T, dir string) (ref, examples string) {
	t.Helper()
	examples = copyExamples(t, false)
	lay := filepath.Join(dir, "layout")
	repro(t, examples, "build", "-q", "--offline", "--version", e2eVersion,
		"-f", filepath.Join(examples, "go-server/repro.yaml"), "-o", "oci:"+lay+":"+e2eTag)
	return "oci:" + lay + ":" + e2eTag, examples
}

// diskRun makes one disk of each format into out, as iv runs repro, and
// returns the records by format.
func diskRun(t *testing.T, iv invocation, ref, out string, extra ...string) map[string]diskRecord {
	t.Helper()
	recs := map[string]diskRecord{}
	for _, format := range []string{"raw", "qcow2", "vmdk"} {
		file := filepath.Join(out, "disk."+format)
		args := append([]string{"disk", ref, "-o", file, "--size", diskSize}, extra...)
		r := iv.run(t, args...)
		if r.code != 0 {
			t.Fatalf("repro %q: exit %d\n%s", args, r.code, r.stderr)
		}
		rec := diskReadRecord(t, file)
		if got := lastLine(r.stdout); got != "sha256:"+rec.Disk.SHA256 {
			t.Errorf("%s: repro printed %q, the record says sha256:%s", format, got, rec.Disk.SHA256)
		}
		if sum := diskSHA256(t, file); sum != rec.Disk.SHA256 {
			t.Errorf("%s: the file hashes to %s, the record says %s", format, sum, rec.Disk.SHA256)
		}
		if rec.Disk.Format != format || rec.Layout != "repro-disk/1" {
			t.Errorf("%s: record format %q, layout %q", format, rec.Disk.Format, rec.Layout)
		}
		recs[format] = rec
	}
	return recs
}

func diskReadRecord(t *testing.T, file string) diskRecord {
	t.Helper()
	data, err := os.ReadFile(file + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var rec diskRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatalf("%s.json: %v", file, err)
	}
	return rec
}

func diskSHA256(t *testing.T, file string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// diskEntries lists a directory's names, sorted.
func diskEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// diskPartition copies the root partition of a raw disk into its own file.
func diskPartition(t *testing.T, raw string, rec diskRecord) string {
	t.Helper()
	in, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	name := filepath.Join(t.TempDir(), "part.img")
	out, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, io.NewSectionReader(in, rec.PartitionTable.Start, rec.PartitionTable.Size)); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return name
}

// debugfsR runs one read-only debugfs request.
func debugfsR(t *testing.T, img, request string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", request, img).Output()
	if err != nil {
		t.Fatalf("debugfs -R %q: %v", request, err)
	}
	return string(out)
}

var (
	debugfsType  = regexp.MustCompile(`Type: (\S+( special)?)\s+Mode:\s+(\d+)`)
	debugfsOwner = regexp.MustCompile(`User:\s+(\d+)\s+Group:\s+(\d+)`)
	debugfsInode = regexp.MustCompile(`^Inode: (\d+)`)
	debugfsLink  = regexp.MustCompile(`Fast link dest: "(.*)"`)
	debugfsTime  = regexp.MustCompile(`(?m)^\s*(a|c|m|cr)time: (0x[0-9a-f]+:[0-9a-f]+)`)
)

// diskStat is what debugfs says about one inode.
type diskStat struct {
	kind, mode, owner, link, inode string
	times                          map[string]string
}

func diskStatOf(t *testing.T, img, p string) diskStat {
	t.Helper()
	out := debugfsR(t, img, "stat "+strconvQuote(p))
	m := debugfsType.FindStringSubmatch(out)
	o := debugfsOwner.FindStringSubmatch(out)
	i := debugfsInode.FindStringSubmatch(out)
	if m == nil || o == nil || i == nil {
		t.Fatalf("debugfs stat %s:\n%s", p, out)
	}
	s := diskStat{kind: m[1], mode: m[3], owner: o[1] + ":" + o[2], inode: i[1], times: map[string]string{}}
	if l := debugfsLink.FindStringSubmatch(out); l != nil {
		s.link = l[1]
	} else if s.kind == "symlink" {
		// A target of 60 bytes or more lives in a block.
		s.link = debugfsR(t, img, "cat "+strconvQuote(p))
	}
	for _, tm := range debugfsTime.FindAllStringSubmatch(out, -1) {
		s.times[tm[1]] = tm[2]
	}
	return s
}

// strconvQuote quotes a path for debugfs.
func strconvQuote(p string) string { return `"` + strings.ReplaceAll(p, `"`, `""`) + `"` }

// diskCheckExt4 proves the go-server disk with e2fsck and debugfs: every
// path of the image with its type, mode, owner, link target and times;
// contents; the hard link; the capability xattr.
func diskCheckExt4(t *testing.T, examples, part string) {
	t.Helper()
	if out, err := exec.Command("e2fsck", "-fn", part).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn: %v\n%s", err, out)
	}
	want := e2eWants["go-server/repro.yaml"]
	const epochHex = "0x6553f100:00000000" // 1700000000, no nanoseconds
	inodes := map[string]string{}
	for _, line := range want.tree {
		f := strings.Fields(line)
		p, kind := f[0], f[1]
		st := diskStatOf(t, part, p)
		inodes[p] = st.inode
		var got string
		switch kind {
		case "l":
			if st.kind != "symlink" {
				t.Errorf("%s: a %s, want a symlink", p, st.kind)
			}
			got = fmt.Sprintf("%s l %s -> %s", p, st.owner, st.link)
		case "d", "f":
			k := map[string]string{"directory": "d", "regular": "f"}[st.kind]
			got = fmt.Sprintf("%s %s %s %s", p, k, st.mode, st.owner)
		}
		if got != line {
			t.Errorf("debugfs: %q, want %q", got, line)
		}
		for _, which := range []string{"a", "c", "m", "cr"} {
			if st.times[which] != epochHex {
				t.Errorf("%s: %stime %s, want %s", p, which, st.times[which], epochHex)
			}
		}
	}
	for _, pair := range want.hardlinks {
		if inodes[pair[0]] != inodes[pair[1]] {
			t.Errorf("%s and %s are inodes %s and %s, want one", pair[0], pair[1], inodes[pair[0]], inodes[pair[1]])
		}
	}
	for p, body := range want.content {
		if got := debugfsR(t, part, "cat "+p); got != body {
			t.Errorf("%s holds %q, want %q", p, got, body)
		}
	}
	for p, src := range want.source {
		body, err := os.ReadFile(filepath.Join(examples, src))
		if err != nil {
			t.Fatal(err)
		}
		if got := debugfsR(t, part, "cat "+p); got != string(body) {
			t.Errorf("%s: %d bytes differ from %s (%d bytes)", p, len(got), src, len(body))
		}
	}
	for p := range want.caps {
		if out := debugfsR(t, part, "ea_list "+p); !strings.Contains(out, "security.capability (20) = 01 00 00 02 00 04 00 00") {
			t.Errorf("%s: no cap_net_bind_service capability in\n%s", p, out)
		}
	}
	if out := debugfsR(t, part, "ea_list /etc/motd"); strings.Contains(out, "=") {
		t.Errorf("/etc/motd carries xattrs the image does not:\n%s", out)
	}
}

// diskCheckGPT reads the partition table back with sfdisk.
func diskCheckGPT(t *testing.T, raw string, rec diskRecord) {
	t.Helper()
	out, err := exec.Command("sfdisk", "--json", raw).Output()
	if err != nil {
		t.Fatalf("sfdisk --json: %v", err)
	}
	var pt struct {
		PartitionTable struct {
			Label      string
			ID         string
			FirstLBA   int64 `json:"firstlba"`
			Partitions []struct {
				Start, Size int64
				Type, UUID  string
				Name        string
			}
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &pt); err != nil {
		t.Fatal(err)
	}
	p := pt.PartitionTable
	if p.Label != "gpt" || p.ID != rec.PartitionTable.DiskGUID || len(p.Partitions) != 1 {
		t.Fatalf("partition table %+v, want one GPT partition, disk GUID %s", p, rec.PartitionTable.DiskGUID)
	}
	part := p.Partitions[0]
	const x8664Root = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
	if part.Type != x8664Root || part.UUID != rec.PartitionTable.PartitionGUID || part.Start*512 != rec.PartitionTable.Start ||
		part.Size*512 != rec.PartitionTable.Size || part.Name != "root" {
		t.Errorf("partition %+v; want the x86-64 root type %s, uuid %s, at %d", part, x8664Root, rec.PartitionTable.PartitionGUID, rec.PartitionTable.Start)
	}
}

// TestE2EDisk makes disks of the go-server example in every format under
// two perturbed environments (and as an unprivileged user, when the tests
// run as root), and proves them byte-identical and correct.
func TestE2EDisk(t *testing.T) {
	t.Parallel()
	testtool.Require(t, diskTools...)
	// A directory every user can reach, for the unprivileged run.
	shared, err := os.MkdirTemp("", "repro-disk-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shared) })
	os.Chmod(shared, 0o755)
	ref, examples := diskLayout(t, shared)

	dirs := map[string]string{}
	for _, d := range []string{"cwdA", "cwdB", "tmpA", "tmpB", "outA", "outB", "outC", "tmpC"} {
		dirs[d] = filepath.Join(shared, d)
		os.Mkdir(dirs[d], 0o777)
		os.Chmod(dirs[d], 0o777)
	}
	// TMPDIR on another file system when there is one.
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "repro-disk-e2e-"); err == nil {
			dirs["tmpB"] = d
			t.Cleanup(func() { os.RemoveAll(d) })
		}
	}
	a := diskRun(t, invocation{dir: dirs["cwdA"], umask: "022", env: []string{"TMPDIR=" + dirs["tmpA"], "TZ=UTC"}}, ref, dirs["outA"])
	b := diskRun(t, invocation{dir: dirs["cwdB"], umask: "077", env: []string{"TMPDIR=" + dirs["tmpB"], "TZ=Pacific/Chatham", "LC_ALL=C.UTF-8"}}, ref, dirs["outB"])
	for _, format := range []string{"raw", "qcow2", "vmdk"} {
		e2eSameFile(t, filepath.Join(dirs["outA"], "disk."+format), filepath.Join(dirs["outB"], "disk."+format))
		e2eSameFile(t, filepath.Join(dirs["outA"], "disk."+format+".json"), filepath.Join(dirs["outB"], "disk."+format+".json"))
	}
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("records differ:\n%s", diff)
	}
	// Nothing left behind: no work directory, no staging directory.
	for _, d := range []string{"tmpA", "tmpB"} {
		if names := diskEntries(t, dirs[d]); len(names) != 0 {
			t.Errorf("TMPDIR %s holds %v after the runs", d, names)
		}
	}
	wantOut := []string{"disk.qcow2", "disk.qcow2.json", "disk.raw", "disk.raw.json", "disk.vmdk", "disk.vmdk.json"}
	if got := diskEntries(t, dirs["outB"]); !cmp.Equal(got, wantOut) {
		t.Errorf("the output directory holds %v, want %v", got, wantOut)
	}

	t.Run("unprivileged", func(t *testing.T) {
		if os.Geteuid() != 0 {
			// Already unprivileged: runs A and B proved it.
			t.Skip("the tests do not run as root; runs A and B were unprivileged")
		}
		bin := filepath.Join(shared, "repro")
		data, err := os.ReadFile(reproBin)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(bin, data, 0o755)
		for _, format := range []string{"raw", "qcow2", "vmdk"} {
			file := filepath.Join(dirs["outC"], "disk."+format)
			cmd := exec.Command(bin, "disk", ref, "-o", file, "--size", diskSize)
			cmd.Dir = dirs["tmpC"]
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + dirs["tmpC"], "HOME=" + dirs["tmpC"], "TZ=America/St_Johns"}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("repro disk as 65534: %v\n%s", err, out)
			}
			e2eSameFile(t, filepath.Join(dirs["outA"], "disk."+format), file)
		}
		// erofs and squashfs take directory owners from files: without
		// root, an image with other owners than 0:0 is refused, not faked.
		for _, fsType := range []string{"erofs", "squashfs"} {
			cmd := exec.Command(bin, "disk", ref, "-o", filepath.Join(dirs["outC"], fsType+".raw"), "--size", diskSize, "--fs", fsType)
			cmd.Dir = dirs["tmpC"]
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + dirs["tmpC"]}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "/var/cache/app is owned by 65532:65532") {
				t.Errorf("--fs %s as 65534: %v\n%s", fsType, err, out)
			}
		}
		if names := diskEntries(t, dirs["tmpC"]); len(names) != 0 {
			t.Errorf("TMPDIR holds %v after the unprivileged runs", names)
		}
	})

	t.Run("index", func(t *testing.T) {
		lay := filepath.Join(t.TempDir(), "multi")
		repro(t, examples, "build", "-q", "--offline", "--version", e2eVersion,
			"-f", filepath.Join(examples, "go-server/multi-platform.yaml"), "-o", "oci:"+lay+":"+e2eTag)
		out := t.TempDir()
		// Without --platform, the host's.
		r := invocation{dir: out}.run(t, "disk", "oci:"+lay+":"+e2eTag, "-o", filepath.Join(out, "host.raw"), "--size", diskSize)
		if r.code != 0 || !strings.Contains(r.stderr, "platform=linux/"+runtime.GOARCH) {
			t.Errorf("an index without --platform: exit %d\n%s", r.code, r.stderr)
		} else if rec := diskReadRecord(t, filepath.Join(out, "host.raw")); rec.Image == "" {
			t.Errorf("host-platform disk: no image in the record")
		}
		r = invocation{dir: out}.run(t, "disk", "oci:"+lay+":"+e2eTag, "-o", filepath.Join(out, "d.raw"), "--size", diskSize, "--platform", "linux/arm64")
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		rec := diskReadRecord(t, filepath.Join(out, "d.raw"))
		const arm64Root = "B921B045-1DF0-41C3-AF44-4C6F280D3FAE"
		if rec.PartitionTable.PartitionType != arm64Root || !strings.HasPrefix(rec.Image, "sha256:") {
			t.Errorf("linux/arm64 disk: partition type %s, image %s", rec.PartitionTable.PartitionType, rec.Image)
		}
		out2, err := exec.Command("sfdisk", "--json", filepath.Join(out, "d.raw")).Output()
		if err != nil || !strings.Contains(string(out2), arm64Root) {
			t.Errorf("sfdisk: %v\n%s", err, out2)
		}
	})

	t.Run("ext4", func(t *testing.T) {
		raw := filepath.Join(dirs["outA"], "disk.raw")
		diskCheckGPT(t, raw, a["raw"])
		part := diskPartition(t, raw, a["raw"])
		diskCheckExt4(t, examples, part)
		if out := debugfsR(t, part, "stats"); !strings.Contains(out, "Filesystem UUID:          "+a["raw"].Filesystem.UUID) {
			t.Errorf("the filesystem UUID is not %s:\n%.600s", a["raw"].Filesystem.UUID, out)
		}
	})

	t.Run("qemu-img", func(t *testing.T) {
		raw := filepath.Join(dirs["outA"], "disk.raw")
		for _, format := range []string{"qcow2", "vmdk"} {
			file := filepath.Join(dirs["outA"], "disk."+format)
			testtool.Run(t, "qemu-img", "check", "-f", format, file)
			// Same guest-visible bytes as the raw disk.
			testtool.Run(t, "qemu-img", "compare", "-f", "raw", "-F", format, raw, file)
		}
		out, err := exec.Command("qemu-img", "info", "--output=json", filepath.Join(dirs["outA"], "disk.vmdk")).Output()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), `"create-type": "monolithicSparse"`) {
			t.Errorf("qemu-img info:\n%s", out)
		}
	})

	t.Run("packer", func(t *testing.T) {
		testtool.Require(t, "packer")
		dir := filepath.Join(dirs["outA"], "packer")
		// Again, with the template: the same disk, and the template beside.
		r := invocation{dir: dirs["cwdA"], env: []string{"TMPDIR=" + dirs["tmpA"]}}.run(t,
			"disk", ref, "-o", filepath.Join(dirs["outA"], "disk.qcow2"), "--size", diskSize, "--packer", dir)
		if r.code != 0 || lastLine(r.stdout) != "sha256:"+a["qcow2"].Disk.SHA256 {
			t.Fatalf("exit %d, printed %q, want sha256:%s\n%s", r.code, r.stdout, a["qcow2"].Disk.SHA256, r.stderr)
		}
		got := diskEntries(t, dir)
		if want := []string{"plugins.pkr.hcl.example", "repro-disk.pkr.hcl", "repro-disk.pkrvars.hcl"}; !cmp.Equal(got, want) {
			t.Fatalf("packer directory holds %v, want %v", got, want)
		}
		tmpl, _ := os.ReadFile(filepath.Join(dir, "repro-disk.pkr.hcl"))
		for _, want := range []string{
			`iso_checksum     = "sha256:` + a["qcow2"].Disk.SHA256 + `"`,
			`iso_url          = "${path.root}/../disk.qcow2"`,
			"disk_image       = true", "skip_resize_disk = true", "disable_vnc      = true",
			"accelerator      = var.accelerator", `default     = "tcg"`, `format           = "qcow2"`,
			"amazon-import", "googlecompute-import", "not reproducible",
		} {
			if !strings.Contains(string(tmpl), want) {
				t.Errorf("the template lacks %q", want)
			}
		}
		packer := func(args ...string) {
			cmd := exec.Command("packer", args...)
			cmd.Dir = dirs["outA"]
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "CHECKPOINT_DISABLE=1", "PACKER_LOG=0"}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("packer %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		packer("validate", "-var-file=packer/repro-disk.pkrvars.hcl", "packer/repro-disk.pkr.hcl")
		packer("validate", "packer") // the directory, as users run it
		packer("validate", "-var", "accelerator=kvm", "packer/repro-disk.pkr.hcl")
		packer("fmt", "-check", "packer")
	})
}

// TestE2EDiskOtherFilesystems: erofs and squashfs disks are byte-identical
// across perturbed runs and carry the image's owners and modes.
func TestE2EDiskOtherFilesystems(t *testing.T) {
	t.Parallel()
	testtool.Require(t, "sfdisk")
	ref, _ := diskLayout(t, t.TempDir())
	for _, c := range []struct{ fs, tool, check string }{
		{"erofs", "mkfs.erofs", "dump.erofs"},
		{"squashfs", "mksquashfs", "unsquashfs"},
	} {
		t.Run(c.fs, func(t *testing.T) {
			testtool.Require(t, c.tool, c.check)
			var sums []string
			var raw string
			var rec diskRecord
			for i, umask := range []string{"022", "077"} {
				out := t.TempDir()
				raw = filepath.Join(out, c.fs+".raw")
				iv := invocation{dir: t.TempDir(), umask: umask, env: []string{"TMPDIR=" + t.TempDir(), "TZ=" + []string{"UTC", "Asia/Kathmandu"}[i]}}
				r := iv.run(t, "disk", ref, "-o", raw, "--size", diskSize, "--fs", c.fs)
				if r.code != 0 {
					if os.Geteuid() != 0 && r.code == 2 && strings.Contains(r.stderr, "run as root") {
						t.Skipf("not root: %s", r.stderr)
					}
					t.Fatalf("exit %d\n%s", r.code, r.stderr)
				}
				sums = append(sums, diskSHA256(t, raw))
				rec = diskReadRecord(t, raw)
			}
			if sums[0] != sums[1] {
				t.Errorf("two runs gave %s and %s", sums[0], sums[1])
			}
			part := diskPartition(t, raw, rec)
			var out []byte
			var err error
			if c.fs == "squashfs" {
				out, err = exec.Command("unsquashfs", "-lln", part).Output()
				if err == nil && !regexp.MustCompile(`drwxr-x--- 65532/65532 .* 2023-11-14 22:13 squashfs-root/var/cache/app\n`).Match(out) {
					err = errors.New("no /var/cache/app 0750 65532:65532")
				}
				if err == nil && !regexp.MustCompile(`lrwxrwxrwx 0/0 .* squashfs-root/usr/local/bin/server -> /app/server\n`).Match(out) {
					err = errors.New("no /usr/local/bin/server symlink")
				}
			} else {
				out, err = exec.Command("dump.erofs", "--path=/var/cache/app", part).Output()
				if err == nil && !strings.Contains(string(out), "Uid: 65532   Gid: 65532  Access: 0750") {
					err = errors.New("no /var/cache/app 0750 65532:65532")
				}
				if err == nil {
					if fo, ferr := exec.Command("fsck.erofs", part).CombinedOutput(); ferr != nil {
						err = fmt.Errorf("fsck.erofs: %v: %s", ferr, fo)
					}
				}
			}
			if err != nil {
				t.Errorf("%s: %v\n%s", c.fs, err, out)
			}
		})
	}
}

// rawTarHeader is a ustar header block, for the entries Go's tar writer
// will not write (a PAX header holding GNU sparse records).
func rawTarHeader(name string, typ byte, size int64) []byte {
	h := make([]byte, 512)
	copy(h[0:100], name)
	copy(h[100:108], "0000644\x00")
	copy(h[108:116], "0000000\x00")
	copy(h[116:124], "0000000\x00")
	copy(h[124:136], fmt.Sprintf("%011o\x00", size))
	copy(h[136:148], fmt.Sprintf("%011o\x00", e2eEpoch))
	copy(h[148:156], "        ")
	h[156] = typ
	copy(h[257:265], "ustar\x0000")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

func pad512(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

// paxRecord is one "len key=value\n" record; len counts itself.
func paxRecord(k, v string) string {
	n := len(k) + len(v) + 3
	for {
		s := fmt.Sprintf("%d %s=%s\n", n, k, v)
		if len(s) == n {
			return s
		}
		n = len(s)
	}
}

// sparseEntry is a GNU sparse (PAX 1.0) file of realSize bytes, with
// 4 KiB of data at offset dataAt and holes elsewhere.
func sparseEntry(name string, realSize, dataAt int64) []byte {
	pax := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", name) + paxRecord("GNU.sparse.realsize", fmt.Sprint(realSize))
	sparseMap := pad512([]byte(fmt.Sprintf("1\n%d\n4096\n", dataAt)))
	data := append(sparseMap, bytes.Repeat([]byte("S"), 4096)...)
	var out []byte
	out = append(out, rawTarHeader("PaxHeaders/"+name, 'x', int64(len(pax)))...)
	out = append(out, pad512([]byte(pax))...)
	out = append(out, rawTarHeader("GNUSparseFile.0/"+name, '0', int64(len(data)))...)
	return append(out, pad512(data)...)
}

// hostileTar is a layer that tries every way out: .. in names, absolute
// names, relative and absolute symlinks leading out with files "under"
// them, hard links to outside, device nodes, a name with a line break, and
// a sparse file, apart from setuid and foreign owners and an xattr.
func hostileTar(t *testing.T, outside string, sparse []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	b.Write(sparse)
	tw := tar.NewWriter(&b)
	up := strings.Repeat("../", 24)
	for _, h := range []*tar.Header{
		{Name: "../../../escape-dotdot", Typeflag: tar.TypeReg, Size: 6, Mode: 0o644},
		{Name: "/abs/file", Typeflag: tar.TypeReg, Size: 6, Mode: 0o644},
		{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: up + strings.TrimPrefix(outside, "/")},
		{Name: "evil/pwned", Typeflag: tar.TypeReg, Size: 6, Mode: 0o644},
		{Name: "evil-abs", Typeflag: tar.TypeSymlink, Linkname: outside},
		{Name: "evil-abs/pwned", Typeflag: tar.TypeReg, Size: 6, Mode: 0o644},
		{Name: "hl-out", Typeflag: tar.TypeLink, Linkname: up + strings.TrimPrefix(outside, "/") + "/target"},
		{Name: "hl-abs", Typeflag: tar.TypeLink, Linkname: outside + "/target"},
		{Name: "dev/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666},
		{Name: "dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8, Devminor: 0, Mode: 0o660, Gid: 6},
		{Name: "dev/fifo", Typeflag: tar.TypeFifo, Mode: 0o600},
		{Name: "new\nline", Typeflag: tar.TypeReg, Size: 6, Mode: 0o644},
		{Name: `we"ird na\me`, Typeflag: tar.TypeReg, Size: 6, Mode: 0o640, Uid: 7, Gid: 8},
		{Name: "suid", Typeflag: tar.TypeReg, Size: 6, Mode: 0o4755, Uid: 1000, Gid: 1000,
			PAXRecords: map[string]string{"SCHILY.xattr.user.note": "hello"}},
	} {
		h.ModTime, h.Format = timeUnix(e2eEpoch), tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, "pwned!")
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// hostileLayout wraps a tar as a one-layer OCI layout.
func hostileLayout(t *testing.T, dir string, tarball_ []byte) string {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tarball_)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = "amd64", "linux", v1.Time{Time: timeUnix(e2eEpoch)}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.Append(img, mutate.Addendum{Layer: l, MediaType: types.OCILayer}); err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "hostile"})); err != nil {
		t.Fatal(err)
	}
	return "oci:" + dir + ":hostile"
}

// diskSnapshot lists every path under dir with its type, mode and size.
func diskSnapshot(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %v %d", p, fi.Mode(), fi.Size()))
		return nil
	})
	return out
}

// TestE2EDiskHostile: a hostile layer is contained (nothing outside the
// work directory changes), what cannot go on a disk is skipped and listed,
// and everything else lands with the image's metadata, device nodes
// included; a sparse file far larger than the disk is refused before any
// work, and a failed run leaves no file.
func TestE2EDiskHostile(t *testing.T) {
	t.Parallel()
	testtool.Require(t, diskTools...)
	root := t.TempDir()
	outside := filepath.Join(root, "outside")
	os.Mkdir(outside, 0o755)
	os.WriteFile(filepath.Join(outside, "target"), []byte("do not touch\n"), 0o644)
	tmp := filepath.Join(root, "tmp")
	os.Mkdir(tmp, 0o755)
	out := filepath.Join(root, "out")
	before := diskSnapshot(t, outside)

	const sparseSize = 48 << 20
	ref := hostileLayout(t, filepath.Join(root, "layout"), hostileTar(t, outside, sparseEntry("sparse", sparseSize, 8<<20)))
	raw := filepath.Join(out, "hostile.raw")
	r := invocation{dir: root, env: []string{"TMPDIR=" + tmp}}.run(t, "disk", ref, "-o", raw, "--size", diskSize)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if diff := cmp.Diff(before, diskSnapshot(t, outside)); diff != "" {
		t.Errorf("outside the work directory, things changed:\n%s", diff)
	}
	if names := diskEntries(t, tmp); len(names) != 0 {
		t.Errorf("TMPDIR holds %v after the run", names)
	}
	rec := diskReadRecord(t, raw)
	var skipped []string
	for _, s := range rec.Skipped {
		skipped = append(skipped, s.Path)
		if !strings.Contains(r.stderr, s.Reason) {
			t.Errorf("stderr does not warn about %s (%s):\n%s", s.Path, s.Reason, r.stderr)
		}
	}
	sort.Strings(skipped)
	wantSkipped := []string{"/evil-abs/pwned", "/evil/pwned", "/hl-abs", "/hl-out", "/new\nline"}
	if diff := cmp.Diff(wantSkipped, skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}

	part := diskPartition(t, raw, rec)
	if o, err := exec.Command("e2fsck", "-fn", part).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn: %v\n%s", err, o)
	}
	ls := debugfsR(t, part, "ls -p /")
	for _, name := range []string{"abs", "dev", "escape-dotdot", "evil", "evil-abs", "sparse", "suid", `we"ird na\me`} {
		if !strings.Contains(ls, "/"+name+"/") {
			t.Errorf("/%s is not on the disk:\n%s", name, ls)
		}
	}
	for _, name := range []string{"hl-out", "hl-abs", "outside", "target", "pwned"} {
		if strings.Contains(ls, "/"+name+"/") {
			t.Errorf("/%s is on the disk:\n%s", name, ls)
		}
	}
	for _, c := range []struct{ path, kind, mode, owner, link string }{
		{"/escape-dotdot", "regular", "0644", "0:0", ""},
		{"/abs/file", "regular", "0644", "0:0", ""},
		{"/evil", "symlink", "0777", "0:0", "../../../../../../../../../../../../../../../../../../../../../../../.." + outside},
		{"/evil-abs", "symlink", "0777", "0:0", outside},
		{"/dev/null", "character special", "0666", "0:0", ""},
		{"/dev/sda", "block special", "0660", "0:6", ""},
		{"/dev/fifo", "FIFO", "0600", "0:0", ""},
		{"/suid", "regular", "04755", "1000:1000", ""},
		{`/we"ird na\me`, "regular", "0640", "7:8", ""},
	} {
		st := diskStatOf(t, part, c.path)
		if c.kind == "FIFO" {
			// debugfs prints "Type: FIFO".
			st.kind = strings.TrimSpace(st.kind)
		}
		got := []string{st.kind, st.mode, st.owner, st.link}
		want := []string{c.kind, c.mode, c.owner, c.link}
		if !cmp.Equal(got, want) {
			t.Errorf("%s: %v, want %v", c.path, got, want)
		}
	}
	if o := debugfsR(t, part, "stat /dev/null"); !strings.Contains(o, "Device major/minor number: 01:03") {
		t.Errorf("/dev/null is not 1:3:\n%s", o)
	}
	if o := debugfsR(t, part, "ea_list /suid"); !strings.Contains(o, `user.note (5) = "hello"`) {
		t.Errorf("/suid lacks user.note:\n%s", o)
	}
	if got := debugfsR(t, part, "cat /escape-dotdot"); got != "pwned!" {
		t.Errorf("/escape-dotdot holds %q", got)
	}
	// The sparse file: its full size, its data at 8 MiB, and holes (a few
	// blocks, not 48 MiB of them).
	st := debugfsR(t, part, "stat /sparse")
	if !strings.Contains(st, fmt.Sprintf("Size: %d", sparseSize)) {
		t.Errorf("/sparse:\n%s", st)
	}
	if m := regexp.MustCompile(`Blockcount: (\d+)`).FindStringSubmatch(st); m == nil || len(m[1]) > 3 {
		t.Errorf("/sparse is not sparse on the disk:\n%s", st)
	}
	body := debugfsR(t, part, "cat /sparse")
	if len(body) != sparseSize || body[8<<20:8<<20+4096] != strings.Repeat("S", 4096) || strings.Trim(body[:8<<20], "\x00") != "" {
		t.Errorf("/sparse holds the wrong bytes (%d)", len(body))
	}

	t.Run("too-big-sparse-file", func(t *testing.T) {
		ref := hostileLayout(t, filepath.Join(t.TempDir(), "layout"), sparseEntry("huge", 1<<30, 1<<29))
		out := t.TempDir()
		tmp := t.TempDir()
		r := invocation{dir: root, env: []string{"TMPDIR=" + tmp}}.run(t, "disk", ref, "-o", filepath.Join(out, "huge.qcow2"), "--size", diskSize)
		if r.code != 2 || !strings.Contains(r.stderr, "raise --size") {
			t.Errorf("exit %d, want 2 with advice to raise --size:\n%s", r.code, r.stderr)
		}
		if names := diskEntries(t, out); len(names) != 0 {
			t.Errorf("a failed run left %v", names)
		}
		if names := diskEntries(t, tmp); len(names) != 0 {
			t.Errorf("a failed run left %v in TMPDIR", names)
		}
	})
}

// TestE2EDiskUsage: bad flags exit 2, a missing host tool exits 3 and names
// its Debian package, an index needs --platform.
func TestE2EDiskUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		env  []string
		code int
		msg  string
	}{
		{args: []string{"disk", "oci:x:y"}, code: 2, msg: "-o FILE"},
		{args: []string{"disk", "-o", "d.raw"}, code: 2, msg: "one image reference"},
		{args: []string{"disk", "oci:x:y", "-o", "d.raw", "--size", "10M"}, code: 2, msg: "smallest disk"},
		{args: []string{"disk", "oci:x:y", "-o", "d.raw", "--size", "1.5G"}, code: 2, msg: "not a size"},
		{args: []string{"disk", "oci:x:y", "-o", "d.raw", "--format", "vhdx"}, code: 2, msg: "use raw, qcow2, vmdk, vhd or gce"},
		{args: []string{"disk", "oci:x:y", "-o", "d.raw", "--fs", "btrfs"}, code: 2, msg: "use ext4, erofs or squashfs"},
		// qemu-img lives in /usr/bin, which this PATH lacks (mke2fs and
		// sfdisk are still found in /usr/sbin).
		{args: []string{"disk", "oci:x:y", "-o", "d.qcow2"}, env: []string{"PATH=" + dir}, code: 3, msg: "qemu-utils"},
	} {
		r := invocation{dir: dir, env: c.env}.run(t, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("repro %q: exit %d, want %d with %q:\n%s", c.args, r.code, c.code, c.msg, r.stderr)
		}
	}
	if names := diskEntries(t, dir); len(names) != 0 {
		t.Errorf("failed runs left %v", names)
	}
}

// cpioFile is one entry of an initramfs.
type cpioFile struct {
	name string
	mode uint32 // with the type bits
	data []byte
}

// newcArchive writes files as a cpio "newc" archive, the initramfs format.
func newcArchive(files []cpioFile) []byte {
	var b bytes.Buffer
	pad := func() {
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	for i, f := range append(files, cpioFile{name: "TRAILER!!!"}) {
		fmt.Fprintf(&b, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			i+1, f.mode, 0, 0, 1, e2eEpoch, len(f.data), 0, 0, 0, 0, len(f.name)+1, 0)
		b.WriteString(f.name)
		b.WriteByte(0)
		pad()
		b.Write(f.data)
		pad()
	}
	return b.Bytes()
}

// bootInit mounts the disk's root partition read-only and prints what the
// test looks for on the serial console.
const bootInit = `#!/bin/busybox sh
bb=/bin/busybox
$bb mkdir -p /proc /sys /dev /mnt
$bb mount -t proc proc /proc
$bb mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk; do
	$bb insmod /lib/$m.ko
done
i=0
while [ ! -b /dev/vda1 ] && [ $i -lt 100 ]; do $bb sleep 0.1; i=$((i+1)); done
$bb mount -t ext4 -o ro /dev/vda1 /mnt && echo "REPRO-BOOT motd: $($bb cat /mnt/etc/motd)"
$bb stat -c 'REPRO-BOOT %n %a %u:%g %F' /mnt/var/cache/app /mnt/app/server /mnt/usr/local/bin/server
echo "REPRO-BOOT link: $($bb readlink /mnt/usr/local/bin/server)"
echo REPRO-BOOT-END
$bb poweroff -f
`

// bootKernel fetches Debian's cloud kernel with apt-get download (once per
// machine, into the user cache) and returns the unpacked package's root.
func bootKernel(t *testing.T) string {
	t.Helper()
	testtool.Require(t, "apt-get", "apt-cache", "dpkg-deb")
	out, err := exec.Command("apt-cache", "depends", "linux-image-cloud-amd64").Output()
	m := regexp.MustCompile(`Depends: (linux-image-[0-9][^\s]*-cloud-amd64)`).FindSubmatch(out)
	if err != nil || m == nil {
		bootUnavailable(t, fmt.Sprintf("apt-cache depends linux-image-cloud-amd64: %v\n%s", err, out))
	}
	pkg := string(m[1])
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "repro-test", pkg)
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return dir
	}
	dl := t.TempDir()
	os.Chmod(dl, 0o777) // apt drops to _apt for the download
	cmd := exec.Command("apt-get", "download", "-q", pkg)
	cmd.Dir = dl
	if out, err := cmd.CombinedOutput(); err != nil {
		bootUnavailable(t, fmt.Sprintf("apt-get download %s: %v\n%s", pkg, err, out))
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("apt-get download %s left %v", pkg, debs)
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	testtool.Run(t, "dpkg-deb", "-x", debs[0], dir)
	os.WriteFile(filepath.Join(dir, "done"), nil, 0o644)
	return dir
}

func bootUnavailable(t *testing.T, why string) {
	t.Helper()
	if testtool.InCI() {
		t.Fatalf("%s; CI installs apt's lists, and CI=true makes this an error", why)
	}
	t.Skip(why)
}

// TestE2EDiskBoot boots the go-server disk under TCG with Debian's cloud
// kernel and a busybox initramfs: a real kernel finds the GPT partition,
// mounts the ext4 and sees the image's contents, owners and modes.
func TestE2EDiskBoot(t *testing.T) {
	t.Parallel()
	testtool.Require(t, append(diskTools, "qemu-system-x86_64", "busybox")...)
	kdir := bootKernel(t)
	kernels, _ := filepath.Glob(filepath.Join(kdir, "boot", "vmlinuz-*"))
	if len(kernels) != 1 {
		t.Fatalf("no kernel in %s", kdir)
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal(err)
	}
	busybox, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	files := []cpioFile{
		{name: "bin", mode: 0o040755}, {name: "lib", mode: 0o040755},
		{name: "bin/busybox", mode: 0o100755, data: busybox},
		{name: "init", mode: 0o100755, data: []byte(bootInit)},
	}
	for _, m := range []string{"virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci"} {
		files = append(files, bootModule(t, kdir, "drivers/virtio/"+m+".ko"))
	}
	files = append(files, bootModule(t, kdir, "drivers/block/virtio_blk.ko"))
	work := t.TempDir()
	initrd := filepath.Join(work, "initrd.cpio")
	if err := os.WriteFile(initrd, newcArchive(files), 0o644); err != nil {
		t.Fatal(err)
	}

	ref, _ := diskLayout(t, work)
	disk := filepath.Join(work, "disk.qcow2")
	repro(t, work, "disk", ref, "-o", disk, "--size", diskSize)
	cmd := exec.Command("qemu-system-x86_64", "-accel", "tcg", "-m", "256", "-smp", "1",
		"-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", kernels[0], "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet loglevel=3",
		"-drive", "file="+disk+",if=virtio,format=qcow2,snapshot=on")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("qemu: %v\n%s", err, out)
	}
	t.Logf("booted, checked and powered off under TCG in %.1fs", time.Since(start).Seconds())
	var got []string
	for _, line := range strings.Split(string(out), "\n") {
		if i := strings.Index(line, "REPRO-BOOT"); i >= 0 {
			got = append(got, strings.TrimRight(line[i:], "\r"))
		}
	}
	want := []string{
		"REPRO-BOOT motd: built by repro",
		"REPRO-BOOT /mnt/var/cache/app 750 65532:65532 directory",
		"REPRO-BOOT /mnt/app/server 755 0:0 regular file",
		"REPRO-BOOT /mnt/usr/local/bin/server 777 0:0 symbolic link",
		"REPRO-BOOT link: /app/server",
		"REPRO-BOOT-END",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("serial console (-want +got):\n%s\nfull output:\n%s", diff, out)
	}

	// The same boot through the Packer template: packer build checks the
	// disk's checksum, copies it, boots it, and waits for it to stop.
	t.Run("packer-build", func(t *testing.T) {
		testtool.Require(t, "packer")
		pdir := filepath.Join(work, "packer")
		repro(t, work, "disk", ref, "-o", disk, "--size", diskSize, "--packer", pdir)
		serial := filepath.Join(work, "serial.log")
		vars := fmt.Sprintf("qemuargs = [[\"-kernel\", %q], [\"-initrd\", %q], [\"-append\", \"console=ttyS0 panic=-1 quiet loglevel=3\"], [\"-no-reboot\", \"\"], [\"-serial\", %q]]\noutput_directory = %q\nshutdown_timeout = \"2m\"\n",
			kernels[0], initrd, "file:"+serial, filepath.Join(work, "packer-out"))
		os.WriteFile(filepath.Join(work, "boot.pkrvars.hcl"), []byte(vars), 0o644)
		cmd := exec.Command("packer", "build", "-var-file=packer/repro-disk.pkrvars.hcl", "-var-file=boot.pkrvars.hcl", "packer/repro-disk.pkr.hcl")
		cmd.Dir = work
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "CHECKPOINT_DISABLE=1", "PACKER_CACHE_DIR=" + t.TempDir()}
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("packer build: %v\n%s", err, out)
		}
		t.Logf("packer build took %.1fs", time.Since(start).Seconds())
		console, _ := os.ReadFile(serial)
		if !strings.Contains(string(console), "REPRO-BOOT motd: built by repro") || !strings.Contains(string(console), "REPRO-BOOT-END") {
			t.Errorf("the VM packer booted printed:\n%s", console)
		}
		// vm_name comes from the variables file: the disk's base name.
		if _, err := os.Stat(filepath.Join(work, "packer-out", "disk")); err != nil {
			t.Errorf("packer wrote no disk: %v (%v)", err, diskEntries(t, filepath.Join(work, "packer-out")))
		}
	})
}

// bootModule is a kernel module from the unpacked kernel package, as
// lib/NAME.ko of the initramfs.
func bootModule(t *testing.T, kdir, rel string) cpioFile {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(kdir, "lib", "modules", "*", "kernel", rel))
	if len(matches) != 1 {
		t.Fatalf("kernel module %s: found %v", rel, matches)
	}
	data, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	return cpioFile{name: "lib/" + filepath.Base(rel), mode: 0o100644, data: data}
}

// TestE2EDiskFailureLeavesNothing: a disk that fails after its output's
// parent directories were made (the files do not fit) takes them away
// again, and a -o that is a directory or a --packer that is a file is bad
// usage before any work.
func TestE2EDiskFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	testtool.Require(t, diskTools...)
	dir := t.TempDir()
	ctx := filepath.Join(dir, "ctx")
	os.MkdirAll(ctx, 0o755)
	// 64 MiB of apparent size that compresses to nothing.
	if err := os.WriteFile(filepath.Join(ctx, "repro.yaml"), []byte("version: 1\nname: big\nlayers:\n  - contents:\n      - {path: /big, source: big}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(ctx, "big"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(64 << 20)
	f.Close()
	repro(t, ctx, "build", "-q", "-o", "oci:"+filepath.Join(dir, "lay")+":t")
	ref := "oci:" + filepath.Join(dir, "lay") + ":t"
	out := filepath.Join(dir, "new", "sub", "d.raw")
	r := invocation{dir: dir}.run(t, "disk", ref, "-o", out, "--size", "48M")
	if r.code != 2 || !strings.Contains(r.stderr, "raise --size") {
		t.Errorf("files that do not fit: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); err == nil {
		t.Errorf("a failed disk left the directories it made for -o")
	}
	os.Mkdir(filepath.Join(dir, "adir"), 0o755)
	os.WriteFile(filepath.Join(dir, "afile"), nil, 0o644)
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-o", filepath.Join(dir, "adir")}, "is a directory, and a disk is a file\nrepro disk: -o names the disk file"},
		{[]string{"-o", filepath.Join(dir, "p.raw"), "--packer", filepath.Join(dir, "afile")}, "is a file; it names the directory"},
	} {
		r := invocation{dir: dir}.run(t, append([]string{"disk", ref, "--size", "256M"}, c.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("%v: exit %d, want 2 with %q\n%s", c.args, r.code, c.msg, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "p.raw")); err == nil {
		t.Errorf("a bad --packer still wrote the disk")
	}
}
