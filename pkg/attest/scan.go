package attest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/rootfs"
)

// ScanOptions shape Scan.
type ScanOptions struct {
	// AddedLayers is how many layers, at the end of each image, the build
	// added (a spec's layers are one image layer each). Nil: found from
	// the config's history, whose trailing "repro: layer" entries are
	// repro's; an image with no such entries is treated as entirely added.
	AddedLayers *int
	// TempDir receives the copies of ELF files that debug/buildinfo reads;
	// empty means the system's temporary directory.
	TempDir string
	// Log receives what the scan skips; nil discards.
	Log *slog.Logger
	// PackageDigests are the sha256 of the .debs a build installed, keyed
	// by PackageKey; the packages found in the image get them.
	PackageDigests map[string]string
}

// PackageKey keys ScanOptions.PackageDigests: name=version:architecture.
func PackageKey(name, version, arch string) string { return name + "=" + version + ":" + arch }

// Inventory is what an image or index holds, as its SBOM reports it.
type Inventory struct {
	Name      string
	Digest    string // of the image or the index
	MediaType string
	// Created is the first image's config created time (the build's
	// epoch, for an image repro built), in seconds since 1970.
	Created int64
	Images  []*ImageInventory // one per platform, in the index's order
}

// ImageInventory is what one image holds.
type ImageInventory struct {
	Platform string
	Digest   string
	Created  int64 // the config's created time, in seconds since 1970
	// Base is the base image as the manifest's annotations name it; nil
	// when it names none.
	Base *BaseImage
	// Layers are the layers repro added, in order.
	Layers []LayerInventory
	// GoBinaries are the Go executables of the final filesystem, by path.
	GoBinaries []GoBinary
	// Packages are the base's dpkg or apk packages, sorted.
	Packages []OSPackage
	// Distro is ID and VERSION_ID of /etc/os-release; empty when absent.
	DistroID, DistroVersion string
	// DistroName is PRETTY_NAME of /etc/os-release.
	DistroName string
	// MaintScripts says, by package, what the skipped maintainer scripts
	// would have done and what repro did about it (from
	// /var/lib/repro/maintscripts/<package>.json, which repro writes).
	MaintScripts map[string][]MaintAction
	// Excluded are the packages that apt.exclude left out of the image,
	// with what depended on them (from /var/lib/repro/apt-excluded.json).
	Excluded []ExcludedPackage
}

// MaintAction is one kind of work of a skipped maintainer script.
type MaintAction struct {
	Package string `json:"package"`
	Script  string `json:"script"`
	What    string `json:"what"`
	Status  string `json:"status"` // done, reported or ignored
	How     string `json:"how"`
}

// ExcludedPackage is a package left out of the image on purpose.
type ExcludedPackage struct {
	Name       string   `json:"name"`
	RequiredBy []string `json:"requiredBy"`
}

// The files repro writes for the SBOM, beside the dpkg metadata.
const (
	maintScriptsDir = "/var/lib/repro/maintscripts"
	excludedFile    = "/var/lib/repro/apt-excluded.json"
)

// BaseImage names a base image.
type BaseImage struct {
	Name   string // repository[:tag], as org.opencontainers.image.base.name gives it
	Digest string // its manifest digest
}

// LayerInventory lists the regular files of one layer.
type LayerInventory struct {
	Index  int
	Digest string
	Files  []FileInfo // sorted by path
}

// FileInfo is one regular file (or hard link to one) of a layer.
type FileInfo struct {
	Path   string
	Size   int64
	SHA256 string
	SHA1   string // SPDX 2.3 requires it of every file
}

// GoBinary is a Go executable and the modules it was built from.
type GoBinary struct {
	Path      string
	SHA256    string
	GoVersion string
	Package   string // the main package's import path
	Main      Module
	Deps      []Module // sorted by path
}

// Module is a Go module (a replacement, when the build replaced it).
type Module struct {
	Path, Version, Sum string
}

