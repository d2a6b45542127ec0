package output

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/reprobuild/repro/pkg/imageref"
)

// Watch, when set, is asked before each registry push is staged for the
// observer of that push's blobs (nil: none); end is called, when not nil,
// as the staging ends, failed or not.
type Watch func(ref imageref.Reference) (progress func(BlobEvent), end func())

// WriteAll writes a to every ref as one transaction: it checks every
// output, stages them all, and only then commits them (renames and tags:
// quick, and not interrupted half way), so that a failure or an interrupt
// leaves none of them written. Its errors name the output ("writing REF:
// …"), except a cancellation, returned as it is. A progress watch
// gives replaces opts.Progress for that push.
func WriteAll(ctx context.Context, refs []imageref.Reference, a imageref.Artifact, opts Options, watch Watch) error {
	for _, r := range refs {
		if err := Check(r, a); err != nil {
			return err
		}
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var staged []Staged
	abort := func() {
		for _, st := range staged {
			st.Abort()
		}
	}
	for _, r := range refs {
		o := opts
		var end func()
		if r.Transport == imageref.Registry && watch != nil {
			var progress func(BlobEvent)
			if progress, end = watch(r); progress != nil {
				o.Progress = progress
			}
		}
		st, err := Stage(ctx, r, a, o)
		if end != nil {
			end()
		}
		if err != nil {
			abort()
			if errors.Is(err, context.Canceled) {
				return err
			}
			return fmt.Errorf("writing %s: %w", r, err)
		}
		staged = append(staged, st)
	}
	if err := ctx.Err(); err != nil {
		abort()
		return err
	}
	for i, st := range staged {
		if err := st.Commit(); err != nil {
			for _, rest := range staged[i+1:] {
				rest.Abort()
			}
			return fmt.Errorf("writing %s: %w", refs[i], err)
		}
		log.Info("wrote", "output", refs[i].String())
	}
	return nil
}
