package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
)

// Absences with delegates (SPEC §2 Member; table member_absences). The
// store keeps one absence per member and answers who may decide on whose
// behalf now; the post workflow learns of them through ResolveApprovers
// (Delegations) and re-resolves its open step when one starts or ends.

// parseAbsence reads the absence memberColumns selects.
func parseAbsence(v []string) (*cs.Absence, error) {
	from, err := time.Parse(time.RFC3339Nano, v[0])
	if err != nil {
		return nil, fmt.Errorf("absence start: %w", err)
	}
	until, err := time.Parse(time.RFC3339Nano, v[1])
	if err != nil {
		return nil, fmt.Errorf("absence end: %w", err)
	}
	return &cs.Absence{From: from, Until: until, DelegateMemberID: v[2]}, nil
}

// SetAbsence sets (or replaces) the member's absence, audited as by's, and
// returns the member with it. The member and the delegate must be active
// members of the org, distinct, and from before until, with until still
// ahead: otherwise EINVALID naming the field. It returns the absence it
// replaced, if any, so its delegate's open steps can be re-resolved too.
func (s *Store) SetAbsence(ctx context.Context, orgID, memberID string, by Actor, a cs.Absence) (m cs.Member, old *cs.Absence, err error) {
	var fields []cs.FieldError
	switch {
	case a.From.IsZero():
		fields = append(fields, cs.FieldError{Field: "from", Message: "is required (RFC 3339 with an offset)"})
	case a.Until.IsZero():
		fields = append(fields, cs.FieldError{Field: "until", Message: "is required (RFC 3339 with an offset)"})
	case !a.From.Before(a.Until):
		fields = append(fields, cs.FieldError{Field: "until", Message: "must be after from"})
	case !a.Until.After(time.Now()):
		fields = append(fields, cs.FieldError{Field: "until", Message: "is in the past"})
	}
	switch {
	case a.DelegateMemberID == "":
		fields = append(fields, cs.FieldError{Field: "delegate_member_id", Message: "is required"})
	case a.DelegateMemberID == memberID:
		fields = append(fields, cs.FieldError{Field: "delegate_member_id", Message: "cannot be the absent member"})
	case !validID(a.DelegateMemberID):
		fields = append(fields, cs.FieldError{Field: "delegate_member_id", Message: "must be the id of an active member of this organization"})
	}
	if len(fields) > 0 {
		return m, nil, &cs.Error{Code: cs.EINVALID, Message: "invalid absence", Fields: fields}
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		cur, err := lockMember(ctx, tx, orgID, memberID)
		if err != nil {
			return err
		}
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM members WHERE org_id = $1 AND id = $2 AND removed_at IS NULL)`,
			orgID, a.DelegateMemberID).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return &cs.Error{Code: cs.EINVALID, Message: "invalid absence", Fields: []cs.FieldError{{
				Field: "delegate_member_id", Message: "must be the id of an active member of this organization"}}}
		}
		old = cur.Absence
		if _, err := tx.Exec(ctx, `
			INSERT INTO member_absences (org_id, member_id, delegate_member_id, starts_at, ends_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (org_id, member_id) DO UPDATE SET delegate_member_id = excluded.delegate_member_id,
				starts_at = excluded.starts_at, ends_at = excluded.ends_at, created_at = now()`,
			orgID, memberID, a.DelegateMemberID, a.From, a.Until); err != nil {
			return fmt.Errorf("set absence: %w", err)
		}
		action := "absence_set"
		if old != nil {
			action = "absence_replaced"
		}
		if err := insertAudit(ctx, tx, orgID, by, auditRow{objectType: "member", objectID: memberID, action: action,
			before: absenceFields(old), after: absenceFields(&a)}); err != nil {
			return err
		}
		m, err = scanMember(tx.QueryRow(ctx, `
			SELECT `+memberColumns+` FROM members m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND m.id = $2`, orgID, memberID))
		return err
	})
	return m, old, err
}

// DeleteAbsence ends the member's absence now (removes it), audited as
// by's, and returns it; ENOTFOUND when the member has none.
func (s *Store) DeleteAbsence(ctx context.Context, orgID, memberID string, by Actor) (cs.Absence, error) {
	var old cs.Absence
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := lockMember(ctx, tx, orgID, memberID); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `DELETE FROM member_absences WHERE org_id = $1 AND member_id = $2
			RETURNING starts_at, ends_at, delegate_member_id::text`, orgID, memberID).Scan(&old.From, &old.Until, &old.DelegateMemberID)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("absence")
		}
		if err != nil {
			return err
		}
		return insertAudit(ctx, tx, orgID, by, auditRow{objectType: "member", objectID: memberID, action: "absence_deleted",
			before: absenceFields(&old)})
	})
	return old, err
}

func absenceFields(a *cs.Absence) map[string]any {
	if a == nil {
		return nil
	}
	return map[string]any{"from": a.From.UTC(), "until": a.Until.UTC(), "delegate_member_id": a.DelegateMemberID}
}

// Delegations lists the absences, in force now or to come, of the given
// members whose delegate is still an active member (activities.Directory).
func (s *Store) Delegations(ctx context.Context, orgID string, memberIDs []string) ([]cs.Delegation, error) {
	if !validID(orgID) {
		return nil, nil
	}
	ids := validIDs(memberIDs)
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `
		SELECT x.member_id::text, x.delegate_member_id::text, x.starts_at, x.ends_at
		FROM member_absences x JOIN members d ON d.org_id = x.org_id AND d.id = x.delegate_member_id AND d.removed_at IS NULL
		WHERE x.org_id = $1 AND x.member_id = ANY($2::uuid[]) AND x.ends_at > now()
		ORDER BY x.member_id`, orgID, ids)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (cs.Delegation, error) {
		var d cs.Delegation
		err := r.Scan(&d.MemberID, &d.DelegateID, &d.From, &d.Until)
		d.From, d.Until = d.From.UTC(), d.Until.UTC()
		return d, err
	})
}

// authorizeDelegate checks a decision MemberID makes on behalf of
// OnBehalfOf, against the database as it is now: the delegate is an active
// member, OnBehalfOf's absence naming them is in force (no chaining: only
// that absence counts), and OnBehalfOf is eligible for the step.
func (s *Store) authorizeDelegate(ctx context.Context, req activities.AuthorizeRequest) (activities.AuthorizeResult, error) {
	deny := func(code, reason string) (activities.AuthorizeResult, error) {
		return activities.AuthorizeResult{Code: code, Reason: reason}, nil
	}
	if !validID(req.OrgID) || !validID(req.MemberID) || !validID(req.OnBehalfOf) {
		return deny(cs.ReasonNotDelegate, "not a delegate in this organization")
	}
	ok, err := s.isActiveMember(ctx, req.OrgID, req.MemberID)
	if err != nil {
		return activities.AuthorizeResult{}, err
	}
	if !ok {
		return deny(cs.ReasonNotAuthorized, "the member was removed from the organization")
	}
	var inForce bool
	err = s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM member_absences
		WHERE org_id = $1 AND member_id = $2 AND delegate_member_id = $3 AND starts_at <= now() AND ends_at > now())`,
		req.OrgID, req.OnBehalfOf, req.MemberID).Scan(&inForce)
	if err != nil {
		return activities.AuthorizeResult{}, err
	}
	if !inForce {
		return deny(cs.ReasonNotDelegate, fmt.Sprintf("%s is not away with you as delegate now", req.OnBehalfOf))
	}
	reason, err := s.CheckApprover(ctx, req.OrgID, req.AccountID, req.OnBehalfOf, req.Approver, req.FallbackTeam)
	if err != nil {
		return activities.AuthorizeResult{}, err
	}
	if reason != "" {
		return deny(cs.ReasonNotAuthorized, "on behalf of "+req.OnBehalfOf+": "+reason)
	}
	return activities.AuthorizeResult{Allowed: true}, nil
}

