package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/secrets"
)

// InvitationTokenPrefix starts every invitation token.
const InvitationTokenPrefix = "csi_"

// normalize trims an invitation request and applies its defaults.
func normalizeInvitation(req *cs.InvitationRequest) {
	req.Email = strings.TrimSpace(req.Email)
	req.Name = strings.TrimSpace(req.Name)
	if req.OrgRole == "" {
		req.OrgRole = cs.RoleMember
	}
}

// checkInvitation returns the field errors of a normalized request.
func checkInvitation(req cs.InvitationRequest) []cs.FieldError {
	var fields []cs.FieldError
	if !validEmail(req.Email) {
		fields = append(fields, cs.FieldError{Field: "email", Message: "must be an e-mail address"})
	}
	if len(req.Name) > 200 {
		fields = append(fields, cs.FieldError{Field: "name", Message: "is longer than 200 characters"})
	}
	if !req.OrgRole.Valid() {
		fields = append(fields, cs.FieldError{Field: "org_role", Message: "org_role must be owner, admin or member"})
	}
	return fields
}

// Invite invites one e-mail to the org, into the named teams (which must
// exist). A pending invitation of the same e-mail is replaced (its token
// stops working), so an admin can always hand out a fresh one. The returned
// Token is the only time it exists in clear. Refused with
// EINVITATIONSDISABLED when the user turned invitations off, and with
// EALREADYMEMBER for a current member. Only an owner may invite an owner:
// that is the caller's check.
func (s *Store) Invite(ctx context.Context, orgID, inviterID string, req cs.InvitationRequest) (cs.Invitation, error) {
	return s.invite(ctx, orgID, inviterID, req, s.mailInvitations)
}

// InviteWithToken is Invite that never mails: the token is returned
// whatever the configuration (the dev seed accepts its demo people's
// invitations itself).
func (s *Store) InviteWithToken(ctx context.Context, orgID, inviterID string, req cs.InvitationRequest) (cs.Invitation, error) {
	return s.invite(ctx, orgID, inviterID, req, false)
}

