package e2e

// repro's own image (specs/repro), built the way make image builds it,
// for linux/amd64 (the platform this machine runs), from an empty cache:
// every .deb comes from deb.debian.org by the sha256 the lock pins, or
// from snapshot.debian.org once the mirror has dropped it. The package
// layer's digest is pinned: it follows from the lock alone. The binary's
// layer changes with every commit of repro, so it is checked by what it
// does: under podman the image's repro prints the version it was given
// and the pinned toolchain, and runs the README's commands (Run repro in
// CI without Docker) on a spec mounted into it: lock --check, then build
// --push to a docker-registry, giving the digest the host's repro gives.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/internal/testtool"
)

// reproImageDebianLayer is the digest of specs/repro's package layer on
// linux/amd64 (base-files, ca-certificates, tzdata and their closure, as
// specs/repro/repro.lock.json pins them). It changes only with the lock
// (repro lock --update) or the output format; say which in the commit.
const reproImageDebianLayer = "sha256:08fd25933a190647bb55d1353b026d3e607a46f8de3093a6ba1b13963fb73de9"

func TestE2EReproImage(t *testing.T) {
	if testing.Short() {
		t.Skip("fetches specs/repro's pinned .debs from Debian's archive")
	}
	root := moduleRoot(t)
	tmp := t.TempDir()
	out, cache := filepath.Join(tmp, "image"), filepath.Join(tmp, "cache")
	const version = "v0.0.0-e2e"
	r, took := timed(t, root, "build", "--locked", "--platform", "linux/amd64", "--version", version,
		"--cache-dir", cache, "-f", "specs/repro/repro.yaml", "-o", "oci:"+out+":e2e")
	if r.code == 3 && !testtool.InCI() && strings.Contains(r.stderr, "debian.org") {
		t.Skipf("Debian's archive is not reachable: %s", r.stderr)
	}
	if r.code != 0 {
		t.Fatalf("repro build of specs/repro: exit %d\n%s", r.code, r.stderr)
	}
	t.Logf("specs/repro for linux/amd64, empty cache: %v", took.Round(10*time.Millisecond))

	var m ocispec.Manifest
	e2eUnmarshal(t, e2eBlob(t, out, e2eTagged(t, out, "e2e").Digest.String()), &m)
	if len(m.Layers) != 3 {
		t.Fatalf("%d layers, want 3 (debian, repro, accounts)", len(m.Layers))
	}
	if got := m.Layers[0].Digest.String(); got != reproImageDebianLayer {
		t.Errorf("the package layer is %s, want %s (the lock pins the same .debs: a changed digest is a bug until explained)", got, reproImageDebianLayer)
	}
	var cfg ocispec.Image
	e2eUnmarshal(t, e2eBlob(t, out, m.Config.Digest.String()), &cfg)
	if cfg.Config.User != "65532:65532" || !slices.Equal(cfg.Config.Entrypoint, []string{"/usr/bin/repro"}) {
		t.Errorf("config user %q, entrypoint %q; want 65532:65532 and /usr/bin/repro", cfg.Config.User, cfg.Config.Entrypoint)
	}
	files := map[string]*tar.Header{}
	for _, l := range m.Layers {
		reproImageHeaders(t, e2eBlob(t, out, l.Digest.String()), files)
	}
	for name, want := range map[string]func(h *tar.Header) bool{
		"etc/ssl/certs/ca-certificates.crt": func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg && h.Size > 100000 },
		"usr/share/zoneinfo/Etc/UTC":        func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg },
		"usr/bin/repro":                     func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg && h.Mode == 0o755 },
		"home/nonroot/":                     func(h *tar.Header) bool { return h.Typeflag == tar.TypeDir && h.Uid == 65532 },
		"etc/passwd":                        func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg },
	} {
		if h := files[name]; h == nil || !want(h) {
			t.Errorf("/%s in the image: %+v", name, h)
		}
	}
	for _, sh := range []string{"bin/sh", "usr/bin/sh", "usr/bin/apt", "usr/bin/git"} {
		if files[sh] != nil {
			t.Errorf("/%s is in the image; the base is distroless-like", sh)
		}
	}

	podman := testtool.Podman(t)
	if podman == nil {
		return
	}
	ref := testtool.OCIRef(t, out, "e2e")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(podman[0], slices.Concat(podman[1:], args)...)
		b, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				b = append(b, ee.Stderr...)
			}
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return string(b)
	}
	if o := run("run", "--rm", ref, "version"); !strings.HasPrefix(o, "repro "+version+"\n") || !strings.Contains(o, "\ngo: go1.26.8\n") {
		t.Errorf("repro version in the image:\n%s", o)
	}

	// The README's commands (Run repro in CI without Docker): the image's
	// repro, given the runner's uid and a cache in the checkout, checks the
	// lock and builds and pushes a mounted spec to the digest the host's
	// repro gives.
	registry := gcRegistry(t, false)
	if registry == "" {
		return
	}
	work := filepath.Join(tmp, "work")
	if err := os.MkdirAll(filepath.Join(work, "site"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"repro.yaml":      "version: 1\nname: site\ntags: [\"" + registry + "/site:{{.Version}}\"]\nlayers:\n  - contents:\n      - {path: /srv/index.html, source: site/index.html}\n",
		"site/index.html": "<p>built by repro in repro's image</p>\n",
	} {
		if err := os.WriteFile(filepath.Join(work, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repro(t, work, "lock", "-f", "repro.yaml")
	uid := fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	box := []string{"run", "--rm", "--network", "host", "--user", uid, "-v", work + ":/work", "-e", "SOURCE_DATE_EPOCH=1700000000", ref}
	run(slices.Concat(box, []string{"lock", "--check", "-f", "repro.yaml"})...)
	pushed := lastLine(run(slices.Concat(box, []string{"build", "-q", "--locked", "--version", "v1", "--cache-dir", ".repro-cache", "--push", "-f", "repro.yaml"})...))
	host := invocation{dir: work, env: []string{"SOURCE_DATE_EPOCH=1700000000"}}.run(t, "build", "-q", "--locked", "--version", "v1", "-f", "repro.yaml", "-o", "oci:"+filepath.Join(tmp, "host")+":v")
	if host.code != 0 || pushed != lastLine(host.stdout) {
		t.Errorf("the image's repro pushed %q, the host's repro builds %q (exit %d)\n%s", pushed, lastLine(host.stdout), host.code, host.stderr)
	}
	req, err := http.NewRequest(http.MethodHead, "http://"+registry+"/v2/site/manifests/v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageManifest) // distribution hides OCI manifests from clients that do not accept them
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != pushed {
		t.Errorf("the registry's site:v1 after the image's repro build --push: %s, %q; want %s", resp.Status, resp.Header.Get("Docker-Content-Digest"), pushed)
	}
}

// reproImageHeaders adds the tar headers of a gzip layer to files, by name.
func reproImageHeaders(t *testing.T, blob []byte, files map[string]*tar.Header) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(h.Name, "./")] = h
	}
}
