package spec

import (
	"strings"
	"testing"

	"github.com/reprobuild/repro/internal/testtool"
)

// TestBigInlineContentHeldOnce loads a spec with 64 MiB of inline content
// and bounds the heap meanwhile: the value is unquoted once from the
// file's bytes (yaml.v3 alone held it four to five times over: a 200 MB
// content built at 1.1 GB).
func TestBigInlineContentHeldOnce(t *testing.T) {
	const size = 64 << 20
	data := []byte("version: 1\nname: big\nlayers:\n  - contents:\n      - path: /big\n        content: \"" + strings.Repeat("a", size) + "\\n\"\n")
	var s *Spec
	var err error
	peak := testtool.HeapPeak(func() {
		s, err = Parse("repro.yaml", "/ctx", data, LoadOptions{})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := *s.Layers[0].Contents[0].Content; len(got) != size+1 || got[size] != '\n' {
		t.Fatalf("content of %d bytes, want %d ending in a newline", len(got), size+1)
	}
	// The heap holds the file's bytes (the caller's) and the value once,
	// and little else; yaml.v3 alone peaks above four times the size.
	if peak > 2*size+size/2 {
		t.Errorf("heap in use peaked at %d MiB while loading %d MiB of inline content", peak>>20, size>>20)
	} else {
		t.Logf("heap peak %d MiB for %d MiB of inline content", peak>>20, size>>20)
	}
}
