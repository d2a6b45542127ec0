package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/pflag"

	"github.com/reprobuild/repro/internal/atomicfs"

	"github.com/reprobuild/repro/pkg/build"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/imagetest"
	"github.com/reprobuild/repro/pkg/layercache"
	"github.com/reprobuild/repro/pkg/output"
)

var buildCmd = &command{
	name:  "build",
	usage: "build [-f repro.yaml] [-o REF]... [flags]",
	short: "build an image from a spec",
	long: `
Build reads the spec, writes every layer itself (sorted tar entries, fixed
owners, modes and mtimes, fixed compression) and writes the image to each
-o output. The same spec and inputs give the same digests, byte for byte,
on any machine. The image digest (or, for several platforms, the index
digest) is the last line on stdout; logs go to stderr.

Outputs (-o, repeatable; default oci:out/<name>, or none but the tags
with --push):
  oci:DIR[:TAG]                add to or update an OCI layout (tag: latest)
  oci-archive:FILE[:TAG]       a tar of an OCI layout
  docker-archive:FILE[:REF]    for docker load and podman load (one platform)
  host/repo:tag                push to a registry

On a terminal, stderr shows the layers being written and, for each
registry push, one line per blob: bytes sent, or that the registry had
it or mounted it (base layers pushed to the base's registry are mounted
from the base's repository, not uploaded).
When stderr is not a terminal, or with -q or --json, it shows none.

The epoch (the config's created and the history) is the spec's epoch,
else $SOURCE_DATE_EPOCH, else 0. The output format (--format, else the
spec's format:, else the lock's, else 2, the newest) says how layers are
stamped: in format 2 each layer's mtimes come from its own inputs (a
.deb's mtimes; with epoch: git, the newest commit that touched the
layer), so a commit that changes one layer changes one layer; format 1
stamps every file with the epoch, byte for byte as older releases did.
A build from a dirty git tree warns, and .GitCommit, .GitShortCommit and
.Version end in -dirty. Templates see .Version (--version, else git describe, else 0.0.0),
.GitCommit, .GitShortCommit, .Epoch, .Date and .Vars.

Examples:
  repro build -f specs/examples/static-site/repro.yaml -o oci:out/site:v1
  repro build --platform linux/arm64 --var env=prod --compression zstd
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) repro build -o oci-archive:site.tar`,
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		o := &buildOpts{g: g}
		o.shape.layerCache = true
		o.shape.register(fs)
		fs.StringArrayVarP(&o.outputs, "output", "o", nil, "where to write the image (`REF`, repeatable); default oci:out/<name> (none with --push)")
		fs.BoolVar(&o.push, "push", false, "also push to every tag the spec lists (templates expanded)")
		fs.StringVar(&o.pushByDigest, "push-by-digest", "", "push the image to `HOST/REPO` by digest, with no tag: one CI runner's share of a multi-platform build (with --platform P); repro index assembles the index")
		fs.StringVar(&o.metadataFile, "metadata-file", "", "also write the result as JSON to `FILE`")
		fs.StringArrayVar(&o.tests, "test", nil, "run container-structure-test `FILE`s on the built image before writing it (repeatable); a failure writes nothing")
		o.testRuntime.register(fs)
		fs.BoolVar(&o.sign, "sign", false, "sign every registry and oci: output (--key or --keyless), attaching the SBOM and provenance attestations")
		o.signing.register(fs)
		fs.BoolVar(&o.sbom, "sbom", true, "with --sign, attach the SPDX SBOM attestation")
		fs.BoolVar(&o.provenance, "provenance", true, "with --sign, attach the SLSA v1 provenance attestation")
		fs.BoolVar(&o.check, "check", false, "build a second time, perturbed (context copied in reverse order with other mtimes and modes, umask 077, another TZ, locale and GOMAXPROCS), and fail with the diff if any byte differs")
		return o.run
	},
}

