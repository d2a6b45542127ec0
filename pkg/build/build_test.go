package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/spec"
)

// setup writes a spec and context files into a temp dir and loads it.
func setup(t *testing.T, yaml string, files map[string]string) *spec.Spec {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "repro.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := spec.Load(file, spec.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func values(s *spec.Spec) spec.Values {
	return spec.Values{Name: s.Name, Version: "1.2.3", GitCommit: "unknown", GitShortCommit: "unknown", Epoch: 1700000000, Date: spec.DateOf(1700000000), Vars: s.Vars}
}

func opts(t *testing.T, s *spec.Spec) Options {
	return Options{Values: values(s), Compression: compress.Gzip, WorkDir: t.TempDir(), Cache: cache.New(t.TempDir())}
}

const twoPlatforms = `version: 1
name: app
platforms: [linux/amd64, linux/arm64/v8]
vars: {env: dev}
layers:
  - name: bin
    contents:
      - path: /app/bin
        source: "bin-{{.Arch}}{{.Variant}}"
  - name: shared
    contents:
      - path: /etc/motd
        content: "hi\n"
config:
  entrypoint: [/app/bin]
  cmd: []
  env: {B: "2", A: "{{.Version}}"}
  exposedPorts: ["80", "53/udp"]
  labels: {env: "{{.Vars.env}}"}
annotations: {org.opencontainers.image.version: "{{.Version}}-{{.Date}}"}
`

func TestBuildIndex(t *testing.T) {
	s := setup(t, twoPlatforms, map[string]string{"bin-amd64": "x86", "bin-arm64v8": "arm"})
	res, err := Build(context.Background(), s, opts(t, s))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := res.Manifests()
	if err != nil {
		t.Fatal(err)
	}
	if res.Index == nil || len(ms) != 2 {
		t.Fatalf("want an index of two, got %+v", res)
	}
	im, _ := res.Index.IndexManifest()
	for i, m := range ms {
		if m.Platform != res.Platforms[i] || m.Descriptor.Digest != im.Manifests[i].Digest || m.Size != im.Manifests[i].Size {
			t.Errorf("Manifests()[%d] is %s %s %d; the index lists %s %d", i, m.Platform, m.Digest, m.Size, im.Manifests[i].Digest, im.Manifests[i].Size)
		}
	}
	// A second call gives the same answer, in a slice of its own.
	ms[0].Size = -1
	again, err := res.Manifests()
	if err != nil || len(again) != 2 || again[0].Size != im.Manifests[0].Size || again[1].Digest != ms[1].Digest {
		t.Errorf("the second Manifests() is %+v, %v; the first was %+v", again, err, ms)
	}
	if got := im.Manifests[1].Platform; got.Architecture != "arm64" || got.Variant != "v8" {
		t.Errorf("second platform %+v", got)
	}
	if im.Annotations["org.opencontainers.image.version"] != "1.2.3-20231114" {
		t.Errorf("index annotations %v", im.Annotations)
	}
	all, err := res.Images()
	if err != nil {
		t.Fatal(err)
	}
	amd, _ := all[0].Image()
	arm, _ := all[1].Image()
	la, _ := amd.Layers()
	lb, _ := arm.Layers()
	da0, _ := la[0].Digest()
	db0, _ := lb[0].Digest()
	da1, _ := la[1].Digest()
	db1, _ := lb[1].Digest()
	if da0 == db0 {
		t.Error("per-platform layer is the same for both platforms")
	}
	if da1 != db1 {
		t.Error("a layer without platform templates differs between platforms")
	}
	cf, _ := amd.ConfigFile()
	if diff := cmp.Diff([]string{"A=1.2.3", "B=2"}, cf.Config.Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	if cf.Config.Labels["env"] != "dev" || len(cf.History) != 2 || cf.History[0].CreatedBy != `repro: layer "bin"` {
		t.Errorf("config %+v", cf)
	}
	if _, ok := cf.Config.ExposedPorts["80/tcp"]; !ok {
		t.Errorf("ports %v", cf.Config.ExposedPorts)
	}
	if cf.Created.Unix() != 1700000000 || cf.History[1].Created.Unix() != 1700000000 {
		t.Errorf("created %v", cf.Created)
	}
	raw, _ := amd.RawConfigFile()
	var m map[string]any
	json.Unmarshal(raw, &m)
	if _, ok := m["config"].(map[string]any)["Cmd"]; ok {
		t.Errorf("empty cmd written: %s", raw)
	}
}

func TestPlatformNarrowing(t *testing.T) {
	s := setup(t, twoPlatforms, map[string]string{"bin-amd64": "x86", "bin-arm64v8": "arm"})
	o := opts(t, s)
	o.Platforms = []spec.Platform{{OS: "linux", Arch: "arm64", Variant: "v8"}}
	res, err := Build(context.Background(), s, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Image == nil || res.Index != nil {
		t.Fatal("one platform must give an image, not an index")
	}
	o.Platforms = []spec.Platform{{OS: "linux", Arch: "s390x"}}
	_, err = Build(context.Background(), s, o)
	if fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), "linux/amd64, linux/arm64/v8") {
		t.Errorf("err = %v", err)
	}
}

