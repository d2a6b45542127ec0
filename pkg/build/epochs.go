package build

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"

	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/layer"
	"github.com/reprobuild/repro/pkg/spec"
	"github.com/reprobuild/repro/pkg/vcs"
)

// LayerEpochs are the layer epochs that git gave a build (output format
// 2 with epoch: git; package layer's doc has the rule), in seconds since
// 1970: by the layer's field in the spec (layers[0], accounts, systemd),
// then by platform (linux/amd64). A rebuild where git cannot say them
// (build --check's copy holds no .git; verify from a shallow clone, or
// from no clone) is given them: the provenance records them.
type LayerEpochs map[string]map[string]int64

func (e LayerEpochs) get(field string, p spec.Platform) (int64, bool) {
	t, ok := e[field][p.String()]
	return t, ok
}

func (e LayerEpochs) set(field string, p spec.Platform, t int64) {
	if e[field] == nil {
		e[field] = map[string]int64{}
	}
	e[field][p.String()] = t
}

// GitTimes are what git says about when the context's files and the
// spec's lines last changed, read once for a build (ReadGitTimes).
type GitTimes struct {
	// Shallow: a shallow clone, where every layer takes the build's epoch.
	Shallow bool
	hist    *vcs.History
	// committed are HEAD's files under the context.
	committed map[string]bool
	// blame is each line's time in the spec; nil when the spec has no
	// commit.
	blame []int64
}

// ReadGitTimes reads the history of the context of s (whose git is info)
// and the blame of its spec file. In a shallow clone it reads nothing
// and warns: there every layer takes the build's epoch.
func ReadGitTimes(ctx context.Context, s *spec.Spec, info vcs.Info, log *slog.Logger) (*GitTimes, error) {
	if info.Shallow {
		log.Warn("a shallow git clone: when each layer's sources last changed is unknowable here, so every layer takes HEAD's time (the build's epoch), and its layers differ from a full clone's; git fetch --unshallow for per-layer epochs (a rebuild from a verified provenance takes them from it)")
		return &GitTimes{Shallow: true}, nil
	}
	g := &GitTimes{}
	var err error
	if g.hist, err = vcs.ReadHistory(ctx, s.Dir, false); err != nil {
		return nil, fault.Op(err)
	}
	if g.committed, err = vcs.Committed(ctx, s.Dir); err != nil {
		return nil, fault.Op(err)
	}
	if g.blame, err = vcs.Blame(ctx, s.SpecDir, filepath.Base(s.File)); err != nil {
		return nil, fault.Op(err)
	}
	return g, nil
}

// gitEpochs reports whether the build gives its layers epochs of their
// own from git: output format 2 and later, with epoch: git.
func (b *builder) gitEpochs() bool {
	return b.opts.Format != compress.Format1 && b.s.Epoch != nil && b.s.Epoch.Git
}

// linesTime is the newest time among the spec's lines of field (its own
// lines, spec.Lines), a line not committed counting as bound; bound when
// field is not in the spec.
func (g *GitTimes) linesTime(s *spec.Spec, field string, bound int64) int64 {
	first, last, ok := s.Lines(field)
	if !ok || g.blame == nil {
		return bound
	}
	if last == 0 || last >= len(g.blame) {
		last = len(g.blame) - 1
	}
	var t int64
	for line := first; line <= last; line++ {
		lt := bound
		if line < len(g.blame) && g.blame[line] != 0 {
			lt = g.blame[line]
		}
		t = max(t, lt)
	}
	return t
}

// epochFor is the epoch of the layer at field (layers[i], accounts,
// systemd) for p in a build with gitEpochs: the one Options.LayerEpochs
// gives, else compute's, clamped to the build's epoch; recorded in the
// result either way. Without either (a rebuild given neither git nor the
// epochs) it is the build's epoch.
func (b *builder) epochFor(field string, p spec.Platform, compute func(g *GitTimes, bound int64) (int64, error)) (int64, error) {
	bound := b.opts.Values.Epoch
	t, ok := b.opts.LayerEpochs.get(field, p)
	switch {
	case ok:
	case b.opts.LayerEpochs != nil || b.opts.Git == nil:
		if !b.warnedEpochs {
			b.warnedEpochs = true
			b.opts.Log.Warn("epoch: git, but neither git nor the recorded layer epochs say when the layers last changed; the layers take the build's epoch", "layer", field)
		}
		t = bound
	case b.opts.Git.Shallow:
		t = bound
	default:
		var err error
		if t, err = compute(b.opts.Git, bound); err != nil {
			return 0, err
		}
	}
	t = max(0, min(t, bound))
	b.epochs.set(field, p, t)
	return t, nil
}

