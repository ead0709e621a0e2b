package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	cs "github.com/countersign/countersign"
)

// The invitation mail queue (migration 00010): rows of invitations with
// delivery 'queued' are claimed by any replica's dispatcher
// (internal/mail.Dispatcher) with FOR UPDATE SKIP LOCKED; the claim pushes
// delivery_next_at forward by a lease, so a replica that dies mid-send
// leaves the row due again later instead of lost or sent twice at once.

// SetMailInvitations turns invitation mail on: new invitations are queued
// for the dispatcher, and their token is no longer in the admin's answer.
func (s *Store) SetMailInvitations(on bool) { s.mailInvitations = on }

// MailInvitations reports whether invitations are mailed.
func (s *Store) MailInvitations() bool { return s.mailInvitations }

// deliveryContext binds a sealed invitation token to its invitation.
func deliveryContext(invitationID string) []byte { return []byte("invitation-mail:" + invitationID) }

// InvitationMail is a claimed invitation to mail: what the message says,
// and the token of its link.
type InvitationMail struct {
	cs.Invitation
	Attempt int // 1 for the first attempt
}

// ClaimInvitationMails claims up to n due invitation mails for lease: they
// are not due again before it runs out, whoever asks. A token the secret
// key cannot open fails the row for good.
func (s *Store) ClaimInvitationMails(ctx context.Context, n int, lease time.Duration) ([]InvitationMail, error) {
	if s.box == nil {
		return nil, errors.New("invitation mail needs COUNTERSIGN_SECRET_KEY, which is not configured")
	}
	var out []InvitationMail
	var unreadable []string
	err := s.tx(ctx, func(tx pgx.Tx) error {
		out, unreadable = nil, nil
		rows, err := tx.Query(ctx, `
			WITH due AS (
				SELECT id FROM invitations
				WHERE delivery = 'queued' AND delivery_next_at <= now() AND status = 'pending'
				ORDER BY delivery_next_at LIMIT $1 FOR UPDATE SKIP LOCKED)
			UPDATE invitations i SET delivery_attempts = i.delivery_attempts + 1,
				delivery_next_at = now() + $2::bigint * interval '1 millisecond'
			FROM due WHERE i.id = due.id
			RETURNING i.id, i.delivery_token, i.delivery_attempts`, n, lease.Milliseconds())
		if err != nil {
			return err
		}
		type claimed struct {
			id      string
			sealed  []byte
			attempt int
		}
		cl, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (claimed, error) {
			var c claimed
			return c, r.Scan(&c.id, &c.sealed, &c.attempt)
		})
		if err != nil {
			return err
		}
		for _, c := range cl {
			token, err := s.box.Open(c.sealed, deliveryContext(c.id))
			if err != nil {
				unreadable = append(unreadable, c.id)
				continue
			}
			row, err := tx.Query(ctx, `
				SELECT `+invitationColumns+`
				FROM invitations i JOIN orgs o ON o.id = i.org_id
				LEFT JOIN members im ON im.id = i.invited_by LEFT JOIN users iu ON iu.id = im.user_id
				WHERE i.id = $1`, c.id)
			if err != nil {
				return err
			}
			inv, err := pgx.CollectExactlyOneRow(row, scanInvitation)
			if err != nil {
				return fmt.Errorf("read claimed invitation: %w", err)
			}
			inv.Token = string(token)
			out = append(out, InvitationMail{Invitation: inv, Attempt: c.attempt})
		}
		return nil
	})
	for _, id := range unreadable {
		if ferr := s.InvitationMailFailed(ctx, id, "the invitation's token cannot be read with the current COUNTERSIGN_SECRET_KEY: invite again", time.Time{}); ferr != nil && err == nil {
			err = ferr
		}
	}
	return out, err
}

// InvitationMailSent records that the mail went out; its token is dropped.
func (s *Store) InvitationMailSent(ctx context.Context, id string) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE invitations SET delivery = 'sent', delivery_token = NULL, delivery_error = '', delivery_next_at = NULL
		WHERE id = $1 AND delivery = 'queued'`, id)
	return err
}

// InvitationMailFailed records a failed attempt with its sanitized reason:
// due again at retryAt, or failed for good (token dropped) when retryAt is
// zero. The invitation stays pending either way.
func (s *Store) InvitationMailFailed(ctx context.Context, id, reason string, retryAt time.Time) error {
	if retryAt.IsZero() {
		_, err := s.pool.Exec(ctx, `
			UPDATE invitations SET delivery = 'failed', delivery_token = NULL, delivery_error = $2, delivery_next_at = NULL
			WHERE id = $1 AND delivery = 'queued'`, id, reason)
		return err
	}
	_, err := s.pool.Exec(ctx, `
		UPDATE invitations SET delivery_error = $2, delivery_next_at = $3
		WHERE id = $1 AND delivery = 'queued'`, id, reason, retryAt)
	return err
}

// MyInvitations lists the pending, unexpired invitations addressed to the
// user's e-mail, in every org, oldest first, with org, role, teams, inviter
// and expiry (never a token nor the delivery state, which are the admins').
func (s *Store) MyInvitations(ctx context.Context, user cs.User, p cs.Page) ([]cs.Invitation, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+invitationColumns+`
		FROM invitations i JOIN orgs o ON o.id = i.org_id
		LEFT JOIN members im ON im.id = i.invited_by LEFT JOIN users iu ON iu.id = im.user_id
		WHERE lower(i.email) = lower($1) AND i.status = 'pending' AND i.expires_at > now()
			AND ($2::uuid IS NULL OR i.id > $2)
		ORDER BY i.id LIMIT $3`, user.Email, after(p), limit(p))
	if err != nil {
		return nil, err
	}
	invs, err := pgx.CollectRows(rows, scanInvitation)
	for i := range invs {
		invs[i].Delivery, invs[i].DeliveryError, invs[i].DeliveryAttempts = "", "", 0
	}
	return invs, err
}

// InvitationPreview is what the accept page shows for an invitation token:
// the invitation (org, inviter, role) and whether its e-mail has a user.
type InvitationPreview struct {
	Invitation   cs.Invitation
	ExistingUser bool
}

// PreviewInvitation reads an invitation by token without answering it; a
// token that can no longer be answered gets the error that says why (410),
// an unknown one ENOTFOUND.
func (s *Store) PreviewInvitation(ctx context.Context, token string) (InvitationPreview, error) {
	var p InvitationPreview
	err := s.tx(ctx, func(tx pgx.Tx) error {
		inv, err := lockInvitation(ctx, tx, token)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			SELECT `+invitationColumns+`
			FROM invitations i JOIN orgs o ON o.id = i.org_id
			LEFT JOIN members im ON im.id = i.invited_by LEFT JOIN users iu ON iu.id = im.user_id
			WHERE i.id = $1`, inv.ID)
		if err != nil {
			return err
		}
		if p.Invitation, err = pgx.CollectExactlyOneRow(rows, scanInvitation); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = lower($1))`, inv.Email).Scan(&p.ExistingUser)
	})
	return p, err
}
