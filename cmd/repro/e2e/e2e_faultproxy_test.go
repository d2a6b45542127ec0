package e2e

// The registry fault suite: a real docker-registry behind a fault proxy of
// the test's own, which fails, cuts, resets, slows, forges or guards what
// repro asks for while pulling a base and pushing an image. The invariant
// in every case: exit 0 with the right image, or exit 3 with nothing
// written (no output, nothing in TMPDIR, no temporary file in the cache or
// the layout), never a wrong image and never a tag on an incomplete one.

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// faultBase is the suite's base in the registry: one linux/amd64 image
// whose one layer is 512 KiB of noise (so a cut in the middle of it is a
// cut in the middle of the blob).
type faultBase struct {
	digest v1.Hash // the manifest
	layer  v1.Hash // its layer blob
	config v1.Hash
}

func faultPushBase(t *testing.T, host string) faultBase {
	t.Helper()
	noise := make([]byte, 512<<10)
	rand.Read(noise)
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "noise", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(noise)), ModTime: timeUnix(e2eEpoch)})
	tw.Write(noise)
	tw.Close()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb.Bytes())), nil }, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	if img, err = mutate.Append(img, mutate.Addendum{Layer: l, MediaType: types.OCILayer}); err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", "amd64", v1.Time{Time: timeUnix(e2eEpoch)}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(host + "/fbase:1")
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	var b faultBase
	b.digest, _ = img.Digest()
	b.layer, _ = l.Digest()
	b.config, _ = img.ConfigName()
	return b
}

// faultProxy forwards to the registry, except where its fault answers a
// request itself (returning true). n counts the requests fault saw.
type faultProxy struct {
	host  string
	n     atomic.Int64
	fault func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool
	rp    *httputil.ReverseProxy
	up    string
}

