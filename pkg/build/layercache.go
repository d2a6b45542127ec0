package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/reprobuild/repro/pkg/base"
	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/layer"
	"github.com/reprobuild/repro/pkg/layercache"
	"github.com/reprobuild/repro/pkg/lock"
	"github.com/reprobuild/repro/pkg/secrets"
	"github.com/reprobuild/repro/pkg/spec"
)

// Layer statuses, as Options.LayerDone reports them.
const (
	LayerBuilt  = "built"
	LayerCached = "cached"
	// LayerShared: fetched from the shared cache (--cache-repo), checked.
	LayerShared = "from cache-repo"
)

// lookup finds the layer of key k: in the local store (its blob hashed
// only under Options.VerifyHits; see package layercache), else in the
// shared cache (fetched into the local store, its bytes checked; against
// the uncompressed stream want writes, when it is not nil: see
// layercache.Shared.Get). The status says where it was found.
func (b *builder) lookup(ctx context.Context, k layercache.Key, name string, p spec.Platform, want func(io.Writer) error) (*layercache.Layer, string) {
	st := b.opts.Layers
	get := st.Get
	if b.opts.VerifyHits {
		get = st.GetHashed
	}
	hit, err := get(k)
	var ce *layercache.CorruptError
	switch {
	case errors.As(err, &ce):
		b.opts.Log.Warn(ce.Error(), "layer", name, "platform", p.String())
	case err != nil:
		b.opts.Log.Warn("layer cache unreadable; building the layer", "layer", name, "err", err)
	}
	if hit != nil || b.opts.Shared == nil {
		return hit, LayerCached
	}
	hit, ref, err := b.opts.Shared.Get(ctx, k, st, want)
	var se *layercache.SharedError
	switch {
	case errors.As(err, &se):
		b.opts.Log.Warn(se.Error(), "layer", name, "platform", p.String())
	case err != nil:
		b.opts.Log.Warn("the cache-repo could not be read; building the layer", "layer", name, "repo", b.opts.Shared.Repo.String(), "err", err)
	}
	if hit == nil {
		return nil, ""
	}
	d, _ := hit.Digest()
	b.mounts[d.String()] = ref
	return hit, LayerShared
}

// verifyHit builds a hit's layer again cold (with write, into a
// directory of its own) and compares, under Options.VerifyHits: a
// difference removes the entry from the local store and fails the build
// (exit 1), naming both digests.
func (b *builder) verifyHit(ctx context.Context, k layercache.Key, name string, p spec.Platform, hit *layer.File, status string, write func(dir string) (*layer.File, error)) error {
	if !b.opts.VerifyHits {
		return nil
	}
	dir, err := os.MkdirTemp(b.opts.WorkDir, "verify-")
	if err != nil {
		return fault.Op(err)
	}
	defer os.RemoveAll(dir)
	cold, err := write(dir)
	if err != nil {
		return err
	}
	want, _ := cold.Digest()
	got, _ := hit.Digest()
	if got == want {
		b.opts.Log.Info("verified a cache hit: the cache's layer is the cold build's", "layer", name, "platform", p.String(), "digest", got.String())
		return nil
	}
	b.opts.Layers.Remove(k)
	return fault.Check(fmt.Errorf("layer %q (%s): the layer cache (%s) gave %s, a cold build %s; the local entry was removed. Either the layer is not reproducible or the cache entry is wrong (%w)", name, p, status, got, want, ErrCacheMismatch))
}

// ErrCacheMismatch is wrapped by the error of a layer the cache gave that
// a cold build of it (Options.VerifyHits) does not match.
var ErrCacheMismatch = errors.New("the cached layer is not the cold build's")

// store keeps a freshly built layer of key k in the local store st and,
// when it is readwrite, in the shared cache. A failure to store is a
// warning: the layer is built either way.
func (b *builder) store(ctx context.Context, st *layercache.Store, k layercache.Key, l *layer.File, extra []byte, name string) {
	if _, err := st.Put(k, l, extra); err != nil {
		b.opts.Log.Warn("could not store the layer in the layer cache", "layer", name, "err", err)
	}
	b.share(ctx, k, l, extra, name)
}