func TestSourceErrorsAreLocated(t *testing.T) {
	s := setup(t, "version: 1\nname: a\nlayers:\n  - contents:\n      - path: /x\n        source: ../outside\n", nil)
	_, err := Build(context.Background(), s, opts(t, s))
	if fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), "repro.yaml:6:17: layers[0].contents[0].source") {
		t.Errorf("err = %v", err)
	}
	s = setup(t, "version: 1\nname: a\nlayers:\n  - contents:\n      - {path: /x, content: a}\n      - {path: /x/y, content: b}\n", nil)
	_, err = Build(context.Background(), s, opts(t, s))
	if fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), "is inside it") {
		t.Errorf("err = %v", err)
	}
}

func TestURLContent(t *testing.T) {
	body := "certificate\n"
	sum := sha256.Sum256([]byte(body))
	good := hex.EncodeToString(sum[:])
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte(body))
	}))
	defer srv.Close()
	cacheDir := t.TempDir()
	spec1 := "version: 1\nname: a\nlayers:\n  - contents:\n      - path: /ca.pem\n        url: " + srv.URL + "/ca.pem\n        sha256: "
	s := setup(t, spec1+good+"\n", nil)
	o := opts(t, s)
	o.Cache = cache.New(cacheDir)
	first, err := Build(context.Background(), s, o)
	if err != nil {
		t.Fatal(err)
	}
	o.Cache = cache.New(cacheDir, cache.Offline(true))
	second, err := Build(context.Background(), s, o)
	if err != nil {
		t.Fatal(err)
	}
	if first.Descriptor.Digest != second.Descriptor.Digest || hits.Load() != 1 {
		t.Errorf("digests %s %s, fetched %d times", first.Descriptor.Digest, second.Descriptor.Digest, hits.Load())
	}
	// A wrong pin is an operational failure that names both digests.
	bad := strings.Repeat("0", 64)
	s = setup(t, spec1+bad+"\n", nil)
	o = opts(t, s)
	_, err = Build(context.Background(), s, o)
	var m *cache.MismatchError
	if fault.KindOf(err) != fault.Operational || !errors.As(err, &m) || m.Got != good {
		t.Errorf("err = %v", err)
	}
	// Offline without the file says what is missing.
	o.Cache = cache.New(t.TempDir(), cache.Offline(true))
	_, err = Build(context.Background(), s, o)
	if fault.KindOf(err) != fault.Operational || !errors.Is(err, cache.ErrOffline) {
		t.Errorf("err = %v", err)
	}
}

// TestGoldenImage pins a small image's digest, in each output format:
// config, manifest and layer bytes together. The format-1 pin is what
// repro printed before format 2; it never moves. The default is format 2.
func TestGoldenImage(t *testing.T) {
	for _, c := range []struct {
		format compress.Format
		want   string
	}{
		{compress.Format1, "894d6525a0e260ada43978ee94618a72857e00cedc98fdbfe4890e6550f8bcae"},
		{compress.Format2, "8e810956b4f1bac055487be3fc91ab38cecdb8773e17838a450048eb8569aa76"},
		{0, "8e810956b4f1bac055487be3fc91ab38cecdb8773e17838a450048eb8569aa76"}, // the default
	} {
		s := setup(t, twoPlatforms, map[string]string{"bin-amd64": "x86", "bin-arm64v8": "arm"})
		o := opts(t, s)
		o.Format = c.format
		res, err := Build(context.Background(), s, o)
		if err != nil {
			t.Fatal(err)
		}
		if want := (v1.Hash{Algorithm: "sha256", Hex: c.want}); res.Descriptor.Digest != want {
			t.Errorf("format %d: index digest %s, golden %s", c.format, res.Descriptor.Digest, want)
		}
	}
}
