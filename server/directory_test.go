package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	cs "github.com/countersign/countersign"
)

// Nothing of one org can be read or touched from another: every id of org 1
// is 404 for org 2's owner, through either org's path, and ids of org 2
// cannot be referenced from org 1's bodies.
func TestCrossOrgIsolation(t *testing.T) {
	e := newEnv(t)
	member := e.join("Mia", "member")
	team := e.team("PR")
	e.addToTeam(team, member.id, "member")
	acct := e.account("acme")
	chain := e.chain("Brand")

	b, err := e.st.Bootstrap(context.Background(), "Globex", "hank@globex.test", "Hank")
	if err != nil {
		t.Fatal(err)
	}
	other := actor{name: "globex owner", token: b.Token, id: b.Member.ID}
	otherOrg := "/v1/orgs/" + b.Org.ID
	otherTeam := e.must(201, other.token, "POST", otherOrg+"/teams", `{"name": "Ops"}`).s("id")

	// Org 1's paths: the org itself is not found for a stranger.
	for _, r := range []struct{ method, path, body string }{
		{"GET", e.o("/members"), ""},
		{"GET", e.o("/members/" + member.id), ""},
		{"DELETE", e.o("/members/" + member.id), ""},
		{"GET", e.o("/teams/" + team), ""},
		{"POST", e.o("/invitations"), `{"email": "x@globex.test"}`},
		{"GET", e.o("/accounts/" + acct), ""},
		{"PUT", e.o("/accounts/" + acct + "/permissions"), `{"grants": []}`},
		{"GET", e.o("/approval-chains/" + chain), ""},
	} {
		e.problem(404, cs.ENOTFOUND, other.token, r.method, r.path, r.body)
	}
	// Org 1's ids through org 2's paths: not found either, as if they did not exist.
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/members/" + member.id, ""},
		{"PATCH", "/members/" + member.id, `{"org_role": "admin"}`},
		{"DELETE", "/members/" + member.id, ""},
		{"GET", "/teams/" + team, ""},
		{"PATCH", "/teams/" + team, `{"name": "Mine"}`},
		{"DELETE", "/teams/" + team, ""},
		{"PUT", "/teams/" + team + "/members/" + other.id, `{"role": "admin"}`},
		{"PUT", "/teams/" + otherTeam + "/members/" + member.id, `{"role": "admin"}`},
		{"DELETE", "/teams/" + team + "/members/" + member.id, ""},
		{"GET", "/accounts/" + acct, ""},
		{"PATCH", "/accounts/" + acct, `{"display_name": "Mine"}`},
		{"DELETE", "/accounts/" + acct, ""},
		{"GET", "/accounts/" + acct + "/permissions", ""},
		{"PUT", "/accounts/" + acct + "/permissions", `{"grants": []}`},
		{"GET", "/approval-chains/" + chain, ""},
		{"PUT", "/approval-chains/" + chain, `{"name": "Mine", "steps": [{"approver": {"role": "approvers"}}]}`},
		{"DELETE", "/approval-chains/" + chain, ""},
	} {
		e.problem(404, cs.ENOTFOUND, other.token, r.method, otherOrg+r.path, r.body)
	}
	// Lists show only one's own org.
	for _, list := range []string{"/members", "/teams", "/accounts", "/approval-chains"} {
		for _, it := range e.must(200, other.token, "GET", otherOrg+list, "").list("items") {
			if it.s("org_id") != b.Org.ID {
				t.Errorf("%s of org 2 lists %v", list, it)
			}
		}
	}
	// Org 2's ids in org 1's bodies are unknown.
	out := e.problem(422, cs.EINVALID, e.owner.token, "PUT", e.o("/accounts/"+acct+"/permissions"),
		fmt.Sprintf(`{"grants": [{"member_id": %q, "level": "editor"}, {"team_id": %q, "level": "editor"}]}`, other.id, otherTeam))
	if got := fmt.Sprint(out.fields()); got != "[grants[0].member_id grants[1].team_id]" {
		t.Errorf("foreign grants: %v", out)
	}
	otherChain := e.must(201, other.token, "POST", otherOrg+"/approval-chains", `{"name": "X", "steps": [{"approver": {"role": "approvers"}}]}`).s("id")
	e.problem(422, cs.EINVALID, e.owner.token, "PATCH", e.o("/accounts/"+acct), fmt.Sprintf(`{"approval_chain_id": %q}`, otherChain))
	// And nothing of org 1 changed.
	if got := e.must(200, e.owner.token, "GET", e.o("/teams/"+team), ""); got.s("name") != "PR" || len(got.list("members")) != 1 {
		t.Errorf("team changed: %v", got)
	}
}

