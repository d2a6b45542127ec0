package base

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/pkg/compress"
)

// tarEntry is one entry of a test layer; body set means a regular file.
type tarEntry struct {
	name, body, link string
	typ              byte
}

func tarLayer(t *testing.T, alg string, entries ...tarEntry) v1.Layer {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Linkname: e.link}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if h.Typeflag == tar.TypeDir {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	switch alg {
	case "gzip":
		zw := gzip.NewWriter(&out)
		zw.Write(raw.Bytes())
		zw.Close()
	case "zstd":
		zw, err := compress.NewWriter(&out, compress.Zstd)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(raw.Bytes())
		zw.Close()
	default:
		out = raw
	}
	return static.NewLayer(out.Bytes(), types.OCILayer)
}

func TestBaseFiles(t *testing.T) {
	dir := func(n string) tarEntry { return tarEntry{name: n, typ: tar.TypeDir} }
	img := &Image{Layers: []v1.Layer{
		tarLayer(t, "gzip",
			dir("etc/"), tarEntry{name: "etc/passwd", body: "root:x:0:0::/root:/bin/sh\n"},
			tarEntry{name: "etc/group", body: "root:x:0:\n"},
			dir("bin/"), tarEntry{name: "bin/sh", body: "#!"},
			dir("var/lib/dpkg/status.d/"),
			tarEntry{name: "var/lib/dpkg/status.d/a", body: "Package: a\n"},
			tarEntry{name: "var/lib/dpkg/status.d/b", body: "Package: b\n"},
			dir("old/"), tarEntry{name: "old/passwd", body: "gone"},
		),
		tarLayer(t, "zstd",
			// A whiteout, an opaque directory, a replaced file, a hard link.
			tarEntry{name: "var/lib/dpkg/status.d/.wh.a"},
			tarEntry{name: "etc/passwd", body: "root:x:0:0::/root:/bin/sh\napp:x:1:1::/:/bin/sh\n"},
			tarEntry{name: "etc/shadow", link: "etc/passwd", typ: tar.TypeLink},
			tarEntry{name: "var/lib/dpkg/status.d/c", body: "Package: c\n"},
		),
		tarLayer(t, "none",
			// A symlink that replaces a directory hides its tree.
			tarEntry{name: "old", link: "etc", typ: tar.TypeSymlink},
			tarEntry{name: "var/lib/dpkg/status.d/.wh..wh..opq"},
			tarEntry{name: "var/lib/dpkg/status.d/d", body: "Package: d\n"},
		),
	}}
	files, err := img.Files(context.Background(), func(p string) bool {
		return strings.HasPrefix(p, "/etc/") || strings.HasPrefix(p, "/var/lib/dpkg/") || p == "/bin" || strings.HasPrefix(p, "/old")
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for p, f := range files {
		got[p] = string(f.Type) + " " + string(f.Data) + f.Linkname
	}
	want := map[string]string{
		"/bin":                     "5 ",
		"/etc/passwd":              "0 root:x:0:0::/root:/bin/sh\napp:x:1:1::/:/bin/sh\n",
		"/etc/shadow":              "0 root:x:0:0::/root:/bin/sh\napp:x:1:1::/:/bin/sh\n",
		"/etc/group":               "0 root:x:0:\n",
		"/old":                     "2 etc",
		"/var/lib/dpkg/status.d/d": "0 Package: d\n",
		"/var/lib/dpkg/status.d":   "5 ",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Files (-want +got):\n%s", diff)
	}
}
