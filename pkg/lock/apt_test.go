package lock_test

// Tests of locking Debian packages against repositories of generated .debs
// signed by a throwaway key, served on 127.0.0.1 (package locktest).

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reprobuild/repro/pkg/base"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/lock"
	"github.com/reprobuild/repro/pkg/lock/locktest"
	"github.com/reprobuild/repro/pkg/spec"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden")

// debs is a small world: base-files needs awk (mawk or gawk provide it),
// nginx-light needs libc6 and nginx-common, which ships a postinst.
func debs(nginxVersion string) []locktest.Deb {
	return []locktest.Deb{
		{Control: "Package: base-files\nVersion: 12.4\nArchitecture: amd64\nPre-Depends: awk\n",
			Files: []locktest.File{{Name: "./etc/", Type: '5'}, {Name: "./etc/os-release", Body: "ID=debian\n"}}},
		{Control: "Package: mawk\nVersion: 1.3.4-1\nArchitecture: amd64\nProvides: awk\nDepends: libc6\n",
			Files: []locktest.File{{Name: "./usr/bin/mawk", Mode: 0o755, Body: "mawk"}}},
		{Control: "Package: gawk\nVersion: 5.2.1-2\nArchitecture: amd64\nProvides: awk\nDepends: libc6\n",
			Files: []locktest.File{{Name: "./usr/bin/gawk", Mode: 0o755, Body: "gawk"}}},
		{Control: "Package: libc6\nVersion: 2.36-9\nArchitecture: amd64\nMulti-Arch: same\n",
			Files:    []locktest.File{{Name: "./lib/", Type: '5'}, {Name: "./lib/x86_64-linux-gnu/", Type: '5'}, {Name: "./lib/x86_64-linux-gnu/libc.so.6", Mode: 0o755, Body: "libc"}},
			Triggers: "activate-noawait ldconfig\n"},
		{Control: "Package: nginx-common\nVersion: " + nginxVersion + "\nArchitecture: all\n",
			Files:   []locktest.File{{Name: "./etc/nginx/", Type: '5'}, {Name: "./etc/nginx/nginx.conf", Body: "events {}\n"}},
			Scripts: []string{"postinst", "prerm"}},
		{Control: "Package: nginx-light\nVersion: " + nginxVersion + "\nArchitecture: amd64\nDepends: libc6 (>= 2.34), nginx-common (= " + nginxVersion + ")\n",
			Files: []locktest.File{{Name: "./usr/sbin/nginx", Mode: 0o755, Body: "nginx " + nginxVersion}}},
	}
}

// aptEnv is a repository and a spec directory with its keyring.
type aptEnv struct {
	repo *locktest.Repo
	key  *locktest.Key
	dir  string
	c    *cache.Cache
	r    *base.Resolver
}

func newAptEnv(t *testing.T) *aptEnv {
	t.Helper()
	e := &aptEnv{repo: locktest.NewRepo(t), key: locktest.NewKey(t, "repro test"), dir: t.TempDir()}
	e.repo.Add(t, debs("1.22.1-9")...)
	e.repo.Publish(t, "stable", e.key, time.Unix(1700000000, 0), "amd64")
	if err := os.MkdirAll(filepath.Join(e.dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "keys", "test.asc"), e.key.Public, 0o644); err != nil {
		t.Fatal(err)
	}
	e.c = cache.New(t.TempDir())
	e.r = base.NewResolver(e.c, nil)
	return e
}

