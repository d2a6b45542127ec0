package spec

import (
	"reflect"

	"github.com/reprobuild/repro/internal/yamlpos"
)

// Pos is a line and column in the spec file, both counting from 1.
type Pos = yamlpos.Pos

// positions maps a field path (layers[0].contents[1].mode) to a place in
// the file.
type positions = map[string]Pos

// Error is one problem with a spec, located in the file.
type Error = yamlpos.Error

// ErrorList is every problem found in a spec, in file order.
type ErrorList = yamlpos.ErrorList

// MaxSpecSize is the largest spec file that Load reads. A spec holds
// layers, config and small inline files; big files belong in the build
// context, named by source:. The limit keeps a hostile spec (a 1 GB line)
// from costing more than a bounded read: a bigger file is refused before
// it is read.
const MaxSpecSize = 256 << 20

// maxErrors bounds how many problems one load reports.
const maxErrors = 20

// decoder is the shared strict decoder, with the spec's types.
type decoder = yamlpos.Decoder

var (
	modeType     = reflect.TypeOf(Mode(0))
	epochType    = reflect.TypeOf(Epoch{})
	platformType = reflect.TypeOf(Platform{})
)

// laterKeys are keys of the contract that this version does not build yet,
// by the type that holds them, with what to do instead. (None, for now.)
var laterKeys = map[reflect.Type]map[string]string{}

// schema tells the shared decoder about the spec's types.
var schema = &yamlpos.Schema{
	Places: []yamlpos.Place{
		{Type: reflect.TypeOf(Spec{}), Where: "the top level"},
		{Type: reflect.TypeOf(Config{}), Where: "config"},
		{Type: reflect.TypeOf(Layer{}), Where: "a layer (an entry of layers)"},
		{Type: reflect.TypeOf(Content{}), Where: "an entry of a layer's contents"},
		{Type: reflect.TypeOf(Apt{}), Where: "apt"},
		{Type: reflect.TypeOf(AptSource{}), Where: "an entry of apt.sources"},
		{Type: reflect.TypeOf(Accounts{}), Where: "accounts"},
		{Type: reflect.TypeOf(Systemd{}), Where: "systemd"},
		{Type: reflect.TypeOf(Group{}), Where: "an entry of accounts.groups"},
		{Type: reflect.TypeOf(User{}), Where: "an entry of accounts.users"},
	},
	RootNotMapping: "a spec is a mapping of keys (%s), found %s; start it with version: 1",
	Want: func(t reflect.Type) string {
		switch t {
		case modeType:
			return "an octal mode like \"0644\""
		case epochType:
			return "seconds since 1970 or the word git"
		case platformType:
			return "a platform like linux/amd64"
		}
		return ""
	},
	Scalar: func(t reflect.Type, n *yamlpos.Node) (reflect.Value, string, bool) {
		var (
			v   any
			err error
		)
		switch t {
		case modeType:
			v, err = ParseMode(n.Value)
		case epochType:
			v, err = parseEpoch(n.Value)
		case platformType:
			v, err = ParsePlatform(n.Value)
		default:
			return reflect.Value{}, "", false
		}
		if err != nil {
			return reflect.Value{}, err.Error(), true
		}
		return reflect.ValueOf(v), "", true
	},
	Unknown: func(t reflect.Type, _, k string) string { return laterKeys[t][k] },
}

func newDecoder(file string, root *yamlpos.Node) *decoder {
	return yamlpos.NewDecoder(file, root, schema)
}

func fieldNames(t reflect.Type) []string { return yamlpos.FieldNames(t) }

func suggest(s string, candidates []string) string { return yamlpos.Suggest(s, candidates) }

func related(a, b string) bool { return yamlpos.Related(a, b) }

func yamlKey(f reflect.StructField) string { return yamlpos.Key(f) }
