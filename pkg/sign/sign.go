package sign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	"github.com/sigstore/cosign/v2/pkg/oci"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	sigpayload "github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/reprobuild/repro/pkg/attest"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
)

// Attestation is a predicate to attach, signed, as an in-toto statement
// about the signed image.
type Attestation struct {
	// PredicateType is the predicate's URI (attest.ProvenanceType,
	// attest.SPDXType, attest.CycloneDXType, …).
	PredicateType string
	// Predicate is the predicate, JSON.
	Predicate []byte
}

// Options shape Sign.
type Options struct {
	// Identity is the signature payload's docker-reference and the
	// attestations' subject name. Empty: the repository, for a registry
	// reference; the tag (org.opencontainers.image.ref.name), for a layout.
	Identity string
	// ExpectDigest, when set (sha256:…), is the digest the reference must
	// name: signing fails rather than sign anything else.
	ExpectDigest string
	// Attestations are attached, each replacing any earlier attestation of
	// its predicate type.
	Attestations []Attestation
	// Remote are the options of registry requests (auth, transport).
	Remote []remote.Option
	// Log receives what was written; nil discards.
	Log *slog.Logger
}

// Result is what Sign wrote.
type Result struct {
	// Digest is the signed image's (or index's) digest; it is unchanged.
	Digest v1.Hash
	// Signatures and Attestations name where they were written: a tag in
	// the registry, or a layout entry.
	Signatures   string
	Attestations string
}

// Sign signs the image or index that ref names with s and attaches
// opts.Attestations. ref is a registry reference or an oci: layout.
func Sign(ctx context.Context, ref imageref.Reference, s *Signer, opts Options) (*Result, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if s == nil {
		return nil, fault.Bad(errors.New("no signing key"))
	}
	switch ref.Transport {
	case imageref.Registry, imageref.OCI:
	default:
		return nil, fault.Bad(fmt.Errorf("%s: %w (not in a %s file)", ref, ErrNothingSignable, ref.Transport))
	}
	art, err := imageref.Open(ctx, ref, remoteOpts(ctx, opts.Remote)...)
	if err != nil {
		return nil, err
	}
	defer art.Close()
	h := art.Descriptor.Digest
	if opts.ExpectDigest != "" && h.String() != opts.ExpectDigest {
		return nil, fault.Op(fmt.Errorf("%s names %s, not the image built (%s); it was changed meanwhile: nothing was signed", ref, h, opts.ExpectDigest))
	}
	identity := opts.Identity
	if identity == "" {
		identity = defaultIdentity(ref)
	}
	sig, err := s.signImage(ctx, identity, h)
	if err != nil {
		return nil, err
	}
	var atts []oci.Signature
	for _, a := range opts.Attestations {
		att, err := s.attest(ctx, identity, h, a)
		if err != nil {
			return nil, err
		}
		atts = append(atts, att)
	}
	res := &Result{Digest: h}
	if ref.Transport == imageref.Registry {
		err = signRegistry(ctx, ref, h, sig, atts, opts, res)
	} else {
		err = signLayout(ctx, ref, art, sig, atts, res)
	}
	if err != nil {
		return nil, err
	}
	opts.Log.Info("signed", "ref", ref.String(), "digest", h.String(), "signatures", res.Signatures, "attestations", len(atts))
	return res, nil
}

func defaultIdentity(ref imageref.Reference) string {
	if ref.Transport == imageref.Registry {
		return ref.Name.Context().Name()
	}
	if ref.Tag != "" {
		return ref.Tag
	}
	return "latest"
}

func remoteOpts(ctx context.Context, ro []remote.Option) []remote.Option {
	return append([]remote.Option{remote.WithContext(ctx)}, ro...)
}

