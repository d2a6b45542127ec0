package apt

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/layer"
)

// EntriesOptions tune Entries.
type EntriesOptions struct {
	// UsrMerge maps /bin, /sbin and /lib* (lib, lib32, lib64, libo32,
	// libx32) into /usr and adds the symlinks /bin -> usr/bin and so on.
	UsrMerge bool
	// Timezone is the zone of /usr/share/zoneinfo that /etc/localtime
	// names when tzdata is installed (apt.timezone); empty: none.
	Timezone string
	// WorkDir receives each package's decompressed data.tar; the entries'
	// Open functions read from there, so it must outlive the layer's
	// writing. The caller removes it.
	WorkDir string
}

// StatusDir is where Entries writes each package's dpkg metadata, as
// distroless does: <name> (the control file) and <name>.md5sums.
const StatusDir = "/var/lib/dpkg/status.d"

// Report says what Entries did not do and what it chose.
type Report struct {
	// Packages are the packages extracted, name=version, sorted.
	Packages []string
	// Skipped lists every maintainer script and trigger that was not run.
	Skipped []Skipped
	// Notes are choices worth a line: device nodes dropped, directories
	// shipped with different modes, files taken by Replaces.
	Notes []string
	// Actions say, for every kind of work the skipped postinst scripts
	// and triggers do, whether repro did it and how, sorted by package.
	Actions []Action
}

// Skipped is one maintainer script or trigger that was not run.
type Skipped struct {
	Package string
	// Kind is the script (preinst, postinst, prerm, postrm, config) or
	// "trigger".
	Kind string
	// Detail is the trigger directive ("activate-noawait ldconfig").
	Detail string
}

// Lines renders the report for stderr, one line each.
func (r *Report) Lines() []string {
	var out []string
	for _, s := range r.Skipped {
		if s.Kind == "trigger" {
			out = append(out, fmt.Sprintf("skipped trigger of %s: %s", s.Package, s.Detail))
		} else {
			out = append(out, fmt.Sprintf("skipped maintainer script %s of %s", s.Kind, s.Package))
		}
	}
	for _, a := range r.Actions {
		out = append(out, fmt.Sprintf("%s of %s: %s: %s by repro: %s", a.Script, a.Package, a.What, a.Status, a.How))
	}
	out = append(out, r.Notes...)
	return out
}

// owned is an entry and the package that ships it.
type owned struct {
	e   layer.Entry
	pkg *debPackage // nil for entries repro makes (usrmerge symlinks)
}

type debPackage struct {
	ctl *debControl
}

func (d *debPackage) name() string {
	if d == nil {
		return "usrmerge"
	}
	return d.ctl.pkg.Name
}

