package base

// Tests of the checks a base's layers pass before a build uses them: small
// crafted bases, in an OCI layout and in a registry, whose layers are not
// layers or whose config lies about them.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/reprobuild/repro/internal/hostile"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/fault"
)

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func zst(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, _ := zstd.NewWriter(&out)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func sha(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// craftedBase is a linux/amd64 image of one good layer and then blob (of
// media type mt), whose config claims diffID for it.
func craftedBase(t *testing.T, blob []byte, mt types.MediaType, diffID v1.Hash) v1.Image {
	t.Helper()
	good := hostile.Tar(hostile.Entry{Name: "etc/os-release", Type: '0', Data: []byte("ID=test\n")})
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img = must[v1.Image](t)(mutate.Append(img,
		mutate.Addendum{Layer: static.NewLayer(gz(t, good), types.OCILayer), MediaType: types.OCILayer},
		mutate.Addendum{Layer: static.NewLayer(blob, mt), MediaType: mt}))
	cf := must[*v1.ConfigFile](t)(img.ConfigFile()).DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.RootFS.DiffIDs = []v1.Hash{sha(good), diffID}
	return must[v1.Image](t)(mutate.ConfigFile(img, cf))
}

type baseCase struct {
	name   string
	blob   []byte
	mt     types.MediaType
	diffID v1.Hash
	bad    string // in the error; "" for a base that is fine
}

func baseCases(t *testing.T) []baseCase {
	tarball := hostile.Tar(hostile.Entry{Name: "usr/bin/tool", Type: '0', Data: bytes.Repeat([]byte("x"), 5000)})
	noise := make([]byte, 4096)
	rand.Read(noise)
	full := gz(t, tarball)
	return []baseCase{
		{"gzip", full, types.OCILayer, sha(tarball), ""},
		{"zstd", zst(t, tarball), types.OCILayerZStd, sha(tarball), ""},
		{"uncompressed", tarball, types.OCIUncompressedLayer, sha(tarball), ""},
		{"truncated-gzip", full[:len(full)/2], types.OCILayer, sha(tarball), "ends early"},
		{"random-bytes", noise, types.OCILayer, sha(noise), "not a valid tar layer"},
		{"bad-tar-checksum", gz(t, hostile.BadChecksum()), types.OCILayer, sha(hostile.BadChecksum()), "not a valid gzip layer"},
		{"truncated-tar", gz(t, tarball[:1536]), types.OCILayer, sha(tarball[:1536]), "ends early"},
		{"trailing-garbage", append(append([]byte(nil), full...), "junk"...), types.OCILayer, sha(tarball), "not a valid gzip layer"},
		{"lying-diff-id", full, types.OCILayer, sha([]byte("something else")), "but the base's config says its diff ID is"},
	}
}

func checkVerdict(t *testing.T, c baseCase, err error) {
	t.Helper()
	if c.bad == "" {
		if err != nil {
			t.Fatalf("a valid %s base: %v", c.name, err)
		}
		return
	}
	if err == nil {
		t.Fatalf("a %s base opened without error", c.name)
	}
	t.Logf("%s: %v", c.name, err)
	if fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), c.bad) || !strings.Contains(err.Error(), "layer 1 (sha256:") {
		t.Errorf("a %s base: %v (kind %v); want bad input naming layer 1 and %q", c.name, err, fault.KindOf(err), c.bad)
	}
}

// TestBaseCheckLayout: a local layout's base is checked before use, and
// the verdict on a valid layer is kept in the cache.
func TestBaseCheckLayout(t *testing.T) {
	for _, c := range baseCases(t) {
		t.Run(c.name, func(t *testing.T) {
			img := craftedBase(t, c.blob, c.mt, c.diffID)
			dir := t.TempDir()
			lp := must[layout.Path](t)(layout.Write(dir, empty.Index))
			if err := lp.AppendImage(img); err != nil {
				t.Fatal(err)
			}
			c2 := cache.New(t.TempDir())
			r := NewResolver(c2, nil)
			ref := parse(t, "oci:"+dir+"@"+digestOf(t, img).String())
			pin := must[Pin](t)(r.Resolve(ctx, ref))
			_, err := r.Open(ctx, ref, pin, "linux/amd64")
			checkVerdict(t, c, err)
			layer := sha(c.blob)
			valid := c.bad == "" || c.name == "lying-diff-id"
			if d, ok := r.checked(layer); ok != valid || (ok && d == c.diffID) != (c.bad == "") {
				t.Errorf("the verdict kept for layer %s: %v %v; want one (its real diff ID) only for a valid layer", layer, d, ok)
			}
			// Again, from the verdicts: the same answer.
			_, err = r.Open(ctx, ref, pin, "linux/amd64")
			checkVerdict(t, c, err)
		})
	}
}

