package systemd

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func tree(files map[string]string) *Tree {
	t := NewTree()
	for p, v := range files {
		switch {
		case strings.HasPrefix(v, "->"):
			t.Add(p, Symlink, strings.TrimPrefix(v, "->"), nil)
		case v == "dir":
			t.Add(p, Dir, "", nil)
		default:
			t.Add(p, File, "", []byte(v))
		}
	}
	return t
}

const nginxUnit = `[Unit]
Description=A high performance web server
[Service]
ExecStart=/usr/sbin/nginx
[Install]
WantedBy=multi-user.target
`

func TestEnable(t *testing.T) {
	base := map[string]string{
		// usrmerge: the .deb's /lib/systemd/system lands in /usr/lib.
		"/lib":                                          "->usr/lib",
		"/usr/lib/systemd/system/nginx.service":         nginxUnit,
		"/usr/lib/systemd/system/ssh.service":           "[Service]\nExecStart=/usr/sbin/sshd\n[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n",
		"/usr/lib/systemd/system/ssh.socket":            "[Socket]\nListenStream=22\n[Install]\nWantedBy=sockets.target\nAlso=ssh.service missing.service\n",
		"/usr/lib/systemd/system/getty@.service":        "[Service]\n[Install]\nWantedBy=getty.target\nDefaultInstance=tty1\n",
		"/usr/lib/systemd/system/serial-getty@.service": "[Service]\n[Install]\n# no default\nWantedBy=getty.target\n",
		"/usr/lib/systemd/system/static.service":        "[Service]\nExecStart=/bin/true\n",
		"/usr/lib/systemd/system/multi.service":         "[Install]\nWantedBy=a.target \\\n  b.target\nRequiredBy=c.target\nUpheldBy=d.target\nWantedBy=\nWantedBy=%p-x.target\n",
		"/usr/lib/systemd/system/dbus-org.x.service":    "->x.service",
		"/usr/lib/systemd/system/x.service":             "[Install]\nWantedBy=multi-user.target\n",
		"/etc/systemd/system/masked.service":            "->/dev/null",
		"/usr/lib/systemd/system/masked.service":        nginxUnit,
		"/etc/systemd/system/local.service":             "[Install]\nWantedBy=default.target\n",
		"/usr/lib/systemd/system/bad.service":           "[Install]\nWantedBy=%H.target\n",
	}
	for _, tc := range []struct {
		name  string
		units []string
		want  []Link
		warn  string
		err   string
	}{
		{name: "wantedby", units: []string{"nginx.service"}, want: []Link{
			{"/etc/systemd/system/multi-user.target.wants/nginx.service", "/lib/systemd/system/nginx.service"}}},
		{name: "alias", units: []string{"ssh.service"}, want: []Link{
			{"/etc/systemd/system/multi-user.target.wants/ssh.service", "/lib/systemd/system/ssh.service"},
			{"/etc/systemd/system/sshd.service", "/lib/systemd/system/ssh.service"}}},
		{name: "also", units: []string{"ssh.socket"}, warn: "missing.service", want: []Link{
			{"/etc/systemd/system/multi-user.target.wants/ssh.service", "/lib/systemd/system/ssh.service"},
			{"/etc/systemd/system/sockets.target.wants/ssh.socket", "/lib/systemd/system/ssh.socket"},
			{"/etc/systemd/system/sshd.service", "/lib/systemd/system/ssh.service"}}},
		{name: "default-instance", units: []string{"getty@.service"}, want: []Link{
			{"/etc/systemd/system/getty.target.wants/getty@tty1.service", "/lib/systemd/system/getty@.service"}}},
		{name: "instance", units: []string{"serial-getty@ttyS0.service"}, want: []Link{
			{"/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service", "/lib/systemd/system/serial-getty@.service"}}},
		{name: "lists", units: []string{"multi.service"}, want: []Link{
			{"/etc/systemd/system/c.target.requires/multi.service", "/lib/systemd/system/multi.service"},
			{"/etc/systemd/system/multi-x.target.wants/multi.service", "/lib/systemd/system/multi.service"}}},
		{name: "symlinked-name", units: []string{"dbus-org.x.service"}, want: []Link{
			{"/etc/systemd/system/multi-user.target.wants/x.service", "/lib/systemd/system/x.service"}}},
		{name: "etc-first", units: []string{"local.service"}, want: []Link{
			{"/etc/systemd/system/default.target.wants/local.service", "/etc/systemd/system/local.service"}}},
		{name: "template-no-default", units: []string{"serial-getty@.service"}, err: "without DefaultInstance"},
		{name: "static", units: []string{"static.service"}, err: "no [Install] section"},
		{name: "masked", units: []string{"masked.service"}, err: "masked"},
		{name: "missing", units: []string{"nope.service"}, err: "no unit file"},
		{name: "not-a-unit", units: []string{"nginx"}, err: "not a unit name"},
		{name: "specifier", units: []string{"bad.service"}, err: "%H"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, warn, err := Enable(tree(base), tc.units)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("links (-want +got):\n%s", diff)
			}
			if tc.warn != "" && (len(warn) != 1 || !strings.Contains(warn[0], tc.warn)) {
				t.Errorf("warnings = %q, want one naming %s", warn, tc.warn)
			}
		})
	}
}

