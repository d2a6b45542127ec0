package verify

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reprobuild/repro/pkg/attest"
	"github.com/reprobuild/repro/pkg/build"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/output"
	"github.com/reprobuild/repro/pkg/spec"
)

const appSpec = `version: 1
name: app
platforms: [linux/amd64, linux/arm64]
vars: {env: dev}
layers:
  - name: files
    contents:
      - {path: /etc/motd, source: motd}
      - {path: /srv, source: site/}
annotations: {org.opencontainers.image.version: "{{.Version}}", env: "{{.Vars.env}}"}
`

// specFile writes the app's build context and returns its spec file.
func specFile(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string]string{"repro.yaml": appSpec, "motd": "hi\n", "site/index.html": "<p>hi</p>\n", "site/a/b.css": "b{}\n"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "repro.yaml")
}

func request(t *testing.T, file string) build.Request {
	t.Helper()
	env := time.Unix(1700000000, 0)
	return build.Request{File: file, SourceDateEpoch: &env, Version: "1.0.0", Cache: cache.New(t.TempDir()), WorkDir: t.TempDir()}
}

func write(t *testing.T, b *build.Built, dir string) imageref.Reference {
	t.Helper()
	ref := imageref.Reference{Transport: imageref.OCI, Path: dir, Tag: "v1"}
	if err := output.Write(context.Background(), ref, b.Artifact, output.Options{}); err != nil {
		t.Fatal(err)
	}
	return ref
}

