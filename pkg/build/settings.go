package build

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reprobuild/repro/pkg/compress"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/spec"
)

// Settings are the values that shape a build as text, the way a command
// line, a CI file or an environment gives them; Request reads them into a
// Request. The zero value builds repro.yaml as the spec says, gzip, with
// no environment.
type Settings struct {
	// File is the spec file; empty means repro.yaml.
	File string
	// Platforms narrow the spec's platforms: os/arch[/variant] each.
	Platforms []string
	// Vars override the spec's vars: key=value each; a later key wins.
	Vars []string
	// Version is the .Version value; empty means git describe, else 0.0.0.
	Version string
	// Compression is gzip or zstd; empty means gzip.
	Compression string
	// Format is the output format, 2 or 1 (or repro-layer/N); empty
	// means the spec's format:, else the lock's, else the newest.
	Format string
	// Locked, AllowUnpinned, ScanBase and Insecure are Request's.
	Locked, AllowUnpinned, ScanBase bool
	Insecure                        []string
	// Offline: go: entries fetch no module and no toolchain (GOPROXY=off).
	Offline bool
	// Environ is the caller's environment, as os.Environ gives it:
	// $SOURCE_DATE_EPOCH (whole seconds) is the epoch when the spec gives
	// none, and go: entries compile in what GoEnviron keeps of it.
	Environ []string
}

// SettingError is a setting that Request cannot read: Setting names the
// Settings field (Platforms, Vars, Compression, Format), so that a caller
// can name its own switch for it; Err says what is wrong with the value.
type SettingError struct {
	Setting string
	Err     error
}

func (e *SettingError) Error() string { return e.Setting + ": " + e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// ErrSourceDateEpoch: $SOURCE_DATE_EPOCH is set and is not a whole,
// non-negative number of seconds.
var ErrSourceDateEpoch = errors.New("SOURCE_DATE_EPOCH is not a whole number of seconds")

// Request reads s into a Request. It sets the data fields and GoEnv; the
// caller adds what is not text: the cache, registry options, the work
// directory, the log and the layer cache. Every error is bad input: a
// *SettingError, or ErrSourceDateEpoch.
func (s Settings) Request() (Request, error) {
	bad := func(setting string, err error) (Request, error) {
		return Request{}, fault.Bad(&SettingError{Setting: setting, Err: err})
	}
	vars, err := ParseVars(s.Vars)
	if err != nil {
		return bad("Vars", err)
	}
	req := Request{
		File: s.File, Version: s.Version, Vars: vars,
		Locked: s.Locked, AllowUnpinned: s.AllowUnpinned, ScanBase: s.ScanBase, Insecure: s.Insecure,
		Compression: compress.Gzip,
	}
	if req.File == "" {
		req.File = "repro.yaml"
	}
	if s.Compression != "" {
		if req.Compression, err = compress.Parse(s.Compression); err != nil {
			return bad("Compression", err)
		}
	}
	if s.Format != "" {
		if req.Format, err = compress.ParseFormat(s.Format); err != nil {
			return bad("Format", err)
		}
	}
	for _, p := range s.Platforms {
		pl, err := spec.ParsePlatform(p)
		if err != nil {
			return bad("Platforms", err)
		}
		req.Platforms = append(req.Platforms, pl)
	}
	if req.SourceDateEpoch, err = sourceDateEpoch(s.Environ); err != nil {
		return Request{}, err
	}
	req.GoEnv = s.GoEnv()
	return req, nil
}

// GoEnv is the environment go: entries compile in: what GoEnviron keeps
// of Environ and, Offline, GOPROXY=off (the go command then fetches no
// module and no toolchain either).
func (s Settings) GoEnv() []string {
	env := GoEnviron(s.Environ)
	if s.Offline {
		env = append(env, "GOPROXY=off")
	}
	return env
}

// ParseVars reads key=value pairs into a map; a later key wins.
func ParseVars(kvs []string) (map[string]string, error) {
	vars := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("%q has no \"=\"; write key=value", kv)
		case k == "":
			return nil, fmt.Errorf("%q has no key; write key=value", kv)
		}
		vars[k] = v
	}
	return vars, nil
}

// sourceDateEpoch is $SOURCE_DATE_EPOCH of environ: nil when unset or
// empty (the last setting counts, as the process's environment does).
func sourceDateEpoch(environ []string) (*time.Time, error) {
	v := ""
	for _, kv := range environ {
		if s, ok := strings.CutPrefix(kv, "SOURCE_DATE_EPOCH="); ok {
			v = s
		}
	}
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, fault.Bad(fmt.Errorf("%w: %q", ErrSourceDateEpoch, v))
	}
	t := time.Unix(n, 0).UTC()
	return &t, nil
}
