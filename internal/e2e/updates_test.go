package e2e

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/secrets"
	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/workflows"
)

// The post workflow's Updates driven through the Temporal client, as the API
// does (signed with the key derived from the deployment's secret key), on a
// real Temporal server: each answer is the post's new state, a validator's
// refusal adds no history event, and the signal fallback counts once. These
// tests also record the version-2 histories the replay test runs.

// updateVersion names the histories these tests record (workflow version
// 3); they are named updates_<name> beside the HTTP tests' <name>.
const updateVersion = "v3"

// updater sends a deployment's Updates and signals for one post.
type updater struct {
	e      *env
	signer *secrets.DecisionSigner
	postID string
	n      int
}

func (e *env) updater(postID string) *updater {
	e.t.Helper()
	s, err := secrets.NewDecisionSigner(e.app.Config.SecretKey)
	if err != nil {
		e.t.Fatal(err)
	}
	return &updater{e: e, signer: s, postID: postID}
}

func (u *updater) requestID() string {
	u.n++
	return u.postID + "-" + strconv.Itoa(u.n)
}

// decision is a signed approval (or, with a note, a rejection) by who.
func (u *updater) decision(who string, revision, step int, reqID, decision, note string) cs.DecisionSignal {
	d := cs.DecisionSignal{PostID: u.postID, Revision: revision, Step: step, MemberID: u.e.members[who].memberID,
		Decision: decision, Note: note, Source: cs.SourceAPI, RequestID: reqID}
	d.MAC = u.signer.Sign(d)
	return d
}

// update sends an Update and waits for its answer: the state, or the error
// (a validator's refusal or the handler's).
func (u *updater) update(ctx context.Context, name string, arg any) (cs.PostState, error) {
	var st cs.PostState
	opts := client.UpdateWorkflowOptions{WorkflowID: cs.WorkflowID(u.postID), UpdateName: name,
		WaitForStage: client.WorkflowUpdateStageCompleted}
	if arg != nil {
		opts.Args = []any{arg}
	}
	h, err := u.e.app.Temporal.UpdateWorkflow(ctx, opts)
	if err != nil {
		return st, err
	}
	return st, h.Get(ctx, &st)
}

func (u *updater) mustUpdate(name string, arg any) cs.PostState {
	u.e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := u.update(ctx, name, arg)
	if err != nil {
		u.e.t.Fatalf("update %s: %v", name, err)
	}
	return st
}

// refused sends an Update that must be refused with code, and checks that
// it added nothing to the history when the validator refused it.
func (u *updater) refused(name string, arg any, code string, byValidator bool) {
	u.e.t.Helper()
	before := u.historyLength()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := u.update(ctx, name, arg)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != code {
		u.e.t.Fatalf("update %s: got %v, want a refusal %s", name, err, code)
	}
	if after := u.historyLength(); byValidator && after != before {
		u.e.t.Fatalf("update %s refused by the validator: history grew from %d to %d events", name, before, after)
	}
}

func (u *updater) historyLength() int {
	u.e.t.Helper()
	return len(workflowHistory(u.e.t, u.e.app.Temporal, u.postID))
}

func (e *env) ids(names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, e.members[n].memberID)
	}
	slices.Sort(out)
	return out
}

