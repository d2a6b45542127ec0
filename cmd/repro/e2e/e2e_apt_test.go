package e2e

// End to end for Debian packages: specs/examples/nginx, built against a
// local signed repository of the real Debian packages. apt-get downloads
// the .debs (the ordinary Debian client; repro itself never reaches the
// internet here), dpkg-scanpackages indexes them, a throwaway gpg key signs
// the InRelease, and the repository is served on 127.0.0.1. Then: repro
// lock, repro build (cold and warm cache, and --offline), podman runs
// nginx -t, the lock is stable, a tampered .deb and a wrong keyring fail
// cleanly.

import (
	"bytes"
	"compress/gzip"
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
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/internal/testtool"
	"github.com/reprobuild/repro/pkg/lock"
	"github.com/reprobuild/repro/pkg/lock/locktest"
)

// aptWanted are the packages of specs/examples/nginx.
var aptWanted = []string{"base-files", "busybox-static", "nginx-light"}

// aptRun runs a host command and returns its stdout; it fails the test
// with the output when the command fails.
func aptRun(t *testing.T, dir string, env []string, name string, args ...string) string {
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

// aptUnavailable fails in CI (where .ci/run has run apt-get update) and
// skips elsewhere.
func aptUnavailable(t *testing.T, what string) {
	t.Helper()
	if testtool.InCI() {
		t.Fatalf("%s; apt-get update must have run (CI reaches Debian's mirrors through apt)", what)
	}
	t.Skipf("%s; run apt-get update", what)
}

// aptDebs downloads with apt-get every package that apt-cache depends
// --recurse lists for wanted (a superset of the closure: every
// alternative, every provider) into a directory kept across runs (shared
// with pkg/apt's oracle test), and returns their paths.
func aptDebs(t *testing.T, wanted []string) []string {
	t.Helper()
	out := aptRun(t, "", nil, "apt-cache", append([]string{"depends", "--recurse", "--no-recommends", "--no-suggests",
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
		aptUnavailable(t, "apt-cache depends found nothing for "+strings.Join(wanted, " "))
	}
	uris := aptRun(t, "", nil, "apt-get", append([]string{"download", "--print-uris"}, names...)...)
	re := regexp.MustCompile(`^'[^']+' (\S+\.deb) (\d+) SHA256:([0-9a-f]{64})$`)
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "repro-test", "apt-oracle-debs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
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
		aptRun(t, dir, nil, "apt-get", append([]string{"download", "-q"}, missing...)...)
	}
	return paths
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

// aptRepo is a signed Debian repository in a directory, served on
// 127.0.0.1.
type aptRepo struct {
	dir, url string
	key      string // the armored public key
}

// newAptRepo puts debs in pool/main, indexes them with dpkg-scanpackages
// into dists/<suite>/main/binary-amd64/Packages.gz, writes a Release
// listing it, and clearsigns that into InRelease with a throwaway gpg key.
func newAptRepo(t *testing.T, suite string, debs []string) *aptRepo {
	t.Helper()
	dir := t.TempDir()
	pool := filepath.Join(dir, "pool", "main")
	if err := os.MkdirAll(pool, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range debs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// A copy, not a link: the tamper test changes the served file.
		if err := os.WriteFile(filepath.Join(pool, filepath.Base(p)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	packages := aptRun(t, dir, nil, "dpkg-scanpackages", "--multiversion", "pool")
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(packages))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	rel := "main/binary-amd64/Packages.gz"
	dists := filepath.Join(dir, "dists", suite)
	if err := os.MkdirAll(filepath.Join(dists, "main", "binary-amd64"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dists, rel), z.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(z.Bytes())
	release := fmt.Sprintf("Origin: repro-e2e\nLabel: repro-e2e\nSuite: %s\nCodename: %s\nDate: Sat, 01 Jan 2022 00:00:00 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n %s %d %s\n",
		suite, suite, hex.EncodeToString(sum[:]), z.Len(), rel)
	if err := os.WriteFile(filepath.Join(dists, "Release"), []byte(release), 0o644); err != nil {
		t.Fatal(err)
	}
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"GNUPGHOME=" + home}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	aptRun(t, "", env, "gpg", "--batch", "--passphrase", "", "--quick-gen-key", "repro e2e <e2e@repro.invalid>", "ed25519", "sign", "never")
	key := aptRun(t, "", env, "gpg", "--batch", "--armor", "--export")
	aptRun(t, "", env, "gpg", "--batch", "--yes", "--digest-algo", "SHA512", "--clearsign",
		"-o", filepath.Join(dists, "InRelease"), filepath.Join(dists, "Release"))
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return &aptRepo{dir: dir, url: srv.URL, key: key}
}

// aptExample copies specs/examples/nginx into a fresh context and points
// its apt sources at url, with keyring as keys/test.asc.
func aptExample(t *testing.T, url, keyring string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "nginx")
	copyTree(t, filepath.Join(moduleRoot(t), "specs", "examples", "nginx"), dir, false)
	file := filepath.Join(dir, "repro.yaml")
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	start, end := strings.Index(text, "\napt:\n"), strings.Index(text, "\nlayers:\n")
	if start < 0 || end < start {
		t.Fatalf("%s: no apt: block before layers:", file)
	}
	apt := fmt.Sprintf("\napt:\n  sources:\n    - url: %s\n      suites: [bookworm]\n      components: [main]\n  keyring: keys/test.asc\n  prefer: {awk: mawk}\n", url)
	text = text[:start] + apt + text[end:]
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keys", "test.asc"), []byte(keyring), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// timed runs repro and returns the result and how long it took.
func timed(t *testing.T, dir string, args ...string) (result, time.Duration) {
	t.Helper()
	start := time.Now()
	r := invocation{dir: dir}.run(t, args...)
	return r, time.Since(start)
}

func TestE2EAptNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads .debs with apt-get and builds nginx")
	}
	testtool.Require(t, "apt-get", "apt-cache", "dpkg-scanpackages", "gpg", "gpgconf")
	repo := newAptRepo(t, "bookworm", aptDebs(t, aptWanted))
	spec := aptExample(t, repo.url, repo.key)
	ctx := filepath.Dir(spec)
	tmp := t.TempDir()
	lockCache, cache := filepath.Join(tmp, "lock-cache"), filepath.Join(tmp, "cache")

	// Lock: every package pinned, and the lock is stable.
	r, lockTook := timed(t, ctx, "lock", "-f", spec, "--cache-dir", lockCache)
	if r.code != 0 {
		t.Fatalf("repro lock: exit %d\n%s", r.code, r.stderr)
	}
	lf, err := lock.Read(lock.PathFor(spec))
	if err != nil || lf == nil {
		t.Fatalf("reading the lock: %v", err)
	}
	pins := lf.Apt["linux/amd64"].Layers[0].Pins
	var names []string
	for _, p := range pins {
		names = append(names, p.Name)
	}
	for _, want := range []string{"base-files", "busybox-static", "nginx-light", "nginx", "libc6", "mawk", "libnginx-mod-http-echo"} {
		if !slices.Contains(names, want) {
			t.Errorf("the lock does not pin %s; it pins %s", want, strings.Join(names, " "))
		}
	}
	if !strings.Contains(r.stdout, "added   apt linux/amd64 debian: nginx-light:") {
		t.Errorf("repro lock printed no change for nginx-light:\n%s", r.stdout)
	}
	lockBytes, _ := os.ReadFile(lock.PathFor(spec))
	r = repro(t, ctx, "lock", "-f", spec, "--cache-dir", lockCache)
	if again, _ := os.ReadFile(lock.PathFor(spec)); !bytes.Equal(again, lockBytes) || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("a second repro lock changed the lock (stdout %q)", r.stdout)
	}

	// Build with an empty cache, then warm, then offline: one digest.
	out1 := filepath.Join(tmp, "out1")
	r, cold := timed(t, ctx, "build", "-f", spec, "--locked", "--cache-dir", cache, "-o", "oci:"+out1+":nginx")
	if r.code != 0 {
		t.Fatalf("repro build: exit %d\n%s", r.code, r.stderr)
	}
	digest := lastLine(r.stdout)
	for _, line := range []string{"skipped maintainer script postinst of nginx-common", "skipped trigger of libc6: activate-noawait ldconfig", "no maintainer script was run"} {
		if !strings.Contains(r.stderr, line) {
			t.Errorf("the build log lacks %q", line)
		}
	}
	out2 := filepath.Join(tmp, "out2")
	r, warm := timed(t, ctx, "build", "-f", spec, "--cache-dir", cache, "-o", "oci:"+out2+":nginx")
	if r.code != 0 || lastLine(r.stdout) != digest {
		t.Fatalf("warm rebuild: exit %d, digest %s, first %s\n%s", r.code, lastLine(r.stdout), digest, r.stderr)
	}
	r = repro(t, ctx, "build", "-q", "-f", spec, "--offline", "--cache-dir", cache, "-o", "oci:"+filepath.Join(tmp, "out3")+":nginx")
	if lastLine(r.stdout) != digest {
		t.Errorf("offline rebuild: digest %s, first %s", lastLine(r.stdout), digest)
	}

	// Built again under perturbation (umask, TZ, locale, GOMAXPROCS, a
	// copied context): no byte differs.
	r = invocation{dir: ctx}.run(t, "build", "-q", "--check", "-f", spec, "--offline", "--cache-dir", cache, "-o", "oci:"+filepath.Join(tmp, "out4")+":nginx")
	if r.code != 0 || lastLine(r.stdout) != digest {
		t.Errorf("build --check: exit %d, digest %s, first %s\n%s", r.code, lastLine(r.stdout), digest, r.stderr)
	}

	// The package layer is keyed by the lock's pins: with every pinned
	// .deb gone from the cache, an offline build still hits, reads no
	// .deb and replays the report.
	for _, p := range pins {
		if err := os.Remove(filepath.Join(cache, "blobs", "sha256", p.SHA256)); err != nil {
			t.Fatalf("the cache lacks %s's .deb: %v", p.Name, err)
		}
	}
	hit, r := buildCached(t, ctx, 0, "-f", spec, "--offline", "--cache-dir", cache)
	if hit.Digest != digest || !strings.Contains(statuses(hit), "=cached") || strings.Contains(statuses(hit), "=built") {
		t.Errorf("offline build without the .debs: %s %s, want every layer cached and %s", statuses(hit), hit.Digest, digest)
	}
	if !strings.Contains(r.stderr, "skipped trigger of libc6: activate-noawait ldconfig") {
		t.Errorf("a cached package layer's log lacks its report:\n%s", r.stderr)
	}

	// The numbers.
	var idx ocispec.Index
	e2eUnmarshal(t, readFile(t, filepath.Join(out1, "index.json")), &idx)
	var m ocispec.Manifest
	e2eUnmarshal(t, e2eBlob(t, out1, string(idx.Manifests[0].Digest)), &m)
	pkgLayer := m.Layers[0]
	raw := e2eBlob(t, out1, string(pkgLayer.Digest))
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	unpacked, _ := io.Copy(io.Discard, zr)
	var debBytes int64
	for _, p := range pins {
		debBytes += p.Size
	}
	t.Logf("nginx: %d packages pinned (%.1f MB of .debs); package layer %.1f MB compressed (%.1f MB as tar); image %s",
		len(pins), float64(debBytes)/1e6, float64(pkgLayer.Size)/1e6, float64(unpacked)/1e6, digest)
	t.Logf("nginx: repro lock %v; build cold %v, warm %v", lockTook.Round(time.Millisecond), cold.Round(time.Millisecond), warm.Round(time.Millisecond))

	// podman: nginx -t passes, and www-data is an account.
	t.Run("podman", func(t *testing.T) {
		podman := testtool.Podman(t)
		if podman == nil {
			return
		}
		ref := testtool.OCIRef(t, out1, "nginx")
		cmd := exec.Command(podman[0], slices.Concat(podman[1:], []string{"run", "--rm", "--entrypoint", "/usr/sbin/nginx", ref, "-t"})...)
		combined, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(combined), "test is successful") {
			t.Fatalf("podman run nginx -t: %v\n%s", err, combined)
		}
		id := testtool.Run(t, podman[0], slices.Concat(podman[1:], []string{"run", "--rm", "--pull=never", "--entrypoint", "/bin/busybox", ref, "id", "www-data"})...)
		if strings.TrimSpace(id) != "uid=33(www-data) gid=33(www-data) groups=33(www-data)" {
			t.Errorf("id www-data in the image: %q", id)
		}
	})

	// A wrong keyring: lock (plain, over the pins, and --update) fails
	// with an error at apt.keyring, exit 3, and the lock is untouched.
	t.Run("wrong-keyring", func(t *testing.T) {
		bad := aptExample(t, repo.url, string(locktest.NewKey(t, "not the repository's").Public))
		if err := os.WriteFile(lock.PathFor(bad), lockBytes, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"lock", "-f", bad}, {"lock", "--update", "-f", bad}} {
			r := invocation{dir: filepath.Dir(bad)}.run(t, append(args, "--cache-dir", lockCache)...)
			if r.code != 3 || !strings.Contains(r.stderr, "apt.keyring") || !strings.Contains(r.stderr, "signature") {
				t.Errorf("repro %s with a wrong keyring: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
			}
			if now, _ := os.ReadFile(lock.PathFor(bad)); !bytes.Equal(now, lockBytes) {
				t.Errorf("repro %s with a wrong keyring changed the lock", strings.Join(args, " "))
			}
		}
	})

	// A tampered .deb in the repository, with the lock's pin now stale:
	// the build fetches it into an empty cache, exits 3 and writes nothing.
	t.Run("tampered-deb", func(t *testing.T) {
		var victim string
		for _, p := range pins {
			if p.Name == "nginx-common" {
				victim = filepath.Join(repo.dir, filepath.FromSlash(p.Filename))
			}
		}
		orig, err := os.ReadFile(victim)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.WriteFile(victim, orig, 0o644) })
		bad := append([]byte(nil), orig...)
		bad[len(bad)/2] ^= 0xff
		if err := os.WriteFile(victim, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		fresh, out := filepath.Join(t.TempDir(), "cache"), filepath.Join(t.TempDir(), "out")
		r := invocation{dir: ctx}.run(t, "build", "-f", spec, "--cache-dir", fresh, "-o", "oci:"+out+":nginx")
		if r.code != 3 || !strings.Contains(r.stderr, "nginx-common") || !strings.Contains(r.stderr, "pinned") {
			t.Errorf("build with a tampered .deb: exit %d\n%s", r.code, r.stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("the failed build wrote %s", out)
		}
		if _, err := os.Stat(filepath.Join(fresh, "blobs", "sha256", fileSHA256(victim))); err == nil {
			t.Error("the tampered .deb is in the cache")
		}
	})

	// The spec without its lock is refused like an unpinned base.
	t.Run("no-lock", func(t *testing.T) {
		nolock := aptExample(t, repo.url, repo.key)
		r := invocation{dir: filepath.Dir(nolock)}.run(t, "build", "-f", nolock, "--cache-dir", cache, "-o", "oci:"+filepath.Join(t.TempDir(), "out")+":nginx")
		if r.code != 2 || !strings.Contains(r.stderr, "run repro lock") {
			t.Errorf("build without a lock: exit %d\n%s", r.code, r.stderr)
		}
	})
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
