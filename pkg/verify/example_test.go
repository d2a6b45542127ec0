package verify_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/reprobuild/repro/pkg/build"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/output"
	"github.com/reprobuild/repro/pkg/verify"
)

// A Go program outside repro builds a spec into an OCI layout and
// verifies it against the digest that was published, through the public
// API alone: build.Run, output.Write, verify.Rebuild.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "repro-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "repro.yaml")
	spec := "version: 1\nname: hello\nlayers:\n  - name: motd\n    contents:\n      - {path: /etc/motd, content: \"hello\\n\"}\nconfig:\n  cmd: [/bin/cat, /etc/motd]\n"
	if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
		log.Fatal(err)
	}
	request := func(work string) build.Request {
		return build.Request{
			File:    file,
			Epoch:   &build.Epoch{Time: time.Unix(1700000000, 0), Source: build.EpochGiven},
			Version: "1.0.0",
			Cache:   cache.New(filepath.Join(dir, "cache")),
			WorkDir: work,
		}
	}

	// Build, and write the image to oci:DIR/layout:v1.
	built, err := build.Run(ctx, request(filepath.Join(dir, "work1")))
	if err != nil {
		log.Fatal(err)
	}
	layout := imageref.Reference{Transport: imageref.OCI, Path: filepath.Join(dir, "layout"), Tag: "v1"}
	if err := output.Write(ctx, layout, built.Artifact, output.Options{}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("built", built.Descriptor.Digest)

	// Later, elsewhere: rebuild from source and compare with the digest
	// that was published.
	const published = "sha256:5acb93a4f03e41a3126b338922e832d87782b0ee9d08168e044b7c904969b886"
	res, _, err := verify.Rebuild(ctx, request(filepath.Join(dir, "work2")), verify.Target{Digest: published})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("verified", res.Verified)

	// And with the layout: it must name that digest and hold every blob.
	against, err := imageref.Open(ctx, layout)
	if err != nil {
		log.Fatal(err)
	}
	defer against.Close()
	res, _, err = verify.Rebuild(ctx, request(filepath.Join(dir, "work3")), verify.Target{Artifact: against, Name: "oci:layout:v1", Local: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("verified against the layout", res.Verified)
	// Output:
	// built sha256:5acb93a4f03e41a3126b338922e832d87782b0ee9d08168e044b7c904969b886
	// verified true
	// verified against the layout true
}
