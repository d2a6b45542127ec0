package output

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/pkg/imageref"
)

// repoBlobs stores blobs per repository, as real registries do:
// go-containerregistry's in-memory store holds one set for all
// repositories, so every blob pushed anywhere "exists" everywhere.
type repoBlobs struct {
	mu sync.Mutex
	m  map[string]map[v1.Hash][]byte
}

func (s *repoBlobs) get(repo string, h v1.Hash) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[repo][h]
	return b, ok
}

func (s *repoBlobs) put(repo string, h v1.Hash, b []byte) {
	// The registry names the repository of an upload (…/blobs/uploads/ID)
	// with a "/blobs" too many.
	repo = strings.TrimSuffix(repo, "/blobs")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[repo] == nil {
		s.m[repo] = map[v1.Hash][]byte{}
	}
	s.m[repo][h] = b
}

func (s *repoBlobs) Stat(_ context.Context, repo string, h v1.Hash) (int64, error) {
	b, ok := s.get(repo, h)
	if !ok {
		return 0, registry.ErrNotFound
	}
	return int64(len(b)), nil
}

func (s *repoBlobs) Get(_ context.Context, repo string, h v1.Hash) (io.ReadCloser, error) {
	b, ok := s.get(repo, h)
	if !ok {
		return nil, registry.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (s *repoBlobs) Put(_ context.Context, repo string, h v1.Hash, rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	s.put(repo, h, b)
	return nil
}

// testRegistry is go-containerregistry's in-memory registry with blobs
// per repository, cross-repository mounts (which it lacks: POST
// .../blobs/uploads/?mount=D&from=R answers 201 when R holds D), and a
// log of every request.
type testRegistry struct {
	host  string
	blobs *repoBlobs
	next  http.Handler

	mu   sync.Mutex
	reqs []testRequest
	// refuseManifests answers that many manifest PUTs as docker-registry
	// does when two pushes of one blob race on its link file.
	refuseManifests int
}

type testRequest struct {
	method, path string
	query        map[string][]string
	status       int
	body         int64 // bytes of request body
}

func newTestRegistry(t *testing.T) *testRegistry {
	r := &testRegistry{blobs: &repoBlobs{m: map[string]map[v1.Hash][]byte{}}}
	r.next = registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithBlobHandler(r.blobs))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (r *testRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	q := req.URL.Query()
	r.mu.Lock()
	refuse := req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/manifests/") && r.refuseManifests > 0
	if refuse {
		r.refuseManifests--
	}
	r.mu.Unlock()
	if refuse {
		sw.Header().Set("Content-Type", "application/json")
		sw.WriteHeader(http.StatusBadRequest)
		io.WriteString(sw, `{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"},{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:6418c4fb5c0e842b9784a03667c71ff55ba3cb6562c467d5c34fd3f74f905394"}]}`)
	} else if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/blobs/uploads/") && q.Get("mount") != "" && q.Get("from") != "" {
		repo := strings.TrimSuffix(strings.TrimPrefix(req.URL.Path, "/v2/"), "/blobs/uploads/")
		h, err := v1.NewHash(q.Get("mount"))
		if b, ok := r.blobs.get(q.Get("from"), h); err == nil && ok {
			r.blobs.put(repo, h, b)
			sw.Header().Set("Location", "/v2/"+repo+"/blobs/"+h.String())
			sw.WriteHeader(http.StatusCreated)
		} else {
			r.next.ServeHTTP(sw, req)
		}
	} else {
		r.next.ServeHTTP(sw, req)
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, testRequest{method: req.Method, path: req.URL.Path, query: q, status: sw.status, body: int64(len(body))})
	r.mu.Unlock()
}

func (r *testRegistry) requests() []testRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]testRequest(nil), r.reqs...)
}

