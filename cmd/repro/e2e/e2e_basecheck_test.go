package e2e

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/internal/hostile"
)

// craftedBaseLayout writes a one-layer linux/amd64 image, its layer blob
// as given and its config claiming diffID, into an OCI layout at dir, and
// returns the image's digest.
func craftedBaseLayout(t *testing.T, dir string, blob []byte, diffID v1.Hash) string {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(blob, types.OCILayer), MediaType: types.OCILayer})
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", "amd64", v1.Time{Time: timeUnix(e2eEpoch)}
	cf.RootFS.DiffIDs = []v1.Hash{diffID}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func sha256Hash(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// TestE2EBaseIntegrity: repro build refuses a base whose layer is not what
// its config says (truncated gzip, random bytes, a tar header with a bad
// checksum, a diff ID that lies) with exit 2 at the spec's base: line,
// writing nothing, where it used to publish the base unchanged; the same
// layer with a true diff ID builds.
func TestE2EBaseIntegrity(t *testing.T) {
	t.Parallel()
	tarball := hostile.Tar(hostile.Entry{Name: "etc/os-release", Type: '0', Data: []byte("ID=crafted\n")})
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(tarball)
	zw.Close()
	full := zb.Bytes()
	var bad bytes.Buffer
	zw = gzip.NewWriter(&bad)
	zw.Write(hostile.BadChecksum())
	zw.Close()
	for _, c := range []struct {
		name   string
		blob   []byte
		diffID v1.Hash
		want   string // in stderr; "" for a base that builds
	}{
		{"valid", full, sha256Hash(tarball), ""},
		{"truncated-gzip", full[:len(full)/2], sha256Hash(tarball), "ends early"},
		{"random-bytes", bytes.Repeat([]byte("garbage!"), 512), sha256Hash(tarball), "not a valid tar layer"},
		{"bad-tar-checksum", bad.Bytes(), sha256Hash(hostile.BadChecksum()), "invalid tar header"},
		{"lying-diff-id", full, sha256Hash([]byte("another layer")), "diff ID is sha256:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			digest := craftedBaseLayout(t, filepath.Join(dir, "base"), c.blob, c.diffID)
			writeSpec(t, dir, "version: 1\nname: app\nbase: oci:base@"+digest+"\nlayers:\n  - contents:\n      - {path: /etc/motd, content: hi}\n")
			tmp := filepath.Join(dir, "tmp")
			os.Mkdir(tmp, 0o755)
			r := invocation{dir: dir, env: []string{"TMPDIR=" + tmp}}.run(t, "build", "--cache-dir", filepath.Join(dir, "cache"), "-o", "oci:out:t")
			if c.want == "" {
				if r.code != 0 {
					t.Fatalf("a valid crafted base: exit %d\n%s", r.code, r.stderr)
				}
				return
			}
			if r.code != 2 || !strings.Contains(r.stderr, "repro.yaml:3:7: base: ") || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "layer 0 (sha256:") {
				t.Errorf("exit %d; want 2 at repro.yaml:3:7 naming layer 0 and %q:\n%s", r.code, c.want, r.stderr)
			}
			t.Logf("%s", r.stderr)
			if strings.Contains(r.stdout, "sha256:") {
				t.Errorf("a digest was printed: %s", r.stdout)
			}
			e2eNothingLeft(t, "output", filepath.Join(dir, "out"))
			e2eNothingLeft(t, "TMPDIR", tmp)
		})
	}
}

// TestE2ELockIndexChecked: a lock whose base platform digest is not the
// one its pinned index (here a single image) lists is refused with exit 2
// at the base: line, saying how to re-lock; the true lock builds.
func TestE2ELockIndexChecked(t *testing.T) {
	t.Parallel()
	tarball := hostile.Tar(hostile.Entry{Name: "etc/os-release", Type: '0', Data: []byte("ID=crafted\n")})
	dir := t.TempDir()
	digest := craftedBaseLayout(t, filepath.Join(dir, "base"), tarball, sha256Hash(tarball))
	writeSpec(t, dir, "version: 1\nname: app\nbase: oci:base@"+digest+"\nlayers:\n  - contents:\n      - {path: /etc/motd, content: hi}\n")
	iv := invocation{dir: dir}
	cache := filepath.Join(dir, "cache")
	if r := iv.run(t, "lock", "--cache-dir", cache); r.code != 0 {
		t.Fatalf("lock: exit %d\n%s", r.code, r.stderr)
	}
	lockFile := filepath.Join(dir, "repro.lock.json")
	raw, err := os.ReadFile(lockFile)
	if err != nil {
		t.Fatal(err)
	}
	if r := iv.run(t, "build", "--locked", "--cache-dir", cache, "-o", "oci:out:t"); r.code != 0 {
		t.Fatalf("build with the true lock: exit %d\n%s", r.code, r.stderr)
	}
	other := sha256Hash([]byte("another image")).String()
	n := strings.Count(string(raw), digest)
	if n < 2 {
		t.Fatalf("the lock names the single-image base %s %d times; want its digest and its platform's:\n%s", digest, n, raw)
	}
	// The last mention is the platform's.
	i := strings.LastIndex(string(raw), digest)
	edited := string(raw[:i]) + other + string(raw[i+len(digest):])
	os.WriteFile(lockFile, []byte(edited), 0o644)
	os.RemoveAll(filepath.Join(dir, "out"))
	r := iv.run(t, "build", "--locked", "--cache-dir", cache, "-o", "oci:out:t")
	if r.code != 2 || !strings.Contains(r.stderr, "repro.yaml:3:7: base: ") || !strings.Contains(r.stderr, other) || !strings.Contains(r.stderr, "run repro lock --update") {
		t.Errorf("a lock naming another image for linux/amd64: exit %d; want 2 at repro.yaml:3:7 naming %s and how to re-lock:\n%s", r.code, other, r.stderr)
	}
	t.Logf("%s", r.stderr)
	e2eNothingLeft(t, "output", filepath.Join(dir, "out"))
}