func (s *Store) invite(ctx context.Context, orgID, inviterID string, req cs.InvitationRequest, mail bool) (cs.Invitation, error) {
	normalizeInvitation(&req)
	fields := checkInvitation(req)
	var inv cs.Invitation
	err := s.tx(ctx, func(tx pgx.Tx) error {
		teamIDs := make([]string, len(req.Teams))
		for i, name := range req.Teams {
			id, err := teamIDByName(ctx, tx, orgID, name)
			if err != nil {
				return err
			}
			if id == "" {
				fields = append(fields, cs.FieldError{Field: fmt.Sprintf("teams[%d]", i), Message: fmt.Sprintf("no team named %q in this organization", name)})
			}
			teamIDs[i] = id
		}
		if len(fields) > 0 {
			return &cs.Error{Code: cs.EINVALID, Message: "invalid invitation", Fields: fields}
		}
		if err := checkInvitee(ctx, tx, orgID, req.Email); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			UPDATE invitations SET status = 'replaced', answered_at = now()
			WHERE org_id = $1 AND lower(email) = lower($2) AND status = 'pending' RETURNING id`, orgID, req.Email)
		if err != nil {
			return err
		}
		replaced, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, id := range replaced {
			if err := insertAudit(ctx, tx, orgID, Actor{MemberID: inviterID, Source: cs.SourceAPI}, auditRow{objectType: "invitation", objectID: id,
				action: "replace", before: map[string]any{"email": req.Email, "status": "pending"}, after: map[string]any{"email": req.Email, "status": "replaced"}}); err != nil {
				return err
			}
		}
		inv, err = s.insertInvitation(ctx, tx, orgID, inviterID, req, teamIDs, mail)
		return err
	})
	return inv, err
}

// checkInvitee refuses an e-mail whose user turned invitations off, or who is
// already an active member of the org.
func checkInvitee(ctx context.Context, tx pgx.Tx, orgID, email string) error {
	var allow, member bool
	err := tx.QueryRow(ctx, `
		SELECT u.allow_invitations,
			EXISTS (SELECT 1 FROM members m WHERE m.org_id = $1 AND m.user_id = u.id AND m.removed_at IS NULL)
		FROM users u WHERE lower(u.email) = lower($2)`, orgID, email).Scan(&allow, &member)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return err
	case member:
		return cs.Errorf(cs.EALREADYMEMBER, "%s is already a member of this organization", email)
	case !allow:
		return cs.Errorf(cs.EINVITATIONSDISABLED, "%s does not accept invitations (the user turned them off)", email)
	}
	return nil
}

// insertInvitation inserts a pending invitation and its teams, and writes
// it to the org audit log. With mail delivery on, the token is sealed on the
// row for the dispatcher and left out of the returned invitation (SPEC §2:
// the invitation reaches the invitee, not the admin).
func (s *Store) insertInvitation(ctx context.Context, tx pgx.Tx, orgID, inviterID string, req cs.InvitationRequest, teamIDs []string, mail bool) (cs.Invitation, error) {
	inv := cs.Invitation{
		ID: newID(), OrgID: orgID, Email: req.Email, Name: req.Name, OrgRole: req.OrgRole,
		Teams: []string{}, Token: secrets.NewToken(InvitationTokenPrefix), Delivery: cs.DeliveryNone,
	}
	var inviter any
	if inviterID != "" {
		inviter = inviterID
	}
	var sealed []byte
	if mail {
		if s.box == nil {
			return inv, errors.New("invitation mail needs COUNTERSIGN_SECRET_KEY, which is not configured")
		}
		sealed = s.box.Seal([]byte(inv.Token), deliveryContext(inv.ID))
		inv.Delivery = cs.DeliveryQueued
	}
	err := tx.QueryRow(ctx, `
		INSERT INTO invitations (id, org_id, email, name, org_role, token_hash, invited_by, expires_at,
			delivery, delivery_token, delivery_next_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, now() + $8::bigint * interval '1 second',
			$9, $10, CASE WHEN $9 = 'queued' THEN now() END)
		RETURNING created_at, expires_at`,
		inv.ID, orgID, inv.Email, inv.Name, inv.OrgRole, secrets.HashToken(inv.Token), inviter,
		int64(cs.InvitationTTL/time.Second), inv.Delivery, sealed).Scan(&inv.CreatedAt, &inv.ExpiresAt)
	if err != nil {
		return inv, fmt.Errorf("insert invitation: %w", err)
	}
	if mail {
		inv.Token = ""
	}
	seen := map[string]bool{}
	for i, id := range teamIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		if _, err := tx.Exec(ctx, `INSERT INTO invitation_teams (org_id, invitation_id, team_id) VALUES ($1, $2, $3)`,
			orgID, inv.ID, id); err != nil {
			return inv, raced(err)
		}
		inv.Teams = append(inv.Teams, req.Teams[i])
	}
	err = insertAudit(ctx, tx, orgID, Actor{MemberID: inviterID, Source: cs.SourceAPI}, auditRow{
		objectType: "invitation", objectID: inv.ID, action: "create",
		after: map[string]any{"email": inv.Email, "org_role": inv.OrgRole, "teams": inv.Teams, "status": "pending"}})
	return inv, err
}

// teamIDByName returns the id of the org's team with this name (ignoring
// case), or "" when there is none.
func teamIDByName(ctx context.Context, tx pgx.Tx, orgID, name string) (string, error) {
	var id string
	err := tx.QueryRow(ctx, `SELECT id FROM teams WHERE org_id = $1 AND lower(name) = lower($2)`, orgID, strings.TrimSpace(name)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// ImportInvitations invites every row of a parsed CSV import in one
// transaction and reports each row: invited (with the invitation and its
// token), skipped (already a member, already invited, or a duplicate of an
// earlier row) or error (with a code and reason). Unknown teams are created.
// Unlike Invite, a pending invitation is kept, not replaced, so running the
// same file twice invites nobody twice.
func (s *Store) ImportInvitations(ctx context.Context, orgID string, inviter cs.Member, lines []cs.ImportLine) ([]cs.ImportRow, error) {
	var out []cs.ImportRow
	err := s.tx(ctx, func(tx pgx.Tx) error {
		out = make([]cs.ImportRow, 0, len(lines))
		seen := map[string]int{}
		for _, l := range lines {
			req := l.InvitationRequest
			normalizeInvitation(&req)
			row := cs.ImportRow{Row: l.Row, Line: l.Line, Email: req.Email}
			fail := func(result, code, reason string) { row.Result, row.Code, row.Reason = result, code, reason }
			key := strings.ToLower(req.Email)
			if l.Problem != "" {
				fail(cs.ImportError, cs.EINVALID, l.Problem)
			} else if fields := checkInvitation(req); len(fields) > 0 {
				fail(cs.ImportError, cs.EINVALID, fields[0].Field+" "+fields[0].Message)
			} else if first, dup := seen[key]; dup {
				fail(cs.ImportSkipped, "duplicate", fmt.Sprintf("same e-mail as row %d", first))
			} else if req.OrgRole == cs.RoleOwner && inviter.OrgRole != cs.RoleOwner {
				fail(cs.ImportError, cs.EFORBIDDEN, "only an owner can invite an owner")
			} else if err := s.importOne(ctx, tx, orgID, inviter.ID, req, &row); err != nil {
				return err
			}
			if row.Result != cs.ImportError && req.Email != "" {
				if _, dup := seen[key]; !dup {
					seen[key] = l.Row
				}
			}
			out = append(out, row)
		}
		return nil
	})
	return out, err
}

// importOne invites one valid row inside the import's transaction.
func (s *Store) importOne(ctx context.Context, tx pgx.Tx, orgID, inviterID string, req cs.InvitationRequest, row *cs.ImportRow) error {
	err := checkInvitee(ctx, tx, orgID, req.Email)
	switch code := cs.ErrorCode(err); {
	case err == nil:
	case code == cs.EALREADYMEMBER:
		row.Result, row.Code, row.Reason = cs.ImportSkipped, code, "already a member of this organization"
		return nil
	case code == cs.EINVITATIONSDISABLED:
		row.Result, row.Code, row.Reason = cs.ImportError, code, "the user does not accept invitations"
		return nil
	default:
		return err
	}
	var pending bool
	if err := tx.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM invitations WHERE org_id = $1 AND lower(email) = lower($2)
			AND status = 'pending' AND expires_at > now())`, orgID, req.Email).Scan(&pending); err != nil {
		return err
	}
	if pending {
		row.Result, row.Code, row.Reason = cs.ImportSkipped, "already_invited", "a pending invitation exists"
		return nil
	}
	// An expired pending invitation is replaced.
	if _, err := tx.Exec(ctx, `
		UPDATE invitations SET status = 'replaced', answered_at = now()
		WHERE org_id = $1 AND lower(email) = lower($2) AND status = 'pending'`, orgID, req.Email); err != nil {
		return err
	}
	teamIDs := make([]string, len(req.Teams))
	for i, name := range req.Teams {
		if len(name) > 100 {
			row.Result, row.Code, row.Reason = cs.ImportError, cs.EINVALID, fmt.Sprintf("team name %.20q… is longer than 100 characters", name)
			return nil
		}
		id, err := teamIDByName(ctx, tx, orgID, name)
		if err != nil {
			return err
		}
		if id == "" {
			if id, err = insertTeam(ctx, tx, orgID, name, nil); err != nil {
				return err
			}
			if err := insertAudit(ctx, tx, orgID, Actor{MemberID: inviterID, Source: cs.SourceAPI}, auditRow{objectType: "team", objectID: id,
				action: "create", after: map[string]any{"name": name, "slack_channel_id": nil}}); err != nil {
				return err
			}
		}
		teamIDs[i] = id
	}
	inv, err := s.insertInvitation(ctx, tx, orgID, inviterID, req, teamIDs, s.mailInvitations)
	if err != nil {
		return err
	}
	row.Result, row.Invitation = cs.ImportInvited, &inv
	return nil
}

// lockInvitation reads a pending, unexpired invitation by token for update.
// A token that can no longer be answered gets an error that says why:
// used, declined, revoked, replaced or expired (410), or unknown (404).
func lockInvitation(ctx context.Context, tx pgx.Tx, token string) (cs.Invitation, error) {
	return lockInvitationWhere(ctx, tx, `token_hash = $1`, secrets.HashToken(token))
}

// lockInvitationWhere is lockInvitation for the one invitation that cond
// selects (its args are $1, ...).
func lockInvitationWhere(ctx context.Context, tx pgx.Tx, cond string, args ...any) (cs.Invitation, error) {
	var inv cs.Invitation
	var status string
	var expired bool
	err := tx.QueryRow(ctx, `
		SELECT id, org_id, email, name, org_role, expires_at, created_at, status, expires_at <= now()
		FROM invitations WHERE `+cond+` FOR UPDATE`, args...).
		Scan(&inv.ID, &inv.OrgID, &inv.Email, &inv.Name, &inv.OrgRole, &inv.ExpiresAt, &inv.CreatedAt, &status, &expired)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return inv, cs.Errorf(cs.ENOTFOUND, "no such invitation")
	case err != nil:
		return inv, err
	}
	return inv, answerable(status, expired, inv.ExpiresAt)
}

