package devcmd

import (
	"encoding/json"
	"fmt"
	"os"
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
// Temporal workflow of the same shape, on one embedded stack.
func BenchCommand() *cobra.Command {
	var o bench.Options
	var out string
	c := &cobra.Command{
		Use:   "bench",
		Short: "Benchmark the whole pipeline (API, worker, PostgreSQL, Temporal) against bare Temporal",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				o.Progress = cmd.ErrOrStderr()
			}
			res, runErr := bench.Run(cmd.Context(), o)
			if res == nil {
				return runErr
			}
			res.Print(cmd.OutOrStdout())
			if out != "" {
				b, _ := json.MarshalIndent(res, "", "  ")
				if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "\nwrote", out)
			}
			return runErr
		},
	}
	f := c.Flags()
	f.IntVar(&o.Posts, "posts", 300, "posts driven through each pipeline")
	f.IntVar(&o.Concurrency, "concurrency", 20, "posts in flight at once")
	f.DurationVar(&o.Lead, "lead", 3*time.Second, "scheduled_at = submission + lead")
	f.DurationVar(&o.Poll, "poll", 50*time.Millisecond, "approvers' polling interval")
	f.StringVar(&o.DataDir, "data-dir", "", "dev stack data directory (default: a temporary one, removed afterwards)")
	f.BoolVar(&o.SkipBaseline, "skip-baseline", false, "do not run the bare Temporal baseline")
	f.StringVar(&out, "out", "bench.json", "write the figures as JSON here (empty: do not)")
	f.BoolVar(&o.SeparateServer, "separate-server", true, "run the embedded Temporal server in its own process, to measure its memory apart")
	f.StringVar(&o.TemporalAddress, "temporal-address", "", "use this Temporal (namespace default) instead of the embedded one")
	f.StringVar(&o.DatabaseURL, "database-url", "", "use this PostgreSQL instead of starting one")
	c.AddCommand(seedCommand(), queriesCommand()) // seed.go
	return c
}

// TemporalCommand is `countersign dev-temporal` (hidden): the embedded Temporal
// server alone. It prints its address once ready and stops on SIGTERM; the
// bench runs it as a child process.
func TemporalCommand() *cobra.Command {
	var o devtemporal.Options
	c := &cobra.Command{
		Use:    bench.TemporalCommand,
		Short:  "Run the embedded Temporal server alone (for the bench)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := devtemporal.Start(cmd.Context(), o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), t.Address)
			<-cmd.Context().Done()
			t.Stop()
			return nil
		},
	}
	f := c.Flags()
	f.IntVar(&o.Port, "port", 0, "frontend gRPC port on 127.0.0.1 (0: any free one)")
	f.StringVar(&o.DBFile, "db-file", "", "SQLite file (empty: in memory)")
	f.StringVar(&o.PostgresURL, "postgres-url", "", "persist to PostgreSQL instead (databases temporal and temporal_visibility on this URL's server)")
	f.StringVar(&o.LogFile, "log-file", "", "server log file (empty: discarded)")
	return c
}
