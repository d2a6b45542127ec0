package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/reprobuild/repro/internal/hostile"
	"github.com/reprobuild/repro/pkg/fault"
)

func rawLayer(t testing.TB, data []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func imageOf(t testing.TB, ls ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// A 4 KiB layer whose one sparse file claims 1 TiB is refused as bad input
// after at most MaxHoles of zeros, not hashed for a terabyte.
func TestSparseBomb(t *testing.T) {
	old := MaxHoles
	MaxHoles = 8 << 20 // the rule, not the default's minute of hashing
	defer func() { MaxHoles = old }()
	data := hostile.Sparse("var/log/lastlog", 1<<40, []byte("tail"))
	if len(data) > 4096 {
		t.Fatalf("the corpus layer is %d bytes, want at most 4 KiB", len(data))
	}
	img := imageOf(t, rawLayer(t, data))
	_, err := Read(context.Background(), img)
	if err == nil || fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), "holes") {
		t.Fatalf("Read = %v (%v), want bad input about holes", err, fault.KindOf(err))
	}
	fs := &FS{files: map[string]*File{"/var/log/lastlog": {Path: "/var/log/lastlog", Kind: Regular}}}
	err = Walk(context.Background(), img, fs, func(f *File, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if fault.KindOf(err) != fault.BadInput {
		t.Fatalf("Walk = %v, want bad input", err)
	}
}

// A small sparse file within the limit reads as its logical content.
func TestSparseWithinLimit(t *testing.T) {
	img := imageOf(t, rawLayer(t, hostile.Sparse("f", 3<<20, []byte("tail"))))
	fs, err := Read(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	f, ok := fs.Get("/f")
	if !ok || f.Size != 3<<20 {
		t.Fatalf("got %+v", f)
	}
}

// Cancellation reaches inside an entry: a cancelled context stops the
// hashing of one huge sparse file within a MiB.
func TestCancelInsideEntry(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	img := imageOf(t, rawLayer(t, hostile.Sparse("big", 1<<40, []byte("x"))))
	var n int64
	err := eachEntry(ctx, img2layer(t, img), func(h *tar.Header, r io.Reader) error {
		buf := make([]byte, 64<<10)
		for {
			m, err := r.Read(buf)
			n += int64(m)
			if n > 4<<20 {
				cancel()
			}
			if err != nil {
				return err
			}
		}
	})
	if !errors.Is(err, context.Canceled) || n > 8<<20 {
		t.Fatalf("err = %v after %d bytes, want context.Canceled within a few MiB", err, n)
	}
}

// A layer expanding past MaxLayerSize is refused as bad input, whether the
// bytes are in a file that is read or skipped.
func TestLayerBomb(t *testing.T) {
	old := MaxLayerSize
	MaxLayerSize = 1 << 20
	defer func() { MaxLayerSize = old }()
	big := hostile.Tar(hostile.Entry{Name: "zeros", Type: '0', Data: make([]byte, 2<<20)})
	for _, hash := range []bool{true, false} {
		err := eachEntry(context.Background(), rawLayer(t, big), func(h *tar.Header, r io.Reader) error {
			if hash {
				_, err := io.Copy(io.Discard, r)
				return err
			}
			return nil
		})
		if fault.KindOf(err) != fault.BadInput || !errors.Is(err, ErrLayerTooLarge) {
			t.Fatalf("hash %v: %v, want bad input, ErrLayerTooLarge", hash, err)
		}
	}
}

// A header whose checksum is wrong is bad input, not an operational
// failure to retry.
func TestInvalidHeader(t *testing.T) {
	_, err := Read(context.Background(), imageOf(t, rawLayer(t, hostile.BadChecksum())))
	if fault.KindOf(err) != fault.BadInput || !strings.Contains(err.Error(), "layer 0") {
		t.Fatalf("Read = %v (%v), want bad input naming the layer", err, fault.KindOf(err))
	}
}

// Names and links that escape are read as paths inside the image: the
// reader never resolves them on the host.
func TestEscapingNames(t *testing.T) {
	img := imageOf(t, rawLayer(t, hostile.Tar(
		hostile.Entry{Name: "../../etc/shadow", Type: '0', Data: []byte("x")},
		hostile.Entry{Name: "/abs", Type: '2', Link: "/../../../etc"},
		hostile.Entry{Name: "hard", Type: '1', Link: "../../../../etc/passwd"},
	)))
	fs, err := Read(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/etc/shadow", "/abs", "/hard"} {
		if _, ok := fs.Get(p); !ok {
			t.Errorf("%s missing from %v", p, fs.Files())
		}
	}
	if f, _ := fs.Get("/hard"); f != nil && f.Link != "/etc/passwd" {
		t.Errorf("hard link target %q, want it cleaned inside the image", f.Link)
	}
}

func img2layer(t testing.TB, img v1.Image) v1.Layer {
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return ls[0]
}
