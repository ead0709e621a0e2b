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
