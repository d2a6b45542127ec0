package layercache

import (
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
// hashed as they stream, compressed (its digest) and uncompressed (its
// diff ID), and must be what the entry claims, before the store keeps
// them; an entry that fails is a *SharedError. Ref is the blob in the
// repository, for a push to the same registry to mount.
func (s *Shared) Get(ctx context.Context, k Key, st *Store) (l *Layer, ref name.Digest, err error) {
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
	got, gotDiff, n, err := fetchHashed(blob, f, alg)
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
	return l, ref, err
}

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
	digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(hc.Sum(nil))}
	diffID = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(hu.Sum(nil))}
	return digest, diffID, n, nil
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