// Removing a member, or taking them out of a team, counts on the very next
// request: nothing is cached.
func TestRemovalTakesEffectOnTheNextRequest(t *testing.T) {
	e := newEnv(t)
	m := e.join("Rita", "admin")
	e.must(200, m.token, "GET", e.o("/members"), "")
	e.must(204, e.owner.token, "DELETE", e.o("/members/"+m.id), "")
	e.problem(404, cs.ENOTFOUND, m.token, "GET", e.o("/members"), "")
	e.problem(404, cs.ENOTFOUND, m.token, "POST", e.o("/teams"), `{"name": "Sneaky"}`)
	e.problem(404, cs.ENOTFOUND, e.owner.token, "GET", e.o("/members/"+m.id), "")
	if ms := e.must(200, m.token, "GET", "/v1/me", "")["memberships"].([]any); len(ms) != 0 {
		t.Errorf("removed member still has memberships: %v", ms)
	}
	for _, it := range e.must(200, e.owner.token, "GET", e.o("/members"), "").list("items") {
		if it.s("id") == m.id {
			t.Error("removed member is listed")
		}
	}

	// A team admin taken out of the team loses the team at once.
	ta := e.join("Tom", "member")
	team := e.team("PR")
	e.addToTeam(team, ta.id, "admin")
	x := e.join("Xia", "member")
	e.must(200, ta.token, "PUT", e.o("/teams/"+team+"/members/"+x.id), `{"role": "member"}`)
	e.must(204, e.owner.token, "DELETE", e.o("/teams/"+team+"/members/"+ta.id), "")
	e.problem(403, cs.EFORBIDDEN, ta.token, "DELETE", e.o("/teams/"+team+"/members/"+x.id), "")

	// A right that came through a team goes with the team membership.
	acct := e.account("acme")
	mgr := e.join("Gus", "member")
	e.addToTeam(team, mgr.id, "member")
	e.must(200, e.owner.token, "PUT", e.o("/accounts/"+acct+"/permissions"), fmt.Sprintf(`{"grants": [{"team_id": %q, "level": "advanced"}]}`, team))
	e.must(200, mgr.token, "GET", e.o("/accounts/"+acct+"/permissions"), "")
	r, err := e.st.EffectiveRight(context.Background(), e.org, acct, mgr.id)
	if err != nil || !r.Manage || r.Publish != cs.PublishDirect {
		t.Fatalf("right through the team: %+v %v", r, err)
	}
	e.must(204, e.owner.token, "DELETE", e.o("/teams/"+team+"/members/"+mgr.id), "")
	e.problem(403, cs.EFORBIDDEN, mgr.token, "GET", e.o("/accounts/"+acct+"/permissions"), "")
	if r, err := e.st.EffectiveRight(context.Background(), e.org, acct, mgr.id); err != nil || r != (cs.Right{Publish: cs.PublishNone}) {
		t.Fatalf("right after leaving the team: %+v %v", r, err)
	}
	// And a removed member has no right at all.
	e.must(204, e.owner.token, "DELETE", e.o("/members/"+mgr.id), "")
	if _, err := e.st.EffectiveRight(context.Background(), e.org, acct, mgr.id); cs.ErrorCode(err) != cs.ENOTFOUND {
		t.Fatalf("right of a removed member: %v", err)
	}
}

