package gc

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
)

// manifest is what gc reads of an image manifest or index, whatever its
// media type: the descriptors it references.
type manifest struct {
	MediaType string          `json:"mediaType"`
	Config    *v1.Descriptor  `json:"config"`
	Layers    []v1.Descriptor `json:"layers"`
	Manifests []v1.Descriptor `json:"manifests"`
	Blobs     []v1.Descriptor `json:"blobs"` // the draft artifact manifest
	Subject   *v1.Descriptor  `json:"subject"`
}

func parseManifest(raw []byte) (*manifest, error) {
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("not a manifest: %w", err)
	}
	return &m, nil
}

func (m *manifest) index() bool {
	return len(m.Manifests) > 0 || strings.Contains(m.MediaType, "index") || strings.Contains(m.MediaType, "manifest.list")
}

// referenced lists every blob the manifest itself references (not the
// subject, which it does not own, nor what its children reference).
func (m *manifest) referenced() []v1.Descriptor {
	var out []v1.Descriptor
	if m.Config != nil {
		out = append(out, *m.Config)
	}
	out = append(out, m.Layers...)
	out = append(out, m.Blobs...)
	out = append(out, m.Manifests...)
	return out
}

// imageConfig reports whether a config media type is an image's (rather
// than, say, an attestation's or an artifact's).
func imageConfig(mt string) bool {
	switch mt {
	case "application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json":
		return true
	}
	return false
}

var errNoCreated = errors.New("no created")

// created reads an image config's created time: errNoCreated when the
// config has none (absent or null).
func created(raw []byte) (time.Time, error) {
	var c struct {
		Created *string `json:"created"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return time.Time{}, fmt.Errorf("the config is not JSON: %w", err)
	}
	if c.Created == nil {
		return time.Time{}, errNoCreated
	}
	t, err := time.Parse(time.RFC3339Nano, *c.Created)
	if err != nil {
		return time.Time{}, fmt.Errorf("created %q is not an RFC 3339 time", *c.Created)
	}
	return t, nil
}

// signedDigest reads what a cosign signature or attestation layer names:
// the simple-signing payload's docker-manifest-digest, or a DSSE
// envelope's in-toto statement's sha256 subject.
func signedDigest(layer []byte) (v1.Hash, bool) {
	var simple struct {
		Critical struct {
			Image struct {
				Digest string `json:"docker-manifest-digest"`
			} `json:"image"`
		} `json:"critical"`
	}
	if json.Unmarshal(layer, &simple) == nil && simple.Critical.Image.Digest != "" {
		h, err := v1.NewHash(simple.Critical.Image.Digest)
		return h, err == nil
	}
	var env struct {
		Payload string `json:"payload"`
	}
	if json.Unmarshal(layer, &env) != nil || env.Payload == "" {
		return v1.Hash{}, false
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return v1.Hash{}, false
	}
	var st struct {
		Subject []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if json.Unmarshal(payload, &st) != nil || len(st.Subject) == 0 {
		return v1.Hash{}, false
	}
	hex := st.Subject[0].Digest["sha256"]
	if len(hex) != 64 {
		return v1.Hash{}, false
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex}, true
}

// describe reads what gc needs of u from its manifest raw: an index's
// children and created, an image's created, what a signature or referrer
// belongs to.
func describe(u *unit, raw []byte, src source) {
	m, err := parseManifest(raw)
	if err != nil {
		u.undated = err.Error()
		if u.kind == "" {
			u.kind = kindUnknown
		}
		return
	}
	if u.mediaType == "" {
		u.mediaType = m.MediaType
	}
	if u.signature() {
		if u.subject == (v1.Hash{}) {
			u.subject = signedSubject(m, src)
		}
		return
	}
	if m.Subject != nil && !m.index() && (m.Config == nil || !imageConfig(string(m.Config.MediaType))) {
		// An OCI 1.1 referrer (an SBOM, an attestation): it belongs to
		// its subject.
		u.kind, u.subject = kindAttestation, m.Subject.Digest
		return
	}
	if m.index() {
		u.kind = kindIndex
		u.created, u.undated = indexCreated(m, src)
		for _, c := range m.Manifests {
			u.children = append(u.children, c.Digest)
		}
		return
	}
	if m.Config == nil || !imageConfig(string(m.Config.MediaType)) {
		u.kind = kindUnknown
		u.undated = "not an image"
		return
	}
	u.kind = kindImage
	u.created, u.undated = imageCreated(m, src)
}

// signedSubject finds what a signature image without cosign's tag signs:
// its OCI subject, else its layers' payloads.
func signedSubject(m *manifest, src source) v1.Hash {
	if m.Subject != nil {
		return m.Subject.Digest
	}
	for _, d := range m.Layers {
		if d.Size > maxManifest {
			continue
		}
		raw, err := src.blob(d.Digest)
		if err != nil {
			continue
		}
		if h, ok := signedDigest(raw); ok {
			return h
		}
	}
	return v1.Hash{}
}

// checkDepth walks the indexes that the manifest raw (of digest top) nests,
// each once, and fails with exit 2 when they nest deeper than
// imageref.MaxIndexDepth or one lists itself (gc reads blobs without
// checking their digests, so a layout can hold an index stored under a
// digest it lists). Images are not read.
func checkDepth(src source, top v1.Hash, raw []byte) error {
	checked := map[v1.Hash]int{}
	onPath := map[v1.Hash]bool{}
	var walk func(d v1.Hash, raw []byte, depth int) error
	walk = func(d v1.Hash, raw []byte, depth int) error {
		if onPath[d] {
			return fault.Bad(fmt.Errorf("index %s lists %s, which lists itself through the indexes it nests: a cycle no honest layout holds", top, d))
		}
		m, err := parseManifest(raw)
		if err != nil || !m.index() {
			return nil // not an index: describe says what it is
		}
		if depth > imageref.MaxIndexDepth {
			return fault.Bad(fmt.Errorf("index %s nests indexes more than %d deep (repro's limit, imageref.MaxIndexDepth); nothing was deleted", top, imageref.MaxIndexDepth))
		}
		if at, ok := checked[d]; ok && at <= depth {
			return nil
		}
		onPath[d] = true
		defer delete(onPath, d)
		for _, c := range m.Manifests {
			if c.MediaType.IsImage() || !manifestType(string(c.MediaType)) && c.MediaType != "" {
				continue // an image, read by describe if at all
			}
			craw, err := src.manifest(c.Digest)
			if err != nil {
				continue // describe reports what cannot be read
			}
			if err := walk(c.Digest, craw, depth+1); err != nil {
				return err
			}
		}
		checked[d] = depth
		return nil
	}
	return walk(top, raw, 1)
}
