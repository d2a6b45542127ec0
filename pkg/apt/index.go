package apt

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/ulikunitz/xz"

	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/fault"
)

// Source is one Debian-style repository: a URL holding dists/ and pool/.
type Source struct {
	URL        string
	Suites     []string
	Components []string
}

// Config says where packages come from and how they are laid out.
type Config struct {
	Sources []Source
	// Keyring holds the OpenPGP keys that must sign every InRelease
	// (see ReadKeyring for the accepted forms).
	Keyring []byte
	// Prefer names the provider to take for a virtual package.
	Prefer map[string]string
	// UsrMerge maps /bin, /sbin and /lib* into /usr (see Entries).
	UsrMerge bool
	// Arch is the Debian architecture (amd64, arm64, armhf, ...).
	Arch string
}

// SourceDigest pins what one suite of one source read: its InRelease
// and each Packages index, by SHA-256 (hex). The lock records these.
type SourceDigest struct {
	URL       string        `json:"url"`
	Suite     string        `json:"suite"`
	InRelease string        `json:"inRelease"`
	Indexes   []IndexDigest `json:"indexes"`
}

// IndexDigest is one Packages index read from a suite.
type IndexDigest struct {
	// Path is relative to dists/<suite>/, as the Release lists it
	// (main/binary-amd64/Packages.xz).
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// FetchOptions tune FetchIndex.
type FetchOptions struct {
	// Client fetches InRelease files that are not pinned; nil means
	// http.DefaultClient. Everything else goes through the cache's client.
	Client *http.Client
	// Pinned are the digests of an earlier lock. An InRelease pinned here
	// is read by its digest, through the cache (so offline when cached),
	// and must not have changed; the others are fetched fresh.
	Pinned []SourceDigest
	// Offline forbids fetching an InRelease that Pinned does not name.
	Offline bool
	// Now is the time at which keys, signatures and Valid-Until are
	// checked. nil leaves keys and signatures to go-crypto's default (the
	// current time) and skips Valid-Until, which this package cannot
	// check without a clock.
	Now func() time.Time
}

// Index is every package of a configuration's sources for one
// architecture (and all), with the digests of what was read.
type Index struct {
	Arch string
	// Packages are all stanzas read, in source, suite and component order.
	Packages []*Package
	// Digests are the InRelease and index digests, in source and suite order.
	Digests []SourceDigest

	byName     map[string][]*Package // every usable version, candidate first
	candidates map[string]*Package   // the candidate of each name (see Candidate)
	providers  map[string][]provision
	// ids number the names in the order apt's cache would create them:
	// the order they are first named, by a stanza or in its relations.
	ids map[string]int
}

// NewIndex builds an index from packages already read, for arch. Packages
// of other architectures are dropped; of several stanzas with the same
// name, version and architecture the first is kept.
func NewIndex(arch string, pkgs []*Package, digests []SourceDigest) *Index {
	idx := &Index{Arch: arch, Digests: digests, byName: map[string][]*Package{}, candidates: map[string]*Package{}, providers: map[string][]provision{}, ids: map[string]int{}}
	seen := map[string]bool{}
	for _, p := range pkgs {
		if p.Architecture != arch && p.Architecture != "all" {
			continue
		}
		idx.number(p)
		key := p.Name + "\x00" + p.Version + "\x00" + p.Architecture
		if seen[key] {
			continue
		}
		seen[key] = true
		idx.Packages = append(idx.Packages, p)
		idx.byName[p.Name] = append(idx.byName[p.Name], p)
	}
	for name, list := range idx.byName {
		// apt's policy: the highest pin priority first, then the highest
		// version; equal versions keep source order.
		sort.SliceStable(list, func(i, j int) bool {
			if pi, pj := list[i].pinPriority(), list[j].pinPriority(); pi != pj {
				return pi > pj
			}
			return compareVersions(list[i], list[j]) > 0
		})
		idx.candidates[name] = list[0]
	}
	// Provides come from candidates only: an older version's Provides
	// must not make a package look like a provider it no longer is.
	for _, name := range sortedKeys(idx.candidates) {
		c := idx.candidates[name]
		provs, err := c.provisions()
		if err != nil {
			continue // reported when the package is chosen
		}
		for _, pr := range provs {
			idx.providers[pr.name] = append(idx.providers[pr.name], pr)
		}
	}
	return idx
}

// number gives p's name, and each name its relations and Provides
// mention, the next number when it has none yet: the order in which apt's
// cache generator creates packages (the stanza, then Pre-Depends,
// Depends, Conflicts, Breaks, Recommends, Suggests, Replaces, Enhances,
// Provides).
func (idx *Index) number(p *Package) {
	add := func(name string) {
		if _, ok := idx.ids[name]; !ok && name != "" {
			idx.ids[name] = len(idx.ids)
		}
	}
	add(p.Name)
	for _, field := range []string{p.PreDepends, p.Depends, p.Conflicts, p.Breaks, p.Recommends, p.Suggests, p.Replaces, p.Enhances, p.Provides} {
		for _, item := range strings.FieldsFunc(field, func(r rune) bool { return r == ',' || r == '|' }) {
			name := strings.TrimSpace(item)
			if i := strings.IndexAny(name, " \t\n(:["); i >= 0 {
				name = name[:i]
			}
			add(name)
		}
	}
}

func (p *Package) pinPriority() int {
	if p.PinPriority == 0 {
		return 500
	}
	return p.PinPriority
}

// Candidate returns the version of name that resolution would take, as
// apt's policy ranks them: the highest pin priority across all sources
// and suites (a NotAutomatic suite ranks low), then the highest version.
func (idx *Index) Candidate(name string) (*Package, bool) {
	p, ok := idx.candidates[name]
	return p, ok
}

// ErrKeyring is the class of FetchIndex's errors that come from the
// keyring: it cannot be read, or no key of it signed an InRelease. A
// caller places them at its keyring setting (the spec's apt.keyring).
var ErrKeyring = errors.New("the apt keyring")

// keyringError is err, of the class ErrKeyring: its message is err's
// alone, and errors.Is finds both.
type keyringError struct{ err error }

func (e *keyringError) Error() string   { return e.err.Error() }
func (e *keyringError) Unwrap() []error { return []error{e.err, ErrKeyring} }

// FetchIndex reads, for every source and suite of cfg, dists/<suite>/InRelease,
// checks its signature against cfg.Keyring, and reads the Packages index
// of each component for cfg.Arch and all, checked against the InRelease.
// Everything read is stored in c by digest.
func FetchIndex(ctx context.Context, c *cache.Cache, cfg Config, opts FetchOptions) (*Index, error) {
	if cfg.Arch == "" {
		return nil, fault.Bad(errors.New("apt: no architecture given"))
	}
	if len(cfg.Sources) == 0 {
		return nil, fault.Bad(errors.New("apt: no sources given"))
	}
	keyring, err := ReadKeyring(cfg.Keyring)
	if err != nil {
		return nil, fault.Bad(&keyringError{fmt.Errorf("apt keyring: %w", err)})
	}
	client := opts.Client
	if client == nil {
		client = http.DefaultClient
	}
	var pkgs []*Package
	var digests []SourceDigest
	for _, src := range cfg.Sources {
		base := strings.TrimSuffix(src.URL, "/")
		if len(src.Suites) == 0 || len(src.Components) == 0 {
			return nil, fault.Bad(fmt.Errorf("apt source %s: give at least one suite and one component", src.URL))
		}
		for _, suite := range src.Suites {
			d := SourceDigest{URL: src.URL, Suite: suite}
			dists := base + "/dists/" + suite + "/"
			raw, sum, err := fetchInRelease(ctx, c, client, dists+"InRelease", pinnedInRelease(opts.Pinned, src.URL, suite), opts.Offline)
			if err != nil {
				return nil, err
			}
			rel, err := VerifyInRelease(raw, keyring, opts.Now)
			if err != nil {
				return nil, fault.Op(&keyringError{fmt.Errorf("%sInRelease: %w; check apt.keyring, or the repository has been tampered with", dists, err)})
			}
			d.InRelease = sum
			if len(rel.Architectures) > 0 && !contains(rel.Architectures, cfg.Arch) {
				return nil, fault.Bad(fmt.Errorf("%sInRelease: suite %s has no architecture %s (it has %s)", dists, suite, cfg.Arch, strings.Join(rel.Architectures, ", ")))
			}
			for _, comp := range src.Components {
				dirComp, ok := releaseComponent(rel, comp)
				if !ok {
					return nil, fault.Bad(fmt.Errorf("%sInRelease: suite %s has no component %s (it has %s)", dists, suite, comp, strings.Join(rel.Components, ", ")))
				}
				for _, arch := range []string{cfg.Arch, "all"} {
					if arch == "all" && len(rel.Architectures) > 0 && !contains(rel.Architectures, "all") {
						// apt reads binary-all only where the Release's
						// Architectures name all (bookworm-security lists a
						// binary-all its mirrors do not keep in step).
						continue
					}
					name, fd, ok := pickIndex(rel, dirComp, comp, arch)
					if !ok {
						if arch == "all" {
							continue // binary-all is optional
						}
						return nil, fault.Op(fmt.Errorf("%sInRelease lists no %s/binary-%s/Packages index", dists, comp, arch))
					}
					url := dists + name
					if rel.AcquireByHash {
						url = dists + path.Dir(name) + "/by-hash/SHA256/" + fd.SHA256
					}
					p, err := c.Fetch(ctx, url, fd.SHA256)
					if err != nil && rel.AcquireByHash && cache.IsNotFound(err) {
						// A mirror that has not caught up with by-hash yet:
						// apt falls back to the plain name, and so do we.
						p, err = c.Fetch(ctx, dists+name, fd.SHA256)
					}
					if err != nil {
						var mm *cache.MismatchError
						if errors.As(err, &mm) {
							return nil, fault.Op(fmt.Errorf("%s does not match the sha256 that its signed InRelease lists (a mirror caught mid-update, or tampering): %w", dists+name, err))
						}
						return nil, err
					}
					list, err := readPackagesFile(p, name)
					if err != nil {
						return nil, fault.Op(fmt.Errorf("%s: %w", dists+name, err))
					}
					prio := rel.PinPriority()
					for _, pkg := range list {
						pkg.Source, pkg.Suite, pkg.Component, pkg.PinPriority = src.URL, suite, comp, prio
						if arch == cfg.Arch || pkg.Architecture == "all" {
							pkgs = append(pkgs, pkg)
						}
					}
					d.Indexes = append(d.Indexes, IndexDigest{Path: name, SHA256: fd.SHA256, Size: fd.Size})
				}
			}
			digests = append(digests, d)
		}
	}
	return NewIndex(cfg.Arch, pkgs, digests), nil
}

// fetchInRelease returns an InRelease file and its digest. A pinned one
// comes through the cache by digest; an unpinned one is fetched into
// memory (its digest is not known before), then stored in the cache.
func fetchInRelease(ctx context.Context, c *cache.Cache, client *http.Client, url, pinned string, offline bool) ([]byte, string, error) {
	if pinned != "" {
		p, err := c.Fetch(ctx, url, pinned)
		if err != nil {
			return nil, "", err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, "", fault.Op(err)
		}
		return data, pinned, nil
	}
	if offline {
		return nil, "", fault.Op(fmt.Errorf("%s is not pinned by the lock, and %w it", url, cache.ErrOffline))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", fault.Bad(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", fault.Op(fmt.Errorf("fetching %s: %w", url, err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, "", fault.Bad(&SuiteNotFoundError{URL: url, Status: resp.Status})
	case resp.StatusCode != http.StatusOK:
		return nil, "", fault.Op(fmt.Errorf("fetching %s: %s", url, resp.Status))
	}
	const maxInRelease = 64 << 20
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxInRelease+1))
	if err != nil {
		return nil, "", fault.Op(fmt.Errorf("fetching %s: %w", url, err))
	}
	if len(data) > maxInRelease {
		return nil, "", fault.Op(fmt.Errorf("fetching %s: larger than %d bytes", url, maxInRelease))
	}
	h := sha256.Sum256(data)
	sum := hex.EncodeToString(h[:])
	if _, err := c.Blob(ctx, sum, url, func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}); err != nil {
		return nil, "", err
	}
	return data, sum, nil
}

