package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/reprobuild/repro/pkg/base"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/layercache"
	"github.com/reprobuild/repro/pkg/lock"
	"github.com/reprobuild/repro/pkg/spec"
	"github.com/reprobuild/repro/pkg/vcs"
)

// EpochSource says where a build's epoch came from; the provenance
// records it.
type EpochSource string

// The sources of an epoch, in the order Run consults them.
const (
	// EpochGiven is an epoch the caller fixed (Request.Epoch), such as
	// the one a provenance recorded.
	EpochGiven EpochSource = "given"
	// EpochGit is HEAD's committer time (the spec says epoch: git).
	EpochGit EpochSource = "git"
	// EpochSpec is the number of seconds the spec gives.
	EpochSpec EpochSource = "spec"
	// EpochEnv is $SOURCE_DATE_EPOCH, which the caller read.
	EpochEnv EpochSource = "SOURCE_DATE_EPOCH"
	// EpochDefault is 0: nothing gave an epoch.
	EpochDefault EpochSource = "default"
)

// Epoch is a build's epoch and where it came from.
type Epoch struct {
	Time   time.Time   `json:"time"`
	Source EpochSource `json:"source"`
}

// Request is everything a build of a spec file needs, the environment
// included, as values: Run reads no environment and no clock. Its
// exported fields that are plain data serialise as JSON (build --check
// hands its rebuild one).
type Request struct {
	// File is the spec file; its directory (or the parent its context: names) is the build context, and the
	// lock file (repro.lock.json) is read beside it.
	File string `json:"file"`
	// SourceDateEpoch is $SOURCE_DATE_EPOCH, read by the caller; nil when
	// unset. It is the epoch when the spec gives none.
	SourceDateEpoch *time.Time `json:"sourceDateEpoch,omitempty"`
	// Epoch, when set, is the epoch whatever the spec and SourceDateEpoch
	// say, with its source (a rebuild takes the one its provenance
	// recorded).
	Epoch *Epoch `json:"epoch,omitempty"`
	// Version is the .Version value; empty means git describe, else 0.0.0.
	Version string `json:"version,omitempty"`
	// Vars override the spec's vars.
	Vars map[string]string `json:"vars,omitempty"`
	// LayerEpochs, when set, are the layer epochs that git gave the build
	// being repeated (its Built.LayerEpochs, or its provenance's): git is
	// not asked for them. A rebuild given Values needs them when the spec
	// says epoch: git (build --check's copy holds no .git).
	LayerEpochs LayerEpochs `json:"layerEpochs,omitempty"`
	// Values, when set, are the template values whole: git is not asked
	// (a rebuild in a copy of the context that holds no .git), and
	// Version, Vars and the epoch's sources are not consulted.
	Values *spec.Values `json:"values,omitempty"`
	// Platforms narrows the spec's platforms; empty means all of them.
	Platforms []spec.Platform `json:"platforms,omitempty"`
	// Compression of the layers built; empty means gzip.
	Compression compress.Algorithm `json:"compression,omitempty"`
	// Format is the output format; 0 means the spec's format:, else the
	// one the lock records, else the newest (compress.Newest). Given, it
	// wins over both (--format, or a rebuild taking its provenance's).
	Format compress.Format `json:"format,omitempty"`
	// Locked fails the build when the lock does not pin everything the
	// spec names (ErrNotLocked).
	Locked bool `json:"locked,omitempty"`
	// AllowUnpinned accepts a base given by tag alone with no lock entry,
	// resolving the tag now (the build is then not reproducible).
	AllowUnpinned bool `json:"allowUnpinned,omitempty"`
	// ScanBase also runs the secret guard over the base's layers, as a
	// report in the log.
	ScanBase bool `json:"scanBase,omitempty"`
	// Insecure names registries spoken to over plain HTTP.
	Insecure []string `json:"insecure,omitempty"`
	// GoToolchain, when set, is the Go toolchain that go: entries compile
	// with (go1.26.8), whatever the lock pins (a rebuild takes the one its
	// provenance recorded).
	GoToolchain string `json:"goToolchain,omitempty"`
	// GoEnv is the environment the go command runs in for go: entries
	// (GoEnviron of the caller's): PATH finds it, and the caches and
	// module proxy come from it. The build sets the target and every
	// setting that shapes the binary itself.
	GoEnv []string `json:"-"`

	// Cache holds pulled blobs and fetched files; it must be set.
	Cache *cache.Cache `json:"-"`
	// Remote are the options for every registry request (credentials,
	// retries, user agent).
	Remote []remote.Option `json:"-"`
	// WorkDir receives the layer files (made when missing); the caller
	// removes it once the result is written.
	WorkDir string `json:"-"`
	// Log receives progress and warnings; nil discards.
	Log *slog.Logger `json:"-"`
	// Progress, when set, is told how many uncompressed bytes of a layer
	// have been written, as they are.
	Progress func(layer, platform string, written int64) `json:"-"`
	// LayerDone, when set, is told each layer's fate: LayerBuilt or
	// LayerCached.
	LayerDone func(layer, platform, status string) `json:"-"`
	// Layers is the layer cache; nil (verify, build --check, and every
	// caller that does not ask for it) builds every layer cold.
	Layers *layercache.Store `json:"-"`
	// Shared is the shared layer cache (--cache-repo), with Layers.
	Shared *layercache.Shared `json:"-"`
	// VerifyHits: see Options.VerifyHits.
	VerifyHits bool `json:"-"`
}

