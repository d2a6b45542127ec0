// Package sign signs images with cosign's formats, attaches attestations
// (in-toto statements in DSSE envelopes) and verifies both. It is the only
// package of repro that imports sigstore and cosign, and it uses them as
// libraries. With a key, loading it, signing, attaching and verifying
// touch no network beyond the registry holding the image: never TUF, Rekor
// or Fulcio. Keyless signing (NewKeylessSigner) is the one path that talks
// to Fulcio and Rekor; it signs only, and repro verifies key signatures
// only.
//
// Where signatures live:
//   - in a registry, under cosign's tags: sha256-<hex>.sig for signatures
//     and sha256-<hex>.att for attestations, in the image's repository;
//   - in an OCI layout, in cosign's layout format (what `cosign save`
//     writes), so that `cosign verify --local-image DIR` accepts it: the
//     image's index.json entry carries cosign's kind annotation
//     (dev.cosignproject.cosign/image or …/imageIndex) beside its
//     org.opencontainers.image.ref.name, and the signatures and
//     attestations images are entries of kind …/sigs and …/atts. They are
//     also tagged sha256-<hex>.sig and sha256-<hex>.att, as in a registry.
//
// cosign's layout format holds one signed image: its reader takes the first
// entry of each kind. A layout that holds several images keeps the kind
// annotations on the image signed last only; every other image keeps its
// signatures under its sha256-<hex>.sig/.att tags, where repro finds them
// and `cosign verify --local-image` does not.
//
// Signing never changes the image: its manifest, and so its digest, stay
// as they were; only index.json entries and the signature images are
// written.
//
// Ed25519 signatures are deterministic (RFC 8032): signing the same image
// with the same Ed25519 key gives the same bytes, so a signed layout is
// reproducible. ECDSA signatures are randomized: each signing gives new
// signature bytes, and so new signature-image digests, though each
// verifies.
package sign
