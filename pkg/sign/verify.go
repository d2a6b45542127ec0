package sign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	sigpayload "github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/reprobuild/repro/pkg/attest"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/layout"
)

// VerifyOptions shape VerifyImage.
type VerifyOptions struct {
	// Require lists predicate types of which at least one verified
	// attestation must be present.
	Require []string
	// Remote are the options of registry requests (auth, transport).
	Remote []remote.Option
}

// Report is what VerifyImage found.
type Report struct {
	Reference string `json:"reference"`
	// Digest is the digest the reference names, which every signature and
	// attestation must name.
	Digest       string  `json:"digest"`
	Signatures   []Check `json:"signatures"`
	Attestations []Check `json:"attestations"`
	// Missing lists required predicate types with no verified attestation.
	Missing []string `json:"missing,omitempty"`
}

// Check is the verdict on one signature or attestation.
type Check struct {
	// Index is its position in the signatures (attestations) image.
	Index int `json:"index"`
	// PredicateType is an attestation's predicate type.
	PredicateType string `json:"predicateType,omitempty"`
	// Identity is a signature's docker-reference, or an attestation's
	// subject name.
	Identity string `json:"identity,omitempty"`
	// Named is the digest the payload names.
	Named    string `json:"named,omitempty"`
	Verified bool   `json:"verified"`
	// Problem says why it did not verify: a signature that is not this
	// key's (or a tampered payload), or a payload naming another digest.
	Problem string `json:"problem,omitempty"`

	payload []byte // the verified statement, for attestations
}

// OK reports whether the image verified: at least one signature made with
// the key names this digest, every attestation verifies, no signature
// made with the key names another digest, and no required predicate type
// is missing.
func (r *Report) OK() bool { return r.Err() == nil }

// Err is nil when the image verified, and otherwise a failed check
// (exit 1) that says which signatures and attestations failed, and why.
func (r *Report) Err() error {
	var problems []string
	good := 0
	for _, c := range r.Signatures {
		switch {
		case c.Verified:
			good++
		case c.Named != "" && c.Named != r.Digest:
			problems = append(problems, fmt.Sprintf("signature %d is made with the key but names %s, not %s", c.Index, c.Named, r.Digest))
		}
	}
	if len(r.Signatures) == 0 {
		problems = append(problems, "no cosign signature found")
	} else if good == 0 {
		var why []string
		for _, c := range r.Signatures {
			why = append(why, fmt.Sprintf("signature %d: %s", c.Index, c.Problem))
		}
		problems = append(problems, fmt.Sprintf("none of the %d signatures verifies with the key (%s)", len(r.Signatures), strings.Join(why, "; ")))
	}
	for _, c := range r.Attestations {
		if !c.Verified {
			problems = append(problems, fmt.Sprintf("attestation %d (%s): %s", c.Index, c.PredicateType, c.Problem))
		}
	}
	for _, m := range r.Missing {
		problems = append(problems, fmt.Sprintf("no verified %s attestation", m))
	}
	if len(problems) == 0 {
		return nil
	}
	return fault.Check(fmt.Errorf("%s (%s): %s", r.Reference, r.Digest, strings.Join(problems, "; ")))
}

// Predicate returns the predicate of the first verified attestation of
// predicateType.
func (r *Report) Predicate(predicateType string) ([]byte, bool) {
	for _, c := range r.Attestations {
		if c.Verified && c.PredicateType == predicateType {
			var st statementHead
			if err := json.Unmarshal(c.payload, &st); err == nil {
				return st.Predicate, true
			}
		}
	}
	return nil, false
}

// Provenance returns the provenance of the first verified SLSA v1
// attestation, read with attest.ParseProvenance.
func (r *Report) Provenance() (*attest.Provenance, error) {
	p, ok := r.Predicate(attest.ProvenanceType)
	if !ok {
		return nil, fault.Check(fmt.Errorf("%s carries no verified provenance", r.Reference))
	}
	return attest.ParseProvenance(p)
}

