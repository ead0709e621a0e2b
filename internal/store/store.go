// Package store is Countersign's PostgreSQL store: it owns every SQL
// statement. Everything it returns is a countersign domain type.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/egress"
	"github.com/countersign/countersign/internal/secrets"
	"github.com/countersign/countersign/migrations"
)

// Store is a pool of connections to Countersign's database.
type Store struct {
	pool *pgxpool.Pool
	box  *secrets.Box // seals account credentials; nil until SetSecretKey
	// egress is the operator's allow-list, for account URLs; nil allows
	// only public https destinations.
	egress *egress.Guard
	// mailInvitations: invitations are mailed (SMTP configured), so their
	// tokens go to the mail queue instead of the admin's answer.
	mailInvitations bool
}

// Open connects to the database at url and checks that it answers.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return &Store{pool: pool}, nil
}

// Close releases every connection.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Migrate applies the pending schema migrations and returns how many ran.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	db := stdlib.OpenDBFromPool(s.pool)
	defer func(db *sql.DB) { _ = db.Close() }(db)
	res, err := migrations.Up(ctx, db)
	return len(res), err
}

// tx runs fn in a transaction, committing when it returns nil.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// newID returns a time-ordered UUID (v7), so ids sort by creation and make
// stable pagination cursors.
func newID() string { return uuid.Must(uuid.NewV7()).String() }

// deletion describes deleting a row that others may still refer to.
type deletion struct {
	table, what string // the table, and its row in words for not-found errors
	usedBy      string // lists the referrers' names ($1 org, $2 id)
	inUse       string // EINUSE message; %s: the referrers' names
	usedNow     string // EINUSE message when a referrer appears meanwhile (foreign key)
}

// deleteUnlessUsed deletes the org's row id from d.table unless something
// still refers to it: then EINUSE names the referrers.
func (s *Store) deleteUnlessUsed(ctx context.Context, orgID, id string, d deletion) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		var found string
		err := tx.QueryRow(ctx, `SELECT id FROM `+d.table+` WHERE org_id = $1 AND id = $2 FOR UPDATE`, orgID, id).Scan(&found)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound(d.what)
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, d.usedBy, orgID, id)
		if err != nil {
			return err
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(names) > 0 {
			return cs.Errorf(cs.EINUSE, d.inUse, strings.Join(names, ", "))
		}
		_, err = tx.Exec(ctx, `DELETE FROM `+d.table+` WHERE org_id = $1 AND id = $2`, orgID, id)
		if isForeignKeyViolation(err) {
			return cs.Errorf(cs.EINUSE, "%s", d.usedNow)
		}
		if err != nil {
			return err
		}
		return audit(ctx, tx, orgID, auditRow{objectType: strings.ReplaceAll(d.what, " ", "_"), objectID: id, action: "delete"})
	})
}

// isForeignKeyViolation reports whether err is PostgreSQL's
// foreign_key_violation: a row referenced or referencing another that a
// concurrent transaction changed.
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}

// isUniqueViolation reports whether err is PostgreSQL's unique_violation.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// Unavailable reports whether err means the database could not be reached
// (connection refused or lost, the server shutting down): a 503 to retry,
// not a bug.
func Unavailable(err error) bool {
	var connErr *pgconn.ConnectError
	var pgErr *pgconn.PgError
	var netErr net.Error
	switch {
	case errors.As(err, &connErr), errors.As(err, &netErr), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, io.ErrUnexpectedEOF), pgconn.SafeToRetry(err):
		return true
	case errors.As(err, &pgErr):
		// 57P01-03: admin shutdown, crash shutdown, cannot connect now;
		// 08xxx: connection exceptions.
		return strings.HasPrefix(pgErr.Code, "57P0") || strings.HasPrefix(pgErr.Code, "08")
	}
	return false
}
