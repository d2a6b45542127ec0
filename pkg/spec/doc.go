// Package spec reads repro.yaml, format version 1: the declarative
// description of an image.
//
// Parsing is strict. The YAML is decoded node by node, so that every error
// names the file, line, column and field path (layers[1].contents[0].mode)
// and says what to do; unknown keys are errors. Defaults are applied and
// every field is validated when the spec is loaded, and every template is
// parsed and test-expanded then, so a broken template is bad input even when
// nothing uses it.
//
// The Go types here are the single source of truth for the spec's
// documentation: the JSON Schema and the field reference in specs/ are
// generated from their struct tags (make generate).
package spec
