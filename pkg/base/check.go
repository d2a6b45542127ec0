package base

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/rootfs"
)

// A base's layers are published unchanged, so a base that lies would be
// published as it is: a layer that is not gzip, zstd or tar, a tar stream
// with a header that does not parse or that ends early, or a config whose
// diff ID for a layer is not the SHA-256 of what the layer expands to.
// Each layer is therefore read once, as it enters the cache (or, from a
// local layout, before it is used), decompressed and parsed to its end,
// and its diff ID compared with the config's. The verdict is kept in the
// cache (DIR/base-checked/sha256/<layer digest hex>, holding the diff ID),
// so a layer is read this way once per cache, whatever base names it.
//
// Bytes that do not match their digest are the source's failure (exit 3:
// fetch again); bytes that match it but are not a valid layer, or a diff
// ID that lies, are the base's (exit 2: no fetch will mend it).

// diffIDs are the config's rootfs.diff_ids, one per layer of m.
func diffIDs(config []byte, m *v1.Manifest, what string) ([]v1.Hash, error) {
	var cf struct {
		RootFS struct {
			DiffIDs []v1.Hash `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(config, &cf); err != nil {
		return nil, fault.Bad(fmt.Errorf("the config of the base %s is not valid JSON: %v", what, err))
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fault.Bad(fmt.Errorf("the base %s is corrupt: its manifest has %d layers and its config %d diff IDs; rebuild the base or choose another", what, len(m.Layers), len(cf.RootFS.DiffIDs)))
	}
	return cf.RootFS.DiffIDs, nil
}

// checked returns the diff ID the cache recorded for layer d, if any.
func (r *Resolver) checked(d v1.Hash) (v1.Hash, bool) {
	if r.cache == nil {
		return v1.Hash{}, false
	}
	b, err := os.ReadFile(r.checkedPath(d))
	if err != nil {
		return v1.Hash{}, false
	}
	h, err := v1.NewHash(strings.TrimSpace(string(b)))
	return h, err == nil
}

func (r *Resolver) checkedPath(d v1.Hash) string {
	return filepath.Join(r.cache.Dir(), "base-checked", d.Algorithm, d.Hex)
}

// recordChecked notes that layer d is valid and expands to diffID. A
// failure to write the note costs a re-check next time, nothing more.
func (r *Resolver) recordChecked(d, diffID v1.Hash) {
	if r.cache == nil {
		return
	}
	p := r.checkedPath(d)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(diffID.String() + "\n")
	if cerr := f.Close(); err == nil && cerr == nil {
		os.Rename(f.Name(), p)
	}
}

// claim compares a layer's real diff ID with the one the config claims.
func claim(got, want v1.Hash, layer string) error {
	if got != want {
		return fault.Bad(fmt.Errorf("%s expands to %s, but the base's config says its diff ID is %s: the base is corrupt or forged; rebuild it or choose another", layer, got, want))
	}
	return nil
}

// checkLayer reads a layer's compressed bytes from r to their end: the
// compression is found by its magic number (gzip, zstd, or none), the tar
// stream parsed, and the diff ID returned. Every error but cancellation is
// the layer's (bad input).
func checkLayer(ctx context.Context, r io.Reader, layer string) (v1.Hash, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(4)
	var tarStream io.Reader = br
	kind := "tar"
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		kind = "gzip"
		zr, err := compress.NewReader(br, compress.Gzip)
		if err != nil {
			return v1.Hash{}, badLayer(ctx, layer, kind, err)
		}
		defer zr.Close()
		tarStream = zr
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		kind = "zstd"
		zr, err := compress.NewReader(br, compress.Zstd)
		if err != nil {
			return v1.Hash{}, badLayer(ctx, layer, kind, err)
		}
		defer zr.Close()
		tarStream = zr
	}
	d, err := rootfs.CheckTar(ctx, tarStream)
	if err != nil {
		return v1.Hash{}, badLayer(ctx, layer, kind, err)
	}
	// What follows the compressed stream (a zstd decoder stops at its
	// last frame) must be nothing.
	if n, _ := io.Copy(io.Discard, br); n > 0 {
		return v1.Hash{}, fault.Bad(fmt.Errorf("%s has %d bytes after its %s stream: the base is corrupt; rebuild it or choose another", layer, n, kind))
	}
	return d, nil
}

func badLayer(ctx context.Context, layer, kind string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, rootfs.ErrLayerTooLarge) {
		return fault.Bad(fmt.Errorf("%s: %w", layer, err))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = errors.New("it ends early (truncated)")
	}
	return fault.Bad(fmt.Errorf("%s is not a valid %s layer: %v; the base is corrupt: rebuild it or choose another", layer, kind, err))
}

// teeCheck checks a layer as its bytes pass on the way into the cache: a
// goroutine reads them from a pipe. Its Write never fails, so the fetch
// runs to its end and the cache verifies the digest first: bytes that do
// not match their digest are the source's failure, whatever else is wrong.
type teeCheck struct {
	pw   *io.PipeWriter
	done chan checkResult
}

type checkResult struct {
	diffID v1.Hash
	err    error
}

func newTeeCheck(ctx context.Context, layer string) *teeCheck {
	pr, pw := io.Pipe()
	c := &teeCheck{pw: pw, done: make(chan checkResult, 1)}
	go func() {
		d, err := checkLayer(ctx, pr, layer)
		if err != nil {
			pr.CloseWithError(err) // the writer's further writes are dropped
		}
		c.done <- checkResult{d, err}
	}()
	return c
}

func (c *teeCheck) Write(p []byte) (int, error) {
	c.pw.Write(p) // after the checker stops, an error: the verdict is in done
	return len(p), nil
}

// finish ends the stream and returns the verdict.
func (c *teeCheck) finish() (v1.Hash, error) {
	c.pw.Close()
	r := <-c.done
	return r.diffID, r.err
}

// abort ends the stream after a failed fetch.
func (c *teeCheck) abort() {
	c.pw.CloseWithError(errors.New("fetch failed"))
	<-c.done
}

// checkFile checks a layer already on disk (in the cache, or in a local
// layout), whose bytes must also hash to want.
func checkFile(ctx context.Context, open func() (io.ReadCloser, error), want v1.Hash, layer string) (v1.Hash, error) {
	rc, err := open()
	if err != nil {
		return v1.Hash{}, fault.Op(fmt.Errorf("reading %s: %w", layer, err))
	}
	defer rc.Close()
	h := sha256.New()
	d, err := checkLayer(ctx, io.TeeReader(rc, h), layer)
	if err != nil && ctx.Err() == nil {
		// A damaged copy is not a corrupt base: hash the rest to tell.
		io.Copy(h, rc)
	}
	if got := hex.EncodeToString(h.Sum(nil)); ctx.Err() == nil && got != want.Hex {
		return v1.Hash{}, fault.Op(fmt.Errorf("%s: its bytes hash to sha256:%s, not the digest it is named by; the layout or cache serves corrupt data: copy or pull the base again", layer, got))
	}
	return d, err
}

// ErrPinMismatch is in the error of a recorded pin that its digest's index
// contradicts; the command line says how to record the pin again.
var ErrPinMismatch = errors.New("the lock is out of date or was edited")

// CheckPin confirms a recorded pin (a lock's) against what its digest
// names: the index (or manifest) pin.Digest is fetched by that digest
// (through the cache, so its bytes are verified), and each platform's
// manifest in the pin must be the one it lists. A build that trusted the
// per-platform digests alone would publish, under the base's index
// digest, images the index never held. Offline, an index the cache lacks
// is not checked.
func (r *Resolver) CheckPin(ctx context.Context, ref Ref, pin Pin) error {
	var got Pin
	if ref.Local() {
		p, err := r.Resolve(ctx, ref)
		if err != nil {
			return err
		}
		if p.Digest != pin.Digest {
			return fault.Op(fmt.Errorf("the base %s now holds %s, but the lock pins %s (%w)", ref.Raw, p.Digest, pin.Digest, ErrPinMismatch))
		}
		got = p
	} else {
		raw, err := r.manifest(ctx, ref, pin.Digest)
		if errors.Is(err, cache.ErrOffline) {
			r.log.Debug("offline: the lock's base index is not in the cache, so not checked", "base", ref.Raw, "digest", pin.Digest)
			return nil
		}
		if err != nil {
			return err
		}
		if got, err = pinFromManifest(pin.Digest, raw); err != nil {
			return err
		}
	}
	return samePlatforms(got, pin, ref.Raw)
}

// samePlatforms checks pin's platform manifests against got, what its
// digest names.
func samePlatforms(got, pin Pin, ref string) error {
	if d, single := got.Platforms[""]; single && len(got.Platforms) == 1 {
		// A single manifest: every platform the lock names is it.
		for plat, pd := range pin.Platforms {
			if pd != d {
				return fault.Bad(fmt.Errorf("the lock pins the base %s at %s, a single image, but names %s for %s (%w)", ref, pin.Digest, pd, plat, ErrPinMismatch))
			}
		}
		return nil
	}
	for plat, pd := range pin.Platforms {
		gd, ok := got.Platforms[plat]
		if !ok {
			return fault.Bad(fmt.Errorf("the lock pins the base %s at %s and names %s for %s, but %s has no %s image (%w)", ref, pin.Digest, pd, plat, pin.Digest, plat, ErrPinMismatch))
		}
		if gd != pd {
			return fault.Bad(fmt.Errorf("the lock pins the base %s at %s, whose %s image is %s, but the lock names %s (%w)", ref, pin.Digest, plat, gd, pd, ErrPinMismatch))
		}
	}
	return nil
}
