package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprobuild/repro/internal/testtool"
)

// TestE2EDiskBootCmdline drives disk --boot --cmdline (the other tests
// pass it only without --boot, where it is refused): the arguments end
// the kernel command line that the record names and that the ESP's
// loader entry gives systemd-boot.
func TestE2EDiskBootCmdline(t *testing.T) {
	t.Parallel()
	testtool.Require(t, "sfdisk", "mke2fs", "debugfs", "e2fsck", "mtype", "dpkg-scanpackages", "dpkg-deb", "gpg")
	ref, _ := bootImage(t)
	raw := filepath.Join(t.TempDir(), "vm.raw")
	start := time.Now()
	repro(t, t.TempDir(), "disk", ref, "-o", raw, "--boot", "--size", "512M", "--cmdline", "quiet repro.flag=1")
	t.Logf("disk --boot --cmdline (raw, 512 MiB) took %.1fs", time.Since(start).Seconds())
	rec := readBootRecord(t, raw)
	if !strings.HasSuffix(rec.Boot.Cmdline, " quiet repro.flag=1") || !strings.Contains(rec.Boot.Cmdline, "root=PARTUUID=") {
		t.Errorf("the record's command line %q does not end with --cmdline's", rec.Boot.Cmdline)
	}
	esp := extract(t, raw, rec.Boot.ESP.Start, rec.Boot.ESP.Size, "esp.img")
	cmd := exec.Command("mtype", "-i", esp, "::/loader/entries/repro.conf")
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	entry, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mtype: %v\n%s", err, entry)
	}
	if !strings.Contains(string(entry), "options "+rec.Boot.Cmdline+"\n") {
		t.Errorf("the loader entry does not pass the command line %q:\n%s", rec.Boot.Cmdline, entry)
	}
}
