package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/reprobuild/repro/pkg/build"
	"github.com/reprobuild/repro/pkg/diff"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/output"
)

// checkReproducible is build --check: the reprotest idea built in. It
// writes this build to a temporary layout, then builds again in a child
// process from a perturbed copy of the context (files created in reverse
// order, other mtimes, group and other permission bits cleared, umask
// 077), from another working directory, under another time zone, locale
// and GOMAXPROCS, and fails with the diff when any byte differs.
func (o *buildOpts) checkReproducible(ctx context.Context, b *build.Built, art output.Artifact) error {
	tmp, removeWork, err := workDir("repro-check-")
	if err != nil {
		return err
	}
	defer removeWork()
	first := filepath.Join(tmp, "first")
	if err := output.Write(ctx, imageref.Reference{Transport: imageref.OCI, Path: first, Tag: "check"}, art, output.Options{}); err != nil {
		return err
	}
	ctxCopy := filepath.Join(tmp, "context")
	skip := map[string]bool{}
	for _, out := range o.outputs {
		if r, err := imageref.Parse(out); err == nil && r.Transport != imageref.Registry {
			if abs, err := filepath.Abs(r.Path); err == nil {
				skip[abs] = true
			}
		}
	}
	if len(o.outputs) == 0 {
		skip[mustAbs("out")] = true // the default output
	}
	if err := perturbedCopy(b.Spec.Dir, ctxCopy, skip); err != nil {
		return fault.Op(fmt.Errorf("--check: copying the context: %w", err))
	}
	specRel, err := filepath.Rel(b.Spec.Dir, mustAbs(o.shape.file))
	if err != nil {
		return fault.Op(err)
	}
	second := filepath.Join(tmp, "second")
	elsewhere := filepath.Join(tmp, "cwd")
	if err := os.Mkdir(elsewhere, 0o700); err != nil {
		return fault.Op(err)
	}
	// The second build gets the first's request, serialised, with every
	// template value given whole (the copy holds no .git) and the spec in
	// the copy.
	req, err := o.shape.request(ctx, o.g, "")
	if err != nil {
		return err
	}
	req.File = filepath.Join(ctxCopy, specRel)
	req.Values = &b.Values
	req.Epoch = &b.Epoch
	raw, err := json.Marshal(req)
	if err != nil {
		return err
	}
	reqFile := filepath.Join(tmp, "request.json")
	if err := os.WriteFile(reqFile, raw, 0o600); err != nil {
		return fault.Op(err)
	}
	args := []string{"build", "-q", "--request", reqFile, "-o", "oci:" + second + ":check", "--offline"}
	if o.shape.cacheDir != "" {
		args = append(args, "--cache-dir", mustAbs(o.shape.cacheDir))
	}
	exe, err := os.Executable()
	if err != nil {
		return fault.Op(err)
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
	o.g.log.Info("--check: building again, perturbed", "context", ctxCopy, "GOMAXPROCS", procs)
	old := syscall.Umask(0o077) // inherited by the child
	err = cmd.Start()
	syscall.Umask(old)
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fault.Op(fmt.Errorf("--check: the second build failed: %v\n%s", err, stderr.String()))
	}
	got := strings.TrimSpace(stdout.String())
	if got == b.Digest.String() {
		o.g.log.Info("--check: identical", "digest", got)
		return nil
	}
	ra := imageref.Reference{Transport: imageref.OCI, Path: first, Tag: "check"}
	rb := imageref.Reference{Transport: imageref.OCI, Path: second, Tag: "check"}
	a, err := imageref.Open(ctx, ra)
	if err != nil {
		return err
	}
	defer a.Close()
	bb, err := imageref.Open(ctx, rb)
	if err != nil {
		return err
	}
	defer bb.Close()
	rep, err := diff.Compare(ctx, a, bb, "first build", "perturbed build")
	if err != nil {
		return err
	}
	rep.WriteText(o.g.stderr)
	return fault.Check(fmt.Errorf("--check: not reproducible: %s, then %s when perturbed (the differences are above)", b.Digest, got))
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

// perturbedCopy copies the tree at src to dst the way another machine
// might hold it: entries created in reverse order, group and other bits
// cleared, and other mtimes. Paths in skip (absolute) are left out, and so
// is .git.
func perturbedCopy(src, dst string, skip map[string]bool) error {
	type item struct {
		rel string
		fi  fs.FileInfo
	}
	var items []item
	err := filepath.Walk(src, func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if skip[p] || fi.Name() == ".git" && fi.IsDir() {
			if fi.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if rel != "." {
			items = append(items, item{rel, fi})
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(items, func(i, j int) bool { return items[i].rel > items[j].rel })
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	for i, it := range items {
		p := filepath.Join(dst, it.rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		m := it.fi.Mode()
		switch {
		case m.IsDir():
			if err := os.MkdirAll(p, 0o700); err != nil {
				return err
			}
		case m&fs.ModeSymlink != 0:
			t, err := os.Readlink(filepath.Join(src, it.rel))
			if err != nil {
				return err
			}
			if err := os.Symlink(t, p); err != nil {
				return err
			}
			continue
		case m.IsRegular():
			if err := copyFile(filepath.Join(src, it.rel), p, m.Perm()&0o700); err != nil {
				return err
			}
		default:
			continue // special files: the first build already refused them if used
		}
		if err := os.Chmod(p, m.Perm()&0o700); err != nil {
			return err
		}
		t := time.Unix(946684800+int64(i)*3607, 0)
		if err := os.Chtimes(p, t, t); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
