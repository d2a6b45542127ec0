package netx

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// silent accepts connections and never says a byte.
func silent(t *testing.T) string {
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
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

func fast() Policy {
	return Policy{Timeout: 900 * time.Millisecond, Backoff: 10 * time.Millisecond}
}

func TestDefaultsBoundASilentServerAt90s(t *testing.T) {
	var p Policy
	if got := p.normal().Timeout; got != 90*time.Second {
		t.Errorf("default timeout %s, want 90s", got)
	}
	if got := p.Wait(); got != 30*time.Second {
		t.Errorf("default single wait %s, want 30s", got)
	}
	tr := p.Transport().(*transport).base.(*http.Transport)
	if tr.ResponseHeaderTimeout != 30*time.Second || tr.TLSHandshakeTimeout != 30*time.Second {
		t.Errorf("transport waits %s/%s, want 30s", tr.ResponseHeaderTimeout, tr.TLSHandshakeTimeout)
	}
	// The bound holds for the default: tries × wait + backoffs never pass
	// the timeout, because the budget cuts the last try.
	if p.normal().Attempts*int(p.Wait()) < int(p.normal().Timeout) {
		t.Errorf("attempts × wait below the timeout: a silent server would fail earlier than documented")
	}
}

func TestSilentServerFailsWithinTimeout(t *testing.T) {
	addr := silent(t)
	c := fast().Client()
	start := time.Now()
	_, err := c.Get("http://" + addr + "/v2/")
	took := time.Since(start)
	if err == nil {
		t.Fatal("a silent server answered")
	}
	host, timedOut := HostOf(err)
	if host != addr || !timedOut {
		t.Errorf("HostOf = %q, %v; want %q, true (%v)", host, timedOut, addr, err)
	}
	if took > 900*time.Millisecond+300*time.Millisecond || took < 800*time.Millisecond {
		t.Errorf("gave up after %s, want about the timeout 900ms", took)
	}
	if !strings.Contains(err.Error(), "said nothing") || !strings.Contains(err.Error(), "tries") {
		t.Errorf("message %q", err)
	}
	if Retryable(err) {
		t.Error("a spent request is retryable above")
	}
}

// stalling answers headers with the full length, sends half, then says
// nothing more.
func TestBodyStallMidwayFailsWithinTimeout(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Length", "2000")
		w.WriteHeader(200)
		w.Write(bytes.Repeat([]byte("x"), 1000))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	resp, err := fast().Client().Get(srv.URL + "/blob")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	_, err = io.ReadAll(resp.Body)
	took := time.Since(start)
	var e *Error
	if !errors.As(err, &e) || !e.Timeout() || e.URL == "" {
		t.Fatalf("err = %v, want a timeout naming the URL", err)
	}
	if took > 1300*time.Millisecond {
		t.Errorf("took %s", took)
	}
	if hits.Load() < 2 {
		t.Errorf("the body was not resumed (%d requests)", hits.Load())
	}
}

func TestCutBodyIsResumed(t *testing.T) {
	data := make([]byte, 100_000)
	rand.Read(data)
	for _, ranges := range []bool{true, false} {
		t.Run(fmt.Sprintf("ranges=%v", ranges), func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := hits.Add(1)
				if n <= 2 {
					// Full length promised, a part sent, connection closed.
					w.Header().Set("Content-Length", fmt.Sprint(len(data)))
					w.WriteHeader(200)
					w.Write(data[:len(data)/3])
					w.(http.Flusher).Flush()
					conn, _, _ := w.(http.Hijacker).Hijack()
					conn.Close()
					return
				}
				if ranges {
					http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
					return
				}
				w.Header().Set("Content-Length", fmt.Sprint(len(data)))
				w.Write(data)
			}))
			defer srv.Close()
			resp, err := fast().Client().Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("got %d bytes, not the body", len(got))
			}
		})
	}
}

func TestAlwaysCutBodyFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(200)
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	}))
	defer srv.Close()
	resp, err := fast().Client().Get(srv.URL + "/x?sig=secret")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	var e *Error
	if !errors.As(err, &e) || e.Tries != 4 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "/x") {
		t.Errorf("message %q: should name the URL without its query", err)
	}
}

func TestStatusRetries(t *testing.T) {
	cases := []struct {
		name   string
		answer func(n int32, w http.ResponseWriter)
		want   int
		hits   int32
	}{
		{"503 then 200", func(n int32, w http.ResponseWriter) {
			if n < 3 {
				w.WriteHeader(503)
				return
			}
			w.Write([]byte("ok"))
		}, 200, 3},
		{"429 Retry-After 0", func(n int32, w http.ResponseWriter) {
			if n == 1 {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(429)
				return
			}
			w.Write([]byte("ok"))
		}, 200, 2},
		{"500 always", func(n int32, w http.ResponseWriter) { w.WriteHeader(500) }, 500, 4},
		{"429 Retry-After past the wait", func(n int32, w http.ResponseWriter) {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(429)
		}, 429, 1},
		{"404 not retried", func(n int32, w http.ResponseWriter) { w.WriteHeader(404) }, 404, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c.answer(hits.Add(1), w)
			}))
			defer srv.Close()
			resp, err := fast().Client().Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want || hits.Load() != c.hits {
				t.Errorf("status %d after %d requests, want %d after %d", resp.StatusCode, hits.Load(), c.want, c.hits)
			}
		})
	}
}

func TestResetBeforeAnswerIsRetried(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPut, srv.URL, strings.NewReader("manifest"))
	resp, err := fast().Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if hits.Load() != 2 {
		t.Errorf("%d requests", hits.Load())
	}
}

func TestStreamedBodyIsNotResent(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(503)
	}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPatch, srv.URL, io.NopCloser(strings.NewReader("stream")))
	resp, err := fast().Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if hits.Load() != 1 || resp.StatusCode != 503 {
		t.Errorf("%d requests, status %d", hits.Load(), resp.StatusCode)
	}
}

// slowBody is a request body that takes its time: repro's own work, not
// the server's silence.
type slowBody struct {
	n int
}

func (s *slowBody) Read(p []byte) (int, error) {
	if s.n == 3 {
		return 0, io.EOF
	}
	s.n++
	time.Sleep(400 * time.Millisecond) // more than a single wait (300ms)
	p[0] = 'x'
	return 1, nil
}

func TestProducingTheRequestBodyIsNotSilence(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPatch, srv.URL, io.NopCloser(&slowBody{}))
	resp, err := fast().Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "xxx" {
		t.Errorf("echo %q", b)
	}
}

func TestSlowButLiveBodyIsRead(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "6")
		for range 6 {
			w.Write([]byte("x"))
			w.(http.Flusher).Flush()
			time.Sleep(200 * time.Millisecond) // under one wait, 1.2s in all: past the timeout
		}
	}))
	defer srv.Close()
	resp, err := fast().Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "xxxxxx" {
		t.Fatalf("%q, %v", b, err)
	}
}

func TestCancelIsNotATimeout(t *testing.T) {
	addr := silent(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr, nil)
	_, err := fast().Client().Do(req)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, timedOut := HostOf(err); timedOut {
		t.Error("a cancel reported as a timeout")
	}
}

func TestRefusedIsNotRetried(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	start := time.Now()
	_, err := Policy{Backoff: time.Second}.Client().Get("http://" + addr)
	if err == nil || time.Since(start) > 500*time.Millisecond {
		t.Errorf("err %v after %s", err, time.Since(start))
	}
}
