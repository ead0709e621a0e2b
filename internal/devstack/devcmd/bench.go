package devcmd

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/countersign/countersign/internal/bench"
	"github.com/countersign/countersign/internal/cli"
)

func init() { cli.Register(BenchCommand()) }

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
	return c
}
