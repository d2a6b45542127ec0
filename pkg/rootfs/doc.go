// Package rootfs reads the filesystem an image's layers make: each
// layer's entries, and the final flattened tree with whiteouts and opaque
// directories applied the way overlay mounts apply them. Everything that
// reads images (inspect, diff, test, sbom, disk) goes through it.
//
// It streams: layers are decompressed as they are read and file contents
// are hashed on the way past, never held. Read makes one pass for the
// metadata and hashes; Walk makes a second pass that hands each final file
// with its content to a callback.
package rootfs
