package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/reprobuild/repro/pkg/attest"
	"github.com/reprobuild/repro/pkg/build"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/sign"
	"github.com/reprobuild/repro/pkg/verify"
)

var signCmd = &command{
	name:  "sign",
	usage: "sign REF (--key FILE | --keyless) [--attest provenance|sbom]... [build flags]",
	short: "sign an image in a registry or an OCI layout with cosign's formats",
	long: `
Sign signs the image (or index) that REF names with a cosign key, and
attaches the attestations asked for. REF is a registry reference or an
oci:DIR[:TAG] layout; the image's digest never changes.

The key is a cosign key file (cosign generate-key-pair, repro keygen),
decrypted with $COSIGN_PASSWORD, or a plain PEM ECDSA, Ed25519 or RSA
private key. Signing with a key touches no network but the registry that
holds REF: no transparency log, no certificate authority.

Signatures go where cosign puts them: in a registry, the tags
sha256-<hex>.sig and sha256-<hex>.att of the image's repository; in a
layout, entries of cosign's layout format (as cosign save writes them),
so that cosign verify --local-image DIR accepts the layout.

--attest sbom attaches the image's SBOM (SPDX 2.3 JSON, or CycloneDX with
--sbom-format cyclonedx-json). --attest provenance rebuilds the image from
the spec and the build flags (-f, --var, --version, --platform,
--compression, ...) and attaches its SLSA v1 provenance only when the
rebuild has REF's digest. repro build --sign does all of this at once.

Ed25519 signatures are deterministic: a layout signed with an Ed25519 key
is reproducible byte for byte. ECDSA signatures are randomized.

--keyless signs with an ephemeral key that Fulcio certifies for the
identity of an OIDC token (--identity-token, $SIGSTORE_ID_TOKEN), and
records each signature in Rekor, as cosign sign does; it needs those
services. Check such signatures with cosign verify --certificate-identity
… --certificate-oidc-issuer …: repro verifies key signatures only.

Examples:
  COSIGN_PASSWORD=… repro sign oci:out/app:v1 --key cosign.key
  repro sign registry.example.com/app:v1 --key cosign.key --attest sbom --attest provenance -f repro.yaml --version v1`,
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		o := &signOpts{g: g}
		o.signing.register(fs)
		fs.StringArrayVar(&o.attest, "attest", nil, "also attach the `KIND` of attestation: provenance or sbom (repeatable)")
		fs.StringVar(&o.sbomFormat, "sbom-format", string(attest.SPDXJSON), "the SBOM's `FORMAT`: spdx-json or cyclonedx-json")
		fs.StringVar(&o.name, "name", "", "the image `NAME` the SBOM records (default: the spec's name with --attest provenance, else the repository's or the layout directory's last element)")
		o.shape.register(fs)
		return o.run
	},
}

type signOpts struct {
	g          *globals
	signing    signingFlags
	attest     []string
	sbomFormat string
	name       string
	shape      shapeFlags
}

// signResult is what sign prints with --json.
type signResult struct {
	Reference    string `json:"reference"`
	Digest       string `json:"digest"`
	Signatures   string `json:"signatures"`
	Attestations string `json:"attestations,omitempty"`
}

func (o *signOpts) run(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return fault.Bad(errors.New("name one image: repro sign REF --key FILE"))
	}
	ref, err := imageref.Parse(args[0])
	if err != nil {
		return fault.Bad(err)
	}
	ref = ref.WithInsecure(o.shape.insecure)
	signer, err := o.signing.signer(ctx)
	if err != nil {
		return err
	}
	format, err := attest.ParseFormat(o.sbomFormat)
	if err != nil {
		return fault.Bad(fmt.Errorf("--sbom-format: %w", err))
	}
	wantSBOM, wantProv := false, false
	for _, a := range o.attest {
		switch a {
		case "sbom":
			wantSBOM = true
		case "provenance":
			wantProv = true
		default:
			return fault.Bad(fmt.Errorf("--attest %q: attach provenance or sbom", a))
		}
	}
	art, err := imageref.Open(ctx, ref, remoteOptions(ctx)...)
	if err != nil {
		return err
	}
	defer art.Close()
	// A signature vouches for a manifest: it must be there, whole.
	if err := art.ReadManifests(); err != nil {
		return fault.Bad(fmt.Errorf("%s: the image cannot be read whole (%v); sign a complete image", args[0], err))
	}
	digest := art.Descriptor.Digest.String()
	var atts []sign.Attestation
	name := o.name
	if wantProv {
		p, specName, err := o.rebuiltProvenance(ctx, digest)
		if err != nil {
			return err
		}
		atts = append(atts, sign.Attestation{PredicateType: attest.ProvenanceType, Predicate: p})
		if name == "" {
			name = specName
		}
	}
	if wantSBOM {
		if name == "" {
			name = ref.ShortName()
		}
		doc, err := sbomOf(ctx, name, *art, format)
		if err != nil {
			return err
		}
		// SBOM first, as build --sign attaches them.
		atts = append([]sign.Attestation{{PredicateType: format.PredicateType(), Predicate: doc}}, atts...)
	}
	res, err := sign.Sign(ctx, ref, signer, sign.Options{ExpectDigest: digest, Attestations: atts, Remote: remoteOptions(ctx), Log: o.g.log})
	if err != nil {
		return err
	}
	if o.g.json {
		return json.NewEncoder(o.g.stdout).Encode(signResult{Reference: ref.String(), Digest: res.Digest.String(), Signatures: res.Signatures, Attestations: res.Attestations})
	}
	fmt.Fprintln(o.g.stdout, res.Digest.String())
	return nil
}