// shapeFlags are the flags that shape the image: build and verify take
// the same ones.
type shapeFlags struct {
	file          string
	platforms     []string
	vars          []string
	version       string
	compression   string
	format        string
	cacheDir      string
	offline       bool
	locked        bool
	allowUnpinned bool
	insecure      []string
	scanBase      bool
	// requestFile is a serialised build.Request (hidden; --check's second
	// build reads it, so that git-derived values survive the copied
	// context); it replaces the flags above that shape the image.
	requestFile string
	// layerCache: the command uses the layer cache (build does, unless
	// --no-cache or --check; verify never does).
	layerCache, noCache bool
	// cacheRepo and cacheMode: the shared layer cache in a registry.
	cacheRepo, cacheMode string
	cacheVerify          bool
}

func (f *shapeFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&f.file, "file", "f", "repro.yaml", "the spec `file`; its directory is the build context, or the parent its context: names")
	fs.StringSliceVar(&f.platforms, "platform", nil, "build only these of the spec's platforms (`os/arch[/variant]`, comma-separated)")
	fs.StringArrayVar(&f.vars, "var", nil, "set a template variable (`key=value`, repeatable); overrides the spec's vars")
	fs.StringVar(&f.version, "version", "", "the .Version template value (default: git describe, else 0.0.0)")
	fs.StringVar(&f.compression, "compression", "gzip", "layer compression: gzip or zstd")
	fs.StringVar(&f.format, "format", "", "the output format `N`: 2 or 1 (default: the spec's format:, else the lock's, else 2, the newest)")
	fs.StringVar(&f.cacheDir, "cache-dir", "", "cache for pulled and fetched files (default: the user cache dir/repro)")
	fs.BoolVar(&f.offline, "offline", false, "use only the cache; fetch and pull nothing")
	fs.BoolVar(&f.locked, "locked", false, "fail when the spec holds anything the lock file does not pin")
	fs.BoolVar(&f.allowUnpinned, "allow-unpinned", false, "accept a base given by tag alone, with no lock entry (resolved now; not reproducible)")
	fs.StringArrayVar(&f.insecure, "insecure-registry", nil, "speak plain HTTP to this registry `HOST` (repeatable; loopback needs none)")
	fs.BoolVar(&f.scanBase, "scan-base", false, "also run the secret guard over the base's layers: a report on stderr, never a failure")
	if f.layerCache {
		fs.BoolVar(&f.noCache, "no-cache", false, "build every layer cold: neither read nor write the layer cache (DIR/layers of --cache-dir)")
		fs.StringVar(&f.cacheRepo, "cache-repo", "", "also look layers up in the shared layer cache in registry repository `HOST/REPO` (one entry per key, tagged by it; every hit's bytes are checked)")
		fs.BoolVar(&f.cacheVerify, "cache-verify", false, "hash every local hit's blob, and build every layer the cache gives again cold and compare: a reproducibility canary; a difference fails the build (exit 1) and removes the local entry")
		fs.StringVar(&f.cacheMode, "cache-mode", "read", "with --cache-repo: read, or readwrite to store the layers it lacks there (first write wins; main-branch builds write, pull requests read)")
	}
	fs.StringVar(&f.requestFile, "request", "", "a serialised build request `FILE` (internal)")
	fs.MarkHidden("request")
}

type buildOpts struct {
	g            *globals
	shape        shapeFlags
	outputs      []string
	push         bool
	pushByDigest string
	metadataFile string
	check        bool
	sign         bool
	signing      signingFlags
	sbom         bool
	provenance   bool
	tests        []string
	testRuntime  testRuntime
}

// settingFlags name the flag behind each build.Settings field.
var settingFlags = map[string]string{"Platforms": "--platform", "Vars": "--var", "Compression": "--compression", "Format": "--format"}