// signImage makes the simple-signing signature of digest h.
func (s *Signer) signImage(ctx context.Context, identity string, h v1.Hash) (oci.Signature, error) {
	payload, err := json.Marshal(sigpayload.SimpleContainerImage{
		Critical: sigpayload.Critical{
			Identity: sigpayload.Identity{DockerReference: identity},
			Image:    sigpayload.Image{DockerManifestDigest: h.String()},
			Type:     sigpayload.CosignSignatureType,
		},
	})
	if err != nil {
		return nil, err
	}
	raw, err := s.sv.SignMessage(bytes.NewReader(payload))
	if err != nil {
		return nil, fault.Op(fmt.Errorf("signing: %w", err))
	}
	var opts []static.Option
	if s.Keyless() {
		sum := sha256.New()
		sum.Write(payload)
		entry, err := cosign.TLogUpload(ctx, s.rekor, raw, sum, s.cert)
		if err != nil {
			return nil, fault.Op(fmt.Errorf("recording the signature in Rekor: %w", err))
		}
		opts = append(opts, static.WithCertChain(s.cert, s.chain), static.WithBundle(cbundle.EntryToBundle(entry)))
	}
	return static.NewSignature(payload, base64.StdEncoding.EncodeToString(raw), opts...)
}

// attest makes the DSSE-wrapped in-toto statement of a about digest h.
func (s *Signer) attest(ctx context.Context, identity string, h v1.Hash, a Attestation) (oci.Signature, error) {
	st, err := attest.NewStatement(identity, h.String(), a.PredicateType, a.Predicate)
	if err != nil {
		return nil, fault.Bad(err)
	}
	env, err := dsse.WrapSigner(s.sv, ctypes.IntotoPayloadType).SignMessage(bytes.NewReader(st))
	if err != nil {
		return nil, fault.Op(fmt.Errorf("signing the %s attestation: %w", a.PredicateType, err))
	}
	opts := []static.Option{
		static.WithLayerMediaType(ctypes.DssePayloadType),
		static.WithAnnotations(map[string]string{predicateTypeAnnotation: a.PredicateType}),
	}
	if s.Keyless() {
		entry, err := cosign.TLogUploadDSSEEnvelope(ctx, s.rekor, env, s.cert)
		if err != nil {
			return nil, fault.Op(fmt.Errorf("recording the %s attestation in Rekor: %w", a.PredicateType, err))
		}
		opts = append(opts, static.WithCertChain(s.cert, s.chain), static.WithBundle(cbundle.EntryToBundle(entry)))
	}
	return static.NewAttestation(env, opts...)
}

// signRegistry writes the signatures and attestations images to cosign's
// tags beside the image, keeping what they held.
func signRegistry(ctx context.Context, ref imageref.Reference, h v1.Hash, sig oci.Signature, atts []oci.Signature, opts Options, res *Result) error {
	digestRef := ref.Name.Context().Digest(h.String())
	ro := ociremote.WithRemoteOptions(remoteOpts(ctx, opts.Remote)...)
	se := ociremote.SignedUnknown(digestRef, ro)
	oldSigs, err := se.Signatures()
	if err != nil {
		return imageref.RegistryError(ref.Name.Context().RegistryStr(), "reading the signatures of "+digestRef.String(), err)
	}
	sigs, err := appendSignature(oldSigs, sig)
	if err != nil {
		return fault.Op(err)
	}
	e := &entity{digest: h, sigs: sigs}
	if err := ociremote.WriteSignatures(digestRef.Repository, e, ro); err != nil {
		return imageref.RegistryError(ref.Name.Context().RegistryStr(), "writing the signature of "+digestRef.String(), err)
	}
	sigTag, _ := ociremote.SignatureTag(digestRef, ro)
	res.Signatures = sigTag.String()
	if len(atts) == 0 {
		return nil
	}
	oldAtts, err := se.Attestations()
	if err != nil {
		return imageref.RegistryError(ref.Name.Context().RegistryStr(), "reading the attestations of "+digestRef.String(), err)
	}
	e.atts, err = replaceAttestations(oldAtts, atts)
	if err != nil {
		return fault.Op(err)
	}
	if err := ociremote.WriteAttestations(digestRef.Repository, e, ro); err != nil {
		return imageref.RegistryError(ref.Name.Context().RegistryStr(), "writing the attestations of "+digestRef.String(), err)
	}
	attTag, _ := ociremote.AttestationTag(digestRef, ro)
	res.Attestations = attTag.String()
	return nil
}

// sigTag is cosign's tag for the signatures (suffix sig) or attestations
// (suffix att) of digest h.
func sigTag(h v1.Hash, suffix string) string {
	return strings.Join([]string{h.Algorithm, h.Hex}, "-") + "." + suffix
}
