package layercache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/internal/atomicfs"
	"github.com/reprobuild/repro/pkg/compress"
)

// Labels of a shared entry's config.
const (
	// LabelKey is the key an entry is for (its tag says it too).
	LabelKey = "org.reprobuild.layercache.key"
	// LabelExtra is what the builder keeps with the layer (Put's extra).
	LabelExtra = "org.reprobuild.layercache.extra"
)

// Shared is a layer cache in a registry repository: one image manifest
// per key, tagged by the key's hex, holding the layer and a config whose
// labels name the key and carry the builder's extra, and whose created
// time is when the entry was written (so that repro gc on the repository
// expires entries by age). Entries are immutable: a key's tag is written
// once, by the first build that misses it, never again.
type Shared struct {
	// Repo is the repository.
	Repo name.Repository
	// Write: a build that misses stores its layer there (readwrite);
	// otherwise it only reads (read: pull requests).
	Write bool
	// Options are the options of every request.
	Options []remote.Option
	// Now is the clock of an entry's created time.
	Now func() time.Time
}

// SharedError is a shared entry that failed its check: its bytes do not
// hash as the entry claims. It is not used; the layer is built.
type SharedError struct {
	Key Key
	Ref string
	Msg string
}

func (e *SharedError) Error() string {
	return fmt.Sprintf("the cache-repo entry %s is corrupt (%s); it is not used, and the layer is built", e.Ref, e.Msg)
}

func (s *Shared) tag(k Key) name.Tag { return s.Repo.Tag(k.String()) }

func notFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && (te.StatusCode == http.StatusNotFound)
}

// Get fetches the entry for k into the local store st and returns it from
// there: nil, nil when the repository has none. The layer's bytes are
// hashed as they stream (its digest) and decompressed (its diff ID), and
// must be what the entry claims, before the store keeps them; an entry
// that fails is a *SharedError. Ref is the blob in the repository, for a
// push to the same registry to mount.
//
// want, when not nil, writes the layer's uncompressed stream as this
// build would write it (the tar of an entries layer). The check is then
// stronger and quicker: the blob must decompress to exactly that stream,
// so the entry is the layer a cold build writes, not only a layer that
// hashes as it claims. A gzip blob is proven so block by block on every
// core as it arrives (compress.CopyCheckGzipBlocks); a blob that cannot be
// proven that way (zstd, another writer's blocks, a false sync marker, a
// file that changed since the key was made) is decompressed whole and
// compared. Layer.Checked says which check a hit had.
func (s *Shared) Get(ctx context.Context, k Key, st *Store, want func(io.Writer) error) (l *Layer, ref name.Digest, err error) {
	tag := s.tag(k)
	opts := append([]remote.Option{remote.WithContext(ctx)}, s.Options...)
	img, err := remote.Image(tag, opts...)
	if notFound(err) {
		return nil, ref, nil
	}
	if err != nil {
		return nil, ref, err
	}
	bad := func(format string, args ...any) (*Layer, name.Digest, error) {
		return nil, ref, &SharedError{Key: k, Ref: tag.String(), Msg: fmt.Sprintf(format, args...)}
	}
	m, err := img.Manifest()
	if err != nil {
		return bad("manifest: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return bad("config: %v", err)
	}
	if len(m.Layers) != 1 || len(cf.RootFS.DiffIDs) != 1 {
		return bad("%d layers and %d diff IDs, not one", len(m.Layers), len(cf.RootFS.DiffIDs))
	}
	if cf.Config.Labels[LabelKey] != k.String() {
		return bad("its config names key %q", cf.Config.Labels[LabelKey])
	}
	desc, diffID := m.Layers[0], cf.RootFS.DiffIDs[0]
	alg := compress.Gzip
	switch desc.MediaType {
	case types.MediaType(compress.Gzip.MediaType()), types.DockerLayer:
	case types.MediaType(compress.Zstd.MediaType()):
		alg = compress.Zstd
	default:
		return bad("layer media type %s", desc.MediaType)
	}
	ref = s.Repo.Digest(desc.Digest.String())
	blob, err := remote.Layer(ref, opts...)
	if err != nil {
		return nil, ref, err
	}
	if err := os.MkdirAll(st.entries(), 0o755); err != nil {
		return nil, ref, err
	}
	f, tmp, err := atomicfs.CreateTemp(st.entries(), ".tmp-", "-fetch")
	if err != nil {
		return nil, ref, err
	}
	defer tmp.Remove()
	defer f.Close()
	var got, gotDiff v1.Hash
	var n int64
	var checked Check
	if want == nil {
		got, gotDiff, n, err = fetchHashed(blob, f, alg)
		checked = CheckHashed
	} else {
		got, gotDiff, n, checked, err = fetchCompared(ctx, blob, f, alg, want)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ref, ctx.Err()
		}
		var se *SharedError
		if errors.As(err, &se) {
			se.Key, se.Ref = k, tag.String()
			return nil, ref, se
		}
		return nil, ref, err
	}
	if got != desc.Digest || gotDiff != diffID || n != desc.Size {
		return bad("its layer has %s, diff ID %s and %d bytes, not %s, %s and %d as it claims", got, gotDiff, n, desc.Digest, diffID, desc.Size)
	}
	if err := f.Sync(); err != nil {
		return nil, ref, err
	}
	l, err = st.Put(k, fileLayer{path: f.Name(), digest: got, diffID: gotDiff, size: n, mt: desc.MediaType}, []byte(cf.Config.Labels[LabelExtra]))
	if l != nil {
		l.checked = checked
	}
	return l, ref, err
}

