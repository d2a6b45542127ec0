// Package imageref parses image references in skopeo's transport syntax:
// oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF], and
// registry references (host/repo:tag, host/repo@sha256:…, with or without
// skopeo's docker:// prefix).
package imageref
