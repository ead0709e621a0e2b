package e2e

import (
	"context"
	"encoding/json"
	"testing"
)

// TestSlackIDs: with Slack configured (the fake), a member links the Slack
// user whose e-mail is theirs (compared case-insensitively) and no other;
// admins link any, each change audited with before and after; a Slack id
// maps to one member.
func TestSlackIDs(t *testing.T) {
	e := newIdentityEnv(t, true)
	sam, cora := e.invite("Sam", "member"), e.invite("Cora", "member")
	e.slack.Eventually("looked both up by e-mail", func() bool { return len(e.slack.Calls("users.lookupByEmail")) >= 2 })
	e.slack.AddUser("USAM", "SAM@Acme.Test")
	e.slack.AddUser("UCORA", "cora@acme.test")
	e.slack.AddUser("UGONE", "")

	patch := func(token, memberID, slackID string) (int, map[string]any) {
		var out map[string]any
		code := e.do(token, "PATCH", e.org("/members/"+memberID), map[string]any{"slack_user_id": slackID}, &out)
		return code, out
	}
	// Sam's own Slack user: accepted, not audited (not an admin change).
	if code, out := patch(sam.token, sam.memberID, "USAM"); code != 200 || out["slack_user_id"] != "USAM" {
		t.Fatalf("linking one's own Slack user: %d %v", code, out)
	}
	// Cora's, an unknown one, one without an e-mail: 403 with the reason, unchanged.
	for _, id := range []string{"UCORA", "UNOBODY", "UGONE"} {
		if code, out := patch(sam.token, sam.memberID, id); code != 403 || out["detail"] == "" {
			t.Errorf("linking %s to Sam: %d %v, want 403 with a reason", id, code, out)
		}
	}
	if got := e.memberSlackID(sam.memberID); got != "USAM" {
		t.Fatalf("Sam's Slack id is %q", got)
	}
	// Sam may clear it.
	if code, out := patch(sam.token, sam.memberID, ""); code != 200 || out["slack_user_id"] != nil {
		t.Fatalf("clearing one's Slack id: %d %v", code, out)
	}
	if n := e.count(`SELECT count(*) FROM org_audit WHERE object_type = 'member'`); n != 0 {
		t.Fatalf("a member's own changes wrote %d audit rows", n)
	}

	// An admin links Cora, then relinks her: two audit rows, before and after.
	e.must(200, e.owner, "PATCH", e.org("/members/"+cora.memberID), map[string]any{"slack_user_id": "UCORA"}, nil)
	e.must(200, e.owner, "PATCH", e.org("/members/"+cora.memberID), map[string]any{"slack_user_id": "UCORA2"}, nil)
	e.must(200, e.owner, "PATCH", e.org("/members/"+cora.memberID), map[string]any{"slack_user_id": "UCORA2"}, nil) // no change
	// A taken id: 409 slack_id_taken, nothing written.
	var out map[string]any
	if code := e.do(e.owner, "PATCH", e.org("/members/"+sam.memberID), map[string]any{"slack_user_id": "UCORA2"}, &out); code != 409 || out["code"] != "slack_id_taken" {
		t.Fatalf("linking a taken id: %d %v", code, out)
	}
	rows, err := e.db.Query(context.Background(), `
		SELECT a.actor_member_id::text, a.source, a.object_type, a.object_id, a.action, a.before, a.after
		FROM org_audit a WHERE a.org_id = $1 AND a.object_type = 'member' ORDER BY a.id`, e.orgID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var actor, source, typ, id, action string
		var before, after json.RawMessage
		if err := rows.Scan(&actor, &source, &typ, &id, &action, &before, &after); err != nil {
			t.Fatal(err)
		}
		got = append(got, actor+" "+source+" "+typ+" "+id+" "+action+" "+string(before)+" -> "+string(after))
	}
	ownerID := e.ownerID
	want := []string{
		ownerID + ` api member ` + cora.memberID + ` update {"slack_user_id": null} -> {"slack_user_id": "UCORA"}`,
		ownerID + ` api member ` + cora.memberID + ` update {"slack_user_id": "UCORA"} -> {"slack_user_id": "UCORA2"}`,
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("audit rows:\n%q\nwant\n%q", got, want)
	}
	// The log is append-only.
	if _, err := e.db.Exec(context.Background(), `UPDATE org_audit SET action = 'x'`); err == nil {
		t.Fatal("an audit row could be changed")
	}
	if _, err := e.db.Exec(context.Background(), `DELETE FROM org_audit`); err == nil {
		t.Fatal("an audit row could be deleted")
	}
}

// TestExistingUserAcceptsWithTheirToken: the e2e walk of an existing user's
// invitation: their own token, no new token, the same name, and they see the
// new org in /v1/me.
func TestExistingUserAcceptsWithTheirToken(t *testing.T) {
	e := newIdentityEnv(t, false)
	_, token := e.inviteEmail("vic@victim.test")
	var acc map[string]any
	e.must(200, e.victim.token, "POST", "/v1/invitations/"+token+"/accept", nil, &acc)
	if _, has := acc["api_token"]; has {
		t.Fatalf("an existing user got a new token: %v", acc)
	}
	var me struct {
		User        struct{ Name string } `json:"user"`
		Memberships []struct {
			OrgID string `json:"org_id"`
		} `json:"memberships"`
	}
	e.must(200, e.victim.token, "GET", "/v1/me", nil, &me)
	if me.User.Name != "Vic Victim" || len(me.Memberships) != 2 {
		t.Fatalf("/v1/me after accepting: %+v", me)
	}
	e.must(200, e.victim.token, "GET", e.org("/members"), nil, nil)
}
