package sign

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
)

// ErrNothingSignable is SignOutputs' error when no output can hold a
// signature: only registry references and oci: layouts can.
var ErrNothingSignable = errors.New("signatures live in a registry or an oci: layout, and no output is either")

// Signable reports whether ref can hold a signature: a registry
// reference or an oci: layout can, an archive cannot.
func Signable(ref imageref.Reference) bool {
	return ref.Transport == imageref.Registry || ref.Transport == imageref.OCI
}

// AnySignable reports whether any of refs can hold a signature.
func AnySignable(refs []imageref.Reference) bool {
	for _, r := range refs {
		if Signable(r) {
			return true
		}
	}
	return false
}

// SignOutputs signs the image just written to refs, with
// opts.Attestations, wherever a signature can live. Signatures are per
// digest, so one signing per repository (per layout) covers every tag of
// it; archives are skipped with a warning on opts.Log. An oci: reference
// with no tag is signed at defaultTag, the tag its output wrote.
// opts.ExpectDigest should be the digest written: an output changed
// meanwhile is then not signed. Its errors name the output ("signing REF:
// …"); with no signable output it is a bad-input ErrNothingSignable.
func SignOutputs(ctx context.Context, refs []imageref.Reference, s *Signer, defaultTag string, opts Options) error {
	if !AnySignable(refs) {
		return fault.Bad(ErrNothingSignable)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	done := map[string]bool{}
	for _, r := range refs {
		if !Signable(r) {
			log.Warn("not signed: an archive holds no signatures", "output", r.String())
			continue
		}
		where := "oci:" + filepath.Clean(r.Path)
		if r.Transport == imageref.Registry {
			where = r.Name.Context().Name()
		}
		if done[where] {
			continue
		}
		done[where] = true
		if r.Transport == imageref.OCI && r.Tag == "" {
			r.Tag = defaultTag
		}
		if _, err := Sign(ctx, r, s, opts); err != nil {
			return fmt.Errorf("signing %s: %w", r, err)
		}
	}
	return nil
}
