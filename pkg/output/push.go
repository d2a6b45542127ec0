package output

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/pkg/imageref"
)

// BlobStatus is where one blob of a registry push stands.
type BlobStatus int

const (
	// BlobSending: Sent of the blob's Size bytes have gone to the registry
	// in the current attempt (a retried upload starts again from 0).
	BlobSending BlobStatus = iota
	// BlobSent: every byte of the blob has gone to the registry.
	BlobSent
	// BlobExists: the registry already had the blob; nothing was sent.
	BlobExists
	// BlobMounted: the registry mounted the blob from another of its
	// repositories (From); nothing was sent.
	BlobMounted
)

// BlobEvent is news of one blob (a layer or a config) during a registry
// push.
type BlobEvent struct {
	Digest v1.Hash
	Size   int64
	Status BlobStatus
	// Sent counts the bytes sent so far (BlobSending, BlobSent).
	Sent int64
	// From is the repository a BlobMounted blob was mounted from.
	From string
}

// pusher shapes one registry push: it offers a layer for a mount only
// within the target's registry, and, when progress is set, counts the
// bytes of every blob the push reads and watches the registry's answers
// for blobs it already has or mounts.
type pusher struct {
	target name.Repository

	mu       sync.Mutex // serializes progress; closed stops it
	progress func(BlobEvent)
	closed   bool
	sizes    map[v1.Hash]int64 // the artifact's blobs
}

// emit passes e on, one call at a time, until close.
func (p *pusher) emit(e BlobEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.progress(e)
	}
}

// close ends the events: none is passed on once close returns.
func (p *pusher) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
}

// artifact wraps a's images for the push.
func (p *pusher) artifact(a imageref.Artifact) imageref.Artifact {
	if a.Index != nil {
		return imageref.Artifact{Index: &pushIndex{idx: a.Index, p: p}}
	}
	return imageref.Artifact{Image: &pushImage{Image: a.Image, p: p}}
}

// layer wraps l for the push. go-containerregistry mounts only a layer
// that is a *remote.MountableLayer itself, so that wrapper stays
// outermost, the counting inside it.
func (p *pusher) layer(l v1.Layer) v1.Layer {
	var from name.Reference
	if ml, ok := l.(*remote.MountableLayer); ok {
		l = ml.Layer
		// Another registry would be asked to mount a repository it does
		// not hold; go-containerregistry would still send from=.
		if ml.Reference.Context().RegistryStr() == p.target.RegistryStr() {
			from = ml.Reference
		}
	}
	if p.progress != nil {
		l = &countingLayer{Layer: l, p: p}
	}
	if from != nil {
		return &remote.MountableLayer{Layer: l, Reference: from}
	}
	return l
}

// pushImage is an image whose layers and config go through the pusher.
type pushImage struct {
	v1.Image
	p *pusher
}

// Layers returns the image's layers, wrapped for the push.
func (i *pushImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for k, l := range ls {
		out[k] = i.p.layer(l)
	}
	return out, nil
}

// ConfigLayer returns the config blob, wrapped for the push.
func (i *pushImage) ConfigLayer() (v1.Layer, error) {
	l, err := partial.ConfigLayer(i.Image)
	if err != nil {
		return nil, err
	}
	return i.p.layer(l), nil
}

// pushIndex is an index whose images go through the pusher.
type pushIndex struct {
	idx v1.ImageIndex
	p   *pusher
}

var _ v1.ImageIndex = (*pushIndex)(nil)

func (x *pushIndex) MediaType() (types.MediaType, error)       { return x.idx.MediaType() }
func (x *pushIndex) Digest() (v1.Hash, error)                  { return x.idx.Digest() }
func (x *pushIndex) Size() (int64, error)                      { return x.idx.Size() }
func (x *pushIndex) IndexManifest() (*v1.IndexManifest, error) { return x.idx.IndexManifest() }
func (x *pushIndex) RawManifest() ([]byte, error)              { return x.idx.RawManifest() }

// Image returns the child image h, wrapped for the push.
func (x *pushIndex) Image(h v1.Hash) (v1.Image, error) {
	img, err := x.idx.Image(h)
	if err != nil {
		return nil, err
	}
	return &pushImage{Image: img, p: x.p}, nil
}

