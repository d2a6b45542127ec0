package main

import (
	"context"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/reprobuild/repro/internal/netx"
)

// network is the one HTTP policy of a run (internal/netx): every wait
// bounded by --timeout, retries and resumes as netx documents. One
// transport serves every registry, url and apt request of the run, so
// connections are shared.
type network struct {
	policy    netx.Policy
	transport http.RoundTripper
	client    *http.Client
}

type networkKey struct{}

func newNetwork(p netx.Policy) *network {
	t := p.Transport()
	return &network{policy: p, transport: t, client: &http.Client{Transport: t}}
}

// withNetwork puts the run's network into ctx.
func withNetwork(ctx context.Context, n *network) context.Context {
	return context.WithValue(ctx, networkKey{}, n)
}

// networkOf is the run's network; the default policy when ctx holds none
// (tests that call commands' helpers directly).
func networkOf(ctx context.Context) *network {
	if n, ok := ctx.Value(networkKey{}).(*network); ok {
		return n
	}
	return newNetwork(netx.Policy{})
}

// remoteOptions are how repro speaks to registries: credentials from the
// docker config ($DOCKER_CONFIG) and its credential helpers, the run's
// transport (which bounds every wait and retries what may pass, see
// internal/netx), repro's user agent, and go-containerregistry's own
// retries only for restarting a whole blob upload after a reset (a
// timeout or a request netx gave up on is not tried again, so the
// --timeout bound holds).
func remoteOptions(ctx context.Context) []remote.Option {
	n := networkOf(ctx)
	return []remote.Option{
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithUserAgent("repro/" + version),
		remote.WithTransport(n.transport),
		remote.WithRetryPredicate(netx.Retryable),
		remote.WithRetryStatusCodes(),
		remote.WithRetryBackoff(remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 3}),
		remote.WithJobs(4),
	}
}
