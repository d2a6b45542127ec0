// Package build turns a loaded spec into an image or an image index:
// it resolves each layer's contents (context files, inline content, URLs
// through the cache), writes canonical layers with package layer, and
// assembles the OCI config, manifests and index with every field set on
// purpose.
//
// build reads no environment and no clock: the epoch, the template values
// and the platforms are passed in by the caller.
package build
