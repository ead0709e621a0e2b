// Package testenv is the harness of every integration test: a throwaway
// PostgreSQL server and an in-process Temporal server, each started at most
// once per test package (on first use) and torn down by Main.
//
// PostgreSQL comes from TEST_DATABASE_URL (a server the tests may create
// databases on) or from the local initdb/postgres binaries. Without either,
// tests that need it skip — except under CI=true, where they fail.
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"

	"github.com/countersign/countersign/internal/devtemporal"
	"github.com/countersign/countersign/internal/pgserver"
	"github.com/countersign/countersign/internal/store"
)

var (
	pgOnce   sync.Once
	pg       *postgres
	pgErr    error
	tmpOnce  sync.Once
	tmp      *devtemporal.Server
	tmpErr   error
	dbSerial atomic.Int64
)

// postgres is the package's database server and the migrated template
// database every test's database is copied from.
type postgres struct {
	server   *pgserver.Server // nil with TEST_DATABASE_URL
	dir      string
	adminURL string
	template string
	created  []string
}

// Main runs the tests and then stops the servers they started.
func Main(m *testing.M) {
	code := m.Run()
	if pg != nil {
		pg.close()
	}
	if tmp != nil {
		tmp.Stop()
	}
	os.Exit(code)
}

// Postgres returns the URL of a fresh database, migrated to the latest
// schema, for this test alone.
func Postgres(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() { pg, pgErr = startPostgres() })
	if pgErr != nil {
		unavailable(t, "PostgreSQL", pgErr)
	}
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), dbSerial.Add(1))
	if err := pg.createDatabase(name, pg.template); err != nil {
		t.Fatal(err)
	}
	return pg.databaseURL(name)
}

// Store returns a store on a fresh database; it is closed when the test ends.
func Store(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// Temporal returns the package's in-process Temporal server (in-memory
// SQLite, namespace "default", Countersign's search attributes registered).
func Temporal(t testing.TB) *devtemporal.Server {
	t.Helper()
	tmpOnce.Do(func() {
		for attempt := 1; attempt <= 3; attempt++ { // see startPostgres: ports can be taken in between
			if tmp, tmpErr = devtemporal.Start(context.Background(), devtemporal.Options{}); tmpErr == nil {
				return
			}
		}
	})
	if tmpErr != nil {
		t.Fatalf("start in-process Temporal server: %v", tmpErr)
	}
	return tmp
}

// TemporalClient returns a client of the package's Temporal server, closed
// when the test ends.
func TemporalClient(t testing.TB) client.Client {
	t.Helper()
	srv := Temporal(t)
	c, err := client.Dial(client.Options{HostPort: srv.Address, Namespace: srv.Namespace, Logger: Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// Logger returns a logger that writes through t.Log, so output shows only
// for failing tests (or with -v).
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p[:len(p)-min(len(p), 1)]))
	return len(p), nil
}

// DataDir returns a new directory that the "postgres" user can reach when
// the tests run as root (t.TempDir's parents are private to root).
func DataDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "countersign-test-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// RequirePostgresBinaries skips (or under CI fails) the test when the local
// PostgreSQL binaries are missing, for tests that start their own server.
func RequirePostgresBinaries(t testing.TB) {
	t.Helper()
	if err := pgserver.Available(); err != nil {
		unavailable(t, "PostgreSQL binaries", err)
	}
}

func unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s unavailable in CI: %v", what, err)
	}
	t.Skipf("%s unavailable (set TEST_DATABASE_URL or install PostgreSQL): %v", what, err)
}

func startPostgres() (*postgres, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := &postgres{template: fmt.Sprintf("template_%d", os.Getpid())}
	if url := os.Getenv("TEST_DATABASE_URL"); url != "" {
		p.adminURL = url
	} else {
		dir, err := os.MkdirTemp("", "countersign-test-pg-")
		if err != nil {
			return nil, err
		}
		p.dir = dir
		// A port found free can be taken by a parallel test package before
		// PostgreSQL binds it: try a few.
		for attempt := 1; ; attempt++ {
			port, err := freePort()
			if err != nil {
				return nil, err
			}
			p.server, err = pgserver.Start(ctx, pgserver.Options{Dir: dir, Port: port, Database: "postgres", Ephemeral: true})
			if err == nil {
				break
			}
			if attempt == 5 || !strings.Contains(err.Error(), "already in use") {
				os.RemoveAll(dir)
				return nil, err
			}
		}
		p.adminURL = p.server.AdminURL
	}
	if err := p.createDatabase(p.template, ""); err != nil {
		p.close()
		return nil, err
	}
	st, err := store.Open(ctx, p.databaseURL(p.template))
	if err == nil {
		_, err = st.Migrate(ctx)
		st.Close()
	}
	if err != nil {
		p.close()
		return nil, fmt.Errorf("migrate template database: %w", err)
	}
	return p, nil
}

func (p *postgres) createDatabase(name, template string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pgserver.CreateDatabase(ctx, p.adminURL, name, template); err != nil {
		return fmt.Errorf("create test database: %w", err)
	}
	p.created = append(p.created, name)
	return nil
}

func (p *postgres) databaseURL(name string) string {
	u, err := pgserver.DatabaseURL(p.adminURL, name)
	if err != nil {
		panic("TEST_DATABASE_URL: " + err.Error())
	}
	return u
}

// close stops and removes the private server, or drops what the tests
// created on an external one (best effort: a leftover database is harmless).
func (p *postgres) close() {
	if p.server != nil {
		p.server.Stop()
		os.RemoveAll(p.dir)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.adminURL)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	for _, name := range p.created {
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