func TestLastOwnerIsProtected(t *testing.T) {
	e := newEnv(t)
	admin := e.join("Ada", "admin")
	me := e.o("/members/" + e.owner.id)
	e.problem(409, cs.ELASTOWNER, e.owner.token, "PATCH", me, `{"org_role": "admin"}`)
	e.problem(409, cs.ELASTOWNER, e.owner.token, "DELETE", me, "")
	// Admins cannot touch owners, nor make one.
	e.problem(403, cs.EFORBIDDEN, admin.token, "PATCH", me, `{"org_role": "member"}`)
	e.problem(403, cs.EFORBIDDEN, admin.token, "DELETE", me, "")
	e.problem(403, cs.EFORBIDDEN, admin.token, "PATCH", e.o("/members/"+admin.id), `{"org_role": "owner"}`)
	e.problem(403, cs.EFORBIDDEN, admin.token, "POST", e.o("/invitations"), `{"email": "boss@acme.test", "org_role": "owner"}`)
	// But an admin may still change an owner's Slack id, and an owner's role "to owner" is no change.
	e.must(200, admin.token, "PATCH", me, `{"slack_user_id": "U0OWNER", "org_role": "owner"}`)

	// An owner makes another owner; then the first may step down and leave.
	e.must(200, e.owner.token, "PATCH", e.o("/members/"+admin.id), `{"org_role": "owner"}`)
	e.must(200, e.owner.token, "PATCH", me, `{"org_role": "admin"}`)
	e.must(204, e.owner.token, "DELETE", me, "")
	// Now the former admin is the last owner.
	e.problem(409, cs.ELASTOWNER, admin.token, "PATCH", e.o("/members/"+admin.id), `{"org_role": "member"}`)
	e.problem(409, cs.ELASTOWNER, admin.token, "DELETE", e.o("/members/"+admin.id), "")
	if n := e.count(`SELECT count(*) FROM members WHERE org_id = $1 AND org_role = 'owner' AND removed_at IS NULL`, e.org); n != 1 {
		t.Fatalf("%d owners", n)
	}
}