func newFaultProxy(t *testing.T, upstream string, fault func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool) *faultProxy {
	t.Helper()
	u, _ := url.Parse("http://" + upstream)
	p := &faultProxy{fault: fault, rp: httputil.NewSingleHostReverseProxy(u), up: upstream}
	p.rp.ErrorLog = nil
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.fault != nil && p.fault(p, w, r) {
			return
		}
		p.rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// upstream is the registry's own answer to r, read whole.
func (p *faultProxy) upstream(t *testing.T, r *http.Request) (*http.Response, []byte) {
	req, _ := http.NewRequest(r.Method, "http://"+p.up+r.URL.RequestURI(), nil)
	for k, v := range r.Header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("upstream: %v", err)
		return nil, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// cut answers with the upstream's headers (its full Content-Length) and
// the first half of its body, then ends the connection: with a reset
// (RST) if reset, else with a clean close (FIN).
func (p *faultProxy) cut(t *testing.T, w http.ResponseWriter, r *http.Request, reset bool) {
	resp, body := p.upstream(t, r)
	if resp == nil {
		return
	}
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	fmt.Fprintf(buf, "HTTP/1.1 %s\r\n", resp.Status)
	resp.Header.Set("Content-Length", fmt.Sprint(len(body)))
	resp.Header.Del("Transfer-Encoding")
	resp.Header.Write(buf)
	buf.WriteString("\r\n")
	buf.Write(body[:len(body)/2])
	buf.Flush()
	if tc, ok := conn.(*net.TCPConn); ok && reset {
		tc.SetLinger(0)
	}
	conn.Close()
}

func isBlob(r *http.Request, d v1.Hash) bool {
	return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+d.String())
}

func firstTimes(p *faultProxy, k int64) bool { return p.n.Add(1) <= k }

func status(w http.ResponseWriter, code int, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	io.WriteString(w, `{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}`)
}

// faultDebris lists the temporary files under dirs: what a run that
// stopped half-way would leave.
func faultDebris(t *testing.T, dirs ...string) []string {
	t.Helper()
	var out []string
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err == nil && strings.Contains(e.Name(), ".tmp") {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

type faultCase struct {
	name  string
	fault func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool
	push  bool   // the proxy is the push target (the base comes straight from the registry)
	code  int    // the exit code wanted
	err   string // in stderr, for a failure (each of its |-separated parts)
	tries int64  // the least number of requests fault must have seen
}

// TestE2EFaultProxy runs the fault cases, each through a proxy of its
// own, in parallel, against one docker-registry.
func TestE2EFaultProxy(t *testing.T) {
	t.Parallel()
	reg := regStart(t, "")
	if reg == nil {
		return
	}
	b := faultPushBase(t, reg.host)
	var tokens sync.Map // the tokens the 401 case handed out
	cases := []faultCase{
		{name: "500-twice", code: 0, tries: 3, fault: func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool {
			if isBlob(r, b.layer) && firstTimes(p, 2) {
				status(w, 500, "")
				return true
			}
			return false
		}},
		{name: "503-retry-after", code: 0, tries: 2, fault: func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool {
			if isBlob(r, b.layer) && firstTimes(p, 1) {
				status(w, 503, "1")
				return true
			}
			return false
		}},
		{name: "429-retry-after", code: 0, tries: 2, fault: func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool {
			if strings.Contains(r.URL.Path, "/manifests/") && firstTimes(p, 1) {
				status(w, 429, "1")
				return true
			}
			return false
		}},
		{name: "429-no-retry-after", code: 0, tries: 3, fault: func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool {
			if isBlob(r, b.config) && firstTimes(p, 2) {
				status(w, 429, "")
				return true
			}
			return false
		}},
		{name: "503-always", code: 3, err: "503", tries: 2, fault: func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool {
			if isBlob(r, b.layer) {
				p.n.Add(1)
				status(w, 503, "")
				return true
			}
			return false
		}},
		{name: "reset-mid-blob-pull", code: 0, tries: 2, fault: func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool {
			if isBlob(r, b.layer) && firstTimes(p, 1) {
				p.cut(t, w, r, true)
				return true
			}
			return false
		}},
		{name: "cut-mid-blob-resumed", code: 0, tries: 2, fault: func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool {
			if isBlob(r, b.layer) {
				if n := p.n.Add(1); n == 1 {
					p.cut(t, w, r, false)
					return true
				} else if n == 2 && r.Header.Get("Range") == "" {
					t.Errorf("the retry after a cut body asks for it all again (no Range)")
				}
			}
			return false
		}},
		{name: "slow-body", code: 0, tries: 1, fault: func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool {
			if !isBlob(r, b.layer) {
				return false
			}
			p.n.Add(1)
			resp, body := p.upstream(t, r)
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			for len(body) > 0 {
				n := min(len(body), 64<<10)
				w.Write(body[:n])
				w.(http.Flusher).Flush()
				body = body[n:]
				time.Sleep(100 * time.Millisecond)
			}
			return true
		}},
		{name: "digest-mismatch", code: 3, err: b.layer.String() + "|its bytes hash to sha256:|not the digest it is named by; the registry serves corrupt data", tries: 1, fault: func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool {
			if !isBlob(r, b.layer) {
				return false
			}
			p.n.Add(1)
			resp, body := p.upstream(t, r)
			body[len(body)/2] ^= 0xff
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			w.Write(body)
			return true
		}},
		{name: "manifest-forged", code: 3, err: b.digest.String(), tries: 1, fault: func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool {
			// The manifest by digest is other bytes than the digest's.
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/manifests/"+b.digest.String()) {
				return false
			}
			p.n.Add(1)
			resp, body := p.upstream(t, r)
			body = bytes.Replace(body, []byte(`"schemaVersion":2`), []byte(`"schemaVersion": 2`), 1)
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.WriteHeader(resp.StatusCode)
			w.Write(body)
			return true
		}},
		{name: "401-token-200", code: 0, tries: 2, fault: func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/token" {
				p.n.Add(1)
				tok := fmt.Sprintf("tok%d", p.n.Load())
				tokens.Store(tok, true)
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"token":%q,"expires_in":300}`, tok)
				return true
			}
			if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
				if _, ok := tokens.Load(strings.TrimPrefix(h, "Bearer ")); ok {
					r.Header.Del("Authorization")
					return false
				}
			}
			p.n.Add(1)
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="fault",scope="repository:fbase:pull"`, r.Host))
			status(w, 401, "")
			return true
		}},
		{name: "reset-mid-blob-push", push: true, code: 0, tries: 1, fault: func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool {
			if (r.Method == http.MethodPatch || r.Method == http.MethodPut) && strings.Contains(r.URL.Path, "/blobs/uploads/") && r.ContentLength != 0 && firstTimes(p, 1) {
				io.CopyN(io.Discard, r.Body, max(r.ContentLength/2, 1))
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.(*net.TCPConn).SetLinger(0)
					conn.Close()
				}
				return true
			}
			return false
		}},
		{name: "reset-push-always", push: true, code: 3, tries: 2, fault: func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool {
			if (r.Method == http.MethodPatch || r.Method == http.MethodPut || r.Method == http.MethodPost) && strings.Contains(r.URL.Path, "/blobs/uploads/") {
				p.n.Add(1)
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.(*net.TCPConn).SetLinger(0)
					conn.Close()
				}
				return true
			}
			return false
		}},
		{name: "429-push-retry-after", push: true, code: 0, tries: 2, fault: func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") && firstTimes(p, 1) {
				io.Copy(io.Discard, r.Body)
				status(w, 429, "1")
				return true
			}
			return false
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			faultRun(t, reg, b, c)
		})
	}
	t.Run("tag-moves-between-head-and-get", func(t *testing.T) {
		t.Parallel()
		faultTagMoves(t, reg, b)
	})
}