// SuiteNotFoundError is an InRelease that the repository does not have:
// a suite misspelt, or one the repository does not carry (or, rarely, a
// suite without InRelease, which repro does not read: it must be signed).
type SuiteNotFoundError struct {
	URL, Status string
}

func (e *SuiteNotFoundError) Error() string {
	return fmt.Sprintf("fetching %s: %s: the repository has no such suite; check the suite's name (like bookworm, bookworm-updates, bookworm-security) and the source's url", e.URL, e.Status)
}

func pinnedInRelease(pins []SourceDigest, url, suite string) string {
	for _, p := range pins {
		if strings.TrimSuffix(p.URL, "/") == strings.TrimSuffix(url, "/") && p.Suite == suite {
			return p.InRelease
		}
	}
	return ""
}

// releaseComponent matches a component as the sources name it against
// the Release's Components. A security suite's Release says updates/main
// where apt's sources say main (apt accepts both: the last path element
// names the component too), so main matches updates/main and updates/main
// matches main. It returns the component as the Release names it.
func releaseComponent(rel *Release, comp string) (string, bool) {
	if len(rel.Components) == 0 || contains(rel.Components, comp) {
		return comp, true
	}
	for _, c := range rel.Components {
		if lastPathElem(c) == comp || c == lastPathElem(comp) {
			return c, true
		}
	}
	return "", false
}

