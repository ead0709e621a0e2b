package e2e

import (
	"context"
	"slices"
	"sort"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"

	cs "github.com/countersign/countersign"
)

// The API answers with the truth (SPEC §3 item 4, "One authority"): every
// decision and change is a Workflow Update, answered with the post's new
// state or the workflow's own refusal.

// TestApproveAtOnce: right after submitting, step 1's approver approves, and
// right after that step 2's: no retry, each answer 200 showing the next step
// open with its eligible approvers. The reads that follow an answer (GET
// /approvals and GET /posts/{id}, both from PostgreSQL) already show it: the
// workflow stores a transition before it answers, and the API writes nothing
// of its own.
func TestApproveAtOnce(t *testing.T) {
	e := newEnv(t)
	acct := e.setupThreeLevels()
	maya, pat, paul, eddie := e.members["Maya"], e.members["Pat"], e.members["Paul"], e.members["Eddie"]

	var post cs.Post
	e.must(201, e.members["Ines"].token, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "No waiting"}, &post)
	if post.Status != cs.PostPendingApproval || !atStep(1)(post) || !slices.Equal(post.Steps[0].Eligible, []string{maya.memberID}) ||
		!slices.Equal(post.Awaited, []string{maya.memberID}) {
		t.Fatalf("the 201 does not show step 1 open for Maya: status %s, step %d, steps %+v, awaited %v",
			post.Status, post.CurrentStep, post.Steps, post.Awaited)
	}

	// readsShow checks that the next approver's list and the post already
	// show what the answer said, read once, without waiting.
	readsShow := func(after string, step int, next string) {
		t.Helper()
		if next != "" && !slices.Contains(e.approvals(next), post.ID) {
			t.Fatalf("right after %s, GET /approvals does not show %s the post", after, next)
		}
		var got cs.Post
		e.must(200, e.owner, "GET", e.org("/posts/"+post.ID), nil, &got)
		if got.CurrentStep != step {
			t.Fatalf("right after %s, GET /posts/{id} shows step %d, want %d", after, got.CurrentStep, step)
		}
	}
	readsShow("the 201", 1, "Maya")

	p := e.approve("Maya", post.ID, 1)
	readsShow("Maya's answer", 2, "Pat")
	if !atStep(2)(p) || !sameSet(p.Steps[1].Eligible, []string{pat.memberID, paul.memberID}) || p.Steps[0].Status != cs.StepApproved {
		t.Fatalf("Maya's answer does not show step 2 open for Pat and Paul: step %d, steps %+v", p.CurrentStep, p.Steps)
	}
	p = e.approve("Paul", post.ID, 1)
	readsShow("Paul's answer", 3, "Eddie")
	if !atStep(3)(p) || !slices.Contains(p.Steps[2].Eligible, eddie.memberID) || !slices.Contains(p.Awaited, eddie.memberID) {
		t.Fatalf("Paul's answer does not show step 3 open for Eddie: step %d, steps %+v, awaited %v", p.CurrentStep, p.Steps, p.Awaited)
	}
	p = e.approve("Eddie", post.ID, 1)
	if p.Status != cs.PostScheduled && p.Status != cs.PostPublishing && p.Status != cs.PostPublished {
		t.Fatalf("Eddie's answer shows %s, want scheduled (or on its way)", p.Status)
	}
	e.waitPost(post.ID, "published", func(p cs.Post) bool { return p.Status == cs.PostPublished })

	// Deciding again is answered with the workflow's reason, not a guess.
	var prob struct{ Code, Detail string }
	if code := e.do(maya.token, "POST", e.org("/posts/"+post.ID+"/approve"), map[string]any{"revision": 1}, &prob); code != 409 || prob.Code != cs.ReasonTooLate {
		t.Fatalf("approving a published post: %d %+v, want 409 %s", code, prob, cs.ReasonTooLate)
	}
}

