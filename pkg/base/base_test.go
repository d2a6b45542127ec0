package base

// Tests of resolving and opening bases against go-containerregistry's
// in-memory registry, behind a handler that counts (and, where a test asks,
// changes) the requests it answers.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/fault"
)

// testRegistry is an in-memory registry on 127.0.0.1 that counts requests.
type testRegistry struct {
	host     string
	requests atomic.Int64
	// change, when set, may answer a request itself (returning true).
	change func(w http.ResponseWriter, r *http.Request, next http.Handler) bool
}

func newRegistry(t *testing.T) *testRegistry {
	t.Helper()
	reg := &testRegistry{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg.requests.Add(1)
		if reg.change != nil && reg.change(w, r, h) {
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	reg.host = strings.TrimPrefix(srv.URL, "http://")
	return reg
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// ociImage is a random two-layer image for p with OCI media types
// throughout and an env.
func ociImage(t *testing.T, p v1.Platform) v1.Image {
	t.Helper()
	var layers []v1.Layer
	for range 2 {
		layers = append(layers, must[v1.Layer](t)(random.Layer(300, types.OCILayer)))
	}
	img := must[v1.Image](t)(mutate.AppendLayers(empty.Image, layers...))
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	return withPlatform(t, img, p)
}

func withPlatform(t *testing.T, img v1.Image, p v1.Platform) v1.Image {
	t.Helper()
	cf := must[*v1.ConfigFile](t)(img.ConfigFile()).DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Config.Env = []string{"PATH=/usr/bin:/bin"}
	return must[v1.Image](t)(mutate.ConfigFile(img, cf))
}

func digestOf(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	return must[v1.Hash](t)(d.Digest())
}

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64"}
)

// pushed is an index pushed to a registry.
type pushed struct {
	ref    string // host/repo:tag
	index  v1.ImageIndex
	digest v1.Hash
	images map[string]v1.Image // by os/arch
}

// pushIndex pushes an OCI index of a fresh linux/amd64 and linux/arm64
// image to ref.
func pushIndex(t *testing.T, ref string) *pushed {
	t.Helper()
	p := &pushed{ref: ref, images: map[string]v1.Image{}}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, plat := range []v1.Platform{amd64, arm64} {
		img := ociImage(t, plat)
		p.images[plat.OS+"/"+plat.Architecture] = img
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &plat}})
	}
	tag := must[name.Tag](t)(name.NewTag(ref))
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	p.index, p.digest = idx, digestOf(t, idx)
	return p
}

func (p *pushed) platforms(t *testing.T) map[string]v1.Hash {
	out := map[string]v1.Hash{}
	for k, img := range p.images {
		out[k] = digestOf(t, img)
	}
	return out
}

func parse(t *testing.T, s string) Ref {
	t.Helper()
	return must[Ref](t)(ParseRef(s))
}

var ctx = context.Background()

func TestResolveIndexByTagAndDigest(t *testing.T) {
	reg := newRegistry(t)
	p := pushIndex(t, reg.host+"/base:1")
	r := NewResolver(cache.New(t.TempDir()), nil)
	want := Pin{Digest: p.digest, MediaType: types.OCIImageIndex, Platforms: p.platforms(t)}

	byTag := parse(t, reg.host+"/base:1")
	if byTag.Digest != "" || byTag.Local() {
		t.Errorf("ParseRef(tag): Digest %q, Local %v; want no digest, not local", byTag.Digest, byTag.Local())
	}
	got := must[Pin](t)(r.Resolve(ctx, byTag))
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Resolve by tag (-want +got):\n%s", d)
	}

	byDigest := parse(t, reg.host+"/base:1@"+p.digest.String())
	if byDigest.Digest != p.digest.String() {
		t.Errorf("ParseRef(tag@digest).Digest = %q, want %s", byDigest.Digest, p.digest)
	}
	// The annotation names repository and tag, never the digest, so that a
	// pin in the spec and a pin in the lock give the same bytes.
	if byDigest.Name() != reg.host+"/base:1" || byTag.Name() != reg.host+"/base:1" {
		t.Errorf("Name() = %q and %q, want %s/base:1 for both", byDigest.Name(), byTag.Name(), reg.host)
	}
	if n := parse(t, "docker://"+reg.host+"/base:1").Name(); n != reg.host+"/base:1" {
		t.Errorf("Name() of docker://… = %q", n)
	}
	got = must[Pin](t)(r.Resolve(ctx, byDigest))
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Resolve by digest (-want +got):\n%s", d)
	}

	// By digest, the tag is not consulted: moving it changes nothing, while
	// the tag alone now resolves to the new index.
	moved := pushIndex(t, reg.host+"/base:1")
	got = must[Pin](t)(r.Resolve(ctx, byDigest))
	if got.Digest != p.digest {
		t.Errorf("after the tag moved, Resolve by digest gave %s, want %s", got.Digest, p.digest)
	}
	got = must[Pin](t)(r.Resolve(ctx, byTag))
	if got.Digest != moved.digest {
		t.Errorf("after the tag moved, Resolve by tag gave %s, want %s", got.Digest, moved.digest)
	}
}

