package build

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/reprobuild/repro/pkg/base"
	"github.com/reprobuild/repro/pkg/cache"
	"github.com/reprobuild/repro/pkg/fault"
	"github.com/reprobuild/repro/pkg/lock"
	"github.com/reprobuild/repro/pkg/spec"
)

// LockRequest is everything locking a spec file needs, the environment
// included, as values.
type LockRequest struct {
	// File is the spec file; the lock file is read and written beside it
	// (lock.PathFor).
	File string
	// Update resolves every pin again; without it, the pins the lock holds
	// are kept and only what is missing is resolved.
	Update bool
	// Check resolves every pin again, as Update does, and writes nothing:
	// lock.Stale of the changes is what moved.
	Check bool
	// Cache holds fetched files and pulled blobs; it must be set.
	Cache *cache.Cache
	// Remote are the options for every registry request.
	Remote []remote.Option
	// Client fetches InRelease files and urls; nil is http.DefaultClient.
	Client *http.Client
	// Insecure names registries spoken to over plain HTTP.
	Insecure []string
	// Log receives what is resolved and warnings; nil discards.
	Log *slog.Logger
	// Now is the clock: a freshly fetched InRelease's Valid-Until is
	// checked against it, and an apt snapshot with no timestamp takes its
	// time. Nil checks no validity and refuses such a snapshot.
	Now func() time.Time
	// GoEnv is the environment the go command runs in to pin the Go
	// toolchain of go: entries (Settings.GoEnv).
	GoEnv []string
}

// Locked is a lock resolved for a spec.
type Locked struct {
	// Path is the lock file's path.
	Path string
	// File is the lock as resolved.
	File *lock.File
	// Changes are the pins that are new or moved, in the lock's order.
	Changes []lock.Change
	// Written says that the lock file's bytes changed and were written
	// (never with Check).
	Written bool
}

// Lock resolves what the spec file of req names by something that can
// change (its base, urls, Debian packages and Go toolchain) and, unless
// req.Check, writes the lock beside it when its bytes change. An
// unreadable lock is bad input, except under Update, which writes it anew.
func Lock(ctx context.Context, req LockRequest) (*Locked, error) {
	if req.Cache == nil {
		return nil, errors.New("build.Lock: the request has no cache")
	}
	log := req.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := spec.Load(req.File, spec.LoadOptions{})
	if err != nil {
		return nil, err
	}
	path := lock.PathFor(req.File)
	old, err := lock.Read(path)
	if err != nil {
		if !req.Update || fault.KindOf(err) != fault.BadInput {
			return nil, err
		}
		// Every pin is resolved again: a lock that cannot be read is
		// written anew instead of standing in the way.
		log.Warn("the lock cannot be read; resolving every pin again, it is written anew", "problem", err.Error())
		old = nil
	}
	// A base that cannot be one is the spec's problem: report it at the
	// spec's base: line, before anything is resolved.
	if _, err := SpecBase(s); err != nil {
		return nil, err
	}
	again := req.Update || req.Check
	opts := []lock.Option{lock.WithLogger(log), lock.WithHTTPClient(req.Client)}
	if req.Now != nil {
		opts = append(opts, lock.WithClock(req.Now))
	}
	r := base.NewResolver(req.Cache, log, req.Remote...)
	f, changes, err := lock.Resolve(ctx, s, old, again, r, req.Cache, req.Insecure, opts...)
	if err != nil {
		return nil, err
	}
	ch, err := f.PinGo(s, old, again, func() (string, bool, error) { return LocalToolchain(ctx, s, req.GoEnv) })
	if err != nil {
		return nil, err
	}
	if ch != nil {
		changes = append(changes, *ch)
	}
	res := &Locked{Path: path, File: f, Changes: changes}
	if req.Check {
		return res, nil
	}
	raw, err := f.Bytes()
	if err != nil {
		return nil, err
	}
	if prev, _ := os.ReadFile(path); !bytes.Equal(prev, raw) {
		if err := f.Write(path); err != nil {
			return nil, err
		}
		res.Written = true
	}
	return res, nil
}
