package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/reprobuild/repro/internal/yamlpos"
	"github.com/reprobuild/repro/pkg/fault"
)

// LoadOptions are inputs that shape validation.
type LoadOptions struct {
	// Vars override the spec's vars (--var k=v). Templates are test-expanded
	// with the merged set, so a reference to a missing var is caught at load.
	Vars map[string]string
}

// ErrNoSpecFile is wrapped by Load's error when there is no file at the
// path given.
var ErrNoSpecFile = errors.New("no such spec file")

// DefaultFile is the spec's name in its directory, where repro looks for
// it when given no other.
const DefaultFile = "repro.yaml"

// DirError is Load's error for a spec path that names a directory. Spec
// is the spec in it (Dir/repro.yaml), when there is one, else "".
type DirError struct{ Dir, Spec string }

func (e *DirError) Error() string {
	if e.Spec != "" {
		return fmt.Sprintf("%s is a directory, not a spec; the spec in it is %s", e.Dir, e.Spec)
	}
	return fmt.Sprintf("%s is a directory, not a spec; a spec is a file, like %s", e.Dir, DefaultFile)
}

// dirError describes dir, a directory given as a spec.
func dirError(dir string) *DirError {
	e := &DirError{Dir: dir}
	p := filepath.Join(dir, DefaultFile)
	if filepath.Clean(dir) == "." {
		p = "." + string(filepath.Separator) + DefaultFile
	}
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
		e.Spec = p
	}
	return e
}

// Load reads, decodes and validates the spec at file. Its errors are
// fault.BadInput and, where they are about the spec's content, an ErrorList.
// A file larger than MaxSpecSize, or one that is not a regular file, is
// refused before it is read.
func Load(file string, opts LoadOptions) (*Spec, error) {
	data, err := yamlpos.ReadFile(file, MaxSpecSize)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, fault.Bad(fmt.Errorf("%s: %w", file, ErrNoSpecFile))
		case errors.Is(err, yamlpos.ErrTooLarge):
			return nil, fault.Bad(fmt.Errorf("%w; a spec holds layers and small inline files: put big files in the build context and name them with source", err))
		case errors.Is(err, yamlpos.ErrNotRegular):
			if st, serr := os.Stat(file); serr == nil && st.IsDir() {
				return nil, fault.Bad(dirError(file))
			}
			return nil, fault.Bad(fmt.Errorf("%w; a spec is a regular file", err))
		}
		return nil, fault.Bad(fmt.Errorf("reading spec: %w", err))
	}
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return nil, fault.Op(err)
	}
	return Parse(file, dir, data, opts)
}

// Parse decodes and validates spec data. name is used in messages; dir is
// the build context.
func Parse(name, dir string, data []byte, opts LoadOptions) (*Spec, error) {
	root, e := yamlpos.Parse(name, data, yamlpos.ParseOptions{
		Empty:          "the spec is empty; start it with version: 1 and name: followed by the image name",
		SecondDocument: "a spec is one YAML document, and a second one starts here; remove the --- line and what follows, or make it a spec of its own",
	})
	if e != nil {
		return nil, fault.Bad(ErrorList{e})
	}
	d := newDecoder(name, root)
	s := &Spec{File: name, Dir: dir, SpecDir: dir, pos: d.Pos, keys: d.Keys}
	d.Decode(root, s)
	// Validate even what did not decode cleanly, so that one load reports
	// every problem; but drop what validation says about a field that
	// already has a decoding error, which would repeat it.
	decodeErrs := d.Errs
	d.Errs = nil
	if !d.Exhausted() {
		// (What an alias bomb left half-decoded is not worth validating.)
		v := &validator{s: s, d: d, vars: opts.Vars}
		v.validate()
	}
	errs := decodeErrs
	for _, ve := range d.Errs {
		dup := false
		for _, de := range decodeErrs {
			if related(ve.Field, de.Field) {
				dup = true
				break
			}
		}
		if !dup {
			errs = append(errs, ve)
		}
	}
	if len(errs) > 0 {
		errs.Sort()
		if len(errs) > maxErrors {
			errs = append(errs[:maxErrors], &Error{File: name, Pos: errs[maxErrors].Pos, Msg: fmt.Sprintf("and %d more problems; fix these first", len(errs)-maxErrors)})
		}
		return nil, fault.Bad(errs)
	}
	return s, nil
}