// OSPackage is a Debian or Alpine package of the image.
type OSPackage struct {
	Type         string // deb or apk
	Name         string
	Version      string
	Architecture string
	Source       string // the source package (deb) or origin (apk), when it differs
	// SourceVersion is the source package's version, where the control
	// file's Source field names one (a binNMU, or a binary versioned apart
	// from its source); Source is then set even when it is Name.
	SourceVersion string
	License       string // apk only
	// SHA256 is the .deb's digest, when the build pinned it (hex).
	SHA256 string
}

// Scan reads what the SBOM named name (the spec's name) reports of t, an
// image or an index: the files of the layers repro added, the base, Go
// binaries and OS packages, per platform.
func Scan(ctx context.Context, name string, t imageref.Artifact, opts ScanOptions) (*Inventory, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	inv := &Inventory{Name: name}
	top := t.Top()
	if top == nil {
		return nil, errors.New("scan: no image")
	}
	d, err := partial.Descriptor(top)
	if err != nil {
		return nil, err
	}
	inv.Digest, inv.MediaType = d.Digest.String(), string(d.MediaType)
	all, err := t.Images() // nested indexes too, to imageref.MaxIndexDepth
	if err != nil {
		return nil, err
	}
	for _, ii := range all {
		img, err := ii.Image()
		if err != nil {
			return nil, err
		}
		id, err := img.Digest()
		if err != nil {
			return nil, err
		}
		in, err := scanImage(ctx, img, opts)
		if err != nil {
			return nil, fmt.Errorf("scanning %s: %w", id, err)
		}
		inv.Images = append(inv.Images, in)
	}
	if len(inv.Images) > 0 {
		inv.Created = inv.Images[0].Created
	}
	return inv, nil
}