// uploaded is the number of blob bytes sent in PATCH and PUT requests.
func (r *testRegistry) uploaded() int64 {
	var n int64
	for _, q := range r.requests() {
		if (q.method == http.MethodPatch || q.method == http.MethodPut) && strings.Contains(q.path, "/blobs/") {
			n += q.body
		}
	}
	return n
}

func (r *testRegistry) ref(t *testing.T, s string) imageref.Reference {
	t.Helper()
	return mustRef(t, r.host+"/"+s)
}

// events collects the events of pushes.
type events struct {
	mu   sync.Mutex
	list []BlobEvent
}

func (e *events) add(ev BlobEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, ev)
}

func (e *events) of(h v1.Hash) []BlobEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []BlobEvent
	for _, ev := range e.list {
		if ev.Digest == h {
			out = append(out, ev)
		}
	}
	return out
}

// checkSent checks that h's events are one upload: Sent growing to Size,
// the last event BlobSent.
func checkSent(t *testing.T, evs []BlobEvent, h v1.Hash, size int64) {
	t.Helper()
	if len(evs) == 0 {
		t.Errorf("%s: no events; it was uploaded", h)
		return
	}
	var last int64
	for i, ev := range evs {
		if ev.Size != size || ev.Sent <= last || (ev.Status == BlobSent) != (i == len(evs)-1) {
			t.Errorf("%s: event %d of %d is %+v (size %d, previously sent %d)", h, i, len(evs), ev, size, last)
		}
		last = ev.Sent
	}
	if last != size {
		t.Errorf("%s: events sum to %d bytes, the blob has %d", h, last, size)
	}
}

func TestPushProgressCountsEveryUploadedByte(t *testing.T) {
	ctx := context.Background()
	reg := newTestRegistry(t)
	img := ociImage(t)
	layers, _ := img.Layers()
	// The registry already has the first layer in the target repository.
	repo, _ := name.NewRepository(reg.host + "/app")
	if err := remote.WriteLayer(repo, layers[0]); err != nil {
		t.Fatal(err)
	}
	had, _ := layers[0].Digest()
	before, start := reg.uploaded(), len(reg.requests())

	var ev events
	if err := Write(ctx, reg.ref(t, "app:1"), imageref.Artifact{Image: img}, Options{Progress: ev.add}); err != nil {
		t.Fatal(err)
	}
	if evs := ev.of(had); len(evs) != 1 || evs[0].Status != BlobExists || evs[0].Sent != 0 {
		t.Errorf("the blob the registry had: events %+v, want one BlobExists", evs)
	}
	for _, q := range reg.requests()[start:] {
		if (q.method == http.MethodPut || q.method == http.MethodPost) && strings.Contains(q.path, "/blobs/uploads/") && q.query["digest"] != nil && q.query["digest"][0] == had.String() {
			t.Errorf("the blob the registry had was uploaded again: %s %s", q.method, q.path)
		}
	}
	var want int64
	for _, l := range layers[1:] {
		d, _ := l.Digest()
		size, _ := l.Size()
		checkSent(t, ev.of(d), d, size)
		want += size
	}
	cfg, _ := img.RawConfigFile()
	cd, _ := img.ConfigName()
	checkSent(t, ev.of(cd), cd, int64(len(cfg)))
	want += int64(len(cfg))
	if got := reg.uploaded() - before; got != want {
		t.Errorf("the push sent %d blob bytes; the events account for %d", got, want)
	}
	// The pushed image reads back with the same digest.
	got, err := remote.Image(reg.ref(t, "app:1").Name)
	if err != nil {
		t.Fatal(err)
	}
	if gd, _ := got.Digest(); gd != mustDigest(t, img) {
		t.Errorf("pushed %s, want %s", gd, mustDigest(t, img))
	}
}

