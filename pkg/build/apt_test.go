package build

// Tests of layers of Debian packages and of accounts, on repositories of
// generated .debs (package locktest) and small OCI layouts as bases.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/reprobuild/repro/pkg/base"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/lock"
	"github.com/reprobuild/repro/pkg/lock/locktest"
	"github.com/reprobuild/repro/pkg/rootfs"
	"github.com/reprobuild/repro/pkg/spec"
)

// aptWorld publishes nginx-light and its small closure: libc6 ships /lib
// (usrmerge moves it), nginx-common a postinst, libc6 a trigger.
func aptWorld(t *testing.T, extra ...locktest.Deb) (*locktest.Repo, *locktest.Key) {
	t.Helper()
	r := locktest.NewRepo(t)
	k := locktest.NewKey(t, "repro build test")
	debs := []locktest.Deb{
		{Control: "Package: libc6\nVersion: 2.36-9\nArchitecture: amd64\n",
			Files: []locktest.File{{Name: "./lib/", Type: '5'}, {Name: "./lib/x86_64-linux-gnu/", Type: '5'},
				{Name: "./lib/x86_64-linux-gnu/libc.so.6", Mode: 0o755, Body: "libc"},
				{Name: "./lib64/", Type: '5'}, {Name: "./lib64/ld-linux-x86-64.so.2", Type: '2', Link: "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"}},
			Triggers: "activate-noawait ldconfig\n"},
		{Control: "Package: nginx-common\nVersion: 1.22.1-9\nArchitecture: all\n",
			Files: []locktest.File{{Name: "./etc/", Type: '5'}, {Name: "./etc/nginx/", Type: '5'},
				{Name: "./etc/nginx/nginx.conf", Body: "user www-data;\nevents {}\n"},
				{Name: "./var/", Type: '5'}, {Name: "./var/www/", Type: '5'}, {Name: "./var/www/html/", Type: '5', Mode: 0o755, UID: 0, GID: 0}},
			Scripts: []string{"postinst", "postrm"}},
		{Control: "Package: nginx-light\nVersion: 1.22.1-9\nArchitecture: amd64\nDepends: libc6 (>= 2.34), nginx-common (= 1.22.1-9)\n",
			Files: []locktest.File{{Name: "./usr/", Type: '5'}, {Name: "./usr/sbin/", Type: '5'}, {Name: "./usr/sbin/nginx", Mode: 0o755, Body: "nginx"},
				{Name: "./bin/", Type: '5'}, {Name: "./bin/nginx-debug", Type: '2', Link: "../usr/sbin/nginx"}}},
	}
	r.Add(t, append(debs, extra...)...)
	r.Publish(t, "stable", k, time.Unix(1700000000, 0), "amd64")
	return r, k
}

// aptSpec writes a spec using repository r (keyring k) into a fresh
// context and loads it.
func aptSpec(t *testing.T, r *locktest.Repo, k *locktest.Key, more string) *spec.Spec {
	t.Helper()
	text := fmt.Sprintf("version: 1\nname: web\napt:\n  sources: [{url: %s, suites: [stable]}]\n  keyring: keys/repo.asc\n%s", r.URL, more)
	return setup(t, text, map[string]string{"keys/repo.asc": string(k.Public)})
}

// lockFor locks s against its repository and base.
func lockFor(t *testing.T, s *spec.Spec, c *cache.Cache) *lock.File {
	t.Helper()
	f, _, err := lock.Resolve(context.Background(), s, nil, false, base.NewResolver(c, nil), c, nil)
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	return f
}