// spec parses a spec with the repository as its apt source; more holds
// the base, layers and anything else.
func (e *aptEnv) spec(t *testing.T, more string) *spec.Spec {
	t.Helper()
	text := fmt.Sprintf("version: 1\nname: app\napt:\n  sources:\n    - {url: %s, suites: [stable]}\n  keyring: keys/test.asc\n  prefer: {awk: mawk}\n%s", e.repo.URL, more)
	file := filepath.Join(e.dir, "repro.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := spec.Load(file, spec.LoadOptions{})
	if err != nil {
		t.Fatalf("spec:\n%s\n%v", text, err)
	}
	return s
}

func (e *aptEnv) lock(t *testing.T, s *spec.Spec, old *lock.File, update bool) (*lock.File, []string) {
	t.Helper()
	f, changes, err := lock.Resolve(ctx, s, old, update, e.r, e.c, nil, lock.WithClock(func() time.Time { return time.Unix(1700000000, 0) }))
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	var lines []string
	for _, ch := range changes {
		lines = append(lines, ch.String())
	}
	return f, lines
}

const oneLayer = "layers:\n  - name: os\n    packages: [nginx-light, base-files]\n"

// normalize makes a lock comparable with a golden file: the repository's
// URL, every digest and every size vary with the port and with the
// compressor's bytes.
func normalize(s, url string) string {
	s = strings.ReplaceAll(s, url, "http://REPO")
	s = regexp.MustCompile(`[0-9a-f]{64}`).ReplaceAllString(s, "<sha256>")
	return regexp.MustCompile(`"size": \d+`).ReplaceAllString(s, `"size": <n>`)
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (go test ./pkg/lock -run %s -update writes it)", err, t.Name())
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s (-want +got):\n%s", p, d)
	}
}

