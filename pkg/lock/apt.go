package lock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/reprobuild/repro/pkg/apt"
	"github.com/reprobuild/repro/pkg/base"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/spec"
)

// Apt pins the Debian packages of one platform: what was read from each
// source (its InRelease and Packages indexes, by digest) and, for each
// layer with packages, every .deb of its closure.
type Apt struct {
	// Arch is the Debian architecture of the platform (amd64, armhf...).
	Arch    string             `json:"arch"`
	Sources []apt.SourceDigest `json:"sources"`
	// Prefer is the spec's apt.prefer when locked: it shapes the closure.
	Prefer map[string]string `json:"prefer,omitempty"`
	// Exclude is the spec's apt.exclude when locked.
	Exclude []string `json:"exclude,omitempty"`
	// Snapshot is where a build fetches a pinned .deb that its source
	// has deleted: the spec's apt.snapshot, with its timestamp, or the
	// time of locking when the spec gives none.
	Snapshot *apt.Snapshot `json:"snapshot,omitempty"`
	Layers   []AptLayer    `json:"layers"`
}

// AptLayer pins the packages of one layer.
type AptLayer struct {
	// Layer is the layer's index in the spec's layers, Name its name.
	Layer int    `json:"layer"`
	Name  string `json:"name"`
	// Packages are the layer's packages as the spec lists them, sorted:
	// a lock whose list differs does not pin the layer.
	Packages []string `json:"packages"`
	// Pins are the .debs to install, sorted by name: the closure less
	// what the base and earlier layers hold.
	Pins []apt.Pin `json:"pins"`
	// Choices are the providers taken for virtual packages with several,
	// as apt would take them (or as apt.prefer says).
	Choices []apt.Choice `json:"choices,omitempty"`
	// Excluded are the packages of apt.exclude that this layer's closure
	// would have held, with what depended on them.
	Excluded []apt.Exclusion `json:"excluded,omitempty"`
}

// Option tunes Resolve.
type Option func(*options)

type options struct {
	now    func() time.Time
	client *http.Client
	log    *slog.Logger
}

// WithClock gives the time at which keys, signatures and Valid-Until of
// freshly fetched InRelease files are checked (with --update, or when the
// lock pins none yet). Without it, Valid-Until is not checked.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets where the provider choices and exclusions are told.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithHTTPClient sets the client that fetches InRelease files that the
// lock does not pin.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// DebianArch is the Debian architecture of a platform.
func DebianArch(p spec.Platform) (string, error) {
	if p.OS != "linux" {
		return "", fmt.Errorf("%s: Debian packages exist for linux only", p)
	}
	switch p.Arch {
	case "amd64", "arm64", "s390x", "riscv64":
		return p.Arch, nil
	case "386":
		return "i386", nil
	case "ppc64le":
		return "ppc64el", nil
	case "mips64le":
		return "mips64el", nil
	case "arm":
		switch p.Variant {
		case "", "v7", "v8":
			return "armhf", nil
		case "v5", "v6":
			return "armel", nil
		}
	}
	return "", fmt.Errorf("%s: no Debian architecture matches it", p)
}

// AptLayer returns the pins of layer i of s for platform p, or why f
// does not pin them: the lock has no entry for the layer, or one for
// another package list or other sources.
func (f *File) AptLayer(s *spec.Spec, p spec.Platform, i int) (*AptLayer, string) {
	why := fmt.Sprintf("the packages of layers[%d] (%s) for %s", i, s.Layers[i].Name, p)
	if f == nil || s.Apt == nil {
		return nil, why
	}
	a, ok := f.Apt[p.String()]
	if !ok {
		return nil, why
	}
	if !sameSources(s.Apt, a.Sources) {
		return nil, why + " from the spec's apt sources"
	}
	if !maps.Equal(a.Prefer, s.Apt.Prefer) && (len(a.Prefer) > 0 || len(s.Apt.Prefer) > 0) {
		return nil, why + " with the spec's apt.prefer"
	}
	if !slices.Equal(a.Exclude, sortedCopy(s.Apt.Exclude)) && (len(a.Exclude) > 0 || len(s.Apt.Exclude) > 0) {
		return nil, why + " with the spec's apt.exclude"
	}
	want := sortedCopy(s.Layers[i].Packages)
	for k := range a.Layers {
		l := &a.Layers[k]
		if l.Layer == i {
			if l.Name != s.Layers[i].Name || !slices.Equal(l.Packages, want) {
				return nil, why + " as the spec lists them now"
			}
			return l, ""
		}
	}
	return nil, why
}

