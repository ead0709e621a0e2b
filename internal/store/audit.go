package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	cs "github.com/countersign/countersign"
)

// Actor is who makes an audited change: an org member (ID) through a source
// (cs.SourceAPI, ...).
type Actor struct {
	MemberID string
	Source   string
}

// auditRow is one row of the org audit log (table org_audit): an action on
// an object, with the changed fields before and after.
type auditRow struct {
	objectType, objectID, action string
	before, after                map[string]any
}

// insertAudit appends a row to the org audit log inside the transaction of
// the change it records, so that the change and its record commit together.
func insertAudit(ctx context.Context, tx pgx.Tx, orgID string, by Actor, r auditRow) error {
	if by.Source == "" {
		by.Source = cs.SourceAPI
	}
	var actor any
	if by.MemberID != "" {
		actor = by.MemberID
	}
	if r.before == nil {
		r.before = map[string]any{}
	}
	if r.after == nil {
		r.after = map[string]any{}
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO org_audit (id, org_id, actor_member_id, source, object_type, object_id, action, before, after)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		newID(), orgID, actor, by.Source, r.objectType, r.objectID, r.action, r.before, r.after)
	if err != nil {
		return fmt.Errorf("insert audit row: %w", err)
	}
	return nil
}

// ListAudit lists the org's audit log newest first (keyset on the time
// ordered ids: the page's After is the last id seen), filtered by actor and
// object.
func (s *Store) ListAudit(ctx context.Context, orgID string, f cs.AuditFilter, p cs.Page) ([]cs.AuditEntry, error) {
	var actor, objectID any
	if f.ActorID != "" {
		actor = f.ActorID
	}
	if f.ObjectID != "" {
		objectID = f.ObjectID
	}
	rows, err := s.pool.Query(ctx, `
		SELECT a.id, coalesce(a.actor_member_id::text, ''), coalesce(nullif(u.name, ''), u.email, ''), a.source,
			a.object_type, a.object_id, a.action, a.before, a.after, a.created_at
		FROM org_audit a
		LEFT JOIN members m ON m.id = a.actor_member_id LEFT JOIN users u ON u.id = m.user_id
		WHERE a.org_id = $1 AND ($2::uuid IS NULL OR a.id < $2)
			AND ($3::uuid IS NULL OR a.actor_member_id = $3)
			AND ($4 = '' OR a.object_type = $4) AND ($5::text IS NULL OR a.object_id = $5)
		ORDER BY a.id DESC LIMIT $6`, orgID, after(p), actor, f.ObjectType, objectID, limit(p))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (cs.AuditEntry, error) {
		var e cs.AuditEntry
		err := r.Scan(&e.ID, &e.ActorID, &e.Actor, &e.Source, &e.ObjectType, &e.ObjectID, &e.Action, &e.Before, &e.After, &e.CreatedAt)
		return e, err
	})
}

type actorKey struct{}

// WithActor tells the store who makes the changes done with ctx: the API
// puts the calling member there (server.orgMember), so every audited change
// names its actor without each call passing it along.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// actorFrom is the actor of ctx; without one, the system.
func actorFrom(ctx context.Context) Actor {
	a, ok := ctx.Value(actorKey{}).(Actor)
	if !ok {
		return Actor{Source: cs.SourceSystem}
	}
	return a
}

// audit appends a row for a change made by ctx's actor.
func audit(ctx context.Context, tx pgx.Tx, orgID string, r auditRow) error {
	return insertAudit(ctx, tx, orgID, actorFrom(ctx), r)
}