// Built is a finished build, not yet written anywhere: the image or
// index, and everything that went into it, resolved.
type Built struct {
	*Result
	// Spec is the spec as loaded.
	Spec *spec.Spec
	// Values are the template values the build used.
	Values spec.Values
	// Epoch is the build's epoch and its source.
	Epoch Epoch
	// Compression is the layers' compression.
	Compression compress.Algorithm
	// Format is the output format the layers were written in.
	Format compress.Format
	// Lock is the lock file read beside the spec; nil when there is none.
	Lock *lock.File
	// LockPath is where the lock file is, read or not.
	LockPath string
	// Base is the pinned base; nil for scratch.
	Base *Base
	// PartRefs name the per-platform images an index was assembled from
	// (Assemble: each Part.Ref), in Platforms' order; nil for a build.
	// The images themselves are the index's.
	PartRefs []string
	// GoToolchain is the Go toolchain the go: entries compiled with; empty
	// when there are none (or, unpinned, the go on PATH as it was).
	GoToolchain string
	// LayerFates are what became of each layer Run wrote (LayerBuilt,
	// LayerCached, LayerShared), in the order they finished.
	LayerFates []LayerFate
	// VCS is what git said about the context (empty when Request.Values
	// were given, or outside git).
	VCS vcs.Info
	// git says when the context's files and the spec's lines last
	// changed (format 2 with epoch: git, read from the clone).
	git *GitTimes

	workDir string
}

// Tags are the spec's tags (where a push sends the image), templates
// expanded with the build's values; none when the spec lists none. A tag
// that does not expand to a reference is bad input at its spec line.
func (b *Built) Tags() ([]string, error) {
	tags := []string{}
	for i, t := range b.Spec.Tags {
		field := fmt.Sprintf("tags[%d]", i)
		tag, err := b.Spec.Expand(field, t, b.Values)
		if err != nil {
			return nil, err
		}
		// Parsed as an output is, so that what passes here pushes.
		if _, err := imageref.Parse(tag); err != nil {
			from := ""
			if tag != t {
				from = fmt.Sprintf(" (from %q)", t)
			}
			return nil, fault.Bad(b.Spec.ErrorAt(field, "%q%s is not a registry reference; write host/repo:tag, the repository in lower case and the tag of letters, digits, _ . and - (up to 128), like registry.example.com/app:v1", tag, from))
		}
		tags = append(tags, tag)
	}
	return tags, nil
}

// LayerFate is what became of one layer of one platform in a build.
type LayerFate struct {
	Layer    string `json:"layer"`
	Platform string `json:"platform"`
	Status   string `json:"status"`
}

// Sentinel errors: errors.Is tells a caller which policy refused the
// build, so that it can name its own switch for it.
var (
	// ErrNotLocked: under Request.Locked, the lock does not pin
	// everything the spec names.
	ErrNotLocked = errors.New("the lock does not pin everything the spec names")
	// ErrUnpinned: the base names a tag that no lock entry pins, and
	// Request.AllowUnpinned is not set.
	ErrUnpinned = errors.New("the base is not pinned")
	// ErrPlatform is wrapped by the error of a requested platform that the
	// spec does not build.
	ErrPlatform = errors.New("a platform the spec does not build")
)

// NeedsLockError is the class of a refusal that locking the spec (Lock)
// resolves: the lock lacks, or holds no usable, pin for something the spec
// names. Spec is the spec file, as the request named it; a caller says how
// it locks one.
type NeedsLockError struct{ Spec string }

func (e *NeedsLockError) Error() string { return "the lock of " + e.Spec + " lacks a pin" }

// sentinelError is an error that reads as msg and is its sentinel (for
// errors.Is), whose own text it does not repeat.
type sentinelError struct {
	msg string
	is  error
}

