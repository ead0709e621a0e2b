package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	cs "github.com/countersign/countersign"
)

const teamColumns = `t.id, t.org_id, t.name, coalesce(t.slack_channel_id, ''), t.created_at,
	(SELECT count(*) FROM team_members tm JOIN members m ON m.id = tm.member_id
	 WHERE tm.team_id = t.id AND m.removed_at IS NULL)`

func scanTeam(r pgx.Row) (cs.Team, error) {
	var t cs.Team
	err := r.Scan(&t.ID, &t.OrgID, &t.Name, &t.SlackChannelID, &t.CreatedAt, &t.MemberCount)
	return t, err
}

const teamMembershipColumns = `tm.team_id, t.name, tm.member_id, u.name, u.email, tm.team_role, tm.created_at`

func scanTeamMembership(r pgx.CollectableRow) (cs.TeamMembership, error) {
	var tm cs.TeamMembership
	err := r.Scan(&tm.TeamID, &tm.TeamName, &tm.MemberID, &tm.Name, &tm.Email, &tm.Role, &tm.AddedAt)
	return tm, err
}

// TeamInput creates or changes a team; nil fields are unchanged. An empty
// SlackChannelID clears it.
type TeamInput struct {
	Name           *string
	SlackChannelID *string
}

func (in *TeamInput) validate(creating bool) error {
	var fields []cs.FieldError
	if in.Name != nil {
		n := strings.TrimSpace(*in.Name)
		in.Name = &n
	}
	switch {
	case in.Name == nil && creating, in.Name != nil && *in.Name == "":
		fields = append(fields, cs.FieldError{Field: "name", Message: "is required"})
	case in.Name != nil && len(*in.Name) > 100:
		fields = append(fields, cs.FieldError{Field: "name", Message: "is longer than 100 characters"})
	case in.Name != nil && strings.Contains(*in.Name, ";"):
		fields = append(fields, cs.FieldError{Field: "name", Message: "cannot contain ';' (it separates teams in CSV imports)"})
	}
	if in.SlackChannelID != nil {
		c := strings.TrimSpace(*in.SlackChannelID)
		in.SlackChannelID = &c
		if len(c) > 64 || strings.ContainsAny(c, " \t\r\n") {
			fields = append(fields, cs.FieldError{Field: "slack_channel_id", Message: "must be a Slack channel id such as C0123ABCD"})
		}
	}
	if len(fields) > 0 {
		return &cs.Error{Code: cs.EINVALID, Message: "invalid team", Fields: fields}
	}
	return nil
}

var errTeamNameTaken = &cs.Error{Code: cs.ECONFLICT, Message: "a team with this name already exists",
	Fields: []cs.FieldError{{Field: "name", Message: "is already used by another team"}}}

func nullIfEmpty(p *string) any {
	if p == nil || *p == "" {
		return nil
	}
	return *p
}

// CreateTeam creates a team in the org. Names are unique, ignoring case.
func (s *Store) CreateTeam(ctx context.Context, orgID string, in TeamInput) (cs.Team, error) {
	if err := in.validate(true); err != nil {
		return cs.Team{}, err
	}
	var t cs.Team
	err := s.tx(ctx, func(tx pgx.Tx) error {
		id, err := insertTeam(ctx, tx, orgID, *in.Name, nullIfEmpty(in.SlackChannelID))
		if err != nil {
			return err
		}
		t, err = scanTeam(tx.QueryRow(ctx, `SELECT `+teamColumns+` FROM teams t WHERE t.id = $1`, id))
		if err != nil {
			return err
		}
		return audit(ctx, tx, orgID, auditRow{objectType: "team", objectID: id, action: "create", after: teamFields(t)})
	})
	return t, err
}

// teamFields are a team's audited fields.
func teamFields(t cs.Team) map[string]any {
	return map[string]any{"name": t.Name, "slack_channel_id": t.SlackChannelID}
}

func insertTeam(ctx context.Context, tx pgx.Tx, orgID, name string, slack any) (string, error) {
	id := newID()
	_, err := tx.Exec(ctx, `INSERT INTO teams (id, org_id, name, slack_channel_id) VALUES ($1, $2, $3, $4)`,
		id, orgID, name, slack)
	if isUniqueViolation(err) {
		return "", errTeamNameTaken
	}
	if err != nil {
		return "", fmt.Errorf("insert team: %w", err)
	}
	return id, nil
}

