package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/publish"
	"github.com/countersign/countersign/worker"
)

// unknownOutcome is a network whose every attempt ends in doubt.
type unknownOutcome struct{}

func (unknownOutcome) Publish(context.Context, publish.Request) (publish.Result, error) {
	return publish.Result{}, fmt.Errorf("%w: the network timed out after accepting the request", publish.ErrUnknown)
}

// TestOperatorQueries runs the visibility queries of the README's
// "Operating Countersign" against the in-process server and checks that each
// finds exactly the right posts.
func TestOperatorQueries(t *testing.T) {
	e := newEnv(t)
	acct := e.setupThreeLevels()
	ctx := context.Background()

	// A second account, on which Ines may post without approval, whose
	// network never says whether it posted: its posts end needs_attention.
	var doubtful struct{ ID string }
	e.must(201, e.owner, "POST", e.org("/accounts"), map[string]any{
		"network": "webhook", "handle": "doubtful", "display_name": "Doubtful", "timezone": "UTC",
		"settings": map[string]string{"url": e.hook.URL}, "credentials": map[string]string{"secret": e.hook.Secret}}, &doubtful)
	e.must(200, e.owner, "PUT", e.org("/accounts/"+doubtful.ID+"/permissions"), map[string]any{"grants": []map[string]any{
		{"member_id": e.members["Ines"].memberID, "level": "editor"}}}, nil)
	// A chain whose single step times out in 2s with no fallback left to try
	// would expire; with a fallback it widens — either way the workflow acts
	// at its deadline. Only a stuck worker leaves a post past its deadline.
	var quick struct{ ID string }
	e.must(201, e.owner, "POST", e.org("/approval-chains"), map[string]any{"name": "Quick", "steps": []map[string]any{
		{"approver": map[string]string{"member": e.members["Maya"].memberID}, "timeout": "2s"}}}, &quick)
	var quickAcct struct{ ID string }
	e.must(201, e.owner, "POST", e.org("/accounts"), map[string]any{
		"network": "log", "handle": "quick", "display_name": "Quick", "timezone": "UTC"}, &quickAcct)
	e.must(200, e.owner, "PUT", e.org("/accounts/"+quickAcct.ID+"/permissions"), map[string]any{"grants": []map[string]any{
		{"member_id": e.members["Ines"].memberID, "level": "limited"}}}, nil)
	e.must(200, e.owner, "PATCH", e.org("/accounts/"+quickAcct.ID), map[string]any{"approval_chain_id": quick.ID}, nil)

	// The standard worker, but the "doubtful" account's webhook always ends in doubt.
	e.stopWorker()
	acts := e.app.Activities()
	pub := acts.Publisher.(*publish.Publisher)
	pub.Adapters = map[cs.Network]publish.Adapter{cs.NetworkWebhook: doubtfulOr{doubtful.ID, pub.Adapters[cs.NetworkWebhook]}, cs.NetworkLog: pub.Adapters[cs.NetworkLog]}
	w := worker.New(e.app.Temporal, acts)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}

	submit := func(account, text string) string {
		var p cs.Post
		e.must(201, e.members["Ines"].token, "POST", e.org("/posts"), map[string]any{"account_id": account, "text": text}, &p)
		return p.ID
	}
	pendingA := []string{submit(acct, "pending one"), submit(acct, "pending two")}
	stuck := submit(quickAcct.ID, "will be stuck past its deadline")
	attention := submit(doubtful.ID, "nobody knows if this went out")
	for _, id := range append(slices.Clone(pendingA), stuck) {
		e.waitPost(id, "opened step 1", atStep(1))
	}
	e.waitPost(attention, "needs attention", func(p cs.Post) bool { return p.Status == cs.PostNeedsAttention })

	// The worker dies: the quick post's 2s deadline passes with nobody to act.
	w.Stop()
	time.Sleep(3 * time.Second)
	now := time.Now().UTC().Format(time.RFC3339)

	for _, q := range []struct {
		name, query string
		want        []string
	}{
		{"waiting past its deadline", `PostStatus = "pending_approval" AND PostDeadline < "` + now + `"`, []string{stuck}},
		{"one account awaiting approval", `PostAccount = "` + acct + `" AND PostStatus = "pending_approval"`, pendingA},
		{"needs attention", `PostStatus = "needs_attention"`, []string{attention}},
		{"awaiting Maya", `PostApprovers = "` + e.members["Maya"].memberID + `"`, append(slices.Clone(pendingA), stuck)},
		{"pending on workflow version 4", `PostOrg = "` + e.orgID + `" AND TemporalChangeVersion = "one-start-marker-1" AND PostStatus = "pending_approval"`,
			append(slices.Clone(pendingA), stuck)},
		{"running on the old branch (none here)", `PostOrg = "` + e.orgID + `" AND ExecutionStatus = "Running" AND TemporalChangeVersion IS NULL`, nil},
	} {
		got := e.visible(ctx, q.query, len(q.want))
		want := make([]string, len(q.want))
		for i, id := range q.want {
			want[i] = cs.WorkflowID(id)
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s (%s):\n got %v\nwant %v", q.name, q.query, got, want)
		}
	}
}

// doubtfulOr ends in doubt for one account and delegates the others.
type doubtfulOr struct {
	account string
	next    publish.Adapter
}

func (d doubtfulOr) Publish(ctx context.Context, r publish.Request) (publish.Result, error) {
	if r.AccountID == d.account {
		return unknownOutcome{}.Publish(ctx, r)
	}
	return d.next.Publish(ctx, r)
}

// visible runs a visibility query until it returns want results (visibility
// is eventually consistent) or 20 seconds pass, and returns the sorted ids.
func (e *env) visible(ctx context.Context, query string, want int) []string {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := e.app.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err != nil {
			e.t.Fatalf("query %s: %v", query, err)
		}
		var ids []string
		for _, ex := range resp.GetExecutions() {
			ids = append(ids, ex.GetExecution().GetWorkflowId())
		}
		slices.Sort(ids)
		if len(ids) == want || time.Now().After(deadline) {
			return ids
		}
		time.Sleep(200 * time.Millisecond)
	}
}
