package imageref

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/pkg/fault"
)

// Artifact is an opened image or index. Close releases what Open held.
type Artifact struct {
	Descriptor v1.Descriptor
	// Image is set for a manifest, Index for an index.
	Image v1.Image
	Index v1.ImageIndex

	closer io.Closer
}

// Close releases the artifact's files.
func (a *Artifact) Close() error {
	if a.closer == nil {
		return nil
	}
	return a.closer.Close()
}

// Open opens r for reading. Blobs are read lazily and verified against
// their digests as they are read. remoteOpts apply to registry references.
// An index is walked through the indexes it nests (not their images):
// nesting past MaxIndexDepth is exit 2 here, so no reader walks deeper.
func Open(ctx context.Context, r Reference, remoteOpts ...remote.Option) (*Artifact, error) {
	switch r.Transport {
	case OCI:
		src := &dirSource{dir: r.Path}
		if _, err := os.Stat(filepath.Join(r.Path, "oci-layout")); err != nil {
			if _, derr := os.Stat(r.Path); errors.Is(derr, fs.ErrNotExist) {
				return nil, fault.Bad(fmt.Errorf("%s: %s does not exist; an oci: reference names an OCI layout: a directory holding oci-layout, index.json and blobs/", r, r.Path))
			}
			return nil, NotLayout(r.String(), r.Path)
		}
		return openLayout(r, src)
	case OCIArchive:
		src, err := openTarSource(r.Path)
		if err != nil {
			return nil, err
		}
		a, err := openLayout(r, src)
		if err != nil {
			src.Close()
			return nil, err
		}
		a.closer = src
		return a, nil
	case DockerArchive:
		var tag *nameTag
		if r.Tag != "" {
			t, err := parseTag(r.Tag)
			if err != nil {
				return nil, fault.Bad(err)
			}
			tag = &t
		}
		img, err := tarball.ImageFromPath(r.Path, tag)
		if err != nil {
			return nil, fault.Bad(fmt.Errorf("%s: %w", r, err))
		}
		d, err := partial.Descriptor(img)
		if err != nil {
			return nil, fault.Bad(fmt.Errorf("%s: %w", r, err))
		}
		return &Artifact{Descriptor: *d, Image: img}, nil
	case Registry:
		opts := append([]remote.Option{remote.WithContext(ctx)}, remoteOpts...)
		desc, err := remote.Get(r.Name, opts...)
		if err != nil {
			return nil, RegistryError(r.Name.Context().RegistryStr(), "reading "+r.Name.String(), err)
		}
		a := &Artifact{Descriptor: desc.Descriptor}
		if desc.MediaType.IsIndex() {
			a.Index, err = desc.ImageIndex()
		} else {
			a.Image, err = desc.Image()
		}
		if err != nil {
			return nil, fault.Op(fmt.Errorf("reading %s: %w", r.Name, err))
		}
		if a.Index != nil {
			if err := CheckDepth(a.Index); err != nil {
				return nil, fmt.Errorf("%s: %w", r, err)
			}
		}
		return a, nil
	}
	return nil, fault.Bad(fmt.Errorf("%s: cannot be opened", r))
}

// blobSource reads the blobs of a layout, wherever it is stored.
type blobSource interface {
	// open returns the blob's bytes (unverified) or fs.ErrNotExist.
	open(h v1.Hash) (io.ReadCloser, error)
	// index returns index.json.
	index() ([]byte, error)
}

func openLayout(r Reference, src blobSource) (*Artifact, error) {
	raw, err := src.index()
	if err != nil {
		return nil, fault.Bad(fmt.Errorf("%s: reading index.json: %w", r, err))
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fault.Bad(fmt.Errorf("%s: index.json: %w", r, err))
	}
	desc, err := selectEntry(r, idx.Manifests, src)
	if err != nil {
		return nil, err
	}
	a := &Artifact{Descriptor: desc}
	if desc.MediaType.IsIndex() {
		a.Index = &srcIndex{src: src, desc: desc}
		if err := CheckDepth(a.Index); err != nil {
			return nil, fmt.Errorf("%s: %w", r, err)
		}
	} else if desc.MediaType.IsImage() {
		a.Image, err = partial.CompressedToImage(&srcImage{src: src, desc: desc})
		if err != nil {
			return nil, err
		}
	} else {
		return nil, fault.Bad(fmt.Errorf("%s: %s is a %s, not an image or index", r, desc.Digest, desc.MediaType))
	}
	return a, nil
}

