package netx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultTimeout is the contract's bound: a server that accepts a
// connection and then says nothing fails the command within 90 s.
const DefaultTimeout = 90 * time.Second

// Policy is how repro waits for and retries network requests. The zero
// value is the default policy.
type Policy struct {
	// Timeout bounds how long a silent server is waited for, all tries
	// together; each single wait gets a third of it. 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// Attempts is the most tries of one request (and the most tries in a
	// row, without a byte arriving, of one body). 0 means 4.
	Attempts int
	// Backoff is the wait before the second try; it doubles for each try
	// after that, never past a third of Timeout. 0 means 500 ms.
	Backoff time.Duration
	// Log receives a line per retry; nil discards.
	Log *slog.Logger
}

func (p Policy) normal() Policy {
	if p.Timeout <= 0 {
		p.Timeout = DefaultTimeout
	}
	if p.Attempts <= 0 {
		p.Attempts = 4
	}
	if p.Backoff <= 0 {
		p.Backoff = 500 * time.Millisecond
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	return p
}

// Wait is the longest one wait may be silent: a third of the timeout.
func (p Policy) Wait() time.Duration {
	p = p.normal()
	return max(p.Timeout/3, time.Millisecond)
}

// maxResumes bounds how often one body is resumed in all, even when each
// resume brings some bytes: a server that cuts every answer short fails.
const maxResumes = 16

// Transport returns a round tripper that follows the policy, over a fresh
// http.Transport whose connect, TLS handshake and response-header waits
// are bounded by Wait.
func (p Policy) Transport() http.RoundTripper {
	p = p.normal()
	w := p.Wait()
	d := &net.Dialer{Timeout: w, KeepAlive: 30 * time.Second}
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   w,
		ResponseHeaderTimeout: w,
		ExpectContinueTimeout: time.Second,
	}
	return Wrap(p, base)
}

// Client returns an HTTP client over Transport. It sets no overall
// Client.Timeout: a large download that keeps arriving is not cut.
func (p Policy) Client() *http.Client {
	return &http.Client{Transport: p.Transport()}
}

// Wrap returns a round tripper that applies the policy's waits, retries
// and resumes on top of base (whose own timeouts it does not set).
func Wrap(p Policy, base http.RoundTripper) http.RoundTripper {
	return &transport{p: p.normal(), base: base}
}

type transport struct {
	p    Policy
	base http.RoundTripper
}

// TimeoutError is a server that said nothing for too long.
type TimeoutError struct {
	// Host is the server's host (and port, when the URL gives one).
	Host string
	// While is what repro was waiting for: "connecting", "in the TLS
	// handshake", "sending the request", "waiting for the response
	// headers", "reading the body".
	While string
	// Limit is the wait that ran out.
	Limit time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s said nothing for %s while %s", e.Host, e.Limit, e.While)
}

// Timeout reports true, as net.Error does for timeouts.
func (e *TimeoutError) Timeout() bool { return true }

// Error is a request that failed for good: its tries are spent, or what
// failed is not worth trying again.
type Error struct {
	// Host is the server's host.
	Host string
	// URL is the request's URL, without its query (which may hold
	// signatures); set when reading its body failed.
	URL string
	// Tries is how many times the request (or the body's range) was sent.
	Tries int
	// Limit is the policy's timeout, for the message.
	Limit time.Duration
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.URL != "" {
		fmt.Fprintf(&b, "reading %s: ", e.URL)
	}
	b.WriteString(e.Err.Error())
	var te *TimeoutError
	switch {
	case errors.As(e.Err, &te):
		fmt.Fprintf(&b, " (%d tries; a silent server gets %s in all)", e.Tries, e.Limit)
	case e.Tries > 1:
		fmt.Fprintf(&b, " (%d tries)", e.Tries)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Timeout reports whether the server fell silent.
func (e *Error) Timeout() bool {
	var te *TimeoutError
	return errors.As(e.Err, &te)
}

// HostOf returns the host of the first *Error or *TimeoutError in err's
// chain, and whether the server fell silent; "" when there is none.
func HostOf(err error) (host string, timedOut bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Host, e.Timeout()
	}
	var te *TimeoutError
	if errors.As(err, &te) {
		return te.Host, true
	}
	return "", false
}

// Retryable is the predicate for retries above this package (the upload
// retries of go-containerregistry): an error this package already gave up
// on, or a timeout (whose bound would stretch past the policy's), is not
// tried again; a reset or a cut stream is.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var e *Error
	var te *TimeoutError
	if errors.As(err, &e) || errors.As(err, &te) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return transient(err)
}