func scanImage(ctx context.Context, img v1.Image, opts ScanOptions) (*ImageInventory, error) {
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	ii := &ImageInventory{Digest: d.String(), Platform: imageref.PlatformName(imageref.ConfigPlatform(cfg))}
	if !cfg.Created.IsZero() {
		ii.Created = cfg.Created.Unix()
	}
	if bd := m.Annotations["org.opencontainers.image.base.digest"]; bd != "" {
		ii.Base = &BaseImage{Name: m.Annotations["org.opencontainers.image.base.name"], Digest: bd}
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	added := addedLayers(cfg, len(layers))
	if opts.AddedLayers != nil {
		added = min(max(*opts.AddedLayers, 0), len(layers))
	}
	for i := len(layers) - added; i < len(layers); i++ {
		li, err := scanLayer(ctx, layers[i], i)
		if err != nil {
			return nil, fmt.Errorf("reading layer %d: %w", i, err)
		}
		ii.Layers = append(ii.Layers, li)
	}
	fs, err := rootfs.Read(ctx, img)
	if err != nil {
		return nil, err
	}
	var dpkgFiles []string
	texts := map[string][]byte{}
	err = rootfs.Walk(ctx, img, fs, func(f *rootfs.File, r io.Reader) error {
		if f.Kind != rootfs.Regular {
			return nil
		}
		switch p := f.Path; {
		case p == "/var/lib/dpkg/status", p == "/lib/apk/db/installed", p == "/etc/os-release", p == "/usr/lib/os-release":
			b, err := io.ReadAll(r)
			texts[p] = b
			return err
		case path.Dir(p) == "/var/lib/dpkg/status.d" && !strings.HasSuffix(p, ".md5sums"):
			b, err := io.ReadAll(r)
			texts[p] = b
			dpkgFiles = append(dpkgFiles, p)
			return err
		case path.Dir(p) == maintScriptsDir && strings.HasSuffix(p, ".json"), p == excludedFile:
			b, err := io.ReadAll(io.LimitReader(r, 16<<20))
			texts[p] = b
			return err
		}
		if f.Size < 64 {
			return nil
		}
		bin, err := goBinary(f, r, opts.TempDir)
		if err != nil {
			return err
		}
		if bin != nil {
			ii.GoBinaries = append(ii.GoBinaries, *bin)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(ii.GoBinaries, func(i, j int) bool { return ii.GoBinaries[i].Path < ii.GoBinaries[j].Path })
	osr := texts["/etc/os-release"]
	if osr == nil {
		osr = texts["/usr/lib/os-release"]
	}
	ii.DistroID, ii.DistroVersion = osRelease(osr)
	ii.DistroName = osReleaseField(osr, "PRETTY_NAME")
	for _, p := range sortedKeys(texts) {
		switch {
		case path.Dir(p) == maintScriptsDir:
			var acts []MaintAction
			if err := json.Unmarshal(texts[p], &acts); err != nil {
				opts.Log.Warn("ignoring a maintainer-script record that does not parse", "path", p, "err", err)
				continue
			}
			if ii.MaintScripts == nil {
				ii.MaintScripts = map[string][]MaintAction{}
			}
			ii.MaintScripts[strings.TrimSuffix(path.Base(p), ".json")] = acts
		case p == excludedFile:
			if err := json.Unmarshal(texts[p], &ii.Excluded); err != nil {
				opts.Log.Warn("ignoring an exclusion record that does not parse", "path", p, "err", err)
			}
		}
	}
	if b, ok := texts["/var/lib/dpkg/status"]; ok {
		ii.Packages = append(ii.Packages, parseDpkgStatus(b, true)...)
	}
	sort.Strings(dpkgFiles)
	for _, p := range dpkgFiles {
		ii.Packages = append(ii.Packages, parseDpkgStatus(texts[p], false)...)
	}
	if b, ok := texts["/lib/apk/db/installed"]; ok {
		ii.Packages = append(ii.Packages, parseAPKInstalled(b)...)
	}
	ii.Packages = sortPackages(ii.Packages)
	for i, p := range ii.Packages {
		if p.Type == "deb" {
			ii.Packages[i].SHA256 = opts.PackageDigests[PackageKey(p.Name, p.Version, p.Architecture)]
		}
	}
	return ii, nil
}

// addedLayers counts the image's trailing layers whose history entries
// repro wrote. With no such entry (an image repro did not build), every
// layer counts.
func addedLayers(cfg *v1.ConfigFile, n int) int {
	var hist []v1.History
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			hist = append(hist, h)
		}
	}
	if len(hist) != n {
		return n
	}
	k := 0
	for i := len(hist) - 1; i >= 0 && strings.HasPrefix(hist[i].CreatedBy, "repro: layer "); i-- {
		k++
	}
	if k == 0 {
		return n
	}
	return k
}

// scanLayer lists a layer's regular files and hard links, hashed.
func scanLayer(ctx context.Context, l v1.Layer, index int) (LayerInventory, error) {
	d, err := l.Digest()
	if err != nil {
		return LayerInventory{}, err
	}
	li := LayerInventory{Index: index, Digest: d.String()}
	byPath := map[string]FileInfo{}
	err = rootfs.EachEntry(ctx, l, func(h *tar.Header, r io.Reader) error {
		p := path.Clean("/" + strings.TrimPrefix(h.Name, "./"))
		if strings.HasPrefix(path.Base(p), ".wh.") {
			return nil
		}
		switch h.Typeflag {
		//lint:ignore SA1019 old archives mark regular files with TypeRegA
		case tar.TypeReg, tar.TypeRegA:
			s256, s1 := sha256.New(), sha1.New()
			n, err := io.Copy(io.MultiWriter(s256, s1), r)
			if err != nil {
				return fmt.Errorf("reading %s: %w", p, err)
			}
			byPath[p] = FileInfo{Path: p, Size: n, SHA256: hex.EncodeToString(s256.Sum(nil)), SHA1: hex.EncodeToString(s1.Sum(nil))}
		case tar.TypeLink:
			target := path.Clean("/" + strings.TrimPrefix(h.Linkname, "./"))
			if t, ok := byPath[target]; ok {
				t.Path = p
				byPath[p] = t
			}
		}
		return nil
	})
	if err != nil {
		return li, err
	}
	for _, p := range sortedKeys(byPath) {
		li.Files = append(li.Files, byPath[p])
	}
	return li, nil
}

var elfMagic = []byte("\x7fELF")

// goBinary returns the build info of f when it is a Go executable. Only
// ELF files are copied to a temporary file, which debug/buildinfo reads.
func goBinary(f *rootfs.File, r io.Reader, tempDir string) (*GoBinary, error) {
	head := make([]byte, 4)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, nil // shorter than a header: not ELF
	}
	if !bytes.Equal(head, elfMagic) {
		return nil, nil
	}
	tmp, err := os.CreateTemp(tempDir, "repro-sbom-elf-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := io.Copy(tmp, io.MultiReader(bytes.NewReader(head), r)); err != nil {
		return nil, fmt.Errorf("copying %s: %w", f.Path, err)
	}
	bi, err := buildinfo.Read(tmp)
	if err != nil {
		return nil, nil // not a Go binary, or one without build info
	}
	b := &GoBinary{Path: f.Path, SHA256: f.SHA256, GoVersion: bi.GoVersion, Package: bi.Path,
		Main: Module{Path: bi.Main.Path, Version: bi.Main.Version, Sum: bi.Main.Sum}}
	for _, d := range bi.Deps {
		if d == nil {
			continue
		}
		if d.Replace != nil {
			d = d.Replace
		}
		b.Deps = append(b.Deps, Module{Path: d.Path, Version: d.Version, Sum: d.Sum})
	}
	sort.Slice(b.Deps, func(i, j int) bool {
		if b.Deps[i].Path != b.Deps[j].Path {
			return b.Deps[i].Path < b.Deps[j].Path
		}
		return b.Deps[i].Version < b.Deps[j].Version
	})
	return b, nil
}

// osRelease returns ID and VERSION_ID of an os-release file.
func osRelease(b []byte) (id, version string) {
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			id = v
		case "VERSION_ID":
			version = v
		}
	}
	return id, version
}

