package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	cs "github.com/countersign/countersign"
)

// EffectiveRight is the member's right on the account now, read fresh from
// the database (nothing is cached, so a removal or a grant change counts on
// the next call): the member's org role, its own grant and the grants of the
// teams it belongs to, combined by cs.EffectiveRight. A member that is not
// active in the org, or an account that is not the org's, is ENOTFOUND.
func (s *Store) EffectiveRight(ctx context.Context, orgID, accountID, memberID string) (cs.Right, error) {
	if !validID(orgID) || !validID(accountID) || !validID(memberID) {
		return cs.Right{}, notFound("account or member")
	}
	var role cs.OrgRole
	var account bool
	err := s.pool.QueryRow(ctx, `
		SELECT m.org_role, EXISTS (SELECT 1 FROM accounts a WHERE a.org_id = $1 AND a.id = $2 AND a.deleted_at IS NULL)
		FROM members m WHERE m.org_id = $1 AND m.id = $3 AND m.removed_at IS NULL`,
		orgID, accountID, memberID).Scan(&role, &account)
	if errors.Is(err, pgx.ErrNoRows) {
		return cs.Right{}, notFound("member")
	}
	if err != nil {
		return cs.Right{}, err
	}
	if !account {
		return cs.Right{}, notFound("account")
	}
	grants, err := queryGrants(ctx, s.pool, `
		SELECT `+grantColumns+` FROM account_grants g
		WHERE g.org_id = $1 AND g.account_id = $2 AND (g.member_id = $3 OR g.team_id IN (
			SELECT team_id FROM team_members WHERE org_id = $1 AND member_id = $3))`,
		orgID, accountID, memberID)
	if err != nil {
		return cs.Right{}, err
	}
	var own *cs.Grant
	var teams []cs.Grant
	for _, g := range grants {
		if g.MemberID != "" {
			own = &g
		} else {
			teams = append(teams, g)
		}
	}
	return cs.EffectiveRight(role, own, teams), nil
}

// EligibleApprovers returns the sorted ids of the active members an approver
// stands for on the account now: the member itself, the team's members, or
// (role "approvers") every member whose right on the account includes
// approve. It implements the post workflow's directory lookup.
func (s *Store) EligibleApprovers(ctx context.Context, orgID, accountID string, a cs.Approver) ([]string, error) {
	if err := a.Validate(); err != nil {
		return nil, cs.Errorf(cs.EINVALID, "approver: %v", err)
	}
	if !validID(orgID) || !validID(accountID) {
		return nil, notFound("account")
	}
	var ids []string
	var err error
	switch {
	case a.Member != "":
		ids = []string{}
		if validID(a.Member) {
			var ok bool
			ok, err = s.isActiveMember(ctx, orgID, a.Member)
			if ok {
				ids = append(ids, a.Member)
			}
		}
	case a.Team != "":
		ids, err = s.teamMemberIDs(ctx, orgID, a.Team)
	case a.External != nil:
		ids = []string{} // outside the org: reached by e-mail
	default:
		ids, err = s.approversOf(ctx, orgID, accountID)
	}
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	return ids, nil
}

