package output

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/internal/atomicfs"
	"github.com/reprobuild/repro/internal/canonical"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/layer"
	"github.com/reprobuild/repro/pkg/layout"
)

// Archives are canonical tar streams (package layer's rule) with mtime 0:
// the same image gives the same archive bytes.

// blobEntry is blob b in an archive, its bytes checked against its
// digest as they stream (a layer cache hit is not hashed before; the
// layout's Put checks the same way): a blob that does not hash right
// fails the write.
func blobEntry(b blob) layer.Entry {
	open := func() (io.ReadCloser, error) {
		rc, err := b.open()
		if err != nil {
			return nil, err
		}
		return &checkedBlob{rc: rc, h: sha256.New(), b: b}, nil
	}
	return layer.Entry{Path: "/blobs/sha256/" + b.digest.Hex, Type: layer.Regular, Mode: 0o644, Size: b.size, Open: open}
}

// checkedBlob reads blob b, failing the read that reaches b's size, in
// place of its bytes, if they are not b's (the tar writer reads no
// further than b's size and checks the length itself; a read that gives
// bytes and an error at once may have its error dropped).
type checkedBlob struct {
	rc io.ReadCloser
	h  hash.Hash
	n  int64
	b  blob
}

func (c *checkedBlob) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if n > 0 && c.n == c.b.size || err == io.EOF && c.n < c.b.size {
		if got := hex.EncodeToString(c.h.Sum(nil)); got != c.b.digest.Hex {
			return 0, fmt.Errorf("blob %s: got %d bytes with sha256 %s, want %d bytes", c.b.digest, c.n, got, c.b.size)
		}
	}
	return n, err
}

func (c *checkedBlob) Close() error { return c.rc.Close() }

func bytesEntry(p string, data []byte) layer.Entry {
	b := bytesBlob(data)
	return layer.Entry{Path: p, Type: layer.Regular, Mode: 0o644, Size: b.size, Open: b.open}
}

// stageOCIArchive writes a tar of an OCI layout holding a, tagged tag.
func stageOCIArchive(ctx context.Context, file, tag string, a imageref.Artifact) (Staged, error) {
	bs, err := blobs(a)
	if err != nil {
		return nil, err
	}
	desc, err := descriptor(a)
	if err != nil {
		return nil, err
	}
	index := layout.NewIndex()
	index.SetTag(ocispec.Descriptor{
		MediaType:   string(desc.MediaType),
		Digest:      digest.Digest(desc.Digest.String()),
		Size:        desc.Size,
		Annotations: map[string]string{ocispec.AnnotationRefName: tag},
	})
	idx, err := index.Encode()
	if err != nil {
		return nil, err
	}
	entries := []layer.Entry{
		bytesEntry("/"+ocispec.ImageLayoutFile, []byte(layout.LayoutFile)),
		bytesEntry("/"+ocispec.ImageIndexFile, idx),
	}
	for _, b := range bs {
		entries = append(entries, blobEntry(b))
	}
	return writeTarFile(ctx, file, entries)
}

// dockerManifest is one image of a docker-archive's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// stageDockerArchive writes the tarball that docker load and podman load
// read: manifest.json naming the config and the (compressed) layers.
func stageDockerArchive(ctx context.Context, file, ref string, a imageref.Artifact) (Staged, error) {
	tag, err := name.NewTag(ref, name.WeakValidation)
	if err != nil {
		return nil, fault.Bad(fmt.Errorf("docker-archive:%s: %q is not a name:tag: %v", file, ref, err))
	}
	bs, err := blobs(a)
	if err != nil {
		return nil, err
	}
	cfg, err := a.Image.ConfigName()
	if err != nil {
		return nil, err
	}
	layers, err := a.Image.Layers()
	if err != nil {
		return nil, err
	}
	m := dockerManifest{Config: "blobs/sha256/" + cfg.Hex, RepoTags: []string{dockerTag(tag)}, Layers: []string{}}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, "blobs/sha256/"+d.Hex)
	}
	raw, err := canonical.JSON([]dockerManifest{m})
	if err != nil {
		return nil, err
	}
	entries := []layer.Entry{bytesEntry("/manifest.json", raw)}
	for _, b := range bs {
		if b.digest.Hex == "" {
			continue
		}
		entries = append(entries, blobEntry(b))
	}
	return writeTarFile(ctx, file, entries)
}

// dockerTag is the short form docker writes: no docker.io/library/.
func dockerTag(t name.Tag) string {
	s := t.String()
	s = strings.TrimPrefix(s, name.DefaultRegistry+"/")
	return strings.TrimPrefix(s, "library/")
}

// writeTarFile writes entries to a temporary file beside file
// (.<name>.tmp-<pid>-…, owned as package atomicfs has it, so that a
// killed run's file is removed by the next write of file); Commit renames
// it into place.
func writeTarFile(ctx context.Context, file string, entries []layer.Entry) (Staged, error) {
	dir := filepath.Dir(file)
	prefix := "." + filepath.Base(file) + ".tmp-"
	atomicfs.CleanStale(dir, prefix)
	created, err := atomicfs.MkdirAll(dir)
	if err != nil {
		return nil, fault.Op(err)
	}
	f, tmp, err := atomicfs.CreateTemp(dir, prefix, "")
	if err != nil {
		atomicfs.RemoveEmpty(created)
		return nil, fault.Op(err)
	}
	st := &renameStage{tmp: tmp, dst: file, created: created}
	if err := layer.WriteTar(ctx, f, entries, 0); err != nil {
		f.Close()
		st.Abort()
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, fault.Op(fmt.Errorf("writing %s: %w", file, err))
	}
	if err := f.Close(); err != nil {
		st.Abort()
		return nil, fault.Op(err)
	}
	if err := os.Chmod(tmp.Path, 0o644); err != nil {
		st.Abort()
		return nil, fault.Op(err)
	}
	return st, nil
}

// renameStage is a file written in full beside its destination: Commit
// renames it into place. created are the parent directories staging
// made, removed again (when empty) on abort.
type renameStage struct {
	tmp     *atomicfs.Temp
	dst     string
	created []string
}

func (r *renameStage) Commit() error {
	if err := os.Rename(r.tmp.Path, r.dst); err != nil {
		r.Abort()
		return fault.Op(fmt.Errorf("moving %s into place: %w", r.dst, err))
	}
	r.tmp.Release()
	return nil
}

func (r *renameStage) Abort() {
	r.tmp.Remove()
	atomicfs.RemoveEmpty(r.created)
}
