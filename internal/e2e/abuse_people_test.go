package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
)

// Abuse cases of absences and directory changes (SPEC §2 Member, §3 item 4,
// §8 Approvals). Each asserts the attack failed and nothing changed.

func init() {
	addAbuse(
		abuseCase{Attacker: "member", Attack: "sets an absence for a colleague, naming themself as delegate",
			Spec: "§2 Member", Run: oneAtATime(abuseAbsenceForColleague)},
		abuseCase{Attacker: "member", Attack: "names a member of another org as their delegate",
			Spec: "§2 Member", Run: oneAtATime(abuseForeignDelegate)},
		abuseCase{Attacker: "the author's delegate", Attack: "approves the author's post on the author's behalf",
			Spec: "§8 Approvals", Run: oneAtATime(abuseAuthorsDelegate)},
		abuseCase{Attacker: "a delegate's delegate", Attack: "approves for the first absent member (delegation chained)",
			Spec: "§2 Member", Run: oneAtATime(abuseChainedDelegate)},
		abuseCase{Attacker: "removed member", Attack: "approves an open step after removal, by API and by a signed signal straight to Temporal",
			Spec: "§2 Member", Run: oneAtATime(abuseRemovedMemberApproves)},
		abuseCase{Attacker: "anyone reaching Temporal", Attack: "sends a forged directory_changed payload bringing back a removed member and adding another",
			Spec: "§8 Approvals", Run: oneAtATime(abuseForgedDirectoryChange)},
	)
}

// nothingApproved fails unless the post is still at step 1 with no approval.
func nothingApproved(t *testing.T, e *peopleEnv, postID string) {
	t.Helper()
	var p cs.Post
	e.must(200, e.owner, "GET", e.org("/posts/"+postID), nil, &p)
	if p.Status != cs.PostPendingApproval || p.CurrentStep != 1 || len(p.Steps[0].Approvals) != 0 {
		t.Fatalf("the post moved: %s step %d approvals %v", p.Status, p.CurrentStep, p.Steps[0].Approvals)
	}
}

func (e *peopleEnv) absences() int {
	return e.count(`SELECT count(*) FROM member_absences`)
}

func abuseAbsenceForColleague(t *testing.T) {
	e := newPeopleEnv(t)
	pat, maya := e.members["Pat"], e.members["Maya"]
	var prob struct{ Code string }
	code := e.do(pat.token, "PUT", e.org("/members/"+maya.memberID+"/absence"), absence(pat.memberID), &prob)
	if code != 403 || prob.Code != cs.EFORBIDDEN {
		t.Fatalf("Pat setting Maya's absence: %d %s", code, prob.Code)
	}
	if code := e.do(pat.token, "DELETE", e.org("/members/"+maya.memberID+"/absence"), nil, nil); code != 403 {
		t.Fatalf("Pat ending Maya's absence: %d", code)
	}
	if n := e.absences(); n != 0 {
		t.Fatalf("%d absences written", n)
	}
}

func abuseForeignDelegate(t *testing.T) {
	e := newPeopleEnv(t)
	maya := e.members["Maya"]
	var prob struct {
		Code   string
		Errors []struct{ Field string }
	}
	code := e.do(maya.token, "PUT", e.org("/members/"+maya.memberID+"/absence"), absence(e.outsider.memberID), &prob)
	if code != 422 || len(prob.Errors) == 0 || prob.Errors[0].Field != "delegate_member_id" {
		t.Fatalf("a delegate of another org: %d %+v", code, prob)
	}
	if n := e.absences(); n != 0 {
		t.Fatalf("%d absences written", n)
	}
}

func abuseAuthorsDelegate(t *testing.T) {
	e := newPeopleEnv(t)
	ines, pat := e.members["Ines"], e.members["Pat"]
	p := e.submit("Ines is away")
	e.must(200, ines.token, "PUT", e.org("/members/"+ines.memberID+"/absence"), absence(pat.memberID), nil)
	time.Sleep(time.Second) // the directory change reaches the post
	var prob struct{ Code string }
	if code := e.do(pat.token, "POST", e.org("/posts/"+p.ID+"/approve"), map[string]any{"revision": 1}, &prob); code != 403 {
		t.Fatalf("the author's delegate approving: %d %s", code, prob.Code)
	}
	e.awaits(p.ID, "Maya")
	nothingApproved(t, e, p.ID)
}