// answerable returns nil for an invitation that can still be answered (or
// revoked), else the error that names what happened to it.
func answerable(status string, expired bool, expiresAt time.Time) error {
	switch status {
	case "pending":
	case "accepted":
		return cs.Errorf(cs.EINVITATIONUSED, "this invitation was already used: it was accepted")
	case "declined":
		return cs.Errorf(cs.EINVITATIONDECLINED, "this invitation was declined")
	case "revoked":
		return cs.Errorf(cs.EINVITATIONREVOKED, "this invitation was revoked by an admin of the organization")
	case "replaced":
		return cs.Errorf(cs.EINVITATIONREPLACED, "this invitation was replaced by a newer one to the same e-mail")
	default:
		return fmt.Errorf("invitation in unknown status %q", status)
	}
	if expired {
		return cs.Errorf(cs.EINVITATIONEXPIRED, "this invitation expired on %s: ask for a new one", expiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// needsToken is the answer to an anonymous accept or decline of an
// invitation whose e-mail already belongs to a user: only that user answers.
func needsToken(email, verb string) error {
	return cs.Errorf(cs.EINVITATIONNEEDSTOKEN,
		"%s already has a Countersign user: %s this invitation with that user's own API token (Authorization: Bearer)", email, verb)
}

// checkCaller refuses a caller who is not the invitee.
func checkCaller(inv cs.Invitation, caller cs.User) error {
	if !strings.EqualFold(strings.TrimSpace(inv.Email), strings.TrimSpace(caller.Email)) {
		return cs.Errorf(cs.EINVITATIONMISMATCH,
			"this invitation is for %s, but the API token sent is %s's: only the invitee can answer it", inv.Email, caller.Email)
	}
	return nil
}

// AcceptInvitation answers yes to an invitation without an API token: it
// only ever creates a new user (name, when given, replaces the
// invitation's), the member with the invited role in the invited teams that
// still exist, and returns the user's first API token, shown once. An e-mail
// that already has a user is refused (EINVITATIONNEEDSTOKEN) and nothing
// changes: that user accepts with AcceptInvitationAs.
func (s *Store) AcceptInvitation(ctx context.Context, token, name string) (cs.Accepted, error) {
	var a cs.Accepted
	name = strings.TrimSpace(name)
	if len(name) > 200 {
		return a, &cs.Error{Code: cs.EINVALID, Message: "invalid name", Fields: []cs.FieldError{{Field: "name", Message: "is longer than 200 characters"}}}
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		inv, err := lockInvitation(ctx, tx, token)
		if err != nil {
			return err
		}
		if name == "" {
			name = inv.Name
		}
		user, created, err := insertNewUser(ctx, tx, inv.Email, name)
		if err != nil {
			return err
		}
		if !created {
			return needsToken(inv.Email, "accept")
		}
		m, err := joinInvited(ctx, tx, inv, user)
		if err != nil {
			return err
		}
		a.User, a.Member = user, m
		a.APIToken, err = insertAPIToken(ctx, tx, user.ID, "invitation")
		return err
	})
	return a, err
}

// AcceptInvitationAs answers yes to an invitation as caller, an existing
// user authenticated by their own API token, whose e-mail must be the
// invitation's (EINVITATIONMISMATCH otherwise). Nothing about the user
// changes and no API token is issued.
func (s *Store) AcceptInvitationAs(ctx context.Context, token string, caller cs.User) (cs.Accepted, error) {
	return s.acceptAs(ctx, byToken(token), caller)
}

// invitationLock locks the invitation being answered, in the answer's
// transaction.
type invitationLock func(ctx context.Context, tx pgx.Tx) (cs.Invitation, error)

func byToken(token string) invitationLock {
	return func(ctx context.Context, tx pgx.Tx) (cs.Invitation, error) { return lockInvitation(ctx, tx, token) }
}

// mine locks an invitation by id that is addressed to the caller's e-mail:
// anyone else's is "no such invitation", so its id tells nothing.
func mine(id string, caller cs.User) invitationLock {
	return func(ctx context.Context, tx pgx.Tx) (cs.Invitation, error) {
		if !validID(id) {
			return cs.Invitation{}, cs.Errorf(cs.ENOTFOUND, "no such invitation")
		}
		return lockInvitationWhere(ctx, tx, `id = $1 AND lower(email) = lower($2)`, id, caller.Email)
	}
}

// AcceptMyInvitation is AcceptInvitationAs for an invitation of the
// caller's list (GET /v1/me/invitations), by id.
func (s *Store) AcceptMyInvitation(ctx context.Context, id string, caller cs.User) (cs.Accepted, error) {
	return s.acceptAs(ctx, mine(id, caller), caller)
}

// DeclineMyInvitation declines an invitation of the caller's list by id.
func (s *Store) DeclineMyInvitation(ctx context.Context, id string, caller cs.User) error {
	return s.decline(ctx, mine(id, caller), &caller)
}

func (s *Store) acceptAs(ctx context.Context, lock invitationLock, caller cs.User) (cs.Accepted, error) {
	var a cs.Accepted
	err := s.tx(ctx, func(tx pgx.Tx) error {
		inv, err := lock(ctx, tx)
		if err != nil {
			return err
		}
		if err := checkCaller(inv, caller); err != nil {
			return err
		}
		m, err := joinInvited(ctx, tx, inv, caller)
		a.User, a.Member = caller, m
		return err
	})
	return a, err
}

// joinInvited makes the user a member as the locked invitation says, and
// marks it accepted.
func joinInvited(ctx context.Context, tx pgx.Tx, inv cs.Invitation, user cs.User) (cs.Member, error) {
	m := cs.Member{ID: newID(), OrgID: inv.OrgID, UserID: user.ID, Email: user.Email, Name: user.Name, OrgRole: inv.OrgRole}
	var member bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM members WHERE org_id = $1 AND user_id = $2 AND removed_at IS NULL)`,
		inv.OrgID, user.ID).Scan(&member); err != nil {
		return m, err
	}
	if member {
		return m, cs.Errorf(cs.EALREADYMEMBER, "you are already a member of this organization")
	}
	if err := tx.QueryRow(ctx,
		`INSERT INTO members (id, org_id, user_id, org_role) VALUES ($1, $2, $3, $4) RETURNING created_at`,
		m.ID, m.OrgID, user.ID, m.OrgRole).Scan(&m.CreatedAt); err != nil {
		if isUniqueViolation(err) { // joined the org meanwhile
			return m, cs.Errorf(cs.EALREADYMEMBER, "you are already a member of this organization")
		}
		return m, fmt.Errorf("insert member: %w", err)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO team_members (org_id, team_id, member_id, team_role)
		SELECT org_id, team_id, $2, 'member' FROM invitation_teams WHERE invitation_id = $1`, inv.ID, m.ID); err != nil {
		return m, fmt.Errorf("join invited teams: %w", err)
	}
	_, err := tx.Exec(ctx, `
		UPDATE invitations SET status = 'accepted', answered_at = now(), member_id = $2 WHERE id = $1`, inv.ID, m.ID)
	return m, err
}

