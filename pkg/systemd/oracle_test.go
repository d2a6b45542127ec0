package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reprobuild/repro/internal/testtool"
)

// TestEnableMatchesSystemctl enables the same units in a directory with
// systemd's own systemctl --root (252 on Debian 12) and compares the links
// it makes with Enable's.
func TestEnableMatchesSystemctl(t *testing.T) {
	tools := testtool.Require(t, "systemctl")
	units := map[string]string{
		"/usr/lib/systemd/system/nginx.service":         nginxUnit,
		"/usr/lib/systemd/system/ssh.service":           "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\nAlso=ssh.socket\n",
		"/usr/lib/systemd/system/ssh.socket":            "[Socket]\nListenStream=22\n[Install]\nWantedBy=sockets.target\n",
		"/usr/lib/systemd/system/getty@.service":        "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=getty.target\nDefaultInstance=tty1\n",
		"/usr/lib/systemd/system/serial-getty@.service": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=getty.target\n",
		"/usr/lib/systemd/system/multi.service":         "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=a.target \\\n  b.target\nRequiredBy=c.target\nUpheldBy=d.target\nWantedBy=\nWantedBy=%p-x.target %N-y.target\n",
		"/usr/lib/systemd/system/x.service":             "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\nAlias=dbus-org.x.service\n",
		"/etc/systemd/system/local.service":             "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=default.target\n",
	}
	enable := []string{"nginx.service", "ssh.service", "getty@.service", "serial-getty@ttyS0.service", "multi.service", "x.service", "local.service"}

	root := t.TempDir()
	tree := NewTree()
	// usrmerge, as repro builds Debian images: /lib is a link into /usr.
	os.MkdirAll(filepath.Join(root, "usr", "lib"), 0o755)
	os.Symlink("usr/lib", filepath.Join(root, "lib"))
	tree.Add("/lib", Symlink, "usr/lib", nil)
	for p, text := range units {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		tree.Add(p, File, "", []byte(text))
	}
	got, _, err := Enable(tree, enable)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tools["systemctl"], append([]string{"--root=" + root, "enable"}, enable...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("systemctl enable: %v\n%s", err, out)
	}
	var want []Link
	filepath.Walk(filepath.Join(root, "etc"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode()&os.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			want = append(want, Link{Path: strings.TrimPrefix(p, root), Target: target})
		}
		return nil
	})
	sort.Slice(want, func(i, j int) bool { return want[i].Path < want[j].Path })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("links (-systemctl +repro):\n%s", diff)
	}
}
