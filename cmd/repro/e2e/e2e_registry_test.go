package e2e

// End-to-end tests against a real registry: Debian's docker-registry
// (distribution 2.8), started by the test on a loopback port. The base is
// made without repro (umoci, a hand-written OCI index, skopeo); repro locks
// it, builds on it, pushes, and skopeo and podman read what it pushed.

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/internal/testtool"
)

// TestRegistryE2E shares one registry and one base among its subtests:
// the build flow runs in order; auth and faults run beside it.
func TestRegistryE2E(t *testing.T) {
	t.Parallel()
	if testtool.Require(t, "docker-registry", "skopeo", "umoci", "htpasswd") == nil {
		return
	}
	reg := regStart(t, "")
	// base:1 is the flow's; other:1 (the same index) is for the subtests
	// beside it, so that the flow can count the requests for base alone.
	b := regMakeBase(t, reg.host+"/base:1", reg.host+"/other:1")
	t.Run("flow", func(t *testing.T) { t.Parallel(); regFlow(t, reg, b) })
	t.Run("auth", func(t *testing.T) { t.Parallel(); regAuth(t, reg) })
	t.Run("faults", func(t *testing.T) { t.Parallel(); regFaults(t, reg) })
}

// regLockFile is repro.lock.json as the tests read it.
type regLockFile struct {
	Version int `json:"version"`
	Bases   map[string]struct {
		Digest    string            `json:"digest"`
		MediaType string            `json:"mediaType"`
		Platforms map[string]string `json:"platforms"`
	} `json:"bases"`
}

// regMetadata is what --metadata-file holds, as the tests read it.
type regMetadata struct {
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	Manifests []struct {
		Platform string `json:"platform"`
		Digest   string `json:"digest"`
		Size     int64  `json:"size"`
	} `json:"manifests"`
	Outputs []string `json:"outputs"`
}