// Bad input is a 4xx problem, never a 500 (env.req fails the test on a 5xx
// or a non-problem error).
func TestBadInputIsAProblem(t *testing.T) {
	e := newEnv(t)
	acct := e.account("acme")
	tok := e.owner.token
	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", "/v1/orgs/not-a-uuid/members", "", 400, "invalid_id"},
		{"GET", e.o("/members/123"), "", 400, "invalid_id"},
		{"GET", e.o("/teams/'; DROP TABLE teams; --"), "", 400, "invalid_id"},
		{"DELETE", e.o("/accounts/zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"), "", 400, "invalid_id"},
		{"DELETE", "/v1/me/tokens/nope", "", 400, "invalid_id"},
		{"GET", e.o("/members/00000000-0000-0000-0000-000000000000"), "", 404, cs.ENOTFOUND},
		{"GET", e.o("/members?limit=0"), "", 400, "invalid_query"},
		{"GET", e.o("/members?limit=201"), "", 400, "invalid_query"},
		{"GET", e.o("/members?limit=ten"), "", 400, "invalid_query"},
		{"GET", e.o("/members?cursor=!!!"), "", 400, "invalid_query"},
		{"GET", e.o("/members?cursor=bm90LWEtdXVpZA"), "", 400, "invalid_query"},
		{"POST", e.o("/teams"), `{"name": "PR", "colour": "red"}`, 422, "unknown_field"},
		{"POST", e.o("/teams"), `{"name": 7}`, 422, cs.EINVALID},
		{"POST", e.o("/teams"), `{"name": "PR"`, 400, "invalid_json"},
		{"POST", e.o("/teams"), `{"name": "PR"} {"name": "QA"}`, 400, "invalid_json"},
		{"POST", e.o("/teams"), `{}`, 422, cs.EINVALID},
		{"POST", e.o("/teams"), `{"name": "` + strings.Repeat("x", 2<<20) + `"}`, 413, "body_too_large"},
		{"PUT", e.o("/accounts/" + acct + "/permissions"), `{"grants": [{"member_id": "nope", "level": "editor"}]}`, 422, cs.EINVALID},
		{"PUT", e.o("/accounts/" + acct + "/permissions"), `{"grants": [{"member_id": "` + e.owner.id + `", "level": "god"}]}`, 422, cs.EINVALID},
		{"PUT", e.o("/accounts/" + acct + "/permissions"), `{}`, 422, cs.EINVALID},
		{"PATCH", e.o("/accounts/" + acct), `{"approval_chain_id": "nope"}`, 422, cs.EINVALID},
		{"PATCH", e.o("/accounts/" + acct), `{"approval_chain_id": 12}`, 422, cs.EINVALID},
		{"PATCH", e.o("/accounts/" + acct), `{"network": "x"}`, 422, "unknown_field"},
		{"PATCH", e.o("/accounts/" + acct), `{"timezone": "Mars/Olympus"}`, 422, cs.EINVALID},
		{"POST", e.o("/accounts"), `{"network": "mastodon", "handle": "a", "timezone": "UTC", "settings": {"instance_url": 5}}`, 422, cs.EINVALID},
		{"PATCH", e.o("/members/" + e.owner.id), `{"org_role": "king"}`, 422, cs.EINVALID},
		{"PUT", e.o("/teams/" + e.team("PR") + "/members/" + e.owner.id), `{"role": "boss"}`, 422, cs.EINVALID},
		{"POST", e.o("/approval-chains"), `{"name": "C", "steps": [{"approver": {"role": "approvers"}, "timeout": "soon"}]}`, 422, cs.EINVALID},
		{"POST", "/v1/invitations/csi_nope/accept", `{"name": "X", "age": 3}`, 422, "unknown_field"},
		{"POST", "/v1/invitations/csi_nope/accept", "", 404, cs.ENOTFOUND},
		{"POST", "/v1/invitations/%00%ff/decline", "", 404, cs.ENOTFOUND},
		{"PATCH", "/v1/me", `{"allow_invitations": "no"}`, 422, cs.EINVALID},
	} {
		code, raw := e.req(tok, tc.method, tc.path, "", tc.body)
		out := decode(t, raw)
		if code != tc.status || out.s("code") != tc.code {
			t.Errorf("%s %s %.80s: %d %.300s, want %d %s", tc.method, tc.path, tc.body, code, raw, tc.status, tc.code)
		}
	}
	// A JSON endpoint refuses other content types.
	if code, raw := e.req(tok, "POST", e.o("/teams"), "text/plain", `{"name": "PR"}`); code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain team: %d %s", code, raw)
	}
}

func TestListsArePaginated(t *testing.T) {
	e := newEnv(t)
	var want []string
	for i := range 5 {
		want = append(want, e.team(fmt.Sprintf("T%d", i)))
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		path := e.o("/teams?limit=2")
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		out := e.must(200, e.owner.token, "GET", path, "")
		items := out.list("items")
		if len(items) > 2 {
			t.Fatalf("page of %d", len(items))
		}
		for _, it := range items {
			got = append(got, it.s("id"))
		}
		if out["next_cursor"] == nil {
			break
		}
		cursor = out.s("next_cursor")
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pages gave %v, want %v", got, want)
	}
	// The default page holds them all; an empty list is [] not null.
	if items := e.must(200, e.owner.token, "GET", e.o("/teams"), "")["items"].([]any); len(items) != 5 {
		t.Fatalf("default page: %d items", len(items))
	}
	if out := e.must(200, e.owner.token, "GET", e.o("/accounts"), ""); out["items"] == nil || out["next_cursor"] != nil {
		t.Fatalf("empty list: %v", out)
	}
}

