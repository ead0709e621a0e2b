package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
)

func TestChainValidation(t *testing.T) {
	e := newEnv(t)
	ann, ben := e.join("Ann", "member"), e.join("Ben", "member")
	gone := e.join("Gone", "member")
	e.must(204, e.owner.token, "DELETE", e.o("/members/"+gone.id), "")
	pr := e.team("PR")
	e.addToTeam(pr, ann.id, "member")
	e.addToTeam(pr, ben.id, "member")
	empty := e.team("Empty")
	b, err := e.st.Bootstrap(context.Background(), "Globex", "hank@globex.test", "Hank")
	if err != nil {
		t.Fatal(err)
	}
	foreignTeam := e.must(201, b.Token, "POST", "/v1/orgs/"+b.Org.ID+"/teams", `{"name": "Ops"}`).s("id")
	unknown := "0190d4a2-0000-7000-8000-000000000000"

	step := func(s string) string { return `{"name": "C", "steps": [` + s + `]}` }
	role := `{"approver": {"role": "approvers"}}`
	for _, tc := range []struct {
		name, body string
		fields     []string
	}{
		{"no name", `{"steps": [` + role + `]}`, []string{"name"}},
		{"blank name", `{"name": "  ", "steps": [` + role + `]}`, []string{"name"}},
		{"no steps", `{"name": "C"}`, []string{"steps"}},
		{"empty steps", step(""), []string{"steps"}},
		{"four steps", step(strings.Repeat(role+",", 3) + role), []string{"steps"}},
		{"no approver", step(`{"quorum": 1}`), []string{"steps[0].approver"}},
		{"two approvers", step(fmt.Sprintf(`{"approver": {"member": %q, "team": %q}}`, ann.id, pr)), []string{"steps[0].approver"}},
		{"unknown role", step(`{"approver": {"role": "admins"}}`), []string{"steps[0].approver"}},
		{"unknown member", step(fmt.Sprintf(`{"approver": {"member": %q}}`, unknown)), []string{"steps[0].approver.member"}},
		{"member not a uuid", step(`{"approver": {"member": "ann"}}`), []string{"steps[0].approver.member"}},
		{"foreign member", step(fmt.Sprintf(`{"approver": {"member": %q}}`, b.Member.ID)), []string{"steps[0].approver.member"}},
		{"removed member", step(fmt.Sprintf(`{"approver": {"member": %q}}`, gone.id)), []string{"steps[0].approver.member"}},
		{"unknown team", step(fmt.Sprintf(`{"approver": {"team": %q}}`, unknown)), []string{"steps[0].approver.team"}},
		{"foreign team", step(fmt.Sprintf(`{"approver": {"team": %q}}`, foreignTeam)), []string{"steps[0].approver.team"}},
		{"quorum over team size", step(fmt.Sprintf(`{"approver": {"team": %q}, "quorum": 3}`, pr)), []string{"steps[0].quorum"}},
		{"empty team", step(fmt.Sprintf(`{"approver": {"team": %q}}`, empty)), []string{"steps[0].quorum"}},
		{"quorum zero", step(`{"approver": {"role": "approvers"}, "quorum": 0}`), []string{"steps[0].quorum"}},
		{"quorum negative", step(`{"approver": {"role": "approvers"}, "quorum": -2}`), []string{"steps[0].quorum"}},
		{"quorum of a member", step(fmt.Sprintf(`{"approver": {"member": %q}, "quorum": 2}`, ann.id)), []string{"steps[0].quorum"}},
		{"bad duration", step(`{"approver": {"role": "approvers"}, "timeout": "4 hours"}`), []string{"steps[0].timeout"}},
		{"duration too short", step(`{"approver": {"role": "approvers"}, "timeout": "500ms"}`), []string{"steps[0].timeout"}},
		{"negative duration", step(`{"approver": {"role": "approvers"}, "timeout": "-1h"}`), []string{"steps[0].timeout"}},
		{"bad fallback timeout", step(fmt.Sprintf(`{"approver": {"role": "approvers"}, "timeout": "1h", "fallback_team": %q, "fallback_timeout": "2 days"}`, pr)), []string{"steps[0].fallback_timeout"}},
		{"fallback without timeout", step(fmt.Sprintf(`{"approver": {"role": "approvers"}, "fallback_team": %q}`, pr)), []string{"steps[0].fallback_team"}},
		{"fallback timeout without team", step(`{"approver": {"role": "approvers"}, "timeout": "1h", "fallback_timeout": "1h"}`), []string{"steps[0].fallback_timeout"}},
		{"unknown fallback team", step(role + fmt.Sprintf(`, {"approver": {"role": "approvers"}, "timeout": "1h", "fallback_team": %q}`, unknown)), []string{"steps[1].fallback_team"}},
		{"foreign fallback team", step(fmt.Sprintf(`{"approver": {"role": "approvers"}, "timeout": "1h", "fallback_team": %q}`, foreignTeam)), []string{"steps[0].fallback_team"}},
		{"late policy", `{"name": "C", "late_policy": "never", "steps": [` + role + `]}`, []string{"late_policy"}},
		{"numeric timeout", step(`{"approver": {"role": "approvers"}, "timeout": 3600}`), []string{"steps[0].timeout"}},
		{"quorum as a string", step(role + `, {"approver": {"role": "approvers"}, "quorum": "2"}`), []string{"steps[1].quorum"}},
		{"steps as an object", `{"name": "C", "steps": {}}`, []string{"steps"}},
		{"an array, not an object", `[]`, []string{"body"}},
		{"external without e-mail", step(`{"approver": {"external": {"name": "Cleo Client"}}}`), []string{"steps[0].approver.external.email"}},
		{"external bad e-mail", step(`{"approver": {"external": {"email": "Cleo <cleo@client.test>", "name": "Cleo"}}}`), []string{"steps[0].approver.external.email"}},
		{"external without name", step(`{"approver": {"external": {"email": "cleo@client.test", "name": " "}}}`), []string{"steps[0].approver.external.name"}},
		{"external long name", step(`{"approver": {"external": {"email": "cleo@client.test", "name": "` + strings.Repeat("n", 101) + `"}}}`), []string{"steps[0].approver.external.name"}},
		{"external quorum", step(`{"approver": {"external": {"email": "cleo@client.test", "name": "Cleo"}}, "quorum": 2}`), []string{"steps[0].quorum"}},
		{"external and role", step(`{"approver": {"role": "approvers", "external": {"email": "cleo@client.test", "name": "Cleo"}}}`), []string{"steps[0].approver"}},
		{"external is a member", step(`{"approver": {"external": {"email": "Owner@Acme.test", "name": "Olga"}}}`), []string{"steps[0].approver.external.email"}},
		{"several at once", `{"name": "", "late_policy": "x", "steps": [{"approver": {}, "timeout": "1ms"}]}`,
			[]string{"name", "steps[0].approver", "steps[0].timeout", "late_policy"}},
	} {
		code, out := e.call(e.owner.token, "POST", e.o("/approval-chains"), tc.body)
		got := out.fields()
		slices.Sort(got)
		want := slices.Clone(tc.fields)
		slices.Sort(want)
		if code != 422 || out.s("code") != cs.EINVALID || !slices.Equal(got, want) {
			t.Errorf("%s: %d %v, want 422 naming %v", tc.name, code, out, tc.fields)
		}
	}
	if n := e.count(`SELECT count(*) FROM approval_chains`); n != 0 {
		t.Fatalf("invalid chains were saved: %d", n)
	}
	// A type mismatch says what JSON was expected, not a Go type.
	_, out := e.call(e.owner.token, "POST", e.o("/approval-chains"), step(role+`, {"approver": {"role": "approvers"}, "quorum": "2"}`))
	if msg := fmt.Sprint(out["errors"]); !strings.Contains(msg, "must be a whole number, not string") {
		t.Errorf("quorum as a string: %s", msg)
	}
	// Unknown fields anywhere are refused too.
	e.problem(422, "unknown_field", e.owner.token, "POST", e.o("/approval-chains"), step(`{"approver": {"role": "approvers", "user": "x"}}`))
}

