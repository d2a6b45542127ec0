package layer

import (
	"os"
	"testing"
)

// BenchmarkSourceTree lists and stats a real tree, $BENCH_SRC (default
// Go's own src), as a warm rebuild's walk does.
func BenchmarkSourceTree(b *testing.B) {
	src := os.Getenv("BENCH_SRC")
	if src == "" {
		src = "/usr/local/go/src"
	}
	sd, err := OpenSourceDir(src)
	if err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		es, err := sd.Source(".", "/src", nil, Attrs{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(es)), "entries")
	}
}
