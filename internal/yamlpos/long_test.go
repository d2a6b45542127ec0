package yamlpos

import (
	"bytes"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// direct parses data with yaml.v3 alone, as Parse did before long scalars
// were cut out.
func direct(t *testing.T, data []byte) (*yaml.Node, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		return nil, err
	}
	return doc.Content[0], nil
}

func sameTree(a, b *yaml.Node) bool {
	if a.Kind != b.Kind || a.Value != b.Value || a.Tag != b.Tag || a.Line != b.Line || a.Column != b.Column || len(a.Content) != len(b.Content) {
		return false
	}
	for i := range a.Content {
		if !sameTree(a.Content[i], b.Content[i]) {
			return false
		}
	}
	return true
}

// TestLongScalarsReadAsYAMLReadsThem compares Parse with yaml.v3 alone on
// documents with long scalars, cut out or not: the trees must be equal,
// values, tags and positions.
func TestLongScalarsReadAsYAMLReadsThem(t *testing.T) {
	long := strings.Repeat("ab c", LongScalar/4+1)
	for _, c := range []struct {
		name string
		doc  string
		cut  bool // whether the long scalar is taken out
	}{
		{"double-quoted value", "a: 1\nb: \"" + long + "\"\nc: 2\n", true},
		{"escapes", "b: \"" + long + `\n\t\"\\\x41\u00e9\U0001F600\0\ \'\e\N\_\L\P` + "\"\n", true},
		{"single-quoted with a quote", "b: '" + long + "''s'\n", true},
		{"a list item", "l:\n  - \"" + long + "\"\n  - x\n", true},
		{"nested keys and dashes", "layers:\n  - contents:\n      - path: /a\n        content: \"" + long + "\"   # a comment\n", true},
		{"no newline at the end", "b: \"" + long + "\"", true},
		{"a second document", "b: \"" + long + "\"\n---\nc: 1\n", true},
		{"plain, left alone", "b: " + long + "\n", false},
		{"flow mapping, left alone", "b: {c: \"" + long + "\"}\n", false},
		{"inside a block scalar", "b: |\n  c: \"" + long + "\"\nd: 1\n", true},
		{"a continuation of a quoted scalar", "b: \"start\n  c: \"" + long + "\"\n", true},
		{"a control character, left to yaml.v3", "b: \"" + long + "\x01\"\n", false},
		{"an escaped slash, which yaml.v3 refuses", "b: \"" + long + `\/` + "\"\n", true},
		{"a bad escape", "b: \"" + long + `\q` + "\"\n", true},
		{"a surrogate escape", "b: \"" + long + `\uD800` + "\"\n", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := []byte(c.doc)
			_, cut := cutLongScalars(data)
			if (len(cut) > 0) != c.cut {
				t.Errorf("cut %d scalars, want cut=%v", len(cut), c.cut)
			}
			want, werr := direct(t, data)
			got, gerr := Parse("t.yaml", data, ParseOptions{Empty: "empty", SecondDocument: "second"})
			if werr != nil {
				if gerr == nil {
					t.Fatalf("yaml.v3 fails (%v), Parse does not", werr)
				}
				return
			}
			if gerr != nil {
				if strings.Contains(c.doc, "---") && gerr.Msg == "second" {
					return
				}
				t.Fatalf("Parse: %v", gerr)
			}
			if !sameTree(want, got) {
				t.Error("Parse reads the document otherwise than yaml.v3")
			}
		})
	}
}

// FuzzLongScalar compares Parse with yaml.v3 alone on a document whose
// line holds a long scalar around the fuzzed text.
func FuzzLongScalar(f *testing.F) {
	f.Add("b: \"", "x", "\"\n")
	f.Add("  - k: '", "it''s", "' # c\n")
	f.Add("b: \"", `\x41\u00e9\"`, "\"\nc: [1]\n")
	f.Add("b: |\n  \"", "x", "\"\n")
	pad := strings.Repeat("y", LongScalar)
	f.Fuzz(func(t *testing.T, head, mid, tail string) {
		if len(head) > 200 || len(tail) > 200 || len(mid) > 200 {
			return
		}
		data := []byte(head + pad + mid + tail)
		want, werr := direct(t, data)
		got, gerr := Parse("t.yaml", data, ParseOptions{Empty: "empty", SecondDocument: "second"})
		switch {
		case werr != nil && gerr == nil:
			t.Fatalf("yaml.v3 fails (%v), Parse does not", werr)
		case werr != nil || gerr != nil:
			return // both fail, or Parse refuses what yaml.v3 takes (a second document, an empty one)
		case !sameTree(want, got):
			t.Fatal("Parse reads the document otherwise than yaml.v3")
		}
	})
}