// withBase sets o.Base from s's base (a local layout).
func withBase(t *testing.T, s *spec.Spec, o *Options) {
	t.Helper()
	if s.Base == "scratch" {
		return
	}
	ref, err := base.ParseRef(s.Base)
	if err != nil {
		t.Fatal(err)
	}
	r := base.NewResolver(o.Cache, nil)
	pin, err := r.Resolve(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	o.Base = &Base{Ref: ref, Pin: pin, Resolver: r}
}

// fileText returns the content of path in img's final filesystem.
func fileText(t *testing.T, img v1.Image, fs *rootfs.FS, path string) string {
	t.Helper()
	var out string
	found := false
	err := rootfs.Walk(context.Background(), img, fs, func(f *rootfs.File, r io.Reader) error {
		if f.Path == path {
			b, err := io.ReadAll(r)
			out, found = string(b), true
			return err
		}
		return nil
	})
	if err != nil || !found {
		t.Fatalf("reading %s: %v (found %v)", path, err, found)
	}
	return out
}

const webLayers = `layers:
  - name: os
    packages: [nginx-light]
  - name: site
    contents:
      - {path: /etc/nginx/sites-enabled/default, type: symlink, target: ../sites-available/default}
accounts:
  groups: [{name: www-data, gid: 33}]
  users: [{name: www-data, uid: 33, gid: 33, home: /var/www}]
`

func TestBuildPackagesAndAccounts(t *testing.T) {
	r, k := aptWorld(t)
	s := aptSpec(t, r, k, webLayers)
	var log bytes.Buffer
	o := opts(t, s)
	o.Log = slog.New(slog.NewTextHandler(&log, nil))
	o.Lock = lockFor(t, s, o.Cache)
	res, err := Build(context.Background(), s, o)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := rootfs.Read(context.Background(), res.Image)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"/bin":                                 "symlink usr/bin 0:0 0777",
		"/sbin":                                "symlink usr/sbin 0:0 0777",
		"/lib":                                 "symlink usr/lib 0:0 0777",
		"/lib64":                               "symlink usr/lib64 0:0 0777",
		"/usr/bin/nginx-debug":                 "symlink ../sbin/nginx 0:0 0777",
		"/usr/lib64/ld-linux-x86-64.so.2":      "symlink /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 0:0 0777",
		"/usr/sbin/nginx":                      "file  0:0 0755",
		"/usr/lib/x86_64-linux-gnu/libc.so.6":  "file  0:0 0755",
		"/var/lib/dpkg/status.d/nginx-light":   "file  0:0 0644",
		"/var/lib/dpkg/status.d/libc6.md5sums": "file  0:0 0644",
		"/etc/nginx/sites-enabled/default":     "symlink ../sites-available/default 0:0 0777",
		"/etc/passwd":                          "file  0:0 0644",
		"/etc/shadow":                          "file  0:0 0640",
	}
	got := map[string]string{}
	for p := range want {
		if f, ok := fs.Get(p); ok {
			got[p] = fmt.Sprintf("%s %s %d:%d %04o", f.Kind, f.Link, f.UID, f.GID, f.Mode)
		}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("files (-want +got):\n%s", d)
	}
	for _, p := range []string{"/lib/x86_64-linux-gnu/libc.so.6", "/var/lib/dpkg/status"} {
		if f, ok := fs.Get(p); ok && f.Layer == 1 {
			t.Errorf("%s is in the layer", p)
		}
	}
	if got := fileText(t, res.Image, fs, "/etc/passwd"); got != "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n" {
		t.Errorf("/etc/passwd:\n%s", got)
	}
	if got := fileText(t, res.Image, fs, "/etc/group"); got != "root:x:0:\nwww-data:x:33:\n" {
		t.Errorf("/etc/group:\n%s", got)
	}
	if got := fileText(t, res.Image, fs, "/etc/shadow"); got != "root:*:::::::\nwww-data:*:::::::\n" {
		t.Errorf("/etc/shadow:\n%s", got)
	}
	if st := fileText(t, res.Image, fs, "/var/lib/dpkg/status.d/nginx-light"); !strings.HasPrefix(st, "Package: nginx-light\nVersion: 1.22.1-9\n") {
		t.Errorf("status.d/nginx-light:\n%s", st)
	}
	for _, line := range []string{
		"skipped maintainer script postinst of nginx-common",
		"skipped maintainer script postrm of nginx-common",
		"skipped trigger of libc6: activate-noawait ldconfig",
	} {
		if !strings.Contains(log.String(), line) {
			t.Errorf("the build log lacks %q:\n%s", line, log.String())
		}
	}
	cf, _ := res.Image.ConfigFile()
	if n := len(cf.History); n != 3 || cf.History[2].CreatedBy != "repro: accounts" {
		t.Errorf("history %+v", cf.History)
	}

	// The same inputs, another cache and work directory: the same bytes.
	o2 := opts(t, s)
	o2.Lock = o.Lock
	res2, err := Build(context.Background(), s, o2)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Descriptor.Digest != res.Descriptor.Digest {
		t.Errorf("rebuild: %s, first %s", res2.Descriptor.Digest, res.Descriptor.Digest)
	}
	// A golden digest: the layer depends on what the packages hold, not
	// on how the .debs were compressed. (It moved when the layer gained
	// /var/lib/repro/maintscripts/libc6.json, the record of the skipped
	// ldconfig trigger that the SBOM reads.)
	// Format 2 (the default): the .debs' own mtimes, clamped to the epoch,
	// and what repro writes in the layer (status.d, md5sums, parent
	// directories) the newest of them, not the build's epoch (it moved
	// when package layers got their own epoch).
	if want := "sha256:0958ba7579e4ce7fd4491985de9b82534a51c394f78d2498bed3073d912edabd"; res.Descriptor.Digest.String() != want {
		t.Errorf("image digest %s, golden %s", res.Descriptor.Digest, want)
	}
	// Format 1: what repro printed before format 2, byte for byte.
	o1 := opts(t, s)
	o1.Lock, o1.Format = o.Lock, compress.Format1
	res1, err := Build(context.Background(), s, o1)
	if err != nil {
		t.Fatal(err)
	}
	if want := "sha256:21027ca05b63e0206e40d6cca4b15eb402365cc482832c9b9f6fb9feefd472df"; res1.Descriptor.Digest.String() != want {
		t.Errorf("format 1: image digest %s, golden %s", res1.Descriptor.Digest, want)
	}
}