// request turns the flags and the environment into a build request; the
// layers go into work, which the caller removes.
func (f *shapeFlags) request(ctx context.Context, g *globals, work string) (build.Request, error) {
	var req build.Request
	if f.requestFile != "" {
		raw, err := os.ReadFile(f.requestFile)
		if err != nil {
			return req, fault.Op(fmt.Errorf("--request: %w", err))
		}
		if err := json.Unmarshal(raw, &req); err != nil {
			return req, fault.Bad(fmt.Errorf("--request %s: %w", f.requestFile, err))
		}
		req.GoEnv = build.Settings{Offline: f.offline, Environ: os.Environ()}.GoEnv()
	} else {
		settings := build.Settings{
			File: f.file, Platforms: f.platforms, Vars: f.vars, Version: f.version, Compression: f.compression, Format: f.format,
			Locked: f.locked, AllowUnpinned: f.allowUnpinned, ScanBase: f.scanBase, Insecure: f.insecure,
			Offline: f.offline, Environ: os.Environ(),
		}
		var err error
		if req, err = settings.Request(); err != nil {
			var bad *build.SettingError
			if errors.As(err, &bad) {
				return req, fault.Bad(fmt.Errorf("%s: %w", settingFlags[bad.Setting], bad.Err))
			}
			return req, err
		}
	}
	c, err := openCache(ctx, f.cacheDir, f.offline, g)
	if err != nil {
		return req, err
	}
	req.Cache, req.Remote, req.WorkDir, req.Log = c, remoteOptions(ctx), work, g.log
	if f.layerCache && !f.noCache {
		dir := filepath.Join(c.Dir(), "layers")
		id, err := builderID(dir)
		if err != nil {
			return req, fault.Op(fmt.Errorf("the layer cache needs this program's build ID: %w; build with --no-cache", err))
		}
		req.Layers = layercache.Open(dir, time.Now, id)
		if req.Shared, err = f.shared(ctx); err != nil {
			return req, err
		}
		req.VerifyHits = f.cacheVerify
	}
	return req, nil
}

// shared is the shared layer cache that --cache-repo and --cache-mode
// name, or nil.
func (f *shapeFlags) shared(ctx context.Context) (*layercache.Shared, error) {
	if f.cacheMode != "read" && f.cacheMode != "readwrite" {
		return nil, fault.Bad(fmt.Errorf("--cache-mode %q: say read or readwrite", f.cacheMode))
	}
	if f.cacheRepo == "" {
		return nil, nil
	}
	if f.offline {
		return nil, fault.Bad(errors.New("--cache-repo reads a registry, and --offline fetches nothing: drop one of them"))
	}
	var opts []name.Option
	for _, h := range f.insecure {
		if strings.HasPrefix(f.cacheRepo, h+"/") {
			opts = append(opts, name.Insecure)
		}
	}
	r, err := name.NewRepository(f.cacheRepo, append(opts, name.StrictValidation)...)
	if err != nil {
		return nil, fault.Bad(fmt.Errorf("--cache-repo %s: %w; name a repository, HOST/REPO, with no tag", f.cacheRepo, err))
	}
	return &layercache.Shared{Repo: r, Write: f.cacheMode == "readwrite", Options: remoteOptions(ctx), Now: time.Now}, nil
}

// build builds the spec into work, which the caller removes, drawing the
// layers' progress on a terminal.
func (f *shapeFlags) build(ctx context.Context, g *globals, work string) (*build.Built, error) {
	req, err := f.request(ctx, g, work)
	if err != nil {
		return nil, err
	}
	bar := newProgress(g)
	req.Progress = bar.layer
	req.LayerDone = bar.status
	b, err := build.Run(ctx, req)
	bar.done()
	return b, err
}

// buildResult is what build prints with --json and writes to
// --metadata-file.
type buildResult struct {
	Digest        string           `json:"digest"`
	MediaType     string           `json:"mediaType"`
	Name          string           `json:"name"`
	Version       string           `json:"version"`
	Epoch         int64            `json:"epoch"`
	FormatVersion string           `json:"formatVersion"`
	Compression   string           `json:"compression"`
	Manifests     []manifestResult `json:"manifests"`
	Outputs       []string         `json:"outputs"`
	Tags          []string         `json:"tags"`
	// Layers are the built layers' fates (built, cached or from cache-repo), in the order
	// they finished.
	Layers []build.LayerFate `json:"layers,omitempty"`
	// PushedByDigest is the image build --push-by-digest pushed
	// (HOST/REPO@sha256:…), for repro index.
	PushedByDigest string `json:"pushedByDigest,omitempty"`
}

