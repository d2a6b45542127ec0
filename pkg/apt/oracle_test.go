package apt

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprobuild/repro/internal/testtool"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/layer"
)

// The oracle tests compare Resolve with apt-get itself, on the same
// signed index, served on 127.0.0.1. They need apt (apt-get, apt-cache),
// dpkg-dev (dpkg-scanpackages) and gnupg (gpg), and reach Debian's
// mirrors through apt-get only, to download the .debs once.

// oracleWanted is the golden image's package set from issue 7.
var oracleWanted = []string{"nginx-light", "busybox-static", "base-files"}

// oracleDebs downloads, with apt-get download, every real package that
// `apt-cache depends --recurse` lists for wanted (a superset of the
// closure: every alternative of every OR-group, every provider), into a
// directory kept across runs, and returns the paths of those .debs.
func oracleDebs(t *testing.T, wanted []string) []string {
	t.Helper()
	out := run(t, "", nil, "apt-cache", append([]string{"depends", "--recurse", "--no-recommends", "--no-suggests",
		"--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"}, wanted...)...)
	var names []string
	for _, l := range strings.Split(out, "\n") {
		if l == "" || strings.HasPrefix(l, " ") || strings.HasPrefix(l, "<") {
			continue
		}
		names = append(names, strings.TrimSpace(l))
	}
	sort.Strings(names)
	if len(names) < len(wanted) {
		unavailableApt(t, "apt-cache depends found nothing for "+strings.Join(wanted, " "))
	}
	// The file names and digests apt would download.
	uris := run(t, "", nil, "apt-get", append([]string{"download", "--print-uris"}, names...)...)
	re := regexp.MustCompile(`^'[^']+' (\S+\.deb) (\d+) SHA256:([0-9a-f]{64})$`)
	dir := oracleCacheDir(t)
	var paths, missing []string
	for _, l := range strings.Split(strings.TrimSpace(uris), "\n") {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("apt-get download --print-uris: unexpected line %q", l)
		}
		p := filepath.Join(dir, m[1])
		if fileSHA256(p) != m[3] {
			missing = append(missing, strings.SplitN(m[1], "_", 2)[0])
		}
		paths = append(paths, p)
	}
	if len(missing) > 0 {
		t.Logf("apt-get download %d packages into %s", len(missing), dir)
		run(t, dir, nil, "apt-get", append([]string{"download", "-q"}, missing...)...)
	}
	return paths
}

func unavailableApt(t *testing.T, what string) {
	t.Helper()
	if testtool.InCI() {
		t.Fatalf("%s; apt-get update must have run (CI reaches Debian's mirrors through apt)", what)
	}
	t.Skipf("%s; run apt-get update", what)
}

func oracleCacheDir(t *testing.T) string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "repro-test", "apt-oracle-debs")
	must(t, os.MkdirAll(dir, 0o755))
	return dir
}

func fileSHA256(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// localRepo is a signed repository in a directory, served on 127.0.0.1.
type localRepo struct {
	dir, url string
	key      []byte // the armored public key
	keyFile  string
}

// newLocalRepo lays out dists/<suite>/main/binary-amd64/Packages.gz from
// packages (a Packages index's text), a Release listing it, and an
// InRelease signed by a throwaway gpg key.
func newLocalRepo(t *testing.T, suite string, packages []byte) *localRepo {
	t.Helper()
	dir := t.TempDir()
	rel := "main/binary-amd64/Packages.gz"
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
	zw.Write(packages)
	must(t, zw.Close())
	must(t, os.MkdirAll(filepath.Join(dir, "dists", suite, "main", "binary-amd64"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "dists", suite, rel), z.Bytes(), 0o644))
	sum := sha256.Sum256(z.Bytes())
	plain := sha256.Sum256(packages)
	// apt wants the uncompressed index listed too, served or not.
	release := fmt.Sprintf("Origin: repro-oracle\nLabel: repro-oracle\nSuite: %s\nCodename: %s\nDate: Sat, 01 Jan 2022 00:00:00 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n %s %d %s\n %s %d %s\n",
		suite, suite, hex.EncodeToString(plain[:]), len(packages), strings.TrimSuffix(rel, ".gz"), hex.EncodeToString(sum[:]), z.Len(), rel)
	must(t, os.WriteFile(filepath.Join(dir, "dists", suite, "Release"), []byte(release), 0o644))

	home, err := os.MkdirTemp("", "gpg")
	must(t, err)
	env := []string{"GNUPGHOME=" + home}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	run(t, "", env, "gpg", "--batch", "--passphrase", "", "--quick-gen-key", "repro oracle <oracle@repro.invalid>", "ed25519", "sign", "never")
	key := run(t, "", env, "gpg", "--batch", "--armor", "--export")
	run(t, "", env, "gpg", "--batch", "--yes", "--digest-algo", "SHA512", "--clearsign",
		"-o", filepath.Join(dir, "dists", suite, "InRelease"), filepath.Join(dir, "dists", suite, "Release"))
	keyFile := filepath.Join(dir, "key.asc")
	must(t, os.WriteFile(keyFile, []byte(key), 0o644))
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return &localRepo{dir: dir, url: srv.URL, key: []byte(key), keyFile: keyFile}
}

// aptFor sets up apt with the repository as its only source (see
// testtool.Apt), and returns the environment that points apt-get at it.
// The local repository is complete, so apt-get update may not even warn.
func aptFor(t *testing.T, r *localRepo, suite string) []string {
	t.Helper()
	env, upd := testtool.Apt(t, fmt.Sprintf("deb [signed-by=%s] %s %s main\n", r.keyFile, r.url, suite))
	if strings.Contains(upd, "W: ") {
		t.Fatalf("apt-get update:\n%s", upd)
	}
	return env
}

// aptSimulate runs apt-get -s install and returns name=version of every
// package it would install, sorted.
func aptSimulate(t *testing.T, env []string, wanted []string) []string {
	t.Helper()
	out := run(t, "", env, "apt-get", append([]string{"-s", "--no-install-recommends", "install"}, wanted...)...)
	re := regexp.MustCompile(`^Inst (\S+) \((\S+) `)
	var got []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			got = append(got, m[1]+"="+m[2])
		}
	}
	sort.Strings(got)
	if len(got) == 0 {
		t.Fatalf("apt-get -s installs nothing:\n%s", out)
	}
	return got
}

