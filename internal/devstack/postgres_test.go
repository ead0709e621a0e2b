package devstack_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/devstack"
	"github.com/countersign/countersign/internal/devtemporal"
	"github.com/countersign/countersign/internal/pgserver"
	"github.com/countersign/countersign/internal/testenv"
)

// TestDevStackTemporalOnPostgres: with --temporal-persistence postgres the
// embedded Temporal keeps its history and SQL visibility in the databases
// temporal and temporal_visibility of the stack's PostgreSQL (as compose);
// a second start on them (schema already there, namespace registered) finds
// the post's workflow again.
func TestDevStackTemporalOnPostgres(t *testing.T) {
	testenv.RequirePostgresBinaries(t)
	opts := devstack.Options{
		DataDir:             testenv.DataDir(t),
		HTTPAddr:            fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		TemporalPort:        testenv.FreePort(t),
		UIPort:              -1,
		PGPort:              testenv.FreePort(t),
		Logger:              testenv.Logger(t),
		TemporalPersistence: devstack.PersistencePostgres,
	}
	ctx := context.Background()
	s := startStack(t, ctx, &opts)
	if s.Temporal.Store != "PostgreSQL" {
		t.Fatalf("Temporal store %q", s.Temporal.Store)
	}
	waitReady(t, s.APIURL)
	postID := walkThrough(t, s)

	// The workflow is in PostgreSQL's visibility table, with its search attributes.
	pgURL, err := pgserver.DatabaseURL(s.PG.AdminURL, devtemporal.PostgresVisibilityDatabase)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatalf("connect to %s: %v", devtemporal.PostgresVisibilityDatabase, err)
	}
	// (Custom search attributes are stored under their column aliases,
	// Keyword01 and so on: look for the value.)
	var attrs string
	err = conn.QueryRow(ctx, `SELECT search_attributes::text FROM executions_visibility WHERE workflow_id = $1`,
		countersign.WorkflowID(postID)).Scan(&attrs)
	conn.Close(ctx)
	if err != nil || !strings.Contains(attrs, `"published"`) {
		t.Fatalf("the post's workflow in %s: search attributes %s, %v", devtemporal.PostgresVisibilityDatabase, attrs, err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	s2 := startStack(t, ctx, &opts)
	t.Cleanup(func() { _ = s2.Stop() })
	if _, err := s2.App.Temporal.DescribeWorkflowExecution(ctx, countersign.WorkflowID(postID), ""); err != nil {
		t.Fatalf("after a restart on PostgreSQL, the post's workflow: %v", err)
	}
}

func TestDevStackUnknownTemporalPersistence(t *testing.T) {
	_, err := devstack.Start(context.Background(), devstack.Options{DataDir: t.TempDir(), TemporalPersistence: "mysql"})
	if err == nil || !strings.Contains(err.Error(), `"mysql"`) || !strings.Contains(err.Error(), "sqlite or postgres") {
		t.Fatalf("want an error naming the value and the choices, got %v", err)
	}
}