// TestBaseCheckRegistry: a registry base's layers are checked as they
// enter the cache; an invalid one does not stay there, and a valid one
// whose config lies stays, its real diff ID recorded.
func TestBaseCheckRegistry(t *testing.T) {
	reg := newRegistry(t)
	for _, c := range baseCases(t) {
		t.Run(c.name, func(t *testing.T) {
			img := craftedBase(t, c.blob, c.mt, c.diffID)
			ref := reg.host + "/crafted/" + c.name + "@" + digestOf(t, img).String()
			if err := remote.Write(must[name.Digest](t)(name.NewDigest(ref)), img); err != nil {
				t.Fatal(err)
			}
			cdir := t.TempDir()
			r := NewResolver(cache.New(cdir), nil)
			bref := parse(t, ref)
			pin := must[Pin](t)(r.Resolve(ctx, bref))
			_, err := r.Open(ctx, bref, pin, "linux/amd64")
			checkVerdict(t, c, err)
			layer := sha(c.blob)
			_, cached := cache.New(cdir).Lookup(layer.Hex)
			_, noted := r.checked(layer)
			switch {
			case c.bad == "" || c.name == "lying-diff-id":
				if cached != nil || !noted {
					t.Errorf("the valid layer: in the cache %v, verdict kept %v; want both", cached == nil, noted)
				}
			default:
				if cached == nil || noted {
					t.Errorf("the invalid layer: in the cache %v, verdict kept %v; want neither", cached == nil, noted)
				}
			}
			// Again, from the cache and its verdicts, offline.
			r = NewResolver(cache.New(cdir, cache.Offline(c.bad == "" || c.name == "lying-diff-id")), nil)
			_, err = r.Open(ctx, bref, pin, "linux/amd64")
			checkVerdict(t, c, err)
		})
	}
}

// TestBaseCheckCachedUnchecked: a layer already in the cache without a
// verdict (a cache from before the check) is checked from there.
func TestBaseCheckCachedUnchecked(t *testing.T) {
	reg := newRegistry(t)
	c := baseCases(t)[8] // lying-diff-id
	img := craftedBase(t, c.blob, c.mt, c.diffID)
	ref := reg.host + "/crafted/unchecked@" + digestOf(t, img).String()
	if err := remote.Write(must[name.Digest](t)(name.NewDigest(ref)), img); err != nil {
		t.Fatal(err)
	}
	cdir := t.TempDir()
	r := NewResolver(cache.New(cdir), nil)
	bref := parse(t, ref)
	pin := must[Pin](t)(r.Resolve(ctx, bref))
	checkVerdict(t, c, func() error { _, err := r.Open(ctx, bref, pin, "linux/amd64"); return err }())
	os.RemoveAll(r.checkedPath(sha(c.blob)))
	r = NewResolver(cache.New(cdir, cache.Offline(true)), nil)
	_, err := r.Open(ctx, bref, pin, "linux/amd64")
	checkVerdict(t, c, err)
}

