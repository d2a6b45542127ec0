package e2e

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/reprobuild/repro/internal/hostile"
)

// TestE2EHostileIndexes drives inspect, test, gc and build through the
// binary on layouts whose index.json names indexes nested two deep (the
// image inside is found), 1000 deep (exit 2, naming the limit of 8), and
// an index stored under a digest it lists itself (a corrupt layout: exit
// 3 where digests are checked, exit 2 in gc, which reads without them).
func TestE2EHostileIndexes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	nested, deep, self := filepath.Join(dir, "nested"), filepath.Join(dir, "deep"), filepath.Join(dir, "self")
	nestedTop, err := hostile.NestedIndex(nested, 2)
	if err != nil {
		t.Fatal(err)
	}
	deepTop, err := hostile.NestedIndex(deep, 1000)
	if err != nil {
		t.Fatal(err)
	}
	selfTop, err := hostile.SelfNamedIndex(self)
	if err != nil {
		t.Fatal(err)
	}
	tests := filepath.Join(dir, "tests.yaml")
	if err := os.WriteFile(tests, []byte("schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: hostile\n    path: /etc/hostile\n    shouldExist: true\nfileContentTests:\n  - name: content\n    path: /etc/hostile\n    expectedContents: ['nested']\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	host := "linux/" + runtime.GOARCH
	const limit = "more than 8 deep"

	// Two levels of index, then the image: found and tested.
	r := invocation{}.run(t, "test", "-c", tests, "oci:"+nested)
	if r.code != 0 || !strings.Contains(r.stdout, "["+host+"] File Existence Test: hostile") || !strings.Contains(r.stdout, "Passes:      2") {
		t.Errorf("test on an index of an index: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	r = invocation{}.run(t, "inspect", "--json", "oci:"+nested)
	if r.code != 0 || !strings.Contains(r.stdout, nestedTop) || !strings.Contains(r.stdout, host) {
		t.Errorf("inspect on an index of an index: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	for _, c := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"inspect-deep", []string{"inspect", "oci:" + deep}, 2, []string{deepTop, limit}},
		{"inspect-files-deep", []string{"inspect", "--files", "oci:" + deep}, 2, []string{deepTop, limit}},
		{"test-deep", []string{"test", "-c", tests, "oci:" + deep}, 2, []string{deepTop, limit}},
		{"gc-deep", []string{"gc", "--keep-days", "30", "--dry-run", "oci:" + deep}, 2, []string{deepTop, limit}},
		{"inspect-self", []string{"inspect", "oci:" + self}, 3, []string{selfTop, "not the digest it is named by"}},
		{"test-self", []string{"test", "-c", tests, "oci:" + self}, 3, []string{selfTop, "not the digest it is named by"}},
		{"gc-self", []string{"gc", "--keep-days", "30", "--dry-run", "oci:" + self}, 2, []string{selfTop, "lists itself"}},
	} {
		r := invocation{}.run(t, c.args...)
		if r.code != c.code {
			t.Errorf("%s: exit %d, want %d\nstderr: %s", c.name, r.code, c.code, r.stderr)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: stderr does not say %q:\n%s", c.name, w, r.stderr)
			}
		}
	}

	// A build on the 1000-deep base: exit 2 at the base, naming the limit.
	// On the two-deep one: exit 2, saying that nested indexes are not
	// followed for a base (the lock pins a base's platforms from its
	// index), and what to do.
	for _, c := range []struct{ base, want string }{
		{"oci:" + deep + "@" + deepTop, limit},
		{"oci:" + nested + "@" + nestedTop, "name one platform's image by its digest"},
	} {
		spec := t.TempDir()
		writeSpec(t, spec, "version: 1\nname: app\nbase: "+c.base+"\nlayers:\n  - contents:\n      - {path: /etc/motd, content: hi}\n")
		r = invocation{dir: spec}.run(t, "build", "-o", "oci:out:t")
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "repro.yaml:3") {
			t.Errorf("build on %s: exit %d, want 2 saying %q at repro.yaml:3\nstderr: %s", c.base, r.code, c.want, r.stderr)
		}
		if _, err := os.Stat(filepath.Join(spec, "out")); !os.IsNotExist(err) {
			t.Errorf("the refused build wrote out/ (%v)", err)
		}
	}
}