const refName = "org.opencontainers.image.ref.name"

// NotLayout is the error for ref, whose directory dir holds no oci-layout
// file; when directories in it are layouts (oci:out, where builds wrote
// out/app), it names them.
func NotLayout(ref, dir string) error {
	var inside []string
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if _, err := os.Stat(filepath.Join(dir, e.Name(), "oci-layout")); err == nil && e.IsDir() {
				inside = append(inside, e.Name())
			}
		}
	}
	if len(inside) == 0 {
		return fault.Bad(fmt.Errorf("%s: not an OCI layout (no oci-layout file)", ref))
	}
	sort.Strings(inside)
	const most = 8
	list := strings.Join(inside[:min(len(inside), most)], ", ")
	if len(inside) > most {
		list += fmt.Sprintf(" and %d more", len(inside)-most)
	}
	return fault.Bad(fmt.Errorf("%s: not an OCI layout (no oci-layout file), but it holds the layouts %s: name one, like oci:%s", ref, list, filepath.Join(dir, inside[0])))
}

func selectEntry(r Reference, entries []v1.Descriptor, src blobSource) (v1.Descriptor, error) {
	if r.Digest != "" {
		h, err := v1.NewHash(r.Digest)
		if err != nil {
			return v1.Descriptor{}, fault.Bad(err)
		}
		for _, d := range entries {
			if d.Digest == h {
				return d, nil
			}
		}
		// Not listed: a nested manifest. Read it to learn its type.
		b, err := readAll(src, h)
		if err != nil {
			return v1.Descriptor{}, fault.Bad(fmt.Errorf("%s: no blob %s in the layout", r, h))
		}
		var m struct {
			MediaType types.MediaType `json:"mediaType"`
		}
		json.Unmarshal(b, &m)
		return v1.Descriptor{MediaType: m.MediaType, Digest: h, Size: int64(len(b))}, nil
	}
	var tags []string
	for _, d := range entries {
		t := d.Annotations[refName]
		if r.Tag != "" && t == r.Tag {
			return d, nil
		}
		if t != "" && !isCosignEntry(d) {
			tags = append(tags, t)
		}
	}
	sort.Strings(tags)
	if r.Tag == "" {
		// Without a tag, the layout must hold one image: entries of one
		// digest (several tags) count once, and cosign's signature and
		// attestation entries do not count. The signed image's own entry
		// (kind …/image or …/imageIndex) does count: it is an image.
		byDigest := map[v1.Hash]v1.Descriptor{}
		for _, d := range entries {
			if !isCosignEntry(d) {
				byDigest[d.Digest] = d
			}
		}
		if len(byDigest) == 1 {
			for _, d := range byDigest {
				return d, nil
			}
		}
		if len(entries) == 1 {
			return entries[0], nil
		}
		return v1.Descriptor{}, fault.Bad(fmt.Errorf("%s holds %d images; name one with :TAG (tags: %s)", r, len(byDigest), strings.Join(tags, ", ")))
	}
	return v1.Descriptor{}, fault.Bad(fmt.Errorf("%s: no image tagged %q (tags: %s)", r, r.Tag, strings.Join(tags, ", ")))
}

// isCosignEntry says whether a layout's entry holds cosign's signatures or
// attestations, not an image: cosign's kind annotation says so (…/sigs,
// …/atts), or, once a later signing moved the kind annotations to another
// image, its tag does (sha256-<hex>.sig, .att or .sbom).
func isCosignEntry(d v1.Descriptor) bool {
	switch d.Annotations["kind"] {
	case "dev.cosignproject.cosign/sigs", "dev.cosignproject.cosign/atts":
		return true
	}
	t := d.Annotations[refName]
	hex, ok := strings.CutPrefix(t, "sha256-")
	if !ok {
		return false
	}
	for _, ext := range []string{".sig", ".att", ".sbom"} {
		if h, ok := strings.CutSuffix(hex, ext); ok && len(h) == 64 && strings.Trim(h, "0123456789abcdef") == "" {
			return true
		}
	}
	return false
}

