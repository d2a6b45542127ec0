// Package depcheck holds only a test: it enforces the import table of
// the README's package map (which package may import which, and who alone
// may import pflag, klauspost, yaml and cosign), and that library packages
// read neither the environment nor the clock.
package depcheck
