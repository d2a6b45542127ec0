package lock

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/reprobuild/repro/internal/yamlpos"
)

// unknownField finds the first object key of raw that t has no field for,
// as encoding/json matches them (case-insensitively): its offset, its path
// (apt["linux/amd64"].sources[0].suit) and the field it likely meant. The
// decoder reports an unknown field only once the whole document is read,
// with no offset and no path.
func unknownField(raw []byte, t reflect.Type) (off int64, path, near string, ok bool) {
	walkJSON(raw, t, func(at string, end int64, key string, names []string) bool {
		if names == nil {
			return false
		}
		off = end - int64(len(strconv.Quote(key)))
		path, near, ok = at, yamlpos.Suggest(key, names), true
		return true
	})
	return off, path, near, ok
}

// pathAt is the path of the value of raw that ends at offset end (where
// encoding/json reports a value of the wrong type), or "".
func pathAt(raw []byte, t reflect.Type, end int64) string {
	path := ""
	walkJSON(raw, t, func(at string, e int64, key string, names []string) bool {
		if names == nil && e == end {
			path = at
			return true
		}
		return false
	})
	return path
}

// walkJSON walks raw's tokens along type t and calls visit with each
// value's path and the offset where its first token ends, and with each
// object key that t has no field for (then key and t's field names are
// given); visit returns true to stop.
func walkJSON(raw []byte, t reflect.Type, visit func(at string, end int64, key string, names []string) bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var walk func(t reflect.Type, at string) bool
	walk = func(t reflect.Type, at string) bool {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		tok, err := dec.Token()
		if err != nil {
			return true
		}
		if visit(at, dec.InputOffset(), "", nil) {
			return true
		}
		switch tok {
		case json.Delim('{'):
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return true
				}
				key, _ := k.(string)
				var elem reflect.Type
				sub := at + "[" + strconv.Quote(key) + "]"
				if t != nil && t.Kind() == reflect.Struct {
					f, names, found := jsonField(t, key)
					if !found {
						if visit(joinPath(at, key), dec.InputOffset(), key, names) {
							return true
						}
						f = nil
					}
					elem, sub = f, joinPath(at, key)
				} else if t != nil && t.Kind() == reflect.Map {
					elem = t.Elem()
				}
				if walk(elem, sub) {
					return true
				}
			}
			dec.Token() // }
		case json.Delim('['):
			var elem reflect.Type
			if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
				elem = t.Elem()
			}
			for i := 0; dec.More(); i++ {
				if walk(elem, fmt.Sprintf("%s[%d]", at, i)) {
					return true
				}
			}
			dec.Token() // ]
		}
		return false
	}
	walk(t, "")
}

// jsonField is the type of t's field that encoding/json decodes key into,
// and the names of t's fields.
func jsonField(t reflect.Type, key string) (reflect.Type, []string, bool) {
	var names []string
	var match reflect.Type
	found := false
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
		if !found && strings.EqualFold(name, key) {
			match, found = f.Type, true
		}
	}
	return match, names, found
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