func TestBuildPackagesNeedTheLock(t *testing.T) {
	r, k := aptWorld(t)
	s := aptSpec(t, r, k, webLayers)
	o := opts(t, s)
	_, err := Build(context.Background(), s, o)
	var needsLock *NeedsLockError
	if fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), "layers[0].packages: the lock does not pin the packages of layers[0] (os) for linux/amd64") || !errors.As(err, &needsLock) || needsLock.Spec != s.File {
		t.Errorf("unlocked packages: %v", err)
	}
	// A lock for another package list does not count.
	o.Lock = lockFor(t, s, o.Cache)
	s2 := aptSpec(t, r, k, strings.Replace(webLayers, "[nginx-light]", "[nginx-light, libc6]", 1))
	_, err = Build(context.Background(), s2, o)
	if fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), "as the spec lists them now") {
		t.Errorf("stale lock: %v", err)
	}
}

func TestBuildPackagesTamperedDeb(t *testing.T) {
	r, k := aptWorld(t)
	s := aptSpec(t, r, k, webLayers)
	o := opts(t, s)
	o.Lock = lockFor(t, s, o.Cache)
	// The repository's .deb changes after the lock; a fresh cache must
	// fetch it, and the digest does not match its pin.
	p := "pool/main/nginx-light_1.22.1-9_amd64.deb"
	b := append([]byte(nil), r.Get(p)...)
	b[len(b)-1] ^= 1
	r.Put(p, b)
	o.Cache = cache.New(t.TempDir())
	_, err := Build(context.Background(), s, o)
	if fault.KindOf(err) != fault.Operational || !strings.Contains(err.Error(), "nginx-light") || !strings.Contains(err.Error(), "pinned") {
		t.Fatalf("tampered .deb: %v (kind %v)", err, fault.KindOf(err))
	}
	if _, err := os.Stat(filepath.Join(o.Cache.Dir(), "blobs", "sha256", o.Lock.Apt["linux/amd64"].Layers[0].Pins[2].SHA256)); err == nil {
		t.Error("the tampered .deb is in the cache")
	}
	// A .deb gone from the repository (superseded on a mirror) says how
	// to move on.
	o.Cache = cache.New(t.TempDir())
	lf := *o.Lock
	lf.Apt = map[string]lock.Apt{"linux/amd64": o.Lock.Apt["linux/amd64"]}
	a := lf.Apt["linux/amd64"]
	a.Layers = append([]lock.AptLayer(nil), a.Layers...)
	a.Layers[0].Pins = append(a.Layers[0].Pins[:0:0], a.Layers[0].Pins...)
	a.Layers[0].Pins[2].Filename = "pool/main/gone.deb"
	lf.Apt["linux/amd64"] = a
	o.Lock = &lf
	_, err = Build(context.Background(), s, o)
	if fault.KindOf(err) != fault.Operational || !strings.Contains(err.Error(), "no longer has this version") {
		t.Errorf("a .deb gone from the repository: %v", err)
	}
}

