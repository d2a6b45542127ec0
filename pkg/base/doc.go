// Package base resolves a spec's base image: a registry reference (by tag
// or pinned by digest), a local oci:DIR@sha256:… layout entry or an
// oci-archive:FILE. It pins a reference to digests (the index or manifest
// it names, and each platform's manifest), and opens the image for one
// platform with its layers exactly as published.
//
// Registry blobs (manifests, configs, layers) are pulled through the
// content-addressed cache: once there, a build touches no network, and
// offline builds use the cache alone, naming every blob that is missing.
// Layers are published as they are, never recompressed; only their
// descriptors' Docker media types are mapped to the OCI equivalents. Each
// is read once per cache, decompressed and parsed, to check that it is a
// layer and that its diff ID is the config's (check.go); a lock's pin is
// checked against the index it names (Resolver.CheckPin).
package base