// share writes the layer of key k to the shared cache, when it is
// readwrite and lacks it.
func (b *builder) share(ctx context.Context, k layercache.Key, l v1.Layer, extra []byte, name string) {
	sh := b.opts.Shared
	if sh == nil || !sh.Write {
		return
	}
	wrote, err := sh.Put(ctx, k, l, extra)
	switch {
	case err != nil:
		b.opts.Log.Warn("could not write the layer to the cache-repo", "layer", name, "repo", sh.Repo.String(), "err", err)
	case wrote:
		b.opts.Log.Info("layer written to the cache-repo", "layer", name, "repo", sh.Repo.String(), "key", k.String())
	}
}

// writeCached is layer.Write through the layer cache: a hit is linked
// into the work dir and used as it is; a miss is written (on a job of its
// own, see spawn), its files hashed again as they stream, and stored when
// they hashed as its key said. Without a cache (Options.Layers nil) it is
// layer.Write. The layer's status is reported when it is awaited.
func (b *builder) writeCached(ctx context.Context, layerName, name string, p spec.Platform, entries []layer.Entry, lo layer.Options) (*pending, error) {
	st := b.opts.Layers
	status := func(s string) func(*layer.File) { return func(*layer.File) { b.layerDone(name, p, s) } }
	if st == nil {
		return b.spawn(ctx, func(ctx context.Context) (*layer.File, error) {
			return layer.Write(ctx, entries, b.opts.WorkDir, lo)
		}).then(status(LayerBuilt)), nil
	}
	k, contents, err := layercache.EntriesKey(entries, lo, b.stat, st.Builder())
	if err != nil {
		// The writer says what is wrong with the entries, in its words.
		return b.spawn(ctx, func(ctx context.Context) (*layer.File, error) {
			return layer.Write(ctx, entries, b.opts.WorkDir, lo)
		}).then(status(LayerBuilt)), nil
	}
	scan := b.scanLock(layerName)
	b.waitSame(k)
	hit, hitStatus := b.lookup(ctx, k, name, p, func(w io.Writer) error {
		return layer.WriteFormatTar(ctx, w, entries, lo.Format, lo.Epoch)
	})
	if hit != nil {
		var raws []secrets.Raw
		l, err := b.linkHit(hit, lo.Compression)
		if err == nil && len(hit.Extra()) > 0 {
			err = json.Unmarshal(hit.Extra(), &raws)
		}
		if err == nil {
			// The guard judges the layer's findings as if it had read
			// the files again.
			scan.Lock()
			b.guard.Replay(layerName, raws)
			scan.Unlock()
			cold := lo
			cold.Observe, cold.Progress = nil, nil
			if err := b.verifyHit(ctx, k, name, p, l, hitStatus, func(dir string) (*layer.File, error) { return layer.Write(ctx, entries, dir, cold) }); err != nil {
				return nil, err
			}
			b.opts.Log.Debug("layer cache hit", "layer", name, "platform", p.String(), "key", k.String(), "from", hitStatus, "checked", string(hit.Checked()))
			b.share(ctx, k, l, hit.Extra(), name)
			return ready(l).then(status(hitStatus)), nil
		}
		b.opts.Log.Warn("layer cache entry unusable; building the layer", "layer", name, "err", err)
	}
	lo.Observe = contents.Observe(lo.Observe)
	return b.spawnStored(ctx, layerName, name, entries, lo, st, k, func(raws []secrets.Raw) (any, bool) {
		if err := contents.Check(); err != nil {
			b.opts.Log.Warn("not caching the layer: "+err.Error(), "layer", name)
			return nil, false
		}
		return raws, true
	}).then(status(LayerBuilt)), nil
}

// spawnStored writes a layer on a job of its own (see spawn), holding its
// layer name's scan lock, and when st is not nil stores it under k, with
// what extra makes of the secret guard's findings in it (extra's ok
// false: not stored), and marks it in flight.
func (b *builder) spawnStored(ctx context.Context, layerName, name string, entries []layer.Entry, lo layer.Options, st *layercache.Store, k layercache.Key, extra func([]secrets.Raw) (any, bool)) *pending {
	scan := b.scanLock(layerName)
	pd := b.spawn(ctx, func(ctx context.Context) (*layer.File, error) {
		scan.Lock()
		defer scan.Unlock()
		before := len(b.guard.Raws(layerName)) // another platform's, of a layer of the same name
		l, err := layer.Write(ctx, entries, b.opts.WorkDir, lo)
		if err != nil || st == nil {
			return l, err
		}
		x, ok := extra(b.guard.Raws(layerName)[before:])
		if !ok {
			return l, nil
		}
		data, err := json.Marshal(x)
		if err != nil {
			return l, nil
		}
		b.store(ctx, st, k, l, data, name)
		return l, nil
	})
	if st != nil {
		b.writing(k, pd)
	}
	return pd
}