func TestResolveSingleManifest(t *testing.T) {
	reg := newRegistry(t)
	arm64v8 := v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	img := ociImage(t, arm64v8)
	if err := remote.Write(must[name.Tag](t)(name.NewTag(reg.host+"/single:1")), img); err != nil {
		t.Fatal(err)
	}
	d := digestOf(t, img)
	r := NewResolver(cache.New(t.TempDir()), nil)
	ref := parse(t, reg.host+"/single:1")
	pin := must[Pin](t)(r.Resolve(ctx, ref))
	want := Pin{Digest: d, MediaType: types.OCIManifestSchema1, Platforms: map[string]v1.Hash{"linux/arm64/v8": d}}
	if diff := cmp.Diff(want, pin); diff != "" {
		t.Errorf("Resolve of a single manifest (-want +got):\n%s", diff)
	}
	// arm64 and arm64/v8 name the same platform.
	if got, err := pin.PlatformManifest("linux/arm64"); err != nil || got != d {
		t.Errorf("PlatformManifest(linux/arm64) = %s, %v; want %s", got, err, d)
	}
	bi := must[*Image](t)(r.Open(ctx, ref, pin, "linux/arm64"))
	if bi.ManifestDigest != d || len(bi.Layers) != 2 {
		t.Errorf("Open: manifest %s with %d layers, want %s with 2", bi.ManifestDigest, len(bi.Layers), d)
	}
	_, err := r.Open(ctx, ref, pin, "linux/amd64")
	if err == nil || fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), "linux/arm64/v8") || !strings.Contains(err.Error(), "linux/amd64") {
		t.Errorf("Open(linux/amd64) of an arm64 image: %v (kind %v); want bad input naming linux/amd64 and linux/arm64/v8", err, fault.KindOf(err))
	}
}

func TestBasePlatformManifestErrors(t *testing.T) {
	reg := newRegistry(t)
	p := pushIndex(t, reg.host+"/base:1")
	r := NewResolver(cache.New(t.TempDir()), nil)
	ref := parse(t, reg.host+"/base:1")
	pin := must[Pin](t)(r.Resolve(ctx, ref))
	for _, plat := range []string{"linux/s390x", "windows/amd64", "linux/arm/v7"} {
		_, err := pin.PlatformManifest(plat)
		if err == nil {
			t.Fatalf("PlatformManifest(%s): no error", plat)
		}
		msg := err.Error()
		if fault.KindOf(err) != fault.BadInput {
			t.Errorf("PlatformManifest(%s): kind %v, want bad input", plat, fault.KindOf(err))
		}
		for _, want := range []string{plat, "linux/amd64, linux/arm64", p.digest.String()} {
			if !strings.Contains(msg, want) {
				t.Errorf("PlatformManifest(%s): %q does not name %q", plat, msg, want)
			}
		}
		// Open says the same, before any request for a manifest.
		before := reg.requests.Load()
		if _, err := r.Open(ctx, ref, pin, plat); err == nil || !strings.Contains(err.Error(), "linux/amd64, linux/arm64") {
			t.Errorf("Open(%s): %v; want the platforms the base has", plat, err)
		}
		if n := reg.requests.Load() - before; n != 0 {
			t.Errorf("Open(%s) of a platform the pin lacks made %d requests", plat, n)
		}
	}
	// A base with arm64/v8 in its index serves a linux/arm64 build, and
	// the other way round.
	v8 := Pin{Digest: p.digest, Platforms: map[string]v1.Hash{"linux/arm64/v8": p.digest}}
	if _, err := v8.PlatformManifest("linux/arm64"); err != nil {
		t.Errorf("arm64/v8 base, linux/arm64 build: %v", err)
	}
	if _, err := pin.PlatformManifest("linux/arm64/v8"); err != nil {
		t.Errorf("arm64 base, linux/arm64/v8 build: %v", err)
	}
}

