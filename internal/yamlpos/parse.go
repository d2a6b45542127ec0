package yamlpos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Node is a node of a parsed document.
type Node = yaml.Node

// ParseOptions word the messages about a document as a whole.
type ParseOptions struct {
	// Empty is the message for a document with nothing in it.
	Empty string
	// SecondDocument is the message for a second document (after ---).
	SecondDocument string
}

// Parse parses data as one YAML document and returns its root node. A
// syntax error is located at the line where the problem is (yaml.v3 names
// the line where the enclosing block starts, if any line at all).
//
// A scalar of LongScalar bytes or more, quoted on one line, is cut out
// before yaml.v3 reads the document and unquoted once into its node: the
// value is then held once, not several times over.
func Parse(name string, data []byte, opts ParseOptions) (root *yaml.Node, e *Error) {
	// (parse recovers from yaml.v3's panics: a file is bad input, never
	// a crash.)
	if cutData, cut := cutLongScalars(data); cut != nil {
		// The long scalars are taken out; if the document then reads
		// differently, or not at all, it is read whole, as written.
		if root, e := parse(name, cutData, opts); e == nil && restoreLongScalars(root, data, cut) {
			return root, nil
		}
	}
	return parse(name, data, opts)
}

func parse(name string, data []byte, opts ParseOptions) (root *yaml.Node, e *Error) {
	defer func() {
		if r := recover(); r != nil {
			root, e = nil, &Error{File: name, Pos: Pos{Line: 1, Col: 1}, Msg: fmt.Sprintf("invalid YAML: %v", r)}
		}
	}()
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: name, Pos: Pos{Line: 1, Col: 1}, Msg: opts.Empty}
		}
		return nil, syntaxError(name, data, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(name, data, err)
	case len(extra.Content) == 1 && IsNull(extra.Content[0]) && extra.Content[0].Value == "":
		// A trailing --- with nothing after it: harmless.
	default:
		return nil, &Error{File: name, Pos: NodePos(&extra), Msg: opts.SecondDocument}
	}
	root = &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if IsNull(root) {
		return nil, &Error{File: name, Pos: NodePos(root), Msg: opts.Empty}
	}
	return root, nil
}

var yamlErrRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// maxProbeLines and maxProbeBytes bound the work of locating a syntax
// error.
const (
	maxProbeLines = 2000
	maxProbeBytes = 32 << 20
)

// syntaxError turns a YAML syntax error into an Error at the line where
// the problem is: the first line at which the document, cut there, fails
// with the same complaint.
func syntaxError(name string, data []byte, err error) *Error {
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
func parseAll(data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
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

// NodePos is where n starts.
func NodePos(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

// IsNull reports whether n is YAML's null (nothing, ~ or null).
func IsNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// Resolve follows aliases to the node they name.
func Resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// KindName describes n for a message: a mapping, a list, nothing, or the
// quoted scalar.
func KindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if IsNull(n) {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unexpected node"
}

// IsScalar, IsMapping and IsList report n's kind.
func IsScalar(n *yaml.Node) bool  { return n.Kind == yaml.ScalarNode }
func IsMapping(n *yaml.Node) bool { return n.Kind == yaml.MappingNode }
func IsList(n *yaml.Node) bool    { return n.Kind == yaml.SequenceNode }