// Team returns a team of the org.
func (s *Store) Team(ctx context.Context, orgID, teamID string) (cs.Team, error) {
	if !validID(orgID) || !validID(teamID) {
		return cs.Team{}, notFound("team")
	}
	t, err := scanTeam(s.pool.QueryRow(ctx, `SELECT `+teamColumns+` FROM teams t WHERE t.org_id = $1 AND t.id = $2`, orgID, teamID))
	if errors.Is(err, pgx.ErrNoRows) {
		return t, notFound("team")
	}
	return t, err
}

// ListTeams lists the org's teams by id.
func (s *Store) ListTeams(ctx context.Context, orgID string, p cs.Page) ([]cs.Team, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+teamColumns+` FROM teams t
		WHERE t.org_id = $1 AND ($2::uuid IS NULL OR t.id > $2)
		ORDER BY t.id LIMIT $3`, orgID, after(p), limit(p))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (cs.Team, error) { return scanTeam(r) })
}

// UpdateTeam renames a team or changes its Slack channel.
func (s *Store) UpdateTeam(ctx context.Context, orgID, teamID string, in TeamInput) (cs.Team, error) {
	if err := in.validate(false); err != nil {
		return cs.Team{}, err
	}
	if !validID(orgID) || !validID(teamID) {
		return cs.Team{}, notFound("team")
	}
	var t cs.Team
	err := s.tx(ctx, func(tx pgx.Tx) error {
		before, err := scanTeam(tx.QueryRow(ctx, `SELECT `+teamColumns+` FROM teams t WHERE t.org_id = $1 AND t.id = $2 FOR UPDATE`, orgID, teamID))
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("team")
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			UPDATE teams SET name = coalesce($3, name),
				slack_channel_id = CASE WHEN $4 THEN $5 ELSE slack_channel_id END
			WHERE org_id = $1 AND id = $2`,
			orgID, teamID, in.Name, in.SlackChannelID != nil, nullIfEmpty(in.SlackChannelID))
		if isUniqueViolation(err) {
			return errTeamNameTaken
		}
		if err != nil {
			return fmt.Errorf("update team: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return notFound("team")
		}
		t, err = scanTeam(tx.QueryRow(ctx, `SELECT `+teamColumns+` FROM teams t WHERE t.id = $1`, teamID))
		if err != nil {
			return err
		}
		if b, a := changed(teamFields(before), teamFields(t)); len(a) > 0 {
			return audit(ctx, tx, orgID, auditRow{objectType: "team", objectID: teamID, action: "update", before: b, after: a})
		}
		return nil
	})
	return t, err
}

// DeleteTeam deletes a team with its memberships and its account grants. A
// team that an approval chain names (as approver or fallback) cannot be
// deleted (EINUSE): change the chains first.
func (s *Store) DeleteTeam(ctx context.Context, orgID, teamID string) error {
	if !validID(orgID) || !validID(teamID) {
		return notFound("team")
	}
	return s.deleteUnlessUsed(ctx, orgID, teamID, deletion{
		table: "teams", what: "team",
		usedBy: `SELECT DISTINCT c.name FROM approval_chain_steps s JOIN approval_chains c ON c.id = s.chain_id
			WHERE s.org_id = $1 AND (s.approver_team_id = $2 OR s.fallback_team_id = $2) ORDER BY c.name`,
		inUse:   "the team is named by approval chain(s) %s: change them first",
		usedNow: "an approval chain now names the team: change it first",
	})
}

// TeamMembers lists the team's active members by name.
func (s *Store) TeamMembers(ctx context.Context, orgID, teamID string) ([]cs.TeamMembership, error) {
	if !validID(orgID) || !validID(teamID) {
		return nil, notFound("team")
	}
	rows, err := s.pool.Query(ctx, `
		SELECT `+teamMembershipColumns+`
		FROM team_members tm JOIN teams t ON t.id = tm.team_id
		JOIN members m ON m.id = tm.member_id JOIN users u ON u.id = m.user_id
		WHERE tm.org_id = $1 AND tm.team_id = $2 AND m.removed_at IS NULL
		ORDER BY lower(u.name), tm.member_id`, orgID, teamID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanTeamMembership)
}

// TeamRole returns the member's role in the team now, or "" when the member
// is not in it (or not an active member of the org).
func (s *Store) TeamRole(ctx context.Context, orgID, teamID, memberID string) (cs.TeamRole, error) {
	if !validID(orgID) || !validID(teamID) || !validID(memberID) {
		return "", nil
	}
	var role cs.TeamRole
	err := s.pool.QueryRow(ctx, `
		SELECT tm.team_role FROM team_members tm JOIN members m ON m.id = tm.member_id
		WHERE tm.org_id = $1 AND tm.team_id = $2 AND tm.member_id = $3 AND m.removed_at IS NULL`,
		orgID, teamID, memberID).Scan(&role)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return role, err
}

// PutTeamMember adds an active member to a team, or changes their role in it.
func (s *Store) PutTeamMember(ctx context.Context, orgID, teamID, memberID string, role cs.TeamRole) (cs.TeamMembership, error) {
	if role == "" {
		role = cs.TeamMember
	}
	if !role.Valid() {
		return cs.TeamMembership{}, &cs.Error{Code: cs.EINVALID, Message: "invalid team role",
			Fields: []cs.FieldError{{Field: "role", Message: "role must be admin or member"}}}
	}
	if _, err := s.Team(ctx, orgID, teamID); err != nil {
		return cs.TeamMembership{}, err
	}
	if _, err := s.Member(ctx, orgID, memberID); err != nil {
		return cs.TeamMembership{}, err
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var before any
		err := tx.QueryRow(ctx, `SELECT team_role FROM team_members WHERE team_id = $1 AND member_id = $2 FOR UPDATE`, teamID, memberID).Scan(&before)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO team_members (org_id, team_id, member_id, team_role) VALUES ($1, $2, $3, $4)
			ON CONFLICT (team_id, member_id) DO UPDATE SET team_role = EXCLUDED.team_role`,
			orgID, teamID, memberID, role); err != nil {
			return raced(err)
		}
		if before == string(role) {
			return nil
		}
		return audit(ctx, tx, orgID, auditRow{objectType: "team_member", objectID: teamID + "/" + memberID, action: "put",
			before: map[string]any{"team_id": teamID, "member_id": memberID, "role": before},
			after:  map[string]any{"team_id": teamID, "member_id": memberID, "role": role}})
	})
	if err != nil {
		return cs.TeamMembership{}, err
	}
	rows, err := s.pool.Query(ctx, `
		SELECT `+teamMembershipColumns+`
		FROM team_members tm JOIN teams t ON t.id = tm.team_id
		JOIN members m ON m.id = tm.member_id JOIN users u ON u.id = m.user_id
		WHERE tm.team_id = $1 AND tm.member_id = $2`, teamID, memberID)
	if err != nil {
		return cs.TeamMembership{}, err
	}
	return pgx.CollectExactlyOneRow(rows, scanTeamMembership)
}

// RemoveTeamMember takes a member out of a team; it takes effect on the next
// request. Removing someone who is not in the team is not found.
func (s *Store) RemoveTeamMember(ctx context.Context, orgID, teamID, memberID string) error {
	if !validID(orgID) || !validID(teamID) || !validID(memberID) {
		return notFound("team member")
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		var role string
		err := tx.QueryRow(ctx, `DELETE FROM team_members WHERE org_id = $1 AND team_id = $2 AND member_id = $3 RETURNING team_role`,
			orgID, teamID, memberID).Scan(&role)
		if errors.Is(err, pgx.ErrNoRows) {
			return cs.Errorf(cs.ENOTFOUND, "the member is not in this team")
		}
		if err != nil {
			return err
		}
		return audit(ctx, tx, orgID, auditRow{objectType: "team_member", objectID: teamID + "/" + memberID, action: "remove",
			before: map[string]any{"team_id": teamID, "member_id": memberID, "role": role}})
	})
}
