package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/pkg/accounts"
	"github.com/reprobuild/repro/pkg/base"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/layer"
	"github.com/reprobuild/repro/pkg/layercache"
	"github.com/reprobuild/repro/pkg/lock"
	"github.com/reprobuild/repro/pkg/secrets"
	"github.com/reprobuild/repro/pkg/spec"
)

// Options are a build's inputs besides the spec.
type Options struct {
	// Platforms narrows the spec's platforms; empty means all of them.
	Platforms []spec.Platform
	// Values are the template values; Values.Epoch is the build's epoch.
	Values spec.Values
	// Compression of the layers built.
	Compression compress.Algorithm
	// Format is the output format; 0 means the newest (compress.Newest).
	Format compress.Format
	// Cache holds files fetched from URLs.
	Cache *cache.Cache
	// WorkDir receives the layer files; the caller removes it.
	WorkDir string
	// Log receives progress; nil discards.
	Log *slog.Logger
	// Progress, when set, is told how many uncompressed bytes of a layer
	// have been written, as they are.
	Progress func(layer, platform string, written int64)
	// LayerDone, when set, is told each layer's fate: LayerBuilt or
	// LayerCached.
	LayerDone func(layer, platform, status string)
	// Layers is the layer cache; nil builds every layer cold (verify and
	// build --check leave it nil: their proofs must rebuild).
	Layers *layercache.Store
	// Shared is the shared layer cache in a registry (--cache-repo),
	// with Layers: a layer the local store lacks is looked up there.
	Shared *layercache.Shared
	// VerifyHits builds every layer the cache gives again cold and
	// compares (--cache-verify, a reproducibility canary): a difference
	// fails the build.
	VerifyHits bool
	// Base is the spec's base, pinned; nil for scratch.
	Base *Base
	// Lock pins the .debs of layers with packages; a layer that it does
	// not pin is refused (bad input: run repro lock).
	Lock *lock.File
	// ScanBase also runs the secret guard over the base's layers, as a
	// report only: what it finds is logged, never blocking.
	ScanBase bool
	// GoEnv is the go command's environment for go: entries (GoEnviron).
	GoEnv []string
	// GoToolchain is the pinned Go toolchain (go1.26.8); empty runs the
	// go on PATH as it is.
	GoToolchain string
	// Git says when the context's files and the spec's lines last
	// changed, for the layer epochs of format 2 with epoch: git
	// (ReadGitTimes); nil outside git, or when LayerEpochs are given.
	Git *GitTimes
	// Jobs is how many layers are written at once (their tar and
	// compression; everything else about a layer is done in the spec's
	// order): 0 is GOMAXPROCS, at most 3; 1 writes them one after the
	// other. It changes no byte of the result (see pending.go).
	Jobs int
	// LayerEpochs, when set, are the layer epochs that git gave the build
	// being repeated (its Result.LayerEpochs): they are used instead of
	// Git's.
	LayerEpochs LayerEpochs
}

// Base is a pinned base and the resolver that opens it.
type Base struct {
	Ref      base.Ref
	Pin      base.Pin
	Resolver *base.Resolver
}

// Result is a built image (one platform) or index (several).
type Result struct {
	// Artifact is the image when one platform was built, the index when
	// several were; its Descriptor is the image's or the index's. It is
	// what the build made: Manifests reads the per-platform images from
	// it, and Images and PlatformImages open them.
	imageref.Artifact
	// Platforms are the platforms built, in the spec's order, which is
	// the index's.
	Platforms []spec.Platform
	// GoPrograms are, by platform, what the go: entries compiled, as
	// their build info says, in the order compiled; nil without go:
	// entries.
	GoPrograms map[spec.Platform][]GoProgram
	// LayerEpochs are the layer epochs that git gave (format 2 with
	// epoch: git; else nil): a rebuild without git is given them.
	LayerEpochs LayerEpochs

	// manifests memoises Manifests (the provenance, build's --json and
	// --metadata-file, and verify each ask for them).
	manifestsOnce sync.Once
	manifests     []Manifest
	manifestsErr  error
}

// Manifest is one platform's image of a Result, as its index lists it
// (digest, size and media type; the image's own descriptor when one
// platform was built).
type Manifest struct {
	Platform spec.Platform
	v1.Descriptor
}