func (s *Store) isActiveMember(ctx context.Context, orgID, memberID string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM members WHERE org_id = $1 AND id = $2 AND removed_at IS NULL)`,
		orgID, memberID).Scan(&ok)
	return ok, err
}

// teamMemberIDs lists the active members of a team of the org.
func (s *Store) teamMemberIDs(ctx context.Context, orgID, teamID string) ([]string, error) {
	if !validID(teamID) {
		return []string{}, nil
	}
	rows, err := s.pool.Query(ctx, `
		SELECT tm.member_id::text FROM team_members tm JOIN members m ON m.id = tm.member_id
		WHERE tm.org_id = $1 AND tm.team_id = $2 AND m.removed_at IS NULL ORDER BY tm.member_id`, orgID, teamID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// approversOf lists the active members whose right on the account includes
// approve: owners, admins, and whoever a grant (own or a team's) gives it.
func (s *Store) approversOf(ctx context.Context, orgID, accountID string) ([]string, error) {
	var account bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM accounts WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL)`,
		orgID, accountID).Scan(&account); err != nil {
		return nil, err
	}
	if !account {
		return nil, notFound("account")
	}
	// Every active member that is an owner or admin, or that some grant of
	// the account reaches (directly or through a team), with its role.
	rows, err := s.pool.Query(ctx, `
		SELECT m.id::text, m.org_role FROM members m
		WHERE m.org_id = $1 AND m.removed_at IS NULL AND (m.org_role IN ('owner', 'admin')
			OR m.id IN (SELECT member_id FROM account_grants WHERE account_id = $2 AND member_id IS NOT NULL)
			OR m.id IN (SELECT tm.member_id FROM team_members tm JOIN account_grants g ON g.team_id = tm.team_id
			            WHERE g.account_id = $2))
		ORDER BY m.id`, orgID, accountID)
	if err != nil {
		return nil, err
	}
	type candidate struct {
		id   string
		role cs.OrgRole
	}
	cands, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (candidate, error) {
		var c candidate
		err := r.Scan(&c.id, &c.role)
		return c, err
	})
	if err != nil {
		return nil, err
	}
	grants, err := queryGrants(ctx, s.pool, `
		SELECT `+grantColumns+` FROM account_grants g WHERE g.org_id = $1 AND g.account_id = $2`, orgID, accountID)
	if err != nil {
		return nil, err
	}
	rows, err = s.pool.Query(ctx, `
		SELECT tm.member_id::text, tm.team_id::text FROM team_members tm JOIN account_grants g ON g.team_id = tm.team_id
		WHERE g.org_id = $1 AND g.account_id = $2`, orgID, accountID)
	if err != nil {
		return nil, err
	}
	teamsOf := map[string][]string{}
	_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		var m, t string
		err := r.Scan(&m, &t)
		teamsOf[m] = append(teamsOf[m], t)
		return struct{}{}, err
	})
	if err != nil {
		return nil, err
	}
	ids := []string{}
	for _, c := range cands {
		var own *cs.Grant
		var teams []cs.Grant
		for _, g := range grants {
			switch {
			case g.MemberID == c.id:
				own = &g
			case g.TeamID != "" && slices.Contains(teamsOf[c.id], g.TeamID):
				teams = append(teams, g)
			}
		}
		if cs.EffectiveRight(c.role, own, teams).Approve {
			ids = append(ids, c.id)
		}
	}
	return ids, nil
}

// CheckApprover says whether the member may decide for approver a (or, once
// a step's fallback is open, for fallbackTeam) on the account now, against
// the database as it is: "" when allowed, else a reason a person can read.
// It checks the directory only; the workflow checks revision, step, author
// and distinct approvers itself.
func (s *Store) CheckApprover(ctx context.Context, orgID, accountID, memberID string, a cs.Approver, fallbackTeam string) (string, error) {
	if !validID(orgID) || !validID(memberID) {
		return "not a member of this organization", nil
	}
	var removed *bool
	err := s.pool.QueryRow(ctx, `SELECT removed_at IS NOT NULL FROM members WHERE org_id = $1 AND id = $2`, orgID, memberID).Scan(&removed)
	if errors.Is(err, pgx.ErrNoRows) {
		return "not a member of this organization", nil
	}
	if err != nil {
		return "", err
	}
	if *removed {
		return "the member was removed from the organization", nil
	}
	reason, err := s.approverReason(ctx, orgID, accountID, memberID, a)
	if err != nil || reason == "" {
		return reason, err
	}
	if fallbackTeam != "" {
		in, err := s.inTeam(ctx, orgID, fallbackTeam, memberID)
		if err != nil || in {
			return "", err
		}
		reason += ", and not in the fallback team"
	}
	return reason, nil
}

func (s *Store) approverReason(ctx context.Context, orgID, accountID, memberID string, a cs.Approver) (string, error) {
	switch {
	case a.Member != "":
		if a.Member == memberID {
			return "", nil
		}
		return "this step is for another member", nil
	case a.Team != "":
		in, err := s.inTeam(ctx, orgID, a.Team, memberID)
		if err != nil || in {
			return "", err
		}
		return "not a member of the step's team", nil
	case a.Role == cs.ApproverRoleApprovers:
		r, err := s.EffectiveRight(ctx, orgID, accountID, memberID)
		if cs.ErrorCode(err) == cs.ENOTFOUND {
			return "the account no longer exists", nil
		}
		if err != nil || r.Approve {
			return "", err
		}
		return "no right to approve posts of this account", nil
	case a.External != nil:
		return "this step is for its external reviewer, who answers through their review link", nil
	}
	return "the step has no approver", nil
}

