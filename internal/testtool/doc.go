// Package testtool helps tests drive the host tools that consume repro's outputs
// (podman, skopeo, umoci, oci-image-tool, docker-registry, ...).
//
// Require finds tools on PATH. A missing tool skips the test on a developer's
// machine, and fails it when CI=true, because .ci/run installs every tool the
// tests use and a silently skipped test proves nothing.
//
// Podman returns a podman command line whose storage lives in the test's own
// temporary directories, with the containers.conf from the repository's .ci/
// directory (unless CONTAINERS_CONF is set), so that tests can run in parallel and
// leave nothing behind. OCIRef names an OCI layout in a form that podman accepts,
// and Run runs a command and fails the test with its output when it fails.
//
// HeapPeak samples the heap while a function runs, for the tests that hold
// layers and compressors to bounded memory.
//
// This package reads the environment and is for tests only.
package testtool
