package build

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/reprobuild/repro/pkg/accounts"
	"github.com/reprobuild/repro/pkg/apt"
	"github.com/reprobuild/repro/pkg/base"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/layer"
	"github.com/reprobuild/repro/pkg/lock"
	"github.com/reprobuild/repro/pkg/spec"
)

// baseFileWanted is what the build reads of a base's filesystem: the
// top-level directories that usrmerge concerns, and the account files.
func baseFileWanted(p string) bool {
	if strings.Count(p, "/") == 1 && apt.UsrMergeDir(p[1:]) {
		return true
	}
	for _, f := range accounts.Files {
		if p == f {
			return true
		}
	}
	return false
}

// baseFiles returns the files of the base that the build needs for
// platform p, read once; nil without a base.
func (b *builder) baseFiles(ctx context.Context, p spec.Platform, bi *base.Image) (map[string]*base.File, error) {
	if bi == nil {
		return nil, nil
	}
	if f, ok := b.bases[p.String()]; ok {
		return f, nil
	}
	f, err := bi.Files(ctx, baseFileWanted)
	if err != nil {
		return nil, err
	}
	b.bases[p.String()] = f
	return f, nil
}

// aptPlan is what layer i of packages installs for platform p: the lock's
// pins, and the record of the exclusions that the layer writes (nil when
// it excludes nothing).
func (b *builder) aptPlan(i int, p spec.Platform) (*lock.AptLayer, []byte, error) {
	s := b.s
	al, why := b.opts.Lock.AptLayer(s, p, i)
	if al == nil {
		return nil, nil, fault.Bad(&classError{s.ErrorAt(fmt.Sprintf("layers[%d].packages", i), "the lock does not pin %s", why), &NeedsLockError{Spec: s.File}})
	}
	if len(al.Excluded) == 0 {
		return al, nil, nil
	}
	// The record holds the exclusions of this layer and the earlier
	// ones, since this layer's file hides theirs.
	var all []apt.Exclusion
	for j := 0; j < i; j++ {
		if len(s.Layers[j].Packages) > 0 {
			if prev, _ := b.opts.Lock.AptLayer(s, p, j); prev != nil {
				all = append(all, prev.Excluded...)
			}
		}
	}
	all = append(all, al.Excluded...)
	data, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	return al, append(data, '\n'), nil
}

// packageEntries returns the entries of layer i, a layer of Debian
// packages, for platform p: exactly the .debs that al pins, fetched
// through the cache and verified, extracted without running anything;
// and the lines of its report, which it logs.
func (b *builder) packageEntries(ctx context.Context, i int, p spec.Platform, bi *base.Image, al *lock.AptLayer, excluded []byte) ([]layer.Entry, []string, error) {
	s := b.s
	field := fmt.Sprintf("layers[%d].packages", i)
	if b.opts.Cache == nil {
		return nil, nil, fault.Op(fmt.Errorf("%s: no cache to fetch .debs into", field))
	}
	var fetchOpts []apt.FetchOption
	if sn := b.snapshot(p); sn != nil {
		fetchOpts = append(fetchOpts, apt.FromSnapshot(*sn, b.opts.Log))
	}
	debs, err := apt.FetchPinned(ctx, b.opts.Cache, al.Pins, fetchOpts...)
	if err != nil {
		var mm *cache.MismatchError
		hint := ""
		switch {
		case errors.As(err, &mm):
			hint = "; a .deb never changes under its file name, so the repository (or something between it and you) serves a file other than the one locked: nothing was written"
		case cache.IsNotFound(err):
			hint = "; the repository no longer has this version (Debian mirrors keep only the current ones): run repro lock --update to move on, or set apt.snapshot (snapshot.debian.org) so that the build fetches it from there"
		}
		return nil, nil, &locatedError{msg: s.ErrorAt(field, "%v%s", err, hint).Error(), err: err}
	}
	work := filepath.Join(b.opts.WorkDir, fmt.Sprintf("apt-%d-%s", i, strings.ReplaceAll(p.String(), "/", "-")))
	entries, rep, err := apt.Entries(ctx, debs, apt.EntriesOptions{UsrMerge: s.UsrMerge(), WorkDir: work, Timezone: aptTimezone(s)})
	if err != nil {
		return nil, nil, &locatedError{msg: s.ErrorAt(field, "%v", err).Error(), err: err}
	}
	lines := append(rep.Lines(), fmt.Sprintf("packages extracted; no maintainer script was run (%d packages, %d skipped)", len(rep.Packages), len(rep.Skipped)))
	b.logPackages(i, p, lines, al)
	bf, err := b.baseFiles(ctx, p, bi)
	if err != nil {
		return nil, nil, err
	}
	if err := b.checkUsrMerge(entries, bf); err != nil {
		return nil, nil, err
	}
	if excluded != nil {
		entries = append(entries, layer.Entry{Path: apt.ExcludedFile, Type: layer.Regular, Mode: 0o644, Size: int64(len(excluded)),
			Open:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(excluded)), nil },
			Origin: "apt.exclude"})
	}
	for k := range entries {
		entries[k].Origin = field + ": " + entries[k].Origin
	}
	return entries, lines, nil
}

// logPackages logs what extracting layer i's packages did (the report's
// lines), and what the lock left out.
func (b *builder) logPackages(i int, p spec.Platform, lines []string, al *lock.AptLayer) {
	name := b.s.Layers[i].Name
	for _, line := range lines {
		b.opts.Log.Info(line, "layer", name, "platform", p.String())
	}
	for _, x := range al.Excluded {
		b.opts.Log.Warn(fmt.Sprintf("left out %s (apt.exclude), which %s depend on", x.Name, strings.Join(x.RequiredBy, ", ")), "layer", name, "platform", p.String())
	}
}

// checkUsrMerge applies apt.CheckUsrMerge to the base's top-level
// directories, placing its complaint at apt.usrmerge.
func (b *builder) checkUsrMerge(entries []layer.Entry, bf map[string]*base.File) error {
	top := map[string]apt.TopEntry{}
	for p, f := range bf {
		if strings.Count(p, "/") == 1 && apt.UsrMergeDir(p[1:]) {
			top[p] = apt.TopEntry{Dir: f.Type == tar.TypeDir, Symlink: f.Type == tar.TypeSymlink, Target: f.Linkname}
		}
	}
	if err := apt.CheckUsrMerge(entries, b.s.UsrMerge(), top); err != nil {
		return fault.Bad(b.s.ErrorAt("apt.usrmerge", "%v", err))
	}
	return nil
}

// snapshot is where a pinned .deb that its source deleted comes from: the
// spec's apt.snapshot, at its timestamp or the one the lock recorded.
func (b *builder) snapshot(p spec.Platform) *apt.Snapshot {
	sn := b.s.Apt.Snapshot
	if sn == nil {
		return nil
	}
	out := &apt.Snapshot{URL: sn.URL, Timestamp: sn.Timestamp}
	if out.Timestamp == "" && b.opts.Lock != nil {
		if a, ok := b.opts.Lock.Apt[p.String()]; ok && a.Snapshot != nil {
			out.Timestamp = a.Snapshot.Timestamp
		}
	}
	if out.Timestamp == "" {
		return nil
	}
	return out
}

// aptTimezone is the spec's apt.timezone, or "".
func aptTimezone(s *spec.Spec) string {
	if s.Apt == nil {
		return ""
	}
	return s.Apt.Timezone
}
