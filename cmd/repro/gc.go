package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/pflag"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/gc"
	"github.com/reprobuild/repro/pkg/imageref"
)

var gcCmd = &command{
	name:  "gc",
	usage: "gc (oci:DIR | host/repo) --keep-days N [--keep-last K] [--dry-run] [--json]",
	short: "delete old images, with their signatures, from a layout or a registry repository",
	long: `
Gc removes the images whose config created time is more than --keep-days
days before now, with their signatures, attestations and SBOMs (cosign's
sha256-<hex>.sig/.att/.sbom tags, and in a layout cosign's kind
annotations). It never removes:
  - the newest --keep-last images (default 1), however old;
  - a manifest that a kept index uses;
  - an image whose config has no created time;
  - the signatures and attestations of what stays.

Age is the config's created field, which repro sets to the build's epoch:
the source's age, not the build's or the push's. An image built with
epoch 0 was "created" on 1970-01-01 and is always old; only --keep-last
keeps it.

In a layout (oci:DIR, the whole layout, no tag), index.json is rewritten
atomically without the old entries, then every blob that nothing references
is removed, and the temporary files of killed writers (.tmp-* in the layout,
.DIR.tmp-* beside it; never those of a writer still running). Builds into
the layout may run meanwhile: their blobs are staged outside blobs/ until
they commit. In a registry repository (host/repo, no tag), the manifests are
deleted through the registry API; the registry must allow deletes
(docker-registry: storage.delete.enabled: true) and removes the blobs with
its own garbage collector.

--dry-run prints what would go and changes nothing. --now fixes the time
ages are measured from (RFC 3339, or seconds since 1970), for reproducible
dry runs and tests.

Examples:
  repro gc oci:out/app --keep-days 30 --dry-run
  repro gc registry.example.com/team/app --keep-days 30 --keep-last 5 --json`,
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		o := &gcOpts{g: g}
		fs.IntVar(&o.keepDays, "keep-days", 0, "delete images created more than `N` days ago (required)")
		fs.IntVar(&o.keepLast, "keep-last", 1, "always keep the newest `K` images")
		fs.BoolVar(&o.dryRun, "dry-run", false, "print what would be deleted; change nothing")
		fs.StringVar(&o.now, "now", "", "measure ages from this `TIME` (RFC 3339 or seconds since 1970) instead of the clock")
		fs.StringArrayVar(&o.insecure, "insecure-registry", nil, "speak plain HTTP to this registry `HOST` (repeatable)")
		return func(ctx context.Context, args []string) error {
			o.keepDaysSet = fs.Changed("keep-days")
			return o.run(ctx, args)
		}
	},
}

type gcOpts struct {
	g           *globals
	keepDays    int
	keepDaysSet bool
	keepLast    int
	dryRun      bool
	now         string
	insecure    []string
}

func parseNow(s string) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fault.Bad(fmt.Errorf("--now %s: give an RFC 3339 time (2024-01-31T00:00:00Z) or seconds since 1970", s))
	}
	return t, nil
}

func (o *gcOpts) run(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return fault.Bad(errors.New("give one layout (oci:DIR) or registry repository (host/repo)"))
	}
	if !o.keepDaysSet {
		return fault.Bad(errors.New("--keep-days is required: images created more than that many days ago are deleted"))
	}
	if o.keepDays < 0 || o.keepLast < 0 {
		return fault.Bad(errors.New("--keep-days and --keep-last count from 0"))
	}
	now, err := parseNow(o.now)
	if err != nil {
		return err
	}
	opts := gc.Options{Now: now, KeepDays: o.keepDays, KeepLast: o.keepLast, DryRun: o.dryRun, Log: o.g.log, Remote: remoteOptions(ctx)}
	var rep *gc.Report
	arg := args[0]
	switch {
	case strings.HasPrefix(arg, "oci:"):
		r, err := imageref.Parse(arg)
		if err != nil {
			return fault.Bad(err)
		}
		if r.Tag != "" || r.Digest != "" {
			return fault.Bad(fmt.Errorf("%s: gc works on a whole layout; write oci:%s without a tag", arg, r.Path))
		}
		rep, err = gc.Layout(ctx, r.Path, opts)
		if err != nil {
			return err
		}
	case strings.HasPrefix(arg, "oci-archive:"), strings.HasPrefix(arg, "docker-archive:"):
		return fault.Bad(fmt.Errorf("%s: gc works on OCI layouts (oci:DIR) and registry repositories (host/repo)", arg))
	default:
		repo, err := o.repository(arg)
		if err != nil {
			return err
		}
		rep, err = gc.Registry(ctx, repo, opts)
		if rep != nil && err != nil {
			o.write(rep)
		}
		if err != nil {
			return err
		}
	}
	return o.write(rep)
}

// repository parses host/repo, which names no tag or digest.
func (o *gcOpts) repository(arg string) (name.Repository, error) {
	s := strings.TrimPrefix(arg, "docker://")
	last := s[strings.LastIndex(s, "/")+1:]
	if strings.ContainsAny(last, ":@") {
		return name.Repository{}, fault.Bad(fmt.Errorf("%s: gc works on a whole repository; write it without a tag or digest", arg))
	}
	opts := []name.Option{name.StrictValidation}
	repo, err := name.NewRepository(s, opts...)
	if err != nil {
		return name.Repository{}, fault.Bad(fmt.Errorf("%s is not a registry repository (host/repo): %v", arg, err))
	}
	if slices.Contains(o.insecure, repo.RegistryStr()) {
		repo, err = name.NewRepository(s, append(opts, name.Insecure)...)
		if err != nil {
			return name.Repository{}, fault.Bad(err)
		}
	}
	return repo, nil
}

func (o *gcOpts) write(rep *gc.Report) error {
	if o.g.json {
		enc := json.NewEncoder(o.g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(o.g.stdout)
}
