// Package output writes built images to where -o points: OCI layouts,
// oci-archive and docker-archive files, and registries.
//
// Writes are atomic. A new layout is assembled in a temporary directory
// beside its destination and renamed into place; an existing layout gets
// each blob through a temporary file and rename, and its index.json last,
// the same way, under an flock on the layout directory. Archives are
// written to a temporary file and renamed. A failed or interrupted write
// leaves no partial output behind: at worst, unreferenced blobs in a
// layout that already existed.
//
// A registry push skips the blobs the registry has and mounts those it can
// from another of its repositories (layers that are *remote.MountableLayer,
// as registry bases' are). Options.Progress hears of each blob as it is
// sent, found or mounted; drawing that is the caller's business.
package output
