// Package compress owns the bytes of layer compression: gzip and zstd
// through klauspost/compress at fixed settings, and the output formats
// (Format: repro-layer/1, repro-layer/2) that name the tar rule and those
// settings together.
//
// Every setting that reaches the compressed bytes is set here on purpose;
// none is left to a library default. gzip is written by klauspost/pgzip in
// fixed 1 MiB blocks, each compressed with the previous block's last 32 KiB
// as its dictionary, so the bytes do not depend on how many blocks are
// compressed at once, on GOMAXPROCS or on the number of cores. zstd is
// written as independent frames of 4 MiB of input each, compressed in
// parallel and written in order, for the same reason. It is the only
// package that imports klauspost.
//
// The gzip member header, byte by byte (RFC 1952 2.3):
//
//	1f 8b        ID1 ID2, the gzip magic
//	08           CM: deflate
//	00           FLG: no FTEXT, FHCRC, FEXTRA, FNAME or FCOMMENT
//	00 00 00 00  MTIME: zero, "no time stamp" (format 2);
//	             format 1: 00 09 6e 88, the 0x886E0900 that pgzip v1.3.0
//	             writes for the zero time.Time, kept for format 1
//	00           XFL: 0, level 5 being neither "best" (2) nor "fastest" (4)
//	ff           OS: 255, unknown
//
// so a format-2 gzip layer begins 1f8b080000000000 00ff.
//
// Each zstd frame header (RFC 8878 3.1.1), in both formats: the magic
// 28 b5 2f fd; the frame header descriptor with the content-size field
// as wide as the frame's content needs (none below 256 bytes, 2 bytes
// below 65792, else 4), single segment off, no dictionary ID, the content
// checksum on; one window descriptor byte, the smallest power of two
// above the frame's content (at least 1 KiB, at most the 4 MiB window);
// the content size; then blocks, and the 4-byte checksum. An empty layer
// is the one empty frame 28b52ffd 20 00 010000 (single segment, content
// size 0, no checksum, one empty raw block). header_test.go reads every
// one of these bytes, for every format.
package compress
