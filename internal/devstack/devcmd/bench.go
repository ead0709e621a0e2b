package devcmd

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/countersign/countersign/internal/bench"
	"github.com/countersign/countersign/internal/cli"
	"github.com/countersign/countersign/internal/devtemporal"
)

func init() {
	cli.Register(BenchCommand())
	cli.Register(TemporalCommand())
}

// BenchCommand is `countersign bench`: the whole pipeline against a bare
// Temporal workflow of the same shape, on one embedded stack; with --sweep,
// both at rising concurrency until the baseline stops gaining.
func BenchCommand() *cobra.Command {
	var o bench.Options
	var out, plotPath, cpuProfile, memProfile string
	var sweep bool
	var levels []int
	c := &cobra.Command{
		Use:   "bench",
		Short: "Benchmark the whole pipeline (API, worker, PostgreSQL, Temporal) against bare Temporal",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				o.Progress = cmd.ErrOrStderr()
			}
			if plotPath != "" && !sweep {
				return fmt.Errorf("--plot draws the sweep's curves: add --sweep")
			}
			stopProfiles, err := profiles(cpuProfile, memProfile)
			if err != nil {
				return err
			}
			defer func() {
				if perr := stopProfiles(); err == nil {
					err = perr
				}
			}()
			w := cmd.OutOrStdout()
			var res any
			var runErr error
			if sweep {
				sw, serr := bench.RunSweep(cmd.Context(), o, levels)
				runErr = serr
				if sw == nil || len(sw.Points) == 0 {
					return runErr
				}
				for _, r := range sw.Runs {
					r.Print(w)
				}
				sw.Print(w)
				if plotPath != "" {
					r := sw.Runs[0]
					title := fmt.Sprintf("Countersign vs bare Temporal, %s approvers, %d CPUs, %s", r.Approvers, r.CPUs, r.GoVersion)
					if err := sw.WritePlot(plotPath, title); err != nil {
						return err
					}
					fmt.Fprintln(w, "\nwrote", plotPath)
				}
				res = sw
			} else {
				r, rerr := bench.Run(cmd.Context(), o)
				runErr = rerr
				if r == nil {
					return runErr
				}
				r.Print(w)
				res = r
			}
			if out != "" {
				b, _ := json.MarshalIndent(res, "", "  ")
				if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
					return err
				}
				fmt.Fprintln(w, "\nwrote", out)
			}
			return runErr
		},
	}
	f := c.Flags()
	f.IntVar(&o.Posts, "posts", 300, "posts driven through each pipeline (with --sweep: per level, at least twice the concurrency)")
	f.IntVar(&o.Concurrency, "concurrency", 20, "posts in flight at once")
	f.DurationVar(&o.Lead, "lead", 3*time.Second, "scheduled_at = last approval + lead")
	f.StringVar(&o.Approvers, "approvers", bench.ApproversSlack, "how approvers learn of a step: slack (the notifications, sent to an in-process fake Slack, answered with signed clicks) or api (GET /approvals every --poll)")
	f.DurationVar(&o.Poll, "poll", 2*time.Second, "with --approvers api: each approver's GET /approvals interval")
	f.BoolVar(&sweep, "sweep", false, "raise the concurrency through --sweep-levels until the baseline gains less than 5%, and print both curves")
	f.IntSliceVar(&levels, "sweep-levels", bench.DefaultSweep, "the concurrency levels of --sweep")
	f.StringVar(&plotPath, "plot", "", "with --sweep: draw the curves as a PNG here")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the bench process (API, worker, drivers) here")
	f.StringVar(&memProfile, "memprofile", "", "write a heap profile of the bench process here, at the end")
	f.StringVar(&o.ServerCPUProfile, "server-cpuprofile", "", "write a CPU profile of the Temporal server process here (with --separate-server)")
	f.StringVar(&o.DataDir, "data-dir", "", "dev stack data directory (default: a temporary one, removed afterwards)")
	f.BoolVar(&o.SkipBaseline, "skip-baseline", false, "do not run the bare Temporal baseline")
	f.StringVar(&out, "out", "bench.json", "write the figures as JSON here (empty: do not)")
	f.BoolVar(&o.SeparateServer, "separate-server", true, "run the embedded Temporal server in its own process, to measure its memory apart")
	f.StringVar(&o.TemporalAddress, "temporal-address", "", "use this Temporal (namespace default) instead of the embedded one")
	f.StringVar(&o.DatabaseURL, "database-url", "", "use this PostgreSQL instead of starting one")
	f.BoolVar(&o.Topology, "topology", false, "run the production topology instead of the dev stack: PostgreSQL, Temporal on PostgreSQL in its own process, 2 serve and 2 worker processes; requests spread over both APIs")
	c.AddCommand(seedCommand(), queriesCommand()) // seed.go
	return c
}

// profiles starts a CPU profile and returns a function that stops it and
// writes the heap profile.
func profiles(cpu, mem string) (func() error, error) {
	var cf *os.File
	if cpu != "" {
		var err error
		if cf, err = os.Create(cpu); err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(cf); err != nil {
			cf.Close()
			return nil, err
		}
	}
	return func() error {
		if cf != nil {
			pprof.StopCPUProfile()
			if err := cf.Close(); err != nil {
				return err
			}
		}
		if mem == "" {
			return nil
		}
		mf, err := os.Create(mem)
		if err != nil {
			return err
		}
		runtime.GC()
		if err := pprof.WriteHeapProfile(mf); err != nil {
			mf.Close()
			return err
		}
		return mf.Close()
	}, nil
}

// TemporalCommand is `countersign dev-temporal` (hidden): the embedded Temporal
// server alone. It prints its address once ready and stops on SIGTERM; the
// bench runs it as a child process.
func TemporalCommand() *cobra.Command {
	var o devtemporal.Options
	var cpuProfile string
	c := &cobra.Command{
		Use:    bench.TemporalCommand,
		Short:  "Run the embedded Temporal server alone (for the bench)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stopProfile, err := profiles(cpuProfile, "")
			if err != nil {
				return err
			}
			t, err := devtemporal.Start(cmd.Context(), o)
			if err != nil {
				_ = stopProfile()
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), t.Address)
			<-cmd.Context().Done()
			t.Stop()
			return stopProfile()
		},
	}
	f := c.Flags()
	f.IntVar(&o.Port, "port", 0, "frontend gRPC port on 127.0.0.1 (0: any free one)")
	f.StringVar(&o.DBFile, "db-file", "", "SQLite file (empty: in memory)")
	f.StringVar(&o.PostgresURL, "postgres-url", "", "persist to PostgreSQL instead (databases temporal and temporal_visibility on this URL's server)")
	f.StringVar(&o.LogFile, "log-file", "", "server log file (empty: discarded)")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the server here when it stops")
	return c
}