func (e *sentinelError) Error() string { return e.msg }
func (e *sentinelError) Unwrap() error { return e.is }

// Run loads the spec file of req, resolves its template values, its lock
// and its base pin, and builds it.
func Run(ctx context.Context, req Request) (*Built, error) {
	log, alg, err := withDefaults("Run", req)
	if err != nil {
		return nil, err
	}
	if req.WorkDir == "" {
		return nil, errors.New("build.Run: the request has no WorkDir")
	}
	if err := os.MkdirAll(req.WorkDir, 0o700); err != nil {
		return nil, fault.Op(err)
	}
	b, err := prepare(ctx, req, alg, log)
	if err != nil {
		return nil, err
	}
	s := b.Spec
	var mu sync.Mutex // layers may finish on several goroutines
	done := func(layer, platform, status string) {
		mu.Lock()
		b.LayerFates = append(b.LayerFates, LayerFate{Layer: layer, Platform: platform, Status: status})
		mu.Unlock()
		if req.LayerDone != nil {
			req.LayerDone(layer, platform, status)
		}
	}
	b.Result, err = Build(ctx, s, Options{
		Progress:    req.Progress,
		LayerDone:   done,
		Layers:      req.Layers,
		Shared:      req.Shared,
		VerifyHits:  req.VerifyHits,
		Platforms:   req.Platforms,
		Values:      b.Values,
		Compression: alg,
		Format:      b.Format,
		Cache:       req.Cache,
		WorkDir:     req.WorkDir,
		Log:         log,
		Base:        b.Base,
		Lock:        b.Lock,
		ScanBase:    req.ScanBase,
		GoEnv:       req.GoEnv,
		GoToolchain: b.GoToolchain,
		Git:         b.git,
		LayerEpochs: req.LayerEpochs,
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// withDefaults checks the request has a cache and returns its logger
// (discarding when nil) and compression (gzip when empty); caller names
// the entry point in the error.
func withDefaults(caller string, req Request) (*slog.Logger, compress.Algorithm, error) {
	if req.Cache == nil {
		return nil, "", fmt.Errorf("build.%s: the request has no cache", caller)
	}
	log := req.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	alg := req.Compression
	if alg == "" {
		alg = compress.Gzip
	}
	return log, alg, nil
}

// prepare loads the spec file of req and resolves all that a build of it
// takes besides its layers: the template values, the lock (the stale-url
// warning, Locked) and the base pin (AllowUnpinned).
func prepare(ctx context.Context, req Request, alg compress.Algorithm, log *slog.Logger) (*Built, error) {
	s, err := spec.Load(req.File, spec.LoadOptions{Vars: req.Vars})
	if err != nil {
		return nil, err
	}
	b := &Built{Spec: s, Compression: alg, workDir: req.WorkDir}
	if req.Values != nil {
		b.Values = *req.Values
		b.Epoch = Epoch{Time: time.Unix(b.Values.Epoch, 0).UTC(), Source: EpochGiven}
		switch {
		case s.Epoch != nil && s.Epoch.Git:
			b.Epoch.Source = EpochGit
		case s.Epoch != nil:
			b.Epoch.Source = EpochSpec
		}
	} else {
		if b.VCS, err = vcs.Read(ctx, s.Dir); err != nil {
			return nil, fault.Op(err)
		}
		if err := markDirt(ctx, s, &b.VCS, log); err != nil {
			return nil, err
		}
		if b.Epoch, err = epochOf(s, req, b.VCS); err != nil {
			return nil, err
		}
		b.Values = templateValues(s, req, b.VCS, b.Epoch)
	}
	if req.Epoch != nil && req.Values != nil {
		b.Epoch = Epoch{Time: req.Epoch.Time.UTC(), Source: req.Epoch.Source}
		b.Values.Epoch, b.Values.Date = b.Epoch.Time.Unix(), spec.DateOf(b.Epoch.Time.Unix())
	}
	// Every unusable source at once, before a base or package is fetched.
	if err := CheckSources(s, req.Platforms, b.Values); err != nil {
		return nil, err
	}
	// A base that cannot be one is the spec's problem, whatever the lock
	// says: report it first.
	ref, err := SpecBase(s)
	if err != nil {
		return nil, err
	}
	b.LockPath = lock.PathFor(req.File)
	if b.Lock, err = lock.Read(b.LockPath); err != nil {
		return nil, err
	}
	if stale := lock.StaleURLs(s, b.Lock); len(stale) > 0 && !req.Locked {
		log.Warn("the lock pins other digests than the spec for some urls; the spec's pins are used; run repro lock to bring the lock up to date", "urls", strings.Join(stale, " "))
	}
	if req.Locked {
		if gaps := lock.Missing(s, b.Lock); len(gaps) > 0 {
			var what error
			if b.Lock == nil {
				what = fmt.Errorf("there is no %s, so nothing is pinned: %s", b.LockPath, strings.Join(lock.Unpinned(s, nil), ", "))
			} else {
				// A stale lock: each gap at the spec line that names it.
				var list spec.ErrorList
				for _, g := range gaps {
					list = append(list, s.ErrorAt(g.Field, "the lock does not pin %s", g.What))
				}
				list.Sort()
				what = list
			}
			return nil, fault.Bad(&classError{what, errors.Join(ErrNotLocked, &NeedsLockError{Spec: req.File})})
		}
	}
	if b.Format, err = formatOf(s, b.Lock, req); err != nil {
		return nil, err
	}
	// Layer epochs from git (format 2, epoch: git), unless the request
	// gives them (a rebuild of a recorded build).
	if b.Format != compress.Format1 && s.Epoch != nil && s.Epoch.Git && req.LayerEpochs == nil && b.VCS.Commit != "" {
		if b.git, err = ReadGitTimes(ctx, s, b.VCS, log); err != nil {
			return nil, err
		}
	}
	if b.GoToolchain, err = goToolchain(s, b.Lock, req, log); err != nil {
		return nil, err
	}
	if b.Base, err = pinBase(ctx, s, ref, b.Lock, req, log); err != nil {
		return nil, err
	}
	return b, nil
}

// markDirt warns when the build is made from a dirty tree: tracked files
// that differ from HEAD (vcs.Read found them), or files the spec reads
// that git neither tracks nor ignores (then info is marked dirty too), so
// that .GitCommit, .GitShortCommit and .Version end in -dirty and a
// pushed tag never names a clean commit for what it does not make.
// Sources given by template are not expanded here (their values depend
// on the dirt); the spec file and every other source are looked at.
func markDirt(ctx context.Context, s *spec.Spec, info *vcs.Info, log *slog.Logger) error {
	if info.Commit == "" {
		return nil
	}
	paths := []string{s.SpecPath()}
	for _, l := range s.Layers {
		for _, c := range l.Contents {
			if c.Source != "" && !strings.Contains(c.Source, "{{") {
				paths = append(paths, strings.TrimPrefix(filepath.ToSlash(filepath.Clean(c.Source)), "/"))
			}
		}
	}
	untracked, err := vcs.Untracked(ctx, s.Dir, paths)
	if err != nil {
		return fault.Op(err)
	}
	if info.Dirty {
		log.Warn("building from a dirty git tree: tracked files differ from HEAD; .GitCommit, .GitShortCommit and .Version end in "+vcs.DirtySuffix, "commit", info.Commit)
	}
	if len(untracked) > 0 {
		info.Dirty = true
		log.Warn("the spec reads files that git does not track; .GitCommit, .GitShortCommit and .Version end in "+vcs.DirtySuffix+"; commit them (or .gitignore them) for a clean build", "files", strings.Join(untracked, " "))
	}
	return nil
}

// formatOf is the build's output format: the request's (--format, or the
// one a provenance recorded), else the spec's format:, else the lock's
// (so that a later release, whose default is newer, still writes what the
// lock was made for), else the newest.
func formatOf(s *spec.Spec, lf *lock.File, req Request) (compress.Format, error) {
	switch {
	case req.Format != 0:
		if !req.Format.Known() {
			_, err := compress.ParseFormat(fmt.Sprint(int(req.Format)))
			return 0, fault.Bad(err)
		}
		return req.Format, nil
	case s.Format != 0:
		return compress.Format(s.Format), nil
	case lf != nil && lf.Format != 0:
		f := compress.Format(lf.Format)
		if !f.Known() {
			return 0, fault.Bad(fmt.Errorf("%s records output format %d, which this repro does not write (it writes %v); build with a newer repro, or update the lock", lock.PathFor(req.File), lf.Format, compress.Formats))
		}
		return f, nil
	}
	return compress.Newest, nil
}

// epochOf is the build's epoch: the one the request fixes, else the
// spec's (epoch: git or seconds), else $SOURCE_DATE_EPOCH, else 0.
func epochOf(s *spec.Spec, req Request, info vcs.Info) (Epoch, error) {
	switch {
	case req.Epoch != nil:
		return Epoch{Time: req.Epoch.Time.UTC(), Source: req.Epoch.Source}, nil
	case s.Epoch != nil && s.Epoch.Git:
		if info.Commit == "" {
			return Epoch{}, fault.Bad(s.ErrorAt("epoch", "epoch: git, but %s is not in a git repository with a commit; give a number of seconds instead", s.Dir))
		}
		return Epoch{Time: time.Unix(info.CommitTime, 0).UTC(), Source: EpochGit}, nil
	case s.Epoch != nil:
		return Epoch{Time: time.Unix(s.Epoch.Seconds, 0).UTC(), Source: EpochSpec}, nil
	case req.SourceDateEpoch != nil:
		return Epoch{Time: req.SourceDateEpoch.UTC(), Source: EpochEnv}, nil
	}
	return Epoch{Time: time.Unix(0, 0).UTC(), Source: EpochDefault}, nil
}

// templateValues are the values templates see: the version (the request's,
// else git describe, else 0.0.0), the commit, the epoch and the vars (the
// spec's, overridden by the request's).
func templateValues(s *spec.Spec, req Request, info vcs.Info, epoch Epoch) spec.Values {
	version := req.Version
	if version == "" {
		version = info.Version()
	}
	if version == "" {
		version = "0.0.0"
	}
	vars := map[string]string{}
	for k, v := range s.Vars {
		vars[k] = v
	}
	for k, v := range req.Vars {
		vars[k] = v
	}
	secs := epoch.Time.Unix()
	return spec.Values{
		Name: s.Name, Version: version,
		GitCommit: info.CommitOrUnknown(), GitShortCommit: info.ShortCommit(),
		Epoch: secs, Date: spec.DateOf(secs), Vars: vars,
	}
}

// SpecBase parses the spec's base; nil for scratch. An unparsable base is
// bad input at the spec's base: line.
func SpecBase(s *spec.Spec) (*base.Ref, error) {
	if s.Base == "" || s.Base == "scratch" {
		return nil, nil
	}
	ref, err := base.ParseRef(s.Base)
	if err != nil {
		return nil, fault.Bad(s.ErrorAt("base", "%v", err))
	}
	return &ref, nil
}

// pinBase pins parsed, the spec's base (nil for scratch): by the lock,
// else by the digest the spec gives, else (with AllowUnpinned only) by
// asking the registry now.
func pinBase(ctx context.Context, s *spec.Spec, parsed *base.Ref, lf *lock.File, req Request, log *slog.Logger) (*Base, error) {
	if parsed == nil {
		return nil, nil
	}
	ref := parsed.WithInsecure(req.Insecure).In(s.SpecDir)
	if p := ref.Path(); p != "" {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return nil, fault.Bad(s.ErrorAt("base", "%s does not exist (relative paths are from the spec's directory); build or copy the base there, or name another", p))
		}
	}
	r := base.NewResolver(req.Cache, log, req.Remote...)
	if lb, ok := lf.BasePin(s.Base); ok && (ref.Digest == "" || ref.Digest == lb.Digest) {
		pin, err := lb.Pin()
		if err != nil {
			return nil, err
		}
		if err := r.CheckPin(ctx, ref, pin); err != nil {
			if fault.KindOf(err) == fault.BadInput {
				return nil, fault.Bad(&classError{s.ErrorAt("base", "%v", err), base.ErrPinMismatch})
			}
			return nil, err
		}
		return &Base{Ref: ref, Pin: pin, Resolver: r}, nil
	}
	if ref.Digest == "" && !ref.Local() && !req.AllowUnpinned {
		return nil, fault.Bad(&classError{s.ErrorAt("base", "%s names a tag, which can move, and the lock does not pin it (lock it, or pin it as %s@sha256:…)", s.Base, s.Base), errors.Join(ErrUnpinned, &NeedsLockError{Spec: s.File})})
	}
	if ref.Digest == "" && !ref.Local() {
		log.Warn("the base is not pinned; resolving its tag now, so this build is not reproducible", "base", s.Base)
	}
	pin, err := r.Resolve(ctx, ref)
	if err != nil {
		if fault.KindOf(err) == fault.BadInput {
			// A base that is bad input (indexes nested too deep, a
			// layout holding no such image) is the spec's base: line's.
			return nil, fault.Bad(&classError{s.ErrorAt("base", "%v", err), err})
		}
		return nil, err
	}
	return &Base{Ref: ref, Pin: pin, Resolver: r}, nil
}

// classError is err, of the class (a sentinel) class: its message is
// err's alone, and errors.Is finds both.
type classError struct{ err, class error }

func (e *classError) Error() string   { return e.err.Error() }
func (e *classError) Unwrap() []error { return []error{e.err, e.class} }
