package output

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/internal/atomicfs"
	"github.com/reprobuild/repro/internal/canonical"
	"github.com/reprobuild/repro/pkg/fault"
)

const layoutFile = `{"imageLayoutVersion":"1.0.0"}`

// stageLayout adds a to the OCI layout at dir under tag, replacing any
// image that had that tag and keeping every other.
func stageLayout(ctx context.Context, dir, tag string, a Artifact) (Staged, error) {
	bs, err := blobs(a)
	if err != nil {
		return nil, err
	}
	desc, err := descriptor(a)
	if err != nil {
		return nil, err
	}
	entry := ocispec.Descriptor{
		MediaType:   string(desc.MediaType),
		Digest:      digest.Digest(desc.Digest.String()),
		Size:        desc.Size,
		Annotations: map[string]string{ocispec.AnnotationRefName: tag},
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return newLayout(ctx, dir, bs, entry)
	}
	return updateLayout(ctx, dir, bs, entry)
}

// renameStage is a file or directory written in full beside its
// destination: Commit renames it into place. created are the parent
// directories staging made, removed again (when empty) on abort.
type renameStage struct {
	tmp, dst string
	created  []string
}

func (r *renameStage) Commit() error {
	if err := os.Rename(r.tmp, r.dst); err != nil {
		r.Abort()
		return fault.Op(fmt.Errorf("moving %s into place: %w", r.dst, err))
	}
	return nil
}

func (r *renameStage) Abort() {
	os.RemoveAll(r.tmp)
	atomicfs.RemoveEmpty(r.created)
}

// newLayout builds the layout in a temporary directory beside dir.
func newLayout(ctx context.Context, dir string, bs []blob, entry ocispec.Descriptor) (Staged, error) {
	parent := filepath.Dir(filepath.Clean(dir))
	created, err := atomicfs.MkdirAll(parent)
	if err != nil {
		return nil, fault.Op(err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		atomicfs.RemoveEmpty(created)
		return nil, fault.Op(err)
	}
	st := &renameStage{tmp: tmp, dst: dir, created: created}
	err = func() error {
		if err := os.Chmod(tmp, 0o755); err != nil {
			return fault.Op(err)
		}
		if err := writeBlobs(ctx, tmp, bs); err != nil {
			return err
		}
		if err := writeIndex(tmp, []ocispec.Descriptor{entry}); err != nil {
			return err
		}
		return atomicfs.WriteFile(filepath.Join(tmp, ocispec.ImageLayoutFile), []byte(layoutFile))
	}()
	if err != nil {
		st.Abort()
		return nil, err
	}
	return st, nil
}

// indexStage is an existing layout that holds the new blobs: Commit swaps
// in the index.json that names them.
type indexStage struct {
	dir   string
	entry ocispec.Descriptor
}

func updateLayout(ctx context.Context, dir string, bs []blob, entry ocispec.Descriptor) (Staged, error) {
	lf, err := os.ReadFile(filepath.Join(dir, ocispec.ImageLayoutFile))
	if errors.Is(err, fs.ErrPermission) {
		return nil, fault.Op(fmt.Errorf("%s: %v; write where you may, or ask for access", dir, err))
	}
	if err != nil {
		return nil, fault.Bad(fmt.Errorf("%s exists but is not an OCI layout (%v); choose another output or remove it", dir, err))
	}
	var l ocispec.ImageLayout
	if err := json.Unmarshal(lf, &l); err != nil || l.Version != ocispec.ImageLayoutVersion {
		return nil, fault.Bad(fmt.Errorf("%s: unsupported oci-layout %s", dir, lf))
	}
	if _, err := readIndex(dir); err != nil {
		return nil, err
	}
	// Unreferenced blobs are harmless in a layout; they are all that an
	// abandoned update leaves.
	if err := writeBlobs(ctx, dir, bs); err != nil {
		return nil, err
	}
	return &indexStage{dir: dir, entry: entry}, nil
}

func readIndex(dir string) (*ocispec.Index, error) {
	var idx ocispec.Index
	raw, err := os.ReadFile(filepath.Join(dir, ocispec.ImageIndexFile))
	if err != nil {
		return nil, fault.Bad(fmt.Errorf("%s: reading index.json: %w", dir, err))
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fault.Bad(fmt.Errorf("%s: index.json is not valid JSON: %w", dir, err))
	}
	return &idx, nil
}

func (s *indexStage) Commit() error {
	unlock, err := atomicfs.LockDir(s.dir, true)
	if err != nil {
		return err
	}
	defer unlock()
	idx, err := readIndex(s.dir)
	if err != nil {
		return err
	}
	tag := s.entry.Annotations[ocispec.AnnotationRefName]
	var kept []ocispec.Descriptor
	for _, d := range idx.Manifests {
		if d.Annotations[ocispec.AnnotationRefName] != tag {
			kept = append(kept, d)
		}
	}
	return writeIndex(s.dir, append(kept, s.entry))
}

func (s *indexStage) Abort() {}

func writeIndex(dir string, manifests []ocispec.Descriptor) error {
	raw, err := canonical.JSON(ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: manifests,
	})
	if err != nil {
		return err
	}
	return atomicfs.WriteFile(filepath.Join(dir, ocispec.ImageIndexFile), raw)
}

func writeBlobs(ctx context.Context, dir string, bs []blob) error {
	bdir := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(bdir, 0o755); err != nil {
		return fault.Op(err)
	}
	for _, b := range bs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := writeBlob(bdir, b); err != nil {
			return err
		}
	}
	return nil
}

// writeBlob stores b in bdir, verified, unless a file of its size is
// already there.
func writeBlob(bdir string, b blob) error {
	p := filepath.Join(bdir, b.digest.Hex)
	if fi, err := os.Stat(p); err == nil && fi.Size() == b.size {
		return nil
	}
	r, err := b.open()
	if err != nil {
		return fault.Op(fmt.Errorf("reading blob %s: %w", b.digest, err))
	}
	defer r.Close()
	f, err := os.CreateTemp(bdir, ".tmp-"+b.digest.Hex[:12]+"-*")
	if err != nil {
		return fault.Op(err)
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fault.Op(fmt.Errorf("writing blob %s: %w", b.digest, err))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != b.digest.Hex || n != b.size {
		return fault.Op(fmt.Errorf("blob %s: wrote %d bytes with sha256 %s, want %d bytes", b.digest, n, got, b.size))
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return fault.Op(err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return fault.Op(err)
	}
	return nil
}