// VerifyImage checks the cosign signatures and every attestation of the
// image (or index) ref names against the public key pubKeyPEM, offline
// but for the registry holding the image. It returns the report, and an
// error: the report's Err when verification failed (exit 1), or what kept
// it from verifying at all (a bad key, an unreadable image).
func VerifyImage(ctx context.Context, ref imageref.Reference, pubKeyPEM []byte, opts VerifyOptions) (*Report, error) {
	v, err := loadVerifier(pubKeyPEM)
	if err != nil {
		return nil, err
	}
	switch ref.Transport {
	case imageref.Registry, imageref.OCI:
	default:
		return nil, fault.Bad(fmt.Errorf("%s: signatures live in a registry or an oci: layout, not in a %s file", ref, ref.Transport))
	}
	art, err := imageref.Open(ctx, ref, remoteOpts(ctx, opts.Remote)...)
	if err != nil {
		return nil, err
	}
	defer art.Close()
	h := art.Descriptor.Digest
	rep := &Report{Reference: ref.String(), Digest: h.String(), Signatures: []Check{}, Attestations: []Check{}}

	var sigs, atts oci.Signatures
	if ref.Transport == imageref.Registry {
		ro := ociremote.WithRemoteOptions(remoteOpts(ctx, opts.Remote)...)
		se := ociremote.SignedUnknown(ref.Name.Context().Digest(h.String()), ro)
		if sigs, err = se.Signatures(); err == nil {
			atts, err = se.Attestations()
		}
		if err != nil {
			return nil, imageref.RegistryError(ref.Name.Context().RegistryStr(), "reading the signatures of "+ref.String(), err)
		}
	} else {
		idx, err := layout.ReadIndex(ref.Path)
		if err != nil {
			return nil, err
		}
		if sigs, err = layoutSignatures(ctx, ref.Path, idx, h, "sig"); err != nil {
			return nil, err
		}
		if atts, err = layoutSignatures(ctx, ref.Path, idx, h, "att"); err != nil {
			return nil, err
		}
	}
	co := &cosign.CheckOpts{SigVerifier: v, IgnoreTlog: true, IgnoreSCT: true}

	sl, err := sigs.Get()
	if err != nil {
		return nil, fault.Op(fmt.Errorf("reading the signatures of %s: %w", ref, err))
	}
	for i, s := range sl {
		c := Check{Index: i}
		co.ClaimVerifier = func(sig oci.Signature, want v1.Hash, _ map[string]interface{}) error {
			return simpleClaim(sig, want, &c)
		}
		if _, err := cosign.VerifyImageSignature(ctx, s, h, co); err != nil {
			c.Problem = describe(err)
		} else {
			c.Verified = true
		}
		rep.Signatures = append(rep.Signatures, c)
	}

	al, err := atts.Get()
	if err != nil {
		return nil, fault.Op(fmt.Errorf("reading the attestations of %s: %w", ref, err))
	}
	for i, a := range al {
		c := Check{Index: i}
		if pt, err := attestationType(a); err == nil {
			c.PredicateType = pt
		}
		co.ClaimVerifier = func(sig oci.Signature, want v1.Hash, _ map[string]interface{}) error {
			return statementClaim(sig, want, &c)
		}
		if _, err := cosign.VerifyBlobAttestation(ctx, a, h, co); err != nil {
			c.Problem = describe(err)
		} else {
			c.Verified = true
		}
		rep.Attestations = append(rep.Attestations, c)
	}
	for _, want := range opts.Require {
		if _, ok := rep.Predicate(want); !ok {
			rep.Missing = append(rep.Missing, want)
		}
	}
	return rep, rep.Err()
}

// claimError is a payload, signed with the key, that names another image.
type claimError struct{ msg string }

func (e *claimError) Error() string { return e.msg }

// simpleClaim is cosign's SimpleClaimVerifier, recording what the payload
// names: the payload has to name the very digest being verified.
func simpleClaim(sig oci.Signature, want v1.Hash, c *Check) error {
	p, err := sig.Payload()
	if err != nil {
		return err
	}
	var sc sigpayload.SimpleContainerImage
	if err := json.Unmarshal(p, &sc); err != nil {
		return &claimError{"the payload is not a simple-signing payload: " + err.Error()}
	}
	c.Identity = sc.Critical.Identity.DockerReference
	c.Named = sc.Critical.Image.DockerManifestDigest
	if sc.Critical.Type != sigpayload.CosignSignatureType {
		return &claimError{fmt.Sprintf("the payload's type is %q, not %q", sc.Critical.Type, sigpayload.CosignSignatureType)}
	}
	if c.Named != want.String() {
		return &claimError{fmt.Sprintf("the payload names %s, not %s", c.Named, want)}
	}
	return cosign.SimpleClaimVerifier(sig, want, nil)
}

// statementClaim checks that an attestation's statement (whose envelope
// signature cosign has verified by now) has the digest among its
// subjects, and keeps the statement.
func statementClaim(sig oci.Signature, want v1.Hash, c *Check) error {
	st, err := statementOf(sig)
	if err != nil {
		return &claimError{err.Error()}
	}
	c.PredicateType = st.PredicateType
	for _, s := range st.Subject {
		c.Identity = s.Name
		if d, ok := s.Digest[want.Algorithm]; ok {
			c.Named = want.Algorithm + ":" + d
			if d == want.Hex {
				c.payload, err = decodedStatement(sig)
				if err != nil {
					return &claimError{err.Error()}
				}
				return cosign.IntotoSubjectClaimVerifier(sig, want, nil)
			}
		}
	}
	return &claimError{fmt.Sprintf("the statement's subjects do not name %s", want)}
}

func decodedStatement(sig oci.Signature) ([]byte, error) {
	p, err := sig.Payload()
	if err != nil {
		return nil, err
	}
	var env envelope
	if err := json.Unmarshal(p, &env); err != nil {
		return nil, err
	}
	return decodeBase64(env.Payload)
}

// describe words a verification failure for the report.
func describe(err error) string {
	var ce *claimError
	if errors.As(err, &ce) {
		return ce.msg
	}
	s := err.Error()
	switch {
	case strings.Contains(s, "invalid signature"), strings.Contains(s, "verification error"),
		strings.Contains(s, "failed to verify signature"), strings.Contains(s, "accepted signatures do not match threshold"):
		return "not signed with this key, or the payload was changed (" + s + ")"
	}
	return s
}