func TestOracleNginxClosure(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads .debs with apt-get")
	}
	testtool.Require(t, "apt-get", "apt-cache", "dpkg-scanpackages", "gpg", "gpgconf")
	start := time.Now()
	debs := oracleDebs(t, oracleWanted)
	t.Logf("%d .debs ready after %v", len(debs), time.Since(start).Round(time.Millisecond))

	// The repository: the .debs in pool/, indexed by dpkg-scanpackages.
	pool := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(pool, "pool", "main"), 0o755))
	for _, p := range debs {
		dst := filepath.Join(pool, "pool", "main", filepath.Base(p))
		if err := os.Link(p, dst); err != nil {
			b, err := os.ReadFile(p)
			must(t, err)
			must(t, os.WriteFile(dst, b, 0o644))
		}
	}
	packages := run(t, pool, nil, "dpkg-scanpackages", "--multiversion", "pool")
	r := newLocalRepo(t, "bookworm", []byte(packages))
	must(t, os.Rename(filepath.Join(pool, "pool"), filepath.Join(r.dir, "pool")))

	t.Logf("repository ready after %v", time.Since(start).Round(time.Millisecond))
	want := aptSimulate(t, aptFor(t, r, "bookworm"), oracleWanted)
	t.Logf("apt-get -s done after %v", time.Since(start).Round(time.Millisecond))

	ctx := context.Background()
	c := cache.New(t.TempDir())
	cfg := Config{Sources: []Source{{URL: r.url, Suites: []string{"bookworm"}, Components: []string{"main"}}}, Keyring: r.key, Arch: "amd64", UsrMerge: true,
		// base-files Pre-Depends on awk, which gawk, mawk and original-awk
		// provide; apt takes mawk (Priority: required), repro asks.
		Prefer: map[string]string{"awk": "mawk"}}
	t0 := time.Now()
	idx, err := FetchIndex(ctx, c, cfg, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	res, err := idx.Resolve(oracleWanted, nil, cfg.Prefer)
	if err != nil {
		t.Fatal(err)
	}
	t2 := time.Now()
	var got []string
	for _, p := range res {
		got = append(got, p.String())
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("closure differs from apt-get -s:\n%s", diffLists(want, got))
	}

	pins, err := Pins(res)
	if err != nil {
		t.Fatal(err)
	}
	locals, err := FetchPinned(ctx, c, pins)
	if err != nil {
		t.Fatal(err)
	}
	t3, c3 := time.Now(), cpuTime()
	ents, rep, err := Entries(ctx, locals, EntriesOptions{UsrMerge: true, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t4, c4 := time.Now(), cpuTime()
	h := sha256.New()
	cw := &countingWriter{w: h}
	if err := layer.WriteTar(ctx, cw, ents, 0); err != nil {
		t.Fatal(err)
	}
	t5 := time.Now()
	t.Logf("%d packages in the index, %d in the closure (apt-get -s agrees); %d layer entries, tar %.1f MB",
		len(idx.Packages), len(res), len(ents), float64(cw.n)/1e6)
	t.Logf("index %v, resolve %v, fetch .debs %v, extract %v (%v of CPU), write tar %v",
		t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond), t3.Sub(t2).Round(time.Millisecond),
		t4.Sub(t3).Round(time.Millisecond), (c4 - c3).Round(time.Millisecond), t5.Sub(t4).Round(time.Millisecond))
	t.Logf("%d maintainer scripts and triggers skipped; notes: %q", len(rep.Skipped), rep.Notes)

	byPath := map[string]bool{}
	for _, e := range ents {
		byPath[e.Path] = true
	}
	for _, p := range []string{"/usr/sbin/nginx", "/etc/nginx/nginx.conf", "/usr/bin/busybox", "/etc/os-release", "/bin", "/lib64",
		"/usr/lib/x86_64-linux-gnu/libc.so.6", "/var/lib/dpkg/status.d/nginx-light", "/var/lib/dpkg/status.d/libc6.md5sums"} {
		if !byPath[p] {
			t.Errorf("the layer has no %s", p)
		}
	}
	for _, p := range []string{"/lib/x86_64-linux-gnu/libc.so.6", "/bin/sh"} {
		if byPath[p] {
			t.Errorf("usrmerge left %s outside /usr", p)
		}
	}
	st := 0
	for p := range byPath {
		if filepath.Dir(p) == StatusDir && !strings.HasSuffix(p, ".md5sums") {
			st++
		}
	}
	if st != len(res) {
		t.Errorf("%d status.d entries for %d packages", st, len(res))
	}
}

// TestOracleFullArchive compares Resolve with apt-get on the whole
// archive that this machine's apt knows (apt-cache dumpavail: every
// candidate of Debian's main), for package sets with virtual packages,
// OR-groups and versioned dependencies. No .deb is downloaded.
func TestOracleFullArchive(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a full index")
	}
	testtool.Require(t, "apt-get", "apt-cache", "gpg", "gpgconf")
	dump := run(t, "", nil, "apt-cache", "dumpavail")
	if strings.Count(dump, "\nPackage: ") < 1000 {
		unavailableApt(t, "apt-cache dumpavail lists almost nothing")
	}
	// A package that needs virtual packages alone, so that the provider
	// choice decides (no real first alternative takes it away).
	dump = strings.TrimRight(dump, "\n") + "\n\n" + virtualsStanza
	r := newLocalRepo(t, "stable", []byte(dump))
	env := aptFor(t, r, "stable")
	ctx := context.Background()
	cfg := Config{Sources: []Source{{URL: r.url, Suites: []string{"stable"}, Components: []string{"main"}}}, Keyring: r.key, Arch: "amd64"}
	t0 := time.Now()
	idx, err := FetchIndex(ctx, cache.New(t.TempDir()), cfg, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("indexed %d packages in %v", len(idx.Packages), time.Since(t0).Round(time.Millisecond))
	for _, tc := range []struct {
		wanted []string
		prefer map[string]string
	}{
		{wanted: oracleWanted, prefer: map[string]string{"awk": "mawk"}},
		{wanted: oracleWanted}, // apt's own choice of awk
		{wanted: []string{"repro-needs-virtuals"}},
		{wanted: []string{"bsd-mailx"}},
		{wanted: []string{"ca-certificates", "curl", "tzdata"}},
		{wanted: []string{"python3", "openssh-server"}},
		{wanted: []string{"postgresql-15"}},
		{wanted: []string{"git", "make", "perl"}},
		{wanted: []string{"apache2"}},
	} {
		t.Run(strings.Join(tc.wanted, "+"), func(t *testing.T) {
			want := aptSimulate(t, env, tc.wanted)
			t0 := time.Now()
			res, err := idx.Resolve(tc.wanted, nil, tc.prefer)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range res {
				got = append(got, p.String())
			}
			sort.Strings(got)
			t.Logf("%d packages, resolved in %v", len(got), time.Since(t0).Round(time.Microsecond))
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("closure differs from apt-get -s:\n%s", diffLists(want, got))
			}
		})
	}
}

// virtualsStanza depends on virtual packages with several providers each.
const virtualsStanza = `Package: repro-needs-virtuals
Version: 1.0
Architecture: all
Maintainer: repro <repro@repro.invalid>
Priority: optional
Depends: mail-transport-agent, debconf-2.0, awk, www-browser
Filename: pool/main/r/repro-needs-virtuals_1.0_all.deb
Size: 1000
SHA256: 0000000000000000000000000000000000000000000000000000000000000000
Description: test package for the provider choice
`

// diffLists describes the differences between apt's list and ours.
func diffLists(apt, ours []string) string {
	in := func(list []string) map[string]bool {
		m := map[string]bool{}
		for _, s := range list {
			m[s] = true
		}
		return m
	}
	a, o := in(apt), in(ours)
	var b strings.Builder
	for _, s := range apt {
		if !o[s] {
			fmt.Fprintf(&b, "  only apt: %s\n", s)
		}
	}
	for _, s := range ours {
		if !a[s] {
			fmt.Fprintf(&b, "  only ours: %s\n", s)
		}
	}
	fmt.Fprintf(&b, "  (apt %d packages, ours %d)", len(apt), len(ours))
	return b.String()
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
