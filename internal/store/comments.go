package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	cs "github.com/countersign/countersign"
)

// A comment is a post event (cs.EventComment) keyed "comment/<uuid v7>", so
// post_events' primary key lists a post's comments in the order they were
// written. Its seq is the post's last event's: it sorts after what had
// happened when it was written (ties go by time) and takes no number from
// the workflow's own sequence.

const commentKeyPrefix = "comment/"

// NewComment is a comment to add.
type NewComment struct {
	OrgID, PostID, AuthorID string
	Text                    string
	Source                  string // cs.SourceAPI or cs.SourceSlack
	// ToSlack queues the comment for a thread reply under the post's Slack
	// approval messages (comment_outbox, sent by the worker).
	ToSlack bool
}

// AddComment appends the comment to the post's events, on the revision the
// post is at, and queues it for Slack when asked, in one transaction.
func (s *Store) AddComment(ctx context.Context, in NewComment) (cs.Comment, error) {
	c := cs.Comment{ID: newID(), PostID: in.PostID, AuthorID: in.AuthorID, Text: in.Text, Source: in.Source}
	if !validID(in.OrgID) || !validID(in.PostID) {
		return c, notFound("post")
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO post_events
			(org_id, post_id, key, seq, type, actor, source, revision, content_hash, step, detail, at)
			SELECT p.org_id, p.id, $3, coalesce((SELECT max(seq) FROM post_events WHERE post_id = p.id), 0),
			       $4, $5, $6, p.revision, p.content_hash, p.current_step, $7, now()
			FROM posts p WHERE p.org_id = $1 AND p.id = $2
			RETURNING revision, at`,
			in.OrgID, in.PostID, commentKeyPrefix+c.ID, cs.EventComment, in.AuthorID, in.Source, in.Text).
			Scan(&c.Revision, &c.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("post")
		}
		if err != nil || !in.ToSlack {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO comment_outbox (post_id, key) VALUES ($1, $2)`, in.PostID, commentKeyPrefix+c.ID)
		return err
	})
	return c, err
}

// Comments lists the post's comments, oldest first, a page at a time (the
// comment ids after the cursor).
func (s *Store) Comments(ctx context.Context, orgID, postID string, p cs.Page) ([]cs.Comment, error) {
	if !validID(orgID) || !validID(postID) {
		return nil, notFound("post")
	}
	var from any
	if a := after(p); a != nil {
		from = commentKeyPrefix + a.(string)
	}
	// The key range is the primary key's: 'comment/' up to 'comment0'.
	rows, err := s.pool.Query(ctx, `SELECT key, post_id, coalesce(actor::text, ''), detail, revision, source, at
		FROM post_events WHERE post_id = $2 AND org_id = $1 AND type = $3
		  AND key >= 'comment/' AND key < 'comment0' AND ($4::text IS NULL OR key > $4)
		ORDER BY key LIMIT $5`, orgID, postID, cs.EventComment, from, limit(p))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanComment)
}

func scanComment(r pgx.CollectableRow) (cs.Comment, error) {
	var c cs.Comment
	err := r.Scan(&c.ID, &c.PostID, &c.AuthorID, &c.Text, &c.Revision, &c.Source, &c.CreatedAt)
	c.ID = strings.TrimPrefix(c.ID, commentKeyPrefix)
	return c, err
}

// OutboxComment is a comment waiting to be posted to Slack.
type OutboxComment struct {
	cs.Comment
	OrgID    string
	Attempts int // including this one
}

// ClaimComments takes up to max comments due for Slack, oldest due first,
// and puts each off by lease (so another worker does not take it while this
// one sends it, and a worker that died leaves it for the next).
func (s *Store) ClaimComments(ctx context.Context, lease time.Duration, max int) ([]OutboxComment, error) {
	rows, err := s.pool.Query(ctx, `WITH due AS (
			SELECT post_id, key FROM comment_outbox WHERE next_attempt_at <= now()
			ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED
		), claimed AS (
			UPDATE comment_outbox o SET attempts = o.attempts + 1, next_attempt_at = now() + $1::interval
			FROM due WHERE o.post_id = due.post_id AND o.key = due.key
			RETURNING o.post_id, o.key, o.attempts
		)
		SELECT e.key, e.post_id, coalesce(e.actor::text, ''), e.detail, e.revision, e.source, e.at, e.org_id, c.attempts
		FROM claimed c JOIN post_events e ON e.post_id = c.post_id AND e.key = c.key
		ORDER BY e.at`, lease.String(), max)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (OutboxComment, error) {
		var o OutboxComment
		err := r.Scan(&o.ID, &o.PostID, &o.AuthorID, &o.Text, &o.Revision, &o.Source, &o.CreatedAt, &o.OrgID, &o.Attempts)
		o.ID = strings.TrimPrefix(o.ID, commentKeyPrefix)
		return o, err
	})
}

// CommentSent removes a comment from the outbox.
func (s *Store) CommentSent(ctx context.Context, postID, commentID string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM comment_outbox WHERE post_id = $1 AND key = $2`, postID, commentKeyPrefix+commentID)
	return err
}

// RetryComment puts a comment's next attempt off by after.
func (s *Store) RetryComment(ctx context.Context, postID, commentID string, after time.Duration) error {
	_, err := s.pool.Exec(ctx, `UPDATE comment_outbox SET next_attempt_at = now() + $3::interval WHERE post_id = $1 AND key = $2`,
		postID, commentKeyPrefix+commentID, after.String())
	return err
}