// TestBaseCheckDamagedBlobInLayout: a layout blob whose bytes are not
// those of its digest is the source's failure (operational), not a
// corrupt base.
func TestBaseCheckDamagedBlobInLayout(t *testing.T) {
	c := baseCases(t)[0]
	img := craftedBase(t, c.blob, c.mt, c.diffID)
	dir := t.TempDir()
	lp := must[layout.Path](t)(layout.Write(dir, empty.Index))
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	p := dir + "/blobs/sha256/" + sha(c.blob).Hex
	b := must[[]byte](t)(os.ReadFile(p))
	b[len(b)/2] ^= 0xff
	os.WriteFile(p, b, 0o644)
	r := NewResolver(cache.New(t.TempDir()), nil)
	ref := parse(t, "oci:"+dir+"@"+digestOf(t, img).String())
	pin := must[Pin](t)(r.Resolve(ctx, ref))
	_, err := r.Open(ctx, ref, pin, "linux/amd64")
	if err == nil || fault.KindOf(err) != fault.Operational || !strings.Contains(err.Error(), "not the digest it is named by; the layout or cache serves corrupt data") {
		t.Fatalf("a damaged layout blob: %v (kind %v); want an operational error saying it is corrupt", err, fault.KindOf(err))
	}
}

// TestBaseCheckPin: a lock's pin is checked against the index its digest
// names; one whose per-platform digests the index does not list is
// refused, in a registry and in a layout.
func TestBaseCheckPin(t *testing.T) {
	reg := newRegistry(t)
	p := pushIndex(t, reg.host+"/base:1")
	dir := t.TempDir()
	lp := must[layout.Path](t)(layout.Write(dir, empty.Index))
	if err := lp.AppendIndex(p.index); err != nil {
		t.Fatal(err)
	}
	other := digestOf(t, ociImage(t, amd64))
	for _, refs := range []string{reg.host + "/base@" + p.digest.String(), "oci:" + dir + "@" + p.digest.String()} {
		ref := parse(t, refs)
		r := NewResolver(cache.New(t.TempDir()), nil)
		good := Pin{Digest: p.digest, MediaType: types.OCIImageIndex, Platforms: p.platforms(t)}
		if err := r.CheckPin(ctx, ref, good); err != nil {
			t.Errorf("%s: the true pin: %v", refs, err)
		}
		lying := Pin{Digest: p.digest, MediaType: types.OCIImageIndex, Platforms: map[string]v1.Hash{"linux/amd64": other, "linux/arm64": p.platforms(t)["linux/arm64"]}}
		err := r.CheckPin(ctx, ref, lying)
		if err == nil || fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), "linux/amd64 image is") || !errors.Is(err, ErrPinMismatch) {
			t.Errorf("%s: a pin naming another linux/amd64 image: %v (kind %v)", refs, err, fault.KindOf(err))
		}
		extra := Pin{Digest: p.digest, MediaType: types.OCIImageIndex, Platforms: map[string]v1.Hash{"linux/s390x": other}}
		if err := r.CheckPin(ctx, ref, extra); err == nil || fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), "no linux/s390x image") {
			t.Errorf("%s: a pin naming a platform the index lacks: %v", refs, err)
		}
	}
	// The registry serves the index the pin names, byte for byte, or the
	// fetch fails on its digest (operational).
	reg.change = func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if strings.Contains(r.URL.Path, "/manifests/"+p.digest.String()) && r.Method == http.MethodGet {
			w.Header().Set("Content-Type", string(types.OCIImageIndex))
			w.Write([]byte(`{"schemaVersion":2,"manifests":[]}`))
			return true
		}
		return false
	}
	r := NewResolver(cache.New(t.TempDir()), nil)
	err := r.CheckPin(ctx, parse(t, reg.host+"/base@"+p.digest.String()), Pin{Digest: p.digest, Platforms: p.platforms(t)})
	if err == nil || fault.KindOf(err) == fault.BadInput {
		t.Errorf("an index whose bytes are not its digest's: %v (kind %v); want an operational error", err, fault.KindOf(err))
	}
}

// TestPlatformManifestNoPlatforms: a pin that lists no platform (an index
// of indexes, a lock without platforms) says so, not "it has " and nothing.
func TestPlatformManifestNoPlatforms(t *testing.T) {
	_, err := Pin{Digest: sha([]byte("x")), Platforms: map[string]v1.Hash{}}.PlatformManifest("linux/amd64")
	if err == nil || fault.KindOf(err) != fault.BadInput || strings.Contains(err.Error(), "it has ") || !strings.Contains(err.Error(), "lists no image with a platform") {
		t.Errorf("no platforms: %v", err)
	}
}
