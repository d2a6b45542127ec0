// Package systemd makes the links that `systemctl enable` makes, without
// running anything: for each unit named, it finds the unit file in the
// system unit search path of the image (as Debian 12's systemd 252 orders
// it: /etc/systemd/system.control, /etc/systemd/system,
// /etc/systemd/system.attached, /usr/local/lib/systemd/system,
// /lib/systemd/system, /usr/lib/systemd/system; /run is empty in an
// image), follows a unit name that is a symlink to the unit it names, reads
// the [Install] section and returns the symlinks under /etc/systemd/system:
//
//   - WantedBy=T: T.wants/NAME, RequiredBy=T: T.requires/NAME (UpheldBy=,
//     which systemd 254 added, is ignored, as Debian 12's systemctl
//     ignores it);
//   - Alias=A: A itself (same unit type, a template only for a template);
//   - Also=U: U is enabled too (a missing one is reported, as systemctl
//     reports an auxiliary unit that fails);
//   - a template (foo@.service) is enabled with its DefaultInstance=; an
//     instance (foo@bar.service) links to its template's file.
//
// Each link points at the unit file by its absolute path where the search
// found it, as systemctl writes them. The specifiers %n %N %p %i %j %% are
// expanded in [Install] values; any other specifier is refused, as are a
// masked unit, a unit with no [Install] section, and a link that the image
// already holds pointing elsewhere. The links come sorted by path.
//
// TestEnableMatchesSystemctl compares the links with those systemctl
// --root (252) makes for the same units. The package reads only the Tree
// it is given; it never touches the host.
package systemd