// sameSources reports whether the lock read exactly the suites and
// components of the spec's sources.
func sameSources(a *spec.Apt, got []apt.SourceDigest) bool {
	var want, have []string
	for _, src := range a.Sources {
		for _, suite := range src.Suites {
			for _, c := range src.Components {
				want = append(want, strings.TrimSuffix(src.URL, "/")+" "+suite+" "+lastElem(c))
			}
		}
	}
	for _, d := range got {
		comps := map[string]bool{}
		for _, idx := range d.Indexes {
			if c, _, ok := strings.Cut(idx.Path, "/binary-"); ok && !comps[lastElem(c)] {
				c = lastElem(c)
				comps[c] = true
				have = append(have, strings.TrimSuffix(d.URL, "/")+" "+d.Suite+" "+c)
			}
		}
	}
	sort.Strings(want)
	sort.Strings(have)
	return slices.Equal(want, have)
}

// lastElem is a component's last path element: updates/main and main
// name the same component of a security suite.
func lastElem(c string) string { return path.Base(c) }

func sortedCopy(list []string) []string {
	out := append([]string{}, list...)
	sort.Strings(out)
	return out
}

// resolveApt resolves the packages of every layer, for every platform of
// s, into f. The base (already pinned in f) gives what is installed to
// begin with; each layer's closure is installed for the layers after it.
func resolveApt(ctx context.Context, s *spec.Spec, old, f *File, update bool, r *base.Resolver, c *cache.Cache, insecure []string, o *options) ([]Change, error) {
	if !s.HasPackages() {
		return nil, nil
	}
	keyring, err := ReadContextFile(s.Dir, s.Apt.Keyring)
	if err != nil {
		return nil, fault.Bad(s.ErrorAt("apt.keyring", "%v", err))
	}
	var sources []apt.Source
	for _, src := range s.Apt.Sources {
		sources = append(sources, apt.Source{URL: src.URL, Suites: src.Suites, Components: src.Components})
	}
	var changes []Change
	f.Apt = map[string]Apt{}
	// InRelease files fetched fresh for one platform are read by digest
	// for the next, so that every platform sees the same repository state.
	var fresh []apt.SourceDigest
	for _, p := range s.Platforms {
		arch, err := DebianArch(p)
		if err != nil {
			return nil, fault.Bad(s.ErrorAt("platforms", "%v; remove the platform, or install its files with contents", err))
		}
		prev, had := old.Apt[p.String()]
		fo := apt.FetchOptions{Client: o.client, Offline: c.IsOffline()}
		if !update && had {
			fo.Pinned = prev.Sources
		} else {
			fo.Now = o.now
		}
		fo.Pinned = append(append([]apt.SourceDigest(nil), fo.Pinned...), fresh...)
		cfg := apt.Config{Sources: sources, Keyring: keyring, Prefer: s.Apt.Prefer, UsrMerge: s.UsrMerge(), Arch: arch}
		idx, err := apt.FetchIndex(ctx, c, cfg, fo)
		if err != nil {
			return nil, aptFetchError(s, err, !update && had)
		}
		fresh = append(fresh, idx.Digests...)
		installed, err := baseInstalled(ctx, s, f, r, insecure, p)
		if err != nil {
			return nil, err
		}
		a := Apt{Arch: arch, Sources: idx.Digests, Prefer: s.Apt.Prefer, Layers: []AptLayer{}}
		if len(s.Apt.Exclude) > 0 {
			a.Exclude = sortedCopy(s.Apt.Exclude)
		}
		if sn := s.Apt.Snapshot; sn != nil {
			a.Snapshot = &apt.Snapshot{URL: sn.URL, Timestamp: sn.Timestamp}
			switch {
			case a.Snapshot.Timestamp != "":
			case had && prev.Snapshot != nil && !update:
				a.Snapshot.Timestamp = prev.Snapshot.Timestamp
			case o.now != nil:
				a.Snapshot.Timestamp = o.now().UTC().Format("20060102T150405Z")
			default:
				return nil, fault.Bad(s.ErrorAt("apt.snapshot", "give a timestamp, like timestamp: 20250520T000000Z"))
			}
		}
		for i, l := range s.Layers {
			if len(l.Packages) == 0 {
				continue
			}
			sol, err := idx.Solve(l.Packages, installed, apt.ResolveOptions{Prefer: s.Apt.Prefer, Exclude: s.Apt.Exclude})
			if err != nil {
				return nil, fault.Bad(s.ErrorAt(fmt.Sprintf("layers[%d].packages", i), "%s: %v", p, err))
			}
			pins, err := apt.Pins(sol.Packages)
			if err != nil {
				return nil, fault.Bad(s.ErrorAt(fmt.Sprintf("layers[%d].packages", i), "%s: %v", p, err))
			}
			for _, c := range sol.Choices {
				o.log.Info(fmt.Sprintf("%s: %s is a virtual package; took %s of %s (%s)", l.Name, c.Virtual, c.Provider, strings.Join(c.Providers, ", "), c.Reason), "platform", p.String())
			}
			for _, x := range sol.Excluded {
				o.log.Warn(fmt.Sprintf("%s: left out %s (apt.exclude), which %s depend on", l.Name, x.Name, strings.Join(x.RequiredBy, ", ")), "platform", p.String())
			}
			installed = append(installed, sol.Packages...)
			a.Layers = append(a.Layers, AptLayer{Layer: i, Name: l.Name, Packages: sortedCopy(l.Packages), Pins: pins, Choices: sol.Choices, Excluded: sol.Excluded})
		}
		f.Apt[p.String()] = a
		changes = append(changes, aptChanges(p.String(), prev, a)...)
	}
	return changes, nil
}