// checkMountable checks that every layer of bi names repo, the base's
// repository, as a *remote.MountableLayer, so that a push to its registry
// can mount it; with repo "" (a local base), that none does.
func checkMountable(t *testing.T, bi *Image, repo string) {
	t.Helper()
	for i, l := range bi.Layers {
		ml, ok := l.(*remote.MountableLayer)
		switch {
		case repo == "" && ok:
			t.Errorf("layer %d of a local base names the repository %s", i, ml.Reference)
		case repo == "":
		case !ok:
			t.Errorf("layer %d is a %T, not a *remote.MountableLayer naming %s", i, l, repo)
		case ml.Reference.Context().String() != repo || ml.Reference.Identifier() != digestOf(t, l).String():
			t.Errorf("layer %d names %s; want %s@%s", i, ml.Reference, repo, digestOf(t, l))
		}
	}
}

// compressed returns the compressed bytes of l.
func compressed(t *testing.T, l v1.Layer) []byte {
	t.Helper()
	rc := must[io.ReadCloser](t)(l.Compressed())
	defer rc.Close()
	return must[[]byte](t)(io.ReadAll(rc))
}

// checkOpened checks that bi is img as published: manifest, config and
// every layer's descriptor and bytes.
func checkOpened(t *testing.T, bi *Image, img v1.Image) {
	t.Helper()
	if bi.ManifestDigest != digestOf(t, img) {
		t.Errorf("manifest digest %s, want %s", bi.ManifestDigest, digestOf(t, img))
	}
	if d := cmp.Diff(must[*v1.Manifest](t)(img.Manifest()), bi.Manifest); d != "" {
		t.Errorf("manifest (-want +got):\n%s", d)
	}
	if !bytes.Equal(bi.Config, must[[]byte](t)(img.RawConfigFile())) {
		t.Errorf("config: %s\nwant the published bytes %s", bi.Config, must[[]byte](t)(img.RawConfigFile()))
	}
	want := must[[]v1.Layer](t)(img.Layers())
	if len(bi.Layers) != len(want) {
		t.Fatalf("%d layers, want %d", len(bi.Layers), len(want))
	}
	for i, l := range bi.Layers {
		if got, w := digestOf(t, l), digestOf(t, want[i]); got != w {
			t.Errorf("layer %d: digest %s, want %s", i, got, w)
		}
		if got, w := must[int64](t)(l.Size()), must[int64](t)(want[i].Size()); got != w {
			t.Errorf("layer %d: size %d, want %d", i, got, w)
		}
		if !bytes.Equal(compressed(t, l), compressed(t, want[i])) {
			t.Errorf("layer %d: the bytes differ from the published ones", i)
		}
		if _, err := l.Uncompressed(); err == nil {
			t.Errorf("layer %d: Uncompressed works; base layers must only be copied", i)
		}
	}
}

