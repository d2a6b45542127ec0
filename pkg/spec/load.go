package spec

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/reprobuild/repro/pkg/fault"
)

// LoadOptions are inputs that shape validation.
type LoadOptions struct {
	// Vars override the spec's vars (--var k=v). Templates are test-expanded
	// with the merged set, so a reference to a missing var is caught at load.
	Vars map[string]string
}

// Load reads, decodes and validates the spec at file. Its errors are
// fault.BadInput and, where they are about the spec's content, an ErrorList.
func Load(file string, opts LoadOptions) (*Spec, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fault.Bad(fmt.Errorf("%s: no such spec file; give its path with -f, or run repro in the directory holding repro.yaml", file))
		}
		return nil, fault.Bad(fmt.Errorf("reading spec: %w", err))
	}
	dir, err := filepath.Abs(filepath.Dir(file))
	if err != nil {
		return nil, fault.Op(err)
	}
	return Parse(file, dir, data, opts)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse decodes and validates spec data. name is used in messages; dir is
// the build context.
func Parse(name, dir string, data []byte, opts LoadOptions) (*Spec, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		e := &Error{File: name, Msg: err.Error()}
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			e.Pos = Pos{Line: line, Col: 1}
			e.Msg = "invalid YAML: " + m[2]
		} else if err.Error() == "EOF" {
			e.Msg = "the file is empty; start it with version: 1"
		} else {
			e.Msg = "invalid YAML: " + err.Error()
		}
		return nil, fault.Bad(ErrorList{e})
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fault.Bad(ErrorList{{File: name, Pos: nodePos(&extra), Msg: "a spec holds one YAML document; remove the second one (after ---)"}})
	}
	s := &Spec{File: name, Dir: dir, pos: positions{}}
	d := &decoder{file: name, pos: s.pos}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	d.decode(root, "", reflect.ValueOf(s).Elem())
	v := &validator{s: s, d: d, vars: opts.Vars}
	if len(d.errs) == 0 {
		v.validate()
	}
	if len(d.errs) > 0 {
		sortErrors(d.errs)
		if len(d.errs) > maxErrors {
			d.errs = append(d.errs[:maxErrors], &Error{File: name, Msg: fmt.Sprintf("and %d more problems", len(d.errs)-maxErrors)})
		}
		return nil, fault.Bad(d.errs)
	}
	return s, nil
}