// submitThree submits a post by Ines on the three-level chain and answers
// its state once step 1 is open (the Update submitted).
func (e *env) submitThree(text string) (*updater, cs.PostState) {
	e.t.Helper()
	acct := e.setupThreeLevels()
	var post cs.Post
	e.must(201, e.members["Ines"].token, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": text}, &post)
	u := e.updater(post.ID)
	st := u.mustUpdate(cs.UpdateSubmitted, nil)
	if st.Status != cs.PostPendingApproval || st.CurrentStep != 1 || !slices.Equal(st.Awaited, e.ids("Maya")) {
		e.t.Fatalf("submitted: status %s step %d awaited %v", st.Status, st.CurrentStep, st.Awaited)
	}
	return u, st
}

// TestUpdatesWalkTheChainAtOnce: each approver approves as soon as the
// previous answer came back, with no retry; every answer shows the next step
// open with who it awaits. Refusals by the validators add no history event.
func TestUpdatesWalkTheChainAtOnce(t *testing.T) {
	e := newEnv(t)
	u, _ := e.submitThree("Updates all the way")
	approve := cs.DecisionApprove

	u.refused(cs.UpdateDecide, u.decision("Ines", 1, 1, u.requestID(), approve, ""), cs.ReasonAuthor, true)
	u.refused(cs.UpdateDecide, u.decision("Pat", 1, 1, u.requestID(), approve, ""), cs.ReasonNotAwaited, true)
	u.refused(cs.UpdateDecide, u.decision("Maya", 1, 2, u.requestID(), approve, ""), cs.ReasonWrongStep, true)
	unsigned := u.decision("Maya", 1, 1, u.requestID(), approve, "")
	unsigned.MAC = ""
	u.refused(cs.UpdateDecide, unsigned, cs.ReasonUnsigned, false)

	st := u.mustUpdate(cs.UpdateDecide, u.decision("Maya", 1, 1, u.requestID(), approve, ""))
	if st.CurrentStep != 2 || st.Steps[1].Status != cs.StepOpen || !slices.Equal(st.Awaited, e.ids("Pat", "Paul")) {
		t.Fatalf("after step 1: step %d %v awaited %v", st.CurrentStep, st.Steps[1].Status, st.Awaited)
	}
	st = u.mustUpdate(cs.UpdateDecide, u.decision("Paul", 1, 2, u.requestID(), approve, ""))
	if st.CurrentStep != 3 || !slices.Contains(st.Awaited, e.members["Eddie"].memberID) ||
		slices.Contains(st.Awaited, e.members["Maya"].memberID) || slices.Contains(st.Awaited, e.members["Ines"].memberID) {
		t.Fatalf("after step 2: step %d awaited %v", st.CurrentStep, st.Awaited)
	}
	st = u.mustUpdate(cs.UpdateDecide, u.decision("Eddie", 1, 3, u.requestID(), approve, ""))
	if st.Status != cs.PostPublishing && st.Status != cs.PostPublished {
		t.Fatalf("after step 3: %s", st.Status)
	}
	done := e.waitPost(u.postID, "published", func(p cs.Post) bool { return p.Status == cs.PostPublished })
	if got := e.hook.Count(); got != 1 {
		t.Fatalf("deliveries = %d, want exactly 1", got)
	}
	var ignored []string
	for _, ev := range done.Events {
		if ev.Type == cs.EventDecisionIgnored {
			ignored = append(ignored, ev.Reason)
		}
	}
	if !slices.Equal(ignored, []string{cs.ReasonUnsigned}) {
		t.Fatalf("ignored decisions recorded: %v, want only the unsigned one", ignored)
	}
	recordUpdateHistory(t, e, u.postID, "three_levels_published")
}

// TestUpdateFallbackWithoutWorkerCountsOnce: with no worker the Update times
// out, the signal with the same request id follows (the API's fallback), and
// once a worker is back the approval counts once.
func TestUpdateFallbackWithoutWorkerCountsOnce(t *testing.T) {
	e := newEnv(t)
	u, _ := e.submitThree("Restart-proof, with Updates")
	u.mustUpdate(cs.UpdateDecide, u.decision("Maya", 1, 1, u.requestID(), cs.DecisionApprove, ""))

	e.stopWorker()
	pat := u.decision("Pat", 1, 2, u.requestID(), cs.DecisionApprove, "")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_, err := u.update(ctx, cs.UpdateDecide, pat)
	cancel()
	if err == nil {
		t.Fatal("an Update was answered with no worker running")
	}
	if err := e.app.Temporal.SignalWorkflow(context.Background(), cs.WorkflowID(u.postID), "", cs.SignalDecision, pat); err != nil {
		t.Fatal(err)
	}
	e.startWorker()
	p := e.waitPost(u.postID, "opened step 3", atStep(3))
	if n := len(p.Steps[1].Approvals); n != 1 {
		t.Fatalf("step 2 approvals = %d, want 1", n)
	}
	u.mustUpdate(cs.UpdateDecide, u.decision("Eddie", 1, 3, u.requestID(), cs.DecisionApprove, ""))
	e.waitPost(u.postID, "published", func(p cs.Post) bool { return p.Status == cs.PostPublished })
	if got := e.hook.Count(); got != 1 {
		t.Fatalf("deliveries = %d, want exactly 1", got)
	}
	recordUpdateHistory(t, e, u.postID, "worker_restart_published")
}

// TestUpdatesRejectEditCancel: a rejection by Update, the author's signed
// edit restarting the chain (answered at step 1 of revision 2), a stale
// decision refused without history, and a cancel.
func TestUpdatesRejectEditCancel(t *testing.T) {
	e := newEnv(t)
	u, _ := e.submitThree("First try")
	u.mustUpdate(cs.UpdateDecide, u.decision("Maya", 1, 1, u.requestID(), cs.DecisionApprove, ""))
	u.refused(cs.UpdateDecide, u.decision("Pat", 1, 2, u.requestID(), cs.DecisionReject, ""), cs.ReasonNoteRequired, true)
	st := u.mustUpdate(cs.UpdateDecide, u.decision("Pat", 1, 2, u.requestID(), cs.DecisionReject, "off-brand"))
	if st.Status != cs.PostRejected {
		t.Fatalf("after the rejection: %s", st.Status)
	}
	edit := cs.EditSignal{Revision: 1, Text: "Second try, on brand", By: e.members["Ines"].memberID, Source: cs.SourceAPI,
		RequestID: u.requestID()}
	edit.MAC = u.signer.SignEdit(edit)
	st = u.mustUpdate(cs.UpdateEdit, edit)
	if st.Revision != 2 || st.Status != cs.PostPendingApproval || st.CurrentStep != 1 || st.Text != edit.Text {
		t.Fatalf("after the edit: revision %d %s step %d", st.Revision, st.Status, st.CurrentStep)
	}
	u.refused(cs.UpdateEdit, edit, cs.ReasonDuplicateRequest, true)
	u.refused(cs.UpdateDecide, u.decision("Maya", 1, 1, u.requestID(), cs.DecisionApprove, ""), cs.ReasonStaleRevision, true)
	st = u.mustUpdate(cs.UpdateCancel, cs.CancelSignal{By: e.members["Ines"].memberID, Reason: "not needed", Source: cs.SourceAPI,
		Revision: 2, RequestID: u.requestID()})
	if st.Status != cs.PostCanceled {
		t.Fatalf("after the cancel: %s", st.Status)
	}
	e.waitPost(u.postID, "canceled", func(p cs.Post) bool { return p.Status == cs.PostCanceled })
	if e.hook.Count() != 0 {
		t.Fatal("a canceled post was delivered")
	}
	recordUpdateHistory(t, e, u.postID, "reject_edit_cancel")
}

// recordUpdateHistory writes the workflow's history as updates_name.v3.json
// into workflows/testdata when COUNTERSIGN_RECORD_HISTORIES=1 (like
// recordHistory; these tests send their Updates through the client).
func recordUpdateHistory(t *testing.T, e *env, postID, name string) {
	writeHistory(t, e.app.Temporal, postID, "updates_"+name+"."+updateVersion)
}

// TestContinuedPostPublishesOnce: a post whose workflow continued as new (a
// flood of stale decisions; the test bound InputsPerRun stands for
// Temporal's suggestion) answers the state query and the visibility filters
// as before, takes its approvals and publishes exactly once, with one
// unbroken audit log.
func TestContinuedPostPublishesOnce(t *testing.T) {
	e := newEnv(t)
	acct := e.setupThreeLevels()
	ctx := context.Background()
	chain := cs.Chain{Name: "Two", LatePolicy: cs.LateExpire, DistinctApprovers: true, Steps: []cs.ChainStep{
		{Approver: cs.Approver{Member: e.members["Maya"].memberID}},
		{Approver: cs.Approver{Role: cs.ApproverRoleApprovers}},
	}}
	np := store.NewPost{OrgID: e.orgID, AccountID: acct, AuthorID: e.members["Ines"].memberID, Text: "Flooded but fine",
		Chain: chain, NeedsApproval: true}
	post, _, err := e.app.Store.CreatePost(ctx, np)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.app.Store.MarkPostStarted(ctx, post.ID); err != nil {
		t.Fatal(err)
	}
	in := workflows.PostInput{PostID: post.ID, OrgID: e.orgID, AccountID: acct, AuthorID: np.AuthorID, Revision: 1,
		Text: np.Text, Chain: chain, NeedsApproval: true, InputsPerRun: 3}
	run, err := e.app.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: cs.WorkflowID(post.ID), TaskQueue: cs.TaskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SAOrg.ValueSet(e.orgID), workflows.SAAccount.ValueSet(acct),
			workflows.SAAuthor.ValueSet(np.AuthorID), workflows.SAStatus.ValueSet(string(cs.PostPendingApproval)))}, cs.WorkflowType, in)
	if err != nil {
		t.Fatal(err)
	}
	u := e.updater(post.ID)
	u.mustUpdate(cs.UpdateSubmitted, nil)
	for range 3 { // stale: ignored, each one input
		u.signal(cs.SignalDecision, u.decision("Maya", 9, 1, u.requestID(), cs.DecisionApprove, ""))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := e.app.Temporal.DescribeWorkflowExecution(ctx, cs.WorkflowID(post.ID), "")
		if err != nil {
			t.Fatal(err)
		}
		if d.GetWorkflowExecutionInfo().GetExecution().GetRunId() != run.GetRunID() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the workflow never continued as new")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The query and the visibility filters answer as before.
	v, err := e.app.Temporal.QueryWorkflow(ctx, cs.WorkflowID(post.ID), "", cs.QueryState)
	if err != nil {
		t.Fatal(err)
	}
	var st cs.PostState
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	if st.Status != cs.PostPendingApproval || st.CurrentStep != 1 || !slices.Equal(st.Awaited, e.ids("Maya")) {
		t.Fatalf("state after continuing: %s step %d awaited %v", st.Status, st.CurrentStep, st.Awaited)
	}
	query := `WorkflowId = '` + cs.WorkflowID(post.ID) + `' AND ExecutionStatus = 'Running' AND PostOrg = '` + e.orgID +
		`' AND PostStatus = 'pending_approval' AND PostStep = 1 AND PostApprovers = '` + e.members["Maya"].memberID + `'`
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := e.app.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetExecutions()) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("visibility does not find the continued run with %s", query)
		}
	}

	u.mustUpdate(cs.UpdateDecide, u.decision("Maya", 1, 1, u.requestID(), cs.DecisionApprove, ""))
	u.mustUpdate(cs.UpdateDecide, u.decision("Eddie", 1, 2, u.requestID(), cs.DecisionApprove, ""))
	done := e.waitPost(post.ID, "published", func(p cs.Post) bool { return p.Status == cs.PostPublished })
	if got := e.hook.Count(); got != 1 {
		t.Fatalf("deliveries = %d, want exactly 1", got)
	}
	for i, ev := range done.Events {
		if ev.Seq != i+1 {
			t.Fatalf("audit log broken at %d: %+v", i, ev)
		}
	}
}
