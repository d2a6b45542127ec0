package e2e

// Helpers of the registry end-to-end tests: a docker-registry process of
// the test's own, a two-platform base made without repro (umoci, skopeo),
// and a reverse proxy that records requests and injects registry failures.

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ocidigest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/internal/testtool"
)

// regServer is a running docker-registry (distribution 2.8).
type regServer struct {
	host string // 127.0.0.1:PORT
	log  *regLog
	root string // its storage's root directory
}

// regLog collects the registry's output, access log included.
type regLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *regLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *regLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// requests counts the access-log lines of requests for the repository repo
// (any method, any path under /v2/REPO/).
func (l *regLog) requests(repo string) int {
	re := regexp.MustCompile(`"[A-Z]+ /v2/` + regexp.QuoteMeta(repo) + `/[^ ]* HTTP/`)
	return len(re.FindAllString(l.String(), -1))
}

// regStart starts docker-registry on a free loopback port with its storage
// under t.TempDir(); extra is appended to its config (auth). The registry
// is killed when the test ends.
func regStart(t *testing.T, extra string) *regServer {
	t.Helper()
	tools := testtool.Require(t, "docker-registry")
	if tools == nil {
		return nil
	}
	dir := t.TempDir()
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		host := l.Addr().String()
		l.Close()
		root := filepath.Join(dir, fmt.Sprintf("storage%d", attempt))
		config := fmt.Sprintf(`version: 0.1
log:
  level: info
http:
  addr: %s
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
%s`, host, root, extra)
		cfgPath := filepath.Join(dir, fmt.Sprintf("config%d.yml", attempt))
		if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		log := &regLog{}
		cmd := exec.Command(tools["docker-registry"], "serve", cfgPath)
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting docker-registry: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
		})
		if regWaitUp(host, exited) {
			return &regServer{host: host, log: log, root: root}
		}
		// The port was taken between Listen and serve, or the registry died.
		if attempt == 4 {
			t.Fatalf("docker-registry did not come up on %s:\n%s", host, log)
		}
	}
}

// regWaitUp waits until GET /v2/ answers (200, or 401 when auth is on).
func regWaitUp(host string, exited <-chan struct{}) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// regBase is the two-platform base, made without repro.
type regBase struct {
	layout    string            // OCI layout: tags amd64, arm64 and multi (the index)
	index     string            // the index's digest, as pushed
	manifests map[string]string // os/arch -> manifest digest
}

// regBusybox returns the path of a statically linked busybox, which runs
// in an image without a libc.
func regBusybox(t *testing.T) string {
	t.Helper()
	tools := testtool.Require(t, "busybox")
	if tools == nil {
		return ""
	}
	p, err := filepath.EvalSymlinks(tools["busybox"])
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Fatalf("%s is dynamically linked; the tests need busybox-static (apt-get install busybox-static)", p)
		}
	}
	return p
}

