package attest

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/reprobuild/repro/internal/canonical"
)

// StatementType is the in-toto statement version repro writes.
const StatementType = "https://in-toto.io/Statement/v1"

// Statement is an in-toto statement: a predicate about subjects.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// Subject is what a statement is about: an image, by digest.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// NewStatement wraps predicate (JSON) in a statement about the image
// named name with digest (sha256:…), and encodes it canonically.
func NewStatement(name, digest, predicateType string, predicate []byte) ([]byte, error) {
	d, err := digestSet(digest)
	if err != nil {
		return nil, err
	}
	if !json.Valid(predicate) {
		return nil, fmt.Errorf("the %s predicate is not valid JSON", predicateType)
	}
	return canonical.JSON(Statement{
		Type:          StatementType,
		Subject:       []Subject{{Name: name, Digest: d}},
		PredicateType: predicateType,
		Predicate:     predicate,
	})
}

// ParseStatement reads a statement.
func ParseStatement(b []byte) (*Statement, error) {
	var s Statement
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("reading in-toto statement: %w", err)
	}
	if !strings.HasPrefix(s.Type, "https://in-toto.io/Statement/") {
		return nil, fmt.Errorf("reading in-toto statement: _type %q is not an in-toto statement", s.Type)
	}
	return &s, nil
}

// Names reports whether digest (sha256:…) is one of the subjects.
func (s *Statement) Names(digest string) bool {
	alg, hex, _ := strings.Cut(digest, ":")
	for _, sub := range s.Subject {
		if sub.Digest[alg] == hex {
			return true
		}
	}
	return false
}
