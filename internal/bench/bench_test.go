package bench_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/bench"
	"github.com/countersign/countersign/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestBenchSmall runs the bench with five posts: every post is delivered
// exactly once, and both sides' histories are counted.
func TestBenchSmall(t *testing.T) {
	testenv.RequirePostgresBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := bench.Run(ctx, bench.Options{Posts: 5, Concurrency: 5, Lead: time.Second,
		DataDir: testenv.DataDir(t), Logger: testenv.Logger(t)})
	if res != nil {
		res.Print(os.Stdout)
	}
	if err != nil {
		t.Fatal(err)
	}
	c, b := res.Countersign, res.Baseline
	if c.Deliveries != 5 || c.Duplicates != 0 || b.Deliveries != 5 || b.Duplicates != 0 {
		t.Fatalf("deliveries %d/%d, duplicates %d/%d", c.Deliveries, b.Deliveries, c.Duplicates, b.Duplicates)
	}
	if b.History.ActionsPerPost != 6 { // start, 3 signals, timer, activity
		t.Errorf("baseline actions per post = %v, want 6", b.History.ActionsPerPost)
	}
	if c.History.ActionsPerPost <= b.History.ActionsPerPost {
		t.Errorf("countersign actions per post = %v, not above the baseline's", c.History.ActionsPerPost)
	}
	for _, k := range []string{"submit", "approve", "decision → next step open", "publish lateness"} {
		if c.Latency[k].N == 0 {
			t.Errorf("no %q samples", k)
		}
	}
}

// TestBenchOnGivenTemporalAndPostgres runs the Countersign side against a
// Temporal and a PostgreSQL that are already running (--temporal-address,
// --database-url): search attributes are registered on the given namespace
// and the posts are delivered once.
func TestBenchOnGivenTemporalAndPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := bench.Run(ctx, bench.Options{Posts: 3, Concurrency: 3, Lead: time.Second, SkipBaseline: true,
		TemporalAddress: testenv.Temporal(t).Address, DatabaseURL: testenv.Postgres(t),
		DataDir: testenv.DataDir(t), Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Countersign; c.Deliveries != 3 || c.Duplicates != 0 {
		t.Fatalf("deliveries %d, duplicates %d", c.Deliveries, c.Duplicates)
	}
	if res.Countersign.Memory.ServerPeakRSSMB != 0 {
		t.Error("a given Temporal server's memory cannot be measured, yet it was reported")
	}
}
