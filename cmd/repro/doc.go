// The command layer is thin: it parses flags (the only importer of pflag),
// reads the environment and the clock once, sets up logging, calls into
// pkg/, and maps errors onto the contract's exit codes (pkg/fault).
package main
