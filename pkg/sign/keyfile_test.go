package sign_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/sign"
)

// TestLoadSignerFile: a cosign key file loads with its password; no
// path, no such file, a directory and a wrong password are bad input,
// each told apart or naming the file.
func TestLoadSignerFile(t *testing.T) {
	dir := t.TempDir()
	priv, _, err := sign.GenerateKeyPair(sign.Ed25519, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "cosign.key")
	if err := os.WriteFile(key, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := sign.LoadSignerFile(key, []byte("pw")); err != nil || s == nil {
		t.Fatalf("LoadSignerFile: %v", err)
	}
	for _, c := range []struct {
		name, path, password string
		is                   error
	}{
		{"no path", "", "pw", sign.ErrNoKeyFile},
		{"no such file", filepath.Join(dir, "nope.key"), "pw", fs.ErrNotExist},
		{"a directory", dir, "pw", nil},
		{"wrong password", key, "other", nil},
	} {
		_, err := sign.LoadSignerFile(c.path, []byte(c.password))
		if fault.KindOf(err) != fault.BadInput || c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: %v; want bad input (%v)", c.name, err, c.is)
		}
		if c.path != "" && err != nil && !strings.Contains(err.Error(), c.path) {
			t.Errorf("%s: %v does not name %s", c.name, err, c.path)
		}
	}
}