// DeclineInvitation answers no; the token stops working. Like accepting, an
// invitation whose e-mail already has a user is answered only by that user
// (caller, authenticated by their own token): an anonymous decline of it is
// EINVITATIONNEEDSTOKEN, so that nobody else, the inviting admin included,
// can make it look as if the user said no. An anonymous decline of a new
// e-mail's invitation is the invitation token's holder's answer.
func (s *Store) DeclineInvitation(ctx context.Context, token string, caller *cs.User) error {
	return s.decline(ctx, byToken(token), caller)
}

func (s *Store) decline(ctx context.Context, lock invitationLock, caller *cs.User) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		inv, err := lock(ctx, tx)
		if err != nil {
			return err
		}
		if caller != nil {
			if err := checkCaller(inv, *caller); err != nil {
				return err
			}
		} else {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($1))`, inv.Email).Scan(&exists); err != nil {
				return err
			}
			if exists {
				return needsToken(inv.Email, "decline")
			}
		}
		_, err = tx.Exec(ctx, `UPDATE invitations SET status = 'declined', answered_at = now() WHERE id = $1`, inv.ID)
		return err
	})
}

// ListInvitations lists the org's pending invitations that can still be
// answered, by id, with their inviter and delivery state, never their tokens.
func (s *Store) ListInvitations(ctx context.Context, orgID string, p cs.Page) ([]cs.Invitation, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+invitationColumns+`
		FROM invitations i JOIN orgs o ON o.id = i.org_id
		LEFT JOIN members im ON im.id = i.invited_by LEFT JOIN users iu ON iu.id = im.user_id
		WHERE i.org_id = $1 AND i.status = 'pending' AND i.expires_at > now() AND ($2::uuid IS NULL OR i.id > $2)
		ORDER BY i.id LIMIT $3`, orgID, after(p), limit(p))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanInvitation)
}

// invitationColumns are what scanInvitation reads: the invitation i, its
// org o, its inviter's user iu.
const invitationColumns = `i.id, i.org_id, i.email, i.name, i.org_role, i.expires_at, i.created_at,
	coalesce((SELECT array_agg(t.name ORDER BY lower(t.name)) FROM invitation_teams it JOIN teams t ON t.id = it.team_id
		WHERE it.invitation_id = i.id), '{}'),
	o.name, coalesce(nullif(iu.name, ''), iu.email, ''), i.delivery, i.delivery_error, i.delivery_attempts`

func scanInvitation(r pgx.CollectableRow) (cs.Invitation, error) {
	var inv cs.Invitation
	err := r.Scan(&inv.ID, &inv.OrgID, &inv.Email, &inv.Name, &inv.OrgRole, &inv.ExpiresAt, &inv.CreatedAt, &inv.Teams,
		&inv.OrgName, &inv.Inviter, &inv.Delivery, &inv.DeliveryError, &inv.DeliveryAttempts)
	return inv, err
}

// RevokeInvitation revokes one of the org's pending invitations (expired or
// not): its token then answers EINVITATIONREVOKED. Revoking a revoked one is
// a no-op; an answered or replaced one cannot be revoked (its error says
// why). The revocation is written to the org audit log.
func (s *Store) RevokeInvitation(ctx context.Context, orgID, invitationID string, by Actor) error {
	if !validID(orgID) || !validID(invitationID) {
		return notFound("invitation")
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		var email, status string
		err := tx.QueryRow(ctx, `SELECT email, status FROM invitations WHERE org_id = $1 AND id = $2 FOR UPDATE`,
			orgID, invitationID).Scan(&email, &status)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return notFound("invitation")
		case err != nil:
			return err
		case status == "revoked":
			return nil
		}
		if err := answerable(status, false, time.Time{}); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE invitations SET status = 'revoked', answered_at = now() WHERE id = $1`, invitationID); err != nil {
			return err
		}
		return insertAudit(ctx, tx, orgID, by, auditRow{objectType: "invitation", objectID: invitationID, action: "revoke",
			before: map[string]any{"email": email, "status": "pending"}, after: map[string]any{"email": email, "status": "revoked"}})
	})
}

// insertNewUser creates a user with this e-mail unless one exists, and
// reports whether it did. An existing user is left exactly as it is.
func insertNewUser(ctx context.Context, tx pgx.Tx, email, name string) (cs.User, bool, error) {
	var u cs.User
	err := tx.QueryRow(ctx, `
		INSERT INTO users (id, email, name) VALUES ($1, $2, $3)
		ON CONFLICT (lower(email)) DO NOTHING
		RETURNING id, email, name, allow_invitations, created_at`,
		newID(), email, name).Scan(&u.ID, &u.Email, &u.Name, &u.AllowInvitations, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, false, nil
	}
	if err != nil {
		return u, false, fmt.Errorf("insert user: %w", err)
	}
	return u, true, nil
}