// notContextDirs are the directories, made absolute, whose files are no
// sources of the context even where they are inside it (--cache-dir
// .repro-cache in a CI checkout, as specs/ci keeps it): the cache, which
// holds a url's file, and the work directory, which holds a compiled
// program. Build sets builder.notContext to them once.
func notContextDirs(opts Options) []string {
	var dirs []string
	if opts.Cache != nil {
		dirs = append(dirs, opts.Cache.Dir())
	}
	dirs = append(dirs, opts.WorkDir)
	out := dirs[:0]
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if abs, err := filepath.Abs(d); err == nil {
			d = abs
		}
		out = append(out, d)
	}
	return out
}

// contextEpoch is the epoch of context layer i for p, from its entries:
// the newest commit that touched a source it copies (through excludes),
// the module tree of a go: entry, or its own lines of the spec; the
// build's epoch when it copies a file that HEAD does not hold.
func (b *builder) contextEpoch(ctx context.Context, i int, p spec.Platform, entries []layer.Entry) (int64, error) {
	field := fmt.Sprintf("layers[%d]", i)
	return b.epochFor(field, p, func(g *GitTimes, bound int64) (int64, error) {
		root := b.srcDir.Root()
		for k := range entries {
			hp := entries[k].HostPath
			if abs, err := filepath.Abs(hp); hp != "" && err == nil {
				hp = abs
			}
			if hp == "" || hp == root || !inside(root, hp) || slices.ContainsFunc(b.notContext, func(d string) bool { return inside(d, hp) }) {
				continue // not from the context (a url's file, a compiled program)
			}
			rel, err := filepath.Rel(root, hp)
			if err != nil {
				return 0, fault.Op(err)
			}
			rel = filepath.ToSlash(rel)
			if !g.committed[rel] {
				b.opts.Log.Info("a layer copies a file that HEAD does not hold; the layer takes the build's epoch", "layer", b.s.Layers[i].Name, "file", rel)
				return bound, nil
			}
		}
		t := g.linesTime(b.s, field, bound)
		for j, c := range b.s.Layers[i].Contents {
			cf := fmt.Sprintf("%s.contents[%d]", field, j)
			var paths []string
			var keep func(string) bool
			switch {
			case c.Source != "":
				src, err := b.s.Expand(cf+".source", c.Source, b.opts.Values.ForPlatform(p))
				if err != nil {
					return 0, err
				}
				named := strings.TrimPrefix(filepath.ToSlash(filepath.Clean(src)), "/")
				paths = append(paths, named)
				if r, err := b.srcDir.Resolved(src); err == nil && r != named {
					paths = append(paths, r)
				}
				if ex := c.Exclude; len(ex) > 0 {
					keep = func(rel string) bool { return !layer.ExcludedPath(ex, rel) }
				}
			case c.Go != "":
				_, modRoot, err := goPackage(b.s, cf+".go", c.Go)
				if err != nil {
					return 0, err
				}
				r, err := filepath.Rel(root, modRoot)
				if err != nil {
					return 0, fault.Op(err)
				}
				paths = append(paths, filepath.ToSlash(r))
			}
			for _, q := range paths {
				if qt, ok := g.hist.Newest(q, keep); ok {
					t = max(t, qt)
				}
			}
		}
		return t, nil
	})
}

// layerEpoch is the epoch of layer i for p, whose entries are given: in
// format 1, the build's; in format 2, a package layer's is the newest
// mtime of its .debs' files, clamped to the build's epoch, and a context
// layer's, with epoch: git, contextEpoch's, else the build's.
func (b *builder) layerEpoch(ctx context.Context, i int, p spec.Platform, entries []layer.Entry) (int64, error) {
	bound := b.opts.Values.Epoch
	switch {
	case b.opts.Format == compress.Format1:
		return bound, nil
	case len(b.s.Layers[i].Packages) > 0:
		return layer.NewestMTime(entries, bound), nil
	case b.gitEpochs():
		return b.contextEpoch(ctx, i, p, entries)
	}
	return bound, nil
}
