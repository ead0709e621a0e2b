package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

const (
	baselineQueue    = "countersign-bench-baseline"
	baselineWorkflow = "BenchBaseline"
	baselineActivity = "BenchDeliver"
	baselineSignal   = "decision"
)

// baselineInput is the bare workflow's input: how long after the third
// signal to run its activity.
type baselineInput struct {
	ID   string
	Lead time.Duration
}

// BaselineWorkflow has the shape of a post with nothing else: three signals,
// one timer of Lead, one activity.
func BaselineWorkflow(ctx workflow.Context, in baselineInput) error {
	ch := workflow.GetSignalChannel(ctx, baselineSignal)
	for range 3 {
		var s string
		ch.Receive(ctx, &s)
	}
	// Like the bench's posts: scheduled Lead after the last decision.
	at := workflow.Now(ctx).Add(in.Lead)
	if err := workflow.Sleep(ctx, in.Lead); err != nil {
		return err
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second},
	})
	return workflow.ExecuteActivity(actx, baselineActivity, in.ID, at).Get(ctx, nil)
}

// sink is the baseline's "webhook": it records the first delivery time per id.
type sink struct {
	mu   sync.Mutex
	seen map[string]int
	at   map[string]time.Duration // id → lateness of the first delivery
}

func (k *sink) deliver(_ context.Context, id string, scheduled time.Time) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.seen[id] == 0 {
		k.at[id] = time.Since(scheduled)
	}
	k.seen[id]++
	return nil
}

func runBaseline(ctx context.Context, e *env, o Options, conc, n int) (*Pipeline, error) {
	tc := e.tc
	k := &sink{seen: map[string]int{}, at: map[string]time.Duration{}}
	w := worker.New(tc, baselineQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(BaselineWorkflow, workflow.RegisterOptions{Name: baselineWorkflow})
	w.RegisterActivityWithOptions(k.deliver, activityOptions(baselineActivity))
	if err := w.Start(); err != nil {
		return nil, err
	}
	defer w.Stop()

	run := fmt.Sprintf("%d", time.Now().UnixNano())
	ids := make([]string, n)
	lat := samples{}
	var mu sync.Mutex
	add := func(name string, d time.Duration) {
		mu.Lock()
		lat[name] = append(lat[name], d)
		mu.Unlock()
	}
	p := &Pipeline{}
	mem := sampleMemory(e.serverPID)
	cpu := newCPUMeter(e.serverPID, e.services)
	start := time.Now()
	pool(ctx, len(ids), conc, o.Progress, "baseline", func(ctx context.Context, i int) {
		id := fmt.Sprintf("bench-baseline-%s-%d", run, i)
		ids[i] = id
		fail := func(err error) {
			mu.Lock()
			p.Failed++
			if p.FirstError == "" {
				p.FirstError = err.Error()
			}
			mu.Unlock()
		}
		t0 := time.Now()
		wr, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: baselineQueue}, baselineWorkflow, baselineInput{ID: id, Lead: o.Lead})
		if err != nil {
			fail(err)
			return
		}
		add("start", time.Since(t0))
		for range 3 {
			t := time.Now()
			if err := tc.SignalWorkflow(ctx, id, "", baselineSignal, "approve"); err != nil {
				fail(err)
				return
			}
			add("signal", time.Since(t))
		}
		if err := wr.Get(ctx, nil); err != nil {
			fail(err)
			return
		}
		end := time.Now()
		add("end to end", end.Sub(t0))
		k.mu.Lock()
		d, ok := k.at[id]
		k.mu.Unlock()
		if ok {
			add("publish lateness", d)
		}
		mu.Lock()
		p.Completed++
		mu.Unlock()
	})
	p.WallSeconds = time.Since(start).Seconds()
	p.Memory = mem.finish()
	p.CPU = cpu.per(p.Completed)
	p.PostsPerSecond = float64(p.Completed) / p.WallSeconds
	k.mu.Lock()
	for _, n := range k.seen {
		p.Deliveries++
		p.Duplicates += n - 1
	}
	k.mu.Unlock()
	p.Latency = lat.percentiles()
	var err error
	p.History, err = countHistories(ctx, tc, ids)
	return p, err
}

func activityOptions(name string) activity.RegisterOptions {
	return activity.RegisterOptions{Name: name}
}