// TestRebuild: a rebuild with the same inputs is verified against the
// digest and against the published layout; other inputs are not, and the
// difference is explained; a layout that names the digest but lost a blob
// is damaged, not verified.
func TestRebuild(t *testing.T) {
	ctx := context.Background()
	file := specFile(t)
	b, err := build.Run(ctx, request(t, file))
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := Rebuild(ctx, request(t, file), Target{Digest: b.Descriptor.Digest.String()})
	if err != nil || !res.Verified || res.Rebuilt != b.Descriptor.Digest.String() {
		t.Fatalf("same inputs, --expect: %+v, %v", res, err)
	}
	ref := write(t, b, filepath.Join(t.TempDir(), "layout"))
	open := func(r imageref.Reference) *imageref.Artifact {
		a, err := imageref.Open(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return a
	}
	res, _, err = Rebuild(ctx, request(t, file), Target{Artifact: open(ref), Name: "oci:layout:v1", Local: true})
	if err != nil || !res.Verified {
		t.Fatalf("same inputs, --against: %+v, %v", res, err)
	}
	other := request(t, file)
	other.Version = "2.0.0"
	res, _, err = Rebuild(ctx, other, Target{Artifact: open(ref), Name: "oci:layout:v1", Local: true})
	if err != nil || res.Verified || res.Diff == nil {
		t.Fatalf("another version: %+v, %v", res, err)
	}
	var text strings.Builder
	res.Diff.WriteText(&text)
	if !strings.Contains(text.String(), "annotations.org.opencontainers.image.version") {
		t.Errorf("the diff does not name the annotation:\n%s", text.String())
	}
	// Damage one layer blob of a copy of the layout.
	damaged := filepath.Join(t.TempDir(), "damaged")
	if err := os.CopyFS(damaged, os.DirFS(ref.Path)); err != nil {
		t.Fatal(err)
	}
	imgs, err := b.PlatformImages("")
	if err != nil {
		t.Fatal(err)
	}
	img, err := imgs[0].Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img[0].Digest()
	if err := os.WriteFile(filepath.Join(damaged, "blobs", "sha256", d.Hex), []byte("not the layer"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, _, err = Rebuild(ctx, request(t, file), Target{Artifact: open(imageref.Reference{Transport: imageref.OCI, Path: damaged, Tag: "v1"}), Local: true})
	if err != nil || res.Verified || res.Damaged == "" {
		t.Errorf("damaged layout: %+v, %v", res, err)
	}
}

// TestRebuildTakesTheRecordedFormat: an image built in format 1 verifies
// with a request that names no format (the rebuild takes the one its
// history records, and says so); a request that names the other format
// does not, and a note names the format recorded.
func TestRebuildTakesTheRecordedFormat(t *testing.T) {
	ctx := context.Background()
	file := specFile(t)
	old := request(t, file)
	old.Format = compress.Format1
	b, err := build.Run(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	a, err := imageref.Open(ctx, write(t, b, filepath.Join(t.TempDir(), "layout")))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	target := Target{Artifact: a, Name: "oci:old:v1", Local: true}
	res, rebuilt, err := Rebuild(ctx, request(t, file), target)
	if err != nil || !res.Verified || rebuilt.Format != compress.Format1 || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "oci:old:v1's history records it") {
		t.Fatalf("no format asked: %+v, %v", res, err)
	}
	newer := request(t, file)
	newer.Format = compress.Format2
	res, _, err = Rebuild(ctx, newer, target)
	if err != nil || res.Verified || len(res.Notes) == 0 || !strings.Contains(strings.Join(res.Notes, "\n"), "output format "+compress.Format1.String()) {
		t.Errorf("format 2 asked: %+v, %v", res, err)
	}
}

// TestFromProvenance: a provenance maps straight into the request: the
// version, platforms, compression, vars and epoch it records, except what
// the caller gave; the rebuild then has the provenance's digest.
func TestFromProvenance(t *testing.T) {
	ctx := context.Background()
	file := specFile(t)
	req := request(t, file)
	req.Version, req.Compression, req.Vars = "3.1.4", compress.Zstd, map[string]string{"env": "prod"}
	req.Platforms = []spec.Platform{{OS: "linux", Arch: "arm64"}}
	b, err := build.Run(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Provenance("test")
	if err != nil {
		t.Fatal(err)
	}
	p, err := attest.ParseProvenance(raw)
	if err != nil {
		t.Fatal(err)
	}
	bare := build.Request{File: file, Cache: cache.New(t.TempDir()), WorkDir: t.TempDir()}
	notes, err := FromProvenance(&bare, p, Given{})
	if err != nil {
		t.Fatal(err)
	}
	if bare.Version != "3.1.4" || bare.Compression != compress.Zstd || bare.Vars["env"] != "prod" || len(bare.Platforms) != 1 || bare.Platforms[0].Arch != "arm64" ||
		bare.Epoch == nil || bare.Epoch.Time.Unix() != 1700000000 {
		t.Errorf("request from provenance: %+v", bare)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], `version "3.1.4"`) {
		t.Errorf("notes: %q", notes)
	}
	res, _, err := Rebuild(ctx, bare, Target{Digest: b.Descriptor.Digest.String()})
	if err != nil || !res.Verified {
		t.Errorf("rebuilt from the provenance: %+v, %v", res, err)
	}
	mine := build.Request{File: file, Version: "9", Compression: compress.Gzip}
	if _, err := FromProvenance(&mine, p, Given{Version: true, Compression: true}); err != nil {
		t.Fatal(err)
	}
	if mine.Version != "9" || mine.Compression != compress.Gzip || mine.Vars["env"] != "prod" {
		t.Errorf("given fields overridden: %+v", mine)
	}
}

// TestCheck: the perturbed rebuild of a reproducible build is identical;
// a rebuilder that changes the image is caught, with the diff.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	file := specFile(t)
	req := request(t, file)
	b, err := build.Run(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var sawCopy string
	spy := func(ctx context.Context, r build.Request, ref imageref.Reference) (string, error) {
		sawCopy = r.File
		if r.Values == nil || r.Epoch == nil || r.Values.Version != "1.0.0" {
			t.Errorf("the rebuild's request lacks the first build's values: %+v", r)
		}
		return InProcess(ctx, r, ref)
	}
	res, err := Check(ctx, b, req, CheckOptions{TempDir: t.TempDir(), Rebuild: spy})
	if err != nil || !res.Identical() || res.Diff != nil {
		t.Fatalf("check: %+v, %v", res, err)
	}
	if filepath.Dir(sawCopy) == filepath.Dir(file) {
		t.Errorf("the rebuild read the original context %s", sawCopy)
	}
	liar := func(ctx context.Context, r build.Request, ref imageref.Reference) (string, error) {
		v := *r.Values
		v.Version = "not-1.0.0"
		r.Values = &v
		return InProcess(ctx, r, ref)
	}
	res, err = Check(ctx, b, req, CheckOptions{TempDir: t.TempDir(), Rebuild: liar})
	if err != nil || res.Identical() || res.Diff == nil {
		t.Fatalf("a different rebuild: %+v, %v", res, err)
	}
}

// TestPerturbedCopy: the copy holds the same bytes and links, without
// .git and the skipped paths, with group and other bits cleared, other
// mtimes and atimes, another owner when run as root, and an xattr where
// the file system takes one; entries are created in reverse order.
func TestPerturbedCopy(t *testing.T) {
	src := t.TempDir()
	for name, data := range map[string]string{"a": "1", "d/b": "2", "d/e/c": "3", ".git/HEAD": "x", "out/index.json": "{}"} {
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o664); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("d/b", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy")
	skip := filepath.Join(src, "out")
	if err := PerturbedCopy(src, dst, func(p string) bool { return p == skip }); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{".git", "out"} {
		if _, err := os.Lstat(filepath.Join(dst, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s copied: %v", gone, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != "d/b" {
		t.Errorf("link: %q %v", l, err)
	}
	var mtimes []int64
	for _, name := range []string{"d/e/c", "d/b", "a"} { // reverse order: c first
		p := filepath.Join(dst, name)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want group and other bits cleared", name, fi.Mode())
		}
		st := fi.Sys().(*syscall.Stat_t)
		orig, _ := os.ReadFile(filepath.Join(src, name))
		if string(data) != string(orig) {
			t.Errorf("%s: %q, want %q", name, data, orig)
		}
		if st.Atim.Sec == st.Mtim.Sec {
			t.Errorf("%s: atime = mtime", name)
		}
		if os.Geteuid() == 0 && (st.Uid != 4242 || st.Gid != 4343) {
			t.Errorf("%s: owner %d:%d, want 4242:4343", name, st.Uid, st.Gid)
		}
		mtimes = append(mtimes, st.Mtim.Sec)
		buf := make([]byte, 64)
		if n, err := syscall.Getxattr(p, "user.repro-test", buf); err == nil && !strings.HasPrefix(string(buf[:n]), "perturbed-") {
			t.Errorf("%s: xattr %q", name, buf[:n])
		}
	}
	if !(mtimes[0] < mtimes[1] && mtimes[1] < mtimes[2]) {
		t.Errorf("mtimes %v: the copy was not made in reverse order", mtimes)
	}
}

// TestSignaturesRefuseAPrivateKey: a private key given to verify with is
// bad input, ErrPrivateKey.
func TestSignaturesRefuseAPrivateKey(t *testing.T) {
	_, err := Signatures(context.Background(), imageref.Reference{Transport: imageref.OCI, Path: t.TempDir()},
		[]byte("-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----\n"), SignatureOptions{})
	if !errors.Is(err, ErrPrivateKey) || fault.KindOf(err) != fault.BadInput {
		t.Errorf("private key: %v", err)
	}
}
