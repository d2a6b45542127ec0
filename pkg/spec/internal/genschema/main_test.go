package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	readme := filepath.Join(dir, "README.md")
	os.WriteFile(readme, []byte("# x\n<!-- BEGIN GENERATED FIELDS -->\n<!-- END GENERATED FIELDS -->\nend\n"), 0o644)

	stale, err := run(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "repro.schema.json"), readme}
	if diff := cmp.Diff(want, stale); diff != "" {
		t.Errorf("-check on a fresh dir (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(dir, "repro.schema.json")); !os.IsNotExist(err) {
		t.Error("-check wrote the schema")
	}

	if stale, err := run(dir, false); err != nil || len(stale) != 0 {
		t.Fatalf("generate: %v, %v", stale, err)
	}
	if stale, err := run(dir, true); err != nil || len(stale) != 0 {
		t.Errorf("-check after generate: %v, %v", stale, err)
	}
	got, _ := os.ReadFile(readme)
	if !strings.HasPrefix(string(got), "# x\n<!-- BEGIN GENERATED FIELDS -->\n") || !strings.HasSuffix(string(got), "<!-- END GENERATED FIELDS -->\nend\n") || !strings.Contains(string(got), "### layers[].contents[]") {
		t.Errorf("README after generate:\n%s", got)
	}

	os.WriteFile(readme, []byte("no markers\n"), 0o644)
	if _, err := run(dir, true); err == nil || !strings.Contains(err.Error(), "README.md") {
		t.Errorf("a README without markers: %v", err)
	}
}

// TestCheckedIn runs -check on the repository's specs directory.
func TestCheckedIn(t *testing.T) {
	stale, err := run(filepath.Join("..", "..", "..", "..", "specs"), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range stale {
		t.Errorf("%s is stale; run make generate", f)
	}
}