// linkHit puts a hit's blob into the work dir (a hard link, else a copy),
// so that pruning the store cannot take it during the build.
func (b *builder) linkHit(hit *layercache.Layer, alg compress.Algorithm) (*layer.File, error) {
	d, _ := hit.Digest()
	diffID, _ := hit.DiffID()
	size, _ := hit.Size()
	dst := filepath.Join(b.opts.WorkDir, "sha256-"+d.Hex)
	if _, err := os.Stat(dst); err != nil {
		if err := os.Link(hit.Path(), dst); err != nil {
			rc, err := hit.Compressed()
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			f, err := os.CreateTemp(b.opts.WorkDir, "layer-*.tmp")
			if err != nil {
				return nil, err
			}
			defer os.Remove(f.Name())
			if _, err := f.ReadFrom(rc); err != nil {
				f.Close()
				return nil, fmt.Errorf("copying %s: %w", hit.Path(), err)
			}
			if err := f.Close(); err != nil {
				return nil, err
			}
			if err := os.Rename(f.Name(), dst); err != nil {
				return nil, err
			}
		}
	}
	return layer.Existing(dst, d, diffID, size, alg), nil
}

func (b *builder) layerDone(name string, p spec.Platform, status string) {
	if b.opts.LayerDone != nil {
		b.opts.LayerDone(name, p.String(), status)
	}
}

// saveStat writes the stat cache for the next build.
func (b *builder) saveStat() {
	if b.stat == nil {
		return
	}
	if err := b.stat.Save(); err != nil {
		b.opts.Log.Warn("could not save the stat cache", "err", err)
	}
}

// packageExtra is what a package layer's cache entry keeps, for a hit to
// replay what building the layer would have done besides its bytes: the
// secret guard's findings, the report's log lines, and the entries that
// the usrmerge check against the base and the removal warnings of later
// layers look at (every entry's path and type, a link's target).
type packageExtra struct {
	Raws    []secrets.Raw  `json:"raws"`
	Log     []string       `json:"log"`
	Entries []entrySummary `json:"entries"`
	// Epoch is the layer's epoch (format 2: its .debs' newest mtime,
	// clamped), which the systemd layer's epoch takes into account.
	Epoch int64 `json:"epoch"`
}

type entrySummary struct {
	Path   string     `json:"p"`
	Type   layer.Type `json:"t"`
	Target string     `json:"l,omitempty"`
}

// packagesParams is the canonical description of what a package layer
// holds besides the .debs' files, for its key: the pins' names and
// versions (the build checks each .deb against them), usrmerge, the
// time zone and the exclusion record, and the rule of the layer's epoch
// (so that no entry stored before package layers had an epoch of their
// own is taken).
func packagesParams(s *spec.Spec, al *lock.AptLayer, excluded []byte) string {
	var b strings.Builder
	for _, p := range al.Pins {
		fmt.Fprintf(&b, "pin %s %s\n", strconv.Quote(p.Name), strconv.Quote(p.Version))
	}
	fmt.Fprintf(&b, "usrmerge %t\ntimezone %s\nexcluded %s\n", s.UsrMerge(), strconv.Quote(aptTimezone(s)), strconv.Quote(string(excluded)))
	b.WriteString("epoch newest-deb-mtime\n")
	return b.String()
}

