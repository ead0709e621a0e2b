// Package bench measures the whole Countersign pipeline — HTTP API, worker,
// PostgreSQL mirror, Temporal — against a bare Temporal workflow of the same
// shape, in one run on one Temporal server. It backs `countersign bench`
// (dev build only: it starts the embedded dev stack).
//
// A Countersign post is: submission by a limited author (POST /posts),
// three approvals by simulated approvers, the author moving the post to Lead
// from its last approval, the scheduled-time timer, and publication to an
// in-process webhook receiver that verifies the Standard Webhooks signature
// and counts deliveries by webhook-id. By default the approvers react to
// the Slack requests the real notifier sends to an in-process fake Slack
// and click Approve (signed POST /slack/interactions); nothing polls. With
// Approvers "api" they read GET /approvals every Poll and approve over the
// API.
//
// A baseline post is a workflow that receives three signals, sleeps until
// start + Lead and runs one activity; the driver starts it, sends the three
// signals back to back and waits for its result.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/countersign/countersign/internal/devstack"
)

// Options configures a run.
type Options struct {
	Posts       int           // posts driven through each pipeline (default 300)
	Concurrency int           // posts in flight at once (default 20)
	Lead        time.Duration // scheduled_at = last approval + Lead (default 3s)
	// Approvers is how the simulated approvers learn that a step waits for
	// them: "slack" (default) from the notifications the real Slack notifier
	// sends to an in-process fake Slack, answered with signed button clicks;
	// "api" from GET /approvals, read every Poll, answered over the API.
	Approvers    string
	Poll         time.Duration // --approvers api: each approver's GET /approvals interval (default 2s)
	DataDir      string        // dev stack data directory; default a temporary one, removed afterwards
	Progress     io.Writer     // progress bar (\r-redrawn); nil: none
	Logger       *slog.Logger  // the stack's log; default: DataDir/bench.log
	SkipBaseline bool
	// SeparateServer runs the embedded Temporal server as a child process
	// (this executable's dev-temporal command), so its memory is measured
	// on its own; otherwise it shares the bench's process.
	SeparateServer bool
	// ServerCPUProfile, with SeparateServer, writes a CPU profile of the
	// Temporal server process here (both sides' runs when not skipped).
	ServerCPUProfile string
	// TemporalAddress and DatabaseURL use a running Temporal (namespace
	// "default") or PostgreSQL instead of starting them.
	TemporalAddress string
	DatabaseURL     string
	// Topology runs the production topology (internal/topology) instead of
	// the dev stack: PostgreSQL, Temporal on PostgreSQL in its own process,
	// and two serve and two worker processes (this executable's commands);
	// the drivers spread their requests over both APIs.
	Topology bool
	// Bin and TemporalBin are the binaries the topology runs (serve and
	// worker; dev-temporal); default this executable, which has them all.
	Bin, TemporalBin string
}

// Approver modes.
const (
	ApproversSlack = "slack"
	ApproversAPI   = "api"
)

func (o *Options) defaults() error {
	if o.Posts <= 0 {
		o.Posts = 300
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 20
	}
	if o.Lead <= 0 {
		o.Lead = 3 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	switch o.Approvers {
	case "":
		o.Approvers = ApproversSlack
	case ApproversSlack, ApproversAPI:
	default:
		return fmt.Errorf("--approvers must be %s or %s, not %q", ApproversSlack, ApproversAPI, o.Approvers)
	}
	return nil
}

// env is a started bench environment: the APIs (of the dev stack or of the
// production topology), the demo org, a Temporal client, the fake Slack,
// the Temporal server process.
type env struct {
	apiURLs    []string
	demo       *devstack.Demo
	tc         client.Client
	slack      *slackTap
	serverPID  int
	services   []int // the topology's serve and worker processes
	memoryNote string
}

// Run starts a dev stack, runs the baseline then the Countersign pipeline,
// counts histories and returns the figures.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	e, stop, err := start(ctx, &o)
	if err != nil {
		return nil, err
	}
	defer stop()
	return e.point(ctx, o, o.Concurrency, o.Posts)
}

