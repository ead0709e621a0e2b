package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/media/mediatest"
	"github.com/countersign/countersign/internal/store"
)

// TestAuthorizationMatrix runs every directory endpoint as each kind of
// caller (org owner, admin and member; a team admin; members holding
// advanced, custom manage or editor on an account) and checks that exactly
// the SPEC's "who may do what" succeed and everyone else gets 403 with a
// reason. Each allowed call acts on fresh fixtures, so the order is free.
func TestAuthorizationMatrix(t *testing.T) {
	e := newEnv(t)
	// The cast.
	actors := map[string]actor{
		"owner":     e.owner,
		"admin":     e.join("Ada Admin", "admin"),
		"member":    e.join("Mo Member", "member"),
		"teamadmin": e.join("Tia Teamadmin", "member"),
		"manager":   e.join("Max Manager", "member"),
		"custom":    e.join("Cus Custom", "member"),
		"editor":    e.join("Eddie Editor", "member"),
	}
	names := []string{"owner", "admin", "member", "teamadmin", "manager", "custom", "editor"}
	// Their world: team T (tia is its admin, max a member), account A with a
	// grant for each account-level actor and a limited grant for T, and chain C.
	teamT := e.team("T")
	e.addToTeam(teamT, actors["teamadmin"].id, "admin")
	e.addToTeam(teamT, actors["manager"].id, "member")
	acctA := e.account("a")
	chainC := e.chain("C")
	grantsA := fmt.Sprintf(`{"grants": [
		{"member_id": %q, "level": "advanced"},
		{"member_id": %q, "level": "custom", "custom": {"publish": "none", "approve": false, "manage": true}},
		{"member_id": %q, "level": "editor"},
		{"team_id": %q, "level": "limited"}]}`,
		actors["manager"].id, actors["custom"].id, actors["editor"].id, teamT)
	e.must(200, e.owner.token, "PUT", e.o("/accounts/"+acctA+"/permissions"), grantsA)

	// A post of account A by Tia (limited through team T), written straight
	// to the database: comments need no workflow.
	postA, _, err := e.st.CreatePost(context.Background(), store.NewPost{OrgID: e.org, AccountID: acctA,
		AuthorID: actors["teamadmin"].id, Text: "hello", Chain: cs.DefaultChain(), NeedsApproval: true})
	if err != nil {
		t.Fatal(err)
	}

	var (
		all    = names
		admins = []string{"owner", "admin"}
		// The post's author, editors and above on the account (custom manage
		// included) discuss it; nobody is eligible for a step of it here.
		discuss  = []string{"owner", "admin", "teamadmin", "manager", "custom", "editor"}
		teamMgrs = []string{"owner", "admin", "teamadmin"}
		acctMgrs = []string{"owner", "admin", "manager", "custom"}
	)
	n := 0
	fresh := func(prefix string) string { n++; return fmt.Sprintf("%s-%d", prefix, n) }
	cases := []struct {
		name    string
		allowed []string
		// request returns the method, path and body; it may make fixtures.
		request func() (string, string, string)
	}{
		{"list members", all, func() (string, string, string) { return "GET", e.o("/members"), "" }},
		{"get member", all, func() (string, string, string) { return "GET", e.o("/members/" + e.owner.id), "" }},
		{"change a role", admins, func() (string, string, string) {
			return "PATCH", e.o("/members/" + e.join(fresh("m"), "member").id), `{"org_role": "admin"}`
		}},
		{"set another's Slack id", admins, func() (string, string, string) {
			return "PATCH", e.o("/members/" + e.join(fresh("m"), "member").id), fmt.Sprintf(`{"slack_user_id": "U%d"}`, n)
		}},
		{"set another's absence", admins, func() (string, string, string) {
			return "PUT", e.o("/members/" + e.join(fresh("m"), "member").id + "/absence"), absenceBody(e.owner.id)
		}},
		{"end another's absence", admins, func() (string, string, string) {
			m := e.join(fresh("m"), "member")
			e.must(200, e.owner.token, "PUT", e.o("/members/"+m.id+"/absence"), absenceBody(e.owner.id))
			return "DELETE", e.o("/members/" + m.id + "/absence"), ""
		}},
		{"remove a member", admins, func() (string, string, string) {
			return "DELETE", e.o("/members/" + e.join(fresh("m"), "member").id), ""
		}},
		{"invite", admins, func() (string, string, string) {
			return "POST", e.o("/invitations"), fmt.Sprintf(`{"email": "%s@acme.test"}`, fresh("inv"))
		}},
		{"list invitations", admins, func() (string, string, string) { return "GET", e.o("/invitations"), "" }},
		{"revoke an invitation", admins, func() (string, string, string) {
			inv := e.must(201, e.owner.token, "POST", e.o("/invitations"), fmt.Sprintf(`{"email": "%s@acme.test"}`, fresh("rev")))
			return "DELETE", e.o("/invitations/" + inv.s("id")), ""
		}},
		{"read the audit log", admins, func() (string, string, string) { return "GET", e.o("/audit"), "" }},
		{"list teams", all, func() (string, string, string) { return "GET", e.o("/teams"), "" }},
		{"get team", all, func() (string, string, string) { return "GET", e.o("/teams/" + teamT), "" }},
		{"create team", admins, func() (string, string, string) {
			return "POST", e.o("/teams"), fmt.Sprintf(`{"name": %q}`, fresh("team"))
		}},
		{"rename team", admins, func() (string, string, string) {
			return "PATCH", e.o("/teams/" + e.team(fresh("team"))), fmt.Sprintf(`{"name": %q}`, fresh("renamed"))
		}},
		{"delete team", admins, func() (string, string, string) { return "DELETE", e.o("/teams/" + e.team(fresh("team"))), "" }},
		{"add to own team", teamMgrs, func() (string, string, string) {
			return "PUT", e.o("/teams/" + teamT + "/members/" + e.join(fresh("m"), "member").id), `{"role": "member"}`
		}},
		{"remove from own team", teamMgrs, func() (string, string, string) {
			m := e.join(fresh("m"), "member")
			e.addToTeam(teamT, m.id, "member")
			return "DELETE", e.o("/teams/" + teamT + "/members/" + m.id), ""
		}},
		{"add to another team", admins, func() (string, string, string) {
			return "PUT", e.o("/teams/" + e.team(fresh("other")) + "/members/" + actors["member"].id), `{"role": "admin"}`
		}},
		{"list accounts", all, func() (string, string, string) { return "GET", e.o("/accounts"), "" }},
		{"get account", all, func() (string, string, string) { return "GET", e.o("/accounts/" + acctA), "" }},
		{"create account", admins, func() (string, string, string) {
			return "POST", e.o("/accounts"), fmt.Sprintf(`{"network": "log", "handle": %q, "timezone": "UTC"}`, fresh("acct"))
		}},
		{"change account settings", admins, func() (string, string, string) {
			return "PATCH", e.o("/accounts/" + acctA), `{"display_name": "Acme A"}`
		}},
		{"pick account chain", acctMgrs, func() (string, string, string) {
			return "PATCH", e.o("/accounts/" + acctA), fmt.Sprintf(`{"approval_chain_id": %q}`, chainC)
		}},
		{"delete account", admins, func() (string, string, string) { return "DELETE", e.o("/accounts/" + e.account(fresh("acct"))), "" }},
		{"read grants", acctMgrs, func() (string, string, string) { return "GET", e.o("/accounts/" + acctA + "/permissions"), "" }},
		{"replace grants", acctMgrs, func() (string, string, string) { return "PUT", e.o("/accounts/" + acctA + "/permissions"), grantsA }},
		{"list chains", all, func() (string, string, string) { return "GET", e.o("/approval-chains"), "" }},
		{"get chain", all, func() (string, string, string) { return "GET", e.o("/approval-chains/" + chainC), "" }},
		{"create chain", admins, func() (string, string, string) {
			return "POST", e.o("/approval-chains"), fmt.Sprintf(`{"name": %q, "steps": [{"approver": {"role": "approvers"}}]}`, fresh("chain"))
		}},
		{"replace chain", admins, func() (string, string, string) {
			return "PUT", e.o("/approval-chains/" + e.chain(fresh("chain"))), fmt.Sprintf(`{"name": %q, "steps": [{"approver": {"team": %q}}]}`, fresh("chain"), teamT)
		}},
		{"create chain with an external reviewer", admins, func() (string, string, string) {
			return "POST", e.o("/approval-chains"), fmt.Sprintf(`{"name": %q, "steps": [{"approver": {"external": {"email": "client@client.test", "name": "Client"}}}]}`, fresh("chain"))
		}},
		{"delete chain", admins, func() (string, string, string) {
			return "DELETE", e.o("/approval-chains/" + e.chain(fresh("chain"))), ""
		}},
		{"comment on a post", discuss, func() (string, string, string) {
			return "POST", e.o("/posts/" + postA.ID + "/comments"), `{"text": "a thought"}`
		}},
		{"read a post's comments", discuss, func() (string, string, string) { return "GET", e.o("/posts/" + postA.ID + "/comments"), "" }},
		{"read the approvals report", admins, func() (string, string, string) { return "GET", e.o("/reports/approvals"), "" }},
	}
	for _, tc := range cases {
		for _, who := range names {
			method, path, body := tc.request()
			code, out := e.call(actors[who].token, method, path, body)
			allowed := slices.Contains(tc.allowed, who)
			switch {
			case allowed && (code < 200 || code > 299):
				t.Errorf("%s as %s: %d %v, want success", tc.name, who, code, out)
			case !allowed && (code != http.StatusForbidden || out.s("code") != cs.EFORBIDDEN || out.s("detail") == ""):
				t.Errorf("%s as %s: %d %v, want 403 with a reason", tc.name, who, code, out)
			}
		}
	}

	// Managers grant at most their own right, flag by flag, and never change
	// their own grant nor a grant of a team they are in (SPEC §8 "A manager");
	// admins and owners may. Each call starts from grantsA; "" is success.
	var base []map[string]any
	if err := json.Unmarshal([]byte(grantsA), &struct{ Grants *[]map[string]any }{&base}); err != nil {
		t.Fatal(err)
	}
	body := func(edit func(gs []map[string]any) []map[string]any) string {
		gs := make([]map[string]any, len(base))
		copy(gs, base)
		b, _ := json.Marshal(map[string]any{"grants": edit(gs)})
		return string(b)
	}
	ownIndex := func(gs []map[string]any, who string) int {
		return slices.IndexFunc(gs, func(g map[string]any) bool { return g["member_id"] == actors[who].id })
	}
	noManage := map[string]string{"member": cs.EFORBIDDEN, "teamadmin": cs.EFORBIDDEN, "editor": cs.EFORBIDDEN}
	with := func(m map[string]string) map[string]string {
		for k, v := range noManage {
			m[k] = v
		}
		return m
	}
	grantCases := []struct {
		name string
		body func(who string) string
		want map[string]string // actor -> error code; absent: success
	}{
		{"grant a colleague editor", func(string) string {
			return body(func(gs []map[string]any) []map[string]any {
				return append(gs, map[string]any{"member_id": actors["member"].id, "level": "editor"})
			})
		}, with(map[string]string{"custom": cs.EGRANTABOVEOWNRIGHT})},
		{"grant a colleague custom manage", func(string) string {
			return body(func(gs []map[string]any) []map[string]any {
				return append(gs, map[string]any{"member_id": actors["member"].id, "level": "custom",
					"custom": map[string]any{"publish": "none", "approve": false, "manage": true}})
			})
		}, with(map[string]string{})},
		{"lower own grant", func(who string) string {
			return body(func(gs []map[string]any) []map[string]any {
				if i := ownIndex(gs, who); i >= 0 {
					gs[i] = map[string]any{"member_id": actors[who].id, "level": "limited"}
					return gs
				}
				return append(gs, map[string]any{"member_id": actors[who].id, "level": "limited"})
			})
		}, with(map[string]string{"manager": cs.EOWNGRANT, "custom": cs.EOWNGRANT})},
		{"drop own grant", func(who string) string {
			return body(func(gs []map[string]any) []map[string]any {
				if i := ownIndex(gs, who); i >= 0 {
					return slices.Delete(gs, i, i+1)
				}
				return gs
			})
		}, with(map[string]string{"manager": cs.EOWNGRANT, "custom": cs.EOWNGRANT})},
		{"raise own team's grant", func(string) string {
			return body(func(gs []map[string]any) []map[string]any {
				gs[len(gs)-1] = map[string]any{"team_id": teamT, "level": "editor"}
				return gs
			})
		}, with(map[string]string{"manager": cs.EOWNGRANT, "custom": cs.EGRANTABOVEOWNRIGHT})},
	}
	for _, tc := range grantCases {
		for _, who := range names {
			code, out := e.call(actors[who].token, "PUT", e.o("/accounts/"+acctA+"/permissions"), tc.body(who))
			want, refused := tc.want[who]
			switch {
			case !refused && code != http.StatusOK:
				t.Errorf("%s as %s: %d %v, want success", tc.name, who, code, out)
			case refused && (code != http.StatusForbidden || out.s("code") != want || out.s("detail") == ""):
				t.Errorf("%s as %s: %d %v, want 403 %s with a reason", tc.name, who, code, out, want)
			}
			e.must(200, e.owner.token, "PUT", e.o("/accounts/"+acctA+"/permissions"), grantsA)
		}
	}

	// The CSV import is for admins and owners too.
	for _, who := range names {
		code, raw := e.req(actors[who].token, "POST", e.o("/invitations/import"), "text/csv", fmt.Sprintf("email\n%s@acme.test\n", fresh("csv")))
		if want := slices.Contains(admins, who); want != (code == 200) || (!want && code != 403) {
			t.Errorf("import as %s: %d %s", who, code, raw)
		}
	}

	// Uploading media is for whoever may compose on some account (custom
	// holds publish none: no compose; member holds no grant).
	composers := []string{"owner", "admin", "teamadmin", "manager", "editor"}
	png := string(mediatest.PNG(2, 2))
	for _, who := range names {
		body := "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n" + png + "\r\n--b--\r\n"
		code, raw := e.req(actors[who].token, "POST", e.o("/media"), "multipart/form-data; boundary=b", body)
		if want := slices.Contains(composers, who); want != (code == 201) || (!want && code != 403) {
			t.Errorf("upload as %s: %d %s", who, code, raw)
		}
	}
}