// TestDemotedEditorsEditNeedsApproval: an editor's own post needs no
// approval; once demoted to limited, their edit of it does (their right at
// the time of the edit counts).
func TestDemotedEditorsEditNeedsApproval(t *testing.T) {
	e := newEnv(t)
	acct := e.setupThreeLevels()
	eddie := e.members["Eddie"]
	var post cs.Post
	at := time.Now().Add(time.Hour).Format(time.RFC3339)
	e.must(201, eddie.token, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "Direct", "scheduled_at": at}, &post)
	if post.Status != cs.PostScheduled {
		t.Fatalf("an editor's post: %s, want scheduled", post.Status)
	}
	e.must(200, e.owner, "PUT", e.org("/accounts/"+acct+"/permissions"), map[string]any{"grants": []map[string]any{
		{"member_id": e.members["Ines"].memberID, "level": "limited"},
		{"member_id": eddie.memberID, "level": "limited"},
	}}, nil)
	var edited cs.Post
	e.must(200, eddie.token, "PATCH", e.org("/posts/"+post.ID), map[string]any{"revision": 1, "text": "Direct, then demoted"}, &edited)
	if edited.Status != cs.PostPendingApproval || edited.Revision != 2 || !atStep(1)(edited) {
		t.Fatalf("a demoted editor's edit: %s, revision %d, step %d; want pending approval at step 1 of revision 2",
			edited.Status, edited.Revision, edited.CurrentStep)
	}
}

// TestRewriterCannotApprove: an editor who rewrote a limited member's post
// cannot approve the rewrite at the step that awaits their role, is not
// awaited, and does not see it in GET /approvals.
func TestRewriterCannotApprove(t *testing.T) {
	e := newEnv(t)
	acct := e.setupThreeLevels()
	eddie := e.members["Eddie"]
	var post cs.Post
	e.must(201, e.members["Ines"].token, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "Intern's draft"}, &post)
	var edited cs.Post
	e.must(200, eddie.token, "PATCH", e.org("/posts/"+post.ID), map[string]any{"revision": 1, "text": "Editor's rewrite"}, &edited)
	if edited.Revision != 2 || !atStep(1)(edited) {
		t.Fatalf("the rewrite's answer: revision %d, step %d", edited.Revision, edited.CurrentStep)
	}
	e.approve("Maya", post.ID, 2)
	p := e.approve("Pat", post.ID, 2)
	if !atStep(3)(p) || slices.Contains(p.Awaited, eddie.memberID) {
		t.Fatalf("step 3 open without the rewriter awaited: step %d, awaited %v", p.CurrentStep, p.Awaited)
	}
	var prob struct{ Code, Detail string }
	if code := e.do(eddie.token, "POST", e.org("/posts/"+post.ID+"/approve"), map[string]any{"revision": 2}, &prob); code != 403 || prob.Code != cs.ReasonRevisionWriter {
		t.Fatalf("the rewriter approving their rewrite: %d %+v, want 403 %s", code, prob, cs.ReasonRevisionWriter)
	}
	var list struct{ Items []cs.Post }
	e.must(200, eddie.token, "GET", e.org("/approvals"), nil, &list)
	if len(list.Items) != 0 {
		t.Fatalf("the rewriter's approvals list the rewrite: %d posts", len(list.Items))
	}
	e.must(200, e.owner, "GET", e.org("/posts/"+post.ID), nil, &p)
	if p.Status != cs.PostPendingApproval || p.CurrentStep != 3 || len(p.Steps[2].Approvals) != 0 {
		t.Fatalf("the refused approval changed the post: %s step %d %+v", p.Status, p.CurrentStep, p.Steps[2].Approvals)
	}
}

