// Package layout owns OCI image layouts on disk: reading and checking
// one, its lock, replacing index.json atomically, putting blobs, and the
// temporary files that writers leave when they are killed. Every writer
// of a layout in repro (package output, package sign, package gc) goes
// through it.
//
// # The rule
//
// A file enters blobs/ only while the writer holds the layout's exclusive
// lock, in the same critical section that writes the index.json naming
// it. So a blob in blobs/ that no index.json entry reaches is garbage,
// whoever looks, and gc (which takes the same lock) may remove it. The
// lock is an flock on the layout directory itself: exclusive to change
// the layout, shared to read it consistently.
//
// A build's blobs are big and take long to write, so they are not written
// under the lock. A Stage writes them first into a staging directory of
// its own, inside the layout (DIR/.tmp-<pid>-<random>/), where gc does not
// look; a blob the layout already holds is hard-linked there, so that gc
// removing it meanwhile cannot take it from the build. Commit then takes
// the exclusive lock, renames the staged blobs into blobs/sha256/, and
// replaces index.json; only renames happen under the lock, so builds and
// gc wait on each other for milliseconds. A build into a layout that does
// not exist yet stages a whole layout beside it (.<name>.tmp-<pid>-<random>)
// and renames it into place; when another writer created the layout
// first, the rename fails and Commit merges into that layout instead, the
// same way as above. So concurrent first writes all land, and a failed or
// interrupted write leaves nothing.
//
// index.json is replaced by writing a temporary file beside it, flushing
// it, and renaming it over the old one. Entries that a writer does not
// change are written back byte for byte as they were read.
//
// # Debris
//
// Every temporary name that a writer makes carries its owner (package
// atomicfs: prefix<pid>-<random>, and the owner holds an flock on it).
// Opening a layout for writing, and Clean, remove the temporary files and
// directories whose owner is gone: no such process, and the flock free.
// A live writer's temporary files are never removed. Clean, which gc
// calls, also removes temporary names without an owner that older
// versions of repro left (blobs/sha256/.tmp-*, .tmp-index.json-*, and
// .<name>.tmp-* beside the layout).
//
// A writer killed while Commit renames blobs in leaves complete blobs that
// nothing references yet (never a tag to an incomplete image); gc removes
// them.
package layout
