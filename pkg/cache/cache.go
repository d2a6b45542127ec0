package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/reprobuild/repro/pkg/fault"
)

// Cache is a content-addressed blob store in a directory.
type Cache struct {
	dir     string
	offline bool
	client  *http.Client
	log     *slog.Logger
}

// Option configures a Cache.
type Option func(*Cache)

// Offline makes Fetch use the cache alone.
func Offline(offline bool) Option { return func(c *Cache) { c.offline = offline } }

// WithClient sets the HTTP client used to fetch.
func WithClient(h *http.Client) Option { return func(c *Cache) { c.client = h } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(c *Cache) { c.log = l } }

// New returns a cache in dir, which is created when first written.
func New(dir string, opts ...Option) *Cache {
	c := &Cache{dir: dir, client: http.DefaultClient, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(c)
	}
	return c
}

// IsOffline reports whether the cache may fetch nothing.
func (c *Cache) IsOffline() bool { return c.offline }

// Dir is the cache's directory.
func (c *Cache) Dir() string { return c.dir }

func (c *Cache) path(hexDigest string) string {
	return filepath.Join(c.dir, "blobs", "sha256", hexDigest)
}

// MismatchError is content whose digest is not the one pinned.
type MismatchError struct {
	Source    string
	Want, Got string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s has sha256 %s, but it is pinned as %s; if the new content is expected, update the pin", e.Source, e.Got, e.Want)
}

// CorruptError is a fetched blob whose bytes do not hash to the digest
// it was asked for by: the source serves corrupt data (a pin that
// disagrees is a MismatchError).
type CorruptError struct {
	Source    string
	Want, Got string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s: its bytes hash to sha256:%s, not the digest it is named by; the registry serves corrupt data", e.Source, e.Got)
}

// ggcrMismatch begins the error of go-containerregistry's verifying
// reader (remote layers' Compressed) at a digest mismatch; its type is
// internal to that module, so only its text can be matched.
const ggcrMismatch = "error verifying sha256 checksum"

// StatusError is an HTTP answer other than 200 OK to a fetch.
type StatusError struct {
	URL    string
	Code   int
	Status string
}

func (e *StatusError) Error() string { return fmt.Sprintf("fetching %s: %s", e.URL, e.Status) }

// IsNotFound reports whether err is a fetch the server answered with 404
// Not Found or 410 Gone.
func IsNotFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && (se.Code == http.StatusNotFound || se.Code == http.StatusGone)
}

// Fetch returns the path of a verified cached file with the given SHA-256,
// downloading it from url first when it is not cached.
func (c *Cache) Fetch(ctx context.Context, url, sha256Hex string) (string, error) {
	return c.Blob(ctx, sha256Hex, url, func(ctx context.Context) (io.ReadCloser, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, fault.Bad(err)
		}
		resp, err := c.client.Do(req)
		if err != nil {
			return nil, fault.Op(fmt.Errorf("fetching %s: %w", url, err))
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fault.Op(&StatusError{URL: url, Code: resp.StatusCode, Status: resp.Status})
		}
		return resp.Body, nil
	})
}

// ErrOffline is wrapped by the errors of a fetch that offline use forbids
// (a blob not in an offline cache, an index the lock does not pin). Its
// callers say how to fetch it (package cmd: run once without --offline).
var ErrOffline = errors.New("offline use forbids fetching")

// Blob returns the path of the verified cached blob with the given
// SHA-256. When it is not cached, fetch is called for its bytes (unless
// the cache is offline), which are verified and stored. what names the
// blob in messages.
func (c *Cache) Blob(ctx context.Context, sha256Hex, what string, fetch func(context.Context) (io.ReadCloser, error)) (string, error) {
	p := c.path(sha256Hex)
	if err := verifyFile(p, sha256Hex); err == nil {
		c.log.Debug("cache hit", "blob", what, "sha256", sha256Hex)
		return p, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		c.log.Warn("dropping corrupt cache entry", "path", p, "err", err)
		os.Remove(p)
	}
	if c.offline {
		return "", fault.Op(fmt.Errorf("%s (sha256:%s) is not in the cache %s, and %w it", what, sha256Hex, c.dir, ErrOffline))
	}
	c.log.Info("fetching", "blob", what)
	rc, err := fetch(ctx)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	got, err := c.put(rc, sha256Hex)
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			ce.Source = what
			return "", fault.Op(ce)
		}
		var m *MismatchError
		if errors.As(err, &m) {
			m.Source = what
		}
		return "", fault.Op(fmt.Errorf("fetching %s: %w", what, err))
	}
	return got, nil
}

// Lookup returns the path of the verified cached blob, or fs.ErrNotExist.
func (c *Cache) Lookup(sha256Hex string) (string, error) {
	p := c.path(sha256Hex)
	if err := verifyFile(p, sha256Hex); err != nil {
		return "", err
	}
	return p, nil
}

// put stores r under its digest, which must be want.
func (c *Cache) put(r io.Reader, want string) (string, error) {
	dir := filepath.Dir(c.path(want))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name()) // after a successful rename this fails harmlessly
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), r); err != nil {
		f.Close()
		if strings.HasPrefix(err.Error(), ggcrMismatch) {
			// io.Copy wrote the last bytes before it returned the
			// error: h holds them all.
			return "", &CorruptError{Want: want, Got: hex.EncodeToString(h.Sum(nil))}
		}
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return "", &MismatchError{Want: want, Got: got}
	}
	p := c.path(want)
	if err := os.Rename(f.Name(), p); err != nil {
		return "", err
	}
	return p, nil
}

func verifyFile(p, want string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return &MismatchError{Source: p, Want: want, Got: got}
	}
	return nil
}
