package e2e

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/internal/testtool"
)

// TestRegistryMountE2E pushes a base to one repository of docker-registry
// and builds on it, pushing to another repository of the same registry:
// the base's layers are mounted (POST …/blobs/uploads/?mount=D&from=base,
// answered 201) and never uploaded; only the app's blobs are sent, and
// skopeo reads the pushed image back whole. The same build pushed through
// another name of the registry (so no mount is offered) uploads the base's
// layers too: the difference in bytes sent is exactly theirs.
func TestRegistryMountE2E(t *testing.T) {
	t.Parallel()
	if testtool.Require(t, "docker-registry", "skopeo", "umoci") == nil {
		return
	}
	reg := regStart(t, "")
	b := regMakeBase(t, reg.host+"/base:1")
	never := func(int64) bool { return false }
	proxy := regFaultProxy(t, reg.host, never)
	e := newRegEnv(t)
	baseRef := proxy.host + "/base:1"
	dir := regSpecDir(t, regSpecText(baseRef, proxy.host+"/app:1"), "app v1\n", nil)
	e.ok(t, dir, nil, "lock")
	start := len(proxy.requests())
	r := e.ok(t, dir, nil, "build", "--push")
	digest := regBuilt(t, r)
	reqs := proxy.requests()[start:]
	if strings.Contains(r.stderr, "\033[") || strings.Contains(r.stderr, "pushing ") {
		t.Errorf("stderr is no terminal, yet the push drew on it:\n%q", r.stderr)
	}

	// The base's layers, as skopeo reads the base's manifests.
	baseLayers := map[string]int64{}
	var baseBytes int64
	for _, md := range b.manifests {
		var m ocispec.Manifest
		regUnmarshal(t, md, regRaw(t, reg.host+"/base@"+md), &m)
		for _, l := range m.Layers {
			if _, dup := baseLayers[string(l.Digest)]; !dup {
				baseLayers[string(l.Digest)] = l.Size
				baseBytes += l.Size
			}
		}
	}
	if len(baseLayers) != 3 {
		t.Fatalf("the base has %d layers, want 3 (two amd64, one arm64)", len(baseLayers))
	}
	for d := range baseLayers {
		var mounts []regRequest
		for _, q := range reqs {
			if q.query.Get("mount") == d {
				mounts = append(mounts, q)
			}
			if q.query.Get("digest") == d && (q.method == http.MethodPut || q.method == http.MethodPatch) {
				t.Errorf("the base layer %s was uploaded: %s", d, q)
			}
		}
		if len(mounts) != 1 || mounts[0].method != http.MethodPost || mounts[0].path != "/v2/app/blobs/uploads/" ||
			mounts[0].query.Get("from") != "base" || mounts[0].status != http.StatusCreated {
			t.Errorf("the base layer %s: mount requests %v; want one POST /v2/app/blobs/uploads/?mount=%s&from=base answered 201", d, mounts, d)
		}
	}

	// skopeo reads what was pushed: the digest repro printed, the base's
	// layers under the app's, and every blob (copied, so read and
	// verified).
	raw := regRaw(t, reg.host+"/app:1")
	if got := regDigest(raw); got != digest {
		t.Fatalf("app:1 is %s in the registry; repro printed %s", got, digest)
	}
	var idx ocispec.Index
	regUnmarshal(t, "app:1", raw, &idx)
	var want int64 // the app's blobs: what had to be sent
	seen := map[string]bool{}
	for _, md := range idx.Manifests {
		var m ocispec.Manifest
		regUnmarshal(t, string(md.Digest), regRaw(t, reg.host+"/app@"+string(md.Digest)), &m)
		var base ocispec.Manifest
		regUnmarshal(t, "base", regRaw(t, reg.host+"/base@"+b.manifests[md.Platform.OS+"/"+md.Platform.Architecture]), &base)
		if len(m.Layers) <= len(base.Layers) {
			t.Fatalf("%s has %d layers; the base alone has %d", md.Digest, len(m.Layers), len(base.Layers))
		}
		for i, l := range base.Layers {
			if m.Layers[i].Digest != l.Digest || m.Layers[i].Size != l.Size {
				t.Errorf("%s layer %d is %s (%d bytes); the base's is %s (%d bytes)", md.Platform.Architecture, i, m.Layers[i].Digest, m.Layers[i].Size, l.Digest, l.Size)
			}
		}
		for _, l := range append(m.Layers, m.Config) {
			if _, isBase := baseLayers[string(l.Digest)]; !isBase && !seen[string(l.Digest)] {
				seen[string(l.Digest)] = true
				want += l.Size
			}
		}
	}
	testtool.Run(t, "skopeo", "copy", "--quiet", "--all", "--src-tls-verify=false", "docker://"+reg.host+"/app:1", "oci:"+filepath.Join(t.TempDir(), "copy")+":1")

	sent := func(reqs []regRequest) int64 {
		var n int64
		for _, q := range reqs {
			if (q.method == http.MethodPatch || q.method == http.MethodPut) && strings.Contains(q.path, "/blobs/") {
				n += q.body
			}
		}
		return n
	}
	withMounts := sent(reqs)
	if withMounts != want {
		t.Errorf("the push sent %d blob bytes; the app's blobs (layers and configs not the base's) are %d", withMounts, want)
	}

	// The same image through another name of the registry: no mount is
	// offered, every blob goes up.
	other := regFaultProxy(t, reg.host, never)
	dir2 := regSpecDir(t, regSpecText(baseRef, other.host+"/app-unmounted:1"), "app v1\n", nil)
	e.ok(t, dir2, nil, "lock")
	if d := regBuilt(t, e.ok(t, dir2, nil, "build", "--push")); d != digest {
		t.Fatalf("the same build gave %s, then %s", digest, d)
	}
	withoutMounts := sent(other.requests())
	for _, q := range other.requests() {
		if q.query.Get("mount") != "" || q.query.Get("from") != "" {
			t.Errorf("a push to another registry name asked for a mount: %s", q)
		}
	}
	if withoutMounts != want+baseBytes {
		t.Errorf("without mounts the push sent %d blob bytes; want the app's %d and the base's %d", withoutMounts, want, baseBytes)
	}
	t.Logf("blob bytes uploaded: %d with mounts, %d without (the base's layers: %d bytes)", withMounts, withoutMounts, baseBytes)
}
