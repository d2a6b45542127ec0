package diff

import (
	"archive/tar"
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/pkg/imageref"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

type file struct {
	name, body string
	mode       int64
	mtime      int64
	dir        bool
}

func tarOf(t *testing.T, files ...file) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: time.Unix(f.mtime, 0), Typeflag: tar.TypeReg, Size: int64(len(f.body)), Format: tar.FormatPAX}
		if f.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, f.body)
	}
	tw.Close()
	return b.Bytes()
}

func layerFrom(t *testing.T, data []byte, level int) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithCompressionLevel(level), tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func imageOf(t *testing.T, env []string, layers ...v1.Layer) *imageref.Artifact {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Config.Env = env
	img, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		if img, err = mutate.Append(img, mutate.Addendum{Layer: l, MediaType: types.OCILayer}); err != nil {
			t.Fatal(err)
		}
	}
	d, err := partial.Descriptor(img)
	if err != nil {
		t.Fatal(err)
	}
	return &imageref.Artifact{Descriptor: *d, Image: img}
}

var baseFiles = []file{
	{name: "etc/", dir: true, mode: 0o755},
	{name: "etc/motd", body: "hello\n", mode: 0o644},
	{name: "usr/bin/app", body: "binary", mode: 0o755},
}

func with(files []file, change func(f *file)) []file {
	out := append([]file(nil), files...)
	for i := range out {
		change(&out[i])
	}
	return out
}

// gnuTarLayer makes a layer with GNU tar, not repro, from files on disk,
// all with mtime 1700000000 except /etc/motd, which has motdTime.
func gnuTarLayer(t *testing.T, motdTime int64) []byte {
	t.Helper()
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no tar")
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc", "motd"), []byte("hello\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "usr", "bin"), 0o755)
	os.WriteFile(filepath.Join(dir, "usr", "bin", "app"), []byte("binary"), 0o755)
	os.Chmod(filepath.Join(dir, "etc", "motd"), 0o644)
	os.Chmod(filepath.Join(dir, "usr", "bin", "app"), 0o755)
	for _, p := range []string{"etc/motd", "usr/bin/app", "usr/bin", "usr", "etc"} {
		mt := time.Unix(1700000000, 0)
		if p == "etc/motd" {
			mt = time.Unix(motdTime, 0)
		}
		os.Chtimes(filepath.Join(dir, p), mt, mt)
	}
	var out bytes.Buffer
	cmd := exec.Command("tar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--format=posix",
		"--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime", "-C", dir, "-cf", "-", "etc", "usr")
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestFixtures(t *testing.T) {
	ctx := context.Background()
	env := []string{"PATH=/usr/bin"}
	ref := imageOf(t, env, layerFrom(t, tarOf(t, baseFiles...), 6))
	for _, tc := range []struct {
		name string
		a, b *imageref.Artifact
	}{
		{"identical", ref, imageOf(t, env, layerFrom(t, tarOf(t, baseFiles...), 6))},
		{"one-file-content", ref, imageOf(t, env, layerFrom(t, tarOf(t, with(baseFiles, func(f *file) {
			if f.name == "etc/motd" {
				f.body = "HELLO\n"
			}
		})...), 6))},
		{"one-mode", ref, imageOf(t, env, layerFrom(t, tarOf(t, with(baseFiles, func(f *file) {
			if f.name == "usr/bin/app" {
				f.mode = 0o700
			}
		})...), 6))},
		{"one-mtime-gnu-tar", imageOf(t, env, layerFrom(t, gnuTarLayer(t, 1700000000), 6)), imageOf(t, env, layerFrom(t, gnuTarLayer(t, 1700000042), 6))},
		{"one-config-field", ref, imageOf(t, []string{"PATH=/usr/local/bin:/usr/bin"}, layerFrom(t, tarOf(t, baseFiles...), 6))},
		{"compression-only", ref, imageOf(t, env, layerFrom(t, tarOf(t, baseFiles...), 1))},
		{"layer-count-same-content", ref, imageOf(t, env,
			layerFrom(t, tarOf(t, baseFiles[:2]...), 6), layerFrom(t, tarOf(t, baseFiles[2:]...), 6))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Compare(ctx, tc.a, tc.b, "a", "b")
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			rep.WriteText(&text)
			// Digests depend on library versions; the golden holds the
			// explanation with digests masked.
			got := maskDigests(text.String())
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("explanation differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
			if rep.Identical != (tc.name == "identical") {
				t.Errorf("Identical = %v", rep.Identical)
			}
		})
	}
}

func maskDigests(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "sha256:")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+7])
		s = s[i+7:]
		n := 0
		for n < len(s) && strings.ContainsRune("0123456789abcdef", rune(s[n])) {
			n++
		}
		if n > 0 {
			b.WriteString("…")
		}
		s = s[n:]
	}
}
