package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// The JSON Schema of repro.yaml and the field reference of specs/README.md
// are generated from the struct tags of the types in types.go, so that the
// documentation cannot drift from the parser. go run
// ./pkg/spec/internal/genschema writes them (make generate).

// SchemaURL is the JSON Schema dialect of Schema.
const SchemaURL = "https://json-schema.org/draft/2020-12/schema"

// Markers around the generated part of specs/README.md.
const (
	BeginFieldReference = "<!-- BEGIN GENERATED FIELDS -->"
	EndFieldReference   = "<!-- END GENERATED FIELDS -->"
)

// schemaPatterns are the regular expressions (shared with validation) that
// a string field, the items of a list field, or the keys of a mapping field
// must match, by Type.Field.
var schemaPatterns = map[string]*regexp.Regexp{
	"Spec.Name":             nameRE,
	"Spec.Vars":             varKeyRE,
	"Content.SHA256":        hexRE,
	"Config.Env":            envKeyRE,
	"Config.ExposedPorts":   portRE,
	"Config.StopSignal":     signalRE,
	"Layer.Packages":        wantedRE,
	"Apt.Prefer":            pkgNameRE,
	"Apt.Exclude":           pkgNameRE,
	"AptSnapshot.Timestamp": snapshotRE,
	"AptSource.Suites":      suiteRE,
	"AptSource.Components":  suiteRE,
	"Group.Name":            accountRE,
	"User.Name":             accountRE,
}

// schemaEnums are the values of fields whose values are a closed set kept
// in code rather than in an enum tag.
var schemaEnums = map[string]func() []string{
	"Content.Capabilities": capabilityNames,
}