func regFlow(t *testing.T, reg *regServer, b *regBase) {
	e := newRegEnv(t)
	cache := t.TempDir()
	baseRef := reg.host + "/base:1"
	tagV, tagLatest := reg.host+"/app:1.0.0", reg.host+"/app:latest"
	spec := regSpecText(baseRef, reg.host+"/app:{{.Version}}", reg.host+"/app:latest")
	dir := regSpecDir(t, spec, "app v1\n", nil)
	lockPath := filepath.Join(dir, "repro.lock.json")
	var digest string // D: the index digest every pinned build must give
	var lockBytes []byte

	// A base given by tag, with no lock: refused, and told how to pin it.
	if !t.Run("unpinned-refused", func(t *testing.T) {
		r := e.run(t, dir, nil, "build", "--cache-dir", cache)
		if r.code != 2 || !strings.Contains(r.stderr, "run repro lock") || strings.TrimSpace(r.stdout) != "" {
			t.Errorf("build with a tag-only base and no lock: exit %d, stdout %q, stderr:\n%s\nwant exit 2 and `run repro lock`", r.code, r.stdout, r.stderr)
		}
		if names := regEntries(t, dir); len(names) != 2 {
			t.Errorf("the refused build left %v in the context", names)
		}
	}) {
		return
	}

	var unpinned string
	t.Run("allow-unpinned", func(t *testing.T) {
		r := e.ok(t, dir, nil, "build", "--allow-unpinned", "--cache-dir", cache, "-o", "oci:"+filepath.Join(t.TempDir(), "out"))
		unpinned = regBuilt(t, r)
		if !strings.Contains(r.stderr, "not pinned") || !strings.Contains(r.stderr, "level=WARN") {
			t.Errorf("--allow-unpinned printed no warning:\n%s", r.stderr)
		}
		if _, err := os.Stat(lockPath); err == nil {
			t.Errorf("build --allow-unpinned wrote %s", lockPath)
		}
	})

	if !t.Run("lock", func(t *testing.T) {
		r := e.ok(t, dir, nil, "lock", "--cache-dir", cache)
		if want := "added   base " + baseRef + ": " + b.index; !strings.Contains(r.stdout, want) {
			t.Errorf("repro lock printed %q, want %q", r.stdout, want)
		}
		var err error
		if lockBytes, err = os.ReadFile(lockPath); err != nil {
			t.Fatal(err)
		}
		var lf regLockFile
		regUnmarshal(t, lockPath, lockBytes, &lf)
		got := lf.Bases[baseRef]
		if lf.Version != 1 || got.Digest != b.index || got.MediaType != ocispec.MediaTypeImageIndex || !mapsEqual(got.Platforms, b.manifests) {
			t.Errorf("lock:\n%s\nwant %s pinned to %s with %v", lockBytes, baseRef, b.index, b.manifests)
		}
		// Again: nothing to change, the very same bytes.
		r = e.ok(t, dir, nil, "lock", "--cache-dir", cache)
		again, _ := os.ReadFile(lockPath)
		if string(again) != string(lockBytes) || strings.TrimSpace(r.stdout) != "" {
			t.Errorf("a second repro lock printed %q and changed the lock:\n%s\nwas\n%s", r.stdout, again, lockBytes)
		}
	}) {
		return
	}

	meta := filepath.Join(t.TempDir(), "meta.json")
	if !t.Run("push", func(t *testing.T) {
		r := e.ok(t, dir, nil, "build", "--push", "--version", "1.0.0", "--cache-dir", cache, "--metadata-file", meta)
		digest = regBuilt(t, r)
		// What the registry serves under both tags hashes to what repro printed.
		raw := regRaw(t, tagV)
		if got := regDigest(raw); got != digest {
			t.Fatalf("%s is %s in the registry; repro printed %s", tagV, got, digest)
		}
		if got := regDigest(regRaw(t, tagLatest)); got != digest {
			t.Errorf("%s is %s; want %s", tagLatest, got, digest)
		}
		regCheckIndex(t, reg, b, raw)
	}) {
		return
	}

	t.Run("allow-unpinned-same-digest", func(t *testing.T) {
		// Resolving the tag now found what the lock pins: the same bytes.
		if unpinned != digest {
			t.Errorf("build --allow-unpinned gave %s; the locked build %s", unpinned, digest)
		}
	})

	t.Run("metadata-file", func(t *testing.T) {
		var m regMetadata
		regReadJSON(t, meta, &m)
		var idx ocispec.Index
		regUnmarshal(t, tagV, regRaw(t, tagV), &idx)
		if m.Digest != digest || m.MediaType != ocispec.MediaTypeImageIndex || len(m.Manifests) != len(idx.Manifests) {
			t.Fatalf("--metadata-file: %+v; want digest %s and %d manifests", m, digest, len(idx.Manifests))
		}
		for i, d := range idx.Manifests {
			p := d.Platform.OS + "/" + d.Platform.Architecture
			if m.Manifests[i].Platform != p || m.Manifests[i].Digest != string(d.Digest) || m.Manifests[i].Size != d.Size {
				t.Errorf("--metadata-file manifests[%d] = %+v; the index has %s %s (%d bytes)", i, m.Manifests[i], p, d.Digest, d.Size)
			}
		}
		if !slices.Equal(m.Outputs, []string{tagV, tagLatest}) {
			t.Errorf("--metadata-file outputs %q, want the expanded tags %q", m.Outputs, []string{tagV, tagLatest})
		}
	})

	t.Run("podman", func(t *testing.T) {
		podman := testtool.Podman(t)
		if podman == nil {
			return
		}
		script := `/bin/busybox cat /etc/base-release /etc/app.txt; if /bin/busybox test -e /usr/share/doc/base; then echo doc present; else echo doc gone; fi`
		got := testtool.Run(t, podman[0], slices.Concat(podman[1:], []string{"run", "--rm", "--tls-verify=false", "--platform", "linux/amd64",
			tagV, "/bin/busybox", "sh", "-c", script})...)
		if want := "base 1\napp v1\ndoc gone\n"; got != want {
			t.Errorf("podman run %s printed %q, want %q", tagV, got, want)
		}
		got = testtool.Run(t, podman[0], slices.Concat(podman[1:], []string{"run", "--rm", "--tls-verify=false", "--platform", "linux/amd64",
			tagV, "/bin/busybox", "cat", "/etc/base-release", "/etc/app.txt"})...)
		if want := "base 1\napp v1\n"; got != want {
			t.Errorf("podman run %s cat printed %q, want %q", tagV, got, want)
		}
	})

	// The same base pinned in the spec itself: no lock, the same bytes.
	t.Run("spec-pinned", func(t *testing.T) {
		pinned := regSpecDir(t, regSpecText(baseRef+"@"+b.index, reg.host+"/app:pinned"), "app v1\n", nil)
		r := e.ok(t, pinned, nil, "build", "--cache-dir", cache, "-o", "oci:"+filepath.Join(t.TempDir(), "out"))
		if got := regBuilt(t, r); got != digest {
			t.Errorf("base pinned in the spec: %s; pinned by the lock: %s", got, digest)
		}
		if _, err := os.Stat(filepath.Join(pinned, "repro.lock.json")); err == nil {
			t.Errorf("a build wrote a lock file")
		}
	})

	// From the cache alone: the same digest and not one request for the base.
	t.Run("offline", func(t *testing.T) {
		before := reg.log.requests("base")
		if before == 0 {
			t.Fatalf("the registry's access log shows no request for the base; cannot count them:\n%s", reg.log)
		}
		r := e.ok(t, dir, nil, "build", "--offline", "--locked", "--cache-dir", cache, "-o", "oci:"+filepath.Join(t.TempDir(), "out"))
		if got := regBuilt(t, r); got != digest {
			t.Errorf("--offline: %s, want %s", got, digest)
		}
		// Only the app file changes: the base still comes from the cache.
		changed := regSpecDir(t, spec, "app v2\n", map[string]string{"repro.lock.json": string(lockBytes)})
		r = e.ok(t, changed, nil, "build", "--offline", "--locked", "--cache-dir", cache, "-o", "oci:"+filepath.Join(t.TempDir(), "out"))
		if got := regBuilt(t, r); got == digest {
			t.Errorf("another app.txt gave the same digest %s", got)
		}
		if n := reg.log.requests("base") - before; n != 0 {
			t.Errorf("the --offline builds made %d requests for the base", n)
		}
		// An empty cache: exit 3, naming what it lacks and how to fill it.
		r = e.run(t, dir, nil, "build", "--offline", "--cache-dir", t.TempDir(), "-o", "oci:"+filepath.Join(t.TempDir(), "out"))
		if r.code != 3 || !strings.Contains(r.stderr, "--offline") || !strings.Contains(r.stderr, b.manifests["linux/amd64"]) {
			t.Errorf("--offline with an empty cache: exit %d\n%s\nwant exit 3 naming the amd64 manifest %s", r.code, r.stderr, b.manifests["linux/amd64"])
		}
	})

	// Offline, a tag cannot be resolved: the build and the lock update say
	// so, and do not ask the registry (--offline: "fetch nothing").
	t.Run("offline-tag", func(t *testing.T) {
		unlocked := regSpecDir(t, spec, "app v1\n", nil)
		before := reg.log.requests("base")
		r := e.run(t, unlocked, nil, "build", "--offline", "--allow-unpinned", "--cache-dir", cache, "-o", "oci:"+filepath.Join(t.TempDir(), "out"))
		if n := reg.log.requests("base") - before; n != 0 {
			t.Errorf("build --offline --allow-unpinned of a tag made %d requests for the base (exit %d)", n, r.code)
		}
		if r.code != 3 || !strings.Contains(r.stderr, "offline") {
			t.Errorf("build --offline --allow-unpinned of a tag: exit %d\n%s\nwant exit 3 naming --offline", r.code, r.stderr)
		}
		before = reg.log.requests("base")
		locked := regSpecDir(t, spec, "app v1\n", map[string]string{"repro.lock.json": string(lockBytes)})
		r = e.run(t, locked, nil, "lock", "--update", "--offline", "--cache-dir", cache)
		if n := reg.log.requests("base") - before; n != 0 {
			t.Errorf("lock --update --offline made %d requests for the base (exit %d)", n, r.code)
		}
	})

	t.Run("locked-missing", func(t *testing.T) {
		for name, lockText := range map[string]string{"empty-lock": "{\n  \"version\": 1\n}\n", "no-lock": ""} {
			more := map[string]string{}
			if lockText != "" {
				more["repro.lock.json"] = lockText
			}
			d := regSpecDir(t, spec, "app v1\n", more)
			r := e.run(t, d, nil, "build", "--locked", "--cache-dir", cache, "-o", "oci:"+filepath.Join(d, "out"))
			if r.code != 2 || !strings.Contains(r.stderr, "--locked") || !strings.Contains(r.stderr, "base "+baseRef) || !strings.Contains(r.stderr, "repro lock") {
				t.Errorf("%s: build --locked: exit %d\n%s\nwant exit 2 naming the base and repro lock", name, r.code, r.stderr)
			}
			if _, err := os.Stat(filepath.Join(d, "out")); err == nil {
				t.Errorf("%s: the refused build wrote its output", name)
			}
		}
	})

	// Last, since it moves the tag: the lock holds; --update follows.
	t.Run("tag-moves", func(t *testing.T) {
		// The tag now names the amd64 image alone.
		testtool.Run(t, "skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:"+b.layout+":amd64", "docker://"+baseRef)
		if got := regDigest(regRaw(t, baseRef)); got != b.manifests["linux/amd64"] {
			t.Fatalf("after the move, %s is %s, want %s", baseRef, got, b.manifests["linux/amd64"])
		}
		r := e.ok(t, dir, nil, "build", "--locked", "--cache-dir", cache, "-o", "oci:"+filepath.Join(t.TempDir(), "out"))
		if got := regBuilt(t, r); got != digest {
			t.Errorf("after the tag moved, the locked build gave %s, want %s", got, digest)
		}
		r = e.ok(t, dir, nil, "lock", "--cache-dir", cache)
		if strings.TrimSpace(r.stdout) != "" {
			t.Errorf("repro lock without --update after the tag moved printed %q; want the pin kept", r.stdout)
		}
		r = e.ok(t, dir, nil, "lock", "--update", "--cache-dir", cache)
		want := "updated base " + baseRef + ": " + b.index + " -> " + b.manifests["linux/amd64"]
		if !strings.Contains(r.stdout, want) {
			t.Errorf("repro lock --update printed %q, want %q", r.stdout, want)
		}
		updated, _ := os.ReadFile(lockPath)
		if string(updated) == string(lockBytes) {
			t.Fatalf("repro lock --update left the lock as it was")
		}
		var lf regLockFile
		regUnmarshal(t, lockPath, updated, &lf)
		if got := lf.Bases[baseRef]; got.Digest != b.manifests["linux/amd64"] || !mapsEqual(got.Platforms, map[string]string{"linux/amd64": b.manifests["linux/amd64"]}) {
			t.Errorf("updated lock:\n%s", updated)
		}
		// The new base has no arm64 image: the spec's arm64 build is bad
		// input, and the message says what the base has.
		r = e.run(t, dir, nil, "build", "--cache-dir", cache, "-o", "oci:"+filepath.Join(t.TempDir(), "out"))
		if r.code != 2 || !strings.Contains(r.stderr, "linux/arm64") || !strings.Contains(r.stderr, "it has linux/amd64") {
			t.Errorf("an arm64 build on an amd64-only base: exit %d\n%s", r.code, r.stderr)
		}
		// Its amd64 image is the one the index named: the amd64 build is
		// the amd64 manifest of the first build, byte for byte.
		r = e.ok(t, dir, nil, "build", "--platform", "linux/amd64", "--cache-dir", cache, "-o", "oci:"+filepath.Join(t.TempDir(), "out"))
		var idx ocispec.Index
		regUnmarshal(t, tagV, regRaw(t, tagV), &idx)
		if got := regBuilt(t, r); got != string(idx.Manifests[0].Digest) {
			t.Errorf("amd64 on the single-manifest base: %s; on the index: %s", got, idx.Manifests[0].Digest)
		}
	})
}

