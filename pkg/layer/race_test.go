//go:build race

package layer

// raceEnabled: the race detector makes sync.Pool drop a quarter of what
// is put in it, so pooled buffers are allocated again and the heap runs
// higher than in a real build.
const raceEnabled = true
