package main

import (
	"errors"
	"fmt"
	"net/url"
	"testing"

	"github.com/reprobuild/repro/internal/netx"
	"github.com/reprobuild/repro/pkg/build"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/disk"
	"github.com/reprobuild/repro/pkg/imagetest"
	"github.com/reprobuild/repro/pkg/lock"
	"github.com/reprobuild/repro/pkg/sign"
	"github.com/reprobuild/repro/pkg/spec"
)

// TestFlagWording checks that cmd names the flag behind each library
// sentinel: the libraries name none (internal/depcheck
// TestLibrariesNameNoFlags).
func TestFlagWording(t *testing.T) {
	for _, c := range []struct {
		err          error
		prefix, hint string
	}{
		{fmt.Errorf("base: %w", cache.ErrOffline), "", "run once without --offline"},
		{fmt.Errorf("test: %w", imagetest.ErrNoPodman), "", "give --podman"},
		{fmt.Errorf("fits: %w", disk.ErrTooSmall), "", "raise --size"},
		{fmt.Errorf("layer: %w", build.ErrCacheMismatch), "--cache-verify: ", "build with --no-cache, and compare"},
		{fmt.Errorf("erofs: %w", disk.ErrPackerLimit), "", "run as root, or use --fs ext4"},
		{fmt.Errorf("apt: %w", &lock.MovedError{Spec: "app/repro.yaml", Err: errors.New("InRelease mismatch")}), "", "run repro lock --update -f app/repro.yaml to move to what it holds now"},
		{spec.ErrorList{{Msg: "tags[0]: no variable", Err: &spec.UndefinedVarError{Name: "env"}}}, "", "pass --var env=VALUE to give it"},
		{fmt.Errorf("pull: %w", &netx.Error{Host: "r.example", Tries: 4, Err: &netx.TimeoutError{Host: "r.example", While: "connecting"}}), "", "a slow server can be given longer with --timeout"},
		{fmt.Errorf("nope.yaml: %w", spec.ErrNoSpecFile), "", "give its path with -f, or run repro in the directory holding repro.yaml"},
		{&spec.DirError{Dir: ".", Spec: "./repro.yaml"}, "", "give the spec itself: -f ./repro.yaml"},
		{&spec.DirError{Dir: "sub"}, "", "give -f the spec file's path"},
		{fmt.Errorf("/tmp/adir is %w", disk.ErrOutputIsDir), "", "-o names the disk file (one inside it, say)"},
		{fmt.Errorf("x.tar: %w", sign.ErrNothingSignable), "", "write the image with -o oci:DIR[:TAG], or push it"},
		{fmt.Errorf("lock: %w", errors.Join(build.ErrNotLocked, &build.NeedsLockError{Spec: "a/repro.yaml"})), "--locked: ", "run repro lock -f a/repro.yaml"},
		{errors.Join(spec.ErrorList{{Field: "base", Msg: "the lock does not pin base b:1"}}, build.ErrNotLocked, &build.NeedsLockError{Spec: "a/repro.yaml"}), "", "run repro lock -f a/repro.yaml (--locked builds only what the lock pins)"},
		{errors.Join(errors.New("base"), build.ErrUnpinned, &build.NeedsLockError{Spec: "repro.yaml"}), "", "run repro lock -f repro.yaml, or pass --allow-unpinned to resolve the tag now (the build is then not reproducible)"},
		{errors.Join(build.ErrNoToolchain, build.ErrUnpinned, &build.NeedsLockError{Spec: "repro.yaml"}), "", "run repro lock -f repro.yaml, or pass --allow-unpinned to compile with the go on PATH as it is (the build is then not reproducible)"},
		{fmt.Errorf("packages: %w", &build.NeedsLockError{Spec: "x/repro.yaml"}), "", "run repro lock -f x/repro.yaml"},
		{fmt.Errorf("part: %w", build.ErrPartFormat), "", "give index the --format the build was given"},
		{fmt.Errorf("part: %w", build.ErrPartCompression), "", "give index the --compression the build was given"},
		{&url.Error{Op: "parse", URL: "x", Err: errors.New("bad")}, "", ""},
	} {
		prefix, hint := flagWording(c.err)
		if prefix != c.prefix || hint != c.hint {
			t.Errorf("flagWording(%v) = %q, %q; want %q, %q", c.err, prefix, hint, c.prefix, c.hint)
		}
	}
}
