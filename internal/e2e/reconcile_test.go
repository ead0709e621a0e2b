package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/postflow"
	"github.com/countersign/countersign/internal/testenv"
)

// TestReconcilerRepairsEndedWorkflows: the database and Temporal disagree
// in the two ways a lost write can make them, and the reconciler settles
// both without a look-back window.
func TestReconcilerRepairsEndedWorkflows(t *testing.T) {
	e := newEnv(t)
	acct := e.setupThreeLevels()
	ctx := context.Background()
	submit := func(text string) string {
		var p cs.Post
		e.must(201, e.members["Ines"].token, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": text}, &p)
		e.waitPost(p.ID, "opened step 1", atStep(1))
		return p.ID
	}

	// 1. An operator terminates a workflow: the post still says pending.
	terminated := submit("terminated by an operator")
	if err := e.app.Temporal.TerminateWorkflow(ctx, cs.WorkflowID(terminated), "", "test"); err != nil {
		t.Fatal(err)
	}

	// 2. A workflow completed but its last mirror write was lost: the row
	// still says publishing.
	lost := submit("published, but the database missed it")
	e.approve("Maya", lost, 1)
	e.waitPost(lost, "opened step 2", atStep(2))
	e.approve("Pat", lost, 1)
	e.waitPost(lost, "opened step 3", atStep(3))
	e.approve("Eddie", lost, 1)
	e.waitPost(lost, "published", func(p cs.Post) bool { return p.Status == cs.PostPublished })
	conn, err := pgx.Connect(ctx, e.app.Config.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE posts SET status = 'publishing', published_at = NULL,
		state = jsonb_set(state, '{closed}', 'false'), state_updated_at = state_updated_at - interval '1 minute'
		WHERE id = $1`, lost); err != nil {
		t.Fatal(err)
	}

	// A third post, still running, must be left alone.
	running := submit("still waiting for Maya")

	rec := &postflow.Reconciler{Store: e.app.Store, Temporal: e.app.Temporal, Logger: testenv.Logger(t), Grace: 0}
	n, err := rec.Once(ctx)
	if err != nil || n != 2 {
		t.Fatalf("reconciler repaired %d posts (want 2): %v", n, err)
	}
	var p cs.Post
	e.must(200, e.owner, "GET", e.org("/posts/"+terminated), nil, &p)
	if p.Status != cs.PostNeedsAttention || p.LastError == "" || p.Events[len(p.Events)-1].Type != cs.EventNeedsAttention {
		t.Fatalf("terminated post: status %s, error %q", p.Status, p.LastError)
	}
	e.must(200, e.owner, "GET", e.org("/posts/"+lost), nil, &p)
	if p.Status != cs.PostPublished || p.PublishedAt == nil {
		t.Fatalf("post whose end was lost: status %s", p.Status)
	}
	e.must(200, e.owner, "GET", e.org("/posts/"+running), nil, &p)
	if p.Status != cs.PostPendingApproval {
		t.Fatalf("running post touched: %s", p.Status)
	}
	if n, err := rec.Once(ctx); err != nil || n != 0 {
		t.Fatalf("second pass repaired %d more: %v", n, err)
	}
	if e.hook.Count() != 1 {
		t.Fatalf("deliveries: %d, want 1", e.hook.Count())
	}
}

// poisonedStarts is a Temporal client whose starts fail for one workflow id
// (a post Temporal keeps refusing) and work for the others.
type poisonedStarts struct {
	client.Client
	bad string
}

func (p poisonedStarts) ExecuteWorkflow(ctx context.Context, o client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	if o.ID == p.bad {
		return nil, errors.New("refused: this post cannot start")
	}
	return p.Client.ExecuteWorkflow(ctx, o, wf, args...)
}

// TestReconcilerGoesOnPastAPoisonedPost: of three posts whose start was
// lost, the oldest cannot start. The reconciler starts the two others in the
// same pass, puts the poisoned one off (it is not retried before its
// back-off), and still repairs ended workflows.
func TestReconcilerGoesOnPastAPoisonedPost(t *testing.T) {
	e := newEnv(t)
	acct := e.setupThreeLevels()
	ctx := context.Background()
	var ids []string
	for range 3 {
		p, _, err := e.app.Store.CreatePost(ctx, storeNewPost(e, acct))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	// An ended workflow the same pass must repair.
	var ended cs.Post
	e.must(201, e.members["Ines"].token, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "terminated"}, &ended)
	if err := e.app.Temporal.TerminateWorkflow(ctx, cs.WorkflowID(ended.ID), "", "test"); err != nil {
		t.Fatal(err)
	}

	rec := &postflow.Reconciler{Store: e.app.Store, Temporal: poisonedStarts{e.app.Temporal, cs.WorkflowID(ids[0])},
		Logger: testenv.Logger(t), Grace: 0, Backoff: time.Hour}
	n, err := rec.Once(ctx)
	if err != nil || n != 3 {
		t.Fatalf("reconciler started or repaired %d (want 2 starts and 1 repair): %v", n, err)
	}
	for _, id := range ids[1:] {
		e.waitPost(id, "opened step 1 once the reconciler started it", atStep(1))
	}
	if _, kept, err := e.app.Store.UnstartedPostByID(ctx, ids[0]); err != nil || !kept {
		t.Fatalf("the poisoned post should stay unstarted (kept=%v, %v)", kept, err)
	}
	var p cs.Post
	e.must(200, e.owner, "GET", e.org("/posts/"+ended.ID), nil, &p)
	if p.Status != cs.PostNeedsAttention {
		t.Fatalf("the ended workflow was not repaired: %s", p.Status)
	}
	// Backed off: the next pass does not try it again.
	if n, err := rec.Once(ctx); err != nil || n != 0 {
		t.Fatalf("second pass: %d, %v (the poisoned post is backed off)", n, err)
	}
	if u, err := e.app.Store.UnstartedPosts(ctx, 0, 10); err != nil || len(u) != 0 {
		t.Fatalf("unstarted posts due now: %d, %v", len(u), err)
	}
}