type manifestResult struct {
	Platform string `json:"platform"`
	Digest   string `json:"digest"`
	Size     int64  `json:"size"`
}

func (o *buildOpts) run(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return fault.Bad(fmt.Errorf("unexpected argument %q; the spec is given with -f", args[0]))
	}
	var testFiles []*imagetest.File
	if len(o.tests) > 0 {
		files, err := imagetest.LoadFiles(o.tests)
		if err != nil {
			return err
		}
		testFiles = files
	}
	var byDigest name.Repository
	if o.pushByDigest != "" {
		r, err := name.NewRepository(o.pushByDigest, name.WeakValidation)
		if err != nil {
			return fault.Bad(fmt.Errorf("--push-by-digest %s: %w; name a repository, HOST/REPO, with no tag", o.pushByDigest, err))
		}
		if o.push {
			return fault.Bad(errors.New("--push-by-digest pushes one platform's image with no tag, --push the spec's tags: the tags go to the index, which repro index pushes"))
		}
		byDigest = r
	}
	work, removeWork, err := workDir("repro-build-")
	if err != nil {
		return err
	}
	defer removeWork()
	start := time.Now()
	signer, err := o.signing.signerIf(ctx, o.sign)
	if err != nil {
		return err
	}
	// Every -o is checked before the build: a typo costs no build.
	given, err := checkOutputs(o.outputs)
	if err != nil {
		return err
	}
	if o.sign && !o.push && len(given) > 0 {
		if err := checkSignable(given); err != nil {
			return err
		}
	}
	if o.metadataFile != "" {
		made, err := checkMetadataFile(o.metadataFile)
		defer atomicfs.RemoveEmpty(made) // when the file was not written
		if err != nil {
			return err
		}
	}
	if o.check {
		// The proof rebuilds cold: a cached layer would prove nothing.
		o.shape.noCache = true
	}
	b, err := o.shape.build(ctx, o.g, work)
	if err != nil {
		return err
	}
	s, res := b.Spec, b.Result
	outs := o.outputs
	if len(outs) == 0 && !o.push && o.pushByDigest == "" {
		outs = []string{"oci:" + filepath.Join("out", s.Name)}
	}
	pushed := ""
	if o.pushByDigest != "" {
		if res.Index != nil {
			return fault.Bad(fmt.Errorf("--push-by-digest pushes one platform's image, and this build makes %d; pick one with --platform (repro index assembles them)", len(res.Platforms)))
		}
		pushed = byDigest.Digest(res.Descriptor.Digest.String()).String()
		outs = append(slices.Clone(outs), pushed)
	}
	// Without --push, a tag that cannot be pushed is told now, not
	// refused: nothing is sent to it (with --push, outputRefs refuses it).
	if _, err := b.Tags(); err != nil && !o.push {
		o.g.log.Warn(err.Error() + "; --push would refuse it")
	}
	refs, tags, err := outputRefs(b, outs, o.push, o.shape.insecure)
	if err != nil {
		return err
	}
	if o.sign {
		if err := checkSignable(refs); err != nil {
			return err
		}
	}
	art := res.Artifact
	if len(testFiles) > 0 {
		if err := runBuildTests(ctx, o.g, testFiles, &o.testRuntime, art); err != nil {
			return err
		}
	}
	if o.check {
		if err := o.checkReproducible(ctx, b); err != nil {
			return err
		}
	}
	if err := writeOutputs(ctx, o.g, refs, art, output.Options{DefaultTag: "latest", DockerRef: s.Name + ":latest", Log: o.g.log, Remote: remoteOptions(ctx), Transport: networkOf(ctx).transport}); err != nil {
		return err
	}
	if o.sign {
		if err := signBuilt(ctx, o.g, b, refs, signer, o.sbom, o.provenance); err != nil {
			return err
		}
	}
	o.g.log.Info("built", "name", s.Name, "digest", res.Descriptor.Digest.String(), "took", time.Since(start).Round(time.Millisecond))

	out, err := resultOf(b, refs, tags)
	if err != nil {
		return err
	}
	out.PushedByDigest = pushed
	out.Layers = b.LayerFates
	if o.metadataFile != "" {
		if err := writeMetadata(o.metadataFile, out); err != nil {
			return err
		}
	}
	if o.g.json {
		return json.NewEncoder(o.g.stdout).Encode(out)
	}
	fmt.Fprintln(o.g.stdout, res.Descriptor.Digest.String())
	return nil
}

