// Command repro builds bit-for-bit reproducible OCI images from a
// declarative spec, without a daemon. Run `repro help` for the commands.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
