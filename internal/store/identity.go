package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/secrets"
)

// Bootstrapped is what Bootstrap created. Token is shown once and never stored.
type Bootstrapped struct {
	Org    cs.Org    `json:"org"`
	User   cs.User   `json:"user"`
	Member cs.Member `json:"member"`
	Token  string    `json:"token"`
}

// Bootstrap creates an organization, its owner (reusing the user if the
// e-mail is known) and a first API token for that user, in one transaction.
func (s *Store) Bootstrap(ctx context.Context, orgName, email, name string) (Bootstrapped, error) {
	var b Bootstrapped
	orgName, email, name = strings.TrimSpace(orgName), strings.TrimSpace(email), strings.TrimSpace(name)
	var fields []cs.FieldError
	if orgName == "" {
		fields = append(fields, cs.FieldError{Field: "org", Message: "is required"})
	}
	if !validEmail(email) {
		fields = append(fields, cs.FieldError{Field: "email", Message: "must be an e-mail address"})
	}
	if len(fields) > 0 {
		return b, &cs.Error{Code: cs.EINVALID, Message: "invalid bootstrap input", Fields: fields}
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		user, err := upsertUser(ctx, tx, email, name)
		if err != nil {
			return err
		}
		b.User = user
		b.Org = cs.Org{ID: newID(), Name: orgName}
		if err := tx.QueryRow(ctx,
			`INSERT INTO orgs (id, name) VALUES ($1, $2) RETURNING created_at`,
			b.Org.ID, b.Org.Name).Scan(&b.Org.CreatedAt); err != nil {
			return fmt.Errorf("insert org: %w", err)
		}
		b.Member = cs.Member{ID: newID(), OrgID: b.Org.ID, UserID: user.ID, Email: user.Email, Name: user.Name, OrgRole: cs.RoleOwner}
		if err := tx.QueryRow(ctx,
			`INSERT INTO members (id, org_id, user_id, org_role) VALUES ($1, $2, $3, $4) RETURNING created_at`,
			b.Member.ID, b.Org.ID, user.ID, b.Member.OrgRole).Scan(&b.Member.CreatedAt); err != nil {
			return fmt.Errorf("insert member: %w", err)
		}
		b.Token, err = insertAPIToken(ctx, tx, user.ID, "bootstrap")
		return err
	})
	return b, err
}

// upsertUser returns the user with this e-mail, creating it if needed. A
// blank name never overwrites a known one.
func upsertUser(ctx context.Context, tx pgx.Tx, email, name string) (cs.User, error) {
	var u cs.User
	err := tx.QueryRow(ctx, `
		INSERT INTO users (id, email, name) VALUES ($1, $2, $3)
		ON CONFLICT (lower(email)) DO UPDATE SET name = CASE WHEN EXCLUDED.name = '' THEN users.name ELSE EXCLUDED.name END
		RETURNING id, email, name, allow_invitations, created_at`,
		newID(), email, name).Scan(&u.ID, &u.Email, &u.Name, &u.AllowInvitations, &u.CreatedAt)
	if err != nil {
		return u, fmt.Errorf("upsert user: %w", err)
	}
	return u, nil
}

// insertAPIToken creates a token for the user and returns it in clear, the
// only time it exists outside the caller's hands.
func insertAPIToken(ctx context.Context, tx pgx.Tx, userID, label string) (string, error) {
	token, _, err := insertAPITokenID(ctx, tx, userID, label)
	return token, err
}

// insertAPITokenID is insertAPIToken that also returns the token's id.
func insertAPITokenID(ctx context.Context, tx pgx.Tx, userID, label string) (token, id string, err error) {
	token, id = secrets.NewToken(secrets.APITokenPrefix), newID()
	_, err = tx.Exec(ctx,
		`INSERT INTO api_tokens (id, user_id, token_hash, label) VALUES ($1, $2, $3, $4)`,
		id, userID, secrets.HashToken(token), label)
	if err != nil {
		return "", "", fmt.Errorf("insert api token: %w", err)
	}
	return token, id, nil
}

// Authenticate returns the user owning an unrevoked API token. Its
// last_used_at is written at most once a minute: a busy integration's every
// call would otherwise be a write.
func (s *Store) Authenticate(ctx context.Context, token string) (cs.User, error) {
	var u cs.User
	err := s.pool.QueryRow(ctx, `
		WITH t AS (
			SELECT id, user_id, last_used_at FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL
		), touched AS (
			UPDATE api_tokens a SET last_used_at = now() FROM t
			WHERE a.id = t.id AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute')
		)
		SELECT u.id, u.email, u.name, u.allow_invitations, u.created_at FROM t JOIN users u ON u.id = t.user_id`,
		secrets.HashToken(token)).Scan(&u.ID, &u.Email, &u.Name, &u.AllowInvitations, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, cs.Errorf(cs.EUNAUTHORIZED, "the API token is unknown or revoked")
	}
	return u, err
}

// Memberships lists the user's active memberships, oldest first.
func (s *Store) Memberships(ctx context.Context, userID string) ([]cs.Membership, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT m.id, m.org_id, m.user_id, u.email, u.name, m.org_role, coalesce(m.slack_user_id, ''), m.created_at, o.name
		FROM members m JOIN users u ON u.id = m.user_id JOIN orgs o ON o.id = m.org_id
		WHERE m.user_id = $1 AND m.removed_at IS NULL
		ORDER BY m.created_at, m.id`, userID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (cs.Membership, error) {
		var m cs.Membership
		err := r.Scan(&m.ID, &m.OrgID, &m.UserID, &m.Email, &m.Name, &m.OrgRole, &m.SlackUserID, &m.CreatedAt, &m.OrgName)
		return m, err
	})
}

// validEmail is a deliberately loose check: one @ with text on both sides and
// a dot in the domain. Delivery is the real test.
func validEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && strings.Contains(s[at+1:], ".") && !strings.ContainsAny(s, " \t\r\n<>")
}