// osReleaseField is one field of an os-release file, unquoted.
func osReleaseField(b []byte, key string) string {
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && k == key {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}

// parseDpkgStatus reads the stanzas of a dpkg status file. With
// needStatus, only installed packages count (status.d files, as
// distroless writes them, carry no Status field).
func parseDpkgStatus(b []byte, needStatus bool) []OSPackage {
	var out []OSPackage
	for _, stanza := range stanzas(b) {
		if needStatus && !strings.HasSuffix(stanza["Status"], " installed") {
			continue
		}
		name := stanza["Package"]
		if name == "" {
			continue
		}
		p := OSPackage{Type: "deb", Name: name, Version: stanza["Version"], Architecture: stanza["Architecture"]}
		if src := stanza["Source"]; src != "" {
			src, ver, _ := strings.Cut(src, " ") // "name (version)"
			ver = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(ver), "("), ")")
			if src != name || ver != "" {
				p.Source, p.SourceVersion = src, ver
			}
		}
		out = append(out, p)
	}
	return out
}

// stanzas splits an RFC 822-style control file into its paragraphs'
// fields; continuation lines are dropped.
func stanzas(b []byte) []map[string]string {
	var out []map[string]string
	cur := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = map[string]string{}
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			cur[k] = strings.TrimSpace(v)
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// parseAPKInstalled reads apk's installed database.
func parseAPKInstalled(b []byte) []OSPackage {
	var out []OSPackage
	var cur OSPackage
	flush := func() {
		if cur.Name != "" {
			cur.Type = "apk"
			if cur.Source == cur.Name {
				cur.Source = ""
			}
			out = append(out, cur)
		}
		cur = OSPackage{}
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "P":
			cur.Name = v
		case "V":
			cur.Version = v
		case "A":
			cur.Architecture = v
		case "L":
			cur.License = v
		case "o":
			cur.Source = v
		}
	}
	flush()
	return out
}

// sortPackages sorts and removes exact duplicates.
func sortPackages(ps []OSPackage) []OSPackage {
	sort.Slice(ps, func(i, j int) bool { return pkgKey(ps[i]) < pkgKey(ps[j]) })
	var out []OSPackage
	for i, p := range ps {
		if i > 0 && p == ps[i-1] {
			continue
		}
		out = append(out, p)
	}
	return out
}

func pkgKey(p OSPackage) string {
	return p.Type + "\x00" + p.Name + "\x00" + p.Version + "\x00" + p.Architecture
}
