// Package canonical encodes JSON the one way repro hashes it: compact,
// without HTML escaping, struct fields in declaration order and map keys
// sorted (as encoding/json writes them), with no trailing newline.
package canonical

import (
	"bytes"
	"encoding/json"
)

// JSON encodes v.
func JSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