// MovedError is a repository that has changed since the lock pinned its
// InRelease: the lock must be updated (repro lock --update) to build from
// what it holds now. Spec is the spec file whose lock it is.
type MovedError struct {
	Spec string
	Err  error
}

func (e *MovedError) Error() string {
	return e.Err.Error() + "\nthe repository has changed since the lock was written"
}

func (e *MovedError) Unwrap() error { return e.Err }

// aptFetchError explains a failure to read the indexes. A pinned InRelease
// that no longer matches means the repository moved on.
func aptFetchError(s *spec.Spec, err error, pinned bool) error {
	var mm *cache.MismatchError
	if pinned && errors.As(err, &mm) {
		return fault.Op(&MovedError{Spec: s.File, Err: err})
	}
	if errors.Is(err, apt.ErrKeyring) {
		return &located{at: s.ErrorAt("apt.keyring", "%v", err), err: err}
	}
	return err
}

// located is an error placed at a spec field, keeping its cause (and the
// cause's class, for the exit code).
type located struct {
	at  *spec.Error
	err error
}

func (e *located) Error() string   { return e.at.Error() }
func (e *located) Unwrap() []error { return []error{e.at, e.err} }

// baseInstalled reads the dpkg packages of the base for platform p.
func baseInstalled(ctx context.Context, s *spec.Spec, f *File, r *base.Resolver, insecure []string, p spec.Platform) ([]*apt.Package, error) {
	if s.Base == "" || s.Base == "scratch" {
		return nil, nil
	}
	ref, err := base.ParseRef(s.Base)
	if err != nil {
		return nil, fault.Bad(s.ErrorAt("base", "%v", err))
	}
	ref = ref.WithInsecure(insecure).In(s.SpecDir)
	bp, ok := f.BasePin(s.Base)
	if !ok {
		return nil, fault.Bad(s.ErrorAt("base", "%s is not pinned", s.Base))
	}
	pin, err := bp.Pin()
	if err != nil {
		return nil, err
	}
	img, err := r.Open(ctx, ref, pin, p.String())
	if err != nil {
		return nil, err
	}
	files, err := img.Files(ctx, IsDpkgStatus)
	if err != nil {
		return nil, err
	}
	readers := map[string]io.Reader{}
	for p, fl := range files {
		if fl.Type == '0' {
			readers[p] = bytes.NewReader(fl.Data)
		}
	}
	pkgs, err := apt.InstalledFrom(readers)
	if err != nil {
		return nil, fault.Bad(fmt.Errorf("the base's dpkg status: %w", err))
	}
	return pkgs, nil
}