func abuseChainedDelegate(t *testing.T) {
	e := newPeopleEnv(t)
	maya, pat, paul := e.members["Maya"], e.members["Pat"], e.members["Paul"]
	p := e.submit("Maya and Pat are away")
	e.must(200, maya.token, "PUT", e.org("/members/"+maya.memberID+"/absence"), absence(pat.memberID), nil)
	e.must(200, pat.token, "PUT", e.org("/members/"+pat.memberID+"/absence"), absence(paul.memberID), nil)
	e.awaits(p.ID, "Maya", "Pat")
	var prob struct{ Code string }
	if code := e.do(paul.token, "POST", e.org("/posts/"+p.ID+"/approve"), map[string]any{"revision": 1}, &prob); code != 403 {
		t.Fatalf("a delegate's delegate approving: %d %s", code, prob.Code)
	}
	nothingApproved(t, e, p.ID)
}

func abuseRemovedMemberApproves(t *testing.T) {
	e := newPeopleEnv(t)
	maya := e.members["Maya"]
	p := e.submit("Maya leaves")
	e.must(204, e.owner, "DELETE", e.org("/members/"+maya.memberID), nil, nil)
	// The open step no longer shows her anywhere.
	e.awaits(p.ID)
	if d := e.describe(p.ID); len(d.approvers) != 0 {
		t.Fatalf("PostApprovers still lists %v", d.approvers)
	}
	if code := e.do(maya.token, "POST", e.org("/posts/"+p.ID+"/approve"), map[string]any{"revision": 1}, nil); code < 400 {
		t.Fatalf("a removed member approving through the API: %d", code)
	}
	// A decision signed as the API would have signed it, sent straight to Temporal.
	u := e.updater(p.ID)
	u.signal(cs.SignalDecision, u.decision("Maya", 1, 1, u.requestID(), cs.DecisionApprove, ""))
	e.waitEvent(p.ID, cs.EventDecisionIgnored, cs.ReasonNotAuthorized)
	nothingApproved(t, e, p.ID)
}

func abuseForgedDirectoryChange(t *testing.T) {
	e := newPeopleEnv(t)
	maya, paul := e.members["Maya"], e.members["Paul"]
	p := e.submit("Forged directory change")
	// Maya leaves; the payload tries to bring her back and add Paul.
	e.must(204, e.owner, "DELETE", e.org("/members/"+maya.memberID), nil, nil)
	forged := map[string]any{"reason": "admin said so", "member_ids": []string{maya.memberID, paul.memberID},
		"eligible": []string{maya.memberID, paul.memberID}, "awaited": []string{maya.memberID, paul.memberID},
		"delegates": []map[string]any{{"member_id": maya.memberID, "delegate_id": paul.memberID,
			"from": time.Now().Add(-time.Hour), "until": time.Now().Add(time.Hour)}}}
	if err := e.app.Temporal.SignalWorkflow(context.Background(), cs.WorkflowID(p.ID), "", "directory_changed", forged); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	st := e.awaits(p.ID)
	if slices.Contains(st.Awaited, paul.memberID) || slices.Contains(st.Awaited, maya.memberID) {
		t.Fatal("the forged payload widened the step")
	}
	if d := e.describe(p.ID); len(d.approvers) != 0 {
		t.Fatalf("PostApprovers lists %v", d.approvers)
	}
	if code := e.do(paul.token, "POST", e.org("/posts/"+p.ID+"/approve"), map[string]any{"revision": 1}, nil); code != 403 {
		t.Fatalf("Paul approving after the forged change: %d", code)
	}
	nothingApproved(t, e, p.ID)
}