// TestApprovalsAgreeWithPostApprovers: for an author who is also an eligible
// approver, GET /approvals, the post's awaited list and the PostApprovers
// search attribute name the same members: the workflow computed them once.
func TestApprovalsAgreeWithPostApprovers(t *testing.T) {
	e := newEnv(t)
	acct := e.setupThreeLevels()
	// Every post needs approval, by anyone who may approve: Eddie (editor)
	// and the owner; Eddie is the author.
	var chain struct{ ID string }
	e.must(201, e.owner, "POST", e.org("/approval-chains"), map[string]any{
		"name": "All", "late_policy": "expire", "require_approval_for_all": true, "distinct_approvers": true,
		"steps": []map[string]any{{"approver": map[string]string{"role": "approvers"}}}}, &chain)
	e.must(200, e.owner, "PATCH", e.org("/accounts/"+acct), map[string]any{"approval_chain_id": chain.ID}, nil)
	eddie := e.members["Eddie"]
	var post cs.Post
	e.must(201, eddie.token, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "Mine, approved by others"}, &post)
	if post.Status != cs.PostPendingApproval || !atStep(1)(post) {
		t.Fatalf("submitted: %s step %d", post.Status, post.CurrentStep)
	}
	if !slices.Contains(post.Steps[0].Eligible, eddie.memberID) {
		t.Fatalf("the author should be among the role's eligible members: %v", post.Steps[0].Eligible)
	}
	if slices.Contains(post.Awaited, eddie.memberID) || len(post.Awaited) == 0 {
		t.Fatalf("awaited %v: want the eligible members but the author", post.Awaited)
	}

	// PostApprovers, read from Temporal.
	desc, err := e.app.Temporal.DescribeWorkflowExecution(context.Background(), cs.WorkflowID(post.ID), "")
	if err != nil {
		t.Fatal(err)
	}
	var sa []string
	if pl := desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()["PostApprovers"]; pl != nil {
		if err := converter.GetDefaultDataConverter().FromPayload(pl, &sa); err != nil {
			t.Fatal(err)
		}
	}
	if !sameSet(sa, post.Awaited) {
		t.Fatalf("PostApprovers %v, awaited %v", sa, post.Awaited)
	}
	// GET /approvals of every member lists the post exactly when awaited.
	everyone := map[string]string{"Olivia": e.owner}
	for name, m := range e.members {
		everyone[name] = m.token
	}
	for name, token := range everyone {
		var me struct {
			Memberships []struct {
				OrgID string `json:"org_id"`
				ID    string `json:"id"`
			}
		}
		e.must(200, token, "GET", "/v1/me", nil, &me)
		id := ""
		for _, m := range me.Memberships {
			if m.OrgID == e.orgID {
				id = m.ID
			}
		}
		var list struct{ Items []cs.Post }
		e.must(200, token, "GET", e.org("/approvals"), nil, &list)
		listed := slices.ContainsFunc(list.Items, func(p cs.Post) bool { return p.ID == post.ID })
		if listed != slices.Contains(sa, id) {
			t.Errorf("%s (%s): listed in /approvals %v, in PostApprovers %v", name, id, listed, slices.Contains(sa, id))
		}
	}
	if code := e.do(eddie.token, "POST", e.org("/posts/"+post.ID+"/approve"), map[string]any{"revision": 1}, nil); code != 403 {
		t.Fatalf("the author approving: %d, want 403", code)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

// TestPatchTextAndTimeIsOneUpdate: a PATCH that changes both text and time
// is one Update (one change in the history, applied whole), answered 200
// with the new revision at its new time.
func TestPatchTextAndTimeIsOneUpdate(t *testing.T) {
	e := newEnv(t)
	acct := e.setupThreeLevels()
	var post cs.Post
	e.must(201, e.members["Ines"].token, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "First words",
		"scheduled_at": time.Now().Add(time.Hour).Format(time.RFC3339)}, &post)
	updatesBefore := e.updateCount(post.ID)
	later := time.Now().Add(3 * time.Hour).Truncate(time.Second)
	var edited cs.Post
	e.must(200, e.members["Ines"].token, "PATCH", e.org("/posts/"+post.ID), map[string]any{"revision": 1,
		"text": "Better words", "scheduled_at": later.Format(time.RFC3339)}, &edited)
	if edited.Revision != 2 || edited.Text != "Better words" || edited.ScheduledAt == nil || !edited.ScheduledAt.Equal(later) || !atStep(1)(edited) {
		t.Fatalf("PATCH answer: revision %d, text %q, scheduled_at %v, step %d; want revision 2 at %v, step 1 open",
			edited.Revision, edited.Text, edited.ScheduledAt, edited.CurrentStep, later)
	}
	if got := e.updateCount(post.ID) - updatesBefore; got != 1 {
		t.Fatalf("the PATCH made %d accepted Updates, want 1", got)
	}
}

// updateCount is the number of accepted Updates in the post's history.
func (e *env) updateCount(postID string) int {
	e.t.Helper()
	n := 0
	for _, ev := range workflowHistory(e.t, e.app.Temporal, postID) {
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED {
			n++
		}
	}
	return n
}