func readAll(src blobSource, h v1.Hash) ([]byte, error) {
	return readSized(src, h, -1)
}

// readSized is readAll of a blob whose descriptor gives its size: read
// into a buffer of that size, not one that doubles (a 100 MB config cost
// 240 MB that way). A size that lies only costs the growth again.
func readSized(src blobSource, h v1.Hash, size int64) ([]byte, error) {
	rc, err := verified(src, h)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size < 0 || size > 1<<30 {
		return io.ReadAll(rc)
	}
	buf := make([]byte, size)
	n, err := io.ReadFull(rc, buf)
	if err == io.ErrUnexpectedEOF {
		return buf[:n], nil // shorter than said, and verified at its end
	}
	if err != nil {
		return nil, err
	}
	rest, err := io.ReadAll(rc) // to the end, where the digest is checked
	if err != nil {
		return nil, err
	}
	return append(buf, rest...), nil
}

// verified opens blob h and checks its digest as it is read: the read that
// reaches the end fails if the bytes do not match.
func verified(src blobSource, h v1.Hash) (io.ReadCloser, error) {
	if h.Algorithm != "sha256" {
		return nil, fmt.Errorf("unsupported digest algorithm %s", h.Algorithm)
	}
	rc, err := src.open(h)
	if err != nil {
		return nil, err
	}
	return &verifyReader{rc: rc, want: h, h: sha256.New()}, nil
}

type verifyReader struct {
	rc   io.ReadCloser
	want v1.Hash
	h    hash.Hash
}

// ErrDigestMismatch is in the error of a blob whose bytes do not match
// its digest.
var ErrDigestMismatch = errors.New("the layout serves corrupt data")

func (v *verifyReader) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.Hex {
			return n, fmt.Errorf("blob %s: its bytes hash to sha256:%s, not the digest it is named by; %w", v.want, got, ErrDigestMismatch)
		}
	}
	return n, err
}

func (v *verifyReader) Close() error { return v.rc.Close() }

// dirSource is an OCI layout directory.
type dirSource struct{ dir string }

func (d *dirSource) open(h v1.Hash) (io.ReadCloser, error) {
	return os.Open(filepath.Join(d.dir, "blobs", h.Algorithm, h.Hex))
}
func (d *dirSource) index() ([]byte, error) { return os.ReadFile(filepath.Join(d.dir, "index.json")) }

// tarSource is an OCI layout inside a tar file, read in place: one pass
// records where each member starts, then members are read as sections.
type tarSource struct {
	f       *os.File
	members map[string][2]int64 // name -> offset, size
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func openTarSource(path string) (*tarSource, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fault.Bad(fmt.Errorf("%s: no such file", path))
		}
		return nil, fault.Op(err)
	}
	cr := &countingReader{r: f}
	tr := tar.NewReader(cr)
	t := &tarSource{f: f, members: map[string][2]int64{}}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return nil, fault.Bad(fmt.Errorf("%s: not a tar archive: %w", path, err))
		}
		if h.Typeflag == tar.TypeReg {
			// archive/tar has consumed exactly the header blocks: the
			// member's data starts here.
			t.members[strings.TrimPrefix(h.Name, "./")] = [2]int64{cr.n, h.Size}
		}
	}
	return t, nil
}

func (t *tarSource) open(h v1.Hash) (io.ReadCloser, error) {
	m, ok := t.members["blobs/"+h.Algorithm+"/"+h.Hex]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return io.NopCloser(io.NewSectionReader(t.f, m[0], m[1])), nil
}

func (t *tarSource) index() ([]byte, error) {
	m, ok := t.members["index.json"]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return io.ReadAll(io.NewSectionReader(t.f, m[0], m[1]))
}

func (t *tarSource) Close() error { return t.f.Close() }

