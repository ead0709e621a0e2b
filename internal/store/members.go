package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	cs "github.com/countersign/countersign"
)

// memberColumns selects a cs.Member from "members m JOIN users u".
// The absence shown is the current or next one (absences.go).
const memberColumns = `m.id, m.org_id, m.user_id, u.email, u.name, m.org_role, coalesce(m.slack_user_id, ''), m.created_at,
	(SELECT array[to_json(x.starts_at) #>> '{}', to_json(x.ends_at) #>> '{}', x.delegate_member_id::text] FROM member_absences x
	 WHERE x.org_id = m.org_id AND x.member_id = m.id AND x.ends_at > now())`

func scanMember(r pgx.Row) (cs.Member, error) {
	var m cs.Member
	var absence []string
	err := r.Scan(&m.ID, &m.OrgID, &m.UserID, &m.Email, &m.Name, &m.OrgRole, &m.SlackUserID, &m.CreatedAt, &absence)
	if err == nil && len(absence) == 3 {
		m.Absence, err = parseAbsence(absence)
	}
	return m, err
}

// validID reports whether s is a UUID in its canonical form, the only form
// the store hands out. Ids that are not never reach a query.
func validID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == strings.ToLower(s)
}

// validIDs keeps the ids of ids that are valid (validID), in order; nil when
// none is.
func validIDs(ids []string) []string {
	var out []string
	for _, id := range ids {
		if validID(id) {
			out = append(out, id)
		}
	}
	return out
}

// after is the query argument of a page's cursor: NULL for the first page.
func after(p cs.Page) any {
	if p.After == "" || !validID(p.After) {
		return nil
	}
	return p.After
}

func limit(p cs.Page) int {
	if p.Limit < 1 {
		return 50
	}
	return p.Limit
}

func notFound(what string) error {
	return cs.Errorf(cs.ENOTFOUND, "no such %s in this organization", what)
}

// raced turns the foreign key violation of a write that lost a race (a team
// or chain it refers to was deleted meanwhile) into a conflict to retry.
func raced(err error) error {
	if isForeignKeyViolation(err) {
		return cs.Errorf(cs.ECONFLICT, "something this request refers to was changed at the same time: retry")
	}
	return err
}

// MemberOfUser returns the user's active member in the org. A removed member,
// a stranger and an unknown org all get the same not-found error, so nobody
// learns whether an org they are not in exists.
func (s *Store) MemberOfUser(ctx context.Context, orgID, userID string) (cs.Member, error) {
	if !validID(orgID) || !validID(userID) {
		return cs.Member{}, cs.Errorf(cs.ENOTFOUND, "no such organization")
	}
	m, err := scanMember(s.pool.QueryRow(ctx, `
		SELECT `+memberColumns+` FROM members m JOIN users u ON u.id = m.user_id
		WHERE m.org_id = $1 AND m.user_id = $2 AND m.removed_at IS NULL`, orgID, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return m, cs.Errorf(cs.ENOTFOUND, "no such organization")
	}
	return m, err
}

// Member returns an active member of the org.
func (s *Store) Member(ctx context.Context, orgID, memberID string) (cs.Member, error) {
	if !validID(orgID) || !validID(memberID) {
		return cs.Member{}, notFound("member")
	}
	m, err := scanMember(s.pool.QueryRow(ctx, `
		SELECT `+memberColumns+` FROM members m JOIN users u ON u.id = m.user_id
		WHERE m.org_id = $1 AND m.id = $2 AND m.removed_at IS NULL`, orgID, memberID))
	if errors.Is(err, pgx.ErrNoRows) {
		return m, notFound("member")
	}
	return m, err
}

// ListMembers lists the org's active members by id.
func (s *Store) ListMembers(ctx context.Context, orgID string, p cs.Page) ([]cs.Member, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+memberColumns+` FROM members m JOIN users u ON u.id = m.user_id
		WHERE m.org_id = $1 AND m.removed_at IS NULL AND ($2::uuid IS NULL OR m.id > $2)
		ORDER BY m.id LIMIT $3`, orgID, after(p), limit(p))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (cs.Member, error) { return scanMember(r) })
}

