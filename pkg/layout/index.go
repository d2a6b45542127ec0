package layout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/internal/canonical"
	"github.com/reprobuild/repro/pkg/fault"
)

// LayoutFile is the oci-layout file that repro writes.
const LayoutFile = `{"imageLayoutVersion":"1.0.0"}`

// Index is a layout's index.json. Fields other than the manifests are
// kept as read; entries that are not changed are written back byte for
// byte.
type Index struct {
	SchemaVersion int
	MediaType     string
	ArtifactType  string
	Subject       json.RawMessage
	Annotations   map[string]string
	Manifests     []Entry
}

// NewIndex is an empty OCI image index.
func NewIndex() *Index {
	return &Index{SchemaVersion: 2, MediaType: ocispec.MediaTypeImageIndex}
}

// Entry is one descriptor of index.json.
type Entry struct {
	ocispec.Descriptor
	raw  json.RawMessage // as read
	read []byte          // Descriptor's encoding when read
}

// Raw is the entry as index.json holds it (for one not read from a file,
// its encoding).
func (e Entry) Raw() json.RawMessage {
	b, _ := e.MarshalJSON()
	return b
}

// MarshalJSON writes the entry as read when its descriptor is unchanged.
func (e Entry) MarshalJSON() ([]byte, error) {
	b, err := canonical.JSON(e.Descriptor)
	if err != nil {
		return nil, err
	}
	if e.raw != nil && bytes.Equal(b, e.read) {
		return e.raw, nil
	}
	return b, nil
}

// Tag is the entry's org.opencontainers.image.ref.name.
func (e Entry) Tag() string { return e.Annotations[ocispec.AnnotationRefName] }

// indexFile is index.json's wire form; the field order is OCI's (and
// ocispec.Index's), so that repro writes what it always wrote.
type indexFile struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Manifests     []json.RawMessage `json:"manifests"`
	Subject       json.RawMessage   `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// ParseIndex decodes index.json.
func ParseIndex(raw []byte) (*Index, error) {
	var f indexFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, err
	}
	idx := &Index{
		SchemaVersion: f.SchemaVersion,
		MediaType:     f.MediaType,
		ArtifactType:  f.ArtifactType,
		Subject:       f.Subject,
		Annotations:   f.Annotations,
	}
	for i, m := range f.Manifests {
		e := Entry{raw: append(json.RawMessage(nil), m...)}
		if err := json.Unmarshal(m, &e.Descriptor); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		read, err := canonical.JSON(e.Descriptor)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		e.read = read
		idx.Manifests = append(idx.Manifests, e)
	}
	return idx, nil
}

// Encode is index.json's bytes: compact, no HTML escaping, no trailing
// newline.
func (idx *Index) Encode() ([]byte, error) {
	f := indexFile{
		SchemaVersion: idx.SchemaVersion,
		MediaType:     idx.MediaType,
		ArtifactType:  idx.ArtifactType,
		Subject:       idx.Subject,
		Annotations:   idx.Annotations,
		Manifests:     []json.RawMessage{},
	}
	if f.SchemaVersion == 0 {
		f.SchemaVersion = specs.Versioned{SchemaVersion: 2}.SchemaVersion
	}
	for _, e := range idx.Manifests {
		b, err := e.MarshalJSON()
		if err != nil {
			return nil, err
		}
		f.Manifests = append(f.Manifests, b)
	}
	return canonical.JSON(f)
}

// SetTag makes e the only entry tagged e.Tag(): entries of that tag go,
// e is appended.
func (idx *Index) SetTag(e ocispec.Descriptor) {
	tag := e.Annotations[ocispec.AnnotationRefName]
	kept := idx.Manifests[:0:0]
	for _, d := range idx.Manifests {
		if d.Tag() != tag {
			kept = append(kept, d)
		}
	}
	idx.Manifests = append(kept, Entry{Descriptor: e})
}

// Check reports whether dir is an OCI layout repro can write to: an
// oci-layout file of version 1.0.0 and a readable index.json. A missing
// dir is fs.ErrNotExist, unwrapped by errors.Is.
func Check(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return fault.Op(err)
	}
	if !fi.IsDir() {
		return fault.Bad(fmt.Errorf("%s is a file, not an OCI layout directory", dir))
	}
	lf, err := os.ReadFile(filepath.Join(dir, ocispec.ImageLayoutFile))
	if errors.Is(err, fs.ErrPermission) {
		return fault.Op(fmt.Errorf("%s: %v; write where you may, or ask for access", dir, err))
	}
	if err != nil {
		return fault.Bad(fmt.Errorf("%s exists but is not an OCI layout (%v); choose another output or remove it", dir, err))
	}
	var l ocispec.ImageLayout
	if err := json.Unmarshal(lf, &l); err != nil || l.Version != ocispec.ImageLayoutVersion {
		return fault.Bad(fmt.Errorf("%s: unsupported oci-layout %s", dir, lf))
	}
	_, err = ReadIndex(dir)
	return err
}

// ReadIndex reads dir's index.json (without the lock: see Locked.Index).
func ReadIndex(dir string) (*Index, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ocispec.ImageIndexFile))
	if err != nil {
		return nil, fault.Bad(fmt.Errorf("%s: reading index.json: %w", dir, err))
	}
	idx, err := ParseIndex(raw)
	if err != nil {
		return nil, fault.Bad(fmt.Errorf("%s: index.json is not valid JSON: %w", dir, err))
	}
	return idx, nil
}
