package accounts

import (
	"archive/tar"
	"io"
	"strings"
	"testing"

	"github.com/reprobuild/repro/pkg/base"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/layer"
	"github.com/reprobuild/repro/pkg/spec"
)

// debian is a base's account files, as Debian 12 ships them (shortened).
func debian() map[string]*base.File {
	f := func(path, data string, mode int64, gid int) *base.File {
		return &base.File{Path: path, Type: tar.TypeReg, Mode: mode, GID: gid, Data: []byte(data)}
	}
	return map[string]*base.File{
		"/etc/passwd":  f("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", 0o644, 0),
		"/etc/group":   f("/etc/group", "root:x:0:\ndaemon:x:1:\nshadow:x:42:\nwww-data:x:33:alice\nnogroup:x:65534:\n", 0o644, 0),
		"/etc/shadow":  f("/etc/shadow", "root:$y$j9T$secret:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nwww-data:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n", 0o640, 42),
		"/etc/gshadow": f("/etc/gshadow", "root:*::\ndaemon:*::\nshadow:*::\nwww-data:*::\nnogroup:*::\n", 0o640, 42),
	}
}

func parse(t *testing.T, accounts string) *spec.Spec {
	t.Helper()
	s, err := spec.Parse("repro.yaml", t.TempDir(), []byte("version: 1\nname: app\naccounts:\n"+accounts), spec.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func read(t *testing.T, es []layer.Entry) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, e := range es {
		rc, err := e.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != e.Size {
			t.Errorf("%s: size %d, content %d bytes", e.Path, e.Size, len(b))
		}
		out[e.Path] = string(b)
	}
	return out
}

func TestEntriesOverTheBase(t *testing.T) {
	s := parse(t, `  groups: [{name: app, gid: 10001}, {name: www-data, gid: 33}]
  users:
    - {name: app, uid: 10001, gid: 10001, home: /srv/app}
    - {name: www-data, uid: 33, gid: 33, home: /srv/www, shell: /bin/false}
`)
	es, err := Entries(s, debian())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"/etc/passwd": "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nwww-data:x:33:33:www-data:/srv/www:/bin/false\napp:x:10001:10001::/srv/app:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"/etc/group":  "root:x:0:\ndaemon:x:1:\nwww-data:x:33:alice\nshadow:x:42:\napp:x:10001:\nnogroup:x:65534:\n",
		// The base's lines stay as they are, root's hash included.
		"/etc/shadow":  "root:$y$j9T$secret:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nwww-data:*:::::::\napp:*:::::::\nnobody:*:19000:0:99999:7:::\n",
		"/etc/gshadow": "root:*::\ndaemon:*::\nwww-data:*::\nshadow:*::\napp:*::\nnogroup:*::\n",
	}
	got := read(t, es)
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s:\n%s\nwant\n%s", p, got[p], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d files, want %d", len(got), len(want))
	}
	for _, e := range es {
		// The base's files keep their modes and owners.
		if b := debian()[e.Path]; uint32(b.Mode) != e.Mode || b.GID != e.GID || e.UID != 0 || e.Type != layer.Regular {
			t.Errorf("%s: mode %o %d:%d, want the base's %o 0:%d", e.Path, e.Mode, e.UID, e.GID, b.Mode, b.GID)
		}
	}
}

func TestEntriesNoBase(t *testing.T) {
	s := parse(t, "  groups: [{name: app, gid: 10001}]\n  users: [{name: app, uid: 10001, gid: 10001, home: /srv/app}]\n")
	es, err := Entries(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := read(t, es)
	want := map[string]string{
		"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:10001:10001::/srv/app:/usr/sbin/nologin\n",
		"/etc/group":  "root:x:0:\napp:x:10001:\n",
		"/etc/shadow": "root:*:::::::\napp:*:::::::\n",
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s:\n%s\nwant\n%s", p, got[p], w)
		}
	}
	if _, ok := got["/etc/gshadow"]; ok {
		t.Error("/etc/gshadow written without a base that has one")
	}
	for _, e := range es {
		if want := map[string]uint32{"/etc/shadow": 0o640}[e.Path]; want != 0 && e.Mode != want || want == 0 && e.Mode != 0o644 {
			t.Errorf("%s: mode %o", e.Path, e.Mode)
		}
	}
}

func TestEntriesRefused(t *testing.T) {
	for _, tc := range []struct{ accounts, want string }{
		{"  users: [{name: web, uid: 33, gid: 33}]\n", "accounts.users[0].uid: uid 33 is www-data's in the base's /etc/passwd"},
		{"  users: [{name: web, uid: 1000, gid: 1000}]\n", "accounts.users[0].gid: no group has gid 1000"},
		{"  groups: [{name: web, gid: 42}]\n", "accounts.groups[0].gid: gid 42 is shadow's"},
		{"  users: [{name: admin, uid: 0, gid: 0}]\n", "uid 0 is root's"},
	} {
		_, err := Entries(parse(t, tc.accounts), debian())
		if fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v; want %q", strings.TrimSpace(tc.accounts), err, tc.want)
		}
	}
	bad := debian()
	bad["/etc/passwd"].Data = []byte("root:x:zero:0:root:/root:/bin/sh\n")
	if _, err := Entries(parse(t, "  groups: [{name: app, gid: 10001}]\n"), bad); fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), "no numeric id") {
		t.Errorf("a base's passwd without a numeric id: err = %v", err)
	}
}
