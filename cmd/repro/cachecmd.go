package main

import (
	"context"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/reprobuild/repro/internal/units"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/layercache"
)

var cacheCmd = &command{
	name:  "cache",
	usage: "cache prune [--cache-dir DIR] [--max-age AGE] [--max-size SIZE] [--json]",
	short: "prune the layer cache",
	long: `
Cache prune removes layer cache entries (DIR/layers, DIR the --cache-dir
that builds use, default the user cache dir/repro), least recently used
first: every entry unused for longer than --max-age (a Go duration such as
72h, or days: 30d), then the oldest used until the entries left take at
most --max-size bytes (suffixes K, M, G: KiB, MiB, GiB). Builds may run
meanwhile: an entry is renamed away whole before it is removed, and a build
that was using it has its own link to its blob.

The layer cache's key is defined in pkg/layercache's doc.go; a hit is
checked (the blob re-hashed) before it is used, and repro verify and build
--check never read it.

Examples:
  repro cache prune --max-age 30d
  repro cache prune --max-size 10G --json`,
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		o := &cacheOpts{g: g}
		fs.StringVar(&o.cacheDir, "cache-dir", "", "the cache `DIR` builds use (default: the user cache dir/repro)")
		fs.StringVar(&o.maxAge, "max-age", "", "remove entries unused for longer than `AGE` (72h, 30d)")
		fs.StringVar(&o.maxSize, "max-size", "", "then remove the least recently used until the entries take at most `SIZE` bytes (K, M, G suffixes)")
		return o.run
	},
}

type cacheOpts struct {
	g               *globals
	cacheDir        string
	maxAge, maxSize string
}

// builderID is this program's Go build ID (the ELF note the linker
// writes), else the SHA-256 of the executable: every layer cache key
// carries it, so that another build of repro never takes this one's
// layers (or its secret guard's verdicts) as its own. The hash is taken
// through a stat cache under storeDir (layercache.StatCache, by the
// executable's device, inode, size, times and mode), so that a warm build
// does not read the 40 MB binary again; a binary rebuilt or replaced is
// hashed again, as a context file is.
func builderID(storeDir string) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	if f, err := elf.Open(exe); err == nil {
		defer f.Close()
		if s := f.Section(".note.go.buildid"); s != nil {
			if b, err := s.Data(); err == nil && len(b) > 16 {
				return "go-buildid:" + strings.TrimRight(string(b[16:]), "\x00"), nil
			}
		}
	}
	sc := layercache.OpenStatCache(layercache.StatCacheFile(storeDir, exe), time.Now())
	sum, _, err := sc.Sum(exe)
	if err != nil {
		return "", err
	}
	_ = sc.Save() // a cache: the next build hashes the binary again
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

func parseAge(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(d, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("--max-age %s: give a number of days (30d) or a Go duration (72h)", s)
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("--max-age %s: give a number of days (30d) or a Go duration (72h)", s)
	}
	return d, nil
}

func (o *cacheOpts) run(ctx context.Context, args []string) error {
	const usage = "repro cache prune [--max-age AGE] [--max-size SIZE]"
	switch {
	case len(args) == 0:
		return fault.Bad(errors.New("name what to do with the cache: " + usage))
	case args[0] != "prune":
		near := ""
		if edits(args[0], "prune") <= 2 {
			near = "did you mean prune? "
		}
		return fault.Bad(fmt.Errorf("unknown subcommand %q; %sthe cache has one: %s", args[0], near, usage))
	case len(args) > 1:
		return fault.Bad(fmt.Errorf("unexpected argument %q; %s takes flags only", args[1], usage))
	}
	if o.maxAge == "" && o.maxSize == "" {
		return fault.Bad(errors.New("give --max-age, --max-size or both: what to keep"))
	}
	var age time.Duration
	size := int64(-1)
	var err error
	if o.maxAge != "" {
		if age, err = parseAge(o.maxAge); err != nil {
			return fault.Bad(err)
		}
	}
	if o.maxSize != "" {
		if size, err = units.ParseBytes(o.maxSize); err != nil {
			return fault.Bad(fmt.Errorf("--max-size %s: give a number of bytes, with K, M or G for KiB, MiB or GiB", o.maxSize))
		}
	}
	dir, err := cacheDir(o.cacheDir)
	if err != nil {
		return err
	}
	p, err := layercache.Open(filepath.Join(dir, "layers"), time.Now, "").Prune(age, size)
	if err != nil {
		return fault.Op(err)
	}
	if o.g.json {
		return json.NewEncoder(o.g.stdout).Encode(p)
	}
	fmt.Fprintf(o.g.stdout, "removed %d entries (%s), kept %d (%s)\n", p.Removed, units.Bytes(p.RemovedBytes), p.Kept, units.Bytes(p.KeptBytes))
	return nil
}
