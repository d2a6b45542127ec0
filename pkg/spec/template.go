package spec

import (
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/reprobuild/repro/pkg/fault"
)

// Values are the template values of one build.
type Values struct {
	Name           string
	Version        string
	GitCommit      string
	GitShortCommit string
	Epoch          int64
	Date           string // yyyymmdd of the epoch, in UTC
	Vars           map[string]string
}

// SourceValues are the values of templates in source, which also see the
// platform being built.
type SourceValues struct {
	Values
	Os      string
	Arch    string
	Variant string
}

// DateOf formats an epoch as .Date does: yyyymmdd in UTC.
func DateOf(epoch int64) string { return time.Unix(epoch, 0).UTC().Format("20060102") }

// ForPlatform returns the source template values for p.
func (v Values) ForPlatform(p Platform) SourceValues {
	return SourceValues{Values: v, Os: p.OS, Arch: p.Arch, Variant: p.Variant}
}

func parseTemplate(field, text string) (*template.Template, error) {
	return template.New(field).Option("missingkey=error").Parse(text)
}

// Expand expands the template text found at field (a path such as
// config.env.PORT) with v. Errors name the field and its place in the file.
func (s *Spec) Expand(field, text string, v any) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	t, err := parseTemplate(field, text)
	if err != nil {
		return "", fault.Bad(s.ErrorAt(field, "bad template: %s", templateMsg(err)))
	}
	var b strings.Builder
	if err := t.Execute(&b, v); err != nil {
		return "", fault.Bad(s.ErrorAt(field, "expanding template: %s", templateMsg(err)))
	}
	return b.String(), nil
}

// templateMsg trims text/template's own location prefix, which names the
// template rather than the file.
func templateMsg(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "template: ")
	// "field:1:2: executing "field" at <.X>: ..." -> "at <.X>: ..."
	if i := strings.Index(msg, "executing "); i >= 0 {
		rest := msg[i+len("executing "):]
		if j := strings.Index(rest, " at "); j >= 0 {
			msg = rest[j+1:]
		}
	} else if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	if strings.Contains(msg, "map has no entry for key") {
		msg += "; define it under vars or pass --var key=value"
	}
	if strings.Contains(msg, "can't evaluate field") {
		msg += "; the values are .Name .Version .GitCommit .GitShortCommit .Epoch .Date .Vars.<key>, and .Os .Arch .Variant in source only"
	}
	return msg
}

// ErrorAt makes an error located at field, or at its nearest parent that
// has a place in the file.
func (s *Spec) ErrorAt(field, format string, args ...any) *Error {
	return &Error{File: s.File, Pos: s.PosOf(field), Field: field, Msg: fmt.Sprintf(format, args...)}
}

// PosOf returns where field is in the file, or where its nearest parent is.
func (s *Spec) PosOf(field string) Pos {
	for f := field; ; {
		if p, ok := s.pos[f]; ok {
			return p
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			if p, ok := s.pos[""]; ok {
				return p
			}
			return Pos{}
		}
		f = f[:i]
	}
}

func unwrapSpecError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Msg: err.Error()}
}
