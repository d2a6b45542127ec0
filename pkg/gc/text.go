package gc

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/reprobuild/repro/internal/units"
)

// WriteText writes the report for people: what goes (or would go), what
// stays and why, and the blobs removed.
func (r *Report) WriteText(w io.Writer) error {
	verb, blobVerb, done := "delete", "removed", "deleted"
	if r.DryRun {
		verb, blobVerb, done = "would delete", "would remove", "would be deleted"
	}
	fmt.Fprintf(w, "%s: now %s, keep %s (created after %s), keep the newest %d\n",
		r.Ref, r.Now.Format(time.RFC3339), days(r.KeepDays), r.Cutoff.Format(time.RFC3339), r.KeepLast)
	line := func(action string, it Item) {
		name := strings.Join(it.Tags, ", ")
		if name == "" {
			name = "(untagged)"
		}
		when := ""
		if it.Created != nil {
			when = fmt.Sprintf(", created %s", it.Created.UTC().Format("2006-01-02"))
			if it.AgeDays != nil {
				when += fmt.Sprintf(" (%s old)", days(*it.AgeDays))
			}
		}
		fmt.Fprintf(w, "%-12s %-11s %s  %s%s: %s\n", action, it.Kind, short(it.Digest), name, when, it.Reason)
	}
	for _, it := range r.Deleted {
		line(verb, it)
	}
	for _, it := range r.Kept {
		line("keep", it)
	}
	for _, d := range r.Debris {
		fmt.Fprintf(w, "removed      debris      %s: a temporary file of a writer that is gone\n", d)
	}
	_, err := fmt.Fprintf(w, "%d %s, %d kept; %s %d unreferenced blobs (%s)\n",
		len(r.Deleted), done, len(r.Kept), blobVerb, len(r.Blobs), units.Bytes(r.BlobBytes))
	return err
}