// Check is how a shared hit's bytes were checked (Layer.Checked).
type Check string

// The checks of a shared hit. A local hit has none ("").
const (
	// CheckBlocks: proven, block by block on every core, to decompress
	// to the layer this build writes.
	CheckBlocks Check = "blocks"
	// CheckCompared: decompressed whole and compared with the layer this
	// build writes.
	CheckCompared Check = "compared"
	// CheckHashed: decompressed whole and hashed (a layer the caller
	// gave no stream for: a package layer's).
	CheckHashed Check = "hashed"
)

// fetchHashed copies blob's compressed bytes to w, hashing them and their
// decompression.
func fetchHashed(blob v1.Layer, w io.Writer, alg compress.Algorithm) (digest, diffID v1.Hash, n int64, err error) {
	rc, err := blob.Compressed()
	if err != nil {
		return digest, diffID, 0, err
	}
	defer rc.Close()
	hc, hu := sha256.New(), sha256.New()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		zr, err := compress.NewReaderAhead(pr, alg)
		if err == nil {
			_, err = io.Copy(hu, zr)
			zr.Close()
		}
		pr.CloseWithError(err)
		io.Copy(io.Discard, pr)
		done <- err
	}()
	n, err = io.Copy(io.MultiWriter(w, hc, pw), rc)
	pw.CloseWithError(err)
	uerr := <-done
	if err != nil {
		// go-containerregistry checks the digest as the body ends.
		return digest, diffID, n, &SharedError{Msg: err.Error()}
	}
	if uerr != nil {
		return digest, diffID, n, &SharedError{Msg: "its layer does not decompress: " + uerr.Error()}
	}
	return hashOf(hc), hashOf(hu), n, nil
}

func hashOf(h interface{ Sum([]byte) []byte }) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

// errNotTheLayer is a blob that decompresses, but not to the layer want
// writes.
var errNotTheLayer = errors.New("its layer is not the layer this build writes (a cold build writes other bytes)")

// fetchCompared copies blob's compressed bytes to f, hashing them, and
// checks that they decompress to exactly what want writes: a gzip blob
// block by block as it arrives, any other (or one not proven so)
// decompressed whole from f. The diff ID is then want's stream's.
func fetchCompared(ctx context.Context, blob v1.Layer, f *os.File, alg compress.Algorithm, want func(io.Writer) error) (digest, diffID v1.Hash, n int64, checked Check, err error) {
	rc, err := blob.Compressed()
	if err != nil {
		return digest, diffID, 0, "", err
	}
	defer rc.Close()
	hc := sha256.New()
	src := io.TeeReader(rc, hc)
	if alg == compress.Gzip {
		var wantErr error
		sum, n, err := compress.CopyCheckGzipBlocks(ctx, f, src, func(w io.Writer) error {
			wantErr = want(w)
			return wantErr
		})
		var ue *compress.UnprovenError
		switch {
		case err == nil:
			return hashOf(hc), v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}, n, CheckBlocks, nil
		case ctx.Err() != nil:
			return digest, diffID, n, "", ctx.Err()
		case errors.As(err, &ue), wantErr != nil && errors.Is(err, wantErr):
			// Decompressed whole, below.
		default:
			// go-containerregistry checks the digest as the body ends.
			return digest, diffID, n, "", &SharedError{Msg: err.Error()}
		}
		digest = hashOf(hc)
		diffID, err = compareWhole(io.NewSectionReader(f, 0, n), alg, want)
		return digest, diffID, n, CheckCompared, err
	}
	if n, err = io.Copy(f, src); err != nil {
		return digest, diffID, n, "", &SharedError{Msg: err.Error()}
	}
	diffID, err = compareWhole(io.NewSectionReader(f, 0, n), alg, want)
	return hashOf(hc), diffID, n, CheckCompared, err
}

