package output

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
)

// Options shape outputs.
type Options struct {
	// DefaultTag is the tag of oci and oci-archive outputs that name none.
	DefaultTag string
	// DockerRef is the name:tag recorded in a docker-archive that names
	// none.
	DockerRef string
	// Log receives progress; nil discards.
	Log *slog.Logger
	// Remote are the options of registry pushes (auth, retries). A
	// transport set here hides from Progress which blobs the registry
	// already had or mounted: give it as Transport instead.
	Remote []remote.Option
	// Transport, when set, carries registry pushes (under the progress
	// observer); nil is go-containerregistry's default transport.
	Transport http.RoundTripper
	// Progress, when set, hears of each blob a registry push sends, finds
	// in the registry or mounts there. It is called from one goroutine
	// at a time, and never after Stage returns.
	Progress func(BlobEvent)
}

// Write writes a to ref: Stage, then Commit.
func Write(ctx context.Context, ref imageref.Reference, a imageref.Artifact, opts Options) error {
	st, err := Stage(ctx, ref, a, opts)
	if err != nil {
		return err
	}
	return st.Commit()
}

// Staged is an output written everywhere but in the one place that makes
// it visible. Commit makes it visible (a rename, an index.json swap, a
// tag); Abort removes what Stage wrote. Staging every output first and
// committing them together keeps a build with several outputs from leaving
// some written when another fails or the build is interrupted.
type Staged interface {
	Commit() error
	Abort()
}

// CheckTarget reports whether ref can be an output at all, before there
// is anything to write: a transport that takes images, a layout named by
// tag, an archive path that is not a directory, no path under a file.
func CheckTarget(ref imageref.Reference) error {
	switch ref.Transport {
	case imageref.OCI:
		if ref.Digest != "" {
			return fault.Bad(fmt.Errorf("%s: an output is named by a tag, not a digest", ref))
		}
		if fi, err := os.Stat(ref.Path); err == nil && !fi.IsDir() {
			return fault.Bad(fmt.Errorf("%s: %s is a file; an oci: output is a directory (an OCI layout), or use oci-archive:%s", ref, ref.Path, ref.Path))
		}
	case imageref.OCIArchive, imageref.DockerArchive:
		if fi, err := os.Stat(ref.Path); err == nil && fi.IsDir() {
			return fault.Bad(fmt.Errorf("%s: %s is a directory; an archive output is a file (name one inside it), or use oci:%s for a layout", ref, ref.Path, ref.Path))
		}
	case imageref.Registry:
		return nil
	default:
		return fault.Bad(fmt.Errorf("%s: unsupported output", ref))
	}
	// A path below a file can never be made.
	for dir := filepath.Dir(filepath.Clean(ref.Path)); ; dir = filepath.Dir(dir) {
		if fi, err := os.Stat(dir); err == nil {
			if !fi.IsDir() {
				return fault.Bad(fmt.Errorf("%s: %s is a file, so nothing can be written below it", ref, dir))
			}
			break
		}
		if next := filepath.Dir(dir); next == dir {
			break
		}
	}
	return nil
}

// ErrOnePlatform is wrapped by Check's error for an index written where
// only one platform fits (a docker-archive).
var ErrOnePlatform = errors.New("holds one platform")

// Check reports whether a can be written to ref at all, before anything
// is written anywhere.
func Check(ref imageref.Reference, a imageref.Artifact) error {
	if err := CheckTarget(ref); err != nil {
		return err
	}
	if ref.Transport == imageref.DockerArchive && a.Index != nil {
		return fault.Bad(fmt.Errorf("%s %w; it cannot hold an index", ref, ErrOnePlatform))
	}
	return nil
}

// Stage writes a to ref, all but visibly.
func Stage(ctx context.Context, ref imageref.Reference, a imageref.Artifact, opts Options) (Staged, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.DefaultTag == "" {
		opts.DefaultTag = "latest"
	}
	if err := Check(ref, a); err != nil {
		return nil, err
	}
	switch ref.Transport {
	case imageref.OCI:
		return stageLayout(ctx, ref.Path, tagOr(ref.Tag, opts.DefaultTag), a)
	case imageref.OCIArchive:
		return stageOCIArchive(ctx, ref.Path, tagOr(ref.Tag, opts.DefaultTag), a)
	case imageref.DockerArchive:
		return stageDockerArchive(ctx, ref.Path, tagOr(ref.Tag, opts.DockerRef), a)
	default:
		return stageRegistry(ctx, ref, a, opts)
	}
}

func tagOr(t, def string) string {
	if t == "" {
		return def
	}
	return t
}

// blob is one content-addressed blob of an artifact.
type blob struct {
	digest v1.Hash
	size   int64
	open   func() (io.ReadCloser, error)
}

func bytesBlob(b []byte) blob {
	sum := sha256.Sum256(b)
	return blob{
		digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])},
		size:   int64(len(b)),
		open:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
	}
}

// blobs lists every blob of a, each once, children before parents: layers,
// configs, image manifests, then the index manifest.
func blobs(a imageref.Artifact) ([]blob, error) {
	var out []blob
	seen := map[v1.Hash]bool{}
	add := func(b blob) {
		if !seen[b.digest] {
			seen[b.digest] = true
			out = append(out, b)
		}
	}
	addImage := func(img v1.Image) error {
		layers, err := img.Layers()
		if err != nil {
			return err
		}
		for _, l := range layers {
			d, err := l.Digest()
			if err != nil {
				return err
			}
			size, err := l.Size()
			if err != nil {
				return err
			}
			add(blob{digest: d, size: size, open: l.Compressed})
		}
		cfg, err := img.RawConfigFile()
		if err != nil {
			return err
		}
		add(bytesBlob(cfg))
		m, err := img.RawManifest()
		if err != nil {
			return err
		}
		add(bytesBlob(m))
		return nil
	}
	if a.Index != nil {
		im, err := a.Index.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, d := range im.Manifests {
			img, err := a.Index.Image(d.Digest)
			if err != nil {
				return nil, err
			}
			if err := addImage(img); err != nil {
				return nil, err
			}
		}
		raw, err := a.Index.RawManifest()
		if err != nil {
			return nil, err
		}
		add(bytesBlob(raw))
		return out, nil
	}
	if err := addImage(a.Image); err != nil {
		return nil, err
	}
	return out, nil
}

// descriptor is a's descriptor, as index.json lists it.
func descriptor(a imageref.Artifact) (v1.Descriptor, error) {
	d, err := partial.Descriptor(a.Top())
	if err != nil {
		return v1.Descriptor{}, err
	}
	return *d, nil
}