// start brings the environment up; stop takes it down.
func start(ctx context.Context, o *Options) (_ *env, stop func(), err error) {
	var undo []func()
	stop = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	dir := o.DataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "countersign-bench-")
		if err != nil {
			return nil, stop, err
		}
		undo = append(undo, func() { os.RemoveAll(d) })
		// As root, PostgreSQL runs as the postgres user, who must reach it.
		if err := os.Chmod(d, 0o755); err != nil {
			return nil, stop, err
		}
		dir = d
	}
	if o.Logger == nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, stop, err
		}
		f, err := os.Create(filepath.Join(dir, "bench.log"))
		if err != nil {
			return nil, stop, err
		}
		undo = append(undo, func() { f.Close() })
		o.Logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	e := &env{}
	vars := map[string]string{"COUNTERSIGN_SLACK_BOT_TOKEN": "", "COUNTERSIGN_SLACK_SIGNING_SECRET": "", "COUNTERSIGN_SLACK_APP_TOKEN": ""}
	if o.Approvers == ApproversSlack {
		if e.slack, err = newSlackTap(); err != nil {
			return nil, stop, err
		}
		undo = append(undo, e.slack.close)
		vars = e.slack.env()
	}
	vars[memberRateVar] = memberRate
	if o.Topology {
		stage(o.Progress, "starting the production topology in %s …\n", dir)
		d, err := startTopology(ctx, e, o, dir, vars)
		if d != nil {
			undo = append(undo, d.Stop)
		}
		if err != nil {
			return nil, stop, err
		}
		undo = append(undo, e.tc.Close)
		return e, stop, nil
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, stop, err
	}
	stage(o.Progress, "starting the dev stack in %s …\n", dir)
	e.memoryNote = "API, worker, embedded Temporal server, webhook receiver and drivers share one process"
	switch {
	case o.TemporalAddress != "":
		e.memoryNote = "API, worker, webhook receiver and drivers share one process; the given Temporal server is not measured"
	case o.SeparateServer:
		server, err := startServer(ctx, dir, ports[0], o.ServerCPUProfile)
		if err != nil {
			return nil, stop, err
		}
		undo = append(undo, server.stop)
		o.TemporalAddress, e.serverPID = server.addr, server.pid()
		e.memoryNote = "API, worker, webhook receiver and drivers share one process; the embedded Temporal server runs in its own (its peak RSS)"
	}
	if o.DatabaseURL == "" {
		e.memoryNote += "; PostgreSQL is a child process, not counted"
	}
	// The dev stack reads the Slack settings from the environment.
	restore := setEnv(vars)
	s, err := devstack.Start(ctx, devstack.Options{
		DataDir: dir, HTTPAddr: "127.0.0.1:0", TemporalPort: ports[0], UIPort: -1, PGPort: ports[1], Logger: o.Logger,
		TemporalAddress: o.TemporalAddress, DatabaseURL: o.DatabaseURL,
	})
	restore()
	if err != nil {
		return nil, stop, err
	}
	undo = append(undo, func() { _ = s.Stop() })
	e.apiURLs, e.demo, e.tc = []string{s.APIURL}, s.Demo, s.App.Temporal
	return e, stop, nil
}

// The bench's five people make every decision and edit of hundreds of
// posts: the per-member rate limit (30 a minute, docs/limits.md) would cap
// the whole run at half a post a second, which an org with that many posts
// spreads over many more people. The bench raises it through its setting;
// the per-post limit stays.
const (
	memberRateVar = "COUNTERSIGN_MEMBER_CHANGES_PER_MINUTE"
	memberRate    = "60000"
)

