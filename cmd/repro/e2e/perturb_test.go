package e2e

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestPerturbation builds every example twice: once plainly, once from a
// copy made in reverse order with other modes, mtimes, owners and xattrs,
// from another working directory, under another umask, time zone, locale
// and GOMAXPROCS. The two layouts must be identical, byte for byte.
func TestPerturbation(t *testing.T) {
	plain := copyExamples(t, false)
	perturbed := copyExamples(t, true)
	elsewhere := t.TempDir()
	for _, c := range goldenCases {
		t.Run(c.example+"/"+c.compression, func(t *testing.T) {
			a := filepath.Join(t.TempDir(), "a")
			b := filepath.Join(t.TempDir(), "b")
			args := func(examples, out string) []string {
				return []string{"build", "-q", "--offline", "--no-cache", "--version", "1.0.0", "--compression", c.compression,
					"-f", filepath.Join(examples, c.example), "-o", "oci:" + out + ":t"}
			}
			ra := invocation{dir: plain, env: []string{"TZ=UTC", "LC_ALL=C", "GOMAXPROCS=2"}, umask: "022"}.run(t, args(plain, a)...)
			if ra.code != 0 {
				t.Fatalf("plain build: exit %d\n%s", ra.code, ra.stderr)
			}
			// The perturbed build names its spec by a relative path from
			// another directory.
			rel, err := filepath.Rel(elsewhere, filepath.Join(perturbed, c.example))
			if err != nil {
				t.Fatal(err)
			}
			pargs := args(perturbed, b)
			pargs[len(pargs)-3] = rel
			rb := invocation{dir: elsewhere, env: []string{"TZ=Pacific/Kiritimati", "LC_ALL=tr_TR.UTF-8", "LANG=tr_TR.UTF-8", "GOMAXPROCS=1", "SOURCE_DATE_EPOCH=1"}, umask: "077"}.run(t, pargs...)
			if rb.code != 0 {
				t.Fatalf("perturbed build: exit %d\n%s", rb.code, rb.stderr)
			}
			if ra.stdout != rb.stdout {
				t.Errorf("digests differ: %q vs %q", ra.stdout, rb.stdout)
			}
			compareTrees(t, a, b)
		})
	}
}

// compareTrees fails unless the regular files under a and b are the same
// set with the same bytes.
func compareTrees(t *testing.T, a, b string) {
	t.Helper()
	files := func(root string) map[string][]byte {
		m := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			data, err := os.ReadFile(p)
			m[rel] = data
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	fa, fb := files(a), files(b)
	for name, da := range fa {
		db, ok := fb[name]
		switch {
		case !ok:
			t.Errorf("%s: only in the first output", name)
		case !bytes.Equal(da, db):
			t.Errorf("%s: bytes differ", name)
		}
	}
	for name := range fb {
		if _, ok := fa[name]; !ok {
			t.Errorf("%s: only in the second output", name)
		}
	}
	if len(fa) == 0 {
		t.Error("empty output")
	}
}
