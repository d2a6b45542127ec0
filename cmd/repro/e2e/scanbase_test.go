package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScanBaseReportsAKeyInTheBase: --scan-base runs the secret guard over
// the base's layers, and a private key the base carries is reported on
// stderr, by path and rule, without failing the build; without the flag
// the base is not scanned.
func TestScanBaseReportsAKeyInTheBase(t *testing.T) {
	t.Parallel()
	key, err := os.ReadFile(filepath.Join(moduleRoot(t), "testdata", "secrets", "positive", "private-key", "ec.key"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	baseDir := filepath.Join(dir, "base")
	if err := os.MkdirAll(baseDir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(baseDir, "k"), key, 0o600)
	writeSpec(t, baseDir, "version: 1\nname: base\nlayers:\n  - contents:\n      - {path: /root/.ssh/id_ec, source: k}\n"+
		"secrets:\n  allow:\n    - {path: /root/.ssh/id_ec, reason: \"a base that leaks, for this test\"}\n")
	baseDigest := lastLine(repro(t, baseDir, "build", "-q", "-o", "oci:"+filepath.Join(dir, "layout")+":v1").stdout)
	appDir := filepath.Join(dir, "app")
	if err := os.MkdirAll(appDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeSpec(t, appDir, "version: 1\nname: app\nbase: oci:../layout@"+baseDigest+"\nlayers:\n  - contents:\n      - {path: /etc/motd, content: hi}\n")
	r := repro(t, appDir, "build", "--scan-base", "-o", "oci:out:t")
	if !strings.Contains(r.stderr, "secret in the base") || !strings.Contains(r.stderr, "/root/.ssh/id_ec: rule private-key") {
		t.Errorf("build --scan-base did not report the base's key:\n%s", r.stderr)
	}
	if !strings.HasPrefix(lastLine(r.stdout), "sha256:") {
		t.Errorf("build --scan-base: stdout %q", r.stdout)
	}
	r = repro(t, appDir, "build", "-o", "oci:out:t")
	if strings.Contains(r.stderr, "secret in the base") {
		t.Errorf("the base was scanned without --scan-base:\n%s", r.stderr)
	}
}
