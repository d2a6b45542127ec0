// Package accounts merges a spec's accounts (users and groups) over a
// base's /etc/passwd, /etc/group, /etc/shadow and /etc/gshadow: the
// base's lines kept as they are, the spec's replacing them by name, ids
// checked against the base's, lines sorted by id, passwords locked. It
// returns the layer entries of the four files; package build writes them
// as the image's accounts layer.
package accounts
