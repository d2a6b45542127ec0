package build

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reprobuild/repro/pkg/base"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/output"
)

// TestScanBase: --scan-base reports a secret a base carries, and does not
// fail the build.
func TestScanBase(t *testing.T) {
	key := corpusFile(t, "private-key/ec.key")
	baseSpec := setup(t, "version: 1\nname: base\nlayers:\n  - contents:\n      - {path: /root/.ssh/id_ec, source: k}\nsecrets:\n  allow:\n    - {path: /root/.ssh/id_ec, reason: \"a base that leaks, for this test\"}\n", map[string]string{"k": key})
	res, err := Build(context.Background(), baseSpec, opts(t, baseSpec))
	if err != nil {
		t.Fatal(err)
	}
	layout := filepath.Join(t.TempDir(), "base")
	ref := imageref.Reference{Transport: imageref.OCI, Path: layout, Tag: "v1"}
	if err := output.Write(context.Background(), ref, imageref.Artifact{Image: res.Image}, output.Options{}); err != nil {
		t.Fatal(err)
	}
	app := setup(t, fmt.Sprintf("version: 1\nname: app\nbase: oci:%s@%s\nlayers:\n  - contents:\n      - {path: /etc/motd, content: hi}\n", layout, res.Descriptor.Digest), nil)
	bref, err := base.ParseRef(app.Base)
	if err != nil {
		t.Fatal(err)
	}
	o := opts(t, app)
	r := base.NewResolver(o.Cache, nil)
	pin, err := r.Resolve(context.Background(), bref)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	o.Log = slog.New(slog.NewTextHandler(&log, nil))
	o.Base = &Base{Ref: bref, Pin: pin, Resolver: r}
	o.ScanBase = true
	if _, err := Build(context.Background(), app, o); err != nil {
		t.Fatalf("a base's secret must not fail the build: %v", err)
	}
	if !strings.Contains(log.String(), "secret in the base (report only)") || !strings.Contains(log.String(), "/root/.ssh/id_ec: rule private-key") {
		t.Errorf("no report:\n%s", log.String())
	}
	log.Reset()
	o.ScanBase = false
	if _, err := Build(context.Background(), app, o); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "secret in the base") {
		t.Error("base scanned without --scan-base")
	}
}