func TestBuildUsrMergeAndTheBase(t *testing.T) {
	r, k := aptWorld(t)
	dir := t.TempDir()
	unmerged := locktest.Layout(t, filepath.Join(dir, "unmerged"), map[string]string{"/bin/": "", "/bin/sh": "sh"})
	merged := locktest.Layout(t, filepath.Join(dir, "merged"), map[string]string{"/bin": "symlink:usr/bin", "/usr/": "", "/usr/bin/": "", "/usr/bin/sh": "sh"})
	for _, tc := range []struct {
		name, base, usrmerge, wantErr string
	}{
		{"merged base", merged, "", ""},
		{"unmerged base", unmerged, "", "the base has a real directory /bin"},
		{"unmerged base, usrmerge false", unmerged, "  usrmerge: false\n", ""},
		{"merged base, usrmerge false", merged, "  usrmerge: false\n", "the base's /bin is a symlink to usr/bin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := aptSpec(t, r, k, tc.usrmerge+"base: "+tc.base+"\nlayers:\n  - name: os\n    packages: [nginx-light]\n")
			o := opts(t, s)
			o.Lock = lockFor(t, s, o.Cache)
			withBase(t, s, &o)
			res, err := Build(context.Background(), s, o)
			if tc.wantErr != "" {
				if fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "apt.usrmerge") {
					t.Errorf("err = %v; want bad input at apt.usrmerge: %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fs, err := rootfs.Read(context.Background(), res.Image)
			if err != nil {
				t.Fatal(err)
			}
			if f, ok := fs.Get("/bin/sh"); tc.base == unmerged && (!ok || f.Kind != rootfs.Regular) {
				t.Error("the base's /bin/sh is hidden")
			}
			if f, ok := fs.Get("/bin"); tc.base == merged && (!ok || f.Kind != rootfs.Symlink) {
				t.Errorf("/bin is %+v", f)
			}
		})
	}
}

func TestBuildAccountsOverTheBase(t *testing.T) {
	dir := t.TempDir()
	ref := locktest.Layout(t, filepath.Join(dir, "base"), map[string]string{
		"/etc/":        "",
		"/etc/passwd":  "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"/etc/group":   "root:x:0:\ndaemon:x:1:\nshadow:x:42:\nwww-data:x:33:alice\nnogroup:x:65534:\n",
		"/etc/shadow":  "root:$y$j9T$secret:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nwww-data:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n",
		"/etc/gshadow": "root:*::\ndaemon:*::\nshadow:*::\nwww-data:*::\nnogroup:*::\n",
	})
	s := setup(t, "version: 1\nname: app\nbase: "+ref+`
accounts:
  groups: [{name: app, gid: 10001}, {name: www-data, gid: 33}]
  users:
    - {name: app, uid: 10001, gid: 10001, home: /srv/app}
    - {name: www-data, uid: 33, gid: 33, home: /srv/www, shell: /bin/false}
`, nil)
	o := opts(t, s)
	withBase(t, s, &o)
	res, err := Build(context.Background(), s, o)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := rootfs.Read(context.Background(), res.Image)
	if err != nil {
		t.Fatal(err)
	}
	// The merge itself is pkg/accounts' (its tests); here, that the layer
	// holds it over the base's files.
	want := map[string]string{
		"/etc/passwd": "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nwww-data:x:33:33:www-data:/srv/www:/bin/false\napp:x:10001:10001::/srv/app:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
	}
	for p, w := range want {
		if got := fileText(t, res.Image, fs, p); got != w {
			t.Errorf("%s:\n%s\nwant\n%s", p, got, w)
		}
	}
	// The base's history entries are kept, with created = the epoch, as
	// repro's own.
	cf, err := res.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.History) != 2 {
		t.Errorf("history: %d entries, want the base's and accounts'", len(cf.History))
	}
	for i, h := range cf.History {
		if h.Created.Unix() != o.Values.Epoch {
			t.Errorf("history[%d] (%s) created %v, want the epoch %d", i, h.CreatedBy, h.Created.Time, o.Values.Epoch)
		}
	}

	for _, tc := range []struct{ accounts, want string }{
		{"  users: [{name: web, uid: 33, gid: 33}]\n", "accounts.users[0].uid: uid 33 is www-data's in the base's /etc/passwd"},
	} {
		s := setup(t, "version: 1\nname: app\nbase: "+ref+"\naccounts:\n"+tc.accounts, nil)
		o := opts(t, s)
		withBase(t, s, &o)
		_, err := Build(context.Background(), s, o)
		if fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v; want %q", strings.TrimSpace(tc.accounts), err, tc.want)
		}
	}
}

