package yamlpos

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a line and column in a file, both counting from 1.
type Pos struct{ Line, Col int }

// Error is one problem with a file, located in it.
type Error struct {
	File  string
	Pos   Pos
	Field string // field path; empty for the document as a whole
	Msg   string // what is wrong and what to do
	// Err, when set, is the cause as a value (a typed or sentinel error
	// that a caller tells apart with errors.Is or errors.As); Msg already
	// says it.
	Err error
}

func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Pos.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Pos.Line, e.Pos.Col)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in a file, in file order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap gives errors.Is and errors.As every problem of the list.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// Sort orders l by position, keeping the order of errors at one place.
func (l ErrorList) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Pos.Line != l[j].Pos.Line {
			return l[i].Pos.Line < l[j].Pos.Line
		}
		return l[i].Pos.Col < l[j].Pos.Col
	})
}

// Related reports whether field paths a and b are the same or one holds
// the other (layers[0] holds layers[0].name).
func Related(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if !strings.HasPrefix(b, a) {
		return false
	}
	return a == "" || len(a) == len(b) || b[len(a)] == '.' || b[len(a)] == '['
}

// JoinField is the field path of name under parent.
func JoinField(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// LastField is the last element of a field path, for hints that quote the
// key as the user wrote it.
func LastField(path string) string {
	if path == "" {
		return "the top level"
	}
	if i := strings.LastIndexAny(path, ".]"); i >= 0 && path[i] == '.' {
		return path[i+1:]
	}
	return path
}
