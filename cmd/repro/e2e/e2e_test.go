package e2e

// End-to-end tests: the real binary builds the example specs, and the tools
// that consume OCI images in real life (oci-image-tool, skopeo, umoci,
// podman, zstd, getcap) read what it wrote. Each example is built once per
// compression; the subtests share those outputs and run in parallel.

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/internal/testtool"
)

const (
	e2eTag     = "e2e"
	e2eVersion = "1.0.0"
	e2eEpoch   = 1700000000 // the epoch every example spec sets
)

// e2eCase is one example spec built with one compression.
type e2eCase struct {
	name        string // subtest name
	spec        string // under specs/examples
	compression string
	platforms   []string // the spec's platforms; more than one gives an index
}

var e2eCases = []e2eCase{
	{"static-site/gzip", "static-site/repro.yaml", "gzip", []string{"linux/amd64"}},
	{"static-site/zstd", "static-site/repro.yaml", "zstd", []string{"linux/amd64"}},
	{"go-server/gzip", "go-server/repro.yaml", "gzip", []string{"linux/amd64"}},
	{"go-server/zstd", "go-server/repro.yaml", "zstd", []string{"linux/amd64"}},
	{"multi-platform/gzip", "go-server/multi-platform.yaml", "gzip", []string{"linux/amd64", "linux/arm64"}},
	{"multi-platform/zstd", "go-server/multi-platform.yaml", "zstd", []string{"linux/amd64", "linux/arm64"}},
}

// e2eBuilt is what one build wrote.
type e2eBuilt struct {
	e2eCase
	examples      string // the copy of specs/examples it was built from
	digest        string // what repro printed: the manifest's or the index's digest
	layout        string // oci:layout:e2e
	ociArchive    string // oci-archive:file:e2e
	dockerArchive string // docker-archive:file, one platform only; "" for an index
}

func (b *e2eBuilt) index() bool { return len(b.platforms) > 1 }

// e2eWant is what the consumers must find in an example's image (its
// linux/amd64 image, for an index).
type e2eWant struct {
	name   string // the spec's name
	labels map[string]string
	env    []string
	// tree lists every path of the unpacked root file system, as e2eTree
	// prints it.
	tree []string
	// content maps paths to their exact bytes; source maps paths to the file
	// that holds their bytes, relative to the examples directory (the
	// example server: what a plain go build with the go: entry's flags
	// gives, which copyExamples compiles beside it).
	content, source map[string]string
	// caps maps paths to the capabilities getcap prints for them; every other
	// path must carry no extended attribute at all.
	caps map[string]string
	// hardlinks are pairs of paths that must be one inode.
	hardlinks [][2]string
	// absent paths must not be in the image.
	absent []string
	// check is what `podman run IMAGE -check` prints; "" when the image
	// holds nothing to run.
	check string
}