func TestTeamsAndAccounts(t *testing.T) {
	e := newEnv(t)
	m := e.join("Pat", "member")
	team := e.must(201, e.owner.token, "POST", e.o("/teams"), `{"name": "PR", "slack_channel_id": "C123"}`)
	if team.s("slack_channel_id") != "C123" || team.s("org_id") != e.org {
		t.Fatalf("team: %v", team)
	}
	e.problem(409, cs.ECONFLICT, e.owner.token, "POST", e.o("/teams"), `{"name": "pr"}`)
	id := team.s("id")
	e.addToTeam(id, m.id, "admin")
	got := e.must(200, e.owner.token, "GET", e.o("/teams/"+id), "")
	if ms := got.list("members"); len(ms) != 1 || ms[0].s("member_id") != m.id || ms[0].s("role") != "admin" || got["member_count"] != 1.0 {
		t.Fatalf("team with members: %v", got)
	}
	// PUT again changes the role; an empty body means member.
	e.must(200, e.owner.token, "PUT", e.o("/teams/"+id+"/members/"+m.id), "")
	if ts := e.must(200, e.owner.token, "GET", e.o("/members/"+m.id), "").list("teams"); len(ts) != 1 || ts[0].s("role") != "member" || ts[0].s("team_name") != "PR" {
		t.Fatalf("member's teams: %v", ts)
	}
	renamed := e.must(200, e.owner.token, "PATCH", e.o("/teams/"+id), `{"name": "Press", "slack_channel_id": ""}`)
	if renamed.s("name") != "Press" || renamed.s("slack_channel_id") != "" {
		t.Fatalf("renamed: %v", renamed)
	}
	e.problem(404, cs.ENOTFOUND, e.owner.token, "DELETE", e.o("/teams/"+id+"/members/"+e.owner.id), "")

	// Accounts: settings are echoed, credentials never; the chain is set by PATCH.
	acct := e.must(201, e.owner.token, "POST", e.o("/accounts"), `{"network": "mastodon", "handle": "@acme", "timezone": "Europe/Paris",
		"settings": {"instance_url": "https://mastodon.test"}, "credentials": {"access_token": "tok-123456"}}`)
	if acct.s("display_name") != "@acme" || acct["has_credentials"] != true || acct["approval_chain_id"] != nil ||
		acct.m("settings").s("instance_url") != "https://mastodon.test" || acct["credentials"] != nil {
		t.Fatalf("account: %v", acct)
	}
	e.problem(409, cs.ECONFLICT, e.owner.token, "POST", e.o("/accounts"), `{"network": "mastodon", "handle": "@ACME", "timezone": "UTC",
		"settings": {"instance_url": "https://mastodon.test"}, "credentials": {"access_token": "t"}}`)
	out := e.problem(422, cs.EINVALID, e.owner.token, "POST", e.o("/accounts"), `{"network": "webhook", "handle": "hook", "timezone": "Nowhere/Land",
		"settings": {}, "credentials": {"secret": "plain"}}`)
	if got := fmt.Sprint(out.fields()); got != "[timezone settings.url credentials.secret]" {
		t.Fatalf("invalid webhook account: %v", out)
	}
	aid := acct.s("id")
	chain := e.chain("Brand")
	if got := e.must(200, e.owner.token, "PATCH", e.o("/accounts/"+aid), fmt.Sprintf(`{"approval_chain_id": %q}`, chain)); got.s("approval_chain_id") != chain {
		t.Fatalf("chain not set: %v", got)
	}
	c, err := e.st.AccountChain(context.Background(), e.org, aid)
	if err != nil || c.ID != chain || c.Name != "Brand" {
		t.Fatalf("AccountChain = %+v, %v", c, err)
	}
	if got := e.must(200, e.owner.token, "PATCH", e.o("/accounts/"+aid), `{"approval_chain_id": null}`); got["approval_chain_id"] != nil {
		t.Fatalf("chain not cleared: %v", got)
	}
	if c, err := e.st.AccountChain(context.Background(), e.org, aid); err != nil || c.Steps[0].Approver.Role != cs.ApproverRoleApprovers || c.ID != "" {
		t.Fatalf("default chain: %+v, %v", c, err)
	}
	e.must(204, e.owner.token, "DELETE", e.o("/accounts/"+aid), "")
	e.problem(404, cs.ENOTFOUND, e.owner.token, "GET", e.o("/accounts/"+aid), "")
	// Its handle is free again.
	e.must(201, e.owner.token, "POST", e.o("/accounts"), `{"network": "mastodon", "handle": "@acme", "timezone": "UTC",
		"settings": {"instance_url": "https://mastodon.test"}, "credentials": {"access_token": "t"}}`)
}

