// Package compress owns the bytes of layer compression: gzip and zstd
// through klauspost/compress at fixed settings, and the output-format
// version that names the tar rule and those settings together.
//
// Every setting that reaches the compressed bytes is set here on purpose;
// none is left to a library default. gzip is written by klauspost/pgzip in
// fixed 1 MiB blocks, each compressed with the previous block's last 32 KiB
// as its dictionary, so the bytes do not depend on how many blocks are
// compressed at once, on GOMAXPROCS or on the number of cores. zstd is
// written as independent frames of 4 MiB of input each, compressed in
// parallel and written in order, for the same reason. It is the only
// package that imports klauspost.
package compress