// point runs n posts through the baseline then Countersign at concurrency c.
func (e *env) point(ctx context.Context, o Options, c, n int) (*Result, error) {
	res := &Result{Posts: n, Concurrency: c, Lead: o.Lead.String(), Approvers: o.Approvers,
		CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), Started: time.Now().UTC()}
	if o.Approvers == ApproversAPI {
		res.Poll = o.Poll.String()
	}
	res.BillingRules = billingRules
	res.MemoryNote = e.memoryNote

	if !o.SkipBaseline {
		stage(o.Progress, "baseline: %d bare workflows, concurrency %d …\n", n, c)
		b, err := runBaseline(ctx, e, o, c, n)
		if err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		res.Baseline = b
	}

	stage(o.Progress, "countersign: %d posts, concurrency %d, approvers %s …\n", n, c, o.Approvers)
	cp, err := runCountersign(ctx, e, o, c, n)
	if err != nil {
		return nil, fmt.Errorf("countersign: %w", err)
	}
	res.Countersign = cp
	if res.Baseline != nil && res.Baseline.PostsPerSecond > 0 {
		res.ThroughputRatio = cp.PostsPerSecond / res.Baseline.PostsPerSecond
		if res.Baseline.History.ActionsPerPost > 0 {
			res.ActionsRatio = cp.History.ActionsPerPost / res.Baseline.History.ActionsPerPost
		}
	}
	var errs []error
	if cp.Deliveries != n {
		errs = append(errs, fmt.Errorf("deliveries = %d, want %d", cp.Deliveries, n))
	}
	if cp.Duplicates != 0 {
		errs = append(errs, fmt.Errorf("duplicate deliveries = %d, want 0", cp.Duplicates))
	}
	if cp.Failed > 0 {
		errs = append(errs, fmt.Errorf("%d post(s) failed (first: %s)", cp.Failed, cp.FirstError))
	}
	return res, errors.Join(errs...)
}

// pool runs job(i) for i in [0,n) with at most c at once, and draws progress.
func pool(ctx context.Context, n, c int, progress io.Writer, label string, job func(ctx context.Context, i int)) {
	var done atomic.Int64
	stop := make(chan struct{})
	var pwg sync.WaitGroup
	if progress != nil {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			start := time.Now()
			for {
				select {
				case <-stop:
					drawBar(progress, label, int(done.Load()), n, time.Since(start))
					fmt.Fprintln(progress)
					return
				case <-t.C:
					drawBar(progress, label, int(done.Load()), n, time.Since(start))
				}
			}
		}()
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				job(ctx, i)
				done.Add(1)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(stop)
	pwg.Wait()
}

func drawBar(w io.Writer, label string, done, n int, el time.Duration) {
	const width = 30
	fill := 0
	if n > 0 {
		fill = done * width / n
	}
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = '.'
		if i < fill {
			bar[i] = '#'
		}
	}
	fmt.Fprintf(w, "\r%-11s [%s] %d/%d  %5.1fs", label, bar, done, n, el.Seconds())
}

func stage(w io.Writer, f string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, f, args...)
	}
}

// memSampler records the process's peak heap in use and peak Sys.
type memSampler struct {
	stop             chan struct{}
	done             chan struct{}
	heapInuse, sys   uint64
	rss, serverRSS   uint64
	self, server     string // /proc ids
	measureServerRSS bool
}

// sampleMemory samples this process's Go heap and RSS, and the separate
// Temporal server's RSS when serverPID is not 0, every 100 ms until finish.
func sampleMemory(serverPID int) *memSampler {
	m := &memSampler{stop: make(chan struct{}), done: make(chan struct{}), self: "self",
		server: strconv.Itoa(serverPID), measureServerRSS: serverPID != 0}
	go func() {
		defer close(m.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			m.heapInuse = max(m.heapInuse, ms.HeapInuse)
			m.sys = max(m.sys, ms.Sys)
			m.rss = max(m.rss, rssBytes(m.self))
			if m.measureServerRSS {
				m.serverRSS = max(m.serverRSS, rssBytes(m.server))
			}
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *memSampler) finish() Memory {
	close(m.stop)
	<-m.done
	const mb = 1 << 20
	return Memory{PeakHeapInuseMB: float64(m.heapInuse) / mb, PeakSysMB: float64(m.sys) / mb,
		PeakRSSMB: float64(m.rss) / mb, ServerPeakRSSMB: float64(m.serverRSS) / mb}
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