// pickIndex chooses the Packages file of one component and architecture
// that the Release lists: xz, then gzip, then uncompressed, under the
// component as the sources name it, as the Release names it, or by its
// last path element (bookworm-security lists main/binary-amd64/Packages
// for its component updates/main).
func pickIndex(rel *Release, relComp, comp, arch string) (string, FileDigest, bool) {
	seen := map[string]bool{}
	for _, c := range []string{comp, relComp, lastPathElem(comp), lastPathElem(relComp)} {
		if seen[c] {
			continue
		}
		seen[c] = true
		dir := c + "/binary-" + arch + "/"
		for _, ext := range []string{".xz", ".gz", ""} {
			name := dir + "Packages" + ext
			if fd, ok := rel.SHA256[name]; ok {
				return name, fd, true
			}
		}
	}
	return "", FileDigest{}, false
}

// readPackagesFile parses a Packages index file, decompressed by its name.
func readPackagesFile(path, name string) ([]*Package, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReaderSize(f, 1<<20)
	switch {
	case strings.HasSuffix(name, ".xz"):
		xr, err := xz.NewReader(r)
		if err != nil {
			return nil, err
		}
		r = xr
	case strings.HasSuffix(name, ".gz"):
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	}
	return ParseStanzas(bufio.NewReaderSize(r, 1<<20))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func lastPathElem(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