// Entries extracts the .debs into layer entries: every file, directory,
// symlink and hard link of each data.tar with the package's modes and
// owners (the layer's canonical writer sorts them and sets mtimes), plus
// the dpkg metadata under StatusDir. Directories shipped by several
// packages are merged; a non-directory path shipped by two packages is
// an error unless one Replaces the other. Maintainer scripts and
// triggers are never run: the report lists them.
func Entries(ctx context.Context, debs []LocalDeb, opts EntriesOptions) ([]layer.Entry, *Report, error) {
	if opts.WorkDir == "" {
		return nil, nil, errors.New("apt.Entries: no work directory")
	}
	if err := os.MkdirAll(opts.WorkDir, 0o755); err != nil {
		return nil, nil, fault.Op(err)
	}
	x := &extractor{opts: opts, byPath: map[string]*owned{}, merged: map[string]bool{}, report: &Report{}}
	var pkgs []*debPackage
	for i, deb := range debs {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		dp, err := x.extract(i, deb)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", debName(deb), err)
		}
		pkgs = append(pkgs, dp)
	}
	if err := x.conflicts(); err != nil {
		return nil, nil, fault.Bad(err)
	}
	if opts.UsrMerge {
		for _, d := range []string{"bin", "sbin", "lib"} {
			x.merged[d] = true
		}
		for _, d := range sortedKeys(x.merged) {
			p := "/" + d
			if o, ok := x.byPath[p]; ok {
				return nil, nil, fault.Bad(fmt.Errorf("%s ships %s, which usrmerge makes a symlink to usr/%s", o.pkg.name(), p, d))
			}
			x.byPath[p] = &owned{e: layer.Entry{Path: p, Type: layer.Symlink, Mode: 0o777, Target: "usr/" + d, Origin: "usrmerge"}}
		}
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].name() < pkgs[j].name() })
	for i, dp := range pkgs {
		if i > 0 && pkgs[i-1].name() == dp.name() {
			return nil, nil, fault.Bad(fmt.Errorf("package %s is given twice", dp.name()))
		}
	}
	if err := x.declarative(pkgs); err != nil {
		return nil, nil, err
	}
	for _, dp := range pkgs {
		x.metadata(dp)
	}
	out := make([]layer.Entry, 0, len(x.byPath))
	for _, p := range sortedKeys(x.byPath) {
		out = append(out, x.byPath[p].e)
	}
	r := x.report
	sort.Strings(r.Packages)
	sort.Slice(r.Skipped, func(i, j int) bool {
		a, b := r.Skipped[i], r.Skipped[j]
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Detail < b.Detail
	})
	sort.Strings(r.Notes)
	return out, r, nil
}

func debName(d LocalDeb) string {
	if d.Pin.Name != "" {
		return d.Pin.Name + "=" + d.Pin.Version
	}
	return d.Path
}

type extractor struct {
	opts   EntriesOptions
	byPath map[string]*owned
	// clashes are paths shipped by more than one package, resolved after
	// every package is read (so the result does not depend on the order).
	clashes map[string][]*owned
	merged  map[string]bool // merged top directories that packages used
	report  *Report
}

