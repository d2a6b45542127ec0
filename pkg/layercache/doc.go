// Package layercache is the layer cache: a layer built once is not built
// again while nothing that makes its bytes has changed. It owns the key,
// the stat cache of the build context and the local store of layers
// (under the cache directory's layers/). Package cache, beside it, is the
// store of fetched files and pulled blobs; the two share a directory and
// nothing else.
//
// # The key
//
// A key is the SHA-256 of a canonical description of everything that
// makes a layer's bytes, and nothing else. It is written as lines, each
// field quoted with strconv.Quote where it is a string:
//
//	repro-layer-cache/1
//	builder "<build ID>"                 the Go build ID of the repro binary
//	format repro-layer/N                 the output format (compress.Format)
//	compression gzip|zstd
//	settings "<compress.FormatSettings>" the compressor's fixed settings
//	tar "<layer.TarRule>"                the tar rule of that format
//	epoch E                              the layer's epoch
//	kind entries|packages
//
// then, for a layer built from entries (context, inline contents, urls,
// the accounts layer), one line per entry, sorted by path:
//
//	<type> <path> <mode octal> <uid> <gid> <target> <mtime> <size> <sha256> <xattrs>
//
// where mtime is the entry's mtime as the tar rule normalizes it (the
// epoch, or in format 2 the entry's own clamped to [0, epoch]), target is
// a symlink's or hard link's target (else ""), size and sha256 are a
// regular file's length and content hash (else 0 and -), and xattrs are
// the sorted name=value pairs, quoted. Implicit parent directories and
// the hard-link arrangement follow from these lines and the tar rule, so
// they are not listed. The host's mtimes, owners, inode numbers and the
// order the entries were given in are not in the key: they are not in the
// bytes either.
//
// The builder line makes a key one program's: another build of repro may
// write other bytes where the format promises nothing (what it writes
// besides the entries given), or its secret guard may find other secrets.
// The secret guard's findings in a layer (before the spec's allow list
// judges them) are kept with the entry, and replayed on a hit, so that a
// hit is judged by today's allow list as a rebuild would be.
//
// For a package layer the lines are instead the pinned .deb digests, in
// the order the layer unpacks them, followed by one line of the builder's
// own parameters for that layer (what it writes besides the packages'
// files: pkg/build gives the pins' names and versions, usrmerge, the time
// zone and the exclusion record), which the caller gives. The key is
// known from the lock alone, so a hit fetches, reads and unpacks no
// .deb; the entry keeps what the build must replay (the secret guard's
// findings, the log, the paths the usrmerge check and later layers'
// removal warnings look at). A base's layers have no key: they are
// copied as published, and package cache holds them.
//
// A key is a claim that anyone can check: the layer stored under it must
// be the layer a cold build writes. The builder checks its half of the
// claim as it writes: every regular file's content is hashed again as it
// streams into the tar (Contents.Observe), and a layer whose files did not
// hash as the key said (a file edited during the build) is not stored.
//
// # The stat cache
//
// As git's index does, the stat cache maps a context file's (path,
// device, inode, size, mtime ns, ctime ns, mode) to its content's SHA-256,
// so that a warm build hashes no file: it reads no file bodies. It never
// serves a stale hash. A record is used only when every field equals a
// fresh lstat's; any write to a file changes its ctime (even one that
// keeps its size and sets its mtime back, as touch -d does). The racy
// case (a file written again within the timestamp granule of the stat
// that was recorded, so that its times do not change) is handled as git
// handles it, more strictly: a record is kept only when the file's mtime
// and ctime are older than the start of the session that hashed it, less
// a window of RacyWindow (for coarse clocks and granules), and when the
// file's fstat before and after hashing agree. Files changed that
// recently are hashed again on the next build. One stat cache file per
// context, written atomically; builds sharing it race harmlessly (the
// last writer's view wins, and every view is true).
//
// # The local store
//
// DIR/layers/entries/<key hex>/ holds blob (the compressed layer), and
// meta.json (digest, diff ID, size, media type). An entry is written in a
// temporary directory and renamed into place; when two builds race, the
// first rename wins and the second build uses the winner's entry (their
// bytes are the same, or the key is wrong). A hit gives a v1.Layer whose
// digest and diff ID are known without reading it; its bytes are copied
// or linked into outputs, never recompressed.
//
// A local hit does not hash the blob. The store's blobs were hashed as
// they were written (layer.Write computes a layer's digest from the bytes
// it writes; a shared cache entry is checked as it streams in), an entry
// is written whole in a temporary directory and renamed into place, and
// its directory is named by its key: the store holds an entry's bytes in
// full, or nothing. What can still make a blob wrong is a change outside
// repro (a disk error, a hand edit). So a hit checks what costs no read:
// meta.json parses and names the key, its digests parse, and the blob is a
// regular file of the recorded size (a blob cut short or grown is a
// corrupt entry, removed and rebuilt). The bytes are hashed once, where
// they next stream: an OCI layout's Put and the archives check every
// blob against its digest, a registry checks every blob pushed, and
// Layer.Compressed checks at the end of the stream; a blob changed in
// place at its size fails that build there, naming the blob's digest,
// rather than writing a wrong image. build --cache-verify (GetHashed)
// hashes every local hit first, as well as rebuilding it cold: a changed
// blob is then a corrupt entry, removed and rebuilt.
// The entry's used file is touched on every hit: Prune removes entries
// unused for longer than a maximum age, then the least recently used
// until the store fits a maximum size.
//
// # The shared cache
//
// Shared is a layer cache in a registry repository (build --cache-repo),
// looked up when the local store misses. An entry is one OCI image
// manifest tagged by the key's hex: one layer, and a config whose labels
// hold the key (LabelKey) and what Put was given to keep (LabelExtra),
// and whose created time is when the entry was written. Entries are
// immutable: Put writes a key's tag only when the repository has none
// (first write wins; there is no mutable tag), and only a Shared with
// Write (--cache-mode readwrite: the main branch's builds; pull requests
// read) writes at all. Every hit is checked: the blob's bytes are hashed
// as they stream, compressed and decompressed, and must be the digest,
// diff ID and size the entry claims before the layer goes into the local
// store and from there into an output. An entry that fails is a
// *SharedError, for a warning; the layer is built. A layer taken from the
// shared cache is mounted from there by a push to the same registry.
//
// For a layer built from entries the check is stronger: the builder gives
// Get the layer's uncompressed tar as it would write it (the context's
// files, read again), and the blob must decompress to exactly those
// bytes, so the entry is the layer this build writes, not only one that
// hashes as it claims (a poisoned entry, its claims consistent, fails).
// A gzip blob is proven so as it arrives, its 1 MiB blocks decompressed
// and compared each on its own core (compress.CopyCheckGzipBlocks; the
// proof is in its doc); one that cannot be proven that way (zstd,
// another writer's blocks) is decompressed whole and compared.
// Layer.Checked says which check a hit had ("blocks", "compared", or
// "hashed" for a package layer, whose .debs the builder does not unpack
// again to compare). Hashes alone prove an entry's bytes are the ones it
// claims, not that they are the layer its key names; for package layers,
// and for local hits, build --cache-verify checks that too: every hit is
// built again cold and compared, and a difference fails the build and
// removes the local entry.
package layercache
