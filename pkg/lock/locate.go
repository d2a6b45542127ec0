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
	dec := json.NewDecoder(bytes.NewReader(raw))
	var walk func(t reflect.Type, at string) bool
	walk = func(t reflect.Type, at string) bool {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch tok {
		case json.Delim('{'):
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return false
				}
				key, _ := k.(string)
				var elem reflect.Type
				sub := at + "[" + strconv.Quote(key) + "]"
				if t != nil && t.Kind() == reflect.Struct {
					f, names, found := jsonField(t, key)
					if !found {
						off = dec.InputOffset() - int64(len(strconv.Quote(key)))
						path, near, ok = joinPath(at, key), yamlpos.Suggest(key, names), true
						return true
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
	return off, path, near, ok
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