// absenceBody is a PUT …/absence body: from a minute ago until tomorrow.
func absenceBody(delegate string) string {
	return fmt.Sprintf(`{"from": %q, "until": %q, "delegate_member_id": %q}`,
		time.Now().Add(-time.Minute).Format(time.RFC3339), time.Now().Add(24*time.Hour).Format(time.RFC3339), delegate)
}

// Anyone may set and end their own absence.
func TestMembersSetTheirOwnAbsence(t *testing.T) {
	e := newEnv(t)
	m := e.join("Ava Away", "member")
	e.must(200, m.token, "PUT", e.o("/members/"+m.id+"/absence"), absenceBody(e.owner.id))
	out := e.must(200, m.token, "GET", e.o("/members/"+m.id), "")
	if !strings.Contains(fmt.Sprint(out), e.owner.id) {
		t.Fatalf("the member does not show the absence: %v", out)
	}
	e.problem(422, cs.EINVALID, m.token, "PUT", e.o("/members/"+m.id+"/absence"), absenceBody(m.id))
	e.must(204, m.token, "DELETE", e.o("/members/"+m.id+"/absence"), "")
	e.problem(404, cs.ENOTFOUND, m.token, "DELETE", e.o("/members/"+m.id+"/absence"), "")
}

// Anyone may clear their own Slack id, leave a team and leave the org.
// Setting one's own Slack id needs Slack to confirm it (internal/e2e, with
// the fake Slack): without Slack configured, only admins set ids.
func TestMembersActOnThemselves(t *testing.T) {
	e := newEnv(t)
	m := e.join("Sam Self", "member")
	team := e.team("PR")
	e.addToTeam(team, m.id, "member")
	out := e.problem(403, cs.EFORBIDDEN, m.token, "PATCH", e.o("/members/"+m.id), `{"slack_user_id": "U0SELF"}`)
	if !strings.Contains(out.s("detail"), "Slack is not configured") {
		t.Fatalf("own slack id without Slack: %v", out)
	}
	e.must(200, e.owner.token, "PATCH", e.o("/members/"+m.id), `{"slack_user_id": "U0SELF"}`)
	e.problem(403, cs.EFORBIDDEN, m.token, "PATCH", e.o("/members/"+m.id), `{"org_role": "admin"}`)
	// Slack ids are unique in the org.
	e.problem(409, cs.ESLACKIDTAKEN, e.owner.token, "PATCH", e.o("/members/"+e.owner.id), `{"slack_user_id": "U0SELF"}`)
	if out := e.must(200, m.token, "PATCH", e.o("/members/"+m.id), `{"slack_user_id": ""}`); out.s("slack_user_id") != "" {
		t.Fatalf("clearing one's own slack id: %v", out)
	}
	e.must(204, m.token, "DELETE", e.o("/teams/"+team+"/members/"+m.id), "")
	if ts := e.must(200, m.token, "GET", e.o("/members/"+m.id), "").list("teams"); len(ts) != 0 {
		t.Fatalf("still in teams after leaving: %v", ts)
	}
	e.must(204, m.token, "DELETE", e.o("/members/"+m.id), "")
	e.problem(404, cs.ENOTFOUND, m.token, "GET", e.o("/members"), "")
}
