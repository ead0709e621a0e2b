package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/temporal"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
	"github.com/countersign/countersign/internal/store"
)

// Comments reach Slack through an outbox (store comment_outbox): the API
// writes the comment and its outbox row in one transaction, and the worker's
// CommentRelay posts it as a thread reply under each approval message of the
// comment's revision, then deletes the row. A row whose worker died is
// taken again once its lease passes; each reply is recorded in
// slack_messages (kind "comment:<id>", one per thread), so a retry never
// posts one twice.

// CommentQueue is the outbox as the relay uses it (*store.Store).
type CommentQueue interface {
	ClaimComments(ctx context.Context, lease time.Duration, max int) ([]store.OutboxComment, error)
	CommentSent(ctx context.Context, postID, commentID string) error
	RetryComment(ctx context.Context, postID, commentID string, after time.Duration) error
}

// CommentRelay drains the comment outbox to Slack (to the log without a
// bot token).
type CommentRelay struct {
	Queue  CommentQueue
	Slack  *Service // nil or without a bot: comments are logged and dropped from the outbox
	Logger *slog.Logger
	// Interval is the pause between polls when the outbox is empty (default 1 s).
	Interval time.Duration
}

// errNoRequestYet puts a comment off while its revision's approval requests
// may still be on their way (for at most requestGrace after it was written).
var errNoRequestYet = errors.New("no approval request of the comment's revision yet")

const requestGrace = time.Minute

const (
	commentBatch       = 50
	commentLease       = time.Minute
	maxCommentAttempts = 10
)

// Run relays comments until ctx is done.
func (r *CommentRelay) Run(ctx context.Context) {
	every := r.Interval
	if every <= 0 {
		every = time.Second
	}
	for {
		n, err := r.Once(ctx)
		if err != nil && ctx.Err() == nil {
			r.Logger.Warn("comment relay", "error", err)
		}
		if n == commentBatch {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// Once relays the comments due now and returns how many it took.
func (r *CommentRelay) Once(ctx context.Context) (int, error) {
	due, err := r.Queue.ClaimComments(ctx, commentLease, commentBatch)
	if err != nil {
		return 0, err
	}
	for _, c := range due {
		log := r.Logger.With("org", c.OrgID, "post_id", c.PostID, "comment_id", c.ID, "attempt", c.Attempts)
		err := r.deliver(ctx, c)
		var after time.Duration
		var app *temporal.ApplicationError
		switch {
		case err == nil:
			err = r.Queue.CommentSent(ctx, c.PostID, c.ID)
		case errors.Is(err, errNoRequestYet):
			after = 5 * time.Second
		case errors.As(err, &app) && app.NextRetryDelay() > 0: // Slack's 429
			after = app.NextRetryDelay()
		case c.Attempts >= maxCommentAttempts:
			log.Error("comment not posted to Slack after every attempt; dropped", "error", err)
			err = r.Queue.CommentSent(ctx, c.PostID, c.ID)
		default:
			log.Warn("comment not posted to Slack; retried", "error", err)
			after = time.Duration(1<<min(c.Attempts, 8)) * time.Second
		}
		if after > 0 {
			err = r.Queue.RetryComment(ctx, c.PostID, c.ID, after)
		}
		if err != nil {
			return len(due), err
		}
	}
	return len(due), nil
}

func (r *CommentRelay) deliver(ctx context.Context, c store.OutboxComment) error {
	if !r.Slack.HasBot() {
		r.Logger.Info("comment (no Slack bot token: not posted)", "org", c.OrgID, "post_id", c.PostID,
			"comment_id", c.ID, "author_id", c.AuthorID, "revision", c.Revision)
		return nil
	}
	return r.Slack.replyComment(ctx, c)
}

// replyComment posts the comment in the thread of every approval message of
// its revision. The text is escaped: mrkdwn control characters in it cannot
// mention a channel, link or format anything.
func (s *Service) replyComment(ctx context.Context, c store.OutboxComment) error {
	sp, err := s.store.SlackPost(ctx, c.PostID)
	if cs.ErrorCode(err) == cs.ENOTFOUND {
		return nil // the post is gone, and its outbox row with it
	}
	if err != nil {
		return err
	}
	r := &run{svc: s, api: s.api, ctx: ctx, sp: sp, members: map[string]store.SlackMember{},
		note: activities.Notification{PostID: c.PostID, Kind: "comment", Revision: c.Revision}}
	msgs, err := s.store.SlackMessages(ctx, c.PostID, store.SlackKindApproval)
	if err != nil {
		return err
	}
	text := fmt.Sprintf("💬 *%s* commented on revision %d:\n%s", escape(r.name(c.AuthorID)), c.Revision, escape(c.Text))
	n := 0
	for _, m := range msgs {
		if m.Revision != c.Revision {
			continue
		}
		n++
		if err := r.reply(m, "comment:"+c.ID, text); err != nil {
			return err
		}
	}
	if n == 0 && sp.Post.Status == cs.PostPendingApproval && sp.Post.Revision == c.Revision && time.Since(c.CreatedAt) < requestGrace {
		// Written right after an edit or a submission: the revision's
		// requests may not be sent yet. Look again shortly.
		return errNoRequestYet
	}
	return r.failed
}
