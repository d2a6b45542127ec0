// Package output writes built images to where -o points: OCI layouts,
// oci-archive and docker-archive files, and registries.
//
// Writes are atomic. Layouts are written through package layout: Stage
// puts the blobs where no gc can take them, Commit moves them in and
// swaps index.json under the layout's lock (its doc states the rule; a
// new layout is assembled beside its destination and renamed into place,
// and concurrent first writes merge). Archives are written to a temporary
// file beside them (named for its owner, so that a killed run's is
// removed by the next write) and renamed. A failed or interrupted write
// leaves no partial output behind.
//
// A registry push skips the blobs the registry has and mounts those it can
// from another of its repositories (layers that are *remote.MountableLayer,
// as registry bases' are). Options.Progress hears of each blob as it is
// sent, found or mounted; drawing that is the caller's business.
package output
