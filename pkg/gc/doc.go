// Package gc is retention for OCI layouts and registry repositories:
// images older than a number of days go, with their signatures and
// attestations, and in a layout the blobs that nothing references any
// more.
//
// # Age
//
// An image's age is its config's created field, which repro sets to the
// build's epoch (the spec's epoch, else SOURCE_DATE_EPOCH, else 0). So the
// age is the source's age, not the time the image was built or pushed: a
// rebuild of an old commit is as old as the commit. An image built with
// epoch 0 says it was created on 1970-01-01, and is always "old": gc
// deletes it unless it is one of the newest KeepLast. Give such images an
// epoch (epoch: git, or SOURCE_DATE_EPOCH) when they are to be kept by age.
// An index is as old as the newest of its images. An image whose config
// has no created field (or one that is not a time), an index with such an
// image, and anything that is not an image are never deleted.
//
// # What stays
//
//   - The newest KeepLast images and indexes by created (ties broken by
//     digest), however old.
//   - Everything created within KeepDays of Now.
//   - Every manifest that a kept index uses, even when it is old and has
//     a tag (an index.json entry) of its own.
//   - Signatures, attestations and SBOMs of what stays.
//
// What is deleted is a digest with every tag naming it: in a registry the
// API deletes manifests by digest, and in a layout every index.json entry
// of the digest goes.
//
// # Signatures and attestations
//
// They belong to the digest that cosign's tag names (sha256-<hex>.sig,
// .att, .sbom, in a registry or as a layout entry's
// org.opencontainers.image.ref.name); in a layout an entry with only
// cosign's kind annotation (dev.cosignproject.cosign/sigs, /atts) belongs
// to the one entry of kind dev.cosignproject.cosign/image (or /imageIndex),
// as cosign's layout format has it, else to the digest its payload signs;
// an OCI 1.1 manifest with a subject belongs to its subject. They go
// exactly when what they belong to goes; those of an image that is not
// there at all stay.
//
// # Layouts and registries
//
// In a layout, index.json is rewritten without the entries that go
// (written beside it and renamed over it, the other entries byte for
// byte), then every blob that no remaining entry reaches is removed. In a
// registry, image and index manifests are deleted first, then the
// manifests of deleted indexes that nothing kept uses, then signatures,
// so that an interrupted run never leaves an unsigned image. With DryRun
// nothing changes and the Report says what would.
package gc
