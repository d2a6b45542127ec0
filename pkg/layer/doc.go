// Package layer turns a list of entries into a canonical tar stream,
// compresses it with package compress, and exposes the result as a
// v1.Layer backed by a file. It also owns reading the build context safely.
//
// The tar rule (part of the output format, compress.Format; formats 1 and
// 2 differ only in mtimes, below):
//
//   - Entries are sorted by their path as a byte string, compared without
//     a trailing slash, so a-c sorts before a/b and a parent before its
//     children. Every parent directory is present; one the entries do not
//     give is written as a directory 0755 owned by 0:0.
//   - Names are relative, without a leading / or ./; directories end in /.
//   - Headers are POSIX pax as Go's archive/tar writes them: plain ustar
//     blocks, with a pax extended header only for what ustar cannot hold
//     (long names, xattrs such as security.capability).
//   - mtime, in whole seconds: in format 1, the build's epoch for every
//     entry; in format 2, the layer's epoch (Options.Epoch, below) for
//     every entry but those that carry their own (Entry.MTime: a .deb's
//     files), which keep it clamped to [0, the layer's epoch]. There is no
//     atime or ctime; uid, gid and mode (permission bits with setuid,
//     setgid and sticky, no file-type bits) come from the spec; uname and
//     gname are empty; devmajor and devminor are zero.
//   - A hard-link group is one regular file, at the group's first path in
//     sort order, carrying the data, mode, owner and xattrs, and the other
//     paths as hard links to it, so no link precedes its target.
//   - A removed path is a whiteout: an empty regular file .wh.<name>, mode
//     0644, owned by 0:0.
//   - The stream ends with two zero blocks, as archive/tar closes it.
//
// Layer epochs (format 2). A layer's bytes depend only on that layer's own
// inputs, so that a commit that changes one layer changes that layer, the
// config and the manifest, and nothing else. The build's epoch B (the
// spec's epoch:, else $SOURCE_DATE_EPOCH, else 0; with epoch: git, HEAD's
// committer time) stays the config's created, every history entry's and
// the created annotation, and bounds every layer's epoch:
//
//   - A package layer's epoch is the newest mtime among the files of its
//     .debs, clamped to B; each file keeps its .deb's mtime, clamped the
//     same way. What repro writes there itself (dpkg status.d, md5sums,
//     usrmerge links, parent directories) gets the layer's epoch. So a
//     layer changes only when its packages do, whatever the commit, as
//     long as B is not older than the packages' files (a HEAD committed
//     after the lock that pinned them is not; an epoch: of seconds older
//     than them clamps them all to it, which is constant too).
//   - A context layer without epoch: git gets B (a number the spec or the
//     environment chose: changing it re-stamps every context layer, on
//     purpose).
//   - With epoch: git, a context layer's epoch is the committer time of
//     the newest commit that touched its inputs, clamped to B. Its inputs
//     are each source it copies (per platform, after templates, through a
//     symlink named as the source to what it resolves to) and its own
//     lines of the spec: from the line of its list item to the line before
//     the next layer or the next top-level key (comments and blank lines
//     there included). Those lines hold its inline contents, dirs,
//     symlinks, hard links, removals, urls with their sha256s, modes and
//     owners; git blame of the spec in the working tree says when each
//     line last changed. Editing the config, another layer or anything
//     else outside those lines never re-stamps the layer; moving the layer
//     (lines above it added or removed) does not either, since blame
//     follows the lines. A url's file counts by those lines alone, even
//     where the cache it is read from lies inside the context (--cache-dir
//     .repro-cache in a CI checkout).
//   - A go: entry's inputs are its module's whole tree (go.mod, go.sum
//     and every package under the module's root) besides the layer's
//     lines: the compiled program also depends on the toolchain the lock
//     pins, but that changes its bytes, not its mtime.
//   - The accounts layer's inputs are the spec's accounts: lines, so with
//     epoch: git its epoch is their newest commit's; else B.
//   - The systemd layer's inputs are the spec's systemd: lines and the
//     unit files of the layers below it, so with epoch: git its epoch is
//     the newest of their commit's and the epochs of the layers repro
//     built below it that hold unit files (anything in a unit directory,
//     or a link, a file or a whiteout at one of its parents or at the
//     top; a base's layers have no epoch); else B. A layer whose only
//     such entries are directories (/etc, /srv) changes no link, so a
//     commit that edits it does not re-stamp the systemd layer.
//
// Where the epochs go (package build): the epochs that git gives are the
// build's LayerEpochs, by the layer's field in the spec (layers[0],
// accounts, systemd) and platform, and the provenance records them
// (internalParameters.layerEpochs). A rebuild that cannot ask git is
// given them: build --check hands them to its rebuild in a copy without
// .git, and repro verify --key takes them from the provenance, so that a
// verify from a shallow clone (or from no clone) of a build made in a
// full clone still matches it. Without --key there is no provenance: a
// verify asks git, which in a full clone at the same commit gives the
// same epochs, and in a shallow one B for every layer (so it matches a
// build made in a shallow clone, as CI's are). A rebuild given neither
// git nor the epochs warns, and every layer takes B.
//
// What "touched" means, case by case (pkg/vcs reads it, in one pass over
// git log --no-renames of the context):
//
//   - A file source: the newest commit that added or modified that path.
//   - A directory source: the newest commit that added, modified or
//     deleted any path under it that its excludes do not exclude (a path
//     is excluded when it or one of its parent directories matches, as
//     the walk excludes them), so a commit that changes only an excluded
//     file does not re-stamp the layer, and one that deletes a file from
//     the tree does.
//   - A renamed file: the rename is a delete of the old path and an add of
//     the new one, so the renaming commit touches the layer that copies
//     either.
//   - Merges add no time of their own; the commits they bring in count
//     with their own committer times.
//   - A source outside git's index (untracked, ignored such as a build
//     output, or added but not yet committed) and a line of the spec not
//     committed yet have no commit: they count as B, so the layer takes
//     HEAD's time, which is reproducible for the commit built. For a
//     directory, this holds when any file it copies (after excludes) is
//     not in HEAD's tree. An
//     untracked, unignored file that the spec reads also makes the build
//     dirty (warned, and .GitCommit, .GitShortCommit and .Version end in
//     -dirty); a tracked file modified but not committed counts by its
//     last commit (the build is dirty too).
//   - A shallow clone (CI's depth 1) has no history past its boundary, so
//     when anything changed is unknowable there; there, every context
//     layer gets B, HEAD's time, whatever the depth, and the build warns
//     that its context layers differ from a full clone's. Builds from
//     shallow clones of one commit agree with each other; fetch the full
//     history (git fetch --unshallow) to get per-layer epochs.
//   - A base's layers are never rewritten: they keep the bytes, and the
//     mtimes, that the base was published with.
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
