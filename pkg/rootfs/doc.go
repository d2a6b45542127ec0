// Package rootfs reads the filesystem an image's layers make: each
// layer's entries, and the final flattened tree with whiteouts and opaque
// directories applied the way overlay mounts apply them. Everything that
// reads images (inspect, diff, test, sbom, disk) goes through it.
//
// It streams: layers are decompressed as they are read and file contents
// are hashed on the way past, never held. Read makes one pass for the
// metadata and hashes; Walk makes a second pass that hands each final file
// with its content to a callback.
//
// It is bounded by the data a layer holds, not the sizes its headers claim
// (limits.go): a layer's uncompressed stream may not pass MaxLayerSize (64
// GiB by default, --max-layer-size), its sparse entries may not claim more
// than MaxHoles (1 GiB) of holes, cancellation is checked every MiB inside
// an entry, and a header that does not parse is bad input. Names and links
// that escape (../, absolute, hard links out of the layer) are cleaned into
// paths inside the image; nothing here resolves them on the host.
package rootfs
