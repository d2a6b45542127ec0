package e2e

// End-to-end tests of `repro gc`: layouts and a docker-registry repository
// holding images built by repro at three epochs (100, 40 and 1 days before
// a fixed "now"), signed the way cosign signs (sha256-<hex>.sig tags, and
// cosign's layout kinds), collected by the binary; afterwards the layout
// still passes oci-image-tool validate and skopeo inspect, and skopeo
// copies every image that stayed (every blob read and verified).

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/internal/testtool"
)

// gcNow is the fixed "now" of the gc tests.
const gcNow = 1700000000

var gcAges = []int{100, 40, 1} // days before gcNow

// gcSpecs writes a copy of the static-site example for each age, its
// epoch that many days before gcNow, and returns their paths by age.
func gcSpecs(t *testing.T) (string, map[int]string) {
	t.Helper()
	examples := copyExamples(t, false)
	base, err := os.ReadFile(filepath.Join(examples, "static-site", "repro.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	epoch := regexp.MustCompile(`(?m)^epoch: .*$`)
	specs := map[int]string{}
	for _, d := range gcAges {
		p := filepath.Join(examples, "static-site", fmt.Sprintf("age%d.yaml", d))
		spec := epoch.ReplaceAll(base, []byte(fmt.Sprintf("epoch: %d", gcNow-d*86400)))
		if err := os.WriteFile(p, spec, 0o644); err != nil {
			t.Fatal(err)
		}
		specs[d] = p
	}
	return examples, specs
}

// gcSignature is a cosign signature image of digest: one simple-signing
// payload layer, annotated as cosign annotates it.
func gcSignature(t *testing.T, digest string) v1.Image {
	t.Helper()
	payload := fmt.Sprintf(`{"critical":{"identity":{"docker-reference":"example"},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":null}`, digest)
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer:       static.NewLayer([]byte(payload), "application/vnd.dev.cosign.simplesigning.v1+json"),
		Annotations: map[string]string{"dev.cosignproject.cosign/signature": "MEUCIQ=="},
	})
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	return mutate.ConfigMediaType(img, types.OCIConfigJSON)
}

func gcSigTag(digest, suffix string) string {
	return "sha256-" + strings.TrimPrefix(digest, "sha256:") + "." + suffix
}

// gcLayoutAdd writes img's blobs into the layout and appends an entry for
// it to index.json with the annotations given.
func gcLayoutAdd(t *testing.T, layout string, img v1.Image, ann map[string]string) string {
	t.Helper()
	write := func(data []byte) {
		sum := sha256.Sum256(data)
		if err := os.WriteFile(filepath.Join(layout, "blobs", "sha256", hex.EncodeToString(sum[:])), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(rc)
		rc.Close()
		write(b.Bytes())
	}
	cfg, _ := img.RawConfigFile()
	write(cfg)
	raw, _ := img.RawManifest()
	write(raw)
	mt, _ := img.MediaType()
	sum := sha256.Sum256(raw)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	gcIndexEdit(t, layout, func(entries []map[string]any) []map[string]any {
		return append(entries, map[string]any{"mediaType": string(mt), "digest": digest, "size": len(raw), "annotations": ann})
	})
	return digest
}

func gcIndexEdit(t *testing.T, layout string, edit func([]map[string]any) []map[string]any) {
	t.Helper()
	p := filepath.Join(layout, "index.json")
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var idx map[string]any
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	var entries []map[string]any
	for _, e := range idx["manifests"].([]any) {
		entries = append(entries, e.(map[string]any))
	}
	idx["manifests"] = edit(entries)
	out, _ := json.Marshal(idx)
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// gcEntries lists index.json's entries as "tag" (or "digest" untagged).
func gcEntries(t *testing.T, layout string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range idx.Manifests {
		if tag := e.Annotations["org.opencontainers.image.ref.name"]; tag != "" {
			out = append(out, tag)
		} else {
			out = append(out, e.Digest)
		}
	}
	return out
}

// gcFiles hashes every file of a directory tree.
func gcFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		sum := sha256.Sum256(b)
		out[strings.TrimPrefix(p, dir)] = hex.EncodeToString(sum[:])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type gcReport struct {
	DryRun  bool
	Deleted []struct {
		Digest, Kind, Subject string
		Tags                  []string
		AgeDays               *int
	}
	Kept []struct {
		Digest, Kind, Reason string
		Tags                 []string
	}
	Blobs     []struct{ Digest string }
	BlobBytes int64
}

func gcRun(t *testing.T, wantCode int, args ...string) gcReport {
	t.Helper()
	r := invocation{}.run(t, append([]string{"gc", "--json", "--now", strconv.Itoa(gcNow)}, args...)...)
	if r.code != wantCode {
		t.Fatalf("repro gc %q: exit %d, want %d\n%s%s", args, r.code, wantCode, r.stdout, r.stderr)
	}
	var rep gcReport
	if wantCode == 0 {
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("gc --json: %v\n%s", err, r.stdout)
		}
	}
	return rep
}

func gcTags(items []struct {
	Digest, Kind, Subject string
	Tags                  []string
	AgeDays               *int
}) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Tags...)
	}
	sort.Strings(out)
	return out
}