// IsDpkgStatus reports whether an image path is dpkg's status file or a
// file of its status.d directory: what says which packages an image holds.
func IsDpkgStatus(p string) bool {
	return p == "/var/lib/dpkg/status" || path.Dir(p) == apt.StatusDir
}

// aptChanges lists what moved between two locks of one platform.
func aptChanges(plat string, prev, now Apt) []Change {
	var out []Change
	prevSrc := map[string]string{}
	for _, d := range prev.Sources {
		prevSrc[d.URL+" "+d.Suite] = d.InRelease
	}
	for _, d := range now.Sources {
		key := fmt.Sprintf("apt %s InRelease %s %s", plat, d.URL, d.Suite)
		switch was, ok := prevSrc[d.URL+" "+d.Suite]; {
		case !ok:
			out = append(out, Change{Kind: "added", Key: key, To: "sha256:" + d.InRelease, Index: true})
		case was != d.InRelease:
			out = append(out, Change{Kind: "updated", Key: key, From: "sha256:" + was, To: "sha256:" + d.InRelease, Index: true})
		}
	}
	pins := func(a Apt) map[string]apt.Pin {
		m := map[string]apt.Pin{}
		for _, l := range a.Layers {
			for _, p := range l.Pins {
				m[l.Name+" "+p.Name] = p
			}
		}
		return m
	}
	was, is := pins(prev), pins(now)
	for k, p := range is {
		layerName, _, _ := strings.Cut(k, " ")
		key := fmt.Sprintf("apt %s %s: %s", plat, layerName, p.Name)
		switch q, ok := was[k]; {
		case !ok:
			out = append(out, Change{Kind: "added", Key: key, To: p.Version, Suite: p.Suite})
		case q.Version != p.Version || q.SHA256 != p.SHA256:
			from, to := q.Version, p.Version
			if from == to {
				from, to = q.Version+" (sha256:"+q.SHA256+")", p.Version+" (sha256:"+p.SHA256+")"
			}
			out = append(out, Change{Kind: "updated", Key: key, From: from, To: to, Suite: p.Suite})
		}
	}
	for k, q := range was {
		if _, ok := is[k]; !ok {
			layerName, _, _ := strings.Cut(k, " ")
			out = append(out, Change{Kind: "removed", Key: fmt.Sprintf("apt %s %s: %s", plat, layerName, q.Name), From: q.Version})
		}
	}
	return out
}

// ReadContextFile reads rel, a slash-separated path relative to the build
// context dir, refusing one that leaves it by .. or through a symlink.
func ReadContextFile(dir, rel string) ([]byte, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	c := path.Clean("/" + rel)[1:]
	if rel == "" || c == "" || path.IsAbs(rel) || strings.HasPrefix(path.Clean(rel), "..") {
		return nil, fmt.Errorf("%q is not a file of the build context", rel)
	}
	full, err := filepath.EvalSymlinks(filepath.Join(root, filepath.FromSlash(c)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: no such file in the build context %s", rel, dir)
	}
	if err != nil {
		return nil, err
	}
	if r, err := filepath.Rel(root, full); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("%s resolves to %s, outside the build context %s", rel, full, dir)
	}
	return os.ReadFile(full)
}
