package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/reprobuild/repro/pkg/build"
	"github.com/reprobuild/repro/pkg/diff"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/imageref"
	"github.com/reprobuild/repro/pkg/output"
)

// Rebuilder builds req a second time and writes the image to the layout
// ref names, returning its digest. build --check re-executes itself (so
// that umask, time zone, locale and GOMAXPROCS differ too); InProcess
// builds in this process.
type Rebuilder func(ctx context.Context, req build.Request, ref imageref.Reference) (string, error)

// InProcess is the Rebuilder that builds with build.Run in this process.
func InProcess(ctx context.Context, req build.Request, ref imageref.Reference) (string, error) {
	b, err := build.Run(ctx, req)
	if err != nil {
		return "", err
	}
	if err := output.Write(ctx, ref, b.Artifact, output.Options{}); err != nil {
		return "", err
	}
	return b.Descriptor.Digest.String(), nil
}

// CheckOptions shape Check.
type CheckOptions struct {
	// TempDir receives both layouts and the perturbed copy; the caller
	// removes it.
	TempDir string
	// Skip lists absolute paths of the context that the copy leaves out
	// (the build's own outputs); .git is always left out.
	Skip []string
	// Rebuild builds the second time; nil means InProcess.
	Rebuild Rebuilder
	// Log receives progress; nil discards.
	Log *slog.Logger
}

// CheckResult is what Check found.
type CheckResult struct {
	// First and Second are the digests of the two builds.
	First, Second string
	// Diff explains the differences when the digests differ.
	Diff *diff.Report
}

// Identical reports whether the two builds gave the same digest.
func (r *CheckResult) Identical() bool { return r.First == r.Second }

// Check builds first's request again from a perturbed copy of its
// context (see PerturbedCopy), with first's template values and epoch
// given whole (the copy holds no .git), and compares the two. req is the
// request that built first.
func Check(ctx context.Context, first *build.Built, req build.Request, opts CheckOptions) (*CheckResult, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rebuild := opts.Rebuild
	if rebuild == nil {
		rebuild = InProcess
	}
	firstRef := imageref.Reference{Transport: imageref.OCI, Path: filepath.Join(opts.TempDir, "first"), Tag: "check"}
	if err := output.Write(ctx, firstRef, first.Artifact, output.Options{}); err != nil {
		return nil, err
	}
	copyDir := filepath.Join(opts.TempDir, "context")
	skip := map[string]bool{}
	for _, p := range opts.Skip {
		skip[p] = true
	}
	if err := PerturbedCopy(first.Spec.Dir, copyDir, func(p string) bool { return skip[p] }); err != nil {
		return nil, fault.Op(fmt.Errorf("copying the context: %w", err))
	}
	second := req
	second.File = filepath.Join(copyDir, filepath.FromSlash(first.Spec.SpecPath()))
	second.Values = &first.Values
	second.Epoch = &first.Epoch
	second.Format = first.Format
	second.LayerEpochs = first.LayerEpochs
	work := filepath.Join(opts.TempDir, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		return nil, fault.Op(err)
	}
	second.WorkDir = work
	secondRef := imageref.Reference{Transport: imageref.OCI, Path: filepath.Join(opts.TempDir, "second"), Tag: "check"}
	log.Info("building again, perturbed", "context", copyDir)
	got, err := rebuild(ctx, second, secondRef)
	if err != nil {
		return nil, err
	}
	res := &CheckResult{First: first.Descriptor.Digest.String(), Second: got}
	if res.Identical() {
		return res, nil
	}
	a, err := imageref.Open(ctx, firstRef)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	b, err := imageref.Open(ctx, secondRef)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if res.Diff, err = diff.Compare(ctx, a, b, "first build", "perturbed build"); err != nil {
		return nil, err
	}
	return res, nil
}

// PerturbedCopy copies the tree at src to dst the way another machine
// might hold it: entries created in reverse order, group and other
// permission bits cleared (as umask 077 would), other mtimes and atimes,
// another owner (4242:4343, where the process may chown) and an extended
// attribute (user.repro-test, where the file system takes one). Paths for
// which skip (may be nil) is true are left out, and so is every .git
// directory; special files are left out (a build refuses them anyway).
func PerturbedCopy(src, dst string, skip func(path string) bool) error {
	type item struct {
		rel string
		fi  fs.FileInfo
	}
	var items []item
	err := filepath.Walk(src, func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if skip != nil && skip(p) || fi.Name() == ".git" && fi.IsDir() {
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
			if err := chown(p); err != nil {
				return err
			}
			continue
		case m.IsRegular():
			if err := copyFile(filepath.Join(src, it.rel), p, m.Perm()&0o700); err != nil {
				return err
			}
		default:
			continue
		}
		if err := os.Chmod(p, m.Perm()&0o700); err != nil {
			return err
		}
		mt := time.Unix(946684800+int64(i)*3607, 0)
		if err := os.Chtimes(p, mt.Add(13*time.Second), mt); err != nil {
			return err
		}
		if err := chown(p); err != nil {
			return err
		}
		setXattr(p, "user.repro-test", fmt.Sprintf("perturbed-%d", i))
	}
	return nil
}

// chown gives p another owner where the process may; a process that may
// not (not root) keeps its own.
func chown(p string) error {
	err := os.Lchown(p, 4242, 4343)
	if errors.Is(err, fs.ErrPermission) {
		return nil
	}
	return err
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