func TestBuildPackagesSecretGuard(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	key := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	r, k := aptWorld(t, locktest.Deb{Control: "Package: leaky\nVersion: 1\nArchitecture: all\n",
		Files: []locktest.File{{Name: "./etc/", Type: '5'}, {Name: "./etc/leaky.key", Body: key}}})
	s := aptSpec(t, r, k, "layers:\n  - name: os\n    packages: [leaky]\n")
	o := opts(t, s)
	o.Lock = lockFor(t, s, o.Cache)
	_, err = Build(context.Background(), s, o)
	if fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), "/etc/leaky.key") {
		t.Errorf("a .deb with a private key: %v", err)
	}
}

func TestBuildPackagesTwoPlatforms(t *testing.T) {
	r := locktest.NewRepo(t)
	k := locktest.NewKey(t, "repro build test")
	for _, arch := range []string{"amd64", "arm64"} {
		r.Add(t, locktest.Deb{Control: "Package: hello\nVersion: 2.10-3\nArchitecture: " + arch + "\nDepends: hello-data\n",
			Files: []locktest.File{{Name: "./usr/bin/hello", Mode: 0o755, Body: "hello for " + arch}}})
	}
	r.Add(t, locktest.Deb{Control: "Package: hello-data\nVersion: 2.10-3\nArchitecture: all\n",
		Files: []locktest.File{{Name: "./usr/share/hello/greeting", Body: "hi\n"}}})
	r.Publish(t, "stable", k, time.Unix(1700000000, 0), "amd64", "arm64")
	s := aptSpec(t, r, k, "platforms: [linux/amd64, linux/arm64]\nlayers:\n  - name: os\n    packages: [hello]\n")
	o := opts(t, s)
	o.Lock = lockFor(t, s, o.Cache)
	amd, arm := o.Lock.Apt["linux/amd64"], o.Lock.Apt["linux/arm64"]
	if amd.Arch != "amd64" || arm.Arch != "arm64" || amd.Sources[0].InRelease != arm.Sources[0].InRelease {
		t.Errorf("lock per platform: amd64 %+v, arm64 %+v", amd, arm)
	}
	got := func(a lock.Apt) string {
		var out []string
		for _, p := range a.Layers[0].Pins {
			out = append(out, p.Name+":"+p.Architecture)
		}
		return strings.Join(out, " ")
	}
	if got(amd) != "hello:amd64 hello-data:all" || got(arm) != "hello:arm64 hello-data:all" {
		t.Errorf("pins: amd64 %s; arm64 %s", got(amd), got(arm))
	}
	res, err := Build(context.Background(), s, o)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := res.PlatformImages("")
	if err != nil {
		t.Fatal(err)
	}
	if res.Index == nil || len(imgs) != 2 {
		t.Fatalf("want an index of two images, got %+v", res)
	}
	for _, m := range imgs {
		fs, err := rootfs.Read(context.Background(), m.Image)
		if err != nil {
			t.Fatal(err)
		}
		if text := fileText(t, m.Image, fs, "/usr/bin/hello"); text != "hello for "+strings.Split(m.Platform, "/")[1] {
			t.Errorf("%s: /usr/bin/hello holds %q", m.Platform, text)
		}
	}
}