// Manifests are r's images, one per platform, in Platforms' order. They
// are read once, on the first call (Artifact and Platforms do not change
// once Build has returned r); later calls, from any goroutine, get a copy
// of that answer, error and all.
func (r *Result) Manifests() ([]Manifest, error) {
	r.manifestsOnce.Do(func() { r.manifests, r.manifestsErr = r.readManifests() })
	if r.manifestsErr != nil {
		return nil, r.manifestsErr
	}
	return slices.Clone(r.manifests), nil
}

func (r *Result) readManifests() ([]Manifest, error) {
	all, err := r.Images()
	if err != nil {
		return nil, err
	}
	if len(all) != len(r.Platforms) {
		return nil, fault.Op(fmt.Errorf("the result holds %d images for %d platforms", len(all), len(r.Platforms)))
	}
	out := make([]Manifest, len(all))
	for i, ii := range all {
		out[i] = Manifest{Platform: r.Platforms[i], Descriptor: ii.Descriptor}
	}
	return out, nil
}

// Build builds s.
func Build(ctx context.Context, s *spec.Spec, opts Options) (*Result, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Compression == "" {
		opts.Compression = compress.Gzip
	}
	if opts.Format == 0 {
		opts.Format = compress.Newest
	}
	if !opts.Format.Known() {
		return nil, fault.Bad(fmt.Errorf("unknown output format %d; this repro writes %v", int(opts.Format), compress.Formats))
	}
	plats, err := selectPlatforms(s, opts.Platforms)
	if err != nil {
		return nil, err
	}
	bctx, err := layer.OpenSourceDir(s.Dir)
	if err != nil {
		return nil, fault.Bad(err)
	}
	guard, err := newGuard(s)
	if err != nil {
		return nil, err
	}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = defaultJobs()
	}
	b := &builder{s: s, opts: opts, srcDir: bctx, shared: map[int]*pending{}, sharedEpoch: map[int]int64{}, epochs: LayerEpochs{}, guard: guard, added: map[string]int{}, reported: map[string]bool{}, bases: map[string]map[string]*base.File{}, mounts: map[string]name.Digest{}, jobs: make(chan struct{}, jobs), scanLocks: map[string]*sync.Mutex{}, inflight: map[layercache.Key]*pending{}}
	b.notContext = notContextDirs(opts)
	if err := checkSources(s, bctx, plats, opts.Values); err != nil {
		return nil, err
	}
	if opts.Layers != nil {
		b.stat = layercache.OpenStatCache(opts.Layers.StatFile(bctx.Root()), opts.Layers.Now())
		defer b.saveStat()
	}
	// A failed build stops the layers still being written, and returns
	// once they have stopped: the caller removes the work dir.
	defer b.writers.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := &Result{}
	if b.gitEpochs() {
		res.LayerEpochs = b.epochs
	}
	res.Platforms = plats
	// Every platform's layers are prepared in order, their writes started;
	// then awaited in order (their statuses reported so); then each image
	// is put together. The secret guard judges once every layer is
	// written, so what it reports does not depend on which write ended
	// first.
	preps := make([]*prepared, len(plats))
	for i, p := range plats {
		if preps[i], err = b.prepare(ctx, p); err != nil {
			return nil, b.firstError(preps[:i+1], err)
		}
		if len(preps[i].goProgs) > 0 {
			if res.GoPrograms == nil {
				res.GoPrograms = map[spec.Platform][]GoProgram{}
			}
			res.GoPrograms[p] = preps[i].goProgs
		}
	}
	for _, pr := range preps {
		if err := b.awaitAll(pr); err != nil {
			return nil, err
		}
	}
	imgs := make([]v1.Image, len(plats))
	for i, pr := range preps {
		if imgs[i], err = b.finish(pr); err != nil {
			return nil, err
		}
	}
	if len(imgs) == 1 {
		res.Artifact, err = imageref.ImageArtifact(imgs[0])
		return res, err
	}
	idx, err := b.index(plats, imgs)
	if err != nil {
		return nil, err
	}
	res.Artifact, err = imageref.IndexArtifact(idx)
	return res, err
}

