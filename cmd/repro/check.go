package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/reprobuild/repro/pkg/build"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/verify"
)

// checkReproducible is build --check: the reprotest idea built in.
// verify.Check writes this build to a temporary layout and builds again
// from a perturbed copy of the context (verify.PerturbedCopy: reverse
// order, other modes, mtimes, atimes, owners and xattrs); the second build
// runs in a child process (reexec), from another working directory, under
// umask 077 and another time zone, locale and GOMAXPROCS. Any difference
// fails with the diff.
func (o *buildOpts) checkReproducible(ctx context.Context, b *build.Built) error {
	tmp, removeWork, err := workDir("repro-check-")
	if err != nil {
		return err
	}
	defer removeWork()
	var skip []string
	for _, out := range o.outputs {
		if r, err := imageref.Parse(out); err == nil && r.Transport != imageref.Registry {
			if abs, err := filepath.Abs(r.Path); err == nil {
				skip = append(skip, abs)
			}
		}
	}
	if len(o.outputs) == 0 {
		skip = append(skip, mustAbs("out")) // the default output
	}
	req, err := o.shape.request(ctx, o.g, "")
	if err != nil {
		return err
	}
	res, err := verify.Check(ctx, b, req, verify.CheckOptions{TempDir: tmp, Skip: skip, Rebuild: o.reexec, Log: o.g.log})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("--check: %w", err)
	}
	if res.Identical() {
		o.g.log.Info("--check: identical", "digest", res.Second)
		return nil
	}
	res.Diff.WriteText(o.g.stderr)
	return fault.Check(fmt.Errorf("--check: not reproducible: %s, then %s when perturbed (the differences are above)", res.First, res.Second))
}

// reexec is --check's second build: this binary again, handed req as a
// serialised build.Request, writing the layout ref names. Its working
// directory is another, and its umask, time zone, locale and GOMAXPROCS
// are others, which only a process of its own can have.
func (o *buildOpts) reexec(ctx context.Context, req build.Request, ref imageref.Reference) (string, error) {
	raw, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	reqFile := filepath.Join(req.WorkDir, "request.json")
	if err := os.WriteFile(reqFile, raw, 0o600); err != nil {
		return "", fault.Op(err)
	}
	elsewhere := filepath.Join(req.WorkDir, "cwd")
	if err := os.Mkdir(elsewhere, 0o700); err != nil {
		return "", fault.Op(err)
	}
	args := []string{"build", "-q", "--request", reqFile, "-o", "oci:" + ref.Path + ":" + ref.Tag, "--offline", "--no-cache"}
	if o.shape.cacheDir != "" {
		args = append(args, "--cache-dir", mustAbs(o.shape.cacheDir))
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fault.Op(err)
	}
	procs := 1
	if runtime.GOMAXPROCS(0) == 1 {
		procs = 3
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Dir = elsewhere
	cmd.Env = append(os.Environ(), "TZ=Pacific/Chatham", "LC_ALL=tr_TR.UTF-8", "LANG=tr_TR.UTF-8",
		fmt.Sprintf("GOMAXPROCS=%d", procs), "SOURCE_DATE_EPOCH="+fmt.Sprint(time.Now().Unix()))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// pkg/verify has said "building again, perturbed"; this is the process's part.
	o.g.log.Debug("--check: the second build's process", "dir", elsewhere, "GOMAXPROCS", procs, "TZ", "Pacific/Chatham", "LC_ALL", "tr_TR.UTF-8", "umask", "077")
	old := syscall.Umask(0o077) // inherited by the child
	err = cmd.Start()
	syscall.Umask(old)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fault.Op(fmt.Errorf("the second build failed: %v\n%s", err, stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}
