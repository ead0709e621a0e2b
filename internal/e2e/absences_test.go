package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
)

// Absences with delegates and directory changes reaching open steps (SPEC §2
// Member), through the API against the real stack (people_env_test.go).

// TestAbsenceDelegateApprovesOnBehalf: Maya goes away with Eddie as her
// delegate while step 1 (hers) is open; Eddie sees it in /approvals, approves
// on her behalf, and the decision is recorded so; ending the absence takes
// him off the next post's step.
func TestAbsenceDelegateApprovesOnBehalf(t *testing.T) {
	e := newPeopleEnv(t)
	maya, eddie := e.members["Maya"], e.members["Eddie"]
	p := e.submit("While Maya is away")

	// Bad absences: 422 naming the field, nothing written.
	for field, body := range map[string]map[string]any{
		"until":              {"from": time.Now().Format(time.RFC3339), "until": time.Now().Add(-time.Hour).Format(time.RFC3339), "delegate_member_id": eddie.memberID},
		"delegate_member_id": absence(maya.memberID),
	} {
		var prob struct {
			Code   string
			Errors []struct{ Field string }
		}
		if code := e.do(maya.token, "PUT", e.org("/members/"+maya.memberID+"/absence"), body, &prob); code != 422 ||
			len(prob.Errors) == 0 || prob.Errors[0].Field != field {
			t.Fatalf("bad %s: %d %+v", field, code, prob)
		}
	}
	var m struct {
		Absence *cs.Absence `json:"absence"`
	}
	e.must(200, maya.token, "PUT", e.org("/members/"+maya.memberID+"/absence"), absence(eddie.memberID), &m)
	if m.Absence == nil || m.Absence.DelegateMemberID != eddie.memberID {
		t.Fatalf("the member does not show the absence: %+v", m)
	}
	e.must(200, e.owner, "GET", e.org("/members/"+maya.memberID), nil, &m)
	if m.Absence == nil {
		t.Fatal("GET member does not show the absence")
	}
	if n := e.count(`SELECT count(*) FROM org_audit WHERE org_id = $1 AND object_id = $2 AND action = 'absence_set'`, e.orgID, maya.memberID); n != 1 {
		t.Fatalf("%d audit rows for the absence", n)
	}

	e.awaits(p.ID, "Maya", "Eddie")
	if got := e.approvals("Eddie"); !slices.Contains(got, p.ID) {
		t.Fatalf("GET /approvals does not show the delegate the post: %v", got)
	}
	after := e.approve("Eddie", p.ID, 1)
	if after.CurrentStep != 2 || after.Steps[0].Approvals[0].OnBehalfOf != maya.memberID {
		t.Fatalf("the delegate's approval: step %d, approvals %+v", after.CurrentStep, after.Steps[0].Approvals)
	}
	full := e.waitEvent(p.ID, cs.EventDecisionCounted, "")
	if !slices.ContainsFunc(full.Events, func(ev cs.PostEvent) bool {
		return ev.Type == cs.EventDecisionCounted && ev.Actor == eddie.memberID && ev.OnBehalfOf == maya.memberID
	}) {
		t.Fatalf("no decision_counted event on behalf of Maya: %+v", full.Events)
	}

	// The absence ends: a new post's step 1 awaits Maya alone again, and
	// Eddie is refused.
	e.must(204, maya.token, "DELETE", e.org("/members/"+maya.memberID+"/absence"), nil, nil)
	q := e.submit("Maya is back")
	e.awaits(q.ID, "Maya")
	if code := e.do(eddie.token, "POST", e.org("/posts/"+q.ID+"/approve"), map[string]any{"revision": 1}, nil); code != 403 {
		t.Fatalf("the former delegate approving: %d", code)
	}
	recordDirectoryHistory(t, e.env, p.ID)
}

// recordDirectoryHistory records a history with a delegate's decision for the
// replay tests (COUNTERSIGN_RECORD_HISTORIES=1): the post is finished first.
func recordDirectoryHistory(t *testing.T, e *env, postID string) {
	e.approve("Pat", postID, 1)
	e.waitPost(postID, "at step 3", atStep(3))
	// Eddie approved step 1 for Maya: distinct approvers keep him out of
	// step 3; the owner (an approver on every account) signs it.
	e.must(200, e.owner, "POST", e.org("/posts/"+postID+"/approve"), map[string]any{"revision": 1}, nil)
	e.waitPost(postID, "published", func(p cs.Post) bool { return p.Status == cs.PostPublished })
	writeHistory(t, e.app.Temporal, postID, "absence_delegate.directory")
}

