package apt

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprobuild/repro/internal/testtool"
)

// TestSubjectHashOpenSSL checks subjectHash against openssl x509 -hash on
// every certificate of this machine's ca-certificates (and of Go's test
// certificates that carry other string types, when present).
func TestSubjectHashOpenSSL(t *testing.T) {
	testtool.Require(t, "openssl")
	files, _ := filepath.Glob("/usr/share/ca-certificates/mozilla/*.crt")
	if len(files) < 100 {
		testtool.Require(t, "/usr/share/ca-certificates/mozilla (ca-certificates)")
	}
	// Every fifth certificate (openssl runs once per file; ~30 of Debian's
	// ~150 cover its string types: PrintableString, UTF8String, BMPString).
	var some []string
	for i := 0; i < len(files); i += 5 {
		some = append(some, files[i])
	}
	files = some
	var want []string
	for _, f := range files {
		out, err := exec.Command("openssl", "x509", "-hash", "-noout", "-in", f).Output()
		if err != nil {
			t.Fatalf("openssl x509 -hash %s: %v", f, err)
		}
		want = append(want, strings.TrimSpace(string(out)))
	}
	for i, f := range files {
		data, err := os.ReadFile(f)
		must(t, err)
		got, _, err := subjectHash(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if got != want[i] {
			t.Errorf("%s: subject hash %s, openssl says %s", filepath.Base(f), got, want[i])
		}
	}
	t.Logf("%d certificates, every subject hash as openssl computes it", len(files))
}
