package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestGeneratedFilesUpToDate fails when specs/repro.schema.json or the
// field reference in specs/README.md no longer match the types, so that go
// test catches what make check-generate does.
func TestGeneratedFilesUpToDate(t *testing.T) {
	dir := filepath.Join("..", "..", "specs")
	schema, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "repro.schema.json")); err != nil || string(got) != string(schema) {
		t.Errorf("specs/repro.schema.json is stale (err %v); run make generate", err)
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := ReplaceFieldReference(readme)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(readme) {
		t.Errorf("the field reference in specs/README.md is stale; run make generate")
	}
}

func TestSchemaDeterministic(t *testing.T) {
	a, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		b, _ := Schema()
		if string(a) != string(b) {
			t.Fatal("Schema() differs between calls")
		}
	}
	if !strings.HasSuffix(string(a), "}\n") || !strings.HasPrefix(string(a), "{\n  \"") {
		t.Error("the schema is not indented by two spaces with a final newline")
	}
}

// TestSchemaCoversTypes checks the schema's shape: every object closed to
// other keys, and every field of every spec type present, with a
// description.
func TestSchemaCoversTypes(t *testing.T) {
	data, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(data, &root); err != nil {
		t.Fatalf("the schema is not JSON: %v", err)
	}
	if root["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v", root["$schema"])
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["type"] == "object" {
				if _, ok := v["properties"]; ok && v["additionalProperties"] != false {
					t.Errorf("%s: additionalProperties is %v, want false", path, v["additionalProperties"])
				}
				if _, ok := v["properties"]; !ok && v["additionalProperties"] == nil {
					t.Errorf("%s: an object with neither properties nor additionalProperties", path)
				}
			}
			for k, c := range v {
				walk(path+"/"+k, c)
			}
		case []any:
			for _, c := range v {
				walk(path+"/[]", c)
			}
		}
	}
	walk("#", root)

	defs := root["$defs"].(map[string]any)
	objects := map[reflect.Type]map[string]any{reflect.TypeOf(Spec{}): root}
	for _, sd := range structDoc[1:] {
		objects[sd.t] = defs[sd.def].(map[string]any)
	}
	for typ, obj := range objects {
		props := obj["properties"].(map[string]any)
		names := fieldNames(typ)
		if len(props) != len(names) {
			t.Errorf("%s: %d properties, %d fields", typ.Name(), len(props), len(names))
		}
		for _, n := range names {
			p, ok := props[n].(map[string]any)
			if !ok {
				t.Errorf("%s.%s is not in the schema", typ.Name(), n)
				continue
			}
			if d, _ := p["description"].(string); d == "" {
				t.Errorf("%s.%s has no description", typ.Name(), n)
			}
		}
	}
	req := root["required"].([]any)
	if len(req) != 2 || req[0] != "name" || req[1] != "version" {
		t.Errorf("required = %v, want [name version]", req)
	}
}

// TestSchemaPatterns checks that the schema's patterns agree with the
// parser on sample values (the patterns are ECMA-262, Go's regexp reads
// them the same for these).
func TestSchemaPatterns(t *testing.T) {
	mode := regexp.MustCompile(modePattern)
	for _, s := range []string{"0644", "644", "0o755", "0O7", "07777", "0000644", "0", "0o0", "17777", "0o99", "", "0o", "8", "00010000", "-1", "0x7"} {
		_, err := ParseMode(s)
		if got := mode.MatchString(s); got != (err == nil) {
			t.Errorf("mode %q: pattern matches %v, ParseMode error %v", s, got, err)
		}
	}
	plat := regexp.MustCompile(platformPattern())
	for _, s := range []string{"linux/amd64", "linux/arm/v7", "linux/arm64/v8", "windows/amd64", "linux/386", "linux/386/v1", "linux/arm/v9", "macos/arm64", "linux/amd64/", "linux", "linux/ppc64le/power9", "js/wasm"} {
		_, err := ParsePlatform(s)
		if got := plat.MatchString(s); got != (err == nil) {
			t.Errorf("platform %q: pattern matches %v, ParsePlatform error %v", s, got, err)
		}
	}
}

func TestFieldReference(t *testing.T) {
	ref := FieldReference()
	for _, sd := range structDoc {
		if !strings.Contains(ref, "### "+sd.title+"\n") {
			t.Errorf("no section for %s", sd.title)
		}
		for _, n := range fieldNames(sd.t) {
			if !strings.Contains(ref, "| `"+n+"`") {
				t.Errorf("%s: no row for %s", sd.title, n)
			}
		}
	}
	for _, want := range []string{
		"| `version` (required) | integer: 1 |",
		"| `platforms` | list of platforms | [linux/amd64] |",
		"| `mode` | octal mode string |",
		"| `epoch` | integer or `git` |",
		"port[/tcp\\|udp\\|sctp]", // escaped in a table cell
	} {
		if !strings.Contains(ref, want) {
			t.Errorf("the reference lacks %q", want)
		}
	}
}

func TestReplaceFieldReference(t *testing.T) {
	in := "# Title\n\nintro\n\n" + BeginFieldReference + "\nold\n" + EndFieldReference + "\n\noutro\n"
	out, err := ReplaceFieldReference([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := "# Title\n\nintro\n\n" + BeginFieldReference + "\n" + FieldReference() + "\n" + EndFieldReference + "\n\noutro\n"
	if string(out) != want {
		t.Errorf("ReplaceFieldReference:\n%s\nwant:\n%s", out, want)
	}
	again, _ := ReplaceFieldReference(out)
	if string(again) != string(out) {
		t.Error("ReplaceFieldReference is not idempotent")
	}
	for _, bad := range []string{
		"no markers",
		EndFieldReference + "\n" + BeginFieldReference,
		BeginFieldReference + BeginFieldReference + EndFieldReference,
		BeginFieldReference + "\n",
	} {
		if _, err := ReplaceFieldReference([]byte(bad)); err == nil || !strings.Contains(err.Error(), "<!-- BEGIN GENERATED FIELDS -->") {
			t.Errorf("ReplaceFieldReference(%q) = %v, want a marker error", bad, err)
		}
	}
}
