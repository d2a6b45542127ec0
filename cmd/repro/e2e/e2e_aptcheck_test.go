package e2e

// End to end for what a golden image's pins go through after locking: a
// newer version appears in a security suite (lock --check exits 1 and
// names it, writing nothing; lock --update moves; --check exits 0), a
// dependency left out with apt.exclude (warned, in the lock and the
// SBOM), and a .deb that the repository then deletes (the build fetches
// it from apt.snapshot, by name and sha256). All against local signed
// repositories (pkg/lock/locktest), whose bytes are stable.

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reprobuild/repro/pkg/lock"
	"github.com/reprobuild/repro/pkg/lock/locktest"
)

const aptCheckSpec = `version: 1
name: golden
epoch: 1700000000
apt:
  sources:
    - url: REPO
      suites: [bookworm, bookworm-security]
      components: [main]
  keyring: keys/test.asc
  exclude: [libdebconf]
  snapshot: {url: SNAPSHOT, timestamp: 20250520T000000Z}
layers:
  - name: os
    packages: [hello]
`

func TestE2EAptLockCheck(t *testing.T) {
	key := locktest.NewKey(t, "repro check test")
	repo := locktest.NewRepo(t)
	hello := func(v string) locktest.Deb {
		return locktest.Deb{Control: "Package: hello\nVersion: " + v + "\nArchitecture: amd64\nDepends: libc6, libdebconf\n",
			Files: []locktest.File{{Name: "./usr/bin/hello", Mode: 0o755, Body: "hello " + v}}}
	}
	repo.Add(t, hello("1.0-1"),
		locktest.Deb{Control: "Package: libc6\nVersion: 2.36-9\nArchitecture: amd64\n", Files: []locktest.File{{Name: "./usr/lib/libc.so.6", Body: "libc"}}},
		locktest.Deb{Control: "Package: libdebconf\nVersion: 1\nArchitecture: all\n", Files: []locktest.File{{Name: "./usr/share/debconf/x", Body: "x"}}})
	repo.Publish(t, "bookworm", key, time.Unix(1700000000, 0), "amd64")
	repo.Publish(t, "bookworm-security", key, time.Unix(1700000000, 0), "amd64")

	// The snapshot archive: what the repository ever published, kept.
	snap := map[string][]byte{}
	snapSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := snap[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(snapSrv.Close)

	dir := t.TempDir()
	spec := strings.NewReplacer("REPO", repo.URL, "SNAPSHOT", snapSrv.URL).Replace(aptCheckSpec)
	checkErr(t, os.MkdirAll(filepath.Join(dir, "keys"), 0o755))
	checkErr(t, os.WriteFile(filepath.Join(dir, "keys", "test.asc"), key.Public, 0o644))
	checkErr(t, os.WriteFile(filepath.Join(dir, "repro.yaml"), []byte(spec), 0o644))
	cache := filepath.Join(t.TempDir(), "cache")

	r := repro(t, dir, "lock", "--cache-dir", cache)
	if !strings.Contains(r.stderr, "left out libdebconf (apt.exclude), which hello depend on") {
		t.Errorf("lock does not warn about the exclusion:\n%s", r.stderr)
	}
	lockPath := filepath.Join(dir, lock.FileName)
	first := readFile(t, lockPath)
	f, err := lock.Read(lockPath)
	checkErr(t, err)
	l := f.Apt["linux/amd64"].Layers[0]
	if len(l.Excluded) != 1 || l.Excluded[0].Name != "libdebconf" || strings.Join(l.Excluded[0].RequiredBy, ",") != "hello" {
		t.Errorf("the lock records exclusions %+v", l.Excluded)
	}
	for _, p := range l.Pins {
		if p.Name == "libdebconf" {
			t.Error("the excluded package is pinned")
		}
	}
	if sn := f.Apt["linux/amd64"].Snapshot; sn == nil || sn.Timestamp != "20250520T000000Z" {
		t.Errorf("the lock's snapshot %+v", sn)
	}

	// Nothing moved: exit 0, nothing written, though InRelease is re-signed.
	repo.Publish(t, "bookworm", key, time.Unix(1700086400, 0), "amd64")
	if r := (invocation{dir: dir}).run(t, "lock", "--check", "--cache-dir", cache); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("lock --check with nothing moved: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// A security update of hello: exit 1, named with its suite; the lock stays.
	repo.Add(t, hello("1.0-1+deb12u1"))
	repo.Publish(t, "bookworm-security", key, time.Unix(1700172800, 0), "amd64")
	r = invocation{dir: dir}.run(t, "lock", "--check", "--cache-dir", cache)
	if r.code != 1 || !strings.Contains(r.stdout, "updated apt linux/amd64 os: hello: 1.0-1 -> 1.0-1+deb12u1 (bookworm-security)") {
		t.Fatalf("lock --check after a security update: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Count(strings.TrimSpace(r.stdout), "\n") != 0 {
		t.Errorf("lock --check lists more than the stale pin:\n%s", r.stdout)
	}
	if string(readFile(t, lockPath)) != string(first) {
		t.Error("lock --check wrote the lock")
	}
	j := invocation{dir: dir}.run(t, "--json", "lock", "--check", "--cache-dir", cache)
	var res struct{ Stale []string }
	if err := json.Unmarshal([]byte(j.stdout), &res); j.code != 1 || err != nil || len(res.Stale) != 1 {
		t.Errorf("--json lock --check: exit %d, %v, %q", j.code, err, j.stdout)
	}
	if r := (invocation{dir: dir}).run(t, "lock", "--check", "--update"); r.code != 2 {
		t.Errorf("--check with --update: exit %d", r.code)
	}

	repro(t, dir, "lock", "--update", "--cache-dir", cache)
	if r := (invocation{dir: dir}).run(t, "lock", "--check", "--cache-dir", cache); r.code != 0 {
		t.Fatalf("lock --check after lock --update: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// The repository deletes the pinned .deb; the snapshot has it.
	pool := "pool/main/hello_1.0-1+deb12u1_amd64.deb"
	snap["/debian/20250520T000000Z/"+pool] = repo.Get(pool)
	repo.Remove(pool)
	r = repro(t, dir, "build", "--cache-dir", filepath.Join(t.TempDir(), "cold"), "-o", "oci:out")
	if !strings.Contains(r.stderr, "fetching it from the snapshot") {
		t.Errorf("the build does not say it used the snapshot:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "left out libdebconf (apt.exclude), which hello depend on") {
		t.Errorf("the build does not warn about the exclusion:\n%s", r.stderr)
	}
	sbom := repro(t, dir, "sbom", "oci:out", "--format", "cyclonedx-json")
	if !strings.Contains(sbom.stdout, `"repro:aptExcluded"`) || !strings.Contains(sbom.stdout, "libdebconf (required by hello)") {
		t.Errorf("the SBOM does not record the exclusion:\n%s", sbom.stdout)
	}
	// Without the snapshot, the same build fails, saying what to do.
	checkErr(t, os.WriteFile(filepath.Join(dir, "repro.yaml"), []byte(strings.Replace(spec, "  snapshot: {url: "+snapSrv.URL+", timestamp: 20250520T000000Z}\n", "", 1)), 0o644))
	repro(t, dir, "lock", "--cache-dir", cache)
	r = invocation{dir: dir}.run(t, "build", "--cache-dir", filepath.Join(t.TempDir(), "cold2"), "-o", "oci:out2")
	if r.code != 3 || !strings.Contains(r.stderr, "set apt.snapshot") {
		t.Errorf("build of a deleted .deb without a snapshot: exit %d\n%s", r.code, r.stderr)
	}
}

// TestE2EAptBadInput: a misspelt suite is bad input (exit 2), and so is a
// misspelt package, with a suggestion.
func TestE2EAptBadInput(t *testing.T) {
	key := locktest.NewKey(t, "repro bad input test")
	repo := locktest.NewRepo(t)
	repo.Add(t, locktest.Deb{Control: "Package: nginx-light\nVersion: 1\nArchitecture: amd64\n"})
	repo.Publish(t, "bookworm", key, time.Unix(1700000000, 0), "amd64")
	for _, tc := range []struct{ suite, pkg, want string }{
		{"bookwrom", "nginx-light", "no such suite"},
		{"bookworm", "ngnix-light", "did you mean nginx-light?"},
	} {
		dir := t.TempDir()
		spec := "version: 1\nname: x\napt:\n  sources: [{url: " + repo.URL + ", suites: [" + tc.suite + "]}]\n  keyring: keys/test.asc\nlayers:\n  - name: os\n    packages: [" + tc.pkg + "]\n"
		checkErr(t, os.MkdirAll(filepath.Join(dir, "keys"), 0o755))
		checkErr(t, os.WriteFile(filepath.Join(dir, "keys", "test.asc"), key.Public, 0o644))
		checkErr(t, os.WriteFile(filepath.Join(dir, "repro.yaml"), []byte(spec), 0o644))
		r := invocation{dir: dir}.run(t, "lock", "--cache-dir", filepath.Join(dir, "cache"))
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s %s: exit %d\n%s", tc.suite, tc.pkg, r.code, r.stderr)
		}
	}
}

func checkErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
