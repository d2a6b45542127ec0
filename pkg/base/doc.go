// Package base resolves a spec's base image: a registry reference (by tag
// or pinned by digest), a local oci:DIR@sha256:… layout entry or an
// oci-archive:FILE. It pins a reference to digests (the index or manifest
// it names, and each platform's manifest), and opens the image for one
// platform with its layers exactly as published.
//
// Registry blobs (manifests, configs, layers) are pulled through the
// content-addressed cache: once there, a build touches no network, and
// offline builds use the cache alone, naming every blob that is missing.
// Layers are never decompressed or recompressed; only their descriptors'
// Docker media types are mapped to the OCI equivalents.
package base
