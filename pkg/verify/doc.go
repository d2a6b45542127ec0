// Package verify proves (or disproves) that an image comes from its
// source: Rebuild builds a request again, cold and in isolation, and
// compares it with a digest or a published image, explaining every
// difference (pkg/diff); FromProvenance maps a verified SLSA provenance
// straight into the request to rebuild; Check is build --check, a second
// build from a perturbed copy of the context (PerturbedCopy: reverse
// order, other modes, mtimes, atimes, owners and xattrs); Signatures
// checks cosign signatures and attestations (pkg/sign).
package verify
