package spec

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reprobuild/repro/pkg/fault"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/badspecs from what Load returns")

const badspecsDir = "../../testdata/badspecs"

// TestBadSpecs loads every testdata/badspecs/NAME.yaml and compares the
// error with NAME.golden. The spec is loaded by a relative name from its own
// directory, so that messages name NAME.yaml as a user would see it.
func TestBadSpecs(t *testing.T) {
	dir, err := filepath.Abs(badspecsDir)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Fatalf("found %d bad specs in %s; expected at least 25", len(files), dir)
	}
	t.Chdir(dir)
	for _, f := range files {
		name := filepath.Base(f)
		base := strings.TrimSuffix(name, ".yaml")
		t.Run(base, func(t *testing.T) {
			s, err := Load(name, LoadOptions{})
			if err == nil {
				t.Fatalf("Load(%s) = %+v, nil; want an error", name, s)
			}
			if k := fault.KindOf(err); k != fault.BadInput {
				t.Errorf("Load(%s): error kind %v, want bad input (exit 2)", name, k)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Errorf("Load(%s): error %T is not an ErrorList", name, err)
			}
			for _, e := range list {
				if e.File != name {
					t.Errorf("error %q names file %q, want %q", e, e.File, name)
				}
				if e.Pos.Line < 1 || e.Pos.Col < 1 {
					t.Errorf("error %q has no position", e)
				}
			}
			got := err.Error() + "\n"
			golden := base + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./pkg/spec -run TestBadSpecs -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("Load(%s) error mismatch (-%s +got):\n%s", name, golden, diff)
			}
		})
	}
}

// TestBadSpecsGoldenPaired checks that every golden file has its spec.
func TestBadSpecsGoldenPaired(t *testing.T) {
	goldens, err := filepath.Glob(filepath.Join(badspecsDir, "*.golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range goldens {
		y := strings.TrimSuffix(g, ".golden") + ".yaml"
		if _, err := os.Stat(y); err != nil {
			t.Errorf("%s has no spec %s; remove it", g, filepath.Base(y))
		}
	}
}
