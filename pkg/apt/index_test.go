package apt

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/fault"
)

// twoSuites publishes bookworm (xz indexes) and bookworm-updates (gzip,
// by-hash), with hello in both at different versions.
func twoSuites(t *testing.T) (*repo, Config) {
	t.Helper()
	k, _ := signingKeys(t)
	r := newRepo(t)
	libc := r.addDeb(t, debSpec{control: "Package: libc6\nVersion: 2.36-9\nArchitecture: amd64\n", comp: ".xz",
		files: []tfile{{name: "./usr/lib/x86_64-linux-gnu/libc.so.6", body: "libc"}}})
	hello1 := r.addDeb(t, debSpec{control: "Package: hello\nVersion: 2.10-2\nArchitecture: amd64\nDepends: libc6 (>= 2.34)\n", comp: ".gz",
		files: []tfile{{name: "./usr/bin/hello", mode: 0o755, body: "hello 2.10-2"}}})
	hello2 := r.addDeb(t, debSpec{control: "Package: hello\nVersion: 2.10-3\nArchitecture: amd64\nDepends: libc6 (>= 2.34)\n", comp: ".zst",
		files: []tfile{{name: "./usr/bin/hello", mode: 0o755, body: "hello 2.10-3"}}})
	docs := r.addDeb(t, debSpec{control: "Package: hello-doc\nVersion: 2.10-2\nArchitecture: all\n", comp: ".xz",
		files: []tfile{{name: "./usr/share/doc/hello/README", body: "read me"}}})
	other := "Package: hello\nVersion: 9.0\nArchitecture: arm64\nFilename: pool/main/hello_9.0_arm64.deb\nSize: 1\nSHA256: " + strings.Repeat("0", 64) + "\n"
	r.publish(t, suiteSpec{name: "bookworm", arch: "amd64", comp: ".xz", signers: []*testKey{k},
		components: map[string][]string{"main": {libc, hello1, docs, other}}})
	r.publish(t, suiteSpec{name: "bookworm-updates", arch: "amd64", comp: ".gz", byHash: true, signers: []*testKey{k},
		components: map[string][]string{"main": {hello2}}})
	cfg := Config{
		Sources: []Source{{URL: r.srv.URL + "/", Suites: []string{"bookworm", "bookworm-updates"}, Components: []string{"main"}}},
		Keyring: k.public,
		Arch:    "amd64",
	}
	return r, cfg
}