func selectPlatforms(s *spec.Spec, want []spec.Platform) ([]spec.Platform, error) {
	if len(want) == 0 {
		return s.Platforms, nil
	}
	var out []spec.Platform
	for _, w := range want {
		found := false
		for _, p := range s.Platforms {
			if p == w {
				found = true
			}
		}
		if !found {
			names := make([]string, len(s.Platforms))
			for i, p := range s.Platforms {
				names[i] = p.String()
			}
			return nil, fault.Bad(&sentinelError{fmt.Sprintf("%s: the spec %s builds only %s; add it to platforms or pick one of those", w, s.File, strings.Join(names, ", ")), ErrPlatform})
		}
	}
	// Keep the spec's order, whatever the flag's order.
	for _, p := range s.Platforms {
		for _, w := range want {
			if p == w {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

type builder struct {
	s      *spec.Spec
	opts   Options
	srcDir *layer.SourceDir
	shared map[int]*pending // layers that no platform template changes
	// jobs holds a slot for each layer being written; writers counts
	// the goroutines writing them (see spawn).
	jobs    chan struct{}
	writers sync.WaitGroup
	// scanLocks, by layer name (see scanLock).
	scanLocks map[string]*sync.Mutex
	// inflight are the layers being written, by key (see waitSame).
	inflight map[layercache.Key]*pending
	guard    *secrets.Guard
	added    map[string]int // path -> the first layer that adds it, for removal warnings
	// reported holds the findings already reported (builds of several
	// platforms share layers and config).
	reported map[string]bool
	// bases holds, by platform, the files of the base that packages and
	// accounts need (see baseFileWanted).
	bases map[string]map[string]*base.File
	// goProgs are the programs go: entries compiled for the platform
	// being built.
	goProgs []GoProgram
	// stat is the context's stat cache, with Options.Layers.
	stat *layercache.StatCache
	// mounts are the layers fetched from the shared cache, by digest:
	// a push to its registry mounts them from there.
	mounts map[string]name.Digest
	// sharedEpoch is the epoch of each layer in shared.
	sharedEpoch map[int]int64
	// epochs are the layer epochs that git gave (gitEpochs), as used;
	// built holds those of the layers built for the platform being built.
	epochs       LayerEpochs
	built        []int64
	warnedEpochs bool
	// notContext are the directories whose files are no sources of the
	// context (notContextDirs), for contextEpoch.
	notContext []string
}

func (b *builder) epoch() time.Time { return time.Unix(b.opts.Values.Epoch, 0).UTC() }

// prepared is one platform's image before it is put together: its
// layers, some perhaps still being written.
type prepared struct {
	p       spec.Platform
	bi      *base.Image
	layers  []*pending
	files   []*layer.File // layers, awaited
	history []ocispec.History
	goProgs []GoProgram
}

// prepare does platform p's layers in order, their writes started. On
// an error, pr holds the layers prepared before it.
func (b *builder) prepare(ctx context.Context, p spec.Platform) (*prepared, error) {
	pr := &prepared{p: p}
	if b.opts.Base != nil {
		var err error
		pr.bi, err = b.opts.Base.Resolver.Open(ctx, b.opts.Base.Ref, b.opts.Base.Pin, p.String())
		if err != nil {
			if k := fault.KindOf(err); k == fault.BadInput {
				return pr, fault.Bad(&classError{b.s.ErrorAt("base", "%v", err), err}) // err's class (a layer too large) stays
			}
			return pr, err
		}
	}
	bi := pr.bi
	if bi != nil && b.opts.ScanBase {
		if err := b.scanBase(ctx, bi, p); err != nil {
			return pr, err
		}
	}
	b.built = nil
	created := b.epoch()
	for i := range b.s.Layers {
		l, err := b.layer(ctx, i, p, bi)
		if err != nil {
			return pr, err
		}
		pr.layers = append(pr.layers, l)
		pr.history = append(pr.history, ocispec.History{
			Created:   &created,
			CreatedBy: fmt.Sprintf("repro: layer %q", b.s.Layers[i].Name),
			Comment:   b.opts.Format.String(),
		})
	}
	if b.s.Accounts != nil {
		l, err := b.accountsLayer(ctx, p, bi)
		if err != nil {
			return pr, err
		}
		pr.layers = append(pr.layers, l)
		pr.history = append(pr.history, ocispec.History{
			Created:   &created,
			CreatedBy: "repro: accounts",
			Comment:   b.opts.Format.String(),
		})
	}
	if b.s.Systemd != nil {
		// The systemd layer reads the layers below it: they are
		// awaited first.
		if err := b.awaitAll(pr); err != nil {
			return pr, err
		}
		var below []v1.Layer
		if bi != nil {
			below = slices.Clone(bi.Layers)
		}
		for _, l := range pr.files {
			below = append(below, l)
		}
		l, err := b.systemdLayer(ctx, p, below)
		if err != nil {
			return pr, err
		}
		pr.layers = append(pr.layers, l)
		pr.history = append(pr.history, ocispec.History{Created: &created, CreatedBy: "repro: systemd", Comment: b.opts.Format.String()})
	}
	pr.goProgs, b.goProgs = b.goProgs, nil
	return pr, nil
}

// firstError is the error of a build whose preparing of a layer failed
// with err: a serial build's, that of the first layer before it, in the
// spec's order, whose write failed, else err.
func (b *builder) firstError(preps []*prepared, err error) error {
	for _, pr := range preps {
		if e := b.awaitAll(pr); e != nil {
			return e
		}
	}
	return err
}

// awaitAll waits for pr's layers, in order.
func (b *builder) awaitAll(pr *prepared) error {
	for _, pd := range pr.layers[len(pr.files):] {
		l, err := b.await(pd)
		if err != nil {
			return err
		}
		pr.files = append(pr.files, l)
	}
	return nil
}

// finish puts pr's image together, its layers awaited.
func (b *builder) finish(pr *prepared) (v1.Image, error) {
	p, bi, layers := pr.p, pr.bi, pr.files
	cfg, err := b.config(p, bi, layers, pr.history)
	if err != nil {
		return nil, err
	}
	ann, err := b.annotations()
	if err != nil {
		return nil, err
	}
	if err := b.checkSecrets(cfg, ann); err != nil {
		return nil, err
	}
	var all []v1.Layer
	if bi != nil {
		all = append(all, bi.Layers...)
		ann[ocispec.AnnotationBaseImageDigest] = bi.ManifestDigest.String()
		if n := b.opts.Base.Ref.Name(); n != "" {
			ann[ocispec.AnnotationBaseImageName] = n
		}
	}
	for _, l := range layers {
		d, _ := l.Digest()
		if ref, ok := b.mounts[d.String()]; ok {
			all = append(all, &remote.MountableLayer{Layer: l, Reference: ref})
			continue
		}
		all = append(all, l)
	}
	return newImage(cfg, all, ann)
}

// CheckSources finds every source of s's context that cannot be used, for
// each of platforms (nil: the spec's), and reports them all at once, each
// at its spec line, as bad input: a missing file, a symlink loop, a link
// out of the context, a FIFO, socket or device. It reads no file and
// walks no directory. Build calls it before anything is pulled, fetched or
// downloaded; a caller that pins the base first calls it before that.
func CheckSources(s *spec.Spec, platforms []spec.Platform, values spec.Values) error {
	plats, err := selectPlatforms(s, platforms)
	if err != nil {
		return err
	}
	bctx, err := layer.OpenSourceDir(s.Dir)
	if err != nil {
		return fault.Bad(err)
	}
	return checkSources(s, bctx, plats, values)
}

func checkSources(s *spec.Spec, bctx *layer.SourceDir, plats []spec.Platform, values spec.Values) error {
	var list spec.ErrorList
	seen := map[string]bool{}
	for _, p := range plats {
		for i, l := range s.Layers {
			for j, c := range l.Contents {
				if c.Source == "" {
					continue
				}
				field := fmt.Sprintf("layers[%d].contents[%d].source", i, j)
				src, err := s.Expand(field, c.Source, values.ForPlatform(p))
				if err != nil {
					return err
				}
				err = bctx.Check(src, len(c.Exclude) > 0)
				var se *layer.SourceError
				switch {
				case errors.As(err, &se):
					e := s.ErrorAt(field, "%s", se.Msg)
					if k := e.Error(); !seen[k] {
						seen[k] = true
						list = append(list, e)
					}
				case err != nil:
					return fault.Op(fmt.Errorf("%s: reading source %q: %w", field, src, err))
				}
			}
		}
	}
	if len(list) == 0 {
		return nil
	}
	list.Sort()
	return fault.Bad(list)
}

// layer returns layer i for platform p, building it once for all platforms
// when none of its sources is a template.
func (b *builder) layer(ctx context.Context, i int, p spec.Platform, bi *base.Image) (*pending, error) {
	// A layer of packages is per platform: each has its own pins.
	perPlatform := len(b.s.Layers[i].Packages) > 0
	for _, c := range b.s.Layers[i].Contents {
		if strings.Contains(c.Source, "{{") || c.Go != "" {
			perPlatform = true
		}
	}
	if l, ok := b.shared[i]; ok && !perPlatform {
		if b.gitEpochs() {
			b.epochs.set(fmt.Sprintf("layers[%d]", i), p, b.sharedEpoch[i])
		}
		b.built = append(b.built, b.sharedEpoch[i])
		return l, nil
	}
	layerName := fmt.Sprintf("layers[%d] %q", i, b.s.Layers[i].Name)
	var l *pending
	var epoch int64
	var err error
	if len(b.s.Layers[i].Packages) > 0 {
		l, epoch, err = b.packageLayer(ctx, i, layerName, p, bi)
	} else {
		var entries []layer.Entry
		if entries, err = b.entries(ctx, i, p); err != nil {
			return nil, err
		}
		b.warnRemovals(i, entries)
		if epoch, err = b.layerEpoch(ctx, i, p, entries); err != nil {
			return nil, err
		}
		l, err = b.write(ctx, i, layerName, b.s.Layers[i].Name, p, entries, epoch)
	}
	if err != nil {
		return nil, err
	}
	if !perPlatform {
		b.shared[i], b.sharedEpoch[i] = l, epoch
	}
	b.built = append(b.built, epoch)
	return l, nil
}

// accountsLayer is the final layer that accounts writes, for platform p.
func (b *builder) accountsLayer(ctx context.Context, p spec.Platform, bi *base.Image) (*pending, error) {
	bf, err := b.baseFiles(ctx, p, bi)
	if err != nil {
		return nil, err
	}
	entries, err := accounts.Entries(b.s, bf)
	if err != nil {
		return nil, err
	}
	epoch := b.opts.Values.Epoch
	if b.gitEpochs() {
		if epoch, err = b.epochFor("accounts", p, func(g *GitTimes, bound int64) (int64, error) {
			return g.linesTime(b.s, "accounts", bound), nil
		}); err != nil {
			return nil, err
		}
	}
	b.built = append(b.built, epoch)
	return b.write(ctx, -1, "accounts", "accounts", p, entries, epoch)
}

// write writes the entries of layer i (-1 for the accounts and systemd
// layers) as a canonical layer with the given epoch (format 2; format 1
// stamps the build's), every regular file shown to the secret guard.
func (b *builder) write(ctx context.Context, i int, layerName, name string, p spec.Platform, entries []layer.Entry, epoch int64) (*pending, error) {
	lo := b.layerOptions(layerName, name, p)
	lo.Epoch = epoch
	pd, err := b.writeCached(ctx, layerName, name, p, entries, lo)
	if err != nil {
		return nil, b.layerError(i, err)
	}
	pd.wrap = func(err error) error { return b.layerError(i, err) }
	return pd.then(b.logWritten(name, p, len(entries))), nil
}

// logWritten logs a layer's "layer written" line, with its size and
// digest, once it is ready.
func (b *builder) logWritten(name string, p spec.Platform, entries int) func(*layer.File) {
	return func(l *layer.File) {
		d, _ := l.Digest()
		size, _ := l.Size()
		b.opts.Log.Info("layer written", "layer", name, "platform", p.String(), "entries", entries, "bytes", size, "digest", d.String())
	}
}

// layerOptions are the options a layer is written with: every regular
// file shown to the secret guard, progress reported.
func (b *builder) layerOptions(layerName, name string, p spec.Platform) layer.Options {
	lo := layer.Options{
		Format: b.opts.Format, Epoch: b.opts.Values.Epoch, Compression: b.opts.Compression,
		Observe: func(e *layer.Entry) layer.Observer { return b.guard.File(layerName, e.Path) },
	}
	if b.opts.Progress != nil {
		lo.Progress = func(n int64) { b.opts.Progress(name, p.String(), n) }
	}
	return lo
}

// layerError turns the layer package's complaints into bad input located
// in the spec.
func (b *builder) layerError(i int, err error) error {
	var ce *layer.ConflictError
	var se *layer.SourceError
	field := fmt.Sprintf("layers[%d]", i)
	name := "accounts"
	if i < 0 {
		field = "accounts"
	} else {
		name = b.s.Layers[i].Name
	}
	switch {
	case errors.As(err, &ce):
		return fault.Bad(b.s.ErrorAt(field, "%s", ce.Msg))
	case errors.As(err, &se):
		return fault.Bad(b.s.ErrorAt(field, "%s", se.Msg))
	case errors.Is(err, context.Canceled), fault.KindOf(err) == fault.CheckFailed:
		return err
	}
	return fault.Op(fmt.Errorf("writing layer %q: %w", name, err))
}

func (b *builder) entries(ctx context.Context, i int, p spec.Platform) ([]layer.Entry, error) {
	var out []layer.Entry
	for j, c := range b.s.Layers[i].Contents {
		field := fmt.Sprintf("layers[%d].contents[%d]", i, j)
		es, err := b.content(ctx, field, c, p)
		if err != nil {
			return nil, err
		}
		for k := range es {
			if b.s.Accounts != nil && slices.Contains(spec.AccountFiles, es[k].Path) {
				return nil, fault.Bad(b.s.ErrorAt(field, "writes %s, which accounts: writes (merged over the base's); exclude it from this entry, or remove accounts:", es[k].Path))
			}
			if es[k].Origin == "" {
				es[k].Origin = field
			} else {
				es[k].Origin = field + ": " + es[k].Origin
			}
		}
		out = append(out, es...)
	}
	return out, nil
}

func (b *builder) content(ctx context.Context, field string, c spec.Content, p spec.Platform) ([]layer.Entry, error) {
	a := layer.Attrs{}
	if c.UID != nil {
		a.UID = *c.UID
	}
	if c.GID != nil {
		a.GID = *c.GID
	}
	if c.Mode != nil {
		m := uint32(*c.Mode)
		a.Mode = &m
	}
	if len(c.Capabilities) > 0 {
		nums := make([]int, len(c.Capabilities))
		for i, name := range c.Capabilities {
			nums[i], _ = spec.Capability(name)
		}
		x, err := layer.CapabilityXattr(nums)
		if err != nil {
			return nil, fault.Bad(b.s.ErrorAt(field+".capabilities", "%v", err))
		}
		a.Xattrs = map[string]string{"security.capability": x}
	}
	mode := func(def uint32) uint32 {
		if a.Mode != nil {
			return *a.Mode
		}
		return def
	}
	switch {
	case c.Source != "":
		src, err := b.s.Expand(field+".source", c.Source, b.opts.Values.ForPlatform(p))
		if err != nil {
			return nil, err
		}
		es, err := b.srcDir.Source(src, c.Path, c.Exclude, a)
		if err != nil {
			var se *layer.SourceError
			if errors.As(err, &se) {
				return nil, fault.Bad(b.s.ErrorAt(field+".source", "%s", se.Msg))
			}
			return nil, fault.Op(fmt.Errorf("%s: reading source %q: %w", field, src, err))
		}
		return es, nil
	case c.Content != nil:
		text := *c.Content
		return []layer.Entry{{Path: c.Path, Type: layer.Regular, Mode: mode(0o644), UID: a.UID, GID: a.GID, Xattrs: a.Xattrs,
			Size: int64(len(text)), Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(text)), nil }}}, nil
	case c.Go != "":
		return b.goBinary(ctx, field, c, p, a)
	case c.URL != "":
		if b.opts.Cache == nil {
			return nil, fault.Op(fmt.Errorf("%s: no cache to fetch %s into", field, c.URL))
		}
		path, err := b.opts.Cache.Fetch(ctx, c.URL, c.SHA256)
		if err != nil {
			return nil, &locatedError{msg: b.s.ErrorAt(field+".url", "%v", err).Error(), err: err}
		}
		es, err := layer.FileEntry(path, c.Path, a, 0o644)
		if err != nil {
			return nil, fault.Op(err)
		}
		return es, nil
	}
	switch c.Type {
	case spec.TypeDir:
		return []layer.Entry{{Path: c.Path, Type: layer.Dir, Mode: mode(0o755), UID: a.UID, GID: a.GID}}, nil
	case spec.TypeSymlink:
		return []layer.Entry{{Path: c.Path, Type: layer.Symlink, Mode: 0o777, UID: a.UID, GID: a.GID, Target: c.Target}}, nil
	case spec.TypeHardlink:
		return []layer.Entry{{Path: c.Path, Type: layer.Hardlink, Target: c.Target}}, nil
	case spec.TypeRemove:
		return []layer.Entry{{Path: c.Path, Type: layer.Whiteout}}, nil
	}
	return nil, fault.Bad(b.s.ErrorAt(field, "nothing to write"))
}

// config is the image config: the base's, if any, merged with the spec's.
// Env merges by key and labels, ports and volumes merge, the spec winning;
// entrypoint, cmd, user, workingDir and stopSignal are the spec's when it
// gives them and the base's otherwise; the base's history and diff IDs come
// first. Docker-only fields of a base config (Healthcheck, OnBuild, Shell)
// have no place in an OCI config and are not carried over.
func (b *builder) config(p spec.Platform, bi *base.Image, layers []*layer.File, history []ocispec.History) (*ocispec.Image, error) {
	s, v := b.s, b.opts.Values
	created := b.epoch()
	img := &ocispec.Image{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}}}
	if bi != nil {
		if err := json.Unmarshal(bi.Config, img); err != nil {
			return nil, fault.Op(fmt.Errorf("reading the base config: %w", err))
		}
		if len(img.RootFS.DiffIDs) != len(bi.Layers) {
			return nil, fault.Op(fmt.Errorf("the base config lists %d diff IDs for %d layers", len(img.RootFS.DiffIDs), len(bi.Layers)))
		}
		img.RootFS.Type = "layers"
	}
	img.Created = &created
	// Every history entry's created is the epoch, the base's entries too
	// (their created_by, comment and empty_layer stay): the history says
	// when this image was made, as the config's created does.
	for i := range img.History {
		img.History[i].Created = &created
	}
	img.Author = ""
	img.Platform.Architecture, img.Platform.OS, img.Platform.Variant = p.Arch, p.OS, p.Variant
	c := &img.Config
	if s.Config.Entrypoint != nil {
		c.Entrypoint = s.Config.Entrypoint
	}
	if s.Config.Cmd != nil {
		c.Cmd = s.Config.Cmd
	}
	set := func(dst *string, val string) {
		if val != "" {
			*dst = val
		}
	}
	set(&c.User, s.Config.User)
	set(&c.WorkingDir, s.Config.WorkingDir)
	set(&c.StopSignal, s.Config.StopSignal)
	//lint:ignore SA1019 a deprecated, Windows-only Docker field that a base may carry: never written
	c.ArgsEscaped = false
	env := map[string]string{}
	for _, kv := range c.Env {
		k, val, _ := strings.Cut(kv, "=")
		env[k] = val
	}
	for _, k := range sortedKeys(s.Config.Env) {
		val, err := s.Expand("config.env."+k, s.Config.Env[k], v)
		if err != nil {
			return nil, err
		}
		env[k] = val
	}
	c.Env = nil
	for _, k := range sortedKeys(env) {
		c.Env = append(c.Env, k+"="+env[k])
	}
	for _, port := range s.Config.ExposedPorts {
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		c.ExposedPorts[port] = struct{}{}
	}
	for _, vol := range s.Config.Volumes {
		if c.Volumes == nil {
			c.Volumes = map[string]struct{}{}
		}
		c.Volumes[vol] = struct{}{}
	}
	for k, raw := range s.Config.Labels {
		val, err := s.Expand("config.labels."+k, raw, v)
		if err != nil {
			return nil, err
		}
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		c.Labels[k] = val
	}
	img.History = append(img.History, history...)
	for _, l := range layers {
		d, _ := l.DiffID()
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, digest.Digest(d.String()))
	}
	return img, nil
}

