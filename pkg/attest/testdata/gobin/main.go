// Command gobin is a Go binary with a module dependency, for the SBOM
// tests to read the build info of.
package main

import (
	"fmt"

	"github.com/google/go-cmp/cmp"
)

func main() { fmt.Println(cmp.Equal(1, 1)) }
