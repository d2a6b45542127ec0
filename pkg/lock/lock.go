package lock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/reprobuild/repro/pkg/base"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/spec"
)

// Version is the lock file format version.
const Version = 1

// File is a lock file.
type File struct {
	Version int `json:"version"`
	// Format is the output format (repro-layer/N) that builds of the spec
	// write when neither the spec's format: nor --format names one: the
	// spec's format when locked, else the one an earlier lock recorded,
	// else the newest. A later release, whose default is newer, still
	// builds and verifies what this lock was made for. 0 in a lock written
	// before formats were recorded: the build's default applies.
	Format int             `json:"format,omitempty"`
	Bases  map[string]Base `json:"bases,omitempty"`
	URLs   map[string]URL  `json:"urls,omitempty"`
	// Apt pins Debian packages, by platform (os/arch[/variant]).
	Apt map[string]Apt `json:"apt,omitempty"`
	// Go is the Go toolchain that go: entries compile with, as the go
	// command names it ("go1.26.8"); builds run the go command with
	// GOTOOLCHAIN set to it.
	Go string `json:"go,omitempty"`
}

// Base pins one base reference, keyed by the reference as the spec writes it.
type Base struct {
	// Digest is what the reference named when locked: index or manifest.
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	// Platforms maps os/arch[/variant] to its manifest digest.
	Platforms map[string]string `json:"platforms"`
}

// URL pins one fetched file.
type URL struct {
	SHA256 string `json:"sha256"`
}

// FileName is the lock file's name, beside the spec whatever the spec's
// own name: specs that pin anything want a directory each.
const FileName = "repro.lock.json"

// PathFor is the lock file of a spec: repro.lock.json in its directory.
func PathFor(specFile string) string {
	return filepath.Join(filepath.Dir(specFile), FileName)
}

// Read reads the lock file at path; a missing file gives nil and no error.
func Read(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fault.Op(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		if off, field, near, ok := unknownField(raw, reflect.TypeOf(f)); ok && strings.HasPrefix(err.Error(), "json: unknown field ") {
			hint := "fix it, or delete it and run repro lock to write it again"
			if near != "" {
				hint = fmt.Sprintf("did you mean %q? %s", near, hint)
			}
			return nil, fault.Bad(fmt.Errorf("%s: %s: unknown field; %s", position(path, raw, off), field, hint))
		}
		problem := jsonProblem(err)
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			if at := pathAt(raw, reflect.TypeOf(f), te.Offset); at != "" {
				problem = at + strings.TrimPrefix(problem, te.Field)
			}
		}
		return nil, fault.Bad(fmt.Errorf("%s: %s; fix it, or delete it and run repro lock to write it again", where(path, raw, dec, err), problem))
	}
	if f.Version != Version {
		return nil, fault.Bad(fmt.Errorf("%s: lock format version %d; this repro reads version %d", path, f.Version, Version))
	}
	return &f, nil
}