// rebuiltProvenance rebuilds the spec with the build flags and returns its
// provenance and the spec's name, provided the rebuild has the digest
// being signed.
func (o *signOpts) rebuiltProvenance(ctx context.Context, digest string) ([]byte, string, error) {
	work, removeWork, err := workDir("repro-sign-")
	if err != nil {
		return nil, "", err
	}
	defer removeWork()
	b, err := o.shape.build(ctx, o.g, work)
	if err != nil {
		return nil, "", err
	}
	if got := b.Descriptor.Digest.String(); got != digest {
		return nil, "", fault.Check(fmt.Errorf("--attest provenance: rebuilding %s gives %s, not the image signed (%s); give the flags the build was given (--version, --var, --platform, --compression), or attach no provenance", b.Spec.File, got, digest))
	}
	p, err := b.Provenance(version)
	return p, b.Spec.Name, err
}

// signingFlags are how a command gets its signer: --key FILE, or
// --keyless with Fulcio, Rekor and an OIDC identity token. build --sign
// registers them too.
type signingFlags struct {
	key           string
	keyless       bool
	fulcioURL     string
	rekorURL      string
	identityToken string
}

func (f *signingFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.key, "key", "", "the private key `FILE`: cosign's format (decrypted with $COSIGN_PASSWORD) or PEM")
	fs.BoolVar(&f.keyless, "keyless", false, "sign without a key: an ephemeral key certified by Fulcio for --identity-token, recorded in Rekor (needs the network)")
	fs.StringVar(&f.fulcioURL, "fulcio-url", sign.PublicFulcioURL, "with --keyless, the Fulcio `URL`")
	fs.StringVar(&f.rekorURL, "rekor-url", sign.PublicRekorURL, "with --keyless, the Rekor `URL`")
	fs.StringVar(&f.identityToken, "identity-token", "", "with --keyless, the OIDC ID `TOKEN`, or a file holding it (default $SIGSTORE_ID_TOKEN)")
}

// signer loads the key, or, with --keyless, gets a certificate from
// Fulcio. Call it before building, so that a wrong password fails at once.
func (f *signingFlags) signer(ctx context.Context) (*sign.Signer, error) {
	if !f.keyless {
		return loadSigningKey(f.key)
	}
	if f.key != "" {
		return nil, fault.Bad(errors.New("--key and --keyless: choose one"))
	}
	tok := f.identityToken
	if tok == "" {
		tok = os.Getenv("SIGSTORE_ID_TOKEN")
	}
	if b, err := os.ReadFile(tok); err == nil {
		tok = strings.TrimSpace(string(b))
	}
	s, err := sign.NewKeylessSigner(ctx, sign.KeylessOptions{FulcioURL: f.fulcioURL, RekorURL: f.rekorURL, IdentityToken: tok, UserAgent: "repro/" + version})
	var bad *sign.URLError
	switch {
	case errors.Is(err, sign.ErrNoIdentityToken):
		return nil, fault.Bad(fmt.Errorf("%w (--identity-token, or $SIGSTORE_ID_TOKEN)", err))
	case errors.As(err, &bad):
		flag := map[string]string{"FulcioURL": "--fulcio-url", "RekorURL": "--rekor-url"}[bad.Option]
		return nil, fault.Bad(fmt.Errorf("%s: %w", flag, bad.Err))
	}
	return s, err
}

// loadSigningKey reads the private key at path, decrypted with
// $COSIGN_PASSWORD when it is a cosign key file. Build calls it before
// building, so that a wrong password fails at once.
func loadSigningKey(path string) (*sign.Signer, error) {
	s, err := sign.LoadSignerFile(path, []byte(os.Getenv("COSIGN_PASSWORD")))
	switch {
	case errors.Is(err, sign.ErrNoKeyFile):
		return nil, fault.Bad(errors.New("--key: give the private key FILE to sign with (repro keygen makes one)"))
	case err != nil:
		return nil, fmt.Errorf("--key %w", err)
	}
	return s, nil
}

// checkSignable fails when no output can hold a signature: only registry
// references and oci: layouts can.
func checkSignable(refs []imageref.Reference) error {
	if sign.AnySignable(refs) {
		return nil
	}
	return fault.Bad(fmt.Errorf("--sign: %w", sign.ErrNothingSignable))
}