// TestE2EGCLayout: three epochs in one layout, signed; gc --dry-run
// changes no byte; gc with 30 days keeps the newest image and its
// signatures (cosign's tag and cosign's layout kinds), removes the others
// with theirs and every blob only they used; the layout then passes
// oci-image-tool validate and skopeo inspect and copy.
func TestE2EGCLayout(t *testing.T) {
	t.Parallel()
	tools := testtool.Require(t, "oci-image-tool", "skopeo")
	if tools == nil {
		return
	}
	examples, specs := gcSpecs(t)
	layout := filepath.Join(t.TempDir(), "layout")
	digests := map[int]string{}
	for _, d := range gcAges {
		r := repro(t, examples, "build", "-q", "--offline", "-f", specs[d], "-o", fmt.Sprintf("oci:%s:age%d", layout, d))
		digests[d] = lastLine(r.stdout)
	}
	// Every image signed under cosign's tags, the newest in cosign's layout
	// format as well (kind annotations, as repro sign writes a layout),
	// and attested. (Entries with a kind and no tag, as `cosign save`
	// writes them, are pkg/gc's unit tests': oci-image-tool 1.0.0-rc1
	// calls a --ref "not unique" when an untagged entry follows it.)
	for _, d := range []int{100, 40, 1} {
		gcLayoutAdd(t, layout, gcSignature(t, digests[d]), map[string]string{
			"org.opencontainers.image.ref.name": gcSigTag(digests[d], "sig"), "kind": "dev.cosignproject.cosign/sigs"})
	}
	gcIndexEdit(t, layout, func(e []map[string]any) []map[string]any {
		for _, x := range e {
			if x["digest"] == digests[1] {
				x["annotations"].(map[string]any)["kind"] = "dev.cosignproject.cosign/image"
			}
		}
		return e
	})
	att, _ := mutate.Annotations(gcSignature(t, digests[1]), map[string]string{"attestation": "1"}).(v1.Image)
	gcLayoutAdd(t, layout, att, map[string]string{
		"org.opencontainers.image.ref.name": gcSigTag(digests[1], "att"), "kind": "dev.cosignproject.cosign/atts"})

	before := gcFiles(t, layout)
	dry := gcRun(t, 0, "oci:"+layout, "--keep-days", "30", "--dry-run")
	if !dry.DryRun || len(dry.Deleted) != 4 || len(dry.Blobs) == 0 {
		t.Errorf("dry run: %+v", dry)
	}
	after := gcFiles(t, layout)
	if len(before) != len(after) {
		t.Fatalf("--dry-run changed the layout: %d files before, %d after", len(before), len(after))
	}
	for p, h := range before {
		if after[p] != h {
			t.Errorf("--dry-run changed %s", p)
		}
	}

	rep := gcRun(t, 0, "oci:"+layout, "--keep-days", "30")
	wantGone := []string{"age100", "age40", gcSigTag(digests[100], "sig"), gcSigTag(digests[40], "sig")}
	sort.Strings(wantGone)
	if got := gcTags(rep.Deleted); !slices.Equal(got, wantGone) {
		t.Errorf("deleted %v, want %v", got, wantGone)
	}
	if got, want := gcEntries(t, layout), []string{"age1", gcSigTag(digests[1], "sig"), gcSigTag(digests[1], "att")}; !slices.Equal(got, want) {
		t.Errorf("index.json holds %v, want %v", got, want)
	}
	for _, d := range []int{100, 40} {
		if _, err := os.Stat(filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(digests[d], "sha256:"))); err == nil {
			t.Errorf("the manifest of the %d-day image stayed", d)
		}
	}
	// The consumers read what stayed.
	// (oci-image-tool refuses cosign's layer media types: it validates the
	// image, skopeo reads the signatures.)
	gcValidate(t, layout, "age1")
	var inspected struct{ Digest, Created string }
	e2eJSON(t, testtool.Run(t, "skopeo", "inspect", "oci:"+layout+":age1"), &inspected)
	if inspected.Digest != digests[1] || !strings.HasPrefix(inspected.Created, time.Unix(gcNow-86400, 0).UTC().Format("2006-01-02T15:04:05")) {
		t.Errorf("skopeo inspect: %+v", inspected)
	}
	testtool.Run(t, "skopeo", "copy", "--quiet", "oci:"+layout+":age1", "oci:"+filepath.Join(t.TempDir(), "copy")+":age1")
	for _, suffix := range []string{"sig", "att"} {
		testtool.Run(t, "skopeo", "inspect", "--raw", "oci:"+layout+":"+gcSigTag(digests[1], suffix))
		testtool.Run(t, "skopeo", "copy", "--quiet", "oci:"+layout+":"+gcSigTag(digests[1], suffix), "oci:"+filepath.Join(t.TempDir(), "sig")+":s")
	}
	if err := exec.Command("skopeo", "inspect", "oci:"+layout+":age100").Run(); err == nil {
		t.Error("skopeo still finds age100")
	}
	// Nothing more to collect.
	again := gcRun(t, 0, "oci:"+layout, "--keep-days", "30")
	if len(again.Deleted) != 0 || len(again.Blobs) != 0 {
		t.Errorf("a second gc deleted %+v", again)
	}
}

