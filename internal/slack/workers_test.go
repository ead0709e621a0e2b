package slack

import (
	"sync"
	"sync/atomic"
	"testing"
)

// The interaction pool runs a fixed number of goroutines over a bounded
// queue: a burst beyond the queue is refused, not queued without bound, and
// everything accepted runs.
func TestWorkersAreBounded(t *testing.T) {
	var w workers
	release := make(chan struct{})
	var running, ran atomic.Int32
	var maxRunning atomic.Int32
	accepted, refused := 0, 0
	for range workersCount + workersQueue + 50 {
		if w.submit(func() {
			n := running.Add(1)
			for {
				m := maxRunning.Load()
				if n <= m || maxRunning.CompareAndSwap(m, n) {
					break
				}
			}
			<-release
			running.Add(-1)
			ran.Add(1)
		}) {
			accepted++
		} else {
			refused++
		}
	}
	if refused == 0 || accepted > workersCount+workersQueue {
		t.Fatalf("accepted %d, refused %d: the queue is not bounded", accepted, refused)
	}
	close(release)
	var done sync.WaitGroup
	done.Add(1)
	go func() { w.wg.Wait(); done.Done() }()
	done.Wait()
	if int(ran.Load()) != accepted || maxRunning.Load() > workersCount {
		t.Fatalf("ran %d of %d accepted, at most %d at once (pool of %d)", ran.Load(), accepted, maxRunning.Load(), workersCount)
	}
}