// regMakeBase makes the base with umoci: a linux/amd64 image with
// busybox-static at /bin/busybox (one layer) and /etc/base-release and
// /usr/share/doc/base/README (another), and a linux/arm64 image with one
// small file; then an OCI index over the two, which skopeo pushes to every
// ref (host/repo:tag).
func regMakeBase(t *testing.T, refs ...string) *regBase {
	t.Helper()
	if testtool.Require(t, "umoci", "skopeo") == nil {
		return nil
	}
	busybox := regBusybox(t)
	dir := t.TempDir()
	layout := filepath.Join(dir, "layout")
	files := func(name string, fs map[string]string) string {
		root := filepath.Join(dir, name)
		for p, content := range fs {
			full := filepath.Join(root, p)
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			mode := os.FileMode(0o644)
			if content == "" { // busybox
				b, err := os.ReadFile(busybox)
				if err != nil {
					t.Fatal(err)
				}
				content, mode = string(b), 0o755
			}
			if err := os.WriteFile(full, []byte(content), mode); err != nil {
				t.Fatal(err)
			}
		}
		return root
	}
	umoci := func(args ...string) { t.Helper(); testtool.Run(t, "umoci", args...) }
	umoci("init", "--layout", layout)
	umoci("new", "--image", layout+":amd64")
	umoci("insert", "--image", layout+":amd64", files("bin", map[string]string{"bin/busybox": ""}), "/")
	umoci("insert", "--image", layout+":amd64", files("etc", map[string]string{
		"etc/base-release":          "base 1\n",
		"usr/share/doc/base/README": "the base's documentation\n",
	}), "/")
	umoci("config", "--image", layout+":amd64", "--os", "linux", "--architecture", "amd64",
		"--config.env", "PATH=/usr/local/bin:/usr/bin:/bin", "--config.env", "LANG=C")
	umoci("new", "--image", layout+":arm64")
	umoci("insert", "--image", layout+":arm64", files("arm", map[string]string{"etc/base-release": "base 1 arm64\n"}), "/")
	umoci("config", "--image", layout+":arm64", "--os", "linux", "--architecture", "arm64",
		"--config.env", "PATH=/usr/local/bin:/usr/bin:/bin", "--config.env", "LANG=C")

	// The index, written by hand: umoci makes none.
	var top ocispec.Index
	regReadJSON(t, filepath.Join(layout, "index.json"), &top)
	b := &regBase{layout: layout, manifests: map[string]string{}}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	for _, arch := range []string{"amd64", "arm64"} {
		var d *ocispec.Descriptor
		for i, m := range top.Manifests {
			if m.Annotations[ocispec.AnnotationRefName] == arch {
				d = &top.Manifests[i]
			}
		}
		if d == nil {
			t.Fatalf("umoci wrote no %s tag:\n%+v", arch, top)
		}
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{
			MediaType: d.MediaType, Digest: d.Digest, Size: d.Size,
			Platform: &ocispec.Platform{OS: "linux", Architecture: arch},
		})
		b.manifests["linux/"+arch] = string(d.Digest)
	}
	raw, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	digest := regDigest(raw)
	if err := os.WriteFile(filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	top.Manifests = append(top.Manifests, ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageIndex, Digest: ocidigest.Digest(digest), Size: int64(len(raw)),
		Annotations: map[string]string{ocispec.AnnotationRefName: "multi"},
	})
	topRaw, err := json.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(layout, "index.json"), topRaw, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, ref := range refs {
		testtool.Run(t, "skopeo", "copy", "--quiet", "--all", "--dest-tls-verify=false", "oci:"+layout+":multi", "docker://"+ref)
		// skopeo copies an index that needs no conversion as it is.
		if got := regDigest(regRaw(t, ref)); got != digest {
			t.Fatalf("skopeo pushed the index %s as %s", digest, got)
		}
	}
	b.index = digest
	return b
}

// regRaw is the raw manifest (or index) that ref names in the registry.
func regRaw(t *testing.T, ref string, more ...string) []byte {
	t.Helper()
	args := append([]string{"inspect", "--raw", "--tls-verify=false"}, more...)
	return []byte(testtool.Run(t, "skopeo", append(args, "docker://"+ref)...))
}

// regConfigOf is the raw config of the image manifest that ref names.
func regConfigOf(t *testing.T, ref string) []byte {
	t.Helper()
	return []byte(testtool.Run(t, "skopeo", "inspect", "--config", "--raw", "--tls-verify=false", "docker://"+ref))
}

// regMissing reports whether skopeo fails to find ref in the registry.
func regMissing(t *testing.T, ref string) bool {
	t.Helper()
	out, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+ref).CombinedOutput()
	if err == nil {
		t.Logf("skopeo inspect %s found:\n%s", ref, out)
	}
	return err != nil
}

func regDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func regReadJSON(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, raw)
	}
}

func regUnmarshal(t *testing.T, what string, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, raw)
	}
}

// regProxy is a reverse proxy in front of a registry that answers 500 to
// the write requests (PUT, PATCH, POST) that fail says to fail, counting
// from 1, forwards everything else, and records every request.
type regProxy struct {
	host           string
	writes, failed atomic.Int64

	mu   sync.Mutex
	reqs []regRequest
}

// regRequest is one request the proxy saw, and the status it answered.
type regRequest struct {
	method, path string
	query        url.Values
	status       int
	body         int64 // bytes of request body
}