func capabilityNames() []string {
	names := make([]string, 0, len(capabilities))
	for n := range capabilities {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// structDoc names and describes each mapping of a spec, in the order the
// reference lists them.
var structDoc = []struct {
	t      reflect.Type
	def    string // the $defs name
	title  string // the reference's heading, a path of the spec
	anchor string
	intro  string
}{
	{reflect.TypeOf(Spec{}), "", "Top level", "top-level", "The keys of the spec file itself."},
	{reflect.TypeOf(Layer{}), "layer", "layers[]", "layers", "Each entry of `layers` is one image layer, in order. A layer has `contents` (files of the build context, inline content, URLs, links, directories, removals) or `packages` (Debian packages, which need `apt`), not both."},
	{reflect.TypeOf(Content{}), "content", "layers[].contents[]", "layerscontents", "Each entry of a layer's `contents` writes one path (a directory source writes a tree). It is a file (from `source`, `content` or `url`), or has a `type`."},
	{reflect.TypeOf(Config{}), "config", "config", "config", "The OCI image config. Fields left out stay out of the image config."},
	{reflect.TypeOf(Secrets{}), "secrets", "secrets", "secrets", "The secret guard scans every file a build adds and the config's env, labels, cmd, entrypoint and annotations, and refuses private keys, cloud and forge tokens, registry and kube credentials and password-like env values (exit 2). `allow` is the only way past it."},
	{reflect.TypeOf(SecretAllow{}), "secretAllow", "secrets.allow[]", "secretsallow", "One allow entry: a path or glob, optionally narrowed to one file (`sha256`) or one rule (`rule`), always with a `reason`."},
	{reflect.TypeOf(Apt{}), "apt", "apt", "apt", "Where the Debian packages of `packages` layers come from. Every InRelease must be signed by a key of `keyring`; every index and `.deb` is checked against the SHA-256 its signed index lists, and `repro lock` pins them all (see [Debian packages](#debian-packages))."},
	{reflect.TypeOf(AptSource{}), "aptSource", "apt.sources[]", "aptsources", "One Debian-style repository, read for each of its suites and components (`dists/<suite>/<component>/binary-<arch>/`)."},
	{reflect.TypeOf(AptSnapshot{}), "aptSnapshot", "apt.snapshot", "aptsnapshot", "A snapshot archive (snapshot.debian.org's layout) that `repro build` fetches a pinned `.deb` from when its source has deleted it; the lock records the url and timestamp."},
	{reflect.TypeOf(Accounts{}), "accounts", "accounts", "accounts", "Users and groups. repro writes `/etc/passwd`, `/etc/group` and `/etc/shadow` (and `/etc/gshadow` when the base has one) as one final layer: the base's entries, with these added or replacing the base's entry of the same name, sorted by id; `root` is always there. Passwords are locked (`*`). A layer may not write these files too."},
	{reflect.TypeOf(Group{}), "group", "accounts.groups[]", "accountsgroups", "One group."},
	{reflect.TypeOf(User{}), "user", "accounts.users[]", "accountsusers", "One user. Its home directory is not created; add it to a layer when the user needs one."},
	{reflect.TypeOf(Systemd{}), "systemd", "systemd", "systemd", "systemd units enabled without running systemctl. repro finds each unit in the image's unit search path (as Debian 12's systemd orders it: `/etc/systemd/system`, `/usr/local/lib/systemd/system`, `/lib/systemd/system`, `/usr/lib/systemd/system`), reads its `[Install]` section and writes the links `systemctl enable` makes, pointing at the unit file's absolute path, as one final layer after `accounts`. A unit that is missing, masked or has no `[Install]` section is bad input."},
}

func structInfo(t reflect.Type) (def, title, anchor string, ok bool) {
	for _, s := range structDoc {
		if s.t == t {
			return s.def, s.title, s.anchor, true
		}
	}
	return "", "", "", false
}

// modePattern matches exactly the strings ParseMode accepts: octal digits,
// optionally after 0o, at most 07777.
const modePattern = `^(0[oO])?0*[0-7]{1,4}$`

// platformPattern matches the platforms ParsePlatform accepts.
func platformPattern() string {
	oses := make([]string, 0, len(knownOS))
	for os := range knownOS {
		oses = append(oses, os)
	}
	sort.Strings(oses)
	arches := make([]string, 0, len(knownArch))
	for a := range knownArch {
		arches = append(arches, a)
	}
	sort.Strings(arches)
	var alts []string
	for _, a := range arches {
		vs := knownArch[a]
		if len(vs) == 0 {
			alts = append(alts, regexp.QuoteMeta(a))
			continue
		}
		q := make([]string, len(vs))
		for i, v := range vs {
			q[i] = regexp.QuoteMeta(v)
		}
		alts = append(alts, fmt.Sprintf("%s(/(%s))?", regexp.QuoteMeta(a), strings.Join(q, "|")))
	}
	return fmt.Sprintf("^(%s)/(%s)$", strings.Join(oses, "|"), strings.Join(alts, "|"))
}

// Schema returns the JSON Schema (draft 2020-12) of repro.yaml, format
// version 1: deterministic, indented by two spaces, ending in a newline.
func Schema() ([]byte, error) {
	defs := map[string]any{
		"mode": map[string]any{
			"type":        "string",
			"pattern":     modePattern,
			"description": "Permission bits as a quoted octal string, like \"0644\" (setuid, setgid and sticky included: at most \"07777\").",
			"examples":    []any{"0644", "0755"},
		},
		"platform": map[string]any{
			"type":        "string",
			"pattern":     platformPattern(),
			"description": "os/arch[/variant], as Go and OCI name them.",
			"examples":    []any{"linux/amd64", "linux/arm64", "linux/arm/v7"},
		},
		"epoch": map[string]any{
			"anyOf": []any{
				map[string]any{"type": "integer", "minimum": 0, "maximum": int64(maxEpoch)},
				map[string]any{"const": "git"},
			},
			"description": "Whole seconds since 1970, or the word git.",
		},
	}
	for _, sd := range structDoc[1:] {
		defs[sd.def] = structSchema(sd.t)
	}
	root := structSchema(reflect.TypeOf(Spec{}))
	root["$schema"] = SchemaURL
	root["title"] = "repro.yaml"
	root["description"] = "A repro build spec, format version 1: the declarative description of a reproducible OCI image."
	root["$defs"] = defs
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func structSchema(t reflect.Type) map[string]any {
	props := map[string]any{}
	required := []string{}
	deps := map[string]any{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		k := yamlKey(f)
		if k == "" {
			continue
		}
		props[k] = fieldSchema(t, f)
		if f.Tag.Get("required") == "true" {
			required = append(required, k)
		}
		if r := f.Tag.Get("requires"); r != "" {
			deps[k] = strings.Split(r, ",")
		}
	}
	s := map[string]any{
		"type":                 "object",
		"additionalProperties": false,
		"properties":           props,
	}
	if len(required) > 0 {
		sort.Strings(required)
		s["required"] = required
	}
	if len(deps) > 0 {
		s["dependentRequired"] = deps
	}
	return s
}

func fieldSchema(owner reflect.Type, f reflect.StructField) map[string]any {
	key := owner.Name() + "." + f.Name
	s := typeSchema(f.Type, key, f.Tag.Get("enum"))
	desc := f.Tag.Get("doc")
	if d := f.Tag.Get("default"); d != "" {
		desc += " Default: " + d + "."
	}
	// A $ref with siblings is fine in 2020-12.
	s["description"] = desc
	if e := f.Tag.Get("example"); e != "" {
		s["examples"] = []any{typedValue(f.Type, e)}
	}
	return s
}

func typedValue(t reflect.Type, v string) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Int {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	if t.Kind() == reflect.Slice && strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		// A flow list, as the example tag writes it: [a, b].
		items := []any{}
		for _, it := range strings.Split(strings.TrimSuffix(strings.TrimPrefix(v, "["), "]"), ",") {
			items = append(items, typedValue(t.Elem(), strings.TrimSpace(it)))
		}
		return items
	}
	return v
}

func typeSchema(t reflect.Type, key, enum string) map[string]any {
	switch t {
	case modeType:
		return map[string]any{"$ref": "#/$defs/mode"}
	case epochType:
		return map[string]any{"$ref": "#/$defs/epoch"}
	case platformType:
		return map[string]any{"$ref": "#/$defs/platform"}
	}
	if def, _, _, ok := structInfo(t); ok && def != "" {
		return map[string]any{"$ref": "#/$defs/" + def}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeSchema(t.Elem(), key, enum)
	case reflect.String:
		s := map[string]any{"type": "string"}
		if enum != "" {
			s["enum"] = strings.Split(enum, ",")
		}
		if re := schemaPatterns[key]; re != nil {
			s["pattern"] = re.String()
		}
		return s
	case reflect.Int:
		s := map[string]any{"type": "integer", "minimum": 0, "maximum": 1<<31 - 1}
		if enum != "" {
			var vals []any
			for _, e := range strings.Split(enum, ",") {
				n, _ := strconv.Atoi(e)
				vals = append(vals, n)
			}
			s = map[string]any{"type": "integer", "enum": vals}
		}
		return s
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Slice:
		items := typeSchema(t.Elem(), key, enum)
		if e := schemaEnums[key]; e != nil {
			items["enum"] = e()
		}
		return map[string]any{"type": "array", "items": items}
	case reflect.Map:
		// Values may be written as any scalar (PORT: 8080); they are read
		// as strings.
		s := map[string]any{
			"type":                 "object",
			"additionalProperties": map[string]any{"type": []any{"string", "number", "boolean"}},
		}
		if re := schemaPatterns[key]; re != nil {
			s["propertyNames"] = map[string]any{"pattern": re.String()}
		}
		return s
	}
	panic("spec: no schema for " + t.String())
}

// typeName is how the field reference names the type of a field.
func typeName(t reflect.Type, enum string) string {
	switch t {
	case modeType:
		return "octal mode string"
	case epochType:
		return "integer or `git`"
	case platformType:
		return "platform"
	}
	if _, title, anchor, ok := structInfo(t); ok {
		return fmt.Sprintf("mapping ([`%s`](#%s))", title, anchor)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem(), enum)
	case reflect.String:
		if enum != "" {
			vals := strings.Split(enum, ",")
			for i, v := range vals {
				vals[i] = "`" + v + "`"
			}
			return "one of " + strings.Join(vals, ", ")
		}
		return "string"
	case reflect.Int:
		if enum != "" {
			return "integer: " + strings.ReplaceAll(enum, ",", ", ")
		}
		return "integer"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice:
		if _, title, anchor, ok := structInfo(t.Elem()); ok {
			return fmt.Sprintf("list of mappings ([`%s`](#%s))", title, anchor)
		}
		return "list of " + typeName(t.Elem(), enum) + "s"
	case reflect.Map:
		return "mapping of string to " + typeName(t.Elem(), "")
	}
	panic("spec: no type name for " + t.String())
}

// FieldReference returns the Markdown reference of every field of a spec:
// for each mapping, a table of its fields with their types, defaults and
// descriptions.
func FieldReference() string {
	var b strings.Builder
	b.WriteString("<!-- Generated from pkg/spec/types.go by make generate; do not edit by hand. -->\n")
	for _, sd := range structDoc {
		fmt.Fprintf(&b, "\n### %s\n\n", sd.title)
		fmt.Fprintf(&b, "%s\n\n", sd.intro)
		b.WriteString("| Field | Type | Default | Description |\n")
		b.WriteString("| --- | --- | --- | --- |\n")
		t := sd.t
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			k := yamlKey(f)
			if k == "" {
				continue
			}
			name := "`" + k + "`"
			if f.Tag.Get("required") == "true" {
				name += " (required)"
			}
			def := f.Tag.Get("default")
			if def != "" {
				def = cell(def)
			} else if f.Tag.Get("required") != "true" {
				def = "absent"
			}
			desc := cell(f.Tag.Get("doc"))
			if e := f.Tag.Get("example"); e != "" {
				desc += fmt.Sprintf(" Example: `%s: %s`.", k, e)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, typeName(f.Type, f.Tag.Get("enum")), def, desc)
		}
	}
	return b.String()
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}

// ReplaceFieldReference returns readme with the text between its
// BeginFieldReference and EndFieldReference markers replaced by
// FieldReference.
func ReplaceFieldReference(readme []byte) ([]byte, error) {
	begin := bytes.Index(readme, []byte(BeginFieldReference))
	end := bytes.Index(readme, []byte(EndFieldReference))
	if begin < 0 || end < 0 || end < begin || bytes.Count(readme, []byte(BeginFieldReference)) != 1 || bytes.Count(readme, []byte(EndFieldReference)) != 1 {
		return nil, fmt.Errorf("the README needs one %s line and, after it, one %s line, to mark where the field reference goes", BeginFieldReference, EndFieldReference)
	}
	var out bytes.Buffer
	out.Write(readme[:begin+len(BeginFieldReference)])
	out.WriteString("\n")
	out.WriteString(FieldReference())
	out.WriteString("\n")
	out.Write(readme[end:])
	return out.Bytes(), nil
}