func TestEnableExisting(t *testing.T) {
	files := map[string]string{
		"/lib/systemd/system/nginx.service":                         nginxUnit,
		"/etc/systemd/system/multi-user.target.wants/nginx.service": "->/lib/systemd/system/nginx.service",
	}
	got, _, err := Enable(tree(files), []string{"nginx.service"})
	if err != nil || len(got) != 0 {
		t.Errorf("an enabled unit: links %v, err %v; want none", got, err)
	}
	files["/etc/systemd/system/multi-user.target.wants/nginx.service"] = "->/elsewhere"
	if _, _, err := Enable(tree(files), []string{"nginx.service"}); err == nil || !strings.Contains(err.Error(), "already has") {
		t.Errorf("a link elsewhere: err %v", err)
	}
}

func TestWanted(t *testing.T) {
	for p, want := range map[string]bool{
		"/lib": true, "/usr": true, "/usr/lib": true, "/usr/lib/systemd": true,
		"/usr/lib/systemd/system/nginx.service": true, "/etc/systemd/system/x.target.wants/y.service": true,
		"/usr/lib/x86_64-linux-gnu/libc.so.6": false, "/usr/share/doc/nginx": false, "/etc/nginx/nginx.conf": false,
	} {
		if Wanted(p) != want {
			t.Errorf("Wanted(%s) = %v", p, !want)
		}
	}
}

// TestInUnitDirAndHasNonDir: what addUnitFiles's "this layer holds units"
// rests on: a unit directory and below it, never its parents; a symlink
// or file held, never a directory.
func TestInUnitDirAndHasNonDir(t *testing.T) {
	for p, want := range map[string]bool{"/etc/systemd/system": true, "/etc/systemd/system/a.service": true, "/lib/systemd/system/x": true, "/etc": false, "/etc/systemd": false, "/usr": false, "/srv/x": false} {
		if got := InUnitDir(p); got != want {
			t.Errorf("InUnitDir(%s) = %v, want %v", p, got, want)
		}
	}
	tr := NewTree()
	tr.Add("/lib", Symlink, "usr/lib", nil)
	tr.Add("/usr", Dir, "", nil)
	tr.Add("/etc/systemd/system/a.service", File, "", []byte("[Unit]\n"))
	for p, want := range map[string]bool{"/lib": true, "/usr": false, "/etc/systemd/system/a.service": true, "/nothing": false} {
		if got := tr.HasNonDir(p); got != want {
			t.Errorf("HasNonDir(%s) = %v, want %v", p, got, want)
		}
	}
}
