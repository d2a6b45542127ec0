package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type ent struct {
	name string
	typ  byte
	body string
	link string
}

func layerOf(t *testing.T, entries ...ent) v1.Layer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	data := b.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestOverlaySemantics(t *testing.T) {
	img, err := mutate.AppendLayers(empty.Image,
		layerOf(t,
			ent{name: "a/", typ: tar.TypeDir},
			ent{name: "a/b", typ: tar.TypeReg, body: "b"},
			ent{name: "a/c", typ: tar.TypeReg, body: "c"},
			ent{name: "d/", typ: tar.TypeDir},
			ent{name: "d/x", typ: tar.TypeReg, body: "x"},
			ent{name: "e/", typ: tar.TypeDir},
			ent{name: "e/deep/f", typ: tar.TypeReg, body: "f"},
			ent{name: "./h", typ: tar.TypeReg, body: "h"},
		),
		layerOf(t,
			ent{name: "a/.wh.b", typ: tar.TypeReg},
			ent{name: "d/y", typ: tar.TypeReg, body: "y"}, // before the opaque marker: still kept
			ent{name: "d/.wh..wh..opq", typ: tar.TypeReg},
			ent{name: "e", typ: tar.TypeReg, body: "now a file"},
			ent{name: "hl", typ: tar.TypeLink, link: "h"},
			ent{name: "s", typ: tar.TypeSymlink, link: "../a/c"},
		),
	)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Read(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range fs.Files() {
		got[f.Path] = string(f.Kind) + " " + f.Link
	}
	want := map[string]string{
		"/a": "dir ", "/a/c": "file ", "/d": "dir ", "/d/y": "file ",
		"/e": "file ", "/h": "file ", "/hl": "hardlink /h", "/s": "symlink ../a/c",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("final filesystem (-want +got):\n%s", diff)
	}
	if f, _ := fs.Get("/a/c"); f.SHA256 != "2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6" || f.Layer != 0 {
		t.Errorf("/a/c = %+v", f)
	}
	// Walk hands over each final file once, with its content.
	contents := map[string]string{}
	err = Walk(context.Background(), img, fs, func(f *File, r io.Reader) error {
		b, _ := io.ReadAll(r)
		if _, dup := contents[f.Path]; dup {
			t.Errorf("%s walked twice", f.Path)
		}
		contents[f.Path] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(contents) != fs.Len() || contents["/e"] != "now a file" || contents["/d/y"] != "y" {
		t.Errorf("walked %v", contents)
	}
}
