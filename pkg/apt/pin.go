package apt

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/fault"
)

// Pin is one .deb as the lock records it.
type Pin struct {
	Name         string   `json:"name"`
	Version      string   `json:"version"`
	Architecture string   `json:"architecture"`
	Filename     string   `json:"filename"` // relative to Source
	Size         int64    `json:"size"`
	SHA256       string   `json:"sha256"`
	RequiredBy   []string `json:"requiredBy,omitempty"`
	Source       string   `json:"source"` // the repository URL
	// Suite is the suite whose index listed the package (bookworm-security).
	Suite string `json:"suite,omitempty"`
}

// URL is where the .deb is fetched from: Source, then Filename with each
// path segment escaped (a file name may hold %, as in 1%3a2.0-1).
func (p Pin) URL() string {
	segs := strings.Split(p.Filename, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.TrimSuffix(p.Source, "/") + "/" + strings.Join(segs, "/")
}

// Pins returns the pins of resolved packages, sorted by name. A package
// without a SHA256 or Filename (an installed one) is an error.
func Pins(pkgs []*Package) ([]Pin, error) {
	out := make([]Pin, 0, len(pkgs))
	for _, p := range pkgs {
		if p.Filename == "" || p.Source == "" {
			return nil, fault.Bad(fmt.Errorf("package %s has no Filename in its index; it cannot be downloaded", p))
		}
		if !sha256Hex.MatchString(p.SHA256) {
			return nil, fault.Bad(fmt.Errorf("package %s has no SHA256 in its index; repro pins every .deb by its SHA-256", p))
		}
		out = append(out, Pin{
			Name: p.Name, Version: p.Version, Architecture: p.Architecture,
			Filename: p.Filename, Size: p.Size, SHA256: p.SHA256,
			RequiredBy: append([]string(nil), p.RequiredBy...), Source: p.Source, Suite: p.Suite,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// LocalDeb is a .deb on disk, with the pin it was fetched for (the pin
// may be zero for a .deb given directly).
type LocalDeb struct {
	Pin  Pin
	Path string
}

// Snapshot is a snapshot archive in snapshot.debian.org's layout, where a
// .deb that a mirror has deleted can still be fetched by its pinned name.
type Snapshot struct {
	// URL is the archive's base (http://snapshot.debian.org/archive).
	URL string `json:"url"`
	// Timestamp names the snapshot (20250520T000000Z).
	Timestamp string `json:"timestamp"`
}

// URLFor is where the snapshot keeps a pinned .deb:
// <URL>/<archive>/<Timestamp>/<Filename>, where <archive> is the last
// path element of the pin's source (debian, debian-security), or debian
// for a source at a host's root.
func (s Snapshot) URLFor(p Pin) string {
	archive := "debian"
	if u, err := url.Parse(p.Source); err == nil {
		if b := path.Base(strings.TrimSuffix(u.Path, "/")); b != "." && b != "/" && b != "" {
			archive = b
		}
	}
	segs := strings.Split(p.Filename, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.TrimSuffix(s.URL, "/") + "/" + url.PathEscape(archive) + "/" + url.PathEscape(s.Timestamp) + "/" + strings.Join(segs, "/")
}

// FetchOption tunes FetchPinned.
type FetchOption func(*fetchOptions)

type fetchOptions struct {
	snapshot *Snapshot
	log      *slog.Logger
}

// FromSnapshot makes FetchPinned fetch a .deb that its source no longer
// has (404 or 410) from the snapshot archive, by the same file name,
// checked against the same SHA-256.
func FromSnapshot(s Snapshot, log *slog.Logger) FetchOption {
	return func(o *fetchOptions) { o.snapshot, o.log = &s, log }
}

// FetchPinned fetches every pinned .deb through the cache, each verified
// against its pin's SHA-256 (and size). A mismatch is fault.Operational
// and leaves nothing in the cache.
func FetchPinned(ctx context.Context, c *cache.Cache, pins []Pin, opts ...FetchOption) ([]LocalDeb, error) {
	var o fetchOptions
	for _, opt := range opts {
		opt(&o)
	}
	out := make([]LocalDeb, 0, len(pins))
	for _, pin := range pins {
		if !sha256Hex.MatchString(pin.SHA256) {
			return nil, fault.Bad(fmt.Errorf("the lock pins %s with sha256 %q, which is not 64 hex digits", pin.Name, pin.SHA256))
		}
		p, err := c.Fetch(ctx, pin.URL(), pin.SHA256)
		if err != nil && o.snapshot != nil && cache.IsNotFound(err) {
			alt := o.snapshot.URLFor(pin)
			if o.log != nil {
				o.log.Info("the source no longer has the pinned .deb; fetching it from the snapshot", "package", pin.Name+"="+pin.Version, "url", alt)
			}
			var err2 error
			if p, err2 = c.Fetch(ctx, alt, pin.SHA256); err2 != nil {
				return nil, fmt.Errorf("%w; and from the snapshot: %w", err, err2)
			}
			err = nil
		}
		if err != nil {
			return nil, err
		}
		if pin.Size > 0 {
			fi, err := os.Stat(p)
			if err != nil {
				return nil, fault.Op(err)
			}
			if fi.Size() != pin.Size {
				return nil, fault.Op(fmt.Errorf("%s: %d bytes, but the lock says %d", pin.URL(), fi.Size(), pin.Size))
			}
		}
		out = append(out, LocalDeb{Pin: pin, Path: p})
	}
	return out, nil
}