// TestE2EGCLayoutIndexAndKeepLast: an old image that a kept index uses
// stays; --keep-last keeps the newest however old; epoch 0 is old; the
// text report says why.
func TestE2EGCLayoutIndexAndKeepLast(t *testing.T) {
	t.Parallel()
	if testtool.Require(t, "skopeo") == nil {
		return
	}
	examples, specs := gcSpecs(t)
	layout := filepath.Join(t.TempDir(), "layout")
	digests := map[int]string{}
	for _, d := range gcAges {
		r := repro(t, examples, "build", "-q", "--offline", "-f", specs[d], "-o", fmt.Sprintf("oci:%s:age%d", layout, d))
		digests[d] = lastLine(r.stdout)
	}
	// An index over the 100-day and 1-day images: it is 1 day old.
	idx := map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []map[string]any{}}
	var children []map[string]any
	for i, d := range []int{100, 1} {
		raw, err := os.ReadFile(filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(digests[d], "sha256:")))
		if err != nil {
			t.Fatal(err)
		}
		children = append(children, map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digests[d], "size": len(raw),
			"platform": map[string]string{"os": "linux", "architecture": []string{"amd64", "arm64"}[i]}})
	}
	idx["manifests"] = children
	raw, _ := json.Marshal(idx)
	sum := sha256.Sum256(raw)
	idxDigest := "sha256:" + hex.EncodeToString(sum[:])
	os.WriteFile(filepath.Join(layout, "blobs", "sha256", hex.EncodeToString(sum[:])), raw, 0o644)
	gcIndexEdit(t, layout, func(e []map[string]any) []map[string]any {
		return append(e, map[string]any{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": idxDigest, "size": len(raw),
			"annotations": map[string]string{"org.opencontainers.image.ref.name": "multi"}})
	})
	r := invocation{}.run(t, "gc", "oci:"+layout, "--keep-days", "30", "--now", strconv.Itoa(gcNow))
	if r.code != 0 {
		t.Fatalf("gc: exit %d\n%s", r.code, r.stderr)
	}
	if got, want := gcEntries(t, layout), []string{"age100", "age1", "multi"}; !slices.Equal(got, want) {
		t.Errorf("index.json holds %v, want %v\n%s", got, want, r.stdout)
	}
	for _, want := range []string{"used by the kept index " + idxDigest, "age40, created 2023-10-05 (40 days old): created more than 30 days ago", "1 deleted, 3 kept"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the report lacks %q:\n%s", want, r.stdout)
		}
	}
	testtool.Run(t, "skopeo", "copy", "--quiet", "--all", "oci:"+layout+":multi", "oci:"+filepath.Join(t.TempDir(), "copy")+":multi")

	// --keep-last 0 with --keep-days 0: all dated images go, the index
	// first of all, and its images with it.
	rep := gcRun(t, 0, "oci:"+layout, "--keep-days", "0", "--keep-last", "0")
	if len(rep.Deleted) != 3 || len(gcEntries(t, layout)) != 0 {
		t.Errorf("keep nothing: deleted %+v, left %v", rep.Deleted, gcEntries(t, layout))
	}
	if left, _ := os.ReadDir(filepath.Join(layout, "blobs", "sha256")); len(left) != 0 {
		t.Errorf("%d blobs left in an empty layout", len(left))
	}

	// Epoch 0 is old; --keep-last keeps the newest even so.
	zero := filepath.Join(t.TempDir(), "zero")
	spec, _ := os.ReadFile(specs[1])
	os.WriteFile(specs[1], regexp.MustCompile(`(?m)^epoch: .*$`).ReplaceAll(spec, []byte("epoch: 0")), 0o644)
	repro(t, examples, "build", "-q", "--offline", "-f", specs[1], "-o", "oci:"+zero+":zero")
	repro(t, examples, "build", "-q", "--offline", "-f", specs[40], "-o", "oci:"+zero+":age40")
	rep = gcRun(t, 0, "oci:"+zero, "--keep-days", "30")
	if got := gcTags(rep.Deleted); !slices.Equal(got, []string{"zero"}) {
		t.Errorf("epoch 0: deleted %v, want [zero]", got)
	}
	if got := gcEntries(t, zero); !slices.Equal(got, []string{"age40"}) || rep.Kept[0].Reason != "one of the newest 1" {
		t.Errorf("left %v, kept %+v", got, rep.Kept)
	}
}

