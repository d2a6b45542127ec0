package build

import (
	"testing"

	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/spec"
)

// TestSpecFormatsAreCompressFormats: the formats a spec may name are
// those package compress writes, newest first.
func TestSpecFormatsAreCompressFormats(t *testing.T) {
	if len(spec.Formats) != len(compress.Formats) {
		t.Fatalf("spec.Formats %v, compress.Formats %v", spec.Formats, compress.Formats)
	}
	for i, f := range compress.Formats {
		if spec.Formats[i] != int(f) {
			t.Errorf("spec.Formats %v, compress.Formats %v", spec.Formats, compress.Formats)
		}
	}
}
