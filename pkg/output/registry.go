package output

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
)

// writeRegistry pushes a to a registry reference, with credentials from
// the docker config and its credential helpers. go-containerregistry
// uploads blobs first, then manifests, then the index, so the tag never
// names an image whose parts are missing.
func writeRegistry(ctx context.Context, ref imageref.Reference, a Artifact, opts Options) error {
	ro := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	var err error
	if a.Index != nil {
		err = remote.WriteIndex(ref.Name, a.Index, ro...)
	} else {
		err = remote.Write(ref.Name, a.Image, ro...)
	}
	if err != nil {
		return fault.Op(fmt.Errorf("pushing to %s: %w", ref.Name, err))
	}
	opts.Log.Info("pushed", "ref", ref.Name.String())
	return nil
}
