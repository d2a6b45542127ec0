package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/layer"
	"github.com/reprobuild/repro/pkg/layercache"
	"github.com/reprobuild/repro/pkg/secrets"
	"github.com/reprobuild/repro/pkg/spec"
)

// Layer statuses, as Options.LayerDone reports them.
const (
	LayerBuilt  = "built"
	LayerCached = "cached"
)

// writeCached is layer.Write through the layer cache: a hit is linked
// into the work dir and used as it is; a miss is written, its files
// hashed again as they stream, and stored when they hashed as its key
// said. Without a cache (Options.Layers nil) it is layer.Write.
func (b *builder) writeCached(ctx context.Context, layerName, name string, p spec.Platform, entries []layer.Entry, lo layer.Options) (*layer.File, error) {
	st := b.opts.Layers
	if st == nil {
		l, err := layer.Write(ctx, entries, b.opts.WorkDir, lo)
		if err == nil {
			b.layerDone(name, p, LayerBuilt)
		}
		return l, err
	}
	k, contents, err := layercache.EntriesKey(entries, lo, b.stat, st.Builder())
	if err != nil {
		// The writer says what is wrong with the entries, in its words.
		l, err := layer.Write(ctx, entries, b.opts.WorkDir, lo)
		if err == nil {
			b.layerDone(name, p, LayerBuilt)
		}
		return l, err
	}
	hit, err := st.Get(k)
	var ce *layercache.CorruptError
	switch {
	case errors.As(err, &ce):
		b.opts.Log.Warn(ce.Error(), "layer", name, "platform", p.String())
	case err != nil:
		b.opts.Log.Warn("layer cache unreadable; building the layer", "layer", name, "err", err)
	}
	if hit != nil {
		var raws []secrets.Raw
		l, err := b.linkHit(hit, lo.Compression)
		if err == nil && len(hit.Extra()) > 0 {
			err = json.Unmarshal(hit.Extra(), &raws)
		}
		if err == nil {
			// The guard judges the layer's findings as if it had read
			// the files again.
			b.guard.Replay(layerName, raws)
			b.opts.Log.Debug("layer cache hit", "layer", name, "platform", p.String(), "key", k.String())
			b.layerDone(name, p, LayerCached)
			return l, nil
		}
		b.opts.Log.Warn("layer cache entry unusable; building the layer", "layer", name, "err", err)
	}
	lo.Observe = contents.Observe(lo.Observe)
	before := len(b.guard.Raws(layerName)) // another platform's, of a layer of the same name
	l, err := layer.Write(ctx, entries, b.opts.WorkDir, lo)
	if err != nil {
		return nil, err
	}
	b.layerDone(name, p, LayerBuilt)
	if err := contents.Check(); err != nil {
		b.opts.Log.Warn("not caching the layer: "+err.Error(), "layer", name)
		return l, nil
	}
	extra, err := json.Marshal(b.guard.Raws(layerName)[before:])
	if err != nil {
		return l, nil
	}
	if _, err := st.Put(k, l, extra); err != nil {
		b.opts.Log.Warn("could not store the layer in the layer cache", "layer", name, "err", err)
	}
	return l, nil
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
