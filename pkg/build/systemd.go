package build

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/layer"
	"github.com/reprobuild/repro/pkg/spec"
	"github.com/reprobuild/repro/pkg/systemd"
)

// maxUnitFile bounds what is read of one file of a unit directory.
const maxUnitFile = 1 << 20

// systemdLayer is the final layer that systemd.enable writes for platform
// p: the [Install] links of the units, found in the image below it (the
// base's layers and every layer built before, whiteouts applied).
func (b *builder) systemdLayer(ctx context.Context, p spec.Platform, below []v1.Layer) (*pending, error) {
	t := systemd.NewTree()
	// units[k]: layer k of below holds unit files (or links, whiteouts
	// or non-directories in the unit directories or their parents).
	units := make([]bool, len(below))
	for k, l := range below {
		var err error
		if units[k], err = addUnitFiles(ctx, t, l); err != nil {
			return nil, fault.Op(fmt.Errorf("reading the image's unit files: %w", err))
		}
	}
	links, warnings, err := systemd.Enable(t, b.s.Systemd.Enable)
	if err != nil {
		var se *systemd.Error
		if errors.As(err, &se) {
			for i, u := range b.s.Systemd.Enable {
				if u == se.Unit {
					return nil, fault.Bad(b.s.ErrorAt(fmt.Sprintf("systemd.enable[%d]", i), "%s", se.Msg))
				}
			}
			return nil, fault.Bad(b.s.ErrorAt("systemd.enable", "%s", err))
		}
		return nil, err
	}
	for _, w := range warnings {
		b.opts.Log.Warn("systemd.enable: a unit named by Also= is not enabled", "why", w)
	}
	var entries []layer.Entry
	for _, l := range links {
		entries = append(entries, layer.Entry{Path: l.Path, Type: layer.Symlink, Target: l.Target, Mode: 0o777, Origin: "systemd.enable"})
		b.opts.Log.Info("systemd: enabled", "link", l.Path, "target", l.Target, "platform", p.String())
	}
	epoch := b.opts.Values.Epoch
	if b.gitEpochs() {
		// Its inputs: its own lines of the spec and the unit files of
		// the layers below: those that repro built, with the epochs in
		// built, count when they hold unit files (the base's are never
		// rewritten, and the layers without units change no link).
		built := units[len(below)-len(b.built):]
		if epoch, err = b.epochFor("systemd", p, func(g *GitTimes, bound int64) (int64, error) {
			t := g.linesTime(b.s, "systemd", bound)
			for k, e := range b.built {
				if built[k] {
					t = max(t, e)
				}
			}
			return t, nil
		}); err != nil {
			return nil, err
		}
	}
	return b.write(ctx, -1, "systemd", "systemd", p, entries, epoch)
}

// addUnitFiles applies the entries of layer l that systemd.Wanted names to
// t, whiteouts included. units says whether l can change what
// systemd.Enable finds: it holds an entry in a unit directory, or one
// that is not a directory (a link, a whiteout), or a directory replacing
// one, at a parent of one or at the top; a layer whose only such entries
// are directories over directories or nothing (/etc, /usr, /srv) cannot.
func addUnitFiles(ctx context.Context, t *systemd.Tree, l v1.Layer) (units bool, err error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return false, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		if err := ctx.Err(); err != nil {
			return units, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return units, nil
		}
		if err != nil {
			return units, err
		}
		p := path.Clean("/" + h.Name)
		dir, base := path.Split(p)
		if base == ".wh..wh..opq" {
			d := path.Clean(dir)
			if systemd.Wanted(d) {
				t.Remove(d)
				t.Add(d, systemd.Dir, "", nil)
				units = true
			}
			continue
		}
		if name, ok := strings.CutPrefix(base, ".wh."); ok {
			gone := path.Join(dir, name)
			t.Remove(gone)
			units = units || systemd.Wanted(gone)
			continue
		}
		if !systemd.Wanted(p) {
			continue
		}
		if h.Typeflag != tar.TypeDir || systemd.InUnitDir(p) || t.HasNonDir(p) {
			units = true
		}
		switch h.Typeflag {
		case tar.TypeDir:
			t.Add(p, systemd.Dir, "", nil)
		case tar.TypeSymlink:
			t.Add(p, systemd.Symlink, h.Linkname, nil)
		case tar.TypeReg, tar.TypeLink:
			var data []byte
			if h.Typeflag == tar.TypeReg {
				if data, err = io.ReadAll(io.LimitReader(tr, maxUnitFile)); err != nil {
					return units, err
				}
			}
			// A hard link names a file of the same layer; its unit text is
			// that file's (unit files are rarely hard links).
			t.Add(p, systemd.File, "", data)
		default:
			t.Remove(p)
		}
	}
}