func TestLockAptPinsAndUpdates(t *testing.T) {
	e := newAptEnv(t)
	s := e.spec(t, oneLayer)
	f, changes := e.lock(t, s, nil, false)
	raw := bytesOf(t, f)
	golden(t, "apt.lock.golden", normalize(raw, e.repo.URL))
	wantChanges := []string{
		"added   apt linux/amd64 InRelease " + e.repo.URL + " stable: sha256:" + f.Apt["linux/amd64"].Sources[0].InRelease,
		"added   apt linux/amd64 os: base-files: 12.4 (stable)",
		"added   apt linux/amd64 os: libc6: 2.36-9 (stable)",
		"added   apt linux/amd64 os: mawk: 1.3.4-1 (stable)",
		"added   apt linux/amd64 os: nginx-common: 1.22.1-9 (stable)",
		"added   apt linux/amd64 os: nginx-light: 1.22.1-9 (stable)",
	}
	if d := cmp.Diff(wantChanges, changes); d != "" {
		t.Errorf("changes (-want +got):\n%s", d)
	}
	if got := lock.Unpinned(s, f); len(got) != 0 {
		t.Errorf("Unpinned after lock = %q", got)
	}

	// The repository moves on: nginx 1.24 and a new InRelease. A plain
	// lock keeps the pins, reading the pinned InRelease (from the cache).
	e.repo.Add(t, debs("1.24.0-1")...)
	e.repo.Publish(t, "stable", e.key, time.Unix(1700086400, 0), "amd64")
	hits := e.repo.Hits("dists/stable/InRelease")
	f2, changes := e.lock(t, s, f, false)
	if b := bytesOf(t, f2); b != raw || len(changes) != 0 {
		t.Errorf("a plain lock moved: changes %q, bytes\n%s", changes, b)
	}
	if h := e.repo.Hits("dists/stable/InRelease"); h != hits {
		t.Errorf("a plain lock fetched the InRelease %d times; the pinned one is in the cache", h-hits)
	}

	// With an empty cache, the pinned InRelease is fetched by digest, and
	// the repository's new one does not match: say so.
	fresh := &aptEnv{repo: e.repo, key: e.key, dir: e.dir, c: cache.New(t.TempDir())}
	fresh.r = base.NewResolver(fresh.c, nil)
	_, _, err := lock.Resolve(ctx, s, f, false, fresh.r, fresh.c, nil)
	var moved *lock.MovedError
	if !errors.As(err, &moved) || fault.KindOf(err) != fault.Operational || moved.Spec != s.File || !strings.Contains(err.Error(), "the repository has changed since the lock was written") {
		t.Errorf("plain lock on a moved repository with an empty cache: %v (kind %v); want an operational lock.MovedError naming %s", err, fault.KindOf(err), s.File)
	}

	// --update moves, and says what moved.
	f3, changes := e.lock(t, s, f, true)
	wantChanges = []string{
		fmt.Sprintf("updated apt linux/amd64 InRelease %s stable: sha256:%s -> sha256:%s", e.repo.URL, f.Apt["linux/amd64"].Sources[0].InRelease, f3.Apt["linux/amd64"].Sources[0].InRelease),
		"updated apt linux/amd64 os: nginx-common: 1.22.1-9 -> 1.24.0-1 (stable)",
		"updated apt linux/amd64 os: nginx-light: 1.22.1-9 -> 1.24.0-1 (stable)",
	}
	if d := cmp.Diff(wantChanges, changes); d != "" {
		t.Errorf("--update changes (-want +got):\n%s", d)
	}

	// A changed package list is not pinned by the old lock; a plain lock
	// adds the package at the pinned index's version and moves nothing
	// else (gawk now provides awk, so mawk is no longer needed).
	s2 := e.spec(t, "layers:\n  - name: os\n    packages: [nginx-light, base-files, gawk]\n")
	if got := lock.Unpinned(s2, f3); !cmp.Equal(got, []string{"the packages of layers[0] (os) for linux/amd64 as the spec lists them now"}) {
		t.Errorf("Unpinned after adding a package = %q", got)
	}
	_, changes = e.lock(t, s2, f3, false)
	if d := cmp.Diff([]string{"added   apt linux/amd64 os: gawk: 5.2.1-2 (stable)", "removed apt linux/amd64 os: mawk (was 1.3.4-1)"}, changes); d != "" {
		t.Errorf("adding a package (-want +got):\n%s", d)
	}

	// Another preference, or another component, is not what was locked.
	for _, tc := range []struct{ from, to, want string }{
		{"prefer: {awk: mawk}", "prefer: {awk: gawk}", "with the spec's apt.prefer"},
		{"suites: [stable]}", "suites: [stable], components: [main, contrib]}", "from the spec's apt sources"},
	} {
		file := filepath.Join(e.dir, "repro.yaml")
		raw, _ := os.ReadFile(file)
		changed := strings.Replace(string(raw), tc.from, tc.to, 1)
		s3, err := spec.Parse(file, e.dir, []byte(changed), spec.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := lock.Unpinned(s3, f3); len(got) != 1 || !strings.HasSuffix(got[0], tc.want) {
			t.Errorf("Unpinned after %s -> %s = %q", tc.from, tc.to, got)
		}
	}
}

func TestLockAptBaseAndEarlierLayersCountAsInstalled(t *testing.T) {
	e := newAptEnv(t)
	status := "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\nArchitecture: amd64\n\n" +
		"Package: gawk\nStatus: deinstall ok config-files\nVersion: 5.2.1-2\nArchitecture: amd64\n"
	ref := locktest.Layout(t, filepath.Join(t.TempDir(), "base"), map[string]string{
		"/var/lib/dpkg/":       "",
		"/var/lib/dpkg/status": status,
	})
	s := e.spec(t, "base: "+ref+"\nlayers:\n  - name: awk\n    packages: [mawk]\n  - name: web\n    packages: [nginx-light, base-files]\n")
	f, _ := e.lock(t, s, nil, false)
	var got []string
	for _, l := range f.Apt["linux/amd64"].Layers {
		for _, p := range l.Pins {
			got = append(got, fmt.Sprintf("%d %s: %s=%s by %v", l.Layer, l.Name, p.Name, p.Version, p.RequiredBy))
		}
	}
	want := []string{
		"0 awk: mawk=1.3.4-1 by []",
		"1 web: base-files=12.4 by []",
		"1 web: nginx-common=1.22.1-9 by [nginx-light]",
		"1 web: nginx-light=1.22.1-9 by []",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("pins (-want +got):\n%s", d)
	}
}

func TestLockAptWrongKeyring(t *testing.T) {
	e := newAptEnv(t)
	other := locktest.NewKey(t, "someone else")
	if err := os.WriteFile(filepath.Join(e.dir, "keys", "test.asc"), other.Public, 0o644); err != nil {
		t.Fatal(err)
	}
	s := e.spec(t, oneLayer)
	_, _, err := lock.Resolve(ctx, s, nil, false, e.r, e.c, nil)
	var se *spec.Error
	if err == nil || !errors.As(err, &se) || se.Field != "apt.keyring" || !strings.Contains(err.Error(), "InRelease") {
		t.Fatalf("lock with the wrong keyring: %v; want an error at apt.keyring about the InRelease", err)
	}
	if !strings.HasPrefix(err.Error(), filepath.Join(e.dir, "repro.yaml")+":6:") {
		t.Errorf("error %q does not name the keyring's line", err)
	}

	// A keyring that leaves the context through a symlink is refused.
	outside := filepath.Join(t.TempDir(), "key.asc")
	os.WriteFile(outside, e.key.Public, 0o644)
	os.Remove(filepath.Join(e.dir, "keys", "test.asc"))
	if err := os.Symlink(outside, filepath.Join(e.dir, "keys", "test.asc")); err != nil {
		t.Fatal(err)
	}
	_, _, err = lock.Resolve(ctx, s, nil, false, e.r, e.c, nil)
	if fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), "outside the build context") {
		t.Errorf("keyring through a symlink out of the context: %v", err)
	}
}