// extract reads one .deb, spooling its data.tar to the work directory.
func (x *extractor) extract(i int, deb LocalDeb) (*debPackage, error) {
	ctl, data, closer, err := openDeb(deb.Path)
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	pkg := ctl.pkg
	if deb.Pin.Name != "" && (deb.Pin.Name != pkg.Name || deb.Pin.Version != pkg.Version) {
		return nil, fault.Op(fmt.Errorf("the .deb holds %s, not the pinned %s=%s", pkg, deb.Pin.Name, deb.Pin.Version))
	}
	if _, err := pkg.relations(); err != nil {
		return nil, err
	}
	dp := &debPackage{ctl: ctl}
	x.report.Packages = append(x.report.Packages, pkg.String())
	for _, s := range ctl.scripts {
		x.report.Skipped = append(x.report.Skipped, Skipped{Package: pkg.Name, Kind: s})
	}
	for _, line := range strings.Split(string(ctl.triggers), "\n") {
		line = strings.Join(strings.Fields(line), " ")
		if line != "" && !strings.HasPrefix(line, "#") {
			x.report.Skipped = append(x.report.Skipped, Skipped{Package: pkg.Name, Kind: "trigger", Detail: line})
		}
	}

	spool := filepath.Join(x.opts.WorkDir, fmt.Sprintf("%04d-%s.tar", i, safeName(pkg.Name)))
	sf, err := os.Create(spool)
	if err != nil {
		return nil, fault.Op(err)
	}
	defer sf.Close()
	bw := bufio.NewWriterSize(sf, 1<<20)
	cw := &countingWriter{w: bw}
	// Decompressors are slow on the tar reader's 512-byte reads: buffer.
	tr := tar.NewReader(io.TeeReader(bufio.NewReaderSize(data, 1<<20), cw))
	var sums bytes.Buffer // md5sums, when the package ships none
	origin := "deb " + pkg.String()
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading data.tar: %w", err)
		}
		orig := path.Clean("/" + h.Name)
		if orig == "/" {
			continue
		}
		p := orig
		if x.opts.UsrMerge {
			p = usrMerge(orig)
			if p != orig {
				first, _, _ := strings.Cut(orig[1:], "/")
				x.merged[first] = true
			}
		}
		// The file keeps the package's mtime (format 2 clamps it to the
		// layer's epoch, the newest of them; format 1 ignores it).
		mtime := h.ModTime.Unix()
		e := layer.Entry{Path: p, Mode: uint32(h.Mode) & 0o7777, UID: h.Uid, GID: h.Gid, MTime: &mtime, Origin: origin}
		switch h.Typeflag {
		case tar.TypeDir:
			e.Type = layer.Dir
		case tar.TypeReg:
			// Data must be contiguous in the spooled tar: no sparse files.
			for k := range h.PAXRecords {
				if strings.HasPrefix(k, "GNU.sparse.") {
					return nil, fmt.Errorf("%s is a sparse file; not supported", orig)
				}
			}
			off, size := cw.n, h.Size
			e.Type, e.Size = layer.Regular, size
			e.Open = func() (io.ReadCloser, error) {
				f, err := os.Open(spool)
				if err != nil {
					return nil, err
				}
				return sectionCloser{io.NewSectionReader(f, off, size), f}, nil
			}
			if ctl.md5sums == nil {
				m := md5.New()
				if _, err := io.Copy(m, tr); err != nil {
					return nil, fmt.Errorf("reading %s: %w", orig, err)
				}
				fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(m.Sum(nil)), orig[1:])
			}
		case tar.TypeSymlink:
			e.Type, e.Target = layer.Symlink, h.Linkname
			if x.opts.UsrMerge {
				e.Target = mergedTarget(orig, p, h.Linkname)
			}
			e.Mode = 0o777
		case tar.TypeLink:
			t := path.Clean("/" + h.Linkname)
			if x.opts.UsrMerge {
				t = usrMerge(t)
			}
			e.Type, e.Target = layer.Hardlink, t
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			x.report.Notes = append(x.report.Notes, fmt.Sprintf("%s: dropped device or fifo %s (a layer cannot carry it)", pkg.Name, orig))
			continue
		default:
			return nil, fmt.Errorf("%s has tar type %q; not supported", orig, h.Typeflag)
		}
		if err := x.insert(&owned{e: e, pkg: dp}); err != nil {
			return nil, err
		}
	}
	// Read to the end, so the decompressor checks its trailer.
	if _, err := io.Copy(io.Discard, data); err != nil {
		return nil, fmt.Errorf("reading data.tar: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fault.Op(err)
	}
	if err := sf.Close(); err != nil {
		return nil, fault.Op(err)
	}
	if ctl.md5sums == nil {
		ctl.md5sums = sums.Bytes()
	}
	return dp, nil
}

// insert records an entry; a path that another package already ships is
// kept aside for conflicts.
func (x *extractor) insert(o *owned) error {
	prev, ok := x.byPath[o.e.Path]
	if !ok {
		x.byPath[o.e.Path] = o
		return nil
	}
	if prev.pkg == o.pkg {
		if prev.e.Type == layer.Dir && o.e.Type == layer.Dir {
			return nil
		}
		return fmt.Errorf("the package ships %s twice (with usrmerge, /bin/x and /usr/bin/x are one path)", o.e.Path)
	}
	if x.clashes == nil {
		x.clashes = map[string][]*owned{}
	}
	if len(x.clashes[o.e.Path]) == 0 {
		x.clashes[o.e.Path] = []*owned{prev}
	}
	x.clashes[o.e.Path] = append(x.clashes[o.e.Path], o)
	return nil
}