func TestPermissionsReplaceEveryGrant(t *testing.T) {
	e := newEnv(t)
	a, b := e.join("Ann", "member"), e.join("Ben", "member")
	team := e.team("PR")
	acct := e.account("acme")
	path := e.o("/accounts/" + acct + "/permissions")
	if g := e.must(200, e.owner.token, "GET", path, "").list("grants"); len(g) != 0 {
		t.Fatalf("new account has grants: %v", g)
	}
	e.must(200, e.owner.token, "PUT", path, fmt.Sprintf(`{"grants": [
		{"member_id": %q, "level": "limited"},
		{"team_id": %q, "level": "editor"},
		{"member_id": %q, "level": "custom", "custom": {"publish": "with_approval", "approve": true, "manage": false}}]}`, a.id, team, b.id))
	got := e.must(200, e.owner.token, "GET", path, "").list("grants")
	if len(got) != 3 {
		t.Fatalf("grants: %v", got)
	}
	for _, g := range got {
		if g.s("member_id") == b.id && (g.s("level") != "custom" || g.m("custom").s("publish") != "with_approval" || g.m("custom")["approve"] != true) {
			t.Errorf("custom grant: %v", g)
		}
	}
	rb, _ := e.st.EffectiveRight(context.Background(), e.org, acct, b.id)
	if rb != (cs.Right{Compose: true, Publish: cs.PublishWithApproval, Approve: true}) {
		t.Errorf("b's right: %+v", rb)
	}
	// Replacing with one grant leaves one.
	e.must(200, e.owner.token, "PUT", path, fmt.Sprintf(`{"grants": [{"member_id": %q, "level": "advanced"}]}`, a.id))
	if got := e.must(200, e.owner.token, "GET", path, "").list("grants"); len(got) != 1 || got[0].s("level") != "advanced" {
		t.Fatalf("after replace: %v", got)
	}
	// Invalid sets change nothing and name every bad field.
	out := e.problem(422, cs.EINVALID, e.owner.token, "PUT", path, fmt.Sprintf(`{"grants": [
		{"member_id": %q, "level": "editor"},
		{"member_id": %q, "level": "limited"},
		{"level": "editor"},
		{"team_id": %q, "level": "custom"},
		{"member_id": %q, "team_id": %q, "level": "editor"}]}`, b.id, b.id, team, a.id, team))
	if got := fmt.Sprint(out.fields()); got != "[grants[1].member_id grants[2].member_id grants[3].custom grants[4].member_id grants[4].team_id]" {
		t.Fatalf("fields: %v", out)
	}
	if got := e.must(200, e.owner.token, "GET", path, "").list("grants"); len(got) != 1 {
		t.Fatalf("invalid PUT changed the grants: %v", got)
	}
	e.must(200, e.owner.token, "PUT", path, `{"grants": []}`)
	if got := e.must(200, e.owner.token, "GET", path, "").list("grants"); len(got) != 0 {
		t.Fatalf("empty PUT left %v", got)
	}
}
