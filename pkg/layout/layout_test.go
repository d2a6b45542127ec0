package layout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/reprobuild/repro/pkg/fault"
)

func digestOf(b []byte) digest.Digest {
	sum := sha256.Sum256(b)
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(sum[:]))
}

func tagged(d digest.Digest, size int64, tag string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: size,
		Annotations: map[string]string{ocispec.AnnotationRefName: tag}}
}

// write stages blobs into dir and commits them under tag (the last blob
// is what the tag names).
func write(t *testing.T, dir, tag string, blobs ...[]byte) error {
	t.Helper()
	ctx := context.Background()
	st, err := NewStage(ctx, dir)
	if err != nil {
		return err
	}
	for _, b := range blobs {
		if err := st.PutBytes(ctx, digestOf(b), b); err != nil {
			st.Abort()
			return err
		}
	}
	last := blobs[len(blobs)-1]
	return st.Commit(ctx, func(idx *Index) error {
		idx.SetTag(tagged(digestOf(last), int64(len(last)), tag))
		return nil
	})
}

// entries lists dir's names, recursively, relative to dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func TestNewLayoutAndUpdate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sub", "out")
	if err := write(t, dir, "a", []byte("layer"), []byte("manifest-a")); err != nil {
		t.Fatal(err)
	}
	if err := write(t, dir, "b", []byte("layer"), []byte("manifest-b")); err != nil {
		t.Fatal(err)
	}
	if err := write(t, dir, "a", []byte("manifest-a2")); err != nil {
		t.Fatal(err)
	}
	idx, err := ReadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, e := range idx.Manifests {
		tags = append(tags, e.Tag()+"="+e.Digest.String())
	}
	want := []string{"b=" + digestOf([]byte("manifest-b")).String(), "a=" + digestOf([]byte("manifest-a2")).String()}
	if !slices.Equal(tags, want) {
		t.Errorf("tags %v, want %v", tags, want)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	if !bytes.HasPrefix(raw, []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":`)) {
		t.Errorf("index.json: %s", raw)
	}
	lf, _ := os.ReadFile(filepath.Join(dir, "oci-layout"))
	if string(lf) != LayoutFile {
		t.Errorf("oci-layout: %s", lf)
	}
	for _, name := range entries(t, filepath.Dir(dir)) {
		if strings.Contains(name, ".tmp-") {
			t.Errorf("left %s", name)
		}
	}
}