func TestLockAptProviderChoice(t *testing.T) {
	e := newAptEnv(t)
	// Without prefer, awk has two providers: the lock takes apt's choice,
	// says so, and records it.
	text := fmt.Sprintf("version: 1\nname: app\napt:\n  sources: [{url: %s, suites: [stable]}]\n  keyring: keys/test.asc\n%s", e.repo.URL, oneLayer)
	file := filepath.Join(e.dir, "repro.yaml")
	os.WriteFile(file, []byte(text), 0o644)
	s, err := spec.Load(file, spec.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	f, _, err := lock.Resolve(ctx, s, nil, false, e.r, e.c, nil, lock.WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	if err != nil {
		t.Fatal(err)
	}
	l := f.Apt["linux/amd64"].Layers[0]
	if len(l.Choices) != 1 || l.Choices[0].Virtual != "awk" || l.Choices[0].Reason == "" {
		t.Fatalf("choices %+v", l.Choices)
	}
	c := l.Choices[0]
	if !strings.Contains(log.String(), "awk is a virtual package; took "+c.Provider) {
		t.Errorf("the choice is not told:\n%s", log.String())
	}
	found := false
	for _, p := range l.Pins {
		found = found || p.Name == c.Provider
	}
	if !found {
		t.Errorf("the chosen %s is not pinned", c.Provider)
	}
}

func TestDebianArch(t *testing.T) {
	for _, tc := range []struct{ plat, want string }{
		{"linux/amd64", "amd64"}, {"linux/arm64", "arm64"}, {"linux/arm64/v8", "arm64"},
		{"linux/arm/v7", "armhf"}, {"linux/arm/v6", "armel"}, {"linux/386", "i386"},
		{"linux/ppc64le", "ppc64el"}, {"linux/s390x", "s390x"}, {"linux/riscv64", "riscv64"},
		{"linux/mips64", ""}, {"windows/amd64", ""},
	} {
		p, err := spec.ParsePlatform(tc.plat)
		if err != nil {
			t.Fatal(err)
		}
		got, err := lock.DebianArch(p)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("DebianArch(%s) = %q, %v; want %q", tc.plat, got, err, tc.want)
		}
	}
}