// checkOutputs parses every -o and checks that it can be written, before
// any work.
func checkOutputs(outputs []string) ([]imageref.Reference, error) {
	var given []imageref.Reference
	for _, out := range outputs {
		r, err := imageref.Parse(out)
		if err != nil {
			return nil, fault.Bad(fmt.Errorf("-o: %w", err))
		}
		if err := output.CheckTarget(r); err != nil {
			return nil, err
		}
		given = append(given, r)
	}
	return given, nil
}

// outputRefs are the references b is written to: outs, and with push the
// spec's tags, expanded (they are returned too).
func outputRefs(b *build.Built, outs []string, push bool, insecure []string) ([]imageref.Reference, []string, error) {
	tags := []string{}
	if push {
		var err error
		if tags, err = b.Tags(); err != nil {
			return nil, nil, err
		}
		if len(tags) == 0 {
			return nil, nil, fault.Bad(b.Spec.ErrorAt("tags", "--push sends the image to the spec's tags, and it lists none; add tags or write with -o"))
		}
		outs = append(slices.Clone(outs), tags...)
	}
	var refs []imageref.Reference
	for _, out := range outs {
		r, err := imageref.Parse(out)
		if err != nil {
			return nil, nil, fault.Bad(fmt.Errorf("-o: %w", err))
		}
		refs = append(refs, r.WithInsecure(insecure))
	}
	return refs, tags, nil
}

// checkMetadataFile makes --metadata-file's directory, as the outputs'
// are made, and checks that a file can be written there, before the
// build: failing after the outputs were written would leave them written
// by a command that failed. It returns the directories it made.
func checkMetadataFile(file string) ([]string, error) {
	dir := filepath.Dir(file)
	made, err := atomicfs.MkdirAll(dir)
	if err != nil {
		return nil, fault.Op(fmt.Errorf("--metadata-file %s: making its directory: %w", file, err))
	}
	f, t, err := atomicfs.CreateTemp(dir, ".tmp-", "-"+filepath.Base(file))
	if err != nil {
		return made, fault.Op(fmt.Errorf("--metadata-file %s: cannot write in %s: %w", file, dir, errors.Unwrap(err)))
	}
	f.Close()
	t.Remove()
	return made, nil
}

// writeMetadata writes --metadata-file.
func writeMetadata(file string, out buildResult) error {
	raw, _ := json.MarshalIndent(out, "", "  ")
	if err := atomicfs.WriteFile(file, append(raw, '\n')); err != nil {
		return fault.Op(fmt.Errorf("--metadata-file: %w", err))
	}
	return nil
}

// openCache opens the blob cache: --cache-dir, else the user's cache
// directory.
func openCache(ctx context.Context, dir string, offline bool, g *globals) (*cache.Cache, error) {
	dir, err := cacheDir(dir)
	if err != nil {
		return nil, err
	}
	return cache.New(dir, cache.Offline(offline), cache.WithLogger(g.log), cache.WithClient(networkOf(ctx).client)), nil
}

// cacheDir is --cache-dir, else the user's cache directory/repro.
func cacheDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fault.Bad(fmt.Errorf("no cache directory (%v); give one with --cache-dir", err))
	}
	return filepath.Join(d, "repro"), nil
}

// writeOutputs writes art to every ref, all or none (output.WriteAll),
// drawing each registry push on a terminal.
func writeOutputs(ctx context.Context, g *globals, refs []imageref.Reference, art imageref.Artifact, opts output.Options) error {
	return output.WriteAll(ctx, refs, art, opts, func(r imageref.Reference) (func(output.BlobEvent), func()) {
		bars := pushBarsFor(g, r.String())
		if bars == nil {
			return nil, nil
		}
		g.setStatus(bars)
		return bars.event, func() { bars.end(); g.setStatus(nil) }
	})
}