// Bytes encodes f in the stable layout.
func (f *File) Bytes() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Write writes f to path atomically.
func (f *File) Write(path string) error {
	raw, err := f.Bytes()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-lock-*")
	if err != nil {
		return fault.Op(err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return fault.Op(err)
	}
	if err := tmp.Close(); err != nil {
		return fault.Op(err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fault.Op(err)
	}
	return fault.Op(os.Rename(tmp.Name(), path))
}

// Change is one difference a resolution made to the lock.
type Change struct {
	Kind string // added, updated, removed
	Key  string // "base <ref>" or "url <url>"
	From string
	To   string
	// Suite is the suite a package's new version comes from.
	Suite string
	// Index is true for a change to what an InRelease or index pins,
	// which Debian re-signs daily: no pin of the image moved with it.
	Index bool
}

func (c Change) String() string {
	suite := ""
	if c.Suite != "" {
		suite = " (" + c.Suite + ")"
	}
	switch c.Kind {
	case "added":
		return fmt.Sprintf("added   %s: %s%s", c.Key, c.To, suite)
	case "removed":
		return fmt.Sprintf("removed %s (was %s)", c.Key, c.From)
	}
	return fmt.Sprintf("updated %s: %s -> %s%s", c.Key, c.From, c.To, suite)
}

// Stale returns the changes that move a pin of the image: a base, a url,
// a package (its version or .deb), or the output format; not a re-signed
// InRelease alone.
func Stale(changes []Change) []Change {
	var out []Change
	for _, c := range changes {
		if !c.Index {
			out = append(out, c)
		}
	}
	return out
}

// Resolve returns the lock for s. Entries of old are kept unless update is
// set or the spec no longer names them; what is missing is resolved.
//
// Debian packages are resolved for every platform on the indexes that the
// lock pins (each InRelease read by its digest, and verified against the
// keyring again), so that without update the pins stay as they are and a
// package added to the spec comes at the version of the pinned index;
// with update, every InRelease is fetched fresh. The base's dpkg status
// and the earlier layers' packages count as installed.
func Resolve(ctx context.Context, s *spec.Spec, old *File, update bool, r *base.Resolver, c *cache.Cache, insecure []string, opts ...Option) (*File, []Change, error) {
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	if old == nil {
		old = &File{}
	}
	f := &File{Version: Version, Format: s.Format, Bases: map[string]Base{}, URLs: map[string]URL{}}
	var changes []Change
	if f.Format == 0 && !update {
		f.Format = old.Format
	}
	if f.Format == 0 {
		f.Format = spec.Formats[0]
	}
	if old.Format != 0 && old.Format != f.Format {
		changes = append(changes, Change{Kind: "updated", Key: "format", From: fmt.Sprintf("repro-layer/%d", old.Format), To: fmt.Sprintf("repro-layer/%d", f.Format)})
	}
	if s.Base != "" && s.Base != "scratch" {
		ref, err := base.ParseRef(s.Base)
		if err != nil {
			return nil, nil, fault.Bad(s.ErrorAt("base", "%v", err))
		}
		ref = ref.WithInsecure(insecure).In(s.SpecDir)
		prev, had := old.Bases[s.Base]
		if had && !update && (ref.Digest == "" || prev.Digest == ref.Digest) {
			f.Bases[s.Base] = prev
		} else {
			pin, err := r.Resolve(ctx, ref)
			if err != nil {
				return nil, nil, err
			}
			b := Base{Digest: pin.Digest.String(), MediaType: string(pin.MediaType), Platforms: map[string]string{}}
			for p, d := range pin.Platforms {
				b.Platforms[p] = d.String()
			}
			f.Bases[s.Base] = b
			switch {
			case !had:
				changes = append(changes, Change{Kind: "added", Key: "base " + s.Base, To: b.Digest})
			case prev.Digest != b.Digest:
				changes = append(changes, Change{Kind: "updated", Key: "base " + s.Base, From: prev.Digest, To: b.Digest})
			}
		}
	}
	for _, l := range s.Layers {
		for _, ct := range l.Contents {
			if ct.URL == "" {
				continue
			}
			if _, err := c.Fetch(ctx, ct.URL, ct.SHA256); err != nil {
				return nil, nil, err
			}
			prev, had := old.URLs[ct.URL]
			f.URLs[ct.URL] = URL{SHA256: ct.SHA256}
			switch {
			case !had:
				changes = append(changes, Change{Kind: "added", Key: "url " + ct.URL, To: "sha256:" + ct.SHA256})
			case prev.SHA256 != ct.SHA256:
				changes = append(changes, Change{Kind: "updated", Key: "url " + ct.URL, From: "sha256:" + prev.SHA256, To: "sha256:" + ct.SHA256})
			}
		}
	}
	ac, err := resolveApt(ctx, s, old, f, update, r, c, insecure, &o)
	if err != nil {
		return nil, nil, err
	}
	changes = append(changes, ac...)
	for k := range old.Apt {
		if _, ok := f.Apt[k]; !ok {
			changes = append(changes, Change{Kind: "removed", Key: "apt " + k, From: "its packages"})
		}
	}
	for k, b := range old.Bases {
		if _, ok := f.Bases[k]; !ok {
			changes = append(changes, Change{Kind: "removed", Key: "base " + k, From: b.Digest})
		}
	}
	for k, u := range old.URLs {
		if _, ok := f.URLs[k]; !ok {
			changes = append(changes, Change{Kind: "removed", Key: "url " + k, From: "sha256:" + u.SHA256})
		}
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Key < changes[j].Key })
	return f, changes, nil
}

// Unpinned lists what s names that f does not pin: for --locked.
func Unpinned(s *spec.Spec, f *File) []string {
	var out []string
	for _, m := range Missing(s, f) {
		out = append(out, m.What)
	}
	return out
}

// A Gap is one thing that a spec names and a lock does not pin: What,
// in words, and Field, the spec field that names it (for spec.ErrorAt).
type Gap struct{ Field, What string }

// Missing is Unpinned with the spec field of each gap.
func Missing(s *spec.Spec, f *File) []Gap {
	var out []Gap
	if f == nil {
		f = &File{}
	}
	if s.Base != "" && s.Base != "scratch" {
		b, ok := f.Bases[s.Base]
		if !ok {
			out = append(out, Gap{"base", "base " + s.Base})
		} else if ref, err := base.ParseRef(s.Base); err == nil && ref.Digest != "" && ref.Digest != b.Digest {
			out = append(out, Gap{"base", fmt.Sprintf("base %s (the lock pins %s)", s.Base, b.Digest)})
		}
	}
	goField := ""
	for i, l := range s.Layers {
		for j, ct := range l.Contents {
			if ct.Go != "" && goField == "" {
				goField = fmt.Sprintf("layers[%d].contents[%d].go", i, j)
			}
			if ct.URL == "" {
				continue
			}
			if u, ok := f.URLs[ct.URL]; !ok || u.SHA256 != ct.SHA256 {
				out = append(out, Gap{fmt.Sprintf("layers[%d].contents[%d].url", i, j), "url " + ct.URL})
			}
		}
	}
	if goField != "" && f.Go == "" {
		out = append(out, Gap{goField, "the Go toolchain"})
	}
	for _, p := range s.Platforms {
		for i, l := range s.Layers {
			if len(l.Packages) == 0 {
				continue
			}
			if _, why := f.AptLayer(s, p, i); why != "" {
				out = append(out, Gap{fmt.Sprintf("layers[%d].packages", i), why})
			}
		}
	}
	return out
}

// StaleURLs lists the urls of s that f pins at another sha256 than the
// spec's own: the spec's pin wins, and the lock wants refreshing.
func StaleURLs(s *spec.Spec, f *File) []string {
	if f == nil {
		return nil
	}
	var out []string
	for _, l := range s.Layers {
		for _, ct := range l.Contents {
			if u, ok := f.URLs[ct.URL]; ct.URL != "" && ok && u.SHA256 != ct.SHA256 {
				out = append(out, ct.URL)
			}
		}
	}
	return out
}

// BasePin returns the pin of the spec's base recorded in f.
func (f *File) BasePin(ref string) (Base, bool) {
	if f == nil {
		return Base{}, false
	}
	b, ok := f.Bases[ref]
	return b, ok
}

// Pin is the recorded pin as the base package uses it.
func (b Base) Pin() (base.Pin, error) {
	d, err := v1.NewHash(b.Digest)
	if err != nil {
		return base.Pin{}, fault.Bad(fmt.Errorf("lock: base digest %q: %v (%w)", b.Digest, err, base.ErrPinMismatch))
	}
	p := base.Pin{Digest: d, MediaType: types.MediaType(b.MediaType), Platforms: map[string]v1.Hash{}}
	for k, v := range b.Platforms {
		h, err := v1.NewHash(v)
		if err != nil {
			return base.Pin{}, fault.Bad(fmt.Errorf("lock: %s digest %q: %v (%w)", k, v, err, base.ErrPinMismatch))
		}
		p.Platforms[k] = h
	}
	return p, nil
}

// where is path:line:col of a JSON decoding error, or path when the error
// has no offset.
func where(path string, raw []byte, dec *json.Decoder, err error) string {
	off := dec.InputOffset()
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	case errors.Is(err, io.EOF):
		return path
	}
	return position(path, raw, off)
}

// position is path:line:col of byte offset off of raw (col counts from 1).
func position(path string, raw []byte, off int64) string {
	off = max(0, min(off, int64(len(raw))))
	line := 1 + bytes.Count(raw[:off], []byte("\n"))
	col := int(off) - bytes.LastIndexByte(raw[:off], '\n')
	return fmt.Sprintf("%s:%d:%d", path, line, col)
}

// jsonProblem says what is wrong in words, not Go's types.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "empty; a lock file is a JSON object"
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return fmt.Sprintf("a JSON %s where the lock file has an object", te.Value)
		}
		return fmt.Sprintf("%s: a JSON %s where the lock file has a %s", field, te.Value, jsonKind(te.Type.Kind().String()))
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "unknown field " + f
	}
	return strings.TrimPrefix(msg, "json: ")
}

func jsonKind(k string) string {
	switch k {
	case "map", "struct":
		return "object"
	case "slice", "array":
		return "list"
	case "int", "int64", "uint", "uint64":
		return "number"
	}
	return k
}