// transient reports whether a failed exchange may pass when tried again.
func transient(err error) bool {
	var te *TimeoutError
	if errors.As(err, &te) {
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return false // nothing listens: no amount of waiting helps soon
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func retryStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// state is one request's count of silence: the budget runs from the
// moment the server stopped answering and is dropped when it answers.
type state struct {
	p      Policy
	mu     sync.Mutex
	budget context.Context
	stop   context.CancelFunc
}

func newState(p Policy) *state { return &state{p: p} }

// failed starts the budget after a failure: the silence began when the
// wait that ran out began, else now.
func (s *state) failed(err error) {
	left := s.p.Timeout
	var te *TimeoutError
	if errors.As(err, &te) {
		left -= te.Limit
	}
	s.start(left)
}

// start begins the budget, with d left of it, unless one runs.
func (s *state) start(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.budget == nil {
		s.budget, s.stop = context.WithTimeout(context.Background(), max(d, 0))
	}
}

// progress drops the budget: the server answered.
func (s *state) progress() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		s.stop()
		s.budget, s.stop = nil, nil
	}
}

func (s *state) current() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.budget
}

func (s *state) expired() bool {
	b := s.current()
	return b != nil && errors.Is(b.Err(), context.DeadlineExceeded)
}

// sleep waits d, and reports false when the budget or ctx ran out first.
func (s *state) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	var spent <-chan struct{}
	if b := s.current(); b != nil {
		spent = b.Done()
	}
	select {
	case <-t.C:
		return true
	case <-spent:
		return false
	case <-ctx.Done():
		return false
	}
}

func (t *transport) backoff(try int) time.Duration {
	d := t.p.Backoff << min(try-1, 16)
	d = time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
	return min(d, t.p.Wait())
}

// retryAfter is the server's Retry-After in seconds, or -1.
func retryAfter(resp *http.Response) time.Duration {
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return -1 // an HTTP date: reading it would need the clock
	}
	return time.Duration(n) * time.Second
}

func replayable(r *http.Request) bool {
	return r.Body == nil || r.Body == http.NoBody || r.GetBody != nil
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	st := newState(t.p)
	replay := replayable(req)
	for try := 1; ; try++ {
		r := req
		if try > 1 {
			r = req.Clone(ctx)
			if req.Body != nil && req.Body != http.NoBody {
				b, err := req.GetBody()
				if err != nil {
					st.progress()
					return nil, err
				}
				r.Body = b
			}
		}
		resp, att, err := t.attempt(st, r)
		if err == nil && !retryStatus(resp.StatusCode) {
			st.progress()
			return t.wrapBody(req, resp, att, st), nil
		}
		if ctx.Err() != nil {
			st.progress()
			if resp != nil {
				resp.Body.Close()
				att.cancel(nil)
			}
			if err == nil {
				err = ctx.Err()
			}
			return nil, err
		}
		wait := t.backoff(try)
		st.failed(err)
		if err == nil {
			// A status worth trying again; keep the answer in case it is
			// the last.
			resp, err = buffered(resp, att)
			if err != nil {
				return nil, t.final(req, err, try, st)
			}
			if ra := retryAfter(resp); ra >= 0 {
				wait = ra
			}
			if !replay || try >= t.p.Attempts || wait > t.p.Wait() || st.expired() {
				st.progress()
				return resp, nil
			}
			t.p.Log.Warn("retrying", "host", req.URL.Host, "status", resp.Status, "wait", wait.String())
			if !st.sleep(ctx, wait) {
				st.progress()
				return resp, nil
			}
			continue
		}
		if !replay {
			st.progress()
			var te *TimeoutError
			if errors.As(err, &te) {
				return nil, &Error{Host: req.URL.Host, Tries: try, Limit: t.p.Timeout, Err: err}
			}
			return nil, err // the layer above may start the whole upload again
		}
		if !transient(err) || try >= t.p.Attempts || st.expired() {
			return nil, t.final(req, err, try, st)
		}
		t.p.Log.Warn("retrying", "host", req.URL.Host, "err", err.Error(), "wait", wait.String())
		if !st.sleep(ctx, wait) {
			if ctx.Err() != nil {
				st.progress()
				return nil, ctx.Err()
			}
			return nil, t.final(req, err, try, st)
		}
	}
}

func (t *transport) final(req *http.Request, err error, tries int, st *state) error {
	st.progress()
	if errors.Is(err, context.Canceled) && req.Context().Err() != nil {
		return err
	}
	return &Error{Host: req.URL.Host, Tries: tries, Limit: t.p.Timeout, Err: err}
}

