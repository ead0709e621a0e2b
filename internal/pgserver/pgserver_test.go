package pgserver_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/countersign/countersign/internal/pgserver"
)

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func requireBinaries(t *testing.T) {
	if err := pgserver.Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// A server keeps its data across a stop and a start, and Stop leaves no
// process behind.
func TestStartStopRestartKeepsData(t *testing.T) {
	requireBinaries(t)
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "pgserver-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the postgres user must reach data/ when we are root
		t.Fatal(err)
	}
	opts := pgserver.Options{Dir: filepath.Join(dir, "data"), Port: freePort(t), Ephemeral: false}

	s, err := pgserver.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	exec(t, s.URL, `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')`)
	s.Stop()
	select {
	case <-s.Done():
	default:
		t.Fatal("postgres still running after Stop")
	}
	if _, err := pgx.Connect(ctx, s.URL); err == nil {
		t.Fatal("server still accepts connections after Stop")
	}

	s2, err := pgserver.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Stop()
	conn, err := pgx.Connect(ctx, s2.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, `SELECT v FROM kept`).Scan(&v); err != nil || v != "still here" {
		t.Fatalf("after restart: %q, %v", v, err)
	}
}

func TestMissingBinariesSaysWhatToInstall(t *testing.T) {
	_, err := pgserver.Start(context.Background(), pgserver.Options{Dir: t.TempDir(), Port: freePort(t), BinDir: t.TempDir()})
	if !errors.Is(err, pgserver.ErrNoBinaries) {
		t.Fatalf("got %v, want ErrNoBinaries", err)
	}
}

func TestPortInUseIsReported(t *testing.T) {
	requireBinaries(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir, err := os.MkdirTemp("", "pgserver-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	_, err = pgserver.Start(context.Background(), pgserver.Options{Dir: dir, Port: l.Addr().(*net.TCPAddr).Port, Ephemeral: true})
	if err == nil {
		t.Fatal("started on a port that is in use")
	}
	t.Log(err)
}

func exec(t *testing.T, url, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}
