package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/layercache"
	"github.com/reprobuild/repro/pkg/spec"
)

// parallelSpec has layers of several sizes, one per platform (a template
// source), shared ones, accounts and an allowed secret, on two platforms.
const parallelSpec = `version: 1
name: par
platforms: [linux/amd64, linux/arm64]
layers:
  - name: bin
    contents:
      - {path: /app/bin, source: "bin-{{.Arch}}"}
  - name: big
    contents:
      - {path: /srv/big, source: big}
  - name: small
    contents:
      - {path: /etc/motd, content: "hi\n"}
  - name: keys
    contents:
      - {path: /etc/keys, source: keys}
  - name: per-arch
    contents:
      - {path: /srv/arch, source: "arch-{{.Arch}}"}
accounts:
  groups: [{name: app, gid: 1000}]
  users: [{name: app, uid: 1000, gid: 1000, home: /srv}]
secrets:
  allow:
    - {path: /etc/keys/id.pem, rule: private-key, reason: test}
`

// TestParallelLayersSameBytes: a multi-layer, two-platform build gives the
// same index digest, the same LayerDone reports in the same order, and the
// same log of secrets, whether its layers are written one at a time or
// several at once; cold and then warm from a layer cache too.
func TestParallelLayersSameBytes(t *testing.T) {
	files := map[string]string{
		"bin-amd64": "x86", "bin-arm64": "arm",
		"keys/id.pem": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+9Pv7z9Z6HnU3U0vP3mGQm0m3x3uYH0gWmH1xj1c8a\n-----END PRIVATE KEY-----\n",
	}
	for i := range 300 {
		files[fmt.Sprintf("big/d%02d/f%03d.txt", i%17, i)] = strings.Repeat(fmt.Sprintf("line %d of a file\n", i), 50+i*7)
		files[fmt.Sprintf("arch-amd64/a%03d", i)] = strings.Repeat("amd64 ", 100+i)
		files[fmt.Sprintf("arch-arm64/a%03d", i)] = strings.Repeat("arm64 ", 100+i)
	}
	s := setup(t, parallelSpec, files)
	run := func(jobs int, store *layercache.Store) (string, string) {
		t.Helper()
		o := opts(t, s)
		o.Jobs, o.Layers = jobs, store
		var mu sync.Mutex
		var order []string
		o.LayerDone = func(layer, platform, status string) {
			mu.Lock()
			order = append(order, layer+"/"+platform+"="+status)
			mu.Unlock()
		}
		res, err := Build(context.Background(), s, o)
		if err != nil {
			t.Fatalf("jobs %d: %v", jobs, err)
		}
		return res.Descriptor.Digest.String(), strings.Join(order, ",")
	}
	want, wantOrder := run(1, nil)
	for _, jobs := range []int{2, 4, 8} {
		for range 3 {
			if got, order := run(jobs, nil); got != want || order != wantOrder {
				t.Fatalf("jobs %d: %s\n%s\nwant, as with one job, %s\n%s", jobs, got, order, want, wantOrder)
			}
		}
	}
	if !strings.Contains(wantOrder, "bin/linux/arm64=built") || strings.Contains(wantOrder, "big/linux/arm64") {
		t.Fatalf("reports: %s (a shared layer is reported once, a per-platform one per platform)", wantOrder)
	}

	// Through the layer cache, cold and then warm: as with one job (the
	// accounts layer, the same for both platforms, is cached for the
	// second: the first's is in the store by then).
	one := layercache.Open(filepath.Join(t.TempDir(), "layers"), time.Now, "test-builder")
	if got, order := run(1, one); got != want || !strings.HasSuffix(order, "accounts/linux/arm64=cached") {
		t.Fatalf("cached, cold, 1 job: %s %s, want %s", got, order, want)
	}
	_, coldOrder := run(1, layercache.Open(filepath.Join(t.TempDir(), "layers"), time.Now, "test-builder"))
	for range 3 {
		store := layercache.Open(filepath.Join(t.TempDir(), "layers"), time.Now, "test-builder")
		if got, order := run(4, store); got != want || order != coldOrder {
			t.Fatalf("cached, cold, 4 jobs: %s %s, want, as with one job, %s %s", got, order, want, coldOrder)
		}
		got, order := run(4, store)
		if got != want || order != strings.ReplaceAll(wantOrder, "=built", "=cached") {
			t.Fatalf("cached, warm, 4 jobs: %s %s, want %s and every layer cached", got, order, want)
		}
	}
}

// BenchmarkLayerJobs builds five layers of about 8 MB each, on two
// platforms (one layer per platform), with one job and with the default.
func BenchmarkLayerJobs(b *testing.B) {
	files := map[string]string{}
	for l := range 5 {
		for i := range 64 {
			files[fmt.Sprintf("l%d/f%03d", l, i)] = strings.Repeat(fmt.Sprintf("layer %d file %d: some text that compresses as source does\n", l, i), 2200)
		}
	}
	yaml := "version: 1\nname: jobs\nplatforms: [linux/amd64, linux/arm64]\nlayers:\n"
	for l := range 5 {
		src := fmt.Sprintf("l%d/", l)
		if l == 4 {
			src = "l4/{{if eq .Arch \"amd64\"}}{{end}}"
		}
		yaml += fmt.Sprintf("  - name: l%d\n    contents:\n      - {path: /l%d, source: %q}\n", l, l, src)
	}
	dir := b.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(data), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "repro.yaml"), []byte(yaml), 0o644)
	s, err := spec.Load(filepath.Join(dir, "repro.yaml"), spec.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, jobs := range []int{1, 0} {
		b.Run(fmt.Sprintf("jobs=%d", jobs), func(b *testing.B) {
			for b.Loop() {
				o := Options{Values: values(s), Compression: compress.Gzip, WorkDir: b.TempDir(), Cache: cache.New(b.TempDir()), Jobs: jobs}
				if _, err := Build(context.Background(), s, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The first failing layer in the spec's order is the one a failed build
// names, whether it fails as it is written (a path written twice, found by
// the writer) or as it is prepared (a FIFO in its source, found by the
// walk), and whatever the number of jobs: the error of a serial build.
func TestParallelLayersFirstError(t *testing.T) {
	const yaml = `version: 1
name: errs
layers:
  - name: fine
    contents:
      - {path: /srv/fine, source: fine}
  - name: twice
    contents:
      - {path: /etc/d, source: d}
      - {path: /etc/d/motd, content: "b\n"}
  - name: fifo
    contents:
      - {path: /srv/pipes, source: pipes}
`
	files := map[string]string{"pipes/ok": "x", "d/motd": "a\n"}
	for i := range 200 {
		files[fmt.Sprintf("fine/f%03d", i)] = strings.Repeat("fine ", 1000+i)
	}
	s := setup(t, yaml, files)
	if err := syscall.Mkfifo(filepath.Join(s.Dir, "pipes", "p"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, jobs := range []int{1, 3} {
		for _, cached := range []bool{false, true} {
			o := opts(t, s)
			o.Jobs = jobs
			if cached {
				o.Layers = layercache.Open(t.TempDir(), time.Now, "test")
			}
			_, err := Build(context.Background(), s, o)
			if err == nil || !strings.Contains(err.Error(), "layers[1]") || !strings.Contains(err.Error(), "/etc/d/motd is written twice") {
				t.Errorf("jobs %d, layer cache %v: %v; want layers[1]'s /etc/d/motd written twice", jobs, cached, err)
			}
		}
	}
}
