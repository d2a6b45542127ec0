package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/reprobuild/repro/pkg/build"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/lock"
)

var lockCmd = &command{
	name:  "lock",
	usage: "lock [-f repro.yaml] [--update | --check]",
	short: "pin the spec's base, urls and Debian packages in repro.lock.json",
	long: `
Lock resolves what the spec names by something that can change and writes
the answers to repro.lock.json beside the spec (whatever the spec is
called: give specs that pin anything a directory each): for the base, the digest its reference names now and each
platform's manifest digest; for every url, its sha256 (the file is fetched
and checked); for Debian packages, per platform, the sha256 of each
source's InRelease (checked against apt.keyring) and Packages indexes, and
for each layer with packages every .deb of its dependency closure (name,
version, architecture, file, size, sha256, and which packages need it),
less what the base's dpkg status and the earlier layers hold. The file has
sorted keys and a stable layout: locking an unchanged spec twice gives
identical bytes. Commit it.

Without --update, pins already in the lock are kept and only what is
missing is resolved: packages are resolved on the indexes the lock pins
(each InRelease read by its digest, from the cache or the repository, and
verified again), so a package added to the spec comes at the version of
those indexes and nothing else moves. With --update, every pin is resolved
again (InRelease files fetched fresh, their Valid-Until checked), and what
changed is printed, one line per base, url, InRelease and package.

With --check, every pin is resolved again as with --update, and compared
with the lock, which is left as it is: each pin that moved is listed (old
-> new, and for a package the suite its new version comes from, such as
bookworm-security), and the exit code is 1; when nothing moved it is 0. A
re-signed InRelease alone (Debian signs its suites daily) moves no pin.
This is a CI cron job's signal to lock --update and rebuild (see
specs/examples/golden-image/rebuild-on-update.yml).

Build uses the lock: a base given by tag alone, or a layer of packages,
is refused without one; build --locked fails when the spec names anything
the lock does not pin. Building from the lock fetches exactly the pinned
.debs, and nothing else from the repositories.

Examples:
  repro lock
  repro lock --update -f deploy/repro.yaml
  repro lock --check || { repro lock --update && repro build; }`,
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		o := &lockOpts{g: g}
		fs.StringVarP(&o.file, "file", "f", "repro.yaml", "the spec `file`")
		fs.BoolVar(&o.update, "update", false, "resolve every pin again and print what changed")
		fs.BoolVar(&o.check, "check", false, "resolve every pin again and list what moved, writing nothing; exit 1 when a pin is stale")
		fs.StringVar(&o.cacheDir, "cache-dir", "", "cache for pulled and fetched files (default: the user cache dir/repro)")
		fs.BoolVar(&o.offline, "offline", false, "use only the cache")
		fs.StringArrayVar(&o.insecure, "insecure-registry", nil, "speak plain HTTP to this registry `HOST` (repeatable)")
		return o.run
	},
}

type lockOpts struct {
	g        *globals
	file     string
	update   bool
	check    bool
	cacheDir string
	offline  bool
	insecure []string
}

type lockResult struct {
	LockFile string   `json:"lockFile"`
	Changed  bool     `json:"changed"`
	Changes  []string `json:"changes"`
	// Stale lists the pins that moved, with --check.
	Stale []string `json:"stale,omitempty"`
}

func (o *lockOpts) run(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return fault.Bad(fmt.Errorf("unexpected argument %q; the spec is given with -f", args[0]))
	}
	if o.check && o.update {
		return fault.Bad(fmt.Errorf("--check and --update exclude each other: --check writes nothing, --update writes the lock"))
	}
	c, err := openCache(ctx, o.cacheDir, o.offline, o.g)
	if err != nil {
		return err
	}
	l, err := build.Lock(ctx, build.LockRequest{
		File: o.file, Update: o.update, Check: o.check, Cache: c, Remote: remoteOptions(ctx), Client: networkOf(ctx).client,
		Insecure: o.insecure, Log: o.g.log, Now: time.Now, GoEnv: build.Settings{Offline: o.offline, Environ: os.Environ()}.GoEnv(),
	})
	if err != nil {
		return err
	}
	if o.check {
		return o.report(l.Path, lock.Stale(l.Changes))
	}
	res := lockResult{LockFile: l.Path, Changed: l.Written, Changes: []string{}}
	for _, ch := range l.Changes {
		res.Changes = append(res.Changes, ch.String())
	}
	if o.g.json {
		return json.NewEncoder(o.g.stdout).Encode(res)
	}
	for _, ch := range res.Changes {
		fmt.Fprintln(o.g.stdout, ch)
	}
	if !l.Written {
		o.g.log.Info("lock is up to date", "file", l.Path)
	} else {
		o.g.log.Info("wrote", "file", l.Path)
	}
	return nil
}

// report prints the stale pins that lock --check found, and fails with
// exit 1 when there are any.
func (o *lockOpts) report(path string, stale []lock.Change) error {
	res := lockResult{LockFile: path, Changes: []string{}, Stale: []string{}}
	for _, ch := range stale {
		res.Stale = append(res.Stale, ch.String())
	}
	if o.g.json {
		if err := json.NewEncoder(o.g.stdout).Encode(res); err != nil {
			return err
		}
		if len(stale) > 0 {
			return errSilent{fault.CheckFailed} // the JSON says it
		}
	} else {
		for _, line := range res.Stale {
			fmt.Fprintln(o.g.stdout, line)
		}
	}
	if len(stale) == 0 {
		o.g.log.Info("every pin is current", "file", path)
		return nil
	}
	return fault.Check(fmt.Errorf("%d pins of %s are stale; run repro lock --update -f %s, then build", len(stale), path, o.file))
}
