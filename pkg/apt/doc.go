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
//
// # What the skipped maintainer scripts would have done
//
// Measured across the closures of bookworm's 103 packages of Priority
// required, important or standard, plus the examples' (nginx, nginx-light,
// ca-certificates, openssl, tzdata, busybox-static, nodejs, systemd,
// systemd-sysv, linux-image-cloud-amd64, systemd-boot-efi, curl), with
// bookworm-updates and bookworm-security: 288 packages, 106 postinst
// scripts and 136 triggers, 93 packages whose scripts do some work below
// (a spec of two layers with those package lists, repro lock and repro
// build, counting the build log's "done/reported/ignored by repro" lines;
// 2026-12-07). Packages is how many packages' scripts do that kind of work.
//
//	kind of work                    repro     packages  how
//	update-alternatives             done      14        parsed from the postinst calls; highest priority wins
//	update-alternatives (variables) reported  3         procps, xz-utils' lzma, traceroute: calls built from shell variables
//	update-ca-certificates          done      1         CA bundle, .pem and subject-hash links (cacerts.go)
//	first configure (base-files,    done      2         /var/run, /var/lock links, /etc/profile, /root dotfiles, ...;
//	  nginx-common)                                     nginx's logs, default site, /var/www/html
//	nginx module links              done      1         modules-enabled/*.conf
//	/etc/localtime (tzdata)         done      1         from apt.timezone
//	openssl's /usr/lib/ssl links    done      1         nothing to do: the package ships them
//	ldconfig trigger                ignored   2         no ld.so.cache needed: every library is in a searched directory
//	                                                    (reported when a package adds an ld.so.conf.d directory)
//	accounts                        reported  7         accounts: in the spec
//	ownership (chown, statoverride) reported  8         contents with uid/gid/mode
//	directories                     reported  8         contents
//	symlinks (ln -s)                reported  7         contents
//	systemd units                   reported  11        systemd.enable
//	systemd-sysusers                reported  2         accounts
//	systemd-tmpfiles                reported  5         made at boot; contents for a container
//	kernel modules and initramfs    reported  4         repro disk --boot makes the initramfs
//	pam-auth-update                 reported  2         contents
//	/etc/shells                     reported  2         contents
//	capabilities (setcap)           reported  1         iputils-ping; iproute2's is ignored (debconf default: none)
//	starting services               ignored   15        nothing runs while an image is built
//	sysv init links                 ignored   9         no sysv init in an image
//	conffile moves                  ignored   18        upgrade housekeeping
//	debconf questions               ignored   8         an unattended install takes the defaults
//	python bytecode                 ignored   20        compiled on import
//	ucf                             ignored   2         the shipped file is what ucf installs
//	documentation indexes           ignored   3         man-db, install-info, mime caches
//	machine id                      ignored   1         belongs to a running system
package apt
