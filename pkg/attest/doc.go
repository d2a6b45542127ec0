// Package attest writes the documents that describe a built image: SLSA v1
// provenance (how it was made) and software bills of materials in SPDX 2.3
// JSON and CycloneDX 1.5 JSON (what it holds), and the in-toto statements
// that carry them as cosign attestations.
//
// Every document is deterministic: its one timestamp is the build's epoch,
// every list is sorted, identifiers are derived from content, and the bytes
// are the canonical JSON encoding (package internal/canonical). Building the
// same image twice gives the same documents, byte for byte.
//
// The provenance holds everything `repro verify` needs to rebuild the image
// without hints; ParseProvenance reads it back. Scan reads an image (or each
// image of an index) for the SBOM: the files of the layers repro added, the
// base image, the modules of every Go binary (from debug/buildinfo) and the
// packages of the base's dpkg status or apk database.
package attest
