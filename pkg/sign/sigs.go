package sign

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/empty"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
)

// Annotation keys and kinds of cosign's formats.
const (
	signatureAnnotation     = static.SignatureAnnotationKey // dev.cosignproject.cosign/signature
	predicateTypeAnnotation = "predicateType"
	kindAnnotation          = "kind"
	kindImage               = "dev.cosignproject.cosign/image"
	kindImageIndex          = "dev.cosignproject.cosign/imageIndex"
	kindSigs                = "dev.cosignproject.cosign/sigs"
	kindAtts                = "dev.cosignproject.cosign/atts"
	refNameAnnotation       = "org.opencontainers.image.ref.name"
	// maxPayload bounds a signature layer read into memory (cosign's
	// default limit).
	maxPayload = 128 << 20
)

// imageSigs reads the signatures (or attestations) image of a layout: each
// layer is one signature, its descriptor's annotations carrying the
// base64 signature or the predicate type.
type imageSigs struct {
	v1.Image
}

var _ oci.Signatures = (*imageSigs)(nil)

func (s *imageSigs) Get() ([]oci.Signature, error) {
	m, err := s.Manifest()
	if err != nil {
		return nil, err
	}
	var out []oci.Signature
	for _, desc := range m.Layers {
		if desc.Size > maxPayload {
			return nil, fmt.Errorf("signature layer %s is %d bytes, more than %d", desc.Digest, desc.Size, maxPayload)
		}
		l, err := s.LayerByDigest(desc.Digest)
		if err != nil {
			return nil, err
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		payload, err := io.ReadAll(io.LimitReader(rc, maxPayload+1))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("reading signature layer %s: %w", desc.Digest, err)
		}
		ann := map[string]string{}
		for k, v := range desc.Annotations {
			if k != signatureAnnotation {
				ann[k] = v
			}
		}
		sig, err := static.NewSignature(payload, desc.Annotations[signatureAnnotation],
			static.WithLayerMediaType(desc.MediaType), static.WithAnnotations(ann))
		if err != nil {
			return nil, err
		}
		out = append(out, sig)
	}
	return out, nil
}

// entity is a signed entity whose signatures and attestations are given.
type entity struct {
	digest     v1.Hash
	sigs, atts oci.Signatures
}

var _ oci.SignedEntity = (*entity)(nil)

func (e *entity) Digest() (v1.Hash, error)              { return e.digest, nil }
func (e *entity) Signatures() (oci.Signatures, error)   { return e.sigs, nil }
func (e *entity) Attestations() (oci.Signatures, error) { return e.atts, nil }
func (e *entity) Attachment(name string) (oci.File, error) {
	return nil, fmt.Errorf("attachment %q: repro writes no attachments", name)
}

// appendSignature returns existing with sig added, unless an identical
// signature (same payload, same signature bytes) is already there: so
// signing twice with an Ed25519 key changes nothing.
func appendSignature(existing oci.Signatures, sig oci.Signature) (oci.Signatures, error) {
	list, err := existing.Get()
	if err != nil {
		return nil, err
	}
	nd, err := sig.Digest()
	if err != nil {
		return nil, err
	}
	nb, err := sig.Base64Signature()
	if err != nil {
		return nil, err
	}
	for _, s := range list {
		d, err := s.Digest()
		if err != nil {
			return nil, err
		}
		b, err := s.Base64Signature()
		if err != nil {
			return nil, err
		}
		if d == nd && b == nb {
			return rebuild(list)
		}
	}
	return rebuild(append(list, sig))
}

// replaceAttestations returns existing less every attestation whose
// predicate type one of adds has, followed by adds, in order.
func replaceAttestations(existing oci.Signatures, adds []oci.Signature) (oci.Signatures, error) {
	list, err := existing.Get()
	if err != nil {
		return nil, err
	}
	replaced := map[string]bool{}
	for _, a := range adds {
		pt, err := attestationType(a)
		if err != nil {
			return nil, err
		}
		replaced[pt] = true
	}
	var kept []oci.Signature
	for _, s := range list {
		pt, err := attestationType(s)
		if err != nil || !replaced[pt] {
			kept = append(kept, s)
		}
	}
	return rebuild(append(kept, adds...))
}

// rebuild makes a fresh signatures image of list, in order, with cosign's
// media types and no creation time.
func rebuild(list []oci.Signature) (oci.Signatures, error) {
	return mutate.AppendSignatures(empty.Signatures(), false, list...)
}

// attestationType is an attestation's predicate type: its annotation, else
// the one its statement names.
func attestationType(s oci.Signature) (string, error) {
	ann, err := s.Annotations()
	if err != nil {
		return "", err
	}
	if pt := ann[predicateTypeAnnotation]; pt != "" {
		return pt, nil
	}
	st, err := statementOf(s)
	if err != nil {
		return "", err
	}
	return st.PredicateType, nil
}

type envelope struct {
	PayloadType string `json:"payloadType"`
	Payload     string `json:"payload"`
}

type statementHead struct {
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
	Subject       []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
}

// statementOf decodes the in-toto statement in an attestation's DSSE
// envelope (without checking its signature).
func statementOf(s oci.Signature) (*statementHead, error) {
	p, err := s.Payload()
	if err != nil {
		return nil, err
	}
	var env envelope
	if err := json.Unmarshal(p, &env); err != nil {
		return nil, fmt.Errorf("the attestation is not a DSSE envelope: %w", err)
	}
	if env.PayloadType != ctypes.IntotoPayloadType {
		return nil, fmt.Errorf("the DSSE envelope holds %q, not an in-toto statement", env.PayloadType)
	}
	raw, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("the DSSE payload is not base64: %w", err)
	}
	var st statementHead
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("the DSSE payload is not an in-toto statement: %w", err)
	}
	return &st, nil
}

func decodeBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("the DSSE payload is not base64: %w", err)
	}
	return b, nil
}
