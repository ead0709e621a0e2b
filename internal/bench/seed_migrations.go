package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/countersign/countersign/internal/pgserver"
	"github.com/countersign/countersign/migrations"
)

// DevDatabase returns the database to seed or measure: url when given, else
// the dev stack's PostgreSQL (`countersign dev`'s, on 127.0.0.1:port), started
// from dataDir when it is not running. stop stops what this call started.
func DevDatabase(ctx context.Context, url, dataDir string, port int) (dbURL string, stop func(), err error) {
	if url != "" {
		return url, func() {}, nil
	}
	dev := fmt.Sprintf("postgres://countersign@127.0.0.1:%d/countersign?sslmode=disable", port)
	if conn, err := pgx.Connect(ctx, dev); err == nil {
		conn.Close(ctx)
		return dev, func() {}, nil
	}
	pg, err := pgserver.Start(ctx, pgserver.Options{Dir: filepath.Join(dataDir, "postgres"), Port: port})
	if err != nil {
		return "", nil, fmt.Errorf("dev PostgreSQL: %w", err)
	}
	return pg.URL, pg.Stop, nil
}

// MigrationTiming is one migration applied to a seeded database.
type MigrationTiming struct {
	Version int64
	Name    string
	Took    time.Duration
	Posts   int // posts in the database when it ran
	// ReadBlocked and WriteBlocked are the longest a one-row read or write
	// of posts, tried every 20 ms from other connections while it ran,
	// waited: the lock it takes on the big table, seen from outside.
	ReadBlocked, WriteBlocked time.Duration
}

// SeedTimed creates a new database on the server of serverURL, applies the
// migrations up to 00003 (the posts table), seeds it, then applies each
// later migration alone, timed, with a probe of the locks it takes on posts.
// It returns the new database's URL (left in place for `bench queries`).
func SeedTimed(ctx context.Context, serverURL string, o SeedOptions) (string, *SeedResult, []MigrationTiming, error) {
	admin, err := pgserver.DatabaseURL(serverURL, "postgres")
	if err != nil {
		return "", nil, nil, err
	}
	name := fmt.Sprintf("countersign_seed_%s_%04x", time.Now().UTC().Format("20060102_150405"), rand.IntN(1<<16))
	if err := pgserver.CreateDatabase(ctx, admin, name, ""); err != nil {
		return "", nil, nil, err
	}
	dbURL, err := pgserver.DatabaseURL(serverURL, name)
	if err != nil {
		return "", nil, nil, err
	}
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return dbURL, nil, nil, err
	}
	defer pool.Close()
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := migrations.Provider(db)
	if err != nil {
		return dbURL, nil, nil, err
	}
	var timings []MigrationTiming
	var seed *SeedResult
	for _, src := range p.ListSources() {
		if src.Version > 3 && seed == nil {
			if seed, err = Seed(ctx, pool, o); err != nil {
				return dbURL, nil, timings, err
			}
		}
		mt := MigrationTiming{Version: src.Version, Name: filepath.Base(src.Path)}
		if seed != nil {
			mt.Posts = seed.Posts
		}
		var probe *lockProbe
		if src.Version > 3 {
			if probe, err = startLockProbe(ctx, dbURL); err != nil {
				return dbURL, seed, timings, err
			}
		}
		start := time.Now()
		_, err := p.UpByOne(ctx)
		mt.Took = time.Since(start)
		if probe != nil {
			mt.ReadBlocked, mt.WriteBlocked = probe.stop()
		}
		if err != nil {
			return dbURL, seed, timings, fmt.Errorf("migration %d: %w", src.Version, err)
		}
		timings = append(timings, mt)
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "migration %s: %s\n", mt.Name, mt.Took.Round(time.Millisecond))
		}
	}
	if seed == nil { // no migration after 00003
		seed, err = Seed(ctx, pool, o)
	}
	return dbURL, seed, timings, err
}

// lockProbe reads and writes one post, each on its own connection, every
// 20 ms, and keeps the longest wait of each.
type lockProbe struct {
	cancel          context.CancelFunc
	wg              sync.WaitGroup
	mu              sync.Mutex
	maxRead, maxWri time.Duration
}

func startLockProbe(ctx context.Context, dbURL string) (*lockProbe, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	var id string
	err = conn.QueryRow(ctx, `SELECT id FROM posts ORDER BY id DESC LIMIT 1`).Scan(&id)
	conn.Close(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock probe: %w", err)
	}
	pctx, cancel := context.WithCancel(ctx)
	p := &lockProbe{cancel: cancel}
	run := func(sql string, into *time.Duration) {
		defer p.wg.Done()
		c, err := pgx.Connect(pctx, dbURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		for pctx.Err() == nil {
			t := time.Now()
			if _, err := c.Exec(pctx, sql, id); err != nil && !errors.Is(err, context.Canceled) && pctx.Err() == nil {
				return
			}
			p.mu.Lock()
			*into = max(*into, time.Since(t))
			p.mu.Unlock()
			select {
			case <-pctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	p.wg.Add(2)
	go run(`SELECT id FROM posts WHERE id = $1`, &p.maxRead)
	go run(`UPDATE posts SET updated_at = updated_at WHERE id = $1`, &p.maxWri)
	return p, nil
}

// stop waits for the probes' last tries (a blocked one ends with the
// migration) and returns the longest waits.
func (p *lockProbe) stop() (read, write time.Duration) {
	// Let a try blocked behind the migration's lock return on its own.
	time.Sleep(50 * time.Millisecond)
	p.cancel()
	p.wg.Wait()
	return p.maxRead, p.maxWri
}

// PrintMigrations prints the timings as a table.
func PrintMigrations(w io.Writer, ts []MigrationTiming) {
	fmt.Fprintln(w, "\n| migration | posts | took | longest wait of a posts read / write meanwhile |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, t := range ts {
		wait := "— (no posts table yet)"
		if t.Version > 3 {
			wait = fmt.Sprintf("%s / %s", msStr(t.ReadBlocked), msStr(t.WriteBlocked))
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s |\n", strings.TrimSuffix(t.Name, ".sql"), t.Posts, msStr(t.Took), wait)
	}
}

func msStr(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
