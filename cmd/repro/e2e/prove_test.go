package e2e

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/reprobuild/repro/pkg/diff"
)

// TestInspectDiffVerifyCheck drives the proving commands on the examples.
func TestInspectDiffVerifyCheck(t *testing.T) {
	examples := copyExamples(t, false)
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	spec := filepath.Join(examples, "go-server", "repro.yaml")
	layout := "oci:" + filepath.Join(t.TempDir(), "layout") + ":v1"
	reg := host + "/go-server:v1"
	d := lastLine(repro(t, examples, "build", "-q", "--version", "1.0.0", "-f", spec, "-o", layout, "-o", reg).stdout)

	t.Run("inspect", func(t *testing.T) {
		var out inspectJSON
		r := repro(t, examples, "inspect", "--files", "--json", layout)
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatal(err)
		}
		if out.Digest != d || len(out.Platforms) != 1 || len(out.Platforms[0].Layers) != 2 {
			t.Fatalf("inspect: %+v", out)
		}
		files := map[string]string{}
		for _, f := range out.Platforms[0].Files {
			files[f.Path] = string(f.Kind) + " " + f.Link
		}
		if files["/usr/local/bin/server"] != "symlink /app/server" || files["/app/server-link"] != "hardlink /app/server" || files["/etc/motd"] != "file " {
			t.Errorf("files: %v", files)
		}
		text := repro(t, examples, "inspect", "--files", reg).stdout
		if !strings.Contains(text, d) || !strings.Contains(text, "/srv/static/index.html") {
			t.Errorf("text inspect:\n%s", text)
		}
	})
	t.Run("diff-self-across-transports", func(t *testing.T) {
		r := repro(t, examples, "diff", layout, reg)
		if !strings.HasPrefix(r.stdout, "identical: "+d) {
			t.Errorf("diff: %s", r.stdout)
		}
	})
	t.Run("diff-explains", func(t *testing.T) {
		other := "oci:" + filepath.Join(t.TempDir(), "other") + ":v2"
		repro(t, examples, "build", "-q", "--version", "2.0.0", "--compression", "zstd", "-f", spec, "-o", other)
		r := invocation{dir: examples}.run(t, "diff", "--json", layout, other)
		if r.code != 1 {
			t.Fatalf("exit %d, want 1: %s", r.code, r.stderr)
		}
		var rep diff.Report
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatal(err)
		}
		p := rep.Platforms[0]
		var fields []string
		for _, f := range p.Config {
			fields = append(fields, f.Field)
		}
		if !strings.Contains(strings.Join(fields, ","), "config.Env[0]") || len(p.Layers) != 2 || p.Layers[0].Change != diff.LayerCompressionOnly {
			t.Errorf("config fields %v, layers %+v", fields, p.Layers)
		}
		// The version reaches the server through -X main.version, so its
		// binary is the one file that differs; everything else is the same
		// files, compressed otherwise.
		if len(p.Files) != 1 || p.Files[0].Path != "/app/server" || p.Files[0].Change != "changed" {
			t.Errorf("builds of versions 1.0.0 and 2.0.0 differ in files %+v; want /app/server alone (-X main.version)", p.Files)
		}
	})
	t.Run("verify", func(t *testing.T) {
		r := repro(t, examples, "verify", "-f", spec, "--version", "1.0.0", "--against", reg)
		if !strings.Contains(r.stdout, "verified") {
			t.Errorf("verify: %s", r.stdout)
		}
		repro(t, examples, "verify", "-f", spec, "--version", "1.0.0", "--expect", d)
		bad := invocation{dir: examples}.run(t, "verify", "-f", spec, "--version", "1.0.1", "--against", layout)
		if bad.code != 1 || !strings.Contains(bad.stdout, `annotations.org.opencontainers.image.version: "1.0.0" -> "1.0.1"`) {
			t.Errorf("verify mismatch: exit %d\n%s", bad.code, bad.stdout)
		}
		// The user's outputs are untouched by verify.
		if _, err := os.Stat(filepath.Join(examples, "out")); err == nil {
			t.Error("verify wrote out/")
		}
		// A layout that names the right digest but lost a layer's bytes
		// is not verified.
		damaged := filepath.Join(t.TempDir(), "damaged")
		if err := os.CopyFS(damaged, os.DirFS(strings.TrimSuffix(strings.TrimPrefix(layout, "oci:"), ":v1"))); err != nil {
			t.Fatal(err)
		}
		var out inspectJSON
		json.Unmarshal([]byte(repro(t, examples, "inspect", "--json", layout).stdout), &out)
		blob := filepath.Join(damaged, "blobs", "sha256", strings.TrimPrefix(out.Platforms[0].Layers[1].Digest, "sha256:"))
		if err := os.WriteFile(blob, []byte("not the layer"), 0o644); err != nil {
			t.Fatal(err)
		}
		r = invocation{dir: examples}.run(t, "verify", "-f", spec, "--version", "1.0.0", "--against", "oci:"+damaged+":v1")
		if r.code != 1 || !strings.Contains(r.stdout, "does not hold that image's bytes") {
			t.Errorf("verify of a damaged layout: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("check-every-example", func(t *testing.T) {
		for _, c := range goldenCases {
			r := invocation{dir: examples}.run(t, "build", "--check", "-q", "--version", "1.0.0", "--compression", c.compression,
				"-f", filepath.Join(examples, c.example), "-o", "oci:"+filepath.Join(t.TempDir(), "o")+":t")
			if r.code != 0 {
				t.Errorf("%s: --check exit %d\n%s", c.example, r.code, r.stderr)
			}
		}
	})
}
