// Command genschema writes the generated files of specs/ from the types of
// pkg/spec: the JSON Schema repro.schema.json, and the field reference of
// README.md between its marker comments. With -check it writes nothing and
// fails when either file is stale.
//
//	go run ./pkg/spec/internal/genschema -dir specs [-check]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/reprobuild/repro/pkg/spec"
)

func main() {
	dir := flag.String("dir", "specs", "the directory holding repro.schema.json and README.md")
	check := flag.Bool("check", false, "write nothing; exit 1 if a generated file is stale")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "genschema: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	stale, err := run(*dir, *check)
	if err != nil {
		fmt.Fprintf(os.Stderr, "genschema: %v\n", err)
		os.Exit(1)
	}
	if len(stale) > 0 {
		for _, f := range stale {
			fmt.Fprintf(os.Stderr, "genschema: %s is stale: it does not match pkg/spec/types.go; run make generate\n", f)
		}
		os.Exit(1)
	}
}

// run generates the files of dir and writes them, or with check lists the
// ones that differ from what is on disk.
func run(dir string, check bool) (stale []string, err error) {
	schema, err := spec.Schema()
	if err != nil {
		return nil, err
	}
	readmePath := filepath.Join(dir, "README.md")
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		return nil, err
	}
	newReadme, err := spec.ReplaceFieldReference(readme)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", readmePath, err)
	}
	files := []struct {
		path string
		data []byte
	}{
		{filepath.Join(dir, "repro.schema.json"), schema},
		{readmePath, newReadme},
	}
	for _, f := range files {
		old, err := os.ReadFile(f.path)
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		if bytes.Equal(old, f.data) {
			continue
		}
		if check {
			stale = append(stale, f.path)
			continue
		}
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return nil, err
		}
	}
	return stale, nil
}