// conflicts settles every path shipped by several packages: directories
// merge (the first package by name gives the mode and owner); anything
// else must be taken by a package that Replaces all the others.
func (x *extractor) conflicts() error {
	var problems []string
	for _, p := range sortedKeys(x.clashes) {
		list := x.clashes[p]
		sort.SliceStable(list, func(i, j int) bool { return list[i].pkg.name() < list[j].pkg.name() })
		dirs := 0
		for _, o := range list {
			if o.e.Type == layer.Dir {
				dirs++
			}
		}
		if dirs == len(list) {
			first := list[0]
			for _, o := range list[1:] {
				if o.e.Mode != first.e.Mode || o.e.UID != first.e.UID || o.e.GID != first.e.GID {
					x.report.Notes = append(x.report.Notes, fmt.Sprintf("%s: directory is %04o %d:%d in %s but %04o %d:%d in %s; kept %s's",
						p, first.e.Mode, first.e.UID, first.e.GID, first.pkg.name(), o.e.Mode, o.e.UID, o.e.GID, o.pkg.name(), first.pkg.name()))
				}
			}
			x.byPath[p] = first
			continue
		}
		var names []string
		for _, o := range list {
			names = append(names, o.pkg.name())
		}
		if dirs > 0 {
			problems = append(problems, fmt.Sprintf("%s is a directory in one package and not in another (%s)", p, strings.Join(names, ", ")))
			continue
		}
		var winner *owned
		for _, o := range list {
			all := true
			for _, other := range list {
				if other != o && !replacesPkg(o.pkg.ctl.pkg, other.pkg.ctl.pkg) {
					all = false
					break
				}
			}
			if all {
				winner = o
				break
			}
		}
		if winner == nil {
			problems = append(problems, fmt.Sprintf("%s is shipped by %s, and none of them Replaces the others", p, strings.Join(names, " and ")))
			continue
		}
		x.byPath[p] = winner
		x.report.Notes = append(x.report.Notes, fmt.Sprintf("%s: taken from %s, which Replaces %s", p, winner.pkg.name(), strings.Join(without(names, winner.pkg.name()), ", ")))
	}
	if len(problems) > 0 {
		return errors.New("file conflicts between packages: " + strings.Join(problems, "; "))
	}
	return nil
}

func without(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// replacesPkg reports whether a's Replaces names b at b's version.
func replacesPkg(a, b *Package) bool {
	rel, err := a.relations()
	if err != nil {
		return false
	}
	for _, d := range rel.replaces {
		for _, poss := range d.Possibilities {
			if poss.Name == b.Name && satisfies(b.ver, poss.Version) {
				return true
			}
		}
	}
	return false
}

// metadata adds a package's control file and md5sums under StatusDir.
func (x *extractor) metadata(dp *debPackage) {
	name := dp.name()
	control := dp.ctl.control
	if len(control) > 0 && control[len(control)-1] != '\n' {
		control = append(append([]byte(nil), control...), '\n')
	}
	add := func(p string, data []byte) {
		x.byPath[p] = &owned{e: layer.Entry{
			Path: p, Type: layer.Regular, Mode: 0o644, Size: int64(len(data)),
			Open:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
			Origin: "dpkg metadata of " + name,
		}}
	}
	add(StatusDir+"/"+name, control)
	add(StatusDir+"/"+name+".md5sums", dp.ctl.md5sums)
}

// relPath is the relative path from directory from to to (both absolute
// and clean).
func relPath(from, to string) string {
	f := strings.Split(strings.Trim(from, "/"), "/")
	t := strings.Split(strings.Trim(to, "/"), "/")
	if from == "/" {
		f = nil
	}
	i := 0
	for i < len(f) && i < len(t) && f[i] == t[i] {
		i++
	}
	var parts []string
	for range f[i:] {
		parts = append(parts, "..")
	}
	parts = append(parts, t[i:]...)
	if len(parts) == 0 {
		return "."
	}
	return strings.Join(parts, "/")
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, s)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type sectionCloser struct {
	*io.SectionReader
	f *os.File
}

func (s sectionCloser) Close() error { return s.f.Close() }
