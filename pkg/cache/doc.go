// Package cache is repro's content-addressed store: files fetched from
// URLs (and, later, pulled blobs), kept under DIR/blobs/sha256/<hex>.
//
// Entries are written to a temporary file, verified, and renamed into
// place, so two builds sharing a cache at once never see a partial entry;
// every read verifies the digest again. In offline mode nothing is fetched
// and a missing entry is an error that says what is missing.
package cache