// RefreshScope says which open posts a directory change may touch.
type RefreshScope struct {
	// MemberIDs: posts whose open step awaits one of them (in person or as
	// a delegate), or lists one among its eligible members.
	MemberIDs []string
	// TeamID: posts whose open step asks the team (as approver or fallback),
	// and role steps of accounts the team holds a grant on.
	TeamID string
	// AccountID: every open step of the account's posts.
	AccountID string
	// RoleSteps: every open role step of the org (an org role changed).
	RoleSteps bool
}

// PostsToRefresh lists the org's posts pending approval whose open step a
// change of scope may touch, read from the mirror (posts.awaiting and the
// mirrored state), at most limit of them.
func (s *Store) PostsToRefresh(ctx context.Context, orgID string, sc RefreshScope, limit int) ([]string, error) {
	if !validID(orgID) {
		return nil, nil
	}
	ids := validIDs(sc.MemberIDs)
	var team, account any
	if validID(sc.TeamID) {
		team = sc.TeamID
	}
	if validID(sc.AccountID) {
		account = sc.AccountID
	}
	rows, err := s.pool.Query(ctx, `
		WITH open AS (
			SELECT id, account_id, awaiting, state->'steps'->(current_step - 1) AS step
			FROM posts WHERE org_id = $1 AND status = 'pending_approval' AND current_step > 0)
		SELECT id::text FROM open WHERE
			awaiting && $2::uuid[]
			OR (step->'eligible') ?| $2::text[]
			OR (step->'fallback_eligible') ?| $2::text[]
			OR step->'approver'->>'team' = $3::text
			OR step->>'fallback_team' = $3::text
			OR (step->'approver'->>'role' IS NOT NULL AND account_id IN (
				SELECT account_id FROM account_grants WHERE org_id = $1 AND team_id = $3::uuid))
			OR account_id = $4::uuid
			OR ($5 AND step->'approver'->>'role' IS NOT NULL)
		ORDER BY id LIMIT $6`, orgID, ids, team, account, sc.RoleSteps, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// OrgAdminIDs lists the org's active owners and admins, by id.
func (s *Store) OrgAdminIDs(ctx context.Context, orgID string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id::text FROM members WHERE org_id = $1 AND removed_at IS NULL
		AND org_role IN ('owner', 'admin') ORDER BY id`, orgID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
