package secrets

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkScanGoSource scans Go's own source tree, the core benchmark's
// input: the guard's cost per byte on real text.
func BenchmarkScanGoSource(b *testing.B) {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		b.Skip("no go command")
	}
	root := filepath.Join(strings.TrimSpace(string(out)), "src")
	var files []string
	var total int64
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	if len(files) == 0 {
		b.Skip("no GOROOT/src")
	}
	data := make([][]byte, len(files))
	for i, p := range files {
		data[i], _ = os.ReadFile(p)
	}
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g := NewGuard(nil)
		for j, d := range data {
			s := g.File("src", files[j])
			s.Write(d)
			s.Done()
		}
	}
}
