package sign

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/empty"

	"github.com/reprobuild/repro/internal/atomicfs"
	"github.com/reprobuild/repro/internal/canonical"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
)

// signLayout adds sig and atts to the layout holding art, in cosign's
// layout format. The layout is locked (the lock package output takes too)
// from reading index.json to replacing it.
func signLayout(ctx context.Context, ref imageref.Reference, art *imageref.Artifact, sig oci.Signature, atts []oci.Signature, res *Result) error {
	dir := ref.Path
	unlock, err := atomicfs.LockDir(dir, true)
	if err != nil {
		return err
	}
	defer unlock()
	idx, err := readIndex(dir)
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
		if err := writeImageBlobs(ctx, dir, a.img); err != nil {
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
				idx.Manifests[i], replaced = entry, true
				break
			}
		}
		if !replaced {
			idx.Manifests = append(idx.Manifests, entry)
		}
		if a.kind == kindSigs {
			res.Signatures = "oci:" + dir + ":" + a.tag
		} else {
			res.Attestations = "oci:" + dir + ":" + a.tag
		}
	}
	return writeIndex(dir, idx)
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
func layoutSignatures(ctx context.Context, dir string, idx *ocispec.Index, h v1.Hash, suffix string) (oci.Signatures, error) {
	kind := map[string]string{"sig": kindSigs, "att": kindAtts}[suffix]
	var found *ocispec.Descriptor
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

func readIndex(dir string) (*ocispec.Index, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ocispec.ImageIndexFile))
	if err != nil {
		return nil, fault.Bad(fmt.Errorf("%s: reading index.json: %w", dir, err))
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fault.Bad(fmt.Errorf("%s: index.json is not valid JSON: %w", dir, err))
	}
	return &idx, nil
}

// writeIndex replaces index.json, encoded as package output encodes it.
func writeIndex(dir string, idx *ocispec.Index) error {
	idx.Versioned = specs.Versioned{SchemaVersion: 2}
	idx.MediaType = ocispec.MediaTypeImageIndex
	raw, err := canonical.JSON(idx)
	if err != nil {
		return err
	}
	return atomicfs.WriteFile(filepath.Join(dir, ocispec.ImageIndexFile), raw)
}

// writeImageBlobs stores img's layers, config and manifest in the layout.
func writeImageBlobs(ctx context.Context, dir string, img v1.Image) error {
	bdir := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(bdir, 0o755); err != nil {
		return fault.Op(err)
	}
	layers, err := img.Layers()
	if err != nil {
		return fault.Op(err)
	}
	for _, l := range layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		d, err := l.Digest()
		if err != nil {
			return fault.Op(err)
		}
		rc, err := l.Compressed()
		if err != nil {
			return fault.Op(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return fault.Op(err)
		}
		if err := writeBlob(bdir, d, b); err != nil {
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
	if err := writeBlob(bdir, cd, cfg); err != nil {
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
	return writeBlob(bdir, md, m)
}

// writeBlob stores b as blob d, checking that it hashes to d, unless a
// file of its size is already there.
func writeBlob(bdir string, d v1.Hash, b []byte) error {
	sum := sha256.Sum256(b)
	if d.Algorithm != "sha256" || hex.EncodeToString(sum[:]) != d.Hex {
		return fault.Op(fmt.Errorf("blob %s: its bytes hash to sha256:%x", d, sum))
	}
	p := filepath.Join(bdir, d.Hex)
	if fi, err := os.Stat(p); err == nil && fi.Size() == int64(len(b)) {
		return nil
	}
	return atomicfs.WriteFile(p, b)
}