func (q regRequest) String() string {
	return fmt.Sprintf("%s %s?%s: %d (%d bytes)", q.method, q.path, q.query.Encode(), q.status, q.body)
}

// requests returns the requests seen so far.
func (p *regProxy) requests() []regRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]regRequest(nil), p.reqs...)
}

type regStatusWriter struct {
	http.ResponseWriter
	status int
}

func (w *regStatusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *regStatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type regCountingBody struct {
	io.ReadCloser
	n int64
}

func (b *regCountingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

func regFaultProxy(t *testing.T, target string, fail func(n int64) bool) *regProxy {
	t.Helper()
	u, err := url.Parse("http://" + target)
	if err != nil {
		t.Fatal(err)
	}
	p := &regProxy{}
	rp := httputil.NewSingleHostReverseProxy(u) // keeps the client's Host: upload URLs point back here
	rp.ErrorLog = log.New(io.Discard, "", 0)    // a client that gives up is no news
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &regStatusWriter{ResponseWriter: w, status: http.StatusOK}
		body := &regCountingBody{ReadCloser: r.Body}
		r.Body = body
		defer func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.reqs = append(p.reqs, regRequest{method: r.Method, path: r.URL.Path, query: r.URL.Query(), status: sw.status, body: body.n})
		}()
		switch r.Method {
		case http.MethodPut, http.MethodPatch, http.MethodPost:
			if fail(p.writes.Add(1)) {
				p.failed.Add(1)
				io.Copy(io.Discard, r.Body)
				sw.Header().Set("Content-Type", "application/json")
				sw.WriteHeader(http.StatusInternalServerError)
				io.WriteString(sw, `{"errors":[{"code":"UNKNOWN","message":"injected failure"}]}`)
				return
			}
		}
		rp.ServeHTTP(sw, r)
	}))
	t.Cleanup(srv.Close)
	p.host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// regSpecText is the app spec over base, pushed to tags.
func regSpecText(base string, tags ...string) string {
	var tl strings.Builder
	for _, tag := range tags {
		fmt.Fprintf(&tl, "  - %s\n", tag)
	}
	return fmt.Sprintf(`version: 1
name: app
base: %s
platforms: [linux/amd64, linux/arm64]
epoch: %d
layers:
  - name: app
    contents:
      - path: /etc/app.txt
        source: app.txt
        mode: "0644"
      - path: /usr/share/doc/base
        type: remove
config:
  env: {APP: "1", LANG: C.UTF-8}
  cmd: [/bin/busybox, cat, /etc/app.txt]
tags:
%s`, base, e2eEpochRegistry, tl.String())
}

const e2eEpochRegistry = 1700000000

// regSpecDir writes a build context: repro.yaml with spec, app.txt with
// app, and the files of more (name -> content).
func regSpecDir(t *testing.T, spec, app string, more map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ctx")
	files := map[string]string{"repro.yaml": spec, "app.txt": app}
	for k, v := range more {
		files[k] = v
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// regEnv is how the registry tests run repro: no docker config of the
// machine's (DOCKER_CONFIG is an empty directory unless set) and a cache
// directory of the test's own.
type regEnv struct {
	dockerConfig string
	cacheHome    string
}

func newRegEnv(t *testing.T) *regEnv {
	return &regEnv{dockerConfig: t.TempDir(), cacheHome: t.TempDir()}
}

func (e *regEnv) run(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	full := append([]string{"DOCKER_CONFIG=" + e.dockerConfig, "XDG_CACHE_HOME=" + e.cacheHome}, env...)
	return invocation{dir: dir, env: full}.run(t, args...)
}

// ok runs repro and fails the test unless it exits 0.
func (e *regEnv) ok(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	r := e.run(t, dir, env, args...)
	if r.code != 0 {
		t.Fatalf("repro %q: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

var regDigestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// regBuilt returns the digest a build printed, failing unless it is one.
func regBuilt(t *testing.T, r result) string {
	t.Helper()
	d := lastLine(r.stdout)
	if !regDigestRE.MatchString(d) {
		t.Fatalf("build printed %q, not a digest\nstderr:\n%s", r.stdout, r.stderr)
	}
	return d
}

// regEntries lists what dir holds (nothing when it is absent).
func regEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
