package attest

import (
	"context"
	"fmt"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
)

// ImageSBOM scans an image or index (Scan) and encodes its SBOM in
// format (SBOM); with no opts.AddedLayers, the layers repro added are
// inferred from each config's history. tool names the tool that writes
// it. A hostile layer (pkg/rootfs limits) is bad input; any other failure
// is operational.
func ImageSBOM(ctx context.Context, name string, a imageref.Artifact, format Format, tool string, opts ScanOptions) ([]byte, error) {
	inv, err := Scan(ctx, name, a, opts)
	if err != nil {
		err = fmt.Errorf("reading the image for its SBOM: %w", err)
		if fault.KindOf(err) == fault.BadInput {
			return nil, err
		}
		return nil, fault.Op(err)
	}
	doc, err := SBOM(inv, format, tool)
	if err != nil {
		return nil, fault.Op(err)
	}
	return doc, nil
}
