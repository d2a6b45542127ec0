package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeRepro writes a stand-in for `repro help CMD` that lists flags.
func fakeRepro(t *testing.T, flags ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "repro")
	var b strings.Builder
	b.WriteString("#!/bin/sh\necho 'Flags:'\n")
	for _, f := range flags {
		b.WriteString("echo '      " + f + " x'\n")
	}
	if err := os.WriteFile(p, []byte(b.String()), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

var allFlags = []string{"-f, --file", "--platform", "--var", "--locked", "--cache-dir", "--cache-repo", "--cache-mode", "--check", "-o, --output",
	"--push-by-digest", "--metadata-file", "--push", "--sign", "--key"}

func files() Files {
	return Files{
		GitHub:     "../../specs/ci/github-actions.yml",
		GitLab:     "../../specs/ci/gitlab-ci.yml",
		Kubernetes: "../../specs/ci/k8s-indexed-job.yaml",
		Schema:     "../../testdata/ci/gitlab-ci.schema.json",
		Spec:       "../../specs/examples/fleet/repro.yaml",
	}
}

func TestExamplesPass(t *testing.T) {
	problems, err := Check(files(), fakeRepro(t, allFlags...))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// TestBrokenExamplesFail proves each checker can fail: one mutation per
// file, each of which the real tools reject.
func TestBrokenExamplesFail(t *testing.T) {
	cases := []struct {
		name, file, old, new, want string
	}{
		{"github unknown key", "GitHub", "    runs-on: ubuntu-24.04\n    permissions:", "    runs-on: ubuntu-24.04\n    runs_on: x\n    permissions:", "actionlint"},
		{"github bad expression", "GitHub", "${{ matrix.platform }}", "${{ matrix.platfrom }}", "actionlint"},
		{"github platforms", "GitHub", "platform: [linux/amd64, linux/arm64, linux/arm/v7]", "platform: [linux/amd64, linux/arm64]", "the spec builds"},
		{"gitlab unknown job key", "GitLab", "  stage: index\n", "  stage: index\n  artefacts: {}\n", "GitLab's CI schema"},
		{"gitlab bad parallel", "GitLab", "check:\n  stage: build\n", "check:\n  stage: build\n  parallel: 0\n", "GitLab's CI schema"},
		{"gitlab bad when", "GitLab", "    expire_in: 1 day\n", "    expire_in: 1 day\n    when: sometimes\n", "GitLab's CI schema"},
		{"k8s unknown field", "Kubernetes", "  completionMode: Indexed\n", "  completionMode: Indexed\n  completionsMode: x\n", "unknown field"},
		{"k8s mistyped field", "Kubernetes", "  parallelism: 3\n", "  parallelism: three\n", "Job"},
		{"k8s completions", "Kubernetes", "  completions: 3\n", "  completions: 2\n", "one per platform"},
		{"repro flag typo", "GitLab", "--push-by-digest", "--push-by-digets", "has no flag --push-by-digets"},
	}
	repro := fakeRepro(t, allFlags...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := files()
			src := map[string]*string{"GitHub": &f.GitHub, "GitLab": &f.GitLab, "Kubernetes": &f.Kubernetes}[c.file]
			raw, err := os.ReadFile(*src)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(raw), c.old) {
				t.Fatalf("%s no longer holds %q", *src, c.old)
			}
			mut := filepath.Join(t.TempDir(), filepath.Base(*src))
			if err := os.WriteFile(mut, []byte(strings.Replace(string(raw), c.old, c.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			*src = mut
			problems, err := Check(f, repro)
			if err != nil {
				t.Fatal(err)
			}
			joined := strings.Join(problems, "\n")
			if !strings.Contains(joined, c.want) {
				t.Fatalf("want a problem with %q, got:\n%s", c.want, joined)
			}
		})
	}
}
