package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	cs "github.com/countersign/countersign"
)

// CreateAPIToken makes a new API token for the user; the returned Token is
// the only time it exists in clear.
func (s *Store) CreateAPIToken(ctx context.Context, userID, label string) (cs.APIToken, error) {
	label = strings.TrimSpace(label)
	if len(label) > 200 {
		return cs.APIToken{}, &cs.Error{Code: cs.EINVALID, Message: "invalid token",
			Fields: []cs.FieldError{{Field: "label", Message: "is longer than 200 characters"}}}
	}
	var t cs.APIToken
	err := s.tx(ctx, func(tx pgx.Tx) error {
		token, id, err := insertAPITokenID(ctx, tx, userID, label)
		if err != nil {
			return err
		}
		t.Token = token
		return tx.QueryRow(ctx, `SELECT id, label, created_at FROM api_tokens WHERE id = $1`, id).
			Scan(&t.ID, &t.Label, &t.CreatedAt)
	})
	return t, err
}

// ListAPITokens lists the user's tokens, newest first, without the tokens.
func (s *Store) ListAPITokens(ctx context.Context, userID string) ([]cs.APIToken, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, label, created_at, last_used_at, revoked_at FROM api_tokens
		WHERE user_id = $1 ORDER BY created_at DESC, id DESC`, userID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (cs.APIToken, error) {
		var t cs.APIToken
		err := r.Scan(&t.ID, &t.Label, &t.CreatedAt, &t.LastUsedAt, &t.RevokedAt)
		return t, err
	})
}

// RevokeAPIToken revokes one of the user's tokens; it stops working at once.
// Revoking a revoked token is a no-op.
func (s *Store) RevokeAPIToken(ctx context.Context, userID, tokenID string) error {
	if !validID(tokenID) {
		return cs.Errorf(cs.ENOTFOUND, "no such API token")
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE user_id = $1 AND id = $2`,
		userID, tokenID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return cs.Errorf(cs.ENOTFOUND, "no such API token")
	}
	return nil
}

// UserUpdate changes the caller's own settings; nil fields are unchanged.
type UserUpdate struct {
	Name             *string
	AllowInvitations *bool
}

// UpdateUser changes a user's name or allow_invitations.
func (s *Store) UpdateUser(ctx context.Context, userID string, u UserUpdate) (cs.User, error) {
	if u.Name != nil {
		n := strings.TrimSpace(*u.Name)
		u.Name = &n
		if len(n) > 200 {
			return cs.User{}, &cs.Error{Code: cs.EINVALID, Message: "invalid user",
				Fields: []cs.FieldError{{Field: "name", Message: "is longer than 200 characters"}}}
		}
	}
	var user cs.User
	err := s.pool.QueryRow(ctx, `
		UPDATE users SET name = coalesce($2, name), allow_invitations = coalesce($3, allow_invitations)
		WHERE id = $1 RETURNING id, email, name, allow_invitations, created_at`,
		userID, u.Name, u.AllowInvitations).Scan(&user.ID, &user.Email, &user.Name, &user.AllowInvitations, &user.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return user, cs.Errorf(cs.ENOTFOUND, "no such user")
	}
	if err != nil {
		return user, fmt.Errorf("update user: %w", err)
	}
	return user, nil
}
