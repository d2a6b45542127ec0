// Package e2e drives the repro binary end to end: TestMain builds it once,
// the way the Makefile does, and each test runs it as a user would, against
// the real tools that read its outputs (skopeo, umoci, podman, cosign,
// docker-registry, qemu). It holds the golden digests of specs/examples and
// the perturbation tests. Nothing here is imported; a unit test of
// cmd/repro does not build the binary.
package e2e
