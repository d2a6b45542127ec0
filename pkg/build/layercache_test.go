package build

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/layercache"
	"github.com/reprobuild/repro/pkg/lock/locktest"
)

// statusLog collects Options.LayerDone's reports as "layer=status".
func statusLog(o *Options) func() string {
	var mu sync.Mutex
	var got []string
	o.LayerDone = func(layer, platform, status string) {
		mu.Lock()
		got = append(got, layer+"="+status)
		mu.Unlock()
	}
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		s := append([]string(nil), got...)
		sort.Strings(s)
		got = nil
		return strings.Join(s, ",")
	}
}

// TestBuildPackagesLayerCache: a package layer is keyed by the lock's
// pins. A warm build with the same pins hits without fetching or opening
// a .deb (it has none: a fresh file cache, and the repository now serves
// wrong bytes for every one); a changed pin misses, and gives the bytes
// of a cold build.
func TestBuildPackagesLayerCache(t *testing.T) {
	r, k := aptWorld(t)
	s := aptSpec(t, r, k, webLayers)
	store := layercache.Open(filepath.Join(t.TempDir(), "layers"), time.Now, "test-builder")
	o := opts(t, s)
	o.Lock = lockFor(t, s, o.Cache)
	o.Layers = store
	st := statusLog(&o)
	cold, err := Build(context.Background(), s, o)
	if err != nil {
		t.Fatal(err)
	}
	if got := st(); got != "accounts=built,os=built,site=built" {
		t.Fatalf("cold build: %s", got)
	}

	for _, pin := range o.Lock.Apt["linux/amd64"].Layers[0].Pins {
		b := append([]byte(nil), r.Get(pin.Filename)...)
		b[len(b)/2] ^= 1
		r.Put(pin.Filename, b)
	}
	o2 := opts(t, s)
	o2.Lock, o2.Layers = o.Lock, store
	st2 := statusLog(&o2)
	warm, err := Build(context.Background(), s, o2)
	if err != nil {
		t.Fatalf("warm build (it must not need a .deb): %v", err)
	}
	if got := st2(); got != "accounts=cached,os=cached,site=cached" || warm.Descriptor.Digest != cold.Descriptor.Digest {
		t.Fatalf("warm build: %s %s, want all cached and %s", got, warm.Descriptor.Digest, cold.Descriptor.Digest)
	}
	if des, _ := os.ReadDir(filepath.Join(o2.Cache.Dir(), "blobs", "sha256")); len(des) != 0 {
		t.Errorf("the warm build fetched %d files", len(des))
	}

	// nginx-light changes (a new build of it, pinned by a new lock): the
	// layer is built, with a cold build's bytes.
	r2, k2 := aptWorld(t)
	r2.Add(t, locktest.Deb{Control: "Package: nginx-light\nVersion: 1.22.1-9\nArchitecture: amd64\nDepends: libc6 (>= 2.34), nginx-common (= 1.22.1-9)\n",
		Files: []locktest.File{{Name: "./usr/", Type: '5'}, {Name: "./usr/sbin/", Type: '5'}, {Name: "./usr/sbin/nginx", Mode: 0o755, Body: "nginx, patched"}}})
	r2.Publish(t, "stable", k2, time.Unix(1700000000, 0), "amd64")
	s2 := aptSpec(t, r2, k2, webLayers)
	o3 := opts(t, s2)
	o3.Lock, o3.Layers = lockFor(t, s2, o3.Cache), store
	if a, b := o3.Lock.Apt["linux/amd64"].Layers[0].Pins, o.Lock.Apt["linux/amd64"].Layers[0].Pins; a[2].SHA256 == b[2].SHA256 || a[0].SHA256 != b[0].SHA256 {
		t.Fatalf("the new lock: %+v, the old %+v", a, b)
	}
	st3 := statusLog(&o3)
	changed, err := Build(context.Background(), s2, o3)
	if err != nil {
		t.Fatal(err)
	}
	if got := st3(); got != "accounts=cached,os=built,site=cached" || changed.Descriptor.Digest == cold.Descriptor.Digest {
		t.Fatalf("a changed pin: %s %s (cold %s)", got, changed.Descriptor.Digest, cold.Descriptor.Digest)
	}
	o4 := opts(t, s2)
	o4.Lock, o4.Cache = o3.Lock, cache.New(t.TempDir())
	ref, err := Build(context.Background(), s2, o4)
	if err != nil {
		t.Fatal(err)
	}
	if ref.Descriptor.Digest != changed.Descriptor.Digest {
		t.Errorf("a changed pin: %s, a build without the cache %s", changed.Descriptor.Digest, ref.Descriptor.Digest)
	}
}
