package bench_test

import (
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/bench"
	"github.com/countersign/countersign/internal/testenv"
	"github.com/countersign/countersign/internal/topology"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestBenchSmall runs the bench with five posts and approvers who answer
// their Slack requests: every post is delivered exactly once, both sides'
// histories are counted, and the notification → click → next step figures
// are there for every step.
func TestBenchSmall(t *testing.T) {
	testenv.RequirePostgresBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := bench.Run(ctx, bench.Options{Posts: 5, Concurrency: 5, Lead: 3 * time.Second,
		DataDir: testenv.DataDir(t), Logger: testenv.Logger(t)})
	if res != nil {
		res.Print(os.Stdout)
	}
	if err != nil {
		t.Fatal(err)
	}
	c, b := res.Countersign, res.Baseline
	if res.Approvers != bench.ApproversSlack {
		t.Errorf("approvers = %q, want slack by default", res.Approvers)
	}
	if c.Deliveries != 5 || c.Duplicates != 0 || b.Deliveries != 5 || b.Duplicates != 0 {
		t.Fatalf("deliveries %d/%d, duplicates %d/%d", c.Deliveries, b.Deliveries, c.Duplicates, b.Duplicates)
	}
	if b.History.ActionsPerPost != 6 { // start, 3 signals, timer, activity
		t.Errorf("baseline actions per post = %v, want 6", b.History.ActionsPerPost)
	}
	if c.History.ActionsPerPost <= b.History.ActionsPerPost {
		t.Errorf("countersign actions per post = %v, not above the baseline's", c.History.ActionsPerPost)
	}
	// One click per step; steps 2 and 3 open after a click.
	for k, n := range map[string]int{"submit → step 1 request": 5, "notification → click": 10, "notification → reschedule → click": 5, "click acknowledged": 15,
		"click → next step open": 10, "notification → click → next step open": 10, "last click → scheduled": 5, "publish lateness": 5} {
		if c.Latency[k].N != n {
			t.Errorf("%q: %d samples, want %d", k, c.Latency[k].N, n)
		}
	}
}

// TestBenchOnGivenTemporalAndPostgres runs the Countersign side against a
// Temporal and a PostgreSQL that are already running (--temporal-address,
// --database-url), with approvers who read GET /approvals: search
// attributes are registered on the given namespace and the posts are
// delivered once.
func TestBenchOnGivenTemporalAndPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := bench.Run(ctx, bench.Options{Posts: 3, Concurrency: 3, Lead: 3 * time.Second, SkipBaseline: true,
		Approvers: bench.ApproversAPI, Poll: 100 * time.Millisecond,
		TemporalAddress: testenv.Temporal(t).Address, DatabaseURL: testenv.Postgres(t),
		DataDir: testenv.DataDir(t), Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Countersign
	if c.Deliveries != 3 || c.Duplicates != 0 {
		t.Fatalf("deliveries %d, duplicates %d", c.Deliveries, c.Duplicates)
	}
	if n := c.Latency["approve → next approver sees it"].N; n != 6 {
		t.Errorf("approve → next approver sees it: %d samples, want 6", n)
	}
	if res.Countersign.Memory.ServerPeakRSSMB != 0 {
		t.Error("a given Temporal server's memory cannot be measured, yet it was reported")
	}
}

// TestSweepTwoLevels runs a two-level sweep: both curves have a point per
// level, and the plot is a PNG with both curves drawn in it.
func TestSweepTwoLevels(t *testing.T) {
	testenv.RequirePostgresBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sw, err := bench.RunSweep(ctx, bench.Options{Posts: 2, Lead: 3 * time.Second,
		DataDir: testenv.DataDir(t), Logger: testenv.Logger(t)}, []int{1, 2})
	if sw != nil {
		sw.Print(os.Stdout)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(sw.Points) != 2 {
		t.Fatalf("%d points, want 2", len(sw.Points))
	}
	for _, p := range sw.Points {
		if p.Countersign.PostsPerSecond <= 0 || p.Baseline.PostsPerSecond <= 0 || p.Countersign.LatenessP99 == 0 || p.Baseline.LatenessP99 == 0 {
			t.Errorf("concurrency %d: a curve lacks its point: %+v", p.Concurrency, p)
		}
	}
	path := filepath.Join(t.TempDir(), "sweep.png")
	if err := sw.WritePlot(path, "test"); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("the plot is not a PNG: %v", err)
	}
	// Both curves are drawn: pixels of each line's colour.
	var red, blue int
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			switch {
			case r>>8 > 0xc0 && g>>8 < 0x50 && b>>8 < 0x50:
				red++
			case b>>8 > 0xa0 && r>>8 < 0x40 && g>>8 < 0x90:
				blue++
			}
		}
	}
	if bounds.Dx() < 300 || red < 20 || blue < 20 {
		t.Errorf("plot %dx%d with %d countersign and %d baseline pixels", bounds.Dx(), bounds.Dy(), red, blue)
	}
}

// TestBenchOnTopology runs the bench on the production topology (2 serve
// and 2 worker processes of the production binary, Temporal on PostgreSQL
// in its own process): the posts are delivered once, requests reach both
// APIs' processes, and the processes' time is measured. -short skips it.
func TestBenchOnTopology(t *testing.T) {
	if testing.Short() {
		t.Skip("production topology: not with -short")
	}
	testenv.RequirePostgresBinaries(t)
	dir := testenv.DataDir(t)
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin, devBin, err := topology.Build(filepath.Dir(strings.TrimSpace(string(out))), dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := bench.Run(ctx, bench.Options{Posts: 4, Concurrency: 4, Lead: 3 * time.Second, Topology: true,
		Bin: bin, TemporalBin: devBin, DataDir: filepath.Join(dir, "run"), Logger: testenv.Logger(t)})
	if res != nil {
		res.Print(os.Stdout)
	}
	if err != nil {
		t.Fatal(err)
	}
	c := res.Countersign
	if c.Deliveries != 4 || c.Duplicates != 0 || res.Baseline.Deliveries != 4 {
		t.Fatalf("deliveries %d (duplicates %d), baseline %d", c.Deliveries, c.Duplicates, res.Baseline.Deliveries)
	}
	if c.CPU.Services <= 0 || c.CPU.Temporal <= 0 {
		t.Errorf("the topology's processes were not measured: %+v", c.CPU)
	}
	if !strings.Contains(res.MemoryNote, "2 serve and 2 worker") {
		t.Errorf("memory note %q", res.MemoryNote)
	}
}
