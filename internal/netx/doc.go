// Package netx is repro's one policy for talking to the network: every
// HTTP client repro makes (registries through go-containerregistry, url
// fetches, apt sources) is built from a Policy here, so that every wait is
// bounded and every retry follows the same rule.
//
// The rule, for a Policy with Timeout T (90 s by default):
//
//   - A single wait (connecting, the TLS handshake, writing the request,
//     the response headers, each read of the body) may be silent for at
//     most T/3. Time spent producing a request body (compressing a layer
//     on the way to a registry) is repro's own and is not counted.
//   - A request that failed in a way that may pass (a reset connection, a
//     silent wait, a cut body, 408, 429, 500, 502, 503, 504) is tried again
//     with doubling backoff, at most Attempts times in all, honouring a
//     Retry-After of up to T/3 seconds. Only requests that can be sent
//     again are: those without a body, or whose body can be rewound.
//   - A body cut short (fewer bytes than its Content-Length, a reset, a
//     silent read) is resumed where it stopped with a Range request, or
//     read again from the start and skipped forward when the server does
//     not take ranges.
//   - From the moment the server stops answering, all the tries together
//     take at most T: a server that accepts a connection and then says
//     nothing fails the request within T, however many tries remain. Any
//     byte or answer that arrives starts the count afresh.
//
// The errors that come back once the tries are spent are *Error values
// naming the host, and a silent server's is a *TimeoutError.
//
// The package reads no clock: it waits with timers.
package netx