// signBuilt signs every output of b, refs, that can hold a signature,
// with the SBOM and provenance attestations unless turned off
// (sign.SignOutputs); archives are skipped, with a warning.
func signBuilt(ctx context.Context, g *globals, b *build.Built, refs []imageref.Reference, signer *sign.Signer, sbom, provenance bool) error {
	if signer == nil {
		return fault.Bad(errors.New("--sign needs --key FILE (or --keyless)"))
	}
	if err := checkSignable(refs); err != nil {
		return err
	}
	atts, err := b.Attestations(ctx, sbom, provenance, version)
	if err != nil {
		return err
	}
	// "latest" is the tag build wrote to an oci: output that names none.
	return sign.SignOutputs(ctx, refs, signer, "latest", sign.Options{ExpectDigest: b.Descriptor.Digest.String(), Attestations: atts, Remote: remoteOptions(ctx), Log: g.log})
}

// sbomOf scans an image or index and encodes its SBOM
// (attest.ImageSBOM); the layers repro added are inferred from each
// config's history.
func sbomOf(ctx context.Context, name string, a imageref.Artifact, format attest.Format) ([]byte, error) {
	return attest.ImageSBOM(ctx, name, a, format, version, attest.ScanOptions{TempDir: os.TempDir()})
}

var verifySignatureCmd = &command{
	name:  "verify-signature",
	usage: "verify-signature REF --key cosign.pub [--require provenance|sbom]...",
	short: "check an image's cosign signatures and attestations, offline",
	long: `
Verify-signature checks the cosign signatures and every attestation of the
image (or index) REF names against a public key, without rebuilding
anything (repro verify --key rebuilds as well). It passes when a signature
made with the key names REF's very digest, every attestation verifies and
names that digest, and each --require'd attestation is there. It fails
(exit 1) saying which signature or attestation failed and why: another
key, a changed payload, or a payload naming another digest.

It reads signatures where cosign writes them (sha256-<hex>.sig and .att
tags; cosign's layout format) and touches no network but REF's registry.

Examples:
  repro verify-signature oci:out/app:v1 --key cosign.pub
  repro verify-signature registry.example.com/app:v1 --key cosign.pub --require provenance`,
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		o := &verifySigOpts{g: g}
		fs.StringVar(&o.key, "key", "", "the public key `FILE` (PEM), as cosign generate-key-pair or repro keygen writes it")
		fs.StringArrayVar(&o.require, "require", nil, "fail unless a verified attestation of this `KIND` is present: provenance, sbom (SPDX), cyclonedx, or a predicate type URI (repeatable)")
		fs.StringArrayVar(&o.insecure, "insecure-registry", nil, "speak plain HTTP to this registry `HOST` (repeatable; loopback needs none)")
		return o.run
	},
}

type verifySigOpts struct {
	g        *globals
	key      string
	require  []string
	insecure []string
}

func (o *verifySigOpts) run(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return fault.Bad(errors.New("name one image: repro verify-signature REF --key FILE"))
	}
	ref, err := imageref.Parse(args[0])
	if err != nil {
		return fault.Bad(err)
	}
	ref = ref.WithInsecure(o.insecure)
	var require []string
	for _, r := range o.require {
		t, ok := attest.PredicateTypeOf(r)
		if !ok {
			return fault.Bad(fmt.Errorf("--require %q: give provenance, sbom, cyclonedx or a predicate type URI", r))
		}
		require = append(require, t)
	}
	rep, err := verifySigned(ctx, o.g, ref, o.key, require)
	if rep != nil && o.g.json {
		if jerr := json.NewEncoder(o.g.stdout).Encode(rep); jerr != nil {
			return jerr
		}
	} else if err == nil {
		fmt.Fprintf(o.g.stdout, "verified %s\n", rep.Digest)
	}
	return err
}

// verifySigned checks ref's cosign signatures and attestations against
// the public key in keyPath (verify.Signatures), logging each verdict. Its
// error is a failed check (exit 1) naming what failed, or bad input (the
// key). repro verify --key calls it too.
func verifySigned(ctx context.Context, g *globals, ref imageref.Reference, keyPath string, require []string) (*sign.Report, error) {
	if keyPath == "" {
		return nil, fault.Bad(errors.New("--key: give the public key FILE to verify with"))
	}
	pub, err := os.ReadFile(keyPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fault.Bad(fmt.Errorf("--key %s: no such file", keyPath))
		}
		return nil, fault.Op(err)
	}
	rep, err := verify.Signatures(ctx, ref, pub, verify.SignatureOptions{Require: require, Remote: remoteOptions(ctx), Log: g.log})
	if errors.Is(err, verify.ErrPrivateKey) {
		return nil, fault.Bad(fmt.Errorf("--key %s is a private key; verify with the public key (cosign.pub)", keyPath))
	}
	return rep, err
}