func TestPushProgressOfAnIndex(t *testing.T) {
	reg := newTestRegistry(t)
	a, b := ociImage(t), ociImage(t)
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: a, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: b, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	var ev events
	if err := Write(context.Background(), reg.ref(t, "multi:1"), imageref.Artifact{Index: idx}, Options{Progress: ev.add}); err != nil {
		t.Fatal(err)
	}
	for _, img := range []v1.Image{a, b} {
		layers, _ := img.Layers()
		for _, l := range layers {
			d, _ := l.Digest()
			size, _ := l.Size()
			checkSent(t, ev.of(d), d, size)
		}
	}
	got, err := remote.Index(reg.ref(t, "multi:1").Name)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	if gd, _ := got.Digest(); gd != want {
		t.Errorf("pushed %s, want %s", gd, want)
	}
}

func mustDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestPushMountsAcrossRepositories pushes a base to one repository and an
// image on it to another of the same registry: the base's layers are
// mounted (POST ?mount=&from=, 201), never uploaded, with progress on or
// off; pushed to another registry, no mount is asked for.
func TestPushMountsAcrossRepositories(t *testing.T) {
	ctx := context.Background()
	reg := newTestRegistry(t)
	base, err := random.Image(2048, 3)
	if err != nil {
		t.Fatal(err)
	}
	baseRef := reg.ref(t, "library/base:1")
	if err := remote.Write(baseRef.Name, base); err != nil {
		t.Fatal(err)
	}
	// Pulled from the registry, its layers are *remote.MountableLayers,
	// as repro's registry bases are.
	pulled, err := remote.Image(baseRef.Name)
	if err != nil {
		t.Fatal(err)
	}
	app, err := random.Layer(1024, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(pulled, app)
	if err != nil {
		t.Fatal(err)
	}
	baseLayers, _ := base.Layers()
	appDigest, _ := app.Digest()
	appSize, _ := app.Size()

	for _, progress := range []bool{true, false} {
		target := "app-progress"
		if !progress {
			target = "app-quiet"
		}
		t.Run(target, func(t *testing.T) {
			var ev events
			opts := Options{}
			if progress {
				opts.Progress = ev.add
			}
			start := len(reg.requests())
			if err := Write(ctx, reg.ref(t, target+":1"), imageref.Artifact{Image: img}, opts); err != nil {
				t.Fatal(err)
			}
			reqs := reg.requests()[start:]
			for _, l := range baseLayers {
				d, _ := l.Digest()
				mounted := false
				for _, q := range reqs {
					if q.method == http.MethodPost && q.query["mount"] != nil && q.query["mount"][0] == d.String() {
						if q.query["from"][0] != "library/base" || q.status != http.StatusCreated || q.path != "/v2/"+target+"/blobs/uploads/" {
							t.Errorf("mount of %s: %s %s %v answered %d", d, q.method, q.path, q.query, q.status)
						}
						mounted = true
					}
					if q.method == http.MethodPut && q.query["digest"] != nil && q.query["digest"][0] == d.String() {
						t.Errorf("the base layer %s was uploaded: %s %s", d, q.method, q.path)
					}
				}
				if !mounted {
					t.Errorf("the base layer %s was not mounted", d)
				}
				if progress {
					if evs := ev.of(d); len(evs) != 1 || evs[0].Status != BlobMounted || evs[0].From != "library/base" {
						t.Errorf("events of the base layer %s: %+v, want one BlobMounted from library/base", d, evs)
					}
				}
			}
			var sent int64
			for _, q := range reqs {
				if q.method == http.MethodPatch || q.method == http.MethodPut && strings.Contains(q.path, "/blobs/") {
					sent += q.body
				}
			}
			cfg, _ := img.RawConfigFile()
			if want := appSize + int64(len(cfg)); sent != want {
				t.Errorf("the push sent %d blob bytes, want %d (the app layer and the config)", sent, want)
			}
			if progress {
				checkSent(t, ev.of(appDigest), appDigest, appSize)
			}
			got, err := remote.Image(reg.ref(t, target+":1").Name)
			if err != nil {
				t.Fatal(err)
			}
			if gd, _ := got.Digest(); gd != mustDigest(t, img) {
				t.Errorf("pushed %s, want %s", gd, mustDigest(t, img))
			}
		})
	}

	t.Run("other-registry", func(t *testing.T) {
		other := newTestRegistry(t)
		var ev events
		if err := Write(ctx, other.ref(t, "app:1"), imageref.Artifact{Image: img}, Options{Progress: ev.add}); err != nil {
			t.Fatal(err)
		}
		for _, q := range other.requests() {
			if q.query["from"] != nil || q.query["mount"] != nil {
				t.Errorf("a push to another registry asked for a mount: %s %s %v", q.method, q.path, q.query)
			}
		}
		for _, l := range baseLayers {
			d, _ := l.Digest()
			size, _ := l.Size()
			checkSent(t, ev.of(d), d, size)
		}
	})
}

// TestKeepMountable: the layers an image was made of that name their
// repository come back out of Layers as *remote.MountableLayer (under the
// image's own layer), the others as the image gives them; an image with
// no mountable layer is returned as is.
func TestKeepMountable(t *testing.T) {
	img, err := random.Image(64, 2)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if KeepMountable(img, ls) != img {
		t.Error("an image without mountable layers was wrapped")
	}
	from := name.MustParseReference("127.0.0.1:5000/library/base:1")
	given := []v1.Layer{&remote.MountableLayer{Layer: ls[0], Reference: from}, ls[1]}
	got, err := KeepMountable(img, given).Layers()
	if err != nil {
		t.Fatal(err)
	}
	if ml, ok := got[0].(*remote.MountableLayer); !ok || ml.Reference != from {
		t.Errorf("layer 0 is %T, want a *remote.MountableLayer from %s", got[0], from)
	}
	if _, ok := got[1].(*remote.MountableLayer); ok {
		t.Error("layer 1 became mountable")
	}
	for i := range got {
		if a, b := layerDigest(t, got[i]), layerDigest(t, ls[i]); a != b {
			t.Errorf("layer %d: digest %s, want %s", i, a, b)
		}
	}
	if _, err := KeepMountable(img, given[:1]).Layers(); err == nil {
		t.Error("a layer list shorter than the manifest's was accepted")
	}
}

func layerDigest(t *testing.T, l v1.Layer) v1.Hash {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestPushRetriesARacedManifest: docker-registry refuses a manifest with
// MANIFEST_BLOB_UNKNOWN when concurrent pushes of one blob race on its
// link file (seen in TestE2EFleet's three runners); the push is tried
// again and lands, and a registry that keeps refusing fails after
// manifestTries.
func TestPushRetriesARacedManifest(t *testing.T) {
	ctx := context.Background()
	img := ociImage(t)
	puts := func(reg *testRegistry) int {
		n := 0
		for _, r := range reg.requests() {
			if r.method == http.MethodPut && strings.Contains(r.path, "/manifests/") {
				n++
			}
		}
		return n
	}

	reg := newTestRegistry(t)
	reg.refuseManifests = manifestTries - 1
	if err := Write(ctx, reg.ref(t, "app:1"), imageref.Artifact{Image: img}, Options{}); err != nil {
		t.Fatalf("refused %d times, then accepted: %v", manifestTries-1, err)
	}
	if got := puts(reg); got != manifestTries+1 { // the tries by digest, then the tag
		t.Errorf("%d manifest PUTs, want %d", got, manifestTries+1)
	}

	reg = newTestRegistry(t)
	reg.refuseManifests = manifestTries
	err := Write(ctx, reg.ref(t, "app:1"), imageref.Artifact{Image: img}, Options{})
	if err == nil || !strings.Contains(err.Error(), "MANIFEST_BLOB_UNKNOWN") {
		t.Fatalf("refused every time: err = %v, want the registry's MANIFEST_BLOB_UNKNOWN", err)
	}
	if got := puts(reg); got != manifestTries {
		t.Errorf("%d manifest PUTs, want %d and no tag", got, manifestTries)
	}
}