func faultRun(t *testing.T, reg *regServer, b faultBase, c faultCase) {
	p := newFaultProxy(t, reg.host, c.fault)
	baseHost, pushTo := p.host, reg.host+"/fapp-"+c.name+":1"
	if c.push {
		baseHost, pushTo = reg.host, p.host+"/fapp-"+c.name+":1"
	}
	dir := t.TempDir()
	writeSpec(t, dir, fmt.Sprintf("version: 1\nname: app\nbase: %s/fbase@%s\nlayers:\n  - contents:\n      - {path: /etc/motd, content: %q}\ntags:\n  - %s\n", baseHost, b.digest, c.name, pushTo))
	tmp, cache := filepath.Join(dir, "tmp"), filepath.Join(dir, "cache")
	os.Mkdir(tmp, 0o755)
	e := &regEnv{dockerConfig: t.TempDir(), cacheHome: t.TempDir()}
	args := []string{"build", "--cache-dir", cache, "-o", "oci:out:t"}
	if c.push {
		args = append(args, "--push")
	}
	start := time.Now()
	r := e.run(t, dir, []string{"TMPDIR=" + tmp}, args...)
	t.Logf("exit %d in %v, %d faulted requests", r.code, time.Since(start).Round(time.Millisecond), p.n.Load())
	if r.code != c.code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr:\n%s", r.code, c.code, r.stdout, r.stderr)
	}
	if got := p.n.Load(); got < c.tries {
		t.Errorf("the fault saw %d requests, want at least %d: it did not happen", got, c.tries)
	}
	if debris := faultDebris(t, filepath.Join(dir, "out"), cache, tmp); len(debris) > 0 {
		t.Errorf("temporary files left: %v", debris)
	}
	if left := regEntries(t, tmp); len(left) > 0 {
		t.Errorf("TMPDIR holds %v", left)
	}
	pushed := ""
	if d, err := remote.Head(mustTag(t, pushTo)); err == nil {
		pushed = d.Digest.String()
	}
	if c.code != 0 {
		for _, w := range strings.Split(c.err, "|") {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("stderr does not name %q:\n%s", w, r.stderr)
			}
		}
		if strings.TrimSpace(r.stdout) != "" {
			t.Errorf("a failed build printed %q", r.stdout)
		}
		if _, err := os.Lstat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
			t.Errorf("the failed build wrote out/ (%v)", err)
		}
		if c.push && pushed != "" {
			t.Errorf("the failed push tagged %s as %s", pushTo, pushed)
		}
		t.Logf("%s", r.stderr)
		return
	}
	digest := regBuilt(t, r)
	if got := string(e2eTagged(t, filepath.Join(dir, "out"), "t").Digest); got != digest {
		t.Errorf("out:t is %s, the build printed %s", got, digest)
	}
	if c.push && pushed != digest {
		t.Errorf("%s is %q, the build printed %s", pushTo, pushed, digest)
	}
	// The image holds the base's layer as published.
	var m v1.Manifest
	e2eUnmarshal(t, e2eBlob(t, filepath.Join(dir, "out"), digest), &m)
	if len(m.Layers) == 0 || m.Layers[0].Digest != b.layer {
		t.Errorf("the image's first layer is not the base's %s: %+v", b.layer, m.Layers)
	}
	e2eBlob(t, filepath.Join(dir, "out"), b.layer.String())
}

