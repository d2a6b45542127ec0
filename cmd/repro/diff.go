package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/reprobuild/repro/pkg/diff"
	"github.com/reprobuild/repro/pkg/fault"
)

var diffCmd = &command{
	name:  "diff",
	usage: "diff REF1 REF2 [--json]",
	short: "explain every difference between two images",
	long: `
Diff compares two images (or indexes) from the top down and names every
difference: index and manifest fields, config fields one by one, layers
(added, removed, reordered, changed, or changed in compression only: same
content, different blob), and files of the final filesystem (added,
removed, or changed in type, content, mode, owner, mtime, xattrs or link
target), with each changed layer's own entries as well. Images with
different layer counts still compare by content.

Exit status: 0 when the images are identical, 1 when they differ.
--json prints a stable document; its schema is in pkg/diff/doc.go.

Examples:
  repro diff oci:out/app:v1 registry.example.com/app:v1
  repro diff --json oci-archive:a.tar docker-archive:b.tar`,
	flags: func(fs *pflag.FlagSet, g *globals) func(context.Context, []string) error {
		var insecure []string
		fs.StringArrayVar(&insecure, "insecure-registry", nil, "speak plain HTTP to this registry `HOST` (repeatable)")
		return func(ctx context.Context, args []string) error {
			if len(args) != 2 {
				return fault.Bad(fmt.Errorf("give two image references"))
			}
			rep, err := compareRefs(ctx, args[0], args[1], insecure)
			if err != nil {
				return err
			}
			if g.json {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				rep.WriteText(g.stdout)
			}
			if !rep.Identical {
				return errSilent{fault.CheckFailed}
			}
			return nil
		}
	},
}

func compareRefs(ctx context.Context, ra, rb string, insecure []string) (*diff.Report, error) {
	a, err := openRef(ctx, ra, insecure)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	b, err := openRef(ctx, rb, insecure)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return diff.Compare(ctx, a, b, ra, rb)
}

// errSilent sets the exit code without a message: the command has said
// everything on stdout.
type errSilent struct{ kind fault.Kind }

func (e errSilent) Error() string { return "" }
