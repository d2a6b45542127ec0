package verify

import (
	"bytes"
	"context"
	"errors"
	"log/slog"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/sign"
)

// ErrPrivateKey: the key given to verify with is a private key.
var ErrPrivateKey = errors.New("a private key where the public key is wanted; verify with the public key (cosign.pub)")

// SignatureOptions shape Signatures.
type SignatureOptions struct {
	// Require lists predicate types of which a verified attestation must
	// be present.
	Require []string
	// Remote are the options of registry requests.
	Remote []remote.Option
	// Log receives each verdict; nil discards.
	Log *slog.Logger
}

// Signatures checks ref's cosign signatures and attestations against the
// public key pubPEM and logs each verdict. Its error is a failed check
// (fault.CheckFailed) naming what failed, or bad input (the key).
func Signatures(ctx context.Context, ref imageref.Reference, pubPEM []byte, opts SignatureOptions) (*sign.Report, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if bytes.Contains(pubPEM, []byte("PRIVATE KEY")) {
		return nil, fault.Bad(ErrPrivateKey)
	}
	rep, err := sign.VerifyImage(ctx, ref, pubPEM, sign.VerifyOptions{Require: opts.Require, Remote: opts.Remote})
	if rep != nil {
		for _, c := range rep.Signatures {
			if c.Verified {
				log.Info("signature verified", "index", c.Index, "identity", c.Identity, "digest", c.Named)
			} else {
				log.Warn("signature not verified", "index", c.Index, "problem", c.Problem)
			}
		}
		for _, c := range rep.Attestations {
			if c.Verified {
				log.Info("attestation verified", "index", c.Index, "predicateType", c.PredicateType)
			} else {
				log.Warn("attestation not verified", "index", c.Index, "predicateType", c.PredicateType, "problem", c.Problem)
			}
		}
	}
	return rep, err
}