func mustTag(t *testing.T, s string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

// faultTagMoves: the tag moves to another image after repro lock's HEAD
// and before its GET. The lock pins what the HEAD answered, and the
// manifest it read is that digest's: never one digest with another's bytes.
func faultTagMoves(t *testing.T, reg *regServer, b faultBase) {
	moved := make(chan struct{})
	var once sync.Once
	p := newFaultProxy(t, reg.host, func(p *faultProxy, w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodHead && strings.HasSuffix(r.URL.Path, "/fmove/manifests/1") {
			p.n.Add(1)
			resp, _ := p.upstream(t, r)
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			once.Do(func() {
				// Move the tag before repro asks for the manifest.
				img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
				cf, _ := img.ConfigFile()
				cf = cf.DeepCopy()
				cf.OS, cf.Architecture = "linux", "amd64"
				img, _ = mutate.ConfigFile(img, cf)
				if err := remote.Write(mustTag(t, reg.host+"/fmove:1"), img); err != nil {
					t.Error(err)
				}
				close(moved)
			})
			return true
		}
		return false
	})
	src := mustTag(t, reg.host+"/fbase:1")
	desc, err := remote.Get(src)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := desc.Image()
	if err := remote.Write(mustTag(t, reg.host+"/fmove:1"), img); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeSpec(t, dir, fmt.Sprintf("version: 1\nname: app\nbase: %s/fmove:1\nlayers:\n  - contents:\n      - {path: /etc/motd, content: moved}\n", p.host))
	e := &regEnv{dockerConfig: t.TempDir(), cacheHome: t.TempDir()}
	r := e.run(t, dir, nil, "lock", "--cache-dir", filepath.Join(dir, "cache"))
	if r.code != 0 {
		t.Fatalf("lock: exit %d\n%s", r.code, r.stderr)
	}
	<-moved
	raw, _ := os.ReadFile(filepath.Join(dir, "repro.lock.json"))
	if !strings.Contains(string(raw), b.digest.String()) {
		t.Errorf("the lock does not pin %s, which the HEAD answered:\n%s", b.digest, raw)
	}
	r = e.run(t, dir, nil, "build", "--locked", "--cache-dir", filepath.Join(dir, "cache"), "-o", "oci:out:t")
	if r.code != 0 {
		t.Fatalf("build on the lock: exit %d\n%s", r.code, r.stderr)
	}
	var m v1.Manifest
	e2eUnmarshal(t, e2eBlob(t, filepath.Join(dir, "out"), regBuilt(t, r)), &m)
	if len(m.Layers) == 0 || m.Layers[0].Digest != b.layer {
		t.Errorf("the build is not on the base the lock pins: %+v", m.Layers)
	}
}
