package e2e

import (
	"context"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/workflows"
)

// TestLateGrace: under the late policy expire, a decision the API received
// before the scheduled time but that reaches the workflow after it (here
// sent straight to Temporal, signed, as a delayed Update would arrive)
// still counts and the post is published, also when it is handled in the
// same workflow task as the scheduled time; a post nobody approved expires
// once the grace has passed. Records the late_grace histories.
func TestLateGrace(t *testing.T) {
	e := newEnv(t)
	acct := e.setupThreeLevels()
	submit := func(text string, at time.Time) cs.Post {
		var p cs.Post
		e.must(201, e.members["Ines"].token, "POST", e.org("/posts"), map[string]any{
			"account_id": acct, "text": text, "scheduled_at": at.Format(time.RFC3339Nano)}, &p)
		return p
	}

	at := time.Now().Add(3 * time.Second).Truncate(time.Millisecond)
	post := submit("approved in time, counted late", at)
	e.approve("Maya", post.ID, 1)
	e.approve("Pat", post.ID, 1)
	time.Sleep(time.Until(at) + 2*time.Second) // past the time, in the grace
	if p := e.waitPost(post.ID, "at step 3", atStep(3)); p.Status != cs.PostPendingApproval {
		t.Fatalf("in the grace the post is %s, want pending_approval", p.Status)
	}
	u := e.updater(post.ID)
	d := cs.DecisionSignal{PostID: post.ID, Revision: 1, Step: 3, MemberID: e.members["Eddie"].memberID,
		Decision: cs.DecisionApprove, Source: cs.SourceAPI, RequestID: u.requestID(), SentAt: new(at.Add(-time.Second).UTC())}
	d.MAC = u.signer.Sign(d)
	if err := e.app.Temporal.SignalWorkflow(context.Background(), cs.WorkflowID(post.ID), "", cs.SignalDecision, d); err != nil {
		t.Fatal(err)
	}
	e.waitPost(post.ID, "published", func(p cs.Post) bool { return p.Status == cs.PostPublished })
	recordHistory(t, e.app.Temporal, post.ID, "late_grace_published")

	// The decision and the scheduled time reach the workflow in one workflow
	// task (here: no worker while both happen), the decision handled first.
	// It was sent in time, so it counts from then and the post is published.
	at = time.Now().Add(3 * time.Second).Truncate(time.Millisecond)
	raced := submit("approved in time, handled with the timer", at)
	e.approve("Maya", raced.ID, 1)
	e.approve("Pat", raced.ID, 1)
	e.stopWorker()
	d = cs.DecisionSignal{PostID: raced.ID, Revision: 1, Step: 3, MemberID: e.members["Eddie"].memberID,
		Decision: cs.DecisionApprove, Source: cs.SourceAPI, RequestID: u.requestID(), SentAt: new(at.Add(-time.Second).UTC())}
	d.MAC = u.signer.Sign(d)
	if err := e.app.Temporal.SignalWorkflow(context.Background(), cs.WorkflowID(raced.ID), "", cs.SignalDecision, d); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(at) + time.Second) // the timer fires with no worker
	e.startWorker()
	if p := e.waitPost(raced.ID, "ended", func(p cs.Post) bool { return p.Status == cs.PostPublished || p.Status == cs.PostExpired }); p.Status != cs.PostPublished {
		t.Fatalf("a decision sent in time and handled in the task of the scheduled time: %s, want published", p.Status)
	}
	recordHistory(t, e.app.Temporal, raced.ID, "late_grace_race")

	at = time.Now().Add(2 * time.Second).Truncate(time.Millisecond)
	lone := submit("nobody answers", at)
	p := e.waitPost(lone.ID, "expired", func(p cs.Post) bool { return p.Status == cs.PostExpired })
	for _, ev := range p.Events {
		if ev.Type == cs.EventExpired && ev.At.Before(at.Add(workflows.LateGrace)) {
			t.Errorf("expired at %s, before the scheduled time %s plus the grace", ev.At, at)
		}
	}
	recordHistory(t, e.app.Temporal, lone.ID, "late_grace_expired")
}
