// Package layer turns a list of entries into a canonical tar stream,
// compresses it with package compress, and exposes the result as a
// v1.Layer backed by a file. It also owns reading the build context safely.
//
// The tar rule (part of compress.FormatVersion):
//
//   - Entries are sorted by their path as a byte string, compared without
//     a trailing slash, so a-c sorts before a/b and a parent before its
//     children. Every parent directory is present; one the entries do not
//     give is written as a directory 0755 owned by 0:0.
//   - Names are relative, without a leading / or ./; directories end in /.
//   - Headers are POSIX pax as Go's archive/tar writes them: plain ustar
//     blocks, with a pax extended header only for what ustar cannot hold
//     (long names, xattrs such as security.capability).
//   - mtime is the epoch; there is no atime or ctime; uid, gid and mode
//     (permission bits with setuid, setgid and sticky, no file-type bits)
//     come from the spec; uname and gname are empty; devmajor and devminor
//     are zero.
//   - A hard-link group is one regular file, at the group's first path in
//     sort order, carrying the data, mode, owner and xattrs, and the other
//     paths as hard links to it, so no link precedes its target.
//   - A removed path is a whiteout: an empty regular file .wh.<name>, mode
//     0644, owned by 0:0.
//   - The stream ends with two zero blocks, as archive/tar closes it.
//
// Regular files from the build context are streamed from disk while the
// layer is written; no layer is ever held in memory. The work is spread
// over goroutines without touching the order of the bytes: directories
// are listed four at a time and put together in filepath.WalkDir's order;
// files up to 8 MiB are read whole, ahead of the writer, by workers (at
// most 16 MiB and 256 files ahead), where the Observer (the secret guard)
// sees them; one goroutine writes the tar stream in order; the compressor
// hashes it (the diff ID) and compresses it on its own goroutines.
package layer
