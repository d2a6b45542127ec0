package imageref

import (
	"context"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/reprobuild/repro/internal/hostile"
	"github.com/reprobuild/repro/pkg/fault"
)

// TestNestedIndexes opens layouts whose index.json names indexes nested
// 1, 2, MaxIndexDepth, one past it and 1000 deep: Pick finds the image
// inside up to the limit, and Open refuses past it, naming the limit.
func TestNestedIndexes(t *testing.T) {
	host := "linux/" + runtime.GOARCH
	for _, depth := range []int{1, 2, MaxIndexDepth, MaxIndexDepth + 1, 1000} {
		dir := filepath.Join(t.TempDir(), "l")
		top, err := hostile.NestedIndex(dir, depth)
		if err != nil {
			t.Fatal(err)
		}
		a, err := Open(context.Background(), Reference{Transport: OCI, Path: dir})
		if depth > MaxIndexDepth {
			if err == nil || fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), "more than "+strconv.Itoa(MaxIndexDepth)+" deep") || !strings.Contains(err.Error(), top) {
				t.Errorf("depth %d: Open = %v, want exit 2 naming the limit and %s", depth, err, top)
			}
			continue
		}
		if err != nil {
			t.Fatalf("depth %d: %v", depth, err)
		}
		p, err := a.Pick("", host)
		if err != nil {
			t.Fatalf("depth %d: Pick: %v", depth, err)
		}
		if p.Platform != host || p.Index != top || len(p.Platforms) != 1 {
			t.Errorf("depth %d: Pick = %+v", depth, p)
		}
		if _, err := p.Image.RawConfigFile(); err != nil {
			t.Errorf("depth %d: the picked image: %v", depth, err)
		}
		imgs, err := a.Images()
		if err != nil || len(imgs) != 1 {
			t.Errorf("depth %d: Images = %v, %v", depth, imgs, err)
		}
		a.Close()
	}
}

// TestSelfNamedIndex opens an index stored under a digest it lists
// itself: its bytes do not hash to its name, so reading it fails (exit 3,
// a corrupt source) instead of walking the cycle.
func TestSelfNamedIndex(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "l")
	self, err := hostile.SelfNamedIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), Reference{Transport: OCI, Path: dir})
	if err == nil || fault.KindOf(err) != fault.Operational || !strings.Contains(err.Error(), self) {
		t.Fatalf("Open = %v (kind %v), want exit 3 naming %s", err, fault.KindOf(err), self)
	}
}

// TestImagesDepthInMemory: an index not opened by Open (a built one) is
// bounded by Images and Pick too.
func TestImagesDepthInMemory(t *testing.T) {
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := v1.Platform{OS: "linux", Architecture: "amd64"}
	var idx v1.ImageIndex = mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	for depth := 1; depth <= MaxIndexDepth+1; depth++ {
		a := Artifact{Index: idx}
		_, ierr := a.Images()
		_, perr := a.Pick("", "linux/amd64")
		if depth <= MaxIndexDepth && (ierr != nil || perr != nil) {
			t.Errorf("depth %d: %v, %v", depth, ierr, perr)
		}
		if depth > MaxIndexDepth && (fault.KindOf(ierr) != fault.BadInput || fault.KindOf(perr) != fault.BadInput || CheckDepth(idx) == nil) {
			t.Errorf("depth %d: %v, %v; want exit 2", depth, ierr, perr)
		}
		idx = mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: idx})
	}
}
