package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/reprobuild/repro/internal/hostile"
	"github.com/reprobuild/repro/pkg/fault"
)

// bytesLayer is a layer whose uncompressed stream is b; EachEntry reads
// nothing else of a layer.
type bytesLayer struct {
	v1.Layer
	b []byte
}

func (l bytesLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.b)), nil
}

// tarSeeds are the fuzz seeds: the hostile corpus and ordinary layers.
func tarSeeds() map[string][]byte {
	var ok bytes.Buffer
	tw := tar.NewWriter(&ok)
	tw.WriteHeader(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "etc/hostname", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5, Format: tar.FormatPAX, PAXRecords: map[string]string{"SCHILY.xattr.user.a": "b"}})
	tw.Write([]byte("host\n"))
	tw.WriteHeader(&tar.Header{Name: "etc/.wh.gone", Typeflag: tar.TypeReg})
	tw.WriteHeader(&tar.Header{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "busybox"})
	tw.WriteHeader(&tar.Header{Name: "bin/ln", Typeflag: tar.TypeLink, Linkname: "bin/sh"})
	tw.Close()
	return map[string][]byte{
		"ordinary":     ok.Bytes(),
		"empty":        make([]byte, 1024),
		"sparse":       hostile.Sparse("big", 8<<20, []byte("tail")),
		"bad-checksum": hostile.BadChecksum(),
		"escaping":     hostile.Tar(hostile.Entry{Name: "../../etc/x", Type: '0', Data: []byte("x")}, hostile.Entry{Name: "l", Type: '2', Link: "/../../../"}),
		"truncated":    ok.Bytes()[:700],
	}
}

// FuzzCheckTar feeds arbitrary bytes to the layer readers, under small
// limits: CheckTar and EachEntry must agree on whether the stream is a
// valid layer, never panic, and refuse only as bad input; a stream
// CheckTar accepts has the SHA-256 of its bytes as its diff ID.
func FuzzCheckTar(f *testing.F) {
	for _, b := range tarSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		defer func(l, h int64) { MaxLayerSize, MaxHoles = l, h }(MaxLayerSize, MaxHoles)
		MaxLayerSize, MaxHoles = 4<<20, 16<<20
		ctx := context.Background()
		d, cerr := CheckTar(ctx, bytes.NewReader(data))
		eerr := EachEntry(ctx, bytesLayer{b: data}, func(h *tar.Header, r io.Reader) error {
			_, err := io.Copy(io.Discard, r)
			return err
		})
		if (cerr == nil) != (eerr == nil) {
			t.Fatalf("CheckTar says %v, EachEntry %v", cerr, eerr)
		}
		if cerr != nil {
			if k := fault.KindOf(cerr); k != fault.BadInput {
				t.Fatalf("CheckTar refused %d bytes as %v: %v", len(data), k, cerr)
			}
			return
		}
		s := sha256.Sum256(data)
		if d.Hex != hex.EncodeToString(s[:]) {
			t.Fatalf("diff ID %s, the stream's SHA-256 is %x", d, s)
		}
	})
}

// TestWriteFuzzSeeds writes tarSeeds into testdata/fuzz/FuzzCheckTar when
// REPRO_WRITE_FUZZ_SEEDS is set; go test runs the seeds from there.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("REPRO_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("REPRO_WRITE_FUZZ_SEEDS is not set")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzCheckTar")
	os.MkdirAll(dir, 0o755)
	for name, b := range tarSeeds() {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("go test fuzz v1\n[]byte("+strconv.Quote(string(b))+")\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