func TestE2EGCUsage(t *testing.T) {
	t.Parallel()
	layout := filepath.Join(t.TempDir(), "layout")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"gc", "oci:" + layout}, 2, "--keep-days is required"},
		{[]string{"gc", "oci:" + layout + ":v1", "--keep-days", "1"}, 2, "without a tag"},
		{[]string{"gc", "oci:" + layout, "--keep-days", "1"}, 2, "not an OCI layout"},
		{[]string{"gc", "oci:" + layout, "--keep-days", "-1"}, 2, "count from 0"},
		{[]string{"gc", "127.0.0.1:1/repo:tag", "--keep-days", "1"}, 2, "without a tag or digest"},
		{[]string{"gc", "docker-archive:x.tar", "--keep-days", "1"}, 2, "works on OCI layouts"},
		{[]string{"gc", "oci:" + layout, "--keep-days", "1", "--now", "yesterday"}, 2, "RFC 3339"},
		{[]string{"gc", "127.0.0.1:1/repo", "--keep-days", "1"}, 3, "listing the tags"},
	} {
		r := invocation{}.run(t, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("repro %q: exit %d, stderr %q; want %d and %q", c.args, r.code, r.stderr, c.code, c.want)
		}
	}
}

// gcRegistry starts docker-registry on a free loopback port, deletes
// enabled or not, and returns its host; it stops when the test ends.
func gcRegistry(t *testing.T, deletes bool) string {
	t.Helper()
	tools := testtool.Require(t, "docker-registry")
	if tools == nil {
		return ""
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nhttp:\n  addr: %s\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: %v\n", host, filepath.Join(dir, "data"), deletes)
	p := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(tools["docker-registry"], "serve", p)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-done:
			t.Fatalf("docker-registry exited:\n%s", logs.String())
		default:
		}
		if resp, err := http.Get("http://" + host + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return host
			}
		}
	}
	t.Fatalf("docker-registry did not come up on %s", host)
	return ""
}