// compareWhole decompresses blob and compares it, as it streams, with
// what want writes: the same bytes, or an error. It returns their hash.
func compareWhole(blob io.Reader, alg compress.Algorithm, want func(io.Writer) error) (v1.Hash, error) {
	zr, err := compress.NewReaderAhead(blob, alg)
	if err != nil {
		return v1.Hash{}, &SharedError{Msg: "its layer does not decompress: " + err.Error()}
	}
	defer zr.Close()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(want(pw)) }()
	defer pr.CloseWithError(errNotTheLayer)
	h := sha256.New()
	a, b := make([]byte, 256<<10), make([]byte, 256<<10)
	for {
		k, zerr := io.ReadFull(zr, a)
		if zerr != nil && zerr != io.EOF && zerr != io.ErrUnexpectedEOF {
			return v1.Hash{}, &SharedError{Msg: "its layer does not decompress: " + zerr.Error()}
		}
		j, werr := io.ReadFull(pr, b[:k])
		if werr != nil && werr != io.EOF && werr != io.ErrUnexpectedEOF {
			// The layer this build writes could not be written again
			// (a file gone since the key was made): the entry cannot
			// be judged, so it is not used.
			return v1.Hash{}, &SharedError{Msg: "the build's own layer could not be written to compare: " + werr.Error()}
		}
		if j != k || !bytes.Equal(a[:k], b[:k]) {
			return v1.Hash{}, &SharedError{Msg: errNotTheLayer.Error()}
		}
		h.Write(a[:k])
		if zerr != nil {
			break
		}
	}
	// want must end where the layer does.
	if k, err := pr.Read(b[:1]); k > 0 || (err != nil && err != io.EOF) {
		return v1.Hash{}, &SharedError{Msg: errNotTheLayer.Error()}
	}
	return hashOf(h), nil
}

// fileLayer is a fetched blob in a file, its hashes known, for Put.
type fileLayer struct {
	path           string
	digest, diffID v1.Hash
	size           int64
	mt             types.MediaType
}

func (f fileLayer) Path() string                        { return f.path }
func (f fileLayer) Digest() (v1.Hash, error)            { return f.digest, nil }
func (f fileLayer) DiffID() (v1.Hash, error)            { return f.diffID, nil }
func (f fileLayer) Size() (int64, error)                { return f.size, nil }
func (f fileLayer) MediaType() (types.MediaType, error) { return f.mt, nil }
func (f fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(f.path) }
func (f fileLayer) Uncompressed() (io.ReadCloser, error) {
	return nil, errors.New("layercache: a fetched blob is not read uncompressed")
}

// Put writes the entry for k, holding l and extra, unless the repository
// has one: first write wins, and an entry is never replaced. It says
// whether it wrote. Only a Shared with Write writes.
func (s *Shared) Put(ctx context.Context, k Key, l v1.Layer, extra []byte) (bool, error) {
	if !s.Write {
		return false, nil
	}
	tag := s.tag(k)
	opts := append([]remote.Option{remote.WithContext(ctx)}, s.Options...)
	if _, err := remote.Head(tag, opts...); err == nil {
		return false, nil
	} else if !notFound(err) {
		return false, err
	}
	mt, err := l.MediaType()
	if err != nil {
		return false, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: l, MediaType: mt})
	if err != nil {
		return false, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return false, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: s.Now().UTC().Truncate(time.Second)}
	cf.OS, cf.Architecture = "unknown", "unknown"
	cf.Config.Labels = map[string]string{LabelKey: k.String()}
	if len(extra) > 0 {
		cf.Config.Labels[LabelExtra] = string(extra)
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return false, err
	}
	if err := remote.Write(tag, img, opts...); err != nil {
		return false, err
	}
	return true, nil
}