func TestFetchIndexAndResolve(t *testing.T) {
	r, cfg := twoSuites(t)
	ctx := context.Background()
	c := cache.New(t.TempDir())
	idx, err := FetchIndex(ctx, c, cfg, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Packages) != 4 {
		t.Errorf("index holds %d packages, want 4 (the arm64 one dropped)", len(idx.Packages))
	}
	got, err := idx.Resolve([]string{"hello"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := names(got); s != "hello=2.10-3 libc6=2.36-9" {
		t.Errorf("resolved %s; want the highest hello across suites and libc6", s)
	}
	if got[0].Suite != "bookworm-updates" || got[1].Suite != "bookworm" {
		t.Errorf("suites: %s, %s", got[0].Suite, got[1].Suite)
	}
	if len(idx.Digests) != 2 || idx.Digests[0].Suite != "bookworm" || len(idx.Digests[0].Indexes) != 1 ||
		idx.Digests[0].Indexes[0].Path != "main/binary-amd64/Packages.xz" || idx.Digests[1].Indexes[0].Path != "main/binary-amd64/Packages.gz" {
		t.Errorf("digests: %+v", idx.Digests)
	}
	for _, d := range idx.Digests {
		if len(d.InRelease) != 64 {
			t.Errorf("InRelease digest %q", d.InRelease)
		}
		if _, err := c.Lookup(d.InRelease); err != nil {
			t.Errorf("InRelease of %s not in the cache: %v", d.Suite, err)
		}
	}

	// From the lock's digests, with an offline cache: no request at all.
	before := r.totalHits()
	off := cache.New(c.Dir(), cache.Offline(true))
	idx2, err := FetchIndex(ctx, off, cfg, FetchOptions{Pinned: idx.Digests, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.totalHits() != before {
		t.Errorf("an offline, pinned FetchIndex made %d requests", r.totalHits()-before)
	}
	if len(idx2.Packages) != len(idx.Packages) {
		t.Errorf("offline index differs")
	}
	// Offline without pins cannot work.
	if _, err := FetchIndex(ctx, off, cfg, FetchOptions{Offline: true}); err == nil || fault.KindOf(err) != fault.Operational {
		t.Errorf("offline, unpinned: err = %v", err)
	}

	// The .debs, from the pins.
	pins, err := Pins(got)
	if err != nil {
		t.Fatal(err)
	}
	debs, err := FetchPinned(ctx, c, pins)
	if err != nil {
		t.Fatal(err)
	}
	ents, rep, err := Entries(ctx, debs, EntriesOptions{UsrMerge: true, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rep.Packages, " ") != "hello=2.10-3 libc6=2.36-9" {
		t.Errorf("report packages %v", rep.Packages)
	}
	if b := readEntry(t, ents, "/usr/bin/hello"); b != "hello 2.10-3" {
		t.Errorf("/usr/bin/hello = %q", b)
	}
}

func TestFetchIndexRefusesBadTrust(t *testing.T) {
	ctx := context.Background()
	_, other := signingKeys(t)
	for _, tc := range []struct {
		name   string
		break_ func(r *repo, cfg *Config)
		want   string
	}{
		{"wrong keyring", func(r *repo, cfg *Config) { cfg.Keyring = other.public }, "signature"},
		{"tampered InRelease", func(r *repo, cfg *Config) {
			b := r.get("dists/bookworm/InRelease")
			r.put("dists/bookworm/InRelease", bytes.Replace(b, []byte("Codename: bookworm"), []byte("Codename: bookwarm"), 1))
		}, "signature"},
		{"no InRelease", func(r *repo, cfg *Config) {
			r.put("dists/bookworm/InRelease", nil)
			delete(r.files, "dists/bookworm/InRelease")
		}, "404"},
		{"Release without signature served as InRelease", func(r *repo, cfg *Config) { r.put("dists/bookworm/InRelease", r.get("dists/bookworm/Release")) }, "not a clearsigned"},
		{"text after the signature", func(r *repo, cfg *Config) {
			r.put("dists/bookworm/InRelease", append(r.get("dists/bookworm/InRelease"), []byte("SHA256:\n 00 1 x\n")...))
		}, "after the signature"},
		{"tampered index", func(r *repo, cfg *Config) {
			r.put("dists/bookworm/main/binary-amd64/Packages.xz", []byte("not the signed index"))
		}, "sha256"},
		{"empty keyring", func(r *repo, cfg *Config) { cfg.Keyring = nil }, "keyring is empty"},
		{"missing component", func(r *repo, cfg *Config) { cfg.Sources[0].Components = []string{"contrib"} }, "no component contrib"},
		{"missing architecture", func(r *repo, cfg *Config) { cfg.Arch = "riscv64" }, "no architecture riscv64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, cfg := twoSuites(t)
			tc.break_(r, &cfg)
			c := cache.New(t.TempDir())
			_, err := FetchIndex(ctx, c, cfg, FetchOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
			t.Log(err)
			if k := fault.KindOf(err); k == fault.OK || k == fault.CheckFailed {
				t.Errorf("kind %v", k)
			}
		})
	}
}

func TestSecondSignerInKeyring(t *testing.T) {
	// An InRelease signed by two keys (as Debian's are) verifies with a
	// keyring holding either one.
	a, b := signingKeys(t)
	r := newRepo(t)
	st := r.addDeb(t, debSpec{control: "Package: x\nVersion: 1\nArchitecture: all\n", comp: ".gz"})
	r.publish(t, suiteSpec{name: "s", arch: "amd64", signers: []*testKey{a, b}, components: map[string][]string{"main": {st}}})
	for _, k := range []*testKey{a, b} {
		cfg := Config{Sources: []Source{{URL: r.srv.URL, Suites: []string{"s"}, Components: []string{"main"}}}, Keyring: k.public, Arch: "amd64"}
		if _, err := FetchIndex(context.Background(), cache.New(t.TempDir()), cfg, FetchOptions{}); err != nil {
			t.Error(err)
		}
	}
	// Both keys, concatenated armor blocks.
	cfg := Config{Sources: []Source{{URL: r.srv.URL, Suites: []string{"s"}, Components: []string{"main"}}}, Keyring: append(append([]byte{}, a.public...), b.public...), Arch: "amd64"}
	if _, err := FetchIndex(context.Background(), cache.New(t.TempDir()), cfg, FetchOptions{}); err != nil {
		t.Error(err)
	}
}

func TestFetchPinnedMismatchLeavesNothing(t *testing.T) {
	r, cfg := twoSuites(t)
	ctx := context.Background()
	dir := t.TempDir()
	c := cache.New(dir)
	idx, err := FetchIndex(ctx, c, cfg, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := idx.Resolve([]string{"hello"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pins, err := Pins(got)
	if err != nil {
		t.Fatal(err)
	}
	// Tamper with the hello .deb on the server.
	deb := r.get(pins[0].Filename)
	bad := append([]byte{}, deb...)
	bad[len(bad)-1] ^= 1
	r.put(pins[0].Filename, bad)
	_, err = FetchPinned(ctx, c, pins)
	var mm *cache.MismatchError
	if err == nil || fault.KindOf(err) != fault.Operational || !errors.As(err, &mm) {
		t.Fatalf("err = %v; want an operational sha256 mismatch", err)
	}
	if _, err := c.Lookup(pins[0].SHA256); err == nil {
		t.Error("the tampered .deb is in the cache under its pin")
	}
	left, _ := filepath.Glob(filepath.Join(dir, "blobs", "sha256", ".tmp-*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// A pin whose sha256 is not hex is bad input.
	p := pins[0]
	p.SHA256 = "abc"
	if _, err := FetchPinned(ctx, c, []Pin{p}); fault.KindOf(err) != fault.BadInput {
		t.Errorf("bad pin: %v", err)
	}
}

func names(pkgs []*Package) string {
	var s []string
	for _, p := range pkgs {
		s = append(s, p.String())
	}
	return strings.Join(s, " ")
}

// TestFetchIndexSecurityLayout reads a suite laid out as bookworm-security
// is: Components: updates/main in the Release, indexes under main/, by
// hash; the sources may say main (as apt's do) or updates/main.
func TestFetchIndexSecurityLayout(t *testing.T) {
	a, _ := signingKeys(t)
	r := newRepo(t)
	old := r.addDeb(t, debSpec{control: "Package: x\nVersion: 1\nArchitecture: amd64\n", comp: ".gz"})
	fixed := r.addDeb(t, debSpec{control: "Package: x\nVersion: 1+deb12u1\nArchitecture: amd64\n", comp: ".gz"})
	backport := r.addDeb(t, debSpec{control: "Package: x\nVersion: 2~bpo12\nArchitecture: amd64\n", comp: ".gz"})
	r.publish(t, suiteSpec{name: "bookworm", arch: "amd64", comp: ".xz", byHash: true, signers: []*testKey{a}, components: map[string][]string{"main": {old}}})
	r.publish(t, suiteSpec{name: "bookworm-security", arch: "amd64", comp: ".xz", byHash: true, signers: []*testKey{a},
		components: map[string][]string{"main": {fixed}}, releaseComponents: []string{"updates/main", "updates/contrib"}})
	r.publish(t, suiteSpec{name: "bookworm-backports", arch: "amd64", comp: ".xz", signers: []*testKey{a},
		components: map[string][]string{"main": {backport}}, extra: "NotAutomatic: yes\nButAutomaticUpgrades: yes\n"})
	for _, comp := range []string{"main", "updates/main"} {
		t.Run(comp, func(t *testing.T) {
			cfg := Config{Sources: []Source{
				{URL: r.srv.URL, Suites: []string{"bookworm", "bookworm-backports"}, Components: []string{"main"}},
				{URL: r.srv.URL, Suites: []string{"bookworm-security"}, Components: []string{comp}},
			}, Keyring: a.public, Arch: "amd64"}
			idx, err := FetchIndex(context.Background(), cache.New(t.TempDir()), cfg, FetchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// The backport is newer, but its suite ranks 100: security's fix wins.
			c, ok := idx.Candidate("x")
			if !ok || c.Version != "1+deb12u1" || c.Suite != "bookworm-security" {
				t.Fatalf("candidate %v from %s; want 1+deb12u1 from bookworm-security", c, c.Suite)
			}
			if got := idx.Digests[2].Indexes[0].Path; got != "main/binary-amd64/Packages.xz" {
				t.Errorf("security index path %s", got)
			}
		})
	}
	// A component the suite does not have is named with what it has.
	cfg := Config{Sources: []Source{{URL: r.srv.URL, Suites: []string{"bookworm-security"}, Components: []string{"non-free"}}}, Keyring: a.public, Arch: "amd64"}
	_, err := FetchIndex(context.Background(), cache.New(t.TempDir()), cfg, FetchOptions{})
	if err == nil || !strings.Contains(err.Error(), "has no component non-free (it has updates/main, updates/contrib)") || fault.KindOf(err) != fault.BadInput {
		t.Errorf("missing component: %v", err)
	}
}

// TestFetchIndexSuiteNotFound: a suite the repository lacks is bad input.
func TestFetchIndexSuiteNotFound(t *testing.T) {
	r, cfg := twoSuites(t)
	_ = r
	cfg.Sources[0].Suites = []string{"bookwrom"}
	_, err := FetchIndex(context.Background(), cache.New(t.TempDir()), cfg, FetchOptions{})
	var nf *SuiteNotFoundError
	if !errors.As(err, &nf) || fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), "no such suite") {
		t.Errorf("err = %v (%v); want bad input naming the suite", err, fault.KindOf(err))
	}
}

// TestFetchIndexWrongKeyringNamesSigner: the error names the key that
// signed and the keys the keyring holds.
func TestFetchIndexWrongKeyringNamesSigner(t *testing.T) {
	r, cfg := twoSuites(t)
	_ = r
	a, other := signingKeys(t)
	cfg.Keyring = other.public
	_, err := FetchIndex(context.Background(), cache.New(t.TempDir()), cfg, FetchOptions{})
	want := strings.ToUpper(hex.EncodeToString(a.entity.PrimaryKey.Fingerprint))
	have := strings.ToUpper(hex.EncodeToString(other.entity.PrimaryKey.Fingerprint))
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), have) {
		t.Errorf("err = %v; want it to name signer %s and keyring key %s", err, want, have)
	}
	if !errors.Is(err, ErrKeyring) {
		t.Errorf("a keyring that signed nothing: %v is not ErrKeyring", err)
	}
	cfg.Keyring = []byte("not a keyring")
	if _, err := FetchIndex(context.Background(), cache.New(t.TempDir()), cfg, FetchOptions{}); !errors.Is(err, ErrKeyring) || fault.KindOf(err) != fault.BadInput {
		t.Errorf("an unreadable keyring: %v; want ErrKeyring, bad input", err)
	}
	cfg.Keyring = a.public
	if _, err := FetchIndex(context.Background(), cache.New(t.TempDir()), cfg, FetchOptions{}); err != nil {
		t.Errorf("the signer's keyring: %v", err)
	}
}
