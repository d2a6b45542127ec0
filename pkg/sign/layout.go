package sign

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/empty"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/layout"
)

// signLayout adds sig and atts to the layout holding art, in cosign's
// layout format. The layout is locked (the lock package output takes too)
// from reading index.json to replacing it.
func signLayout(ctx context.Context, ref imageref.Reference, art *imageref.Artifact, sig oci.Signature, atts []oci.Signature, res *Result) error {
	dir := ref.Path
	l, err := layout.Lock(ctx, dir, true)
	if err != nil {
		return err
	}
	defer l.Close()
	idx, err := l.Index()
	if err != nil {
		return err
	}
	h := art.Descriptor.Digest
	self := -1
	for i, d := range idx.Manifests {
		if string(d.Digest) != h.String() {
			continue
		}
		if ref.Tag == "" || d.Annotations[refNameAnnotation] == ref.Tag {
			self = i
			break
		}
	}
	if self < 0 {
		return fault.Bad(fmt.Errorf("%s: %s is not an entry of index.json; name the image by its tag", ref, h))
	}
	kind := kindImage
	if art.Index != nil {
		kind = kindImageIndex
	}
	oldSigs, err := layoutSignatures(ctx, dir, idx, h, "sig")
	if err != nil {
		return err
	}
	sigs, err := appendSignature(oldSigs, sig)
	if err != nil {
		return fault.Op(err)
	}
	type addition struct {
		img  v1.Image
		tag  string
		kind string
	}
	adds := []addition{{sigs, sigTag(h, "sig"), kindSigs}}
	if len(atts) > 0 {
		oldAtts, err := layoutSignatures(ctx, dir, idx, h, "att")
		if err != nil {
			return err
		}
		all, err := replaceAttestations(oldAtts, atts)
		if err != nil {
			return fault.Op(err)
		}
		adds = append(adds, addition{all, sigTag(h, "att"), kindAtts})
	}
	// cosign's reader takes the first entry of each kind: only this
	// image and its signatures keep one.
	for i := range idx.Manifests {
		if _, ok := idx.Manifests[i].Annotations[kindAnnotation]; ok {
			ann := copyMap(idx.Manifests[i].Annotations)
			delete(ann, kindAnnotation)
			idx.Manifests[i].Annotations = ann
		}
	}
	ann := copyMap(idx.Manifests[self].Annotations)
	ann[kindAnnotation] = kind
	idx.Manifests[self].Annotations = ann
	for _, a := range adds {
		if err := writeImageBlobs(ctx, l, a.img); err != nil {
			return err
		}
		raw, err := a.img.RawManifest()
		if err != nil {
			return fault.Op(err)
		}
		mt, err := a.img.MediaType()
		if err != nil {
			return fault.Op(err)
		}
		sum := sha256.Sum256(raw)
		entry := ocispec.Descriptor{
			MediaType:   string(mt),
			Digest:      digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(sum[:])),
			Size:        int64(len(raw)),
			Annotations: map[string]string{kindAnnotation: a.kind, refNameAnnotation: a.tag},
		}
		replaced := false
		for i, d := range idx.Manifests {
			if d.Annotations[refNameAnnotation] == a.tag {
				idx.Manifests[i], replaced = layout.Entry{Descriptor: entry}, true
				break
			}
		}
		if !replaced {
			idx.Manifests = append(idx.Manifests, layout.Entry{Descriptor: entry})
		}
		if a.kind == kindSigs {
			res.Signatures = "oci:" + dir + ":" + a.tag
		} else {
			res.Attestations = "oci:" + dir + ":" + a.tag
		}
	}
	idx.SchemaVersion, idx.MediaType = 2, ocispec.MediaTypeImageIndex
	return l.WriteIndex(idx)
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// layoutSignatures returns the signatures (suffix sig) or attestations
// (suffix att) of digest h in a layout: the entry tagged sha256-<hex>.sig
// (or .att), else, when h's entry carries cosign's image kind, the entry
// of cosign's sigs (atts) kind, as `cosign save` writes them; else none.
func layoutSignatures(ctx context.Context, dir string, idx *layout.Index, h v1.Hash, suffix string) (oci.Signatures, error) {
	kind := map[string]string{"sig": kindSigs, "att": kindAtts}[suffix]
	var found *layout.Entry
	for i, d := range idx.Manifests {
		if d.Annotations[refNameAnnotation] == sigTag(h, suffix) {
			found = &idx.Manifests[i]
			break
		}
	}
	if found == nil {
		signedHere := false
		for _, d := range idx.Manifests {
			k := d.Annotations[kindAnnotation]
			if (k == kindImage || k == kindImageIndex) && string(d.Digest) == h.String() {
				signedHere = true
			}
		}
		for i, d := range idx.Manifests {
			if signedHere && d.Annotations[kindAnnotation] == kind {
				found = &idx.Manifests[i]
				break
			}
		}
	}
	if found == nil {
		return empty.Signatures(), nil
	}
	r := imageref.Reference{Transport: imageref.OCI, Path: dir, Digest: string(found.Digest)}
	a, err := imageref.Open(ctx, r)
	if err != nil {
		return nil, err
	}
	if a.Image == nil {
		return nil, fault.Bad(fmt.Errorf("%s: the %s entry is not an image", r, suffix))
	}
	return &imageSigs{Image: a.Image}, nil
}

// writeImageBlobs stores img's layers, config and manifest in the
// layout that l holds.
func writeImageBlobs(ctx context.Context, l *layout.Locked, img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return fault.Op(err)
	}
	for _, ly := range layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		d, err := ly.Digest()
		if err != nil {
			return fault.Op(err)
		}
		rc, err := ly.Compressed()
		if err != nil {
			return fault.Op(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return fault.Op(err)
		}
		if err := l.PutBlob(ctx, digest.Digest(d.String()), b); err != nil {
			return err
		}
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return fault.Op(err)
	}
	cd, err := img.ConfigName()
	if err != nil {
		return fault.Op(err)
	}
	if err := l.PutBlob(ctx, digest.Digest(cd.String()), cfg); err != nil {
		return err
	}
	m, err := img.RawManifest()
	if err != nil {
		return fault.Op(err)
	}
	md, err := img.Digest()
	if err != nil {
		return fault.Op(err)
	}
	return l.PutBlob(ctx, digest.Digest(md.String()), m)
}
