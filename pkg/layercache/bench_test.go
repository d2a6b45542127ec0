package layercache

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/layer"
)

// BenchmarkWarmKey is a warm rebuild's work on a real tree, $BENCH_SRC
// (default Go's own src), after the walk: the stat cache loaded, every
// file known by its stat, and the key made.
func BenchmarkWarmKey(b *testing.B) {
	src := os.Getenv("BENCH_SRC")
	if src == "" {
		src = "/usr/local/go/src"
	}
	sd, err := layer.OpenSourceDir(src)
	if err != nil {
		b.Skip(err)
	}
	es, err := sd.Source(".", "/src", nil, layer.Attrs{})
	if err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(b.TempDir(), "stat")
	opts := layer.Options{Format: compress.Format2, Compression: compress.Gzip, Epoch: 1}
	sc := OpenStatCache(file, time.Now().Add(time.Hour))
	if _, _, err := EntriesKey(es, opts, sc, "b"); err != nil {
		b.Fatal(err)
	}
	if err := sc.Save(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		sc := OpenStatCache(file, time.Now())
		if _, _, err := EntriesKey(es, opts, sc, "b"); err != nil {
			b.Fatal(err)
		}
		if sc.Read() != 0 {
			b.Fatalf("%d files read", sc.Read())
		}
		if err := sc.Save(); err != nil {
			b.Fatal(err)
		}
	}
}
