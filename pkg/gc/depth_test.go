package gc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprobuild/repro/internal/hostile"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
)

// TestHostileIndexes: gc reads blobs without checking their digests, so
// an index stored under a digest it lists, and one that nests 1000 deep,
// must each end in exit 2 with nothing deleted, not a walk without end.
func TestHostileIndexes(t *testing.T) {
	for _, c := range []struct {
		name string
		make func(dir string) (string, error)
		want string
	}{
		{"self-named", hostile.SelfNamedIndex, "lists itself"},
		{"1000-deep", func(dir string) (string, error) { return hostile.NestedIndex(dir, 1000) }, "more than 8 deep"},
		{"one-past-the-limit", func(dir string) (string, error) { return hostile.NestedIndex(dir, imageref.MaxIndexDepth+1) }, "more than 8 deep"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "l")
			top, err := c.make(dir)
			if err != nil {
				t.Fatal(err)
			}
			before := blobCount(t, dir)
			_, err = Layout(context.Background(), dir, opts(0, 0))
			if err == nil || fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), top) {
				t.Fatalf("gc = %v, want exit 2 naming %s and %q", err, top, c.want)
			}
			if got := blobCount(t, dir); got != before {
				t.Errorf("%d blobs after the refused gc, %d before", got, before)
			}
		})
	}
	// At the limit, gc reads it as any index.
	dir := filepath.Join(t.TempDir(), "l")
	if _, err := hostile.NestedIndex(dir, imageref.MaxIndexDepth); err != nil {
		t.Fatal(err)
	}
	if _, err := Layout(context.Background(), dir, opts(30, 1)); err != nil {
		t.Errorf("an index nested %d deep: %v", imageref.MaxIndexDepth, err)
	}
}

func blobCount(t *testing.T, dir string) int {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}