func (s *Store) inTeam(ctx context.Context, orgID, teamID, memberID string) (bool, error) {
	role, err := s.TeamRole(ctx, orgID, teamID, memberID)
	return role != "", err
}

// checkManager enforces SPEC §8 "A manager" on replacing the account's grants
// (read under the account's row lock) with grants, as member by: admins and
// owners may do anything; anyone else needs manage, and every grant they add,
// change or remove must not be theirs (their own grant, or a team's they
// belong to, which is how they hold their right too) and must not give
// anything their effective right lacks. Unchanged grants pass as they are,
// whatever their level: a PUT lists every grant of the account.
func checkManager(ctx context.Context, tx pgx.Tx, orgID, accountID, by string, grants []cs.Grant) error {
	var role cs.OrgRole
	err := tx.QueryRow(ctx, `SELECT org_role FROM members WHERE org_id = $1 AND id = $2 AND removed_at IS NULL`, orgID, by).Scan(&role)
	if errors.Is(err, pgx.ErrNoRows) {
		return cs.Errorf(cs.EFORBIDDEN, "not a member of this organization")
	}
	if err != nil || role == cs.RoleOwner || role == cs.RoleAdmin {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT team_id::text FROM team_members WHERE org_id = $1 AND member_id = $2`, orgID, by)
	if err != nil {
		return err
	}
	teamIDs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	current, err := queryGrants(ctx, tx, `SELECT `+grantColumns+` FROM account_grants g WHERE g.org_id = $1 AND g.account_id = $2`, orgID, accountID)
	if err != nil {
		return err
	}
	mine := func(g cs.Grant) bool { return g.MemberID == by || g.TeamID != "" && slices.Contains(teamIDs, g.TeamID) }
	var own *cs.Grant
	var teams []cs.Grant
	before := map[string]cs.Grant{}
	for _, g := range current {
		before[grantee(g)] = g
		switch {
		case g.MemberID == by:
			own = &g
		case mine(g):
			teams = append(teams, g)
		}
	}
	right := cs.EffectiveRight(role, own, teams)
	if !right.Manage {
		return cs.Errorf(cs.EFORBIDDEN, "only members with the advanced level (or custom manage) on this account, admins and owners can change the account's grants")
	}
	ownGrant := func(field string) error {
		return &cs.Error{Code: cs.EOWNGRANT,
			Message: "only admins and owners can change your own grant on this account, or that of a team you belong to: keep it as it is",
			Fields:  []cs.FieldError{{Field: field, Message: "is your own grant (or your team's) and must stay unchanged"}}}
	}
	after := map[string]bool{}
	for i, g := range grants {
		after[grantee(g)] = true
		if old, ok := before[grantee(g)]; ok && sameGrant(old, g) {
			continue
		}
		field := fmt.Sprintf("grants[%d]", i)
		if mine(g) {
			return ownGrant(field)
		}
		if cs.LevelRight(g.Level, g.Custom).Exceeds(right) {
			return &cs.Error{Code: cs.EGRANTABOVEOWNRIGHT,
				Message: fmt.Sprintf("%s gives more than your own right on this account (compose %t, publish %s, approve %t, manage %t); only admins and owners can",
					field, right.Compose, right.Publish, right.Approve, right.Manage),
				Fields: []cs.FieldError{{Field: field + ".level", Message: "is above your own right on this account"}}}
		}
	}
	for _, g := range current {
		if !after[grantee(g)] && mine(g) {
			return ownGrant("grants")
		}
	}
	return nil
}

// grantee names who a grant is for.
func grantee(g cs.Grant) string {
	if g.MemberID != "" {
		return "member " + g.MemberID
	}
	return "team " + g.TeamID
}

// sameGrant reports whether a and b give the same level and flags.
func sameGrant(a, b cs.Grant) bool {
	if a.Level != b.Level || (a.Custom == nil) != (b.Custom == nil) {
		return false
	}
	return a.Custom == nil || *a.Custom == *b.Custom
}
