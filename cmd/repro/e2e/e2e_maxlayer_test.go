package e2e

import (
	"archive/tar"
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2EMaxLayerSize drives --max-layer-size through the binary: a layer
// that expands past the limit is bad input (exit 2) with a message naming
// the flag, the same layer passes under the default, and a limit that is
// not a size is a usage error.
func TestE2EMaxLayerSize(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	body := bytes.Repeat([]byte{0}, 2<<20)
	if err := tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Size: int64(len(body)), Mode: 0o644, ModTime: timeUnix(e2eEpoch)}); err != nil {
		t.Fatal(err)
	}
	tw.Write(body)
	tw.Close()
	dir := t.TempDir()
	ref := hostileLayout(t, filepath.Join(dir, "layout"), b.Bytes())
	iv := invocation{dir: dir}

	r := iv.run(t, "inspect", "--files", "--max-layer-size", "1MiB", ref)
	if r.code != 2 || !strings.Contains(r.stderr, "--max-layer-size") {
		t.Errorf("a 2 MiB layer under --max-layer-size 1MiB: exit %d, want 2 naming --max-layer-size:\n%s", r.code, r.stderr)
	}
	if r := iv.run(t, "inspect", "--files", ref); r.code != 0 || !strings.Contains(r.stdout, "big") {
		t.Errorf("under the default limit: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := iv.run(t, "inspect", "--files", "--max-layer-size", "4MiB", ref); r.code != 0 {
		t.Errorf("under --max-layer-size 4MiB: exit %d\n%s", r.code, r.stderr)
	}
	for _, bad := range []string{"banana", "0", "-1MiB"} {
		if r := iv.run(t, "inspect", "--files", "--max-layer-size", bad, ref); r.code != 2 || !strings.Contains(r.stderr, "--max-layer-size") {
			t.Errorf("--max-layer-size %s: exit %d, want 2 naming the flag:\n%s", bad, r.code, r.stderr)
		}
	}
}
