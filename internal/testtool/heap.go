package testtool

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// HeapPeak runs f and returns the peak of the heap in use meanwhile,
// sampled every 5 ms after a collection.
func HeapPeak(f func()) uint64 {
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				peak.Store(max(peak.Load(), ms.HeapInuse))
			}
		}
	})
	f()
	close(stop)
	wg.Wait()
	return peak.Load()
}
