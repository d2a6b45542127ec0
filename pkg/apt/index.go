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

	byName     map[string][]*Package // every usable version, highest first
	candidates map[string]*Package   // the highest version of each name
	providers  map[string][]provision
}

// NewIndex builds an index from packages already read, for arch. Packages
// of other architectures are dropped; of several stanzas with the same
// name, version and architecture the first is kept.
func NewIndex(arch string, pkgs []*Package, digests []SourceDigest) *Index {
	idx := &Index{Arch: arch, Digests: digests, byName: map[string][]*Package{}, candidates: map[string]*Package{}, providers: map[string][]provision{}}
	seen := map[string]bool{}
	for _, p := range pkgs {
		if p.Architecture != arch && p.Architecture != "all" {
			continue
		}
		key := p.Name + "\x00" + p.Version + "\x00" + p.Architecture
		if seen[key] {
			continue
		}
		seen[key] = true
		idx.Packages = append(idx.Packages, p)
		idx.byName[p.Name] = append(idx.byName[p.Name], p)
	}
	for name, list := range idx.byName {
		// Highest version first; equal versions keep source order.
		sort.SliceStable(list, func(i, j int) bool { return compareVersions(list[i], list[j]) > 0 })
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

// Candidate returns the version of name that resolution would take: the
// highest across all sources and suites.
func (idx *Index) Candidate(name string) (*Package, bool) {
	p, ok := idx.candidates[name]
	return p, ok
}

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
		return nil, fault.Bad(fmt.Errorf("apt keyring: %w", err))
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
				return nil, fault.Op(fmt.Errorf("%sInRelease: %w; check apt.keyring, or the repository has been tampered with", dists, err))
			}
			d.InRelease = sum
			if len(rel.Architectures) > 0 && !contains(rel.Architectures, cfg.Arch) {
				return nil, fault.Bad(fmt.Errorf("%sInRelease: suite %s has no architecture %s (it has %s)", dists, suite, cfg.Arch, strings.Join(rel.Architectures, ", ")))
			}
			for _, comp := range src.Components {
				if len(rel.Components) > 0 && !contains(rel.Components, comp) && !contains(rel.Components, lastPathElem(comp)) {
					return nil, fault.Bad(fmt.Errorf("%sInRelease: suite %s has no component %s (it has %s)", dists, suite, comp, strings.Join(rel.Components, ", ")))
				}
				for _, arch := range []string{cfg.Arch, "all"} {
					dir := comp + "/binary-" + arch + "/"
					name, fd, ok := pickIndex(rel, dir)
					if !ok {
						if arch == "all" {
							continue // binary-all is optional
						}
						return nil, fault.Op(fmt.Errorf("%sInRelease lists no %sPackages index", dists, dir))
					}
					url := dists + name
					if rel.AcquireByHash {
						url = dists + dir + "by-hash/SHA256/" + fd.SHA256
					}
					p, err := c.Fetch(ctx, url, fd.SHA256)
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
					for _, pkg := range list {
						pkg.Source, pkg.Suite, pkg.Component = src.URL, suite, comp
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
		return nil, "", fault.Op(fmt.Errorf("%s is not pinned by the lock and --offline forbids fetching it; run repro lock without --offline", url))
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
	if resp.StatusCode != http.StatusOK {
		return nil, "", fault.Op(fmt.Errorf("fetching %s: %s (a suite without InRelease is not supported: it must be signed)", url, resp.Status))
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

func pinnedInRelease(pins []SourceDigest, url, suite string) string {
	for _, p := range pins {
		if strings.TrimSuffix(p.URL, "/") == strings.TrimSuffix(url, "/") && p.Suite == suite {
			return p.InRelease
		}
	}
	return ""
}

// pickIndex chooses the Packages file of dir that the Release lists:
// xz, then gzip, then uncompressed.
func pickIndex(rel *Release, dir string) (string, FileDigest, bool) {
	for _, ext := range []string{".xz", ".gz", ""} {
		name := dir + "Packages" + ext
		if fd, ok := rel.SHA256[name]; ok {
			return name, fd, true
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
