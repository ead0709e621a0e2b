package slack_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
	csslack "github.com/countersign/countersign/internal/slack"
	"github.com/countersign/countersign/internal/slack/slackfake"
	"github.com/countersign/countersign/internal/store"
)

// memQueue is an in-memory comment outbox: what is due, and what the relay
// did with each comment.
type memQueue struct {
	mu      sync.Mutex
	due     []store.OutboxComment
	sent    []string
	retried map[string]time.Duration
}

func (q *memQueue) ClaimComments(ctx context.Context, lease time.Duration, max int) ([]store.OutboxComment, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.due
	q.due = nil
	for i := range out {
		out[i].Attempts++
	}
	return out, nil
}

func (q *memQueue) CommentSent(ctx context.Context, post, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sent = append(q.sent, id)
	return nil
}

func (q *memQueue) RetryComment(ctx context.Context, post, id string, after time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.retried[id] = after
	return nil
}

func comment(id string, rev int) store.OutboxComment {
	return store.OutboxComment{OrgID: orgID, Comment: cs.Comment{ID: id, PostID: postID, AuthorID: author, Revision: rev,
		Text: "<!here> see <https://evil.test|this> & more", CreatedAt: time.Now()}}
}

// The relay replies a comment, escaped, in the thread of the revision's
// approval request, once even if the comment is taken again (a worker that
// died before deleting it); Slack's 429 puts it off by Retry-After; a comment
// written before its revision's requests went out waits for them.
func TestCommentRelay(t *testing.T) {
	ctx := context.Background()
	fake := slackfake.New(t)
	st := newMemStore()
	svc := newService(t, fake, st, csslack.Config{})
	q := &memQueue{retried: map[string]time.Duration{}}
	relay := &csslack.CommentRelay{Queue: q, Slack: svc, Logger: slog.New(slog.DiscardHandler)}

	// Before any request of revision 1: put off, not sent.
	q.due = []store.OutboxComment{comment("c0", 1)}
	if _, err := relay.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if q.retried["c0"] != 5*time.Second || len(q.sent) != 0 {
		t.Fatalf("early comment: retried %v, sent %v", q.retried, q.sent)
	}

	if err := svc.Notifier().Notify(ctx, stepOpened()); err != nil {
		t.Fatal(err)
	}
	var request slackfake.Message
	for _, m := range fake.Messages() {
		if m.Request {
			request = m
		}
	}
	replies := func() []slackfake.Message {
		var out []slackfake.Message
		for _, m := range fake.Messages() {
			if m.ThreadTS == request.TS && strings.Contains(m.Text, "commented") {
				out = append(out, m)
			}
		}
		return out
	}
	q.due = []store.OutboxComment{comment("c1", 1), comment("c2", 2)}
	if _, err := relay.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if r := replies(); len(r) != 1 || r[0].Channel != request.Channel ||
		r[0].Text != "💬 *Ines* commented on revision 1:\n&lt;!here&gt; see &lt;https://evil.test|this&gt; &amp; more" {
		t.Fatalf("replies: %+v", r)
	}
	if strings.Join(q.sent, ",") != "c1,c2" { // c2: revision 2 has no request (the post is at 1)
		t.Fatalf("sent %v", q.sent)
	}
	q.due = []store.OutboxComment{comment("c1", 1)}
	if _, err := relay.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if r := replies(); len(r) != 1 {
		t.Fatalf("the comment taken again was replied again: %d replies", len(r))
	}

	fake.RateLimit("chat.postMessage", 3)
	q.due = []store.OutboxComment{comment("c3", 1)}
	if _, err := relay.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if q.retried["c3"] != 3*time.Second || len(replies()) != 1 {
		t.Fatalf("after a 429: retried %v, %d replies", q.retried, len(replies()))
	}
}