// TestE2EGCRegistry: the three epochs pushed by repro to docker-registry,
// with signatures under cosign's tags; gc deletes the two old images and
// their signatures through the API, keeps the newest and its signature.
// A registry that refuses deletes is an operational failure with a hint.
func TestE2EGCRegistry(t *testing.T) {
	t.Parallel()
	if testtool.Require(t, "docker-registry", "skopeo") == nil {
		return
	}
	host := gcRegistry(t, true)
	examples, specs := gcSpecs(t)
	repo := host + "/gc/app"
	digests := map[int]string{}
	for _, d := range gcAges {
		r := repro(t, examples, "build", "-q", "--offline", "-f", specs[d], "-o", fmt.Sprintf("%s:age%d", repo, d))
		digests[d] = lastLine(r.stdout)
		ref, err := name.ParseReference(repo + ":" + gcSigTag(digests[d], "sig"))
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, gcSignature(t, digests[d])); err != nil {
			t.Fatal(err)
		}
	}
	tags := func() []string {
		t.Helper()
		var out struct{ Tags []string }
		e2eJSON(t, testtool.Run(t, "skopeo", "list-tags", "--tls-verify=false", "docker://"+repo), &out)
		sort.Strings(out.Tags)
		return out.Tags
	}
	all := tags()
	if len(all) != 6 {
		t.Fatalf("pushed tags: %v", all)
	}
	dry := gcRun(t, 0, repo, "--keep-days", "30", "--dry-run")
	if len(dry.Deleted) != 4 || !slices.Equal(tags(), all) {
		t.Errorf("dry run: deleted %d, tags now %v", len(dry.Deleted), tags())
	}
	rep := gcRun(t, 0, repo, "--keep-days", "30")
	if len(rep.Deleted) != 4 {
		t.Errorf("deleted %+v", rep.Deleted)
	}
	want := []string{"age1", gcSigTag(digests[1], "sig")}
	sort.Strings(want)
	if got := tags(); !slices.Equal(got, want) {
		t.Errorf("tags left %v, want %v", got, want)
	}
	var inspected struct{ Digest string }
	e2eJSON(t, testtool.Run(t, "skopeo", "inspect", "--tls-verify=false", "docker://"+repo+":age1"), &inspected)
	if inspected.Digest != digests[1] {
		t.Errorf("age1 is %s, want %s", inspected.Digest, digests[1])
	}
	for _, d := range []int{100, 40} {
		if err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+repo+"@"+digests[d]).Run(); err == nil {
			t.Errorf("the %d-day manifest is still in the registry", d)
		}
	}

	// A registry without deletes.
	ro := gcRegistry(t, false)
	roRepo := ro + "/gc/app"
	for _, d := range []int{100, 1} {
		repro(t, examples, "build", "-q", "--offline", "-f", specs[d], "-o", fmt.Sprintf("%s:age%d", roRepo, d))
	}
	r := invocation{}.run(t, "gc", roRepo, "--keep-days", "30", "--now", strconv.Itoa(gcNow))
	if r.code != 3 || !strings.Contains(r.stderr, "storage.delete.enabled: true") {
		t.Errorf("a registry without deletes: exit %d\n%s", r.code, r.stderr)
	}
}

// gcValidate has oci-image-tool validate the image tagged tag in the
// layout, blobs and all. oci-image-tool 1.0.0-rc1 calls a --ref "not
// unique" from a layout's third entry on (its filter skips the entry after
// each one it drops), so it reads a view of the layout that lists that
// entry alone, over the layout's own blob files.
func gcValidate(t *testing.T, layout, tag string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx map[string]any
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	var one []any
	for _, e := range idx["manifests"].([]any) {
		if ann, _ := e.(map[string]any)["annotations"].(map[string]any); ann["org.opencontainers.image.ref.name"] == tag {
			one = append(one, e)
		}
	}
	idx["manifests"] = one
	view := filepath.Join(t.TempDir(), "view")
	os.MkdirAll(view, 0o755)
	out, _ := json.Marshal(idx)
	os.WriteFile(filepath.Join(view, "index.json"), out, 0o644)
	os.WriteFile(filepath.Join(view, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	// Hard links: the layout's blob files themselves (oci-image-tool
	// refuses a symbolic link for blobs/).
	blobs, err := os.ReadDir(filepath.Join(layout, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(view, "blobs", "sha256"), 0o755)
	for _, b := range blobs {
		if err := os.Link(filepath.Join(layout, "blobs", "sha256", b.Name()), filepath.Join(view, "blobs", "sha256", b.Name())); err != nil {
			t.Fatal(err)
		}
	}
	if got := testtool.Run(t, "oci-image-tool", "validate", "--type", "image", "--ref", "name="+tag, view); !strings.Contains(got, "Validation succeeded") {
		t.Errorf("oci-image-tool validate %s: %s", tag, got)
	}
}

func e2eJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%v:\n%s", err, s)
	}
}
