// Package apt installs Debian packages declaratively, without running
// anything: it reads signed repository indexes, resolves a deterministic
// dependency closure, pins every .deb by its SHA-256, and turns .debs into
// entries for package layer's canonical writer.
//
// The flow, and the functions for each step:
//
//  1. FetchIndex reads dists/<suite>/InRelease of every Source and suite,
//     checks its OpenPGP clearsignature against Config.Keyring (a bad or
//     missing signature, or text outside the signed part, is an error),
//     then reads each component's Packages index (xz, gzip or plain;
//     binary-<arch> and binary-all; by-hash when the Release says so),
//     checked against the SHA-256 that the InRelease lists. Everything
//     goes through the cache by digest; an unpinned InRelease is fetched
//     into memory first (its digest is not known before) and stored once
//     verified. Index.Digests are what the lock records; FetchOptions.Pinned
//     reads a locked InRelease by digest instead (offline when cached).
//  2. Index.Resolve computes the closure of the wanted packages less the
//     installed ones (InstalledFrom reads a base's status or status.d; an
//     earlier layer's Resolve result serves as well); its doc lists the
//     rules. Pins turns the result into lock entries.
//  3. FetchPinned downloads exactly the pinned .debs through the cache,
//     each verified against its SHA-256: a mismatch is an operational
//     error and nothing is stored.
//  4. Entries extracts the .debs (its own ar reader; data.tar in gzip, xz,
//     zstd, bzip2 or plain) into []layer.Entry: the packages' modes and
//     owners; with usrmerge, /bin, /sbin and /lib* moved into /usr (moved
//     relative symlinks rewritten to keep their meaning) and the symlinks
//     /bin -> usr/bin, /sbin -> usr/sbin, /lib -> usr/lib plus each other
//     lib* that a package uses; directories shared by packages merged; a
//     file shipped by two packages refused unless one Replaces the other;
//     dpkg metadata written to StatusDir; and a Report of every maintainer
//     script and trigger that was skipped. Entry contents stream from each
//     data.tar, spooled decompressed in a work directory; no .deb is held
//     in memory.
//
// Errors a user can fix (an unresolvable or ambiguous package set, a bad
// keyring, conflicting files) are fault.BadInput; a failed signature or
// digest check, the network and the disk are fault.Operational.
//
// Library code here never reads the environment or the clock: the caller
// passes the cache, the HTTP client and, optionally, the time at which
// keys must be valid. Packages are made by ParseStanzas, ParseStatus,
// InstalledFrom and Index.Resolve; a Package built by hand has no parsed
// version and must not be given to Resolve.
package apt
