// Command cicheck checks repro's CI examples (specs/ci) offline, each with
// the tool made for its format, and checks that every repro command line in
// them uses flags the repro binary has:
//
//   - the GitHub Actions workflow with actionlint (as a library);
//   - the GitLab CI file against GitLab's own JSON schema, vendored in
//     testdata/ci (see its NOTICE);
//   - the Kubernetes manifests by a strict decode into k8s.io/api's types
//     (unknown or mistyped fields fail), plus the Indexed Job's shape.
//
// It is a module of its own so that the product's go.mod carries none of
// these dependencies. Usage:
//
//	go run . -repo ../.. -repro ../../bin/repro
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	repo := flag.String("repo", "../..", "the repro checkout")
	repro := flag.String("repro", "", "the repro binary whose flags the examples must use")
	flag.Parse()
	if *repro == "" {
		fmt.Fprintln(os.Stderr, "cicheck: -repro is required")
		os.Exit(2)
	}
	files := Files{
		GitHub:     filepath.Join(*repo, "specs/ci/github-actions.yml"),
		GitLab:     filepath.Join(*repo, "specs/ci/gitlab-ci.yml"),
		Kubernetes: filepath.Join(*repo, "specs/ci/k8s-indexed-job.yaml"),
		Schema:     filepath.Join(*repo, "testdata/ci/gitlab-ci.schema.json"),
		Spec:       filepath.Join(*repo, "specs/examples/fleet/repro.yaml"),
	}
	problems, err := Check(files, *repro)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cicheck:", err)
		os.Exit(3)
	}
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "cicheck: %d problems\n", len(problems))
		os.Exit(1)
	}
	fmt.Println("cicheck: github-actions.yml (actionlint), gitlab-ci.yml (GitLab's schema), k8s-indexed-job.yaml (k8s.io/api strict): ok")
}