// regCheckIndex checks the pushed index raw: one image per platform, in
// the spec's order, each starting with its base's layers exactly as
// published, annotated with the base, its config merged over the base's.
func regCheckIndex(t *testing.T, reg *regServer, b *regBase, raw []byte) {
	t.Helper()
	var idx ocispec.Index
	regUnmarshal(t, "index", raw, &idx)
	if idx.MediaType != ocispec.MediaTypeImageIndex || len(idx.Manifests) != 2 {
		t.Fatalf("pushed index:\n%s\nwant an OCI index of 2 images", raw)
	}
	for i, plat := range []string{"linux/amd64", "linux/arm64"} {
		d := idx.Manifests[i]
		if d.Platform == nil || d.Platform.OS+"/"+d.Platform.Architecture != plat {
			t.Errorf("index entry %d: platform %+v, want %s", i, d.Platform, plat)
			continue
		}
		t.Run(plat, func(t *testing.T) {
			appRef := reg.host + "/app@" + string(d.Digest)
			mraw := regRaw(t, appRef)
			if regDigest(mraw) != string(d.Digest) || int64(len(mraw)) != d.Size {
				t.Fatalf("%s: the registry serves %d bytes hashing to %s", appRef, len(mraw), regDigest(mraw))
			}
			var m, bm ocispec.Manifest
			regUnmarshal(t, appRef, mraw, &m)
			baseRef := reg.host + "/base@" + b.manifests[plat]
			regUnmarshal(t, baseRef, regRaw(t, baseRef), &bm)
			n := len(bm.Layers)
			if len(m.Layers) != n+1 {
				t.Fatalf("%d layers; want the base's %d and the app's", len(m.Layers), n)
			}
			for j := range n {
				if m.Layers[j].Digest != bm.Layers[j].Digest || m.Layers[j].Size != bm.Layers[j].Size || m.Layers[j].MediaType != bm.Layers[j].MediaType {
					t.Errorf("layer %d is %+v; the base published %+v", j, m.Layers[j], bm.Layers[j])
				}
			}
			if got := m.Annotations[ocispec.AnnotationBaseImageName]; got != reg.host+"/base:1" {
				t.Errorf("%s = %q, want %s/base:1", ocispec.AnnotationBaseImageName, got, reg.host)
			}
			if got := m.Annotations[ocispec.AnnotationBaseImageDigest]; got != b.manifests[plat] {
				t.Errorf("%s = %q, want the base's %s manifest %s", ocispec.AnnotationBaseImageDigest, got, plat, b.manifests[plat])
			}
			var cfg, bcfg ocispec.Image
			regUnmarshal(t, appRef+" config", regConfigOf(t, appRef), &cfg)
			regUnmarshal(t, baseRef+" config", regConfigOf(t, baseRef), &bcfg)
			if cfg.OS+"/"+cfg.Architecture != plat {
				t.Errorf("config platform %s/%s, want %s", cfg.OS, cfg.Architecture, plat)
			}
			// The base's env merged under the spec's, sorted by key.
			wantEnv := []string{"APP=1", "LANG=C.UTF-8", "PATH=/usr/local/bin:/usr/bin:/bin"}
			if !slices.Equal(cfg.Config.Env, wantEnv) || !sort.StringsAreSorted(cfg.Config.Env) {
				t.Errorf("env %q, want %q", cfg.Config.Env, wantEnv)
			}
			if len(cfg.RootFS.DiffIDs) != n+1 || !slices.Equal(cfg.RootFS.DiffIDs[:n], bcfg.RootFS.DiffIDs) {
				t.Errorf("diff_ids %v; want the base's %v and one more", cfg.RootFS.DiffIDs, bcfg.RootFS.DiffIDs)
			}
			if cfg.Created == nil || cfg.Created.Unix() != e2eEpochRegistry {
				t.Errorf("created %v, want the epoch", cfg.Created)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// regAuth pushes to a registry that wants a password: without credentials
// the push fails (exit 3) and says how to log in; with them in
// $DOCKER_CONFIG/config.json it works.
func regAuth(t *testing.T, reg *regServer) {
	tools := testtool.Require(t, "htpasswd")
	if tools == nil {
		return
	}
	creds := testtool.Run(t, tools["htpasswd"], "-Bbn", "user", "pass")
	htfile := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htfile, []byte(creds), 0o644); err != nil {
		t.Fatal(err)
	}
	auth := regStart(t, "auth:\n  htpasswd:\n    realm: repro-test\n    path: "+htfile+"\n")
	e := newRegEnv(t)
	tag := auth.host + "/app:1"
	dir := regSpecDir(t, regSpecText(reg.host+"/other:1", tag), "app v1\n", nil)
	e.ok(t, dir, nil, "lock")

	r := e.run(t, dir, nil, "build", "--push")
	if r.code != 3 {
		t.Errorf("push without credentials: exit %d, want 3\n%s", r.code, r.stderr)
	}
	for _, want := range []string{auth.host, "podman login " + auth.host, "docker login " + auth.host} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("push without credentials: stderr does not say %q:\n%s", want, r.stderr)
		}
	}
	if !regMissing(t, tag) {
		t.Errorf("the refused push tagged %s", tag)
	}

	config := t.TempDir()
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{auth.host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte("user:pass"))}}})
	if err := os.WriteFile(filepath.Join(config, "config.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.ok(t, dir, []string{"DOCKER_CONFIG=" + config}, "build", "--push")
	digest := regBuilt(t, r)
	if got := regDigest(regRaw(t, tag, "--creds", "user:pass")); got != digest {
		t.Errorf("%s is %s, repro printed %s", tag, got, digest)
	}
}

// regFaults pushes through a proxy that fails writes: two failures are
// retried away; a registry that always fails leaves nothing tagged and
// nothing written locally.
func regFaults(t *testing.T, reg *regServer) {
	e := newRegEnv(t)
	t.Run("retried", func(t *testing.T) {
		t.Parallel()
		proxy := regFaultProxy(t, reg.host, func(n int64) bool { return n <= 2 })
		dir := regSpecDir(t, regSpecText(reg.host+"/other:1", proxy.host+"/app-retry:1"), "app v1\n", nil)
		e.ok(t, dir, nil, "lock")
		r := e.ok(t, dir, nil, "build", "--push")
		digest := regBuilt(t, r)
		if proxy.failed.Load() != 2 {
			t.Errorf("the proxy failed %d writes, want 2", proxy.failed.Load())
		}
		if got := regDigest(regRaw(t, reg.host+"/app-retry:1")); got != digest {
			t.Errorf("app-retry:1 is %s, repro printed %s", got, digest)
		}
	})
	t.Run("always-failing", func(t *testing.T) {
		t.Parallel()
		proxy := regFaultProxy(t, reg.host, func(int64) bool { return true })
		dir := regSpecDir(t, regSpecText(reg.host+"/other:1", proxy.host+"/app-fail:1"), "app v1\n", nil)
		e.ok(t, dir, nil, "lock")
		before := regEntries(t, dir)
		tmp := t.TempDir()
		out := filepath.Join(dir, "out", "app")
		r := e.run(t, dir, []string{"TMPDIR=" + tmp}, "build", "--push", "-o", "oci:"+out)
		if r.code != 3 || !strings.Contains(r.stderr, proxy.host) || strings.TrimSpace(r.stdout) != "" {
			t.Errorf("push to a failing registry: exit %d, stdout %q\n%s\nwant exit 3 naming %s", r.code, r.stdout, r.stderr, proxy.host)
		}
		if proxy.failed.Load() == 0 {
			t.Errorf("the proxy saw no write")
		}
		if !regMissing(t, reg.host+"/app-fail:1") {
			t.Errorf("the failed push tagged app-fail:1")
		}
		if _, err := os.Lstat(out); !os.IsNotExist(err) {
			t.Errorf("the -o layout %s exists after the failed build (%v)", out, err)
		}
		// Nor may the build leave the directory it made to hold that layout.
		if after := regEntries(t, dir); !slices.Equal(after, before) {
			t.Errorf("the failed build left %v in the context (before: %v); out/ holds %q", after, before, regEntries(t, filepath.Join(dir, "out")))
		}
		if left := regEntries(t, tmp); len(left) > 0 {
			t.Errorf("the failed build left %v in TMPDIR", left)
		}
	})
}
