package spec

import (
	"errors"
	"fmt"
	"regexp"
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

// templateName is the name every template is parsed under, so that
// text/template's messages can be taken apart reliably.
const templateName = "t"

func parseTemplate(text string) (*template.Template, error) {
	return template.New(templateName).Option("missingkey=error").Parse(text)
}

// maxExpansion bounds what one template may expand to.
const maxExpansion = 1 << 20

// limitedBuilder is a strings.Builder that refuses to grow past
// maxExpansion.
type limitedBuilder struct{ strings.Builder }

var errTooLong = errors.New("expands to more than 1 MiB")

func (b *limitedBuilder) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxExpansion {
		return 0, errTooLong
	}
	return b.Builder.Write(p)
}

// Expand expands the template text found at field (a path such as
// config.env.PORT) with v. Errors name the field and its place in the file.
func (s *Spec) Expand(field, text string, v any) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	t, err := parseTemplate(text)
	if err != nil {
		return "", fault.Bad(s.ErrorAt(field, "%q is not a valid template: %s; write values like {{.Version}} or {{.Vars.name}}", text, templateMsg(err)))
	}
	var b limitedBuilder
	if err := t.Execute(&b, v); err != nil {
		if errors.Is(err, errTooLong) {
			return "", fault.Bad(s.ErrorAt(field, "the template %s; shorten it", errTooLong))
		}
		msg, undefined := execMsg(err, v)
		at := s.ErrorAt(field, "%s", msg)
		if undefined != "" {
			at.Err = &UndefinedVarError{Name: undefined}
		}
		return "", fault.Bad(at)
	}
	return b.String(), nil
}

var (
	// "template: t:1:5: msg" or "template: t:1: msg"
	templatePosRE = regexp.MustCompile(`^template: ` + templateName + `:\d+(?::\d+)?: `)
	// executing "t" at <.X>: msg
	templateExecRE = regexp.MustCompile(`^executing "` + templateName + `" at <([^>]*)>: (.*)$`)
	noFieldRE      = regexp.MustCompile(`^can't evaluate field (\w+) in type`)
	noKeyRE        = regexp.MustCompile(`^map has no entry for key "(.*)"$`)
)

// templateMsg trims text/template's own location prefix, which names the
// template rather than the file.
func templateMsg(err error) string {
	return templatePosRE.ReplaceAllString(err.Error(), "")
}

const valueList = ".Name .Version .GitCommit .GitShortCommit .Epoch .Date .Vars.<key>, and in source also .Os .Arch .Variant"

// UndefinedVarError is the cause (Error.Err) of a template naming a
// variable, .Vars.NAME, that neither the spec's vars: nor the caller's
// define: a caller can name its own way to give one.
type UndefinedVarError struct{ Name string }

func (e *UndefinedVarError) Error() string { return fmt.Sprintf("no variable %q", e.Name) }

// execMsg explains a failure to execute a template with values v, and
// names the undefined variable when that was the failure.
func execMsg(err error, v any) (string, string) {
	msg := templateMsg(err)
	m := templateExecRE.FindStringSubmatch(msg)
	if m == nil {
		return "expanding the template: " + msg, ""
	}
	action, why := m[1], m[2]
	if f := noFieldRE.FindStringSubmatch(why); f != nil {
		_, inSource := v.(SourceValues)
		if (f[1] == "Os" || f[1] == "Arch" || f[1] == "Variant") && !inSource {
			return fmt.Sprintf("{{%s}} is only known in source, where each platform has its own; write the value out here, or use it in a source", action), ""
		}
		hint := ""
		if s := suggest(f[1], []string{"Name", "Version", "GitCommit", "GitShortCommit", "Epoch", "Date", "Vars", "Os", "Arch", "Variant"}); s != "" {
			hint = fmt.Sprintf("did you mean .%s? ", s)
		}
		return fmt.Sprintf("{{%s}}: there is no value .%s; %sthe values are %s", action, f[1], hint, valueList), ""
	}
	if k := noKeyRE.FindStringSubmatch(why); k != nil && strings.HasPrefix(action, ".Vars") {
		return fmt.Sprintf("{{%s}}: no variable %q; define it under vars:, or give it to the build", action, k[1]), k[1]
	}
	return fmt.Sprintf("{{%s}}: %s", action, why), ""
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

// Lines returns the lines of the file that field's value spans, counting
// from 1: from the line where it starts to the line before the next value
// that is not part of it (a later list item, or a later key of any
// mapping above it), or to the end of the file (last 0). A block scalar's
// lines are inside its field, and so are comments and blank lines before
// the next value. ok is false when the field was not given.
func (s *Spec) Lines(field string) (first, last int, ok bool) {
	p, ok := s.pos[field]
	if !ok {
		return 0, 0, false
	}
	first = p.Line
	inside := func(f string) bool {
		return f == field || strings.HasPrefix(f, field+".") || strings.HasPrefix(f, field+"[")
	}
	for _, m := range []positions{s.pos, s.keys} {
		for f, q := range m {
			if q.Line > first && !inside(f) && (last == 0 || q.Line-1 < last) {
				last = q.Line - 1
			}
		}
	}
	return first, last, true
}
