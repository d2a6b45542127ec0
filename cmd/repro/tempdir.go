package main

import (
	"os"

	"github.com/reprobuild/repro/internal/atomicfs"
	"github.com/reprobuild/repro/pkg/fault"
)

// workPrefixes start the names of the work directories that commands
// make in TMPDIR (repro-build-<pid>-…, see atomicfs.MkdirTemp).
var workPrefixes = []string{"repro-build-", "repro-verify-", "repro-check-", "repro-sign-", "repro-index-"}

// workDir makes a work directory in TMPDIR named for this process and
// locked while it lives, after removing those of runs that were killed
// (their owner gone: no such process, lock free). remove takes it away.
func workDir(prefix string) (dir string, remove func(), err error) {
	tmp := os.TempDir()
	atomicfs.CleanStale(tmp, workPrefixes...)
	t, err := atomicfs.MkdirTemp(tmp, prefix)
	if err != nil {
		return "", nil, fault.Op(err)
	}
	return t.Path, t.Remove, nil
}
