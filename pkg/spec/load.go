package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

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

// Parse decodes and validates spec data. name is used in messages; dir is
// the build context.
func Parse(name, dir string, data []byte, opts LoadOptions) (*Spec, error) {
	root, e := parseYAML(name, data)
	if e != nil {
		return nil, fault.Bad(ErrorList{e})
	}
	s := &Spec{File: name, Dir: dir, pos: positions{}, keys: positions{}}
	d := &decoder{file: name, pos: s.pos, keys: s.keys, budget: 100*countNodes(root) + 10000}
	d.decode(root, "", reflect.ValueOf(s).Elem())
	// Validate even what did not decode cleanly, so that one load reports
	// every problem; but drop what validation says about a field that
	// already has a decoding error, which would repeat it.
	decodeErrs := d.errs
	d.errs = nil
	if d.budget >= 0 {
		// (What an alias bomb left half-decoded is not worth validating.)
		v := &validator{s: s, d: d, vars: opts.Vars}
		v.validate()
	}
	errs := decodeErrs
	for _, ve := range d.errs {
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
		sortErrors(errs)
		if len(errs) > maxErrors {
			errs = append(errs[:maxErrors], &Error{File: name, Pos: errs[maxErrors].Pos, Msg: fmt.Sprintf("and %d more problems; fix these first", len(errs)-maxErrors)})
		}
		return nil, fault.Bad(errs)
	}
	return s, nil
}

// parseYAML parses data as one YAML document and returns its root node.
func parseYAML(name string, data []byte) (root *yaml.Node, e *Error) {
	defer func() {
		// yaml.v3 has panicked on malformed input before; a spec is
		// bad input, never a crash.
		if r := recover(); r != nil {
			root, e = nil, &Error{File: name, Pos: Pos{1, 1}, Msg: fmt.Sprintf("invalid YAML: %v", r)}
		}
	}()
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: name, Pos: Pos{1, 1}, Msg: "the spec is empty; start it with version: 1 and name: followed by the image name"}
		}
		return nil, yamlError(name, data, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlError(name, data, err)
	case len(extra.Content) == 1 && isNull(extra.Content[0]) && extra.Content[0].Value == "":
		// A trailing --- with nothing after it: harmless.
	default:
		return nil, &Error{File: name, Pos: nodePos(&extra), Msg: "a spec is one YAML document, and a second one starts here; remove the --- line and what follows, or make it a spec of its own"}
	}
	root = &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if isNull(root) {
		return nil, &Error{File: name, Pos: nodePos(root), Msg: "the spec is empty; start it with version: 1 and name: followed by the image name"}
	}
	return root, nil
}

var yamlErrRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// maxProbeLines bounds the work of locating a YAML syntax error.
const (
	maxProbeLines = 2000
	maxProbeBytes = 32 << 20
)

// yamlError turns a YAML syntax error into an Error at the line where the
// problem is. yaml.v3 names the line where the enclosing block starts, if
// any line at all, so the line is found anew: the first line at which the
// document, cut there, fails with the same complaint.
func yamlError(name string, data []byte, err error) *Error {
	msg, line := err.Error(), 0
	if m := yamlErrRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	start := max(line, 1)
	end := min(len(lines), start+maxProbeLines)
	probed := 0
	for l := start; l <= end && probed < maxProbeBytes; l++ {
		cut := bytes.Join(lines[:l], nil)
		probed += len(cut)
		perr := parseAll(cut)
		if perr == nil {
			continue
		}
		pmsg := perr.Error()
		if m := yamlErrRE.FindStringSubmatch(pmsg); m != nil {
			pmsg = m[2]
		}
		if pmsg == msg {
			line = l
			break
		}
	}
	if line < 1 || line > len(lines) {
		line = 1
	}
	col, hint := 1, yamlHint(msg)
	if line <= len(lines) {
		text := lines[line-1]
		indent := text[:len(text)-len(bytes.TrimLeft(text, " \t"))]
		switch {
		case bytes.ContainsRune(indent, '\t'):
			col, hint = bytes.IndexByte(indent, '\t')+1, "; indent with spaces, never tabs"
		case len(bytes.TrimSpace(text)) > 0:
			col = len(indent) + 1
		}
	}
	return &Error{File: name, Pos: Pos{Line: line, Col: col}, Msg: "invalid YAML: " + msg + hint}
}

// parseAll parses every YAML document of data and returns the first error.
func parseAll(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// yamlHint says what to do about some of yaml.v3's complaints.
func yamlHint(msg string) string {
	switch {
	case strings.Contains(msg, "tab character"):
		return "; indent with spaces, never tabs"
	case strings.Contains(msg, "did not find expected key"),
		strings.Contains(msg, "did not find expected '-' indicator"),
		strings.Contains(msg, "block sequence entries are not allowed"):
		return "; check the indentation here: the keys of one mapping, and the items of one list, line up in one column"
	case strings.Contains(msg, "mapping values are not allowed"):
		return "; a value that holds \": \" must be quoted"
	case strings.Contains(msg, "did not find expected ',' or ']'"):
		return "; close the [ list with ], and check the quotes before it"
	case strings.Contains(msg, "did not find expected ',' or '}'"):
		return "; close the { mapping with }, and check the quotes before it"
	case strings.Contains(msg, "found unexpected end of stream"):
		return "; a quote or bracket is not closed"
	case strings.Contains(msg, "cannot start any token"):
		return "; quote the value"
	}
	return ""
}