// ImageIndex returns the child index h, wrapped for the push.
func (x *pushIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	idx, err := x.idx.ImageIndex(h)
	if err != nil {
		return nil, err
	}
	return &pushIndex{idx: idx, p: x.p}, nil
}

// countingLayer reports the bytes read from its compressed form: what
// the push sends. A blob the push never reads was not sent.
type countingLayer struct {
	v1.Layer
	p *pusher
}

// Compressed returns the blob's bytes through a counter.
func (l *countingLayer) Compressed() (io.ReadCloser, error) {
	d, err := l.Digest()
	if err != nil {
		return nil, err
	}
	size, err := l.Size()
	if err != nil {
		return nil, err
	}
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return &countingReader{rc: rc, p: l.p, digest: d, size: size}, nil
}

type countingReader struct {
	rc     io.ReadCloser
	p      *pusher
	digest v1.Hash
	size   int64
	sent   int64
}

func (r *countingReader) Read(b []byte) (int, error) {
	n, err := r.rc.Read(b)
	if n > 0 {
		r.sent += int64(n)
		st := BlobSending
		if r.sent >= r.size {
			st = BlobSent
		}
		r.p.emit(BlobEvent{Digest: r.digest, Size: r.size, Status: st, Sent: r.sent})
	}
	return n, err
}

func (r *countingReader) Close() error { return r.rc.Close() }

// observer is the HTTP transport under a push. It reports the blobs that
// the registry answers it already has (HEAD /v2/REPO/blobs/DIGEST: 200)
// and those it mounts (POST /v2/REPO/blobs/uploads/?mount=DIGEST&from=REPO:
// 201), which go-containerregistry does not tell.
type observer struct {
	next http.RoundTripper
	p    *pusher
}

// RoundTrip sends r and watches the answer.
func (o *observer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := o.next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	switch {
	case r.Method == http.MethodHead && resp.StatusCode == http.StatusOK:
		i := strings.LastIndex(r.URL.Path, "/blobs/")
		if i < 0 {
			break
		}
		if h, err := v1.NewHash(r.URL.Path[i+len("/blobs/"):]); err == nil {
			if size, ok := o.p.sizes[h]; ok {
				o.p.emit(BlobEvent{Digest: h, Size: size, Status: BlobExists})
			}
		}
	case r.Method == http.MethodPost && resp.StatusCode == http.StatusCreated && strings.HasSuffix(r.URL.Path, "/blobs/uploads/"):
		q := r.URL.Query()
		if h, err := v1.NewHash(q.Get("mount")); err == nil {
			if size, ok := o.p.sizes[h]; ok {
				o.p.emit(BlobEvent{Digest: h, Size: size, Status: BlobMounted, From: q.Get("from")})
			}
		}
	}
	return resp, nil
}

// KeepMountable returns img, whose layers were made from layers (in the
// manifest's order), with the mountable ones among them (a registry
// base's, *remote.MountableLayer naming the repository they came from)
// recognisable again in Layers, where a push looks for them to mount them:
// partial.CompressedToImage wraps every layer it returns. The bytes are
// img's, unchanged; without a mountable layer img is returned as is.
func KeepMountable(img v1.Image, layers []v1.Layer) v1.Image {
	for _, l := range layers {
		if _, ok := l.(*remote.MountableLayer); ok {
			return &mountableImage{Image: img, layers: layers}
		}
	}
	return img
}

// mountableImage is KeepMountable's image.
type mountableImage struct {
	v1.Image
	layers []v1.Layer // as in the manifest, in order
}

// Layers returns the image's layers, the mountable ones as
// *remote.MountableLayer.
func (m *mountableImage) Layers() ([]v1.Layer, error) {
	ls, err := m.Image.Layers()
	if err != nil {
		return nil, err
	}
	if len(ls) != len(m.layers) {
		return nil, fmt.Errorf("the image lists %d layers, not %d", len(ls), len(m.layers))
	}
	for i, l := range ls {
		if ml, ok := m.layers[i].(*remote.MountableLayer); ok {
			ls[i] = &remote.MountableLayer{Layer: l, Reference: ml.Reference}
		}
	}
	return ls, nil
}