// MemberTeams lists the teams the member belongs to now, by name.
func (s *Store) MemberTeams(ctx context.Context, orgID, memberID string) ([]cs.TeamMembership, error) {
	if !validID(orgID) || !validID(memberID) {
		return nil, notFound("member")
	}
	rows, err := s.pool.Query(ctx, `
		SELECT `+teamMembershipColumns+`
		FROM team_members tm JOIN teams t ON t.id = tm.team_id
		JOIN members m ON m.id = tm.member_id JOIN users u ON u.id = m.user_id
		WHERE tm.org_id = $1 AND tm.member_id = $2 AND m.removed_at IS NULL
		ORDER BY lower(t.name), t.id`, orgID, memberID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanTeamMembership)
}

// MemberUpdate changes a member; nil fields are left as they are. An empty
// SlackUserID clears it.
type MemberUpdate struct {
	OrgRole     *cs.OrgRole
	SlackUserID *string
	// Admin, when set, is the admin or owner making the change: the changed
	// fields go to the org audit log with it. A member changing their own
	// Slack id (checked with Slack by the caller) leaves it empty.
	Admin *Actor
}

// UpdateMember changes a member's role or Slack id. Demoting the org's last
// owner is refused (ELASTOWNER), and so is a Slack id another active member
// of the org has (ESLACKIDTAKEN). Who may change what is the caller's check.
func (s *Store) UpdateMember(ctx context.Context, orgID, memberID string, u MemberUpdate) (cs.Member, error) {
	var fields []cs.FieldError
	if u.OrgRole != nil && !u.OrgRole.Valid() {
		fields = append(fields, cs.FieldError{Field: "org_role", Message: "org_role must be owner, admin or member"})
	}
	if u.SlackUserID != nil {
		id := strings.TrimSpace(*u.SlackUserID)
		u.SlackUserID = &id
		if !ValidSlackUserID(id) && id != "" {
			fields = append(fields, cs.FieldError{Field: "slack_user_id", Message: "must be a Slack user id such as U0123ABCD"})
		}
	}
	if len(fields) > 0 {
		return cs.Member{}, &cs.Error{Code: cs.EINVALID, Message: "invalid member update", Fields: fields}
	}
	var m cs.Member
	err := s.tx(ctx, func(tx pgx.Tx) error {
		cur, err := lockMember(ctx, tx, orgID, memberID)
		if err != nil {
			return err
		}
		if u.OrgRole != nil && cur.OrgRole == cs.RoleOwner && *u.OrgRole != cs.RoleOwner {
			if err := otherOwnerExists(ctx, tx, orgID, memberID); err != nil {
				return err
			}
		}
		var slack any
		if u.SlackUserID != nil && *u.SlackUserID != "" {
			slack = *u.SlackUserID
		}
		_, err = tx.Exec(ctx, `
			UPDATE members SET
				org_role = coalesce($3, org_role),
				slack_user_id = CASE WHEN $4 THEN $5 ELSE slack_user_id END
			WHERE org_id = $1 AND id = $2`,
			orgID, memberID, u.OrgRole, u.SlackUserID != nil, slack)
		if isUniqueViolation(err) {
			return &cs.Error{Code: cs.ESLACKIDTAKEN,
				Message: fmt.Sprintf("Slack user %s is already linked to another member of this organization", *u.SlackUserID),
				Fields:  []cs.FieldError{{Field: "slack_user_id", Message: "is already linked to another member"}}}
		}
		if err != nil {
			return fmt.Errorf("update member: %w", err)
		}
		m, err = scanMember(tx.QueryRow(ctx, `
			SELECT `+memberColumns+` FROM members m JOIN users u ON u.id = m.user_id WHERE m.id = $1`, memberID))
		if err != nil || u.Admin == nil {
			return err
		}
		return auditMemberChange(ctx, tx, *u.Admin, cur, m)
	})
	return m, err
}