// packageLayer is layer i, of Debian packages, for platform p, and its
// epoch. With a layer cache, its key is made of the lock's pins
// (PackagesKey) and the build's epoch: a hit reads and unpacks no .deb,
// and replays the checks and the log of the build that stored it.
func (b *builder) packageLayer(ctx context.Context, i int, layerName string, p spec.Platform, bi *base.Image) (*pending, int64, error) {
	name := b.s.Layers[i].Name
	al, excluded, err := b.aptPlan(i, p)
	if err != nil {
		return nil, 0, err
	}
	lo := b.layerOptions(layerName, name, p)
	st := b.opts.Layers
	var k layercache.Key
	if st != nil {
		debs := make([]string, len(al.Pins))
		for j, pin := range al.Pins {
			debs[j] = "sha256:" + pin.SHA256
		}
		if k, err = layercache.PackagesKey(lo, debs, packagesParams(b.s, al, excluded), st.Builder()); err != nil {
			st = nil
		}
	}
	if st != nil {
		b.waitSame(k)
		if l, epoch, ok, err := b.packageHit(ctx, st, k, i, layerName, p, bi, al); err != nil {
			return nil, 0, err
		} else if ok {
			return l, epoch, nil
		}
	}
	entries, lines, err := b.packageEntries(ctx, i, p, bi, al, excluded)
	if err != nil {
		return nil, 0, err
	}
	b.warnRemovals(i, entries)
	epoch, err := b.layerEpoch(ctx, i, p, entries)
	if err != nil {
		return nil, 0, err
	}
	lo.Epoch = epoch // the key has the build's: this follows from it and the .debs
	pd := b.spawnStored(ctx, layerName, name, entries, lo, st, k, func(raws []secrets.Raw) (any, bool) {
		x := packageExtra{Raws: raws, Log: lines, Epoch: epoch}
		for _, e := range entries {
			x.Entries = append(x.Entries, entrySummary{Path: e.Path, Type: e.Type, Target: e.Target})
		}
		return x, true
	})
	pd.wrap = func(err error) error { return b.layerError(i, err) }
	written := b.logWritten(name, p, len(entries))
	return pd.then(func(l *layer.File) {
		b.layerDone(name, p, LayerBuilt)
		written(l)
	}), epoch, nil
}

// packageHit looks package layer i up under k; ok says it was found and
// used, with the layer's epoch.
func (b *builder) packageHit(ctx context.Context, st *layercache.Store, k layercache.Key, i int, layerName string, p spec.Platform, bi *base.Image, al *lock.AptLayer) (*pending, int64, bool, error) {
	name := b.s.Layers[i].Name
	hit, status := b.lookup(ctx, k, name, p, nil)
	if hit == nil {
		return nil, 0, false, nil
	}
	var x packageExtra
	if err := json.Unmarshal(hit.Extra(), &x); err != nil {
		b.opts.Log.Warn("layer cache entry unusable; building the layer", "layer", name, "err", err)
		return nil, 0, false, nil
	}
	l, err := b.linkHit(hit, b.opts.Compression)
	if err != nil {
		b.opts.Log.Warn("layer cache entry unusable; building the layer", "layer", name, "err", err)
		return nil, 0, false, nil
	}
	b.logPackages(i, p, x.Log, al)
	entries := make([]layer.Entry, len(x.Entries))
	for j, e := range x.Entries {
		entries[j] = layer.Entry{Path: e.Path, Type: e.Type, Target: e.Target}
	}
	bf, err := b.baseFiles(ctx, p, bi)
	if err != nil {
		return nil, 0, false, err
	}
	if err := b.checkUsrMerge(entries, bf); err != nil {
		return nil, 0, false, err
	}
	b.warnRemovals(i, entries)
	scan := b.scanLock(layerName)
	scan.Lock()
	b.guard.Replay(layerName, x.Raws)
	scan.Unlock()
	if err := b.verifyHit(ctx, k, name, p, l, status, func(dir string) (*layer.File, error) {
		al, excluded, err := b.aptPlan(i, p)
		if err != nil {
			return nil, err
		}
		es, _, err := b.packageEntries(ctx, i, p, bi, al, excluded)
		if err != nil {
			return nil, err
		}
		lo := layer.Options{Format: b.opts.Format, Epoch: x.Epoch, Compression: b.opts.Compression}
		return layer.Write(ctx, es, dir, lo)
	}); err != nil {
		return nil, 0, false, err
	}
	b.opts.Log.Debug("layer cache hit", "layer", name, "platform", p.String(), "key", k.String(), "from", status, "checked", string(hit.Checked()))
	b.share(ctx, k, l, hit.Extra(), name)
	written := b.logWritten(name, p, len(entries))
	return ready(l).then(func(l *layer.File) {
		b.layerDone(name, p, status)
		written(l)
	}), x.Epoch, true, nil
}
