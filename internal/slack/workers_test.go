package slack

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
		}, 0) {
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

// With the queue full, an interaction waits for room: taken when a job ends
// within the wait, refused (and not run) when none does.
func TestWorkersWaitForRoom(t *testing.T) {
	var w workers
	release := make(chan struct{})
	for range workersCount + workersQueue { // the workers take their first jobs meanwhile
		if !w.submit(func() { <-release }, 10*time.Second) {
			t.Fatal("refused before the queue was full")
		}
	}
	var ran atomic.Bool
	start := time.Now()
	if w.submit(func() { ran.Store(true) }, 50*time.Millisecond) {
		t.Fatal("taken although the queue stayed full")
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Fatalf("refused after %s, before its wait", waited)
	}
	go func() { time.Sleep(20 * time.Millisecond); release <- struct{}{} }()
	if !w.submit(func() { ran.Store(true) }, 10*time.Second) {
		t.Fatal("refused although a job ended during the wait")
	}
	close(release)
	w.wg.Wait()
	if !ran.Load() {
		t.Fatal("the job taken after the wait did not run")
	}
}
