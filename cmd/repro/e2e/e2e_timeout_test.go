package e2e

// Bounded waits, through the binary: a server that accepts and never
// answers, and one that answers headers and then stalls mid-body, for each
// command that reaches the network (build with a registry base, lock, a
// url: fetch, an apt source, a push). Each must exit 3 within --timeout
// (and a little), write nothing, and name the host in --json.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reprobuild/repro/pkg/lock/locktest"
)

// silentHost accepts connections on 127.0.0.1 and never says a byte.
func silentHost(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// stallingHost is a registry and web server that starts every answer
// and finishes none: the registry's ping answers, a tag resolves, a GET
// sends its headers (4096 bytes promised) and 100 bytes, then nothing; an
// upload is started, then its data is never acknowledged.
func stallingHost(t *testing.T) string {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/" || r.URL.Path == "/v2":
			w.Write([]byte("{}"))
			return
		case r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/") && !strings.Contains(r.URL.Path, "sha256:"):
			// A tag resolves (lock); its manifest then stalls.
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("ab", 32))
			w.Header().Set("Content-Length", "4096")
			return
		case r.Method == http.MethodHead:
			w.WriteHeader(http.StatusNotFound)
			return
		case r.Method == http.MethodPost:
			w.Header().Set("Location", r.URL.Path+"u1")
			w.WriteHeader(http.StatusAccepted)
			return
		case r.Method == http.MethodGet:
			w.Header().Set("Content-Length", "4096")
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			w.WriteHeader(http.StatusOK)
			w.Write([]byte(strings.Repeat(" ", 100)))
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(func() {
		close(done)
		srv.Close()
	})
	return strings.TrimPrefix(srv.URL, "http://")
}

// timeoutCase is one command against a server that does not finish.
type timeoutCase struct {
	name string
	// setup writes the context for host and returns its directory and the
	// arguments; written lists what must not exist afterwards.
	setup func(t *testing.T, host string) (dir string, args []string, written []string)
}

func timeoutCases() []timeoutCase {
	app := func(t *testing.T, spec string, more map[string]string) string {
		dir := regSpecDir(t, spec, "app\n", nil)
		for name, content := range more {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	return []timeoutCase{
		{"build-registry-base", func(t *testing.T, host string) (string, []string, []string) {
			dir := app(t, regSpecText(host+"/lib/base@sha256:"+strings.Repeat("ab", 32)), nil)
			return dir, []string{"build", "-o", "oci:out/app"}, []string{"out"}
		}},
		{"lock", func(t *testing.T, host string) (string, []string, []string) {
			dir := app(t, regSpecText(host+"/lib/base:1"), nil)
			return dir, []string{"lock"}, []string{"repro.lock.json"}
		}},
		{"url", func(t *testing.T, host string) (string, []string, []string) {
			dir := e2eURLSpec(t, "http://"+host+"/file", strings.Repeat("0", 64))
			return dir, []string{"build", "-o", "oci:out/app"}, []string{"out"}
		}},
		{"apt-source", func(t *testing.T, host string) (string, []string, []string) {
			key := locktest.NewKey(t, "timeout test")
			spec := fmt.Sprintf(`version: 1
name: os
epoch: 1700000000
apt:
  sources:
    - url: http://%s/debian
      suites: [bookworm]
      components: [main]
  keyring: keys/test.asc
layers:
  - name: os
    packages: [base-files]
`, host)
			return app(t, spec, map[string]string{"keys/test.asc": string(key.Public)}), []string{"lock"}, []string{"repro.lock.json"}
		}},
		{"push", func(t *testing.T, host string) (string, []string, []string) {
			spec := fmt.Sprintf(`version: 1
name: app
epoch: 1700000000
layers:
  - name: app
    contents:
      - path: /etc/app.txt
        source: app.txt
tags:
  - %s/app:v1
`, host)
			return app(t, spec, nil), []string{"build", "--push"}, []string{"out"}
		}},
	}
}

func TestE2ESilentServersFailWithinTimeout(t *testing.T) {
	servers := []struct {
		name string
		host func(t *testing.T) string
	}{{"silent", silentHost}, {"stalls-mid-body", stallingHost}}
	const timeout = 3 * time.Second
	for _, srv := range servers {
		for _, c := range timeoutCases() {
			t.Run(srv.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				host := srv.host(t)
				dir, args, written := c.setup(t, host)
				env := newRegEnv(t)
				start := time.Now()
				r := env.run(t, dir, nil, append(args, "--timeout", timeout.String(), "--json")...)
				took := time.Since(start)
				if r.code != 3 {
					t.Fatalf("repro %s: exit %d, want 3\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
				}
				// The bound is the timeout; the slack is the process's own
				// start, spec and keyring work, on a busy 2-core machine.
				if took > timeout+4*time.Second {
					t.Errorf("exit after %s; --timeout %s", took, timeout)
				}
				var out struct {
					Host     string `json:"host"`
					TimedOut bool   `json:"timedOut"`
					Error    string `json:"error"`
				}
				if err := json.Unmarshal([]byte(lastLine(r.stdout)), &out); err != nil {
					t.Fatalf("--json: %v\n%s", err, r.stdout)
				}
				if out.Host != host || !out.TimedOut {
					t.Errorf("--json names host %q (timed out %v), want %q: %s", out.Host, out.TimedOut, host, r.stdout)
				}
				if !strings.Contains(r.stderr, host) || !strings.Contains(r.stderr, "said nothing") {
					t.Errorf("stderr does not say which host fell silent:\n%s", r.stderr)
				}
				for _, w := range written {
					if _, err := os.Stat(filepath.Join(dir, w)); err == nil {
						t.Errorf("%s was written", w)
					}
				}
			})
		}
	}
}

// The default bound is the contract's 90 s: --help says so, and the flag
// parses to it (internal/netx's test checks the waits derived from it).
func TestE2ETimeoutDefaultIs90s(t *testing.T) {
	r := repro(t, t.TempDir(), "help", "build")
	if !strings.Contains(r.stdout, "--timeout duration") || !strings.Contains(r.stdout, "(default 1m30s)") {
		t.Errorf("repro help build does not show --timeout with its 90s default:\n%s", r.stdout)
	}
	bad := invocation{dir: t.TempDir()}.run(t, "inspect", "oci:x", "--timeout", "0s")
	if bad.code != 2 {
		t.Errorf("--timeout 0s: exit %d, want 2", bad.code)
	}
	// Before the command, as a global flag with its value.
	dir := t.TempDir()
	moved := invocation{dir: dir}.run(t, "--timeout", "5s", "inspect", "oci:"+filepath.Join(dir, "none"))
	if moved.code == 2 && strings.Contains(moved.stderr, "timeout") {
		t.Errorf("--timeout before the command is not taken:\n%s", moved.stderr)
	}
}
