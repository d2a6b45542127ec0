package base

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/reprobuild/repro/internal/hostile"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/rootfs"
)

// FuzzCheckLayer feeds arbitrary bytes to the check a base layer passes:
// it must never panic, and refuse only as bad input (the bytes are the
// layer's; nothing else can fail).
func FuzzCheckLayer(f *testing.F) {
	for _, b := range layerSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		defer func(l, h int64) { rootfs.MaxLayerSize, rootfs.MaxHoles = l, h }(rootfs.MaxLayerSize, rootfs.MaxHoles)
		rootfs.MaxLayerSize, rootfs.MaxHoles = 4<<20, 16<<20
		d, err := checkLayer(context.Background(), bytes.NewReader(data), "layer 0")
		if err != nil {
			if fault.KindOf(err) != fault.BadInput {
				t.Fatalf("refused as %v: %v", fault.KindOf(err), err)
			}
			return
		}
		if len(data) >= 4 && data[0] != 0x1f && data[0] != 0x28 && d != sha(data) {
			t.Fatalf("an uncompressed layer's diff ID %s is not its digest %s", d, sha(data))
		}
	})
}

// FuzzManifest feeds arbitrary bytes to the readers of manifests and
// indexes a base is pinned and opened by: pinFromManifest, CheckPin's
// comparison, v1.ParseManifest and diffIDs. None may panic; a pin names
// only platforms with an OS and an architecture (or the single image's
// placeholder), and diffIDs accepts only as many as the manifest's layers.
func FuzzManifest(f *testing.F) {
	d := sha([]byte("x"))
	for _, s := range manifestSeeds() {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, raw, config []byte) {
		p, err := pinFromManifest(d, raw)
		if err == nil {
			for k := range p.Platforms {
				if k == "" && len(p.Platforms) != 1 {
					t.Fatalf("a placeholder beside other platforms: %v", p.Platforms)
				}
			}
			if _, single := p.Platforms[""]; !single {
				p.PlatformManifest("linux/amd64")
			}
			// A pin compared with itself holds.
			if err := samePlatforms(p, p, "ref"); err != nil {
				t.Fatalf("a pin does not match itself: %v", err)
			}
		}
		if m, err := v1.ParseManifest(bytes.NewReader(raw)); err == nil {
			ids, err := diffIDs(config, m, "ref")
			if err == nil && len(ids) != len(m.Layers) {
				t.Fatalf("%d diff IDs for %d layers", len(ids), len(m.Layers))
			}
			var cf map[string]any
			if err != nil && json.Unmarshal(config, &cf) == nil && fault.KindOf(err) != fault.BadInput {
				t.Fatalf("refused as %v: %v", fault.KindOf(err), err)
			}
		}
	})
}

func layerSeeds(t testing.TB) map[string][]byte {
	tarball := hostile.Tar(hostile.Entry{Name: "etc/os-release", Type: '0', Data: []byte("ID=seed\n")})
	return map[string][]byte{
		"tar":              tarball,
		"gzip":             gz(t, tarball),
		"zstd":             zst(t, tarball),
		"gzip-bad-tar":     gz(t, hostile.BadChecksum()),
		"gzip-truncated":   gz(t, tarball)[:30],
		"gzip-two-members": append(gz(t, tarball), gz(t, make([]byte, 1024))...),
		"gzip-sparse":      gz(t, hostile.Sparse("s", 1<<20, []byte("x"))),
	}
}

func manifestSeeds() [][2][]byte {
	d := sha([]byte("x"))
	return [][2][]byte{
		{[]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + d.String() + `","size":1,"platform":{"os":"linux","architecture":"amd64"}},{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"` + d.String() + `","size":1}]}`), []byte(`{"rootfs":{"diff_ids":[]}}`)},
		{[]byte(`{"schemaVersion":2,"config":{"digest":"` + d.String() + `","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"` + d.String() + `","size":3}]}`), []byte(`{"os":"linux","rootfs":{"type":"layers","diff_ids":["` + d.String() + `"]}}`)},
		{[]byte(`{"manifests":[{"platform":{}}]}`), []byte(`{"rootfs":{"diff_ids":["sha256:zz"]}}`)},
		{[]byte(`[]`), []byte(`null`)},
	}
}

// TestWriteFuzzSeeds writes the seeds into testdata/fuzz when
// REPRO_WRITE_FUZZ_SEEDS is set; go test runs them from there.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("REPRO_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("REPRO_WRITE_FUZZ_SEEDS is not set")
	}
	write := func(target, name string, args ...[]byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		os.MkdirAll(dir, 0o755)
		text := "go test fuzz v1\n"
		for _, a := range args {
			text += "[]byte(" + strconv.Quote(string(a)) + ")\n"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range layerSeeds(t) {
		write("FuzzCheckLayer", name, b)
	}
	for i, s := range manifestSeeds() {
		write("FuzzManifest", fmt.Sprintf("seed-%d", i), s[0], s[1])
	}
}