var e2eWants = map[string]e2eWant{
	"static-site/repro.yaml": {
		name: "static-site",
		labels: map[string]string{
			"org.opencontainers.image.title":  "static-site",
			"org.opencontainers.image.source": "https://example.com/static-site",
			"example.env":                     "dev",
		},
		tree: []string{
			"/srv d 0755 0:0",
			"/srv/www d 0755 0:0",
			"/srv/www/.well-known d 0750 101:101",
			"/srv/www/assets d 0755 0:0",
			"/srv/www/assets/app.js f 0644 0:0",
			"/srv/www/assets/site.css f 0644 0:0",
			"/srv/www/home.html l 0:0 -> index.html", // a symlink in the source directory stays one
			"/srv/www/index.htm l 0:0 -> index.html",
			"/srv/www/index.html f 0644 0:0",
			"/srv/www/robots.txt f 0644 0:0",
		},
		content: map[string]string{"/srv/www/robots.txt": "User-agent: *\nDisallow:\n"},
		source: map[string]string{
			"/srv/www/assets/app.js":   "static-site/site/assets/app.js",
			"/srv/www/assets/site.css": "static-site/site/assets/site.css",
			"/srv/www/index.html":      "static-site/site/index.html",
		},
		absent: []string{"/srv/www/assets/app.js.map"},
	},
	"go-server/repro.yaml": {
		name:   "go-server",
		labels: map[string]string{"org.opencontainers.image.source": "https://example.com/go-server"},
		env:    []string{"APP_VERSION=" + e2eVersion, "PORT=8080"},
		tree: []string{
			"/app d 0755 0:0",
			"/app/server f 0755 0:0",
			"/app/server-link f 0755 0:0",
			"/etc d 0755 0:0",
			"/etc/group f 0644 0:0",
			"/etc/motd f 0644 0:0",
			"/etc/passwd f 0644 0:0",
			"/srv d 0755 0:0",
			"/srv/static d 0755 0:0",
			"/srv/static/index.html f 0644 0:0",
			"/srv/static/robots.txt f 0644 0:0",
			"/usr d 0755 0:0",
			"/usr/local d 0755 0:0",
			"/usr/local/bin d 0755 0:0",
			"/usr/local/bin/server l 0:0 -> /app/server",
			"/var d 0755 0:0",
			"/var/cache d 0755 0:0",
			"/var/cache/app d 0750 65532:65532",
		},
		content: map[string]string{
			"/etc/motd":  "built by repro\n",
			"/etc/group": "root:x:0:\nnonroot:x:65532:\n",
		},
		source: map[string]string{
			"/app/server":            exampleServerOracle("amd64"),
			"/srv/static/index.html": "go-server/static/index.html",
			"/srv/static/robots.txt": "go-server/static/robots.txt",
		},
		caps:      map[string]string{"/app/server": "cap_net_bind_service=ep", "/app/server-link": "cap_net_bind_service=ep"},
		hardlinks: [][2]string{{"/app/server", "/app/server-link"}},
		check:     "repro example server 1.0.0: 2 files under /srv/static; motd: built by repro\n",
	},
	"go-server/multi-platform.yaml": {
		name: "multi-platform",
		tree: []string{
			"/app d 0755 0:0",
			"/app/server f 0755 0:0",
			"/etc d 0755 0:0",
			"/etc/motd f 0644 0:0",
			"/srv d 0755 0:0",
			"/srv/static d 0755 0:0",
			"/srv/static/index.html f 0644 0:0",
		},
		content: map[string]string{"/etc/motd": "built by repro for many platforms\n"},
		source: map[string]string{
			"/app/server":            exampleServerOracle("amd64"),
			"/srv/static/index.html": "go-server/static/index.html",
		},
		absent: []string{"/srv/static/robots.txt"},
		check:  "repro example server 1.0.0: 1 files under /srv/static; motd: built by repro for many platforms\n",
	},
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// e2eBuildAll builds every case once: an OCI layout and an oci-archive,
// and a docker-archive for one platform.
func e2eBuildAll(t *testing.T) []*e2eBuilt {
	t.Helper()
	examples := copyExamples(t, false)
	outDir := t.TempDir()
	var all []*e2eBuilt
	for i, c := range e2eCases {
		b := &e2eBuilt{e2eCase: c, examples: examples}
		base := filepath.Join(outDir, fmt.Sprintf("case%d", i))
		b.layout = base + "-layout"
		b.ociArchive = base + "-oci.tar"
		args := []string{"build", "-q", "--offline", "--version", e2eVersion, "--compression", c.compression,
			"-f", filepath.Join(examples, c.spec),
			"-o", "oci:" + b.layout + ":" + e2eTag,
			"-o", "oci-archive:" + b.ociArchive + ":" + e2eTag}
		if !b.index() {
			b.dockerArchive = base + "-docker.tar"
			args = append(args, "-o", "docker-archive:"+b.dockerArchive)
		}
		r := repro(t, examples, args...)
		b.digest = lastLine(r.stdout)
		if !digestRE.MatchString(b.digest) {
			t.Fatalf("%s: repro printed %q, not a digest", c.name, r.stdout)
		}
		// The layout's index.json names that digest under the tag, and the
		// blob it names hashes to it.
		d := e2eTagged(t, b.layout, e2eTag)
		if string(d.Digest) != b.digest {
			t.Fatalf("%s: index.json tags %s, repro printed %s", c.name, d.Digest, b.digest)
		}
		if raw := e2eBlob(t, b.layout, b.digest); int64(len(raw)) != d.Size {
			t.Fatalf("%s: index.json gives size %d for a blob of %d bytes", c.name, d.Size, len(raw))
		}
		all = append(all, b)
	}
	return all
}

// TestE2EExamples builds every example spec with each compression and
// proves every output with the tools that consume it.
func TestE2EExamples(t *testing.T) {
	t.Parallel()
	builds := e2eBuildAll(t)
	for _, b := range builds {
		t.Run("oci-image-tool/"+b.name, func(t *testing.T) { t.Parallel(); e2eValidate(t, b) })
		t.Run("skopeo/"+b.name, func(t *testing.T) { t.Parallel(); e2eSkopeo(t, b) })
		t.Run("umoci/"+b.name, func(t *testing.T) { t.Parallel(); e2eUmoci(t, b) })
		if e2eWants[b.spec].check != "" {
			t.Run("podman/"+b.name, func(t *testing.T) { t.Parallel(); e2ePodman(t, b) })
		}
		t.Run("deterministic-archives/"+b.name, func(t *testing.T) { t.Parallel(); e2eArchivesAgain(t, b) })
	}
	t.Run("shared-layout", func(t *testing.T) { t.Parallel(); e2eSharedLayout(t, builds) })
	t.Run("compression-changes-no-tar", func(t *testing.T) { t.Parallel(); e2eSameConfigs(t, builds) })
}

// e2eSameConfigs: gzip and zstd builds of one spec differ in their
// compressed layers only. Their configs, which name the uncompressed
// layers by diff_id, are the same bytes, platform by platform.
func e2eSameConfigs(t *testing.T, builds []*e2eBuilt) {
	configs := func(b *e2eBuilt) []string {
		digests := []string{b.digest}
		if b.index() {
			var idx ocispec.Index
			e2eUnmarshal(t, e2eBlob(t, b.layout, b.digest), &idx)
			digests = nil
			for _, m := range idx.Manifests {
				digests = append(digests, string(m.Digest))
			}
		}
		var out []string
		for _, d := range digests {
			var m ocispec.Manifest
			e2eUnmarshal(t, e2eBlob(t, b.layout, d), &m)
			out = append(out, string(m.Config.Digest))
		}
		return out
	}
	bySpec := map[string][]*e2eBuilt{}
	for _, b := range builds {
		bySpec[b.spec] = append(bySpec[b.spec], b)
	}
	for spec, bs := range bySpec {
		if len(bs) != 2 {
			t.Fatalf("%s: %d builds, want gzip and zstd", spec, len(bs))
		}
		a, z := configs(bs[0]), configs(bs[1])
		if !slices.Equal(a, z) {
			t.Errorf("%s: configs %v (%s) and %v (%s) differ", spec, a, bs[0].compression, z, bs[1].compression)
		}
		if bs[0].digest == bs[1].digest {
			t.Errorf("%s: the %s and %s builds have one digest, %s", spec, bs[0].compression, bs[1].compression, bs[0].digest)
		}
	}
}

// e2eSharedLayout builds several examples into one OCI layout, each under
// a tag of its own, then rebuilds one tag with the other compression: the
// layout keeps every other tag, and skopeo copies each tag's image (every
// blob read and verified) to the digest repro printed for it.
func e2eSharedLayout(t *testing.T, builds []*e2eBuilt) {
	if testtool.Require(t, "oci-image-tool", "skopeo") == nil {
		return
	}
	examples := builds[0].examples
	layout := filepath.Join(t.TempDir(), "shared")
	want := map[string]string{} // tag -> digest
	build := func(tag, spec, compression string) {
		t.Helper()
		r := repro(t, examples, "build", "-q", "--offline", "--version", e2eVersion, "--compression", compression,
			"-f", filepath.Join(examples, spec), "-o", "oci:"+layout+":"+tag)
		want[tag] = lastLine(r.stdout)
		// The same digests as the builds into layouts of their own.
		for _, b := range builds {
			if b.spec == spec && b.compression == compression && b.digest != want[tag] {
				t.Errorf("%s in a shared layout: %s; alone: %s", spec, want[tag], b.digest)
			}
		}
	}
	build("site", "static-site/repro.yaml", "gzip")
	build("server", "go-server/repro.yaml", "gzip")
	for _, tag := range []string{"site", "server"} {
		e2eOCIImageTool(t, "image", layout, "--ref", "name="+tag)
	}
	// From a third tag on, oci-image-tool 1.0.0-rc1 may call a --ref "not
	// unique": its filter removes entries from the slice it walks, skipping
	// the entry after each one it removes. So only skopeo reads what follows.
	build("multi", "go-server/multi-platform.yaml", "gzip")
	build("site", "static-site/repro.yaml", "zstd")

	raw, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	e2eUnmarshal(t, raw, &idx)
	if len(idx.Manifests) != len(want) {
		t.Errorf("index.json has %d entries, want one per tag (%d):\n%s", len(idx.Manifests), len(want), raw)
	}
	for tag, digest := range want {
		if got := string(e2eTagged(t, layout, tag).Digest); got != digest {
			t.Errorf("tag %s names %s, repro printed %s", tag, got, digest)
		}
		other := filepath.Join(t.TempDir(), tag)
		testtool.Run(t, "skopeo", "copy", "--quiet", "--all", "oci:"+layout+":"+tag, "oci:"+other+":"+tag)
		if got := string(e2eTagged(t, other, tag).Digest); got != digest {
			t.Errorf("skopeo copy of tag %s gave %s, want %s", tag, got, digest)
		}
	}
}

// --- oci-image-tool ------------------------------------------------------------

// e2eValidate has oci-image-tool validate the layout, and each image in it
// after decompressing every layer with an independent decoder.
func e2eValidate(t *testing.T, b *e2eBuilt) {
	tools := testtool.Require(t, "oci-image-tool", "skopeo", "zstd")
	if tools == nil {
		return
	}
	if b.index() {
		// oci-image-tool 1.0.0-rc1 accepts a layout whose tag names an
		// index but does not descend into it (it warns of an "unknown media
		// type"), so the index blob is validated on its own, and each
		// platform's image by way of a layout holding that image alone.
		raw := e2eBlob(t, b.layout, b.digest)
		e2eOCIImageTool(t, "imageIndex", e2eBlobPath(b.layout, b.digest))
		var idx ocispec.Index
		e2eUnmarshal(t, raw, &idx)
		for _, m := range idx.Manifests {
			arch := m.Platform.Architecture
			t.Run(arch, func(t *testing.T) {
				e2eCheckImage(t, b.layout, string(m.Digest), b.compression)
				single := e2eSkopeoCopy(t, b, arch, b.compression == "zstd")
				if b.compression == "gzip" {
					if got := e2eTagged(t, single, e2eTag).Digest; got != m.Digest {
						t.Errorf("skopeo copied %s's %s image as %s: it changed the image", b.digest, arch, got)
					}
				}
				e2eOCIImageTool(t, "image", single, "--ref", "name="+e2eTag)
			})
		}
		return
	}
	e2eCheckImage(t, b.layout, b.digest, b.compression)
	layout := b.layout
	if b.compression == "zstd" {
		// oci-image-tool 1.0.0-rc1 predates image-spec 1.1's
		// application/vnd.oci.image.layer.v1.tar+zstd and rejects that media
		// type itself ("invalid descriptor MediaType"). e2eCheckImage has
		// validated the manifest and config and decompressed every layer
		// with zstd(1); here skopeo recompresses the layers to gzip, so
		// that oci-image-tool validates the layout around them as well.
		layout = e2eSkopeoCopy(t, b, "", true)
	}
	e2eOCIImageTool(t, "image", layout, "--ref", "name="+e2eTag)
}

func e2eOCIImageTool(t *testing.T, typ, path string, more ...string) {
	t.Helper()
	out := testtool.Run(t, "oci-image-tool", append([]string{"validate", "--type", typ}, append(more, path)...)...)
	if !strings.Contains(out, "Validation succeeded") {
		t.Errorf("oci-image-tool validate --type %s %s printed no success:\n%s", typ, path, out)
	}
}

// e2eCheckImage validates the manifest and config blobs of one image with
// oci-image-tool, checks their media types and timestamps, and decompresses
// every layer with a decoder that is not repro's (Go's compress/gzip, the
// zstd command) to check it against the config's diff_ids.
func e2eCheckImage(t *testing.T, layout, manifestDigest, compression string) {
	t.Helper()
	e2eOCIImageTool(t, "manifest", e2eBlobPath(layout, manifestDigest))
	var m ocispec.Manifest
	e2eUnmarshal(t, e2eBlob(t, layout, manifestDigest), &m)
	if m.MediaType != ocispec.MediaTypeImageManifest || m.Config.MediaType != ocispec.MediaTypeImageConfig {
		t.Errorf("manifest %s: mediaType %q, config mediaType %q", manifestDigest, m.MediaType, m.Config.MediaType)
	}
	e2eOCIImageTool(t, "config", e2eBlobPath(layout, string(m.Config.Digest)))
	var cfg ocispec.Image
	e2eUnmarshal(t, e2eBlob(t, layout, string(m.Config.Digest)), &cfg)
	if cfg.Created == nil || cfg.Created.Unix() != e2eEpoch {
		t.Errorf("config created = %v, want the epoch %d", cfg.Created, e2eEpoch)
	}
	for i, h := range cfg.History {
		if h.Created == nil || h.Created.Unix() != e2eEpoch {
			t.Errorf("history[%d].created = %v, want the epoch %d", i, h.Created, e2eEpoch)
		}
	}
	if len(m.Layers) != len(cfg.RootFS.DiffIDs) {
		t.Fatalf("manifest has %d layers, config %d diff_ids", len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	wantType := map[string]string{"gzip": ocispec.MediaTypeImageLayerGzip, "zstd": ocispec.MediaTypeImageLayerZstd}[compression]
	for i, l := range m.Layers {
		if l.MediaType != wantType {
			t.Errorf("layer %d: mediaType %q, want %q", i, l.MediaType, wantType)
			continue
		}
		blob := e2eBlobPath(layout, string(l.Digest))
		e2eBlob(t, layout, string(l.Digest)) // its digest holds
		var tarBytes []byte
		switch compression {
		case "gzip":
			f, err := os.Open(blob)
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(f)
			if err == nil {
				tarBytes, err = io.ReadAll(zr)
			}
			f.Close()
			if err != nil {
				t.Fatalf("layer %d: gunzip: %v", i, err)
			}
		case "zstd":
			tarBytes = []byte(testtool.Run(t, "zstd", "-q", "-d", "-c", blob))
		}
		if got := e2eDigestOf(tarBytes); got != string(cfg.RootFS.DiffIDs[i]) {
			t.Errorf("layer %d decompresses to %s, config diff_id %s", i, got, cfg.RootFS.DiffIDs[i])
		}
	}
}

// e2eSkopeoCopy copies b's image (for an index: its arch image) with
// skopeo into a new layout, and returns that layout. With gzipped, skopeo
// recompresses every layer to gzip, for the tools that cannot read zstd
// layers; it decompresses each layer to do so.
func e2eSkopeoCopy(t *testing.T, b *e2eBuilt, arch string, gzipped bool) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	var args []string
	if arch != "" {
		args = append(args, "--override-arch", arch, "--override-os", "linux")
	}
	args = append(args, "copy", "--quiet")
	if gzipped {
		args = append(args, "--dest-compress-format", "gzip")
	}
	args = append(args, "oci:"+b.layout+":"+e2eTag, "oci:"+dst+":"+e2eTag)
	testtool.Run(t, "skopeo", args...)
	d := e2eTagged(t, dst, e2eTag)
	var m ocispec.Manifest
	e2eUnmarshal(t, e2eBlob(t, dst, string(d.Digest)), &m)
	if gzipped {
		for i, l := range m.Layers {
			if l.MediaType != ocispec.MediaTypeImageLayerGzip {
				t.Fatalf("skopeo --dest-compress-format gzip left layer %d as %s", i, l.MediaType)
			}
		}
	}
	if arch != "" {
		var cfg ocispec.Image
		e2eUnmarshal(t, e2eBlob(t, dst, string(m.Config.Digest)), &cfg)
		if cfg.Architecture != arch {
			t.Fatalf("skopeo --override-arch %s copied a %s image", arch, cfg.Architecture)
		}
	}
	return dst
}

// --- skopeo ----------------------------------------------------------------------

// e2eInspect is the part of `skopeo inspect` output that the tests read.
type e2eInspect struct {
	Digest       string
	Architecture string
	Os           string
	Labels       map[string]string
	Env          []string
	Layers       []string
}

func e2eSkopeoInspect(t *testing.T, args ...string) e2eInspect {
	t.Helper()
	var in e2eInspect
	e2eUnmarshal(t, []byte(testtool.Run(t, "skopeo", append([]string{"inspect"}, args...)...)), &in)
	return in
}

// e2eSkopeo checks what skopeo reads from the layout and from both archives,
// and that skopeo copy (which reads and verifies every blob) reproduces the
// same digest.
func e2eSkopeo(t *testing.T, b *e2eBuilt) {
	if testtool.Require(t, "skopeo") == nil {
		return
	}
	want := e2eWants[b.spec]
	ref := "oci:" + b.layout + ":" + e2eTag
	blob := e2eBlob(t, b.layout, b.digest)

	// --raw gives the very bytes of the blob that the tag names.
	if raw := testtool.Run(t, "skopeo", "inspect", "--raw", ref); raw != string(blob) {
		t.Errorf("skopeo inspect --raw %s:\n%s\nthe blob %s:\n%s", ref, raw, b.digest, blob)
	}

	// Each platform's image: its digest, platform, labels and env.
	images := map[string]string{} // arch -> manifest digest
	if b.index() {
		var idx ocispec.Index
		e2eUnmarshal(t, blob, &idx)
		if idx.MediaType != ocispec.MediaTypeImageIndex {
			t.Errorf("the tag names a %q, want an image index", idx.MediaType)
		}
		var plats []string
		for _, m := range idx.Manifests {
			if m.Platform == nil {
				t.Fatalf("index entry %s has no platform", m.Digest)
			}
			plats = append(plats, m.Platform.OS+"/"+m.Platform.Architecture)
			images[m.Platform.Architecture] = string(m.Digest)
		}
		if !slices.Equal(plats, b.platforms) {
			t.Errorf("index platforms %v, want %v", plats, b.platforms)
		}
	} else {
		images["amd64"] = b.digest
	}
	for arch, digest := range images {
		// skopeo's Digest is that of what the tag names (for an index,
		// the index); the platform, labels and env are those of the
		// platform's image, whose config must be the one its manifest names.
		in := e2eSkopeoInspect(t, "--override-arch", arch, "--override-os", "linux", ref)
		if in.Digest != b.digest {
			t.Errorf("skopeo inspect %s (%s): Digest %s, repro printed %s", ref, arch, in.Digest, b.digest)
		}
		if in.Architecture != arch || in.Os != "linux" {
			t.Errorf("skopeo inspect %s (%s): platform %s/%s", ref, arch, in.Os, in.Architecture)
		}
		e2eCheckLabelsEnv(t, "skopeo inspect "+ref, in, want)
		// The config skopeo reads is the config blob, byte for byte.
		var m ocispec.Manifest
		e2eUnmarshal(t, e2eBlob(t, b.layout, digest), &m)
		cfg := testtool.Run(t, "skopeo", "--override-arch", arch, "--override-os", "linux", "inspect", "--config", "--raw", ref)
		if cfg != string(e2eBlob(t, b.layout, string(m.Config.Digest))) {
			t.Errorf("skopeo inspect --config --raw %s (%s) is not the config blob %s", ref, arch, m.Config.Digest)
		}
	}

	// skopeo copy reads every blob and checks its digest; the copy is the
	// same image, with the same digest. For an index, --all copies each
	// platform's image and the index itself unchanged.
	copyArgs := []string{"copy", "--quiet"}
	if b.index() {
		copyArgs = append(copyArgs, "--all")
	}
	other := filepath.Join(t.TempDir(), "other")
	testtool.Run(t, "skopeo", append(copyArgs, ref, "oci:"+other+":"+e2eTag)...)
	if got := string(e2eTagged(t, other, e2eTag).Digest); got != b.digest {
		t.Errorf("skopeo copy %s gave %s, want %s", ref, got, b.digest)
	}
	if got := e2eBlob(t, other, b.digest); !bytes.Equal(got, blob) {
		t.Errorf("skopeo copy changed the bytes of %s", b.digest)
	}

	// The oci-archive holds the same image: skopeo inspects it to the same
	// digest and copies it into a dir: whose manifest.json is those bytes.
	archive := "oci-archive:" + b.ociArchive + ":" + e2eTag
	if in := e2eSkopeoInspect(t, archive); in.Digest != b.digest || in.Architecture != "amd64" {
		t.Errorf("skopeo inspect %s: Digest %s (%s), want %s (amd64)", archive, in.Digest, in.Architecture, b.digest)
	}
	if raw := testtool.Run(t, "skopeo", "inspect", "--raw", archive); raw != string(blob) {
		t.Errorf("skopeo inspect --raw %s is not the blob %s", archive, b.digest)
	}
	dir := filepath.Join(t.TempDir(), "dir")
	testtool.Run(t, "skopeo", append(copyArgs, archive, "dir:"+dir)...)
	if got, err := os.ReadFile(filepath.Join(dir, "manifest.json")); err != nil {
		t.Error(err)
	} else if e2eDigestOf(got) != b.digest {
		t.Errorf("skopeo copy %s dir: wrote a manifest.json of digest %s, want %s", archive, e2eDigestOf(got), b.digest)
	}

	// The docker-archive: same platform, labels and env, and the layers
	// skopeo lists are the config's diff_ids.
	if b.dockerArchive != "" {
		in := e2eSkopeoInspect(t, "docker-archive:"+b.dockerArchive)
		if in.Architecture != "amd64" || in.Os != "linux" {
			t.Errorf("skopeo inspect docker-archive: platform %s/%s", in.Os, in.Architecture)
		}
		e2eCheckLabelsEnv(t, "skopeo inspect docker-archive:"+b.dockerArchive, in, want)
		var m ocispec.Manifest
		e2eUnmarshal(t, blob, &m)
		var cfg ocispec.Image
		e2eUnmarshal(t, e2eBlob(t, b.layout, string(m.Config.Digest)), &cfg)
		var diffIDs []string
		for _, d := range cfg.RootFS.DiffIDs {
			diffIDs = append(diffIDs, string(d))
		}
		if !slices.Equal(in.Layers, diffIDs) {
			t.Errorf("skopeo inspect docker-archive: layers %v, want the diff_ids %v", in.Layers, diffIDs)
		}
	}
}

func e2eCheckLabelsEnv(t *testing.T, what string, in e2eInspect, want e2eWant) {
	t.Helper()
	if len(in.Labels) != len(want.labels) {
		t.Errorf("%s: labels %v, want %v", what, in.Labels, want.labels)
	}
	for k, v := range want.labels {
		if in.Labels[k] != v {
			t.Errorf("%s: label %s = %q, want %q", what, k, in.Labels[k], v)
		}
	}
	if !slices.Equal(in.Env, want.env) {
		t.Errorf("%s: env %q, want %q", what, in.Env, want.env)
	}
}

// --- umoci -----------------------------------------------------------------------

// e2eUmoci unpacks the (linux/amd64) image with umoci and checks the root
// file system it gives: every path, type, mode, owner, link target, content,
// mtime and extended attribute.
func e2eUmoci(t *testing.T, b *e2eBuilt) {
	tools := testtool.Require(t, "umoci", "skopeo", "getcap")
	if tools == nil {
		return
	}
	if os.Geteuid() != 0 {
		// Owners and security.capability need root; a rootless unpack
		// would prove neither.
		if testtool.InCI() {
			t.Fatal("umoci unpack must run as root to keep owners and capabilities; CI runs as root")
		}
		t.Skip("umoci unpack must run as root to keep owners and capabilities")
	}
	layout := b.layout
	switch {
	case b.index():
		// umoci 0.4.7 cannot pick a platform from an index ("tag is
		// ambiguous"): take the amd64 image out of it first.
		layout = e2eSkopeoCopy(t, b, "amd64", b.compression == "zstd")
	case b.compression == "zstd":
		// umoci 0.4.7 reads no zstd layers ("blob is not correct
		// mediatype"): skopeo recompresses them to gzip.
		layout = e2eSkopeoCopy(t, b, "", true)
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	testtool.Run(t, "umoci", "unpack", "--image", layout+":"+e2eTag, bundle)
	rootfs := filepath.Join(bundle, "rootfs")
	want := e2eWants[b.spec]

	got := e2eTree(t, rootfs)
	if !slices.Equal(got, want.tree) {
		t.Errorf("umoci unpacked this tree:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want.tree, "\n  "))
	}
	for p, c := range want.content {
		e2eCheckContent(t, rootfs, p, []byte(c))
	}
	for p, src := range want.source {
		data, err := os.ReadFile(filepath.Join(b.examples, src))
		if err != nil {
			t.Fatal(err)
		}
		e2eCheckContent(t, rootfs, p, data)
	}
	for _, p := range want.absent {
		if _, err := os.Lstat(filepath.Join(rootfs, p)); !os.IsNotExist(err) {
			t.Errorf("%s is in the image (%v); the spec excludes it", p, err)
		}
	}
	for _, pair := range want.hardlinks {
		a, errA := os.Stat(filepath.Join(rootfs, pair[0]))
		c, errC := os.Stat(filepath.Join(rootfs, pair[1]))
		if errA != nil || errC != nil {
			t.Errorf("hard link %s, %s: %v %v", pair[0], pair[1], errA, errC)
			continue
		}
		sa, sc := a.Sys().(*syscall.Stat_t), c.Sys().(*syscall.Stat_t)
		if sa.Ino != sc.Ino || sa.Nlink != 2 {
			t.Errorf("%s (inode %d, %d links) and %s (inode %d) are not one hard-linked file", pair[0], sa.Ino, sa.Nlink, pair[1], sc.Ino)
		}
	}
	e2eCheckXattrs(t, rootfs, want.caps)
	e2eCheckMtimes(t, rootfs)
}

// e2eTree lists every path under root (root itself excepted) as
// "PATH TYPE MODE UID:GID" ("PATH l UID:GID -> TARGET" for a symlink), sorted.
func e2eTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel := "/" + filepath.ToSlash(strings.TrimPrefix(p, root+string(filepath.Separator)))
		owner := fmt.Sprintf("%d:%d", st.Uid, st.Gid)
		perm := st.Mode & 0o7777
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, fmt.Sprintf("%s l %s -> %s", rel, owner, target))
		case fi.IsDir():
			out = append(out, fmt.Sprintf("%s d %04o %s", rel, perm, owner))
		case fi.Mode().IsRegular():
			out = append(out, fmt.Sprintf("%s f %04o %s", rel, perm, owner))
		default:
			out = append(out, fmt.Sprintf("%s ? %v %s", rel, fi.Mode(), owner))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func e2eCheckContent(t *testing.T, rootfs, p string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(rootfs, p))
	if err != nil {
		t.Errorf("reading %s from the image: %v", p, err)
		return
	}
	if !bytes.Equal(got, want) {
		if len(want) > 200 {
			t.Errorf("%s: %d bytes (sha256 %s), want %d bytes (%s)", p, len(got), e2eDigestOf(got), len(want), e2eDigestOf(want))
		} else {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
}

// e2eCheckXattrs checks that the paths in caps carry exactly a
// security.capability xattr, that getcap prints the capabilities expected
// for them, and that no other path carries any xattr.
func e2eCheckXattrs(t *testing.T, rootfs string, caps map[string]string) {
	t.Helper()
	err := filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err // listxattr follows symlinks, and symlinks carry none
		}
		rel := "/" + strings.TrimPrefix(p, rootfs+"/")
		if p == rootfs {
			rel = "/"
		}
		names := e2eListXattr(t, p)
		want, ok := caps[rel]
		if !ok {
			if len(names) > 0 {
				t.Errorf("%s carries xattrs %q; the spec gives it none", rel, names)
			}
			return nil
		}
		if !slices.Equal(names, []string{"security.capability"}) {
			t.Errorf("%s carries xattrs %q, want security.capability alone", rel, names)
		}
		buf := make([]byte, 64)
		n, err := syscall.Getxattr(p, "security.capability", buf)
		if err != nil {
			t.Errorf("%s: getxattr security.capability: %v", rel, err)
			return nil
		}
		e2eCheckVFSCap(t, rel, buf[:n])
		out := testtool.Run(t, "getcap", p)
		if got := strings.TrimSpace(strings.TrimPrefix(out, p)); got != want {
			t.Errorf("getcap %s printed %q, want %q", rel, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// e2eListXattr lists p's xattrs, leaving out security.selinux, which the
// host's LSM, not the image, may add.
func e2eListXattr(t *testing.T, p string) []string {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := syscall.Listxattr(p, buf)
	if err != nil {
		t.Fatalf("listxattr %s: %v", p, err)
	}
	var names []string
	for _, s := range strings.Split(string(buf[:n]), "\x00") {
		if s != "" && s != "security.selinux" {
			names = append(names, s)
		}
	}
	sort.Strings(names)
	return names
}

// e2eCheckVFSCap decodes a security.capability value (struct
// vfs_cap_data, revision 2 or 3) and checks it grants CAP_NET_BIND_SERVICE
// (10), permitted and effective, and nothing else.
func e2eCheckVFSCap(t *testing.T, rel string, v []byte) {
	t.Helper()
	if len(v) != 20 && len(v) != 24 {
		t.Errorf("%s: security.capability is %d bytes (%x), want a vfs_cap_data of 20 or 24", rel, len(v), v)
		return
	}
	magic := binary.LittleEndian.Uint32(v[0:])
	rev, flags := magic&0xff000000, magic&0x00ffffff
	permitted := uint64(binary.LittleEndian.Uint32(v[4:])) | uint64(binary.LittleEndian.Uint32(v[12:]))<<32
	inheritable := uint64(binary.LittleEndian.Uint32(v[8:])) | uint64(binary.LittleEndian.Uint32(v[16:]))<<32
	wantRev := map[int]uint32{20: 0x02000000, 24: 0x03000000}[len(v)]
	if rev != wantRev || flags != 1 || permitted != 1<<10 || inheritable != 0 {
		t.Errorf("%s: security.capability %x: revision %#x flags %#x permitted %#x inheritable %#x; want revision %#x, effective, permitted 1<<10 (cap_net_bind_service)",
			rel, v, rev, flags, permitted, inheritable, wantRev)
	}
}

// e2eCheckMtimes checks that every path but the root (which no layer
// holds) has the spec's epoch as its mtime.
func e2eCheckMtimes(t *testing.T, rootfs string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == rootfs {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		if st.Mtim.Sec != e2eEpoch || st.Mtim.Nsec != 0 {
			t.Errorf("%s: mtime %d.%09d, want the epoch %d", strings.TrimPrefix(p, rootfs), st.Mtim.Sec, st.Mtim.Nsec, e2eEpoch)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Error("the unpacked root file system is empty")
	}
}

// --- podman ----------------------------------------------------------------------

// e2ePodman runs the example server in podman from the OCI layout and, for
// one platform, from the docker-archive after podman load.
func e2ePodman(t *testing.T, b *e2eBuilt) {
	want := e2eWants[b.spec].check
	ref := testtool.OCIRef(t, b.layout, e2eTag)
	t.Run("oci", func(t *testing.T) {
		podman := testtool.Podman(t)
		if podman == nil {
			return
		}
		args := []string{"run", "--rm"}
		if b.index() {
			// podman picks the platform out of an index in an oci: layout.
			args = append(args, "--platform", "linux/amd64")
		}
		got := testtool.Run(t, podman[0], slices.Concat(podman[1:], args, []string{ref, "-check"})...)
		if got != want {
			t.Errorf("podman run %s -check printed %q, want %q", ref, got, want)
		}
	})
	if b.index() {
		// Only amd64 runs here; podman must still take the arm64 image out
		// of the index: the image it stores has the arm64 config.
		t.Run("pull-arm64", func(t *testing.T) {
			podman := testtool.Podman(t)
			if podman == nil {
				return
			}
			var idx ocispec.Index
			e2eUnmarshal(t, e2eBlob(t, b.layout, b.digest), &idx)
			var arm64 *ocispec.Descriptor
			for i, m := range idx.Manifests {
				if m.Platform != nil && m.Platform.Architecture == "arm64" {
					arm64 = &idx.Manifests[i]
				}
			}
			if arm64 == nil {
				t.Fatal("no arm64 image in the index")
			}
			var m ocispec.Manifest
			e2eUnmarshal(t, e2eBlob(t, b.layout, string(arm64.Digest)), &m)
			id := strings.TrimSpace(testtool.Run(t, podman[0], slices.Concat(podman[1:], []string{"pull", "--quiet", "--platform", "linux/arm64", ref})...))
			if "sha256:"+id != string(m.Config.Digest) {
				t.Errorf("podman pull --platform linux/arm64 stored image %s, want the arm64 config %s", id, m.Config.Digest)
			}
			plat := testtool.Run(t, podman[0], slices.Concat(podman[1:], []string{"image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", id})...)
			if strings.TrimSpace(plat) != "linux/arm64" {
				t.Errorf("podman image inspect: %q, want linux/arm64", plat)
			}
		})
	}
	if b.dockerArchive != "" && b.compression == "gzip" {
		t.Run("docker-archive", func(t *testing.T) {
			podman := testtool.Podman(t)
			if podman == nil {
				return
			}
			out := testtool.Run(t, podman[0], slices.Concat(podman[1:], []string{"load", "--quiet", "--input", b.dockerArchive})...)
			// Without a name in -o docker-archive:FILE, repro records the
			// spec's name, tagged latest.
			name := e2eWants[b.spec].name + ":latest"
			if !strings.Contains(out, name) {
				t.Errorf("podman load printed %q; want it to load %s", out, name)
			}
			got := testtool.Run(t, podman[0], slices.Concat(podman[1:], []string{"run", "--rm", "--pull=never", name, "-check"})...)
			if got != want {
				t.Errorf("podman run %s -check printed %q, want %q", name, got, want)
			}
		})
	}
}

// --- determinism across outputs ------------------------------------------------------

// e2eArchivesAgain builds the case again, from another working directory,
// into other paths and with the outputs in the other order: the
// oci-archive and docker-archive files are byte-identical to the first ones.
func e2eArchivesAgain(t *testing.T, b *e2eBuilt) {
	dir := t.TempDir()
	ociArchive := filepath.Join(dir, "again-oci.tar")
	dockerArchive := filepath.Join(dir, "again-docker.tar")
	var args []string
	if b.dockerArchive != "" {
		args = append(args, "-o", "docker-archive:"+dockerArchive)
	}
	args = append(args, "-o", "oci-archive:"+ociArchive+":"+e2eTag)
	r := repro(t, dir, append([]string{"build", "-q", "--offline", "--version", e2eVersion, "--compression", b.compression,
		"-f", filepath.Join(b.examples, b.spec)}, args...)...)
	if d := lastLine(r.stdout); d != b.digest {
		t.Errorf("second build printed %s, first %s", d, b.digest)
	}
	e2eSameFile(t, b.ociArchive, ociArchive)
	if b.dockerArchive != "" {
		e2eSameFile(t, b.dockerArchive, dockerArchive)
	}
}

func e2eSameFile(t *testing.T, a, b string) {
	t.Helper()
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(da, db) {
		t.Errorf("%s and %s differ: %d bytes (%s) vs %d bytes (%s)", filepath.Base(a), filepath.Base(b),
			len(da), e2eDigestOf(da), len(db), e2eDigestOf(db))
	}
}

// --- helpers ---------------------------------------------------------------------

func e2eDigestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func e2eBlobPath(layout, digest string) string {
	return filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

// e2eBlob reads a blob of a layout and checks that it hashes to its name.
func e2eBlob(t *testing.T, layout, digest string) []byte {
	t.Helper()
	if !digestRE.MatchString(digest) {
		t.Fatalf("%q is not a sha256 digest", digest)
	}
	b, err := os.ReadFile(e2eBlobPath(layout, digest))
	if err != nil {
		t.Fatalf("reading blob: %v", err)
	}
	if got := e2eDigestOf(b); got != digest {
		t.Fatalf("blob %s of %s hashes to %s", digest, layout, got)
	}
	return b
}

// e2eTagged returns the one entry of the layout's index.json with the tag.
func e2eTagged(t *testing.T, layout, tag string) ocispec.Descriptor {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	e2eUnmarshal(t, raw, &idx)
	var found []ocispec.Descriptor
	for _, d := range idx.Manifests {
		if d.Annotations[ocispec.AnnotationRefName] == tag {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s/index.json has %d entries tagged %q:\n%s", layout, len(found), tag, raw)
	}
	return found[0]
}

func e2eUnmarshal(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decoding %T: %v\n%s", v, err, data)
	}
}

// e2eCommand starts the repro binary the way invocation runs it, with
// TMPDIR set to tmp, for tests that must signal it.
func e2eCommand(dir, tmp string, args ...string) *exec.Cmd {
	cmd := exec.Command(reproBin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + tmp}
	return cmd
}

// e2eEntries lists the names in dir (none when it does not exist).
func e2eEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
