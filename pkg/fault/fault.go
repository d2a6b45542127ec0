package fault

import "errors"

// Kind is the class of an error. Its numeric value is the exit code the
// command line uses for it.
type Kind int

const (
	// OK is no error.
	OK Kind = 0
	// CheckFailed means a comparison or verification did not hold.
	CheckFailed Kind = 1
	// BadInput means the user's spec, flags or inputs are wrong; retrying
	// will not help until they are fixed.
	BadInput Kind = 2
	// Operational means the environment failed: network, registry, disk,
	// a missing host tool, or a fetched file that does not match its pin.
	Operational Kind = 3
)

func (k Kind) String() string {
	switch k {
	case OK:
		return "ok"
	case CheckFailed:
		return "check failed"
	case BadInput:
		return "bad input"
	case Operational:
		return "operational failure"
	}
	return "unknown"
}

type classified struct {
	kind Kind
	err  error
}

func (c *classified) Error() string { return c.err.Error() }
func (c *classified) Unwrap() error { return c.err }

// Wrap marks err with kind. A nil err stays nil.
func Wrap(kind Kind, err error) error {
	if err == nil {
		return nil
	}
	return &classified{kind: kind, err: err}
}

// Bad marks err as bad input.
func Bad(err error) error { return Wrap(BadInput, err) }

// Op marks err as an operational failure.
func Op(err error) error { return Wrap(Operational, err) }

// Check marks err as a failed check.
func Check(err error) error { return Wrap(CheckFailed, err) }

// KindOf returns the class of err: the outermost class found in its chain,
// Operational when none is, and OK for nil.
func KindOf(err error) Kind {
	if err == nil {
		return OK
	}
	var c *classified
	if errors.As(err, &c) {
		return c.kind
	}
	return Operational
}