// TestDirectoryChangesReachOpenSteps: removing team members, a grant change
// and removing a member each re-resolve the open step; a step no one left
// can satisfy is reported at once, and satisfiable again when someone joins.
func TestDirectoryChangesReachOpenSteps(t *testing.T) {
	e := newPeopleEnv(t)
	p := e.submit("Directory changes")
	e.approve("Maya", p.ID, 1)
	e.awaits(p.ID, "Pat", "Paul")
	var teams struct {
		Items []struct{ ID, Name string }
	}
	e.must(200, e.owner, "GET", e.org("/teams"), nil, &teams)
	pr := teams.Items[0].ID

	e.must(204, e.owner, "DELETE", e.org("/teams/"+pr+"/members/"+e.members["Pat"].memberID), nil, nil)
	e.awaits(p.ID, "Paul")
	e.must(204, e.owner, "DELETE", e.org("/teams/"+pr+"/members/"+e.members["Paul"].memberID), nil, nil)
	blocked := e.awaits(p.ID)
	if blocked.Steps[1].Unsatisfiable == "" {
		t.Fatalf("the step no one can satisfy is not reported: %+v", blocked.Steps[1])
	}
	if desc := e.describe(p.ID); desc.approvers != nil || !strings.Contains(desc.details, "Cannot be satisfied") {
		t.Fatalf("Temporal shows PostApprovers %v, details %q", desc.approvers, desc.details)
	}
	// The operators' query for posts no one left can approve (README).
	q := `PostOrg = "` + e.orgID + `" AND PostStatus = "pending_approval" AND PostApprovers IS NULL`
	if got := e.visible(context.Background(), q, 1); !slices.Equal(got, []string{cs.WorkflowID(p.ID)}) {
		t.Fatalf("%s found %v", q, got)
	}
	if code := e.do(e.members["Pat"].token, "POST", e.org("/posts/"+p.ID+"/approve"), map[string]any{"revision": 1}, nil); code != 403 {
		t.Fatalf("a removed team member approving: %d", code)
	}
	// Paul is back: the step can be satisfied again.
	e.must(200, e.owner, "PUT", e.org("/teams/"+pr+"/members/"+e.members["Paul"].memberID), map[string]any{"role": "member"}, nil)
	e.awaits(p.ID, "Paul")
	e.approve("Paul", p.ID, 1)
	// Step 3 (approvers role): Eddie (editor grant) and Olivia (owner).
	st := e.waitPost(p.ID, "at step 3", atStep(3))
	if !slices.Contains(st.Awaited, e.members["Eddie"].memberID) {
		t.Fatalf("step 3 awaits %v", st.Awaited)
	}
	// A grant change: Eddie loses his editor grant.
	e.must(200, e.owner, "PUT", e.org("/accounts/"+e.acct+"/permissions"), map[string]any{"grants": []map[string]any{
		{"member_id": e.members["Ines"].memberID, "level": "limited"}}}, nil)
	e.waitPost(p.ID, "without Eddie", func(p cs.Post) bool { return !slices.Contains(p.Awaited, e.members["Eddie"].memberID) })
	if got := e.approvals("Eddie"); slices.Contains(got, p.ID) {
		t.Fatal("GET /approvals still shows Eddie the post")
	}
	// A role change: Pat becomes an admin, who approves on every account.
	e.must(200, e.owner, "PATCH", e.org("/members/"+e.members["Pat"].memberID), map[string]any{"org_role": "admin"}, nil)
	e.waitPost(p.ID, "awaiting Pat", func(p cs.Post) bool { return slices.Contains(p.Awaited, e.members["Pat"].memberID) })
	if got := e.approvals("Pat"); !slices.Contains(got, p.ID) {
		t.Fatal("GET /approvals does not show the new admin the post")
	}
	e.approve("Pat", p.ID, 1)
	e.waitPost(p.ID, "published", func(p cs.Post) bool { return p.Status == cs.PostPublished })
}
