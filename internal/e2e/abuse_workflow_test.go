package e2e

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	cs "github.com/countersign/countersign"
)

// Abuse cases of the post workflow itself (SPEC §3 "Who may change a post",
// §8 Approvals): what reaches the workflow through Temporal, signed as the
// API signs (the key derived from the deployment's secret key) or not signed
// at all. Each asserts the attack failed and the post did not move.

func init() {
	addAbuse(
		abuseCase{Attacker: "anyone reaching Temporal", Attack: "signals an approval straight to a post's workflow",
			Spec: "§8 Approvals", Run: oneAtATime(abuseUnsignedSignal)},
		abuseCase{Attacker: "anyone reaching Temporal", Attack: "sends the decide Update with a MAC of another decision",
			Spec: "§8 Approvals", Run: oneAtATime(abuseForgedUpdate)},
		abuseCase{Attacker: "editor", Attack: "rewrites a limited member's pending post, then approves the rewrite",
			Spec: "§3 Who may change a post", Run: oneAtATime(abuseRewriterApproves)},
		abuseCase{Attacker: "editor demoted to limited", Attack: "edits their scheduled post so it publishes without approval",
			Spec: "§3 Who may change a post", Run: oneAtATime(abuseDemotedEditorEdits)},
	)
}

// workflowCases runs these cases one at a time: every deployment's worker
// polls the same task queue of the package's one Temporal namespace, so two
// deployments running posts at once would take each other's workflow tasks
// (and read the other's database).
var workflowCases sync.Mutex

func oneAtATime(run func(t *testing.T)) func(t *testing.T) {
	return func(t *testing.T) {
		workflowCases.Lock()
		t.Cleanup(workflowCases.Unlock) // registered first, so it runs after the deployment stopped
		run(t)
	}
}

// signal sends a signal to the post's workflow.
func (u *updater) signal(name string, arg any) {
	u.e.t.Helper()
	if err := u.e.app.Temporal.SignalWorkflow(context.Background(), cs.WorkflowID(u.postID), "", name, arg); err != nil {
		u.e.t.Fatal(err)
	}
}

// waitEvent waits until the post's audit log has an event of that type and
// reason, and returns the post then.
func (e *env) waitEvent(postID, typ, reason string) cs.Post {
	e.t.Helper()
	return e.waitPost(postID, typ+" "+reason+" recorded", func(p cs.Post) bool {
		return slices.ContainsFunc(p.Events, func(ev cs.PostEvent) bool { return ev.Type == typ && ev.Reason == reason })
	})
}

func abuseUnsignedSignal(t *testing.T) {
	e := newEnv(t)
	u, _ := e.submitThree("Unsigned approval")
	d := u.decision("Maya", 1, 1, u.requestID(), cs.DecisionApprove, "")
	d.MAC = ""
	u.signal(cs.SignalDecision, d)
	p := e.waitEvent(u.postID, cs.EventDecisionIgnored, cs.ReasonUnsigned)
	if p.CurrentStep != 1 || len(p.Steps[0].Approvals) != 0 || p.Status != cs.PostPendingApproval {
		t.Fatalf("an unsigned approval moved the post: step %d, approvals %d, %s", p.CurrentStep, len(p.Steps[0].Approvals), p.Status)
	}
}

func abuseForgedUpdate(t *testing.T) {
	e := newEnv(t)
	u, _ := e.submitThree("Forged approval")
	d := u.decision("Maya", 1, 1, u.requestID(), cs.DecisionApprove, "")
	d.MAC = u.decision("Maya", 1, 1, "another request", cs.DecisionApprove, "").MAC
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := u.update(ctx, cs.UpdateDecide, d)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != cs.ReasonUnsigned {
		t.Fatalf("forged decide: %v, want a refusal %s", err, cs.ReasonUnsigned)
	}
	p := e.waitEvent(u.postID, cs.EventDecisionIgnored, cs.ReasonUnsigned)
	if p.CurrentStep != 1 || len(p.Steps[0].Approvals) != 0 {
		t.Fatalf("a forged approval moved the post: step %d, approvals %d", p.CurrentStep, len(p.Steps[0].Approvals))
	}
}

// Eddie, an editor, rewrites Ines's pending post, then tries to approve his
// revision at the chain's last step (the approvers role, which he holds).
func abuseRewriterApproves(t *testing.T) {
	e := newEnv(t)
	u, _ := e.submitThree("Ines's words")
	edit := cs.EditSignal{Revision: 1, Text: "Eddie's words", By: e.members["Eddie"].memberID, Source: cs.SourceAPI, RequestID: u.requestID()}
	edit.MAC = u.signer.SignEdit(edit)
	u.signal(cs.SignalEdit, edit)
	e.waitPost(u.postID, "at revision 2", func(p cs.Post) bool { return p.Revision == 2 && atStep(1)(p) })
	u.signal(cs.SignalDecision, u.decision("Maya", 2, 1, u.requestID(), cs.DecisionApprove, ""))
	e.waitPost(u.postID, "opened step 2", atStep(2))
	u.signal(cs.SignalDecision, u.decision("Paul", 2, 2, u.requestID(), cs.DecisionApprove, ""))
	e.waitPost(u.postID, "opened step 3", atStep(3))
	u.signal(cs.SignalDecision, u.decision("Eddie", 2, 3, u.requestID(), cs.DecisionApprove, ""))
	p := e.waitEvent(u.postID, cs.EventDecisionIgnored, cs.ReasonRevisionWriter)
	if p.Status != cs.PostPendingApproval || len(p.Steps[2].Approvals) != 0 || e.hook.Count() != 0 {
		t.Fatalf("the rewriter approved his revision: %s, step 3 approvals %d", p.Status, len(p.Steps[2].Approvals))
	}
}

// Eddie, an editor, schedules a post (no approval needed), is demoted to
// limited, then replaces its text.
func abuseDemotedEditorEdits(t *testing.T) {
	e := newEnv(t)
	acct := e.setupThreeLevels()
	var post cs.Post
	e.must(201, e.members["Eddie"].token, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "Approved by nobody",
		"scheduled_at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, &post)
	e.waitPost(post.ID, "scheduled", func(p cs.Post) bool { return p.Status == cs.PostScheduled })
	e.must(200, e.owner, "PUT", e.org("/accounts/"+acct+"/permissions"), map[string]any{"grants": []map[string]any{
		{"member_id": e.members["Ines"].memberID, "level": "limited"},
		{"member_id": e.members["Eddie"].memberID, "level": "limited"},
	}}, nil)
	u := e.updater(post.ID)
	edit := cs.EditSignal{Revision: 1, Text: "Something else entirely", By: e.members["Eddie"].memberID, Source: cs.SourceAPI,
		RequestID: u.requestID()}
	edit.MAC = u.signer.SignEdit(edit)
	u.signal(cs.SignalEdit, edit)
	p := e.waitPost(post.ID, "at revision 2", func(p cs.Post) bool { return p.Revision == 2 })
	if p.Status != cs.PostPendingApproval || !atStep(1)(p) {
		t.Fatalf("the demoted editor's edit skipped approval: %s at step %d", p.Status, p.CurrentStep)
	}
}
