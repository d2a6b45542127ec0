// Package lock reads and writes repro's lock file (repro.lock.json beside
// the spec, whatever the spec is called) and resolves what it pins: every
// base reference (the digest it names, and each platform's manifest) and
// every url (its sha256).
//
// The file is JSON with sorted keys, two-space indentation and a final
// newline, so resolving an unchanged spec twice gives identical bytes.
package lock
