package devcmd

import (
	"fmt"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/countersign/countersign/internal/bench"
	"github.com/countersign/countersign/internal/devstack"
	"github.com/countersign/countersign/internal/store"
)

// dbFlags are where `bench seed` and `bench queries` find PostgreSQL.
type dbFlags struct {
	url, dataDir string
	pgPort       int
}

func (d *dbFlags) register(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&d.url, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL to use (default: $DATABASE_URL, else the dev stack's)")
	f.StringVar(&d.dataDir, "data-dir", devstack.DefaultDataDir, "dev stack data directory, for its PostgreSQL")
	f.IntVar(&d.pgPort, "pg-port", devstack.DefaultPGPort, "dev stack PostgreSQL port")
}

// seedCommand is `countersign bench seed`.
func seedCommand() *cobra.Command {
	var o bench.SeedOptions
	var db dbFlags
	var timed bool
	c := &cobra.Command{
		Use:   "seed",
		Short: "Fill PostgreSQL directly with orgs, their directories and posts in realistic proportions",
		Long: `Fill PostgreSQL directly (COPY, in batches) with orgs, members, teams, accounts, approval
chains and posts (most published, some pending approval with who is awaited, scheduled,
rejected, expired, canceled, failed, needs_attention, on hold), created over --months,
with the audit log of a sample. Then measure reads with "countersign bench queries".

--time-migrations seeds a new database on the same server instead: migrations up to
00003, the seed, then each later migration alone, timed, with the longest wait a read
and a write of posts saw meanwhile.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, out := cmd.Context(), cmd.OutOrStdout()
			url, stop, err := bench.DevDatabase(ctx, db.url, db.dataDir, db.pgPort)
			if err != nil {
				return err
			}
			defer stop()
			o.Progress = cmd.ErrOrStderr()
			var res *bench.SeedResult
			if timed {
				var timings []bench.MigrationTiming
				var newURL string
				newURL, res, timings, err = bench.SeedTimed(ctx, url, o)
				if newURL != "" {
					fmt.Fprintln(out, "database:", newURL)
				}
				if err != nil {
					return err
				}
				bench.PrintMigrations(out, timings)
			} else {
				pool, err := pgxpool.New(ctx, url)
				if err != nil {
					return err
				}
				defer pool.Close()
				st, err := store.Open(ctx, url)
				if err != nil {
					return err
				}
				_, err = st.Migrate(ctx)
				st.Close()
				if err != nil {
					return err
				}
				if res, err = bench.Seed(ctx, pool, o); err != nil {
					return err
				}
			}
			res.Print(out)
			return nil
		},
	}
	f := c.Flags()
	f.IntVar(&o.Posts, "posts", 1000000, "posts to write")
	f.IntVar(&o.Orgs, "orgs", 1000, "orgs to spread them over (Zipf: a few big ones)")
	f.IntVar(&o.Months, "months", 12, "how far back posts were created")
	f.Float64Var(&o.EventsFraction, "events", 0.1, "share of posts that get their audit log")
	f.Uint64Var(&o.Seed, "seed", 1, "random seed")
	f.IntVar(&o.Batch, "batch", 20000, "posts per COPY")
	f.BoolVar(&timed, "time-migrations", false, "seed a new database between migrations 00003 and 00004 and time each later one")
	db.register(c)
	return c
}

// queriesCommand is `countersign bench queries`.
func queriesCommand() *cobra.Command {
	var o bench.QueryOptions
	var db dbFlags
	c := &cobra.Command{
		Use:   "queries",
		Short: "Measure the API's reads, the metrics scrape and the reconciler's statements on a seeded database",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, stop, err := bench.DevDatabase(cmd.Context(), db.url, db.dataDir, db.pgPort)
			if err != nil {
				return err
			}
			defer stop()
			o.DatabaseURL = url
			res, err := bench.Queries(cmd.Context(), o)
			if res != nil {
				res.Print(cmd.OutOrStdout())
			}
			return err
		},
	}
	c.Flags().IntVar(&o.Calls, "calls", 200, "calls per case, one at a time")
	c.Flags().BoolVar(&o.Explain, "explain", false, "print EXPLAIN (ANALYZE, BUFFERS) of each case's statement")
	db.register(c)
	return c
}