// auditMemberChange writes the fields an admin changed (Slack id, role) to
// the org audit log; nothing when nothing changed.
func auditMemberChange(ctx context.Context, tx pgx.Tx, by Actor, before, after cs.Member) error {
	b, a := map[string]any{}, map[string]any{}
	if before.SlackUserID != after.SlackUserID {
		b["slack_user_id"], a["slack_user_id"] = nullIfEmpty(&before.SlackUserID), nullIfEmpty(&after.SlackUserID)
	}
	if before.OrgRole != after.OrgRole {
		b["org_role"], a["org_role"] = before.OrgRole, after.OrgRole
	}
	if len(a) == 0 {
		return nil
	}
	return insertAudit(ctx, tx, after.OrgID, by, auditRow{objectType: "member", objectID: after.ID, action: "update", before: b, after: a})
}

// ValidSlackUserID reports whether id looks like a Slack user id (U… or W…,
// letters and digits): anything else never reaches Slack or the database.
func ValidSlackUserID(id string) bool {
	if len(id) < 2 || len(id) > 64 || (id[0] != 'U' && id[0] != 'W') {
		return false
	}
	for _, r := range id {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// RemoveMember removes a member from the org (a soft delete that keeps the
// audit trail's actor). From the next request on, the member can do nothing
// in the org: its team memberships and its own account grants are deleted
// with it, and every query ignores removed members. Removing the last owner
// is refused.
func (s *Store) RemoveMember(ctx context.Context, orgID, memberID string) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		cur, err := lockMember(ctx, tx, orgID, memberID)
		if err != nil {
			return err
		}
		if cur.OrgRole == cs.RoleOwner {
			if err := otherOwnerExists(ctx, tx, orgID, memberID); err != nil {
				return err
			}
		}
		for _, q := range []string{
			`UPDATE members SET removed_at = now() WHERE org_id = $1 AND id = $2`,
			`DELETE FROM team_members WHERE org_id = $1 AND member_id = $2`,
			`DELETE FROM account_grants WHERE org_id = $1 AND member_id = $2`,
		} {
			if _, err := tx.Exec(ctx, q, orgID, memberID); err != nil {
				return fmt.Errorf("remove member: %w", err)
			}
		}
		return audit(ctx, tx, orgID, auditRow{objectType: "member", objectID: memberID, action: "remove",
			before: map[string]any{"email": cur.Email, "org_role": cur.OrgRole}})
	})
}

// lockMember reads an active member for update. It first locks the org's
// row, so changes to the org's members (roles, removals) run one at a time:
// two owners demoting each other at once cannot both succeed, and cannot
// deadlock either. (FOR NO KEY UPDATE does not block inserts that merely
// reference the org.)
func lockMember(ctx context.Context, tx pgx.Tx, orgID, memberID string) (cs.Member, error) {
	if !validID(orgID) || !validID(memberID) {
		return cs.Member{}, notFound("member")
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM orgs WHERE id = $1 FOR NO KEY UPDATE`, orgID); err != nil {
		return cs.Member{}, err
	}
	m, err := scanMember(tx.QueryRow(ctx, `
		SELECT `+memberColumns+` FROM members m JOIN users u ON u.id = m.user_id
		WHERE m.org_id = $1 AND m.id = $2 AND m.removed_at IS NULL
		FOR UPDATE OF m`, orgID, memberID))
	if errors.Is(err, pgx.ErrNoRows) {
		return m, notFound("member")
	}
	return m, err
}

// otherOwnerExists returns ELASTOWNER unless the org has an active owner
// besides memberID. Call it after lockMember, which serializes the check.
func otherOwnerExists(ctx context.Context, tx pgx.Tx, orgID, memberID string) error {
	rows, err := tx.Query(ctx, `
		SELECT id FROM members WHERE org_id = $1 AND org_role = 'owner' AND removed_at IS NULL`, orgID)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, id := range ids {
		if id != memberID {
			return nil
		}
	}
	return cs.Errorf(cs.ELASTOWNER, "this is the organization's last owner: make another member owner first")
}