func TestBaseOpenThroughCacheThenOffline(t *testing.T) {
	reg := newRegistry(t)
	p := pushIndex(t, reg.host+"/base:1")
	dir := t.TempDir()
	online := NewResolver(cache.New(dir), nil)
	pin := must[Pin](t)(online.Resolve(ctx, parse(t, reg.host+"/base:1")))
	ref := parse(t, reg.host+"/base:1")
	for plat, img := range p.images {
		bi := must[*Image](t)(online.Open(ctx, ref, pin, plat))
		checkOpened(t, bi, img)
		checkMountable(t, bi, reg.host+"/base")
	}
	if reg.requests.Load() == 0 {
		t.Fatal("the online resolver made no requests")
	}

	// Everything is cached now: offline, with no registry at all, the pin
	// (by digest) and both platforms open from the cache alone.
	reg.requests.Store(0)
	offline := NewResolver(cache.New(dir, cache.Offline(true)), nil)
	byDigest := parse(t, reg.host+"/base:1@"+p.digest.String())
	if got := must[Pin](t)(offline.Resolve(ctx, byDigest)); !cmp.Equal(got, pin) {
		t.Errorf("offline Resolve by digest: %+v, want %+v", got, pin)
	}
	for plat, img := range p.images {
		bi := must[*Image](t)(offline.Open(ctx, ref, pin, plat))
		checkOpened(t, bi, img)
		checkMountable(t, bi, reg.host+"/base")
	}
	// A warm cache serves an online resolver without a request, too.
	for plat := range p.images {
		must[*Image](t)(online.Open(ctx, ref, pin, plat))
	}
	if n := reg.requests.Load(); n != 0 {
		t.Errorf("opening from a warm cache made %d registry requests, want 0", n)
	}
}

// TestResolveOfflineTagMakesNoRequest: resolving a tag needs the registry;
// offline, that must fail without a request (and say --offline), not reach
// for the network.
func TestResolveOfflineTagMakesNoRequest(t *testing.T) {
	reg := newRegistry(t)
	pushIndex(t, reg.host+"/base:1")
	before := reg.requests.Load()
	offline := NewResolver(cache.New(t.TempDir(), cache.Offline(true)), nil)
	pin, err := offline.Resolve(ctx, parse(t, reg.host+"/base:1"))
	if n := reg.requests.Load() - before; n != 0 {
		t.Errorf("offline Resolve of a tag made %d registry requests (got pin %v, err %v); want none", n, pin.Digest, err)
	}
	if err == nil || !strings.Contains(err.Error(), "offline") {
		t.Errorf("offline Resolve of a tag: %v; want an error that names --offline", err)
	}
}

func TestBaseOpenOfflineMissingBlobs(t *testing.T) {
	reg := newRegistry(t)
	p := pushIndex(t, reg.host+"/base:1")
	ref := parse(t, reg.host+"/base:1")
	pin := Pin{Digest: p.digest, MediaType: types.OCIImageIndex, Platforms: p.platforms(t)}
	img := p.images["linux/amd64"]
	m := must[*v1.Manifest](t)(img.Manifest())
	reg.requests.Store(0)

	// An empty cache: not even the manifest is there to say what else is
	// missing.
	empty := NewResolver(cache.New(t.TempDir(), cache.Offline(true)), nil)
	_, err := empty.Open(ctx, ref, pin, "linux/amd64")
	if err == nil || fault.KindOf(err) != fault.Operational {
		t.Fatalf("offline Open with an empty cache: %v (kind %v); want an operational error", err, fault.KindOf(err))
	}
	if !errors.Is(err, cache.ErrOffline) {
		t.Errorf("offline Open with an empty cache: %v is not cache.ErrOffline", err)
	}
	for _, want := range []string{digestOf(t, img).String(), "forbids fetching"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("offline Open with an empty cache: %q does not name %q", err, want)
		}
	}

	// The manifest is cached, its blobs are not: the error names every one.
	dir := t.TempDir()
	must[*Image](t)(NewResolver(cache.New(dir), nil).Open(ctx, ref, pin, "linux/amd64"))
	reg.requests.Store(0)
	blobs := []string{"config " + m.Config.Digest.String()}
	for i, l := range m.Layers {
		blobs = append(blobs, fmt.Sprintf("layer %d %s", i, l.Digest))
	}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if err := os.Remove(filepath.Join(dir, "blobs", "sha256", d.Digest.Hex)); err != nil {
			t.Fatal(err)
		}
	}
	_, err = NewResolver(cache.New(dir, cache.Offline(true)), nil).Open(ctx, ref, pin, "linux/amd64")
	if err == nil || fault.KindOf(err) != fault.Operational {
		t.Fatalf("offline Open without the blobs: %v (kind %v); want an operational error", err, fault.KindOf(err))
	}
	if !errors.Is(err, cache.ErrOffline) {
		t.Errorf("offline Open without the blobs: %v is not cache.ErrOffline", err)
	}
	for _, want := range append(blobs, "3 blobs", ref.Raw, "linux/amd64", "forbids fetching") {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("offline Open without the blobs: %q does not name %q", err, want)
		}
	}
	if n := reg.requests.Load(); n != 0 {
		t.Errorf("offline Open made %d registry requests, want 0", n)
	}
}