func (b *builder) annotations() (map[string]string, error) {
	ann := map[string]string{ocispec.AnnotationCreated: b.epoch().Format(time.RFC3339)}
	for k, raw := range b.s.Annotations {
		val, err := b.s.Expand("annotations."+k, raw, b.opts.Values)
		if err != nil {
			return nil, err
		}
		ann[k] = val
	}
	return ann, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// locatedError is an error placed at a spec field, keeping its cause (and
// the cause's class) for errors.As and fault.KindOf.
type locatedError struct {
	msg string
	err error
}

func (e *locatedError) Error() string { return e.msg }
func (e *locatedError) Unwrap() error { return e.err }

// newGuard is the secret guard with the spec's allow entries.
func newGuard(s *spec.Spec) (*secrets.Guard, error) {
	var allow []secrets.Allow
	if s.Secrets != nil {
		for i, a := range s.Secrets.Allow {
			field := fmt.Sprintf("secrets.allow[%d]", i)
			if a.Rule != "" && !secrets.KnownRule(a.Rule) {
				return nil, fault.Bad(s.ErrorAt(field+".rule", "unknown rule %q; the rules are %s", a.Rule, strings.Join(secrets.Rules, ", ")))
			}
			allow = append(allow, secrets.Allow{Path: a.Path, SHA256: a.SHA256, Rule: a.Rule, Reason: a.Reason, Field: field})
		}
	}
	return secrets.NewGuard(allow), nil
}

// warnRemovals warns when layer i removes what an earlier layer added: the
// bytes stay in the image, only hidden.
func (b *builder) warnRemovals(i int, entries []layer.Entry) {
	for _, e := range entries {
		if e.Type != layer.Whiteout {
			continue
		}
		for p, j := range b.added {
			if j < i && (p == e.Path || strings.HasPrefix(p, e.Path+"/")) {
				b.opts.Log.Warn(secrets.Removal(e.Path, p), "layer", b.s.Layers[i].Name, "added by", b.s.Layers[j].Name)
			}
		}
	}
	for _, e := range entries {
		if _, seen := b.added[e.Path]; !seen && e.Type != layer.Whiteout && e.Type != layer.Dir {
			b.added[e.Path] = i
		}
	}
}

// checkSecrets scans the config and fails the build on any finding that
// no allow entry covers; allowed ones are reported.
func (b *builder) checkSecrets(cfg *ocispec.Image, ann map[string]string) error {
	env := map[string]string{}
	for _, kv := range cfg.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	texts := map[string]string{}
	for k, v := range cfg.Config.Labels {
		texts["config.labels."+k] = v
	}
	for i, v := range cfg.Config.Cmd {
		texts[fmt.Sprintf("config.cmd[%d]", i)] = v
	}
	for i, v := range cfg.Config.Entrypoint {
		texts[fmt.Sprintf("config.entrypoint[%d]", i)] = v
	}
	for k, v := range ann {
		texts["annotations."+k] = v
	}
	b.guard.Config(env, texts)
	var blocking []string
	for _, f := range b.guard.Findings() {
		key := f.String()
		if f.AllowedBy != "" {
			if !b.reported[key] {
				b.opts.Log.Warn("secret allowed", "by", f.AllowedBy, "reason", f.Reason, "finding", key)
			}
			b.reported[key] = true
			continue
		}
		if b.reported[key] {
			continue
		}
		b.reported[key] = true
		if where := b.specPlace(f); where != "" {
			key = where + ": " + key
		}
		blocking = append(blocking, "  "+key)
	}
	if len(blocking) > 0 {
		return fault.Bad(fmt.Errorf("the secret guard found %d secret(s); nothing was written:\n%s\nremove them from the image (mount secrets at run time), or, if one must ship, add a secrets.allow entry with its path, rule and a reason", len(blocking), strings.Join(blocking, "\n")))
	}
	return nil
}

// specPlace is file:line:col of the spec's own value behind a config or
// annotation finding (config.env.NAME, annotations.KEY…), or "" for a
// file's finding or a value the base gave.
func (b *builder) specPlace(f secrets.Finding) string {
	if f.Layer != "" || b.s == nil {
		return ""
	}
	field := f.Path
	var has bool
	c := b.s.Config
	switch {
	case strings.HasPrefix(field, "config.env."):
		_, has = c.Env[strings.TrimPrefix(field, "config.env.")]
	case strings.HasPrefix(field, "config.labels."):
		_, has = c.Labels[strings.TrimPrefix(field, "config.labels.")]
	case strings.HasPrefix(field, "config.cmd["):
		has = c.Cmd != nil
	case strings.HasPrefix(field, "config.entrypoint["):
		has = c.Entrypoint != nil
	case strings.HasPrefix(field, "annotations."):
		_, has = b.s.Annotations[strings.TrimPrefix(field, "annotations.")]
	}
	if !has {
		return ""
	}
	p := b.s.PosOf(field)
	if p.Line == 0 {
		return ""
	}
	return fmt.Sprintf("%s:%d:%d", b.s.File, p.Line, p.Col)
}

// scanBase runs the secret guard over every file of every base layer and
// logs what it finds: a report, since the base's bytes are not this
// build's to change.
func (b *builder) scanBase(ctx context.Context, bi *base.Image, p spec.Platform) error {
	g := secrets.NewGuard(nil)
	err := bi.EachFile(ctx, func(i int, path string, r io.Reader) error {
		s := g.File(fmt.Sprintf("base layer %d", i), path)
		if _, err := io.Copy(s, r); err != nil {
			return err
		}
		s.Done()
		return nil
	})
	if fault.KindOf(err) == fault.BadInput { // a layer past --max-layer-size, a tar that does not parse
		return fault.Bad(fmt.Errorf("scanning the base: %w", err))
	}
	if err != nil {
		return fault.Op(fmt.Errorf("scanning the base: reading it: %w", err))
	}
	found := g.Findings()
	for _, f := range found {
		b.opts.Log.Warn("secret in the base (report only)", "platform", p.String(), "finding", f.String())
	}
	b.opts.Log.Info("base scan done", "platform", p.String(), "findings", len(found))
	return nil
}