func TestChainLifecycle(t *testing.T) {
	e := newEnv(t)
	ann, ben := e.join("Ann", "member"), e.join("Ben", "member")
	pr := e.team("PR")
	e.addToTeam(pr, ann.id, "member")
	e.addToTeam(pr, ben.id, "member")
	ops := e.team("Ops")
	e.addToTeam(ops, ben.id, "member")

	body := fmt.Sprintf(`{"name": "Brand", "late_policy": "hold", "require_approval_for_all": true,
		"steps": [{"approver": {"member": %q}, "timeout": "4h", "fallback_team": %q, "fallback_timeout": "2h"},
		          {"approver": {"team": %q}, "quorum": 2},
		          {"approver": {"role": "approvers"}}]}`, ann.id, ops, pr)
	ch := e.must(201, e.owner.token, "POST", e.o("/approval-chains"), body)
	steps := ch.list("steps")
	if ch.s("name") != "Brand" || ch.s("late_policy") != "hold" || ch["require_approval_for_all"] != true ||
		ch["distinct_approvers"] != true || len(steps) != 3 ||
		steps[0].m("approver").s("member") != ann.id || steps[0].s("timeout") != "4h0m0s" || steps[0].s("fallback_team") != ops ||
		steps[0].s("fallback_timeout") != "2h0m0s" || steps[0]["quorum"] != 1.0 ||
		steps[1].m("approver").s("team") != pr || steps[1]["quorum"] != 2.0 ||
		steps[2].m("approver").s("role") != "approvers" {
		t.Fatalf("chain: %v", ch)
	}
	id := ch.s("id")
	e.problem(409, cs.ECONFLICT, e.owner.token, "POST", e.o("/approval-chains"), `{"name": "brand", "steps": [{"approver": {"role": "approvers"}}]}`)

	// The store hands the workflow the same chain.
	acct := e.account("acme")
	e.must(200, e.owner.token, "PATCH", e.o("/accounts/"+acct), fmt.Sprintf(`{"approval_chain_id": %q}`, id))
	c, err := e.st.AccountChain(context.Background(), e.org, acct)
	if err != nil || c.ID != id || len(c.Steps) != 3 || c.Steps[0].Timeout.D() != 4*time.Hour || c.Steps[0].FallbackTeam != ops ||
		c.Steps[1].NeededApprovals() != 2 || c.LatePolicy != cs.LateHold || !c.RequireApprovalForAll || !c.DistinctApprovers {
		t.Fatalf("AccountChain = %+v, %v", c, err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the saved chain does not validate: %v", err)
	}

	// An external reviewer is kept (e-mail lowercased) and handed on too.
	ext := e.must(201, e.owner.token, "POST", e.o("/approval-chains"), `{"name": "Client", "steps": [{"approver": {"role": "approvers"}},
		{"approver": {"external": {"email": " Cleo@Client.TEST ", "name": "Cleo Client"}}, "timeout": "48h"}]}`)
	if r := ext.list("steps")[1].m("approver").m("external"); r.s("email") != "cleo@client.test" || r.s("name") != "Cleo Client" ||
		ext.list("steps")[1]["quorum"] != 1.0 {
		t.Fatalf("external chain: %v", ext)
	}
	e.must(200, e.owner.token, "PATCH", e.o("/accounts/"+acct), fmt.Sprintf(`{"approval_chain_id": %q}`, ext.s("id")))
	if c, err := e.st.AccountChain(context.Background(), e.org, acct); err != nil || len(c.Steps) != 2 ||
		c.Steps[1].Approver.External == nil || *c.Steps[1].Approver.External != (cs.ExternalReviewer{Email: "cleo@client.test", Name: "Cleo Client"}) {
		t.Fatalf("AccountChain = %+v, %v", c, err)
	}
	e.must(200, e.owner.token, "PATCH", e.o("/accounts/"+acct), fmt.Sprintf(`{"approval_chain_id": %q}`, id))

	// PUT replaces it whole; defaults apply to what is left out.
	put := e.must(200, e.owner.token, "PUT", e.o("/approval-chains/"+id), `{"name": "Brand v2", "distinct_approvers": false, "steps": [{"approver": {"role": "approvers"}}]}`)
	if put.s("name") != "Brand v2" || put.s("late_policy") != "expire" || put["distinct_approvers"] != false ||
		put["require_approval_for_all"] != false || len(put.list("steps")) != 1 {
		t.Fatalf("replaced: %v", put)
	}
	if got := e.must(200, ann.token, "GET", e.o("/approval-chains/"+id), ""); got.s("name") != "Brand v2" {
		t.Fatalf("get: %v", got)
	}
	e.problem(422, cs.EINVALID, e.owner.token, "PUT", e.o("/approval-chains/"+id), `{"name": "Brand v2", "steps": []}`)

	// A chain in use, or a team a chain names, cannot be deleted.
	e.problem(409, cs.EINUSE, e.owner.token, "DELETE", e.o("/approval-chains/"+id), "")
	e.must(200, e.owner.token, "PUT", e.o("/approval-chains/"+id), fmt.Sprintf(`{"name": "Brand v3", "steps": [{"approver": {"team": %q}}]}`, pr))
	e.problem(409, cs.EINUSE, e.owner.token, "DELETE", e.o("/teams/"+pr), "")
	e.must(200, e.owner.token, "PATCH", e.o("/accounts/"+acct), `{"approval_chain_id": null}`)
	e.must(204, e.owner.token, "DELETE", e.o("/approval-chains/"+id), "")
	e.problem(404, cs.ENOTFOUND, e.owner.token, "GET", e.o("/approval-chains/"+id), "")
	e.must(204, e.owner.token, "DELETE", e.o("/teams/"+pr), "")
}
