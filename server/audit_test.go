package server_test

import (
	"fmt"
	"strings"
	"testing"

	cs "github.com/countersign/countersign"
)

// Every admin or manager change to the directory writes exactly one org
// audit row in its transaction, a refused change or a no-op writes none,
// and credentials appear only as "replaced".
func TestDirectoryChangesAreAudited(t *testing.T) {
	e := newEnv(t)
	admin := e.join("Ada", "admin")
	mo := e.join("Mo", "member")
	rows := func() int { return e.count(`SELECT count(*) FROM org_audit WHERE org_id = $1`, e.org) }
	step := func(what string, want int, f func()) {
		t.Helper()
		before := rows()
		f()
		if got := rows() - before; got != want {
			t.Errorf("%s: %d audit rows, want %d", what, got, want)
		}
	}
	secret := "whsec_" + strings.Repeat("Zm9v", 8)
	var team, acct, chain string
	step("create a team", 1, func() { team = e.team("PR") })
	step("create a team with a taken name", 0, func() { e.problem(409, cs.ECONFLICT, admin.token, "POST", e.o("/teams"), `{"name": "pr"}`) })
	step("rename a team", 1, func() { e.must(200, admin.token, "PATCH", e.o("/teams/"+team), `{"name": "Press"}`) })
	step("rename a team to its name", 0, func() { e.must(200, admin.token, "PATCH", e.o("/teams/"+team), `{"name": "Press"}`) })
	step("add to a team", 1, func() { e.addToTeam(team, mo.id, "member") })
	step("add again with the same role", 0, func() { e.addToTeam(team, mo.id, "member") })
	step("a team admin", 1, func() { e.addToTeam(team, mo.id, "admin") })
	step("a member cannot rename", 0, func() { e.problem(403, cs.EFORBIDDEN, mo.token, "DELETE", e.o("/teams/"+team), "") })
	step("create an account with credentials", 1, func() {
		acct = e.must(201, admin.token, "POST", e.o("/accounts"), fmt.Sprintf(`{"network": "webhook", "handle": "acme",
			"timezone": "UTC", "settings": {"url": "https://hooks.acme.test/in"}, "credentials": {"secret": %q}}`, secret)).s("id")
	})
	step("replace its credentials", 1, func() {
		e.must(200, admin.token, "PATCH", e.o("/accounts/"+acct), fmt.Sprintf(`{"credentials": {"secret": %q}}`, secret+"2"))
	})
	step("move it without credentials", 0, func() {
		e.problem(422, cs.EINVALID, admin.token, "PATCH", e.o("/accounts/"+acct), `{"settings": {"url": "https://evil.test/in"}}`)
	})
	step("grants", 1, func() {
		e.must(200, admin.token, "PUT", e.o("/accounts/"+acct+"/permissions"), fmt.Sprintf(`{"grants": [{"team_id": %q, "level": "editor"}]}`, team))
	})
	step("create a chain", 1, func() { chain = e.chain("Brand") })
	step("an invalid chain", 0, func() {
		e.problem(422, cs.EINVALID, admin.token, "PUT", e.o("/approval-chains/"+chain), `{"name": "Brand", "steps": []}`)
	})
	step("replace a chain", 1, func() {
		e.must(200, admin.token, "PUT", e.o("/approval-chains/"+chain), fmt.Sprintf(`{"name": "Brand", "steps": [{"approver": {"team": %q}}]}`, team))
	})
	step("pick the chain", 1, func() {
		e.must(200, admin.token, "PATCH", e.o("/accounts/"+acct), fmt.Sprintf(`{"approval_chain_id": %q}`, chain))
	})
	step("delete a used chain", 0, func() { e.problem(409, cs.EINUSE, admin.token, "DELETE", e.o("/approval-chains/"+chain), "") })
	step("remove from a team", 1, func() { e.must(204, admin.token, "DELETE", e.o("/teams/"+team+"/members/"+mo.id), "") })
	step("remove again", 0, func() { e.problem(404, cs.ENOTFOUND, admin.token, "DELETE", e.o("/teams/"+team+"/members/"+mo.id), "") })
	step("remove a member", 1, func() { e.must(204, admin.token, "DELETE", e.o("/members/"+mo.id), "") })
	step("remove the last owner", 0, func() { e.problem(409, cs.ELASTOWNER, e.owner.token, "DELETE", e.o("/members/"+e.owner.id), "") })
	step("invite", 1, func() { e.must(201, admin.token, "POST", e.o("/invitations"), `{"email": "zoe@acme.test"}`) })
	step("delete an account", 1, func() { e.must(204, admin.token, "DELETE", e.o("/accounts/"+acct), "") })

	if n := e.count(`SELECT count(*) FROM org_audit WHERE before::text LIKE '%whsec%' OR after::text LIKE '%whsec%'`); n != 0 {
		t.Errorf("%d audit rows hold a credential", n)
	}
	if n := e.count(`SELECT count(*) FROM org_audit WHERE object_type = 'account' AND action = 'update'
		AND after->>'credentials' = 'replaced' AND actor_member_id = $1`, admin.id); n != 1 {
		t.Errorf("%d rows say the credentials were replaced", n)
	}
}

// GET /v1/orgs/{org}/audit: admins only, newest first, keyset pages, filters
// by actor and object; bad filters are 400.
func TestOrgAuditEndpoint(t *testing.T) {
	e := newEnv(t)
	admin := e.join("Ada", "admin")
	mo := e.join("Mo", "member")
	team := e.team("PR")
	e.must(200, admin.token, "PATCH", e.o("/teams/"+team), `{"name": "Press"}`)
	e.must(200, admin.token, "PATCH", e.o("/members/"+mo.id), `{"org_role": "admin"}`)

	all := e.must(200, e.owner.token, "GET", e.o("/audit"), "").list("items")
	if len(all) != 5 || all[0].s("object_type") != "member" || all[0].s("actor") != "Ada" || all[len(all)-1].s("object_type") != "invitation" {
		t.Fatalf("audit: %v", all)
	}
	var paged []string
	cursor := ""
	for i := 0; i < 5; i++ {
		page := e.must(200, admin.token, "GET", e.o("/audit?limit=2"+cursor), "")
		for _, it := range page.list("items") {
			paged = append(paged, it.s("id"))
		}
		if page["next_cursor"] == nil {
			break
		}
		cursor = "&cursor=" + page.s("next_cursor")
	}
	if len(paged) != 5 || paged[0] != all[0].s("id") || paged[4] != all[4].s("id") {
		t.Errorf("pages: %v", paged)
	}
	if got := e.must(200, e.owner.token, "GET", e.o("/audit?actor="+admin.id), "").list("items"); len(got) != 2 {
		t.Errorf("Ada's changes: %v", got)
	}
	if got := e.must(200, e.owner.token, "GET", e.o("/audit?object=team:"+team), "").list("items"); len(got) != 2 || got[0].s("action") != "update" {
		t.Errorf("the team's rows: %v", got)
	}
	if got := e.must(200, e.owner.token, "GET", e.o("/audit?object=invitation"), "").list("items"); len(got) != 2 {
		t.Errorf("invitation rows: %v", got)
	}
	e.problem(400, "invalid_query", e.owner.token, "GET", e.o("/audit?actor=nobody"), "")
	e.problem(400, "invalid_query", e.owner.token, "GET", e.o("/audit?object=:x"), "")
	e.problem(400, "invalid_query", e.owner.token, "GET", e.o("/audit?limit=0"), "")
	e.problem(403, cs.EFORBIDDEN, e.join("Max", "member").token, "GET", e.o("/audit"), "")
}