// TestEntriesKeptByteForByte: an entry nobody changes is written as read,
// fields this package does not know and escapes included.
func TestEntriesKeptByteForByte(t *testing.T) {
	in := `{"schemaVersion":2,"manifests":[{"mediaType":"m","digest":"sha256:` + strings.Repeat("a", 64) + `","x-extra":{"b":1,"a":2},"size":1,"annotations":{"n":"\u003c"}},{"mediaType":"m","digest":"sha256:` + strings.Repeat("b", 64) + `","size":2}],"annotations":{"top":"kept"}}`
	idx, err := ParseIndex([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	idx.Manifests[1].Size = 3
	out, err := idx.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(in, `"size":2}`, `"size":3}`, 1)
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
}

// TestStagedBlobsSurviveCollection: what gc does (remove every blob no
// entry reaches, under the lock) between a stage's Put and its Commit
// takes nothing from the stage, also a blob the layout already had.
func TestStagedBlobsSurviveCollection(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	shared := []byte("shared layer")
	if err := write(t, dir, "old", shared, []byte("old manifest")); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := NewStage(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	m := []byte("new manifest")
	for _, b := range [][]byte{shared, []byte("new layer"), m} {
		if err := st.PutBytes(ctx, digestOf(b), b); err != nil {
			t.Fatal(err)
		}
	}
	// gc: the old tag goes, and every blob nothing reaches.
	l, err := Lock(ctx, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := l.Index()
	idx.Manifests = nil
	if err := l.WriteIndex(idx); err != nil {
		t.Fatal(err)
	}
	all, _ := l.Blobs()
	for _, b := range all {
		l.RemoveBlob(b.Digest)
	}
	if debris, err := l.Clean(); err != nil || len(debris) > 0 {
		t.Fatalf("Clean removed %v (%v): a live stage", debris, err)
	}
	l.Close()
	if err := st.Commit(ctx, func(idx *Index) error {
		idx.SetTag(tagged(digestOf(m), int64(len(m)), "new"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{shared, []byte("new layer"), m} {
		got, err := os.ReadFile(BlobPath(dir, digestOf(b)))
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("blob %q: %q, %v", b, got, err)
		}
	}
	for _, name := range entries(t, dir) {
		if strings.HasPrefix(filepath.Base(name), ".") {
			t.Errorf("left %s", name)
		}
	}
}

// TestConcurrentFirstWrites: writers racing to create one layout all land.
func TestConcurrentFirstWrites(t *testing.T) {
	for round := range 5 {
		dir := filepath.Join(t.TempDir(), "same")
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = write(t, dir, fmt.Sprint("t", i), []byte("layer"), []byte(fmt.Sprint("manifest ", i)))
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		idx, err := ReadIndex(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(idx.Manifests) != 8 {
			t.Errorf("round %d: %d entries", round, len(idx.Manifests))
		}
		for _, e := range idx.Manifests {
			if _, err := os.Stat(BlobPath(dir, e.Digest)); err != nil {
				t.Errorf("round %d: %s: %v", round, e.Tag(), err)
			}
		}
		for _, name := range entries(t, filepath.Dir(dir)) {
			if strings.Contains(name, ".tmp-") {
				t.Errorf("round %d: left %s", round, name)
			}
		}
	}
}

// TestFailedWriteLeavesNothing: a blob that does not hash right fails the
// write; a new layout is not made, an old one is unchanged.
func TestFailedWriteLeavesNothing(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "a", "out")
	ctx := context.Background()
	st, err := NewStage(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	err = st.PutBytes(ctx, digestOf([]byte("x")), []byte("y"))
	if fault.KindOf(err) != fault.Operational {
		t.Fatalf("a lying blob: %v", err)
	}
	st.Abort()
	if got := entries(t, parent); len(got) > 0 {
		t.Errorf("left %v", got)
	}
	if err := write(t, dir, "a", []byte("m")); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	st, _ = NewStage(ctx, dir)
	st.PutBytes(ctx, digestOf([]byte("z")), []byte("z"))
	err = st.Commit(ctx, func(*Index) error { return errors.New("refused") })
	if err == nil {
		t.Fatal("an edit that fails committed")
	}
	if _, err := os.Stat(BlobPath(dir, digestOf([]byte("z")))); err == nil {
		t.Error("a failed commit left its blob")
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "index.json")); !bytes.Equal(before, after) {
		t.Errorf("a failed commit changed index.json: %s", after)
	}
	for _, name := range entries(t, dir) {
		if strings.HasPrefix(filepath.Base(name), ".") {
			t.Errorf("left %s", name)
		}
	}
}

// deadPid is the pid of a process that has exited.
func deadPid(t *testing.T) int {
	t.Helper()
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	return c.Process.Pid
}

// TestDebrisOfDeadWriters: a new stage removes the temporary names of
// writers that are gone (in the layout, its blobs, and new layouts beside
// it) and keeps a live writer's.
func TestDebrisOfDeadWriters(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	if err := write(t, dir, "a", []byte("m")); err != nil {
		t.Fatal(err)
	}
	dead := strconv.Itoa(deadPid(t))
	live := strconv.Itoa(os.Getpid())
	mk := func(p string, isDir bool) string {
		if isDir {
			os.MkdirAll(filepath.Join(p, "blobs"), 0o755)
		} else {
			os.WriteFile(p, []byte("x"), 0o644)
		}
		return p
	}
	gone := []string{
		mk(filepath.Join(dir, ".tmp-"+dead+"-1"), true),
		mk(filepath.Join(dir, "blobs", "sha256", ".tmp-"+dead+"-2"), false),
		mk(filepath.Join(dir, ".tmp-"+dead+"-3-index.json"), false),
		mk(filepath.Join(parent, ".out.tmp-"+dead+"-4"), true),
	}
	kept := []string{
		mk(filepath.Join(dir, ".tmp-"+live+"-5"), true),
		mk(filepath.Join(parent, ".out.tmp-"+live+"-6"), true),
		mk(filepath.Join(parent, ".other.tmp-"+dead+"-7"), true), // another layout's
		mk(filepath.Join(dir, "blobs", "sha256", ".tmp-abcdef-8"), false),
	}
	st, err := NewStage(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	st.Abort()
	for _, p := range gone {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s stayed", p)
		}
	}
	for _, p := range kept {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s went", p)
		}
	}
	// Clean (gc's) also takes the ownerless name older versions left.
	l, err := Lock(context.Background(), dir, true)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	removed, err := l.Clean()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{kept[3]}) {
		t.Errorf("Clean removed %v", removed)
	}
}

// TestStagesShareBlobs: two stages of one process into one layout (two
// tags of a build) write each blob once; the second links the first's.
func TestStagesShareBlobs(t *testing.T) {
	for _, fresh := range []bool{true, false} {
		dir := filepath.Join(t.TempDir(), "out")
		if !fresh {
			if err := write(t, dir, "seed", []byte("seed")); err != nil {
				t.Fatal(err)
			}
		}
		ctx := context.Background()
		b := []byte("a big layer")
		var stages []*Stage
		for range 2 {
			st, err := NewStage(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			opened := 0
			err = st.Put(ctx, digestOf(b), int64(len(b)), func() (io.ReadCloser, error) {
				opened++
				return io.NopCloser(bytes.NewReader(b)), nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(stages) == 1 && opened != 0 {
				t.Errorf("fresh=%v: the second stage copied the blob again", fresh)
			}
			stages = append(stages, st)
		}
		for i, st := range stages {
			if err := st.Commit(ctx, func(idx *Index) error {
				idx.SetTag(tagged(digestOf(b), int64(len(b)), fmt.Sprint("t", i)))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := os.ReadFile(BlobPath(dir, digestOf(b))); err != nil || !bytes.Equal(got, b) {
			t.Errorf("fresh=%v: blob %q, %v", fresh, got, err)
		}
		for _, name := range entries(t, filepath.Dir(dir)) {
			if strings.Contains(name, ".tmp-") {
				t.Errorf("fresh=%v: left %s", fresh, name)
			}
		}
	}
}