func TestBaseDockerMediaTypes(t *testing.T) {
	reg := newRegistry(t)
	// random.Image is Docker-typed throughout: manifest, config, layers.
	img := withPlatform(t, must[v1.Image](t)(random.Image(300, 2)), amd64)
	if mt := must[types.MediaType](t)(img.MediaType()); mt != types.DockerManifestSchema2 {
		t.Fatalf("random.Image is %s", mt)
	}
	ref := reg.host + "/docker:1"
	if err := remote.Write(must[name.Tag](t)(name.NewTag(ref)), img); err != nil {
		t.Fatal(err)
	}
	r := NewResolver(cache.New(t.TempDir()), nil)
	pin := must[Pin](t)(r.Resolve(ctx, parse(t, ref)))
	if pin.MediaType != types.DockerManifestSchema2 || pin.Platforms["linux/amd64"] != digestOf(t, img) {
		t.Errorf("Resolve of a Docker manifest: %+v", pin)
	}
	bi := must[*Image](t)(r.Open(ctx, parse(t, ref), pin, "linux/amd64"))
	want := must[[]v1.Layer](t)(img.Layers())
	for i, l := range bi.Layers {
		if mt := must[types.MediaType](t)(l.MediaType()); mt != types.OCILayer {
			t.Errorf("layer %d: media type %s, want %s", i, mt, types.OCILayer)
		}
		// Only the type changes: digest, size and bytes are as published.
		if digestOf(t, l) != digestOf(t, want[i]) || must[int64](t)(l.Size()) != must[int64](t)(want[i].Size()) {
			t.Errorf("layer %d: descriptor changed", i)
		}
		b := compressed(t, l)
		sum := sha256.Sum256(b)
		if "sha256:"+hex.EncodeToString(sum[:]) != digestOf(t, l).String() {
			t.Errorf("layer %d: bytes hash to sha256:%x, not its digest", i, sum)
		}
	}

	// A Docker manifest list resolves like an OCI index.
	list := mutate.IndexMediaType(empty.Index, types.DockerManifestList)
	list = mutate.AppendManifests(list,
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &amd64}},
		mutate.IndexAddendum{Add: withPlatform(t, must[v1.Image](t)(random.Image(300, 1)), arm64), Descriptor: v1.Descriptor{Platform: &arm64}})
	if err := remote.WriteIndex(must[name.Tag](t)(name.NewTag(reg.host+"/docker:list")), list); err != nil {
		t.Fatal(err)
	}
	lp := must[Pin](t)(r.Resolve(ctx, parse(t, reg.host+"/docker:list")))
	if lp.MediaType != types.DockerManifestList || lp.Digest != digestOf(t, list) || len(lp.Platforms) != 2 || lp.Platforms["linux/amd64"] != digestOf(t, img) {
		t.Errorf("Resolve of a Docker manifest list: %+v", lp)
	}

	for in, want := range map[types.MediaType]types.MediaType{
		types.DockerLayer:             types.OCILayer,
		types.DockerForeignLayer:      types.OCILayer,
		types.DockerUncompressedLayer: types.OCIUncompressedLayer,
		types.OCILayer:                types.OCILayer,
		types.OCILayerZStd:            types.OCILayerZStd,
	} {
		if got := ociLayerType(in); got != want {
			t.Errorf("ociLayerType(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestBaseCorruptBlob: a registry that serves other bytes than a layer's
// digest: Open fails (operational) and the cache keeps nothing of it.
func TestBaseCorruptBlob(t *testing.T) {
	reg := newRegistry(t)
	p := pushIndex(t, reg.host+"/base:1")
	layer := must[*v1.Manifest](t)(p.images["linux/amd64"].Manifest()).Layers[1].Digest
	reg.change = func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+layer.String()) {
			return false
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		b := rec.Body.Bytes()
		if len(b) > 0 {
			b[len(b)/2] ^= 0xff
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(b)
		return true
	}
	c := cache.New(t.TempDir())
	r := NewResolver(c, nil)
	ref := parse(t, reg.host+"/base:1")
	pin := must[Pin](t)(r.Resolve(ctx, ref))
	_, err := r.Open(ctx, ref, pin, "linux/amd64")
	if err == nil || fault.KindOf(err) != fault.Operational {
		t.Fatalf("Open of a corrupt layer: %v (kind %v); want an operational error", err, fault.KindOf(err))
	}
	if !strings.Contains(err.Error(), layer.String()) {
		t.Errorf("Open of a corrupt layer: %q does not name the layer %s", err, layer)
	}
	if _, err := c.Lookup(layer.Hex); err == nil {
		t.Errorf("the corrupt layer %s is in the cache", layer)
	}
	t.Logf("corrupt layer: %v", err)
}

func TestBaseRegistryRefusesCredentials(t *testing.T) {
	reg := newRegistry(t)
	reg.change = func(w http.ResponseWriter, r *http.Request, _ http.Handler) bool {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
		return true
	}
	r := NewResolver(cache.New(t.TempDir()), nil)
	_, err := r.Resolve(ctx, parse(t, reg.host+"/base:1"))
	if err == nil || fault.KindOf(err) != fault.Operational {
		t.Fatalf("Resolve against a registry that wants credentials: %v (kind %v); want operational", err, fault.KindOf(err))
	}
	for _, want := range []string{"podman login " + reg.host, "docker login " + reg.host} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
}

func TestBaseParseRef(t *testing.T) {
	const d = "sha256:0123456789012345678901234567890123456789012345678901234567890123"
	for _, tc := range []struct {
		in     string
		digest string
		local  bool
		name   string
		bad    bool
	}{
		{in: "registry.example/debian:12", name: "registry.example/debian:12"},
		{in: "registry.example/debian:12@" + d, digest: d, name: "registry.example/debian:12"},
		{in: "registry.example/debian@" + d, digest: d, name: "registry.example/debian"},
		{in: "oci:/some/layout@" + d, digest: d, local: true},
		{in: "oci-archive:/some/base.tar:v1", local: true},
		{in: "oci:/some/layout", bad: true},      // a layout entry must be pinned
		{in: "oci:/some/layout:v1", bad: true},   // by digest, not by tag
		{in: "docker-archive:/x.tar", bad: true}, // not a base transport
		{in: "Not A Reference", bad: true},
	} {
		r, err := ParseRef(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseRef(%q): no error", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRef(%q): %v", tc.in, err)
			continue
		}
		if r.Digest != tc.digest || r.Local() != tc.local || r.Name() != tc.name || r.Raw != tc.in {
			t.Errorf("ParseRef(%q) = digest %q local %v name %q raw %q; want %q %v %q", tc.in, r.Digest, r.Local(), r.Name(), r.Raw, tc.digest, tc.local, tc.name)
		}
	}
}

// TestBaseLocalLayout: an oci:DIR@sha256:… base resolves and opens from the
// layout, without a cache entry or a registry.
func TestBaseLocalLayout(t *testing.T) {
	reg := newRegistry(t) // only for its images; nothing is asked of it
	p := pushIndex(t, reg.host+"/base:1")
	dir := t.TempDir()
	lp := must[layout.Path](t)(layout.Write(dir, empty.Index))
	if err := lp.AppendIndex(p.index); err != nil {
		t.Fatal(err)
	}
	reg.requests.Store(0)
	cdir := t.TempDir()
	r := NewResolver(cache.New(cdir, cache.Offline(true)), nil)
	ref := parse(t, "oci:"+dir+"@"+p.digest.String())
	pin := must[Pin](t)(r.Resolve(ctx, ref))
	if pin.Digest != p.digest || !cmp.Equal(pin.Platforms, p.platforms(t)) {
		t.Errorf("Resolve of a layout: %+v", pin)
	}
	for plat, img := range p.images {
		bi := must[*Image](t)(r.Open(ctx, ref, pin, plat))
		checkOpened(t, bi, img)
		checkMountable(t, bi, "")
	}
	if n := reg.requests.Load(); n != 0 {
		t.Errorf("a layout base made %d registry requests", n)
	}
	if ref.Name() != "" {
		t.Errorf("a layout base has the name %q; want none (a path ties the image to the machine)", ref.Name())
	}
}

// TestResolveDuplicatePlatformTakesFirst: an index may list a platform
// twice; the OCI image-spec (image-index.md) says "If multiple manifests
// match a client or runtime's requirements, the first matching entry SHOULD
// be used", as docker, podman and containerd do.
func TestResolveDuplicatePlatformTakesFirst(t *testing.T) {
	reg := newRegistry(t)
	first, second := ociImage(t, amd64), ociImage(t, amd64)
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx,
		mutate.IndexAddendum{Add: first, Descriptor: v1.Descriptor{Platform: &amd64}},
		mutate.IndexAddendum{Add: second, Descriptor: v1.Descriptor{Platform: &amd64}})
	if err := remote.WriteIndex(must[name.Tag](t)(name.NewTag(reg.host+"/dup:1")), idx); err != nil {
		t.Fatal(err)
	}
	r := NewResolver(cache.New(t.TempDir()), nil)
	pin := must[Pin](t)(r.Resolve(ctx, parse(t, reg.host+"/dup:1")))
	if got, want := pin.Platforms["linux/amd64"], digestOf(t, first); got != want {
		t.Errorf("an index listing linux/amd64 twice: pinned %s (the second entry is %s); want the first entry, %s", got, digestOf(t, second), want)
	}

	// The same from a local layout.
	dir := t.TempDir()
	lp := must[layout.Path](t)(layout.Write(dir, empty.Index))
	if err := lp.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	pin = must[Pin](t)(r.Resolve(ctx, parse(t, "oci:"+dir+"@"+digestOf(t, idx).String())))
	if got, want := pin.Platforms["linux/amd64"], digestOf(t, first); got != want {
		t.Errorf("layout: an index listing linux/amd64 twice: pinned %s; want the first entry, %s", got, want)
	}
}

// writeArchive writes img as an oci-archive (a tar of an OCI layout) at
// file, tagged tag.
func writeArchive(t *testing.T, file, tag string, img v1.Image) {
	t.Helper()
	dir := t.TempDir()
	p := must[layout.Path](t)(layout.Write(dir, empty.Index))
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			return tw.WriteHeader(&tar.Header{Name: rel + "/", Typeflag: tar.TypeDir, Mode: 0o755})
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: rel, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestArchiveBaseHoldsItsPin: an oci-archive base is read by its tag, so
// an archive rebuilt since it was locked is refused (exit 3), not built
// on while the image claims the locked base.
func TestArchiveBaseHoldsItsPin(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "base.tar")
	withPlatform := func(img v1.Image) v1.Image {
		cf := must[*v1.ConfigFile](t)(img.ConfigFile()).DeepCopy()
		cf.OS, cf.Architecture = "linux", "amd64"
		return must[v1.Image](t)(mutate.ConfigFile(img, cf))
	}
	first := withPlatform(must[v1.Image](t)(random.Image(512, 1)))
	writeArchive(t, file, "v1", first)
	ref := must[Ref](t)(ParseRef("oci-archive:" + file + ":v1"))
	r := NewResolver(cache.New(t.TempDir()), nil)
	pin := must[Pin](t)(r.Resolve(ctx, ref))
	if _, err := r.Open(ctx, ref, pin, "linux/amd64"); err != nil {
		t.Fatalf("the locked archive: %v", err)
	}
	second := withPlatform(must[v1.Image](t)(random.Image(512, 1)))
	writeArchive(t, file, "v1", second)
	_, err := r.Open(ctx, ref, pin, "linux/amd64")
	want := fmt.Sprintf("now holds %s, but the pin is %s", must[v1.Hash](t)(second.Digest()), must[v1.Hash](t)(first.Digest()))
	if err == nil || fault.KindOf(err) != fault.Operational || !strings.Contains(err.Error(), want) || !errors.Is(err, ErrPinMismatch) {
		t.Errorf("a rebuilt archive under the old pin: %v (kind %v); want %q", err, fault.KindOf(err), want)
	}
}