// buffered reads a (short) error answer so that the connection can go
// and the answer still be returned.
func buffered(resp *http.Response, att *attempt) (*http.Response, error) {
	defer att.cancel(nil)
	defer resp.Body.Close()
	r := &watched{rc: resp.Body, wd: att.wd}
	b, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil {
		return nil, att.wd.translate(err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	return resp, nil
}

// attempt is one exchange: its context, which the watchdog cancels when
// the server is silent too long.
type attempt struct {
	cancel context.CancelCauseFunc
	wd     *watchdog
}

func (t *transport) attempt(st *state, r *http.Request) (*http.Response, *attempt, error) {
	actx, cancel := context.WithCancelCause(r.Context())
	wd := &watchdog{idle: t.p.Wait(), host: r.URL.Host, cancel: cancel, st: st, while: "connecting"}
	trace := &httptrace.ClientTrace{
		ConnectStart:      func(string, string) { wd.setWhile("connecting") },
		TLSHandshakeStart: func() { wd.setWhile("in the TLS handshake") },
		GotConn:           func(httptrace.GotConnInfo) { wd.setWhile("sending the request") },
		WroteRequest:      func(httptrace.WroteRequestInfo) { wd.setWhile("waiting for the response headers") },
	}
	r = r.WithContext(httptrace.WithClientTrace(actx, trace))
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &pausing{rc: r.Body, wd: wd}
	}
	wd.beginExchange()
	resp, err := t.base.RoundTrip(r)
	wd.endExchange()
	if err != nil {
		err = wd.translate(err)
		cancel(nil)
		return nil, nil, err
	}
	return resp, &attempt{cancel: cancel, wd: wd}, nil
}

// watchdog cancels an attempt when the server is silent for idle, or when
// the request's budget runs out while repro waits on it.
type watchdog struct {
	idle   time.Duration
	host   string
	cancel context.CancelCauseFunc
	st     *state

	mu       sync.Mutex
	while    string
	exchange bool // inside RoundTrip
	armed    bool
	gen      int
	timer    *time.Timer
	unbudget func() bool
	fired    *TimeoutError
}

func (w *watchdog) setWhile(s string) {
	w.mu.Lock()
	w.while = s
	w.mu.Unlock()
}

func (w *watchdog) arm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armLocked()
}

func (w *watchdog) armLocked() {
	if w.armed || w.fired != nil {
		return
	}
	w.armed = true
	w.gen++
	gen := w.gen
	w.timer = time.AfterFunc(w.idle, func() { w.fire(gen, w.idle) })
	if b := w.st.current(); b != nil {
		w.unbudget = context.AfterFunc(b, func() {
			if errors.Is(b.Err(), context.DeadlineExceeded) { // not dropped: spent
				w.fire(gen, w.st.p.Timeout)
			}
		})
	}
}

func (w *watchdog) disarm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.disarmLocked()
}

func (w *watchdog) disarmLocked() {
	if !w.armed {
		return
	}
	w.armed = false
	w.timer.Stop()
	if w.unbudget != nil {
		w.unbudget()
		w.unbudget = nil
	}
}

func (w *watchdog) beginExchange() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.exchange = true
	w.armLocked()
}

func (w *watchdog) endExchange() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.exchange = false
	w.disarmLocked()
}

// pause and resume stop the count while repro itself produces the
// request's body; they do nothing outside the exchange.
func (w *watchdog) pause() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.exchange {
		w.disarmLocked()
	}
}

func (w *watchdog) resume() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.exchange {
		w.armLocked()
	}
}

func (w *watchdog) fire(gen int, limit time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.armed || gen != w.gen || w.fired != nil {
		return
	}
	w.fired = &TimeoutError{Host: w.host, While: w.while, Limit: limit}
	w.cancel(w.fired)
}

// translate turns the error of a cancelled or timed-out exchange into
// the TimeoutError that says which wait ran out.
func (w *watchdog) translate(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fired != nil {
		return w.fired
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &TimeoutError{Host: w.host, While: w.while, Limit: w.idle}
	}
	return err
}

// pausing is a request body: reading it is repro's own time.
type pausing struct {
	rc io.ReadCloser
	wd *watchdog
}

func (p *pausing) Read(b []byte) (int, error) {
	p.wd.pause()
	defer p.wd.resume()
	return p.rc.Read(b)
}

func (p *pausing) Close() error { return p.rc.Close() }

// watched is a response body whose reads the watchdog times.
type watched struct {
	rc io.ReadCloser
	wd *watchdog
}

func (w *watched) Read(b []byte) (int, error) {
	w.wd.setWhile("reading the body")
	w.wd.arm()
	n, err := w.rc.Read(b)
	w.wd.disarm()
	if err != nil && err != io.EOF {
		err = w.wd.translate(err)
	}
	return n, err
}

func (w *watched) Close() error { return w.rc.Close() }