// srcImage is an image manifest in a blob source.
type srcImage struct {
	src  blobSource
	desc v1.Descriptor
	raw  []byte
	// blobs are the manifest's config and layers by digest, parsed once:
	// a lookup per layer that parsed the manifest each time made opening
	// a base of n layers cost n² (2,000 layers: 44 s).
	blobs map[v1.Hash]v1.Descriptor
}

func (i *srcImage) MediaType() (types.MediaType, error) { return i.desc.MediaType, nil }

func (i *srcImage) RawManifest() ([]byte, error) {
	if i.raw == nil {
		b, err := readAll(i.src, i.desc.Digest)
		if err != nil {
			return nil, err
		}
		i.raw = b
	}
	return i.raw, nil
}

func (i *srcImage) RawConfigFile() ([]byte, error) {
	m, err := partial.Manifest(i)
	if err != nil {
		return nil, err
	}
	return readSized(i.src, m.Config.Digest, m.Config.Size)
}

func (i *srcImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if i.blobs == nil {
		m, err := partial.Manifest(i)
		if err != nil {
			return nil, err
		}
		i.blobs = make(map[v1.Hash]v1.Descriptor, len(m.Layers)+1)
		for _, l := range m.Layers {
			if _, dup := i.blobs[l.Digest]; !dup {
				i.blobs[l.Digest] = l // the first, as the scan it replaces found
			}
		}
		i.blobs[m.Config.Digest] = m.Config // the config wins, as the scan it replaces had it
	}
	if d, ok := i.blobs[h]; ok {
		return &srcBlob{src: i.src, desc: d}, nil
	}
	return nil, fmt.Errorf("blob %s is not in image %s", h, i.desc.Digest)
}

// srcBlob is one blob of a blob source.
type srcBlob struct {
	src  blobSource
	desc v1.Descriptor
}

func (b *srcBlob) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *srcBlob) Size() (int64, error)                { return b.desc.Size, nil }
func (b *srcBlob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }
func (b *srcBlob) Compressed() (io.ReadCloser, error)  { return verified(b.src, b.desc.Digest) }
func (b *srcBlob) Descriptor() (*v1.Descriptor, error) { d := b.desc; return &d, nil }

// srcIndex is an image index in a blob source.
type srcIndex struct {
	src  blobSource
	desc v1.Descriptor
	raw  []byte
}

var _ v1.ImageIndex = (*srcIndex)(nil)

func (x *srcIndex) MediaType() (types.MediaType, error) { return x.desc.MediaType, nil }
func (x *srcIndex) Digest() (v1.Hash, error)            { return x.desc.Digest, nil }
func (x *srcIndex) Size() (int64, error)                { return x.desc.Size, nil }

func (x *srcIndex) RawManifest() ([]byte, error) {
	if x.raw == nil {
		b, err := readAll(x.src, x.desc.Digest)
		if err != nil {
			return nil, err
		}
		x.raw = b
	}
	return x.raw, nil
}

func (x *srcIndex) IndexManifest() (*v1.IndexManifest, error) {
	raw, err := x.RawManifest()
	if err != nil {
		return nil, err
	}
	return v1.ParseIndexManifest(bytes.NewReader(raw))
}

func (x *srcIndex) child(h v1.Hash) (v1.Descriptor, error) {
	im, err := x.IndexManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	for _, d := range im.Manifests {
		if d.Digest == h {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("%s is not in index %s", h, x.desc.Digest)
}

func (x *srcIndex) Image(h v1.Hash) (v1.Image, error) {
	d, err := x.child(h)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&srcImage{src: x.src, desc: d})
}

func (x *srcIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	d, err := x.child(h)
	if err != nil {
		return nil, err
	}
	return &srcIndex{src: x.src, desc: d}, nil
}

// RegistryError classifies a registry failure as operational and, when
// the registry refused the credentials, says how to log in.
func RegistryError(registry, doing string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return fault.Op(fmt.Errorf("%s: %s refused: %w; log in with `podman login %s` or `docker login %s` (repro reads $DOCKER_CONFIG/config.json and its credential helpers)", doing, registry, err, registry, registry))
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fault.Op(fmt.Errorf("%s: %w", doing, err))
}
