package build

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/layercache"
	"github.com/reprobuild/repro/pkg/spec"
)

// TestSettingsRequest: the text settings become the request's values,
// with the defaults of an empty setting, and $SOURCE_DATE_EPOCH and the
// go environment come from the Environ given, never the process's.
func TestSettingsRequest(t *testing.T) {
	req, err := Settings{}.Request()
	if err != nil {
		t.Fatal(err)
	}
	if req.File != "repro.yaml" || req.Compression != compress.Gzip || req.Format != 0 || req.SourceDateEpoch != nil || len(req.Vars) != 0 || req.Platforms != nil {
		t.Errorf("the zero settings: %+v", req)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "99") // the process's: not read
	req, err = Settings{
		File: "app/repro.yaml", Platforms: []string{"linux/arm64", "linux/arm/v7"}, Vars: []string{"a=1", "b=x=y", "a=2", "e="},
		Version: "v1", Compression: "zstd", Format: "1", Locked: true, AllowUnpinned: true, ScanBase: true, Insecure: []string{"r:5000"},
		Offline: true, Environ: []string{"SOURCE_DATE_EPOCH=5", "HOME=/h", "GOFLAGS=-x", "SOURCE_DATE_EPOCH=1700000000"},
	}.Request()
	if err != nil {
		t.Fatal(err)
	}
	want := Request{
		File: "app/repro.yaml", Version: "v1", Vars: map[string]string{"a": "2", "b": "x=y", "e": ""},
		Platforms:   []spec.Platform{{OS: "linux", Arch: "arm64"}, {OS: "linux", Arch: "arm", Variant: "v7"}},
		Compression: compress.Zstd, Format: compress.Format1, Locked: true, AllowUnpinned: true, ScanBase: true, Insecure: []string{"r:5000"},
	}
	sde := time.Unix(1700000000, 0).UTC()
	want.SourceDateEpoch = &sde
	got := req
	got.GoEnv = nil
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("request (-want +got):\n%s", d)
	}
	if slices.Contains(req.GoEnv, "GOFLAGS=-x") || !slices.Contains(req.GoEnv, "HOME=/h") || req.GoEnv[len(req.GoEnv)-1] != "GOPROXY=off" {
		t.Errorf("GoEnv: %q; want HOME kept, GOFLAGS dropped, GOPROXY=off last", req.GoEnv)
	}
	if env := (Settings{Environ: []string{"HOME=/h"}}).GoEnv(); slices.Contains(env, "GOPROXY=off") {
		t.Errorf("online GoEnv: %q", env)
	}
}

// TestSettingsErrors: a value Request cannot read is bad input naming
// its Settings field, so that cmd can name its flag.
func TestSettingsErrors(t *testing.T) {
	for _, c := range []struct {
		s       Settings
		setting string
	}{
		{Settings{Vars: []string{"novalue"}}, "Vars"},
		{Settings{Vars: []string{"=v"}}, "Vars"},
		{Settings{Compression: "xz"}, "Compression"},
		{Settings{Format: "3"}, "Format"},
		{Settings{Platforms: []string{"linux"}}, "Platforms"},
	} {
		_, err := c.s.Request()
		var se *SettingError
		if !errors.As(err, &se) || se.Setting != c.setting || fault.KindOf(err) != fault.BadInput {
			t.Errorf("%+v: %v; want bad input, a SettingError of %s", c.s, err, c.setting)
		}
	}
	for _, v := range []string{"soon", "-1", "1.5"} {
		_, err := Settings{Environ: []string{"SOURCE_DATE_EPOCH=" + v}}.Request()
		if !errors.Is(err, ErrSourceDateEpoch) || fault.KindOf(err) != fault.BadInput {
			t.Errorf("SOURCE_DATE_EPOCH=%s: %v; want ErrSourceDateEpoch, bad input", v, err)
		}
	}
	if req, err := (Settings{Environ: []string{"SOURCE_DATE_EPOCH="}}).Request(); err != nil || req.SourceDateEpoch != nil {
		t.Errorf("an empty SOURCE_DATE_EPOCH is unset: %v, %v", req.SourceDateEpoch, err)
	}
}

// TestBuiltTags: the spec's tags, expanded with the build's values, in
// the spec's order; none when it lists none.
func TestBuiltTags(t *testing.T) {
	s := setup(t, "version: 1\nname: app\nvars: {env: dev}\ntags: ['r.example/app:{{.Version}}', 'r.example/app:{{.Vars.env}}-{{.Epoch}}']\nlayers:\n  - contents:\n      - {path: /a, content: a}\n", nil)
	b := &Built{Spec: s, Values: spec.Values{Version: "v1", Epoch: 7, Vars: map[string]string{"env": "prod"}}}
	tags, err := b.Tags()
	if err != nil || !slices.Equal(tags, []string{"r.example/app:v1", "r.example/app:prod-7"}) {
		t.Errorf("Tags: %q, %v", tags, err)
	}
	b.Spec = setup(t, "version: 1\nname: app\nlayers:\n  - contents:\n      - {path: /a, content: a}\n", nil)
	if tags, err := b.Tags(); err != nil || tags == nil || len(tags) != 0 {
		t.Errorf("no tags: %q, %v; want an empty list", tags, err)
	}
}

// TestRunRecordsLayerFates: Built.LayerFates says what became of each
// layer, as the caller's LayerDone hears it: built cold, then cached.
func TestRunRecordsLayerFates(t *testing.T) {
	s := setup(t, "version: 1\nname: app\nlayers:\n  - name: etc\n    contents:\n      - {path: /etc/motd, source: motd}\n", map[string]string{"motd": "hi\n"})
	store := layercache.Open(filepath.Join(t.TempDir(), "layers"), time.Now, "test-builder")
	c := cache.New(t.TempDir())
	for _, want := range []string{LayerBuilt, LayerCached} {
		var heard []LayerFate
		var mu sync.Mutex
		b, err := Run(context.Background(), Request{File: s.File, Cache: c, WorkDir: t.TempDir(), Layers: store,
			LayerDone: func(layer, platform, status string) {
				mu.Lock()
				heard = append(heard, LayerFate{layer, platform, status})
				mu.Unlock()
			}})
		if err != nil {
			t.Fatal(err)
		}
		if len(b.LayerFates) != 1 || !slices.Equal(b.LayerFates, heard) {
			t.Fatalf("fates %+v, heard %+v", b.LayerFates, heard)
		}
		for _, f := range b.LayerFates {
			if f.Layer != "etc" || f.Status != want {
				t.Errorf("%+v; want etc %s", f, want)
			}
		}
	}
}