func (t *transport) wrapBody(req *http.Request, resp *http.Response, att *attempt, st *state) *http.Response {
	if resp.Body == nil || resp.Body == http.NoBody {
		att.cancel(nil)
		return resp
	}
	b := &body{t: t, req: req, st: st, cur: &watched{rc: resp.Body, wd: att.wd}, att: att, size: resp.ContentLength}
	b.resumable = req.Method == http.MethodGet && resp.StatusCode == http.StatusOK &&
		resp.ContentLength >= 0 && req.Header.Get("Range") == ""
	if et := resp.Header.Get("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
		b.validator = et
	}
	resp.Body = b
	return resp
}

// body is a response body that resumes where it was cut.
type body struct {
	t         *transport
	req       *http.Request
	st        *state
	cur       io.ReadCloser
	att       *attempt
	off, size int64
	resumable bool
	validator string
	resumes   int  // in all
	inRow     int  // without a byte between
	spent     bool // the budget ran out
	pending   error
	closed    bool
}

func (b *body) Read(p []byte) (int, error) {
	for {
		if b.closed {
			return 0, errors.New("read on a closed body")
		}
		if b.pending == nil {
			n, err := b.cur.Read(p)
			if n > 0 {
				b.off += int64(n)
				b.inRow = 0
				b.st.progress()
			}
			if err == nil {
				return n, nil
			}
			if err == io.EOF && (b.size < 0 || b.off == b.size) {
				return n, io.EOF
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			b.pending = err
			if n > 0 {
				return n, nil
			}
		}
		err := b.pending
		if b.req.Context().Err() != nil {
			return 0, err
		}
		tries := b.resumes + 1
		if !b.resumable || !transient(err) || b.spent || b.resumes >= maxResumes || b.inRow+1 >= b.t.p.Attempts {
			return 0, b.fail(err, tries)
		}
		b.resume()
	}
}

func (b *body) fail(err error, tries int) error {
	b.st.progress()
	if errors.Is(err, context.Canceled) && b.req.Context().Err() != nil {
		return err
	}
	u := *b.req.URL
	u.RawQuery, u.ForceQuery = "", false
	return &Error{Host: b.req.URL.Host, URL: u.String(), Tries: tries, Limit: b.t.p.Timeout, Err: err}
}

// resume asks for the rest of the body; a failure becomes pending.
func (b *body) resume() {
	err := b.pending
	b.resumes++
	b.inRow++
	b.st.failed(err)
	ctx := b.req.Context()
	b.t.p.Log.Warn("resuming", "url", b.req.URL.Redacted(), "at", b.off, "err", err.Error())
	b.cur.Close()
	b.att.cancel(nil)
	if !b.st.sleep(ctx, b.t.backoff(b.inRow)) {
		b.pending = err
		b.resumes--
		b.spent = true
		return
	}
	r := b.req.Clone(ctx)
	r.Header.Set("Range", fmt.Sprintf("bytes=%d-", b.off))
	if b.validator != "" {
		r.Header.Set("If-Range", b.validator)
	}
	resp, att, aerr := b.t.attempt(b.st, r)
	if aerr != nil {
		b.cur, b.att, b.pending = io.NopCloser(strings.NewReader("")), &attempt{cancel: func(error) {}, wd: &watchdog{}}, aerr
		return
	}
	b.att = att
	b.cur = &watched{rc: resp.Body, wd: att.wd}
	switch {
	case resp.StatusCode == http.StatusPartialContent:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != b.off {
			b.pending = fmt.Errorf("asked for the body from byte %d, the server sent range %q", b.off, resp.Header.Get("Content-Range"))
			b.resumable = false
			return
		}
	case resp.StatusCode == http.StatusOK:
		if resp.ContentLength != b.size {
			b.pending = fmt.Errorf("the body changed while it was read: %d bytes, then %d", b.size, resp.ContentLength)
			b.resumable = false
			return
		}
		// No ranges: read it again and skip what arrived already.
		if _, err := io.CopyN(io.Discard, b.cur, b.off); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			b.pending = err
			return
		}
	case retryStatus(resp.StatusCode):
		b.pending = fmt.Errorf("resuming: %s", resp.Status)
		return
	default:
		b.pending = fmt.Errorf("resuming: %s", resp.Status)
		b.resumable = false
		return
	}
	// Headers alone are no progress: a server that answers every resume
	// and then stalls is silent, and its budget runs on.
	b.pending = nil
}

// rangeStart is the first byte of a Content-Range "bytes A-B/N".
func rangeStart(v string) (int64, bool) {
	v, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !ok {
		return 0, false
	}
	a, _, ok := strings.Cut(v, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(a, 10, 64)
	return n, err == nil
}

func (b *body) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	err := b.cur.Close()
	b.att.cancel(nil)
	b.st.progress()
	return err
}
