package apt

import (
	"context"
	"testing"
)

// TestEntriesKeepDebMTimes: every entry from a .deb carries the mtime its
// data.tar gives it (format 2's package-layer epoch is their newest); what
// the extraction writes itself (dpkg metadata, usrmerge links) carries
// none, and takes the layer's epoch.
func TestEntriesKeepDebMTimes(t *testing.T) {
	debs := writeDebs(t, testDebs(t))
	ents, _, err := Entries(context.Background(), debs, EntriesOptions{UsrMerge: true, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	fromDebs := 0
	for _, e := range ents {
		fromDeb := len(e.Origin) > 4 && e.Origin[:4] == "deb "
		switch {
		case fromDeb && (e.MTime == nil || *e.MTime != 1600000000):
			t.Errorf("%s (%s): mtime %v, want the .deb's 1600000000", e.Path, e.Origin, e.MTime)
		case !fromDeb && e.MTime != nil:
			t.Errorf("%s (%s): repro's own entry carries mtime %d", e.Path, e.Origin, *e.MTime)
		}
		if fromDeb {
			fromDebs++
		}
	}
	if fromDebs < 10 {
		t.Errorf("only %d entries from the .debs", fromDebs)
	}
}
