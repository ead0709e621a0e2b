package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	cs "github.com/countersign/countersign"
)

func TestInvitationAcceptAndDecline(t *testing.T) {
	e := newEnv(t)
	pr := e.team("PR")
	e.problem(422, cs.EINVALID, e.owner.token, "POST", e.o("/invitations"), `{"email": "ana@acme.test", "teams": ["Nope"]}`)
	e.problem(422, cs.EINVALID, e.owner.token, "POST", e.o("/invitations"), `{"email": "not-an-email"}`)
	inv := e.must(201, e.owner.token, "POST", e.o("/invitations"), `{"email": "ana@acme.test", "name": "Ana", "org_role": "admin", "teams": ["pr"]}`)
	if !strings.HasPrefix(inv.s("token"), "csi_") || inv.s("expires_at") == "" || inv.s("org_role") != "admin" {
		t.Fatalf("invitation: %v", inv)
	}
	// The token is stored hashed.
	if n := e.count(`SELECT count(*) FROM invitations WHERE position($1::bytea IN token_hash) > 0`, []byte(inv.s("token"))); n != 0 {
		t.Fatal("the invitation token is stored in clear")
	}
	acc := e.must(200, "", "POST", "/v1/invitations/"+inv.s("token")+"/accept", `{"name": "Ana Lima"}`)
	member := acc.m("member")
	if acc.s("api_token") == "" || member.s("org_role") != "admin" || member.s("org_id") != e.org || acc.m("user").s("name") != "Ana Lima" {
		t.Fatalf("accepted: %v", acc)
	}
	// The new token works and the member is in the invited team.
	me := e.must(200, acc.s("api_token"), "GET", "/v1/me", "")
	if me.m("user").s("email") != "ana@acme.test" {
		t.Fatalf("/v1/me: %v", me)
	}
	ts := e.must(200, acc.s("api_token"), "GET", e.o("/members/"+member.s("id")), "").list("teams")
	if len(ts) != 1 || ts[0].s("team_id") != pr {
		t.Fatalf("teams after accepting: %v", ts)
	}
	// The invitation cannot be answered twice; the e-mail is a member now.
	e.problem(410, cs.EINVITATIONUSED, "", "POST", "/v1/invitations/"+inv.s("token")+"/accept", "")
	e.problem(410, cs.EINVITATIONUSED, "", "POST", "/v1/invitations/"+inv.s("token")+"/decline", "")
	e.problem(409, cs.EALREADYMEMBER, e.owner.token, "POST", e.o("/invitations"), `{"email": "ANA@acme.test"}`)

	// Decline: the token stops working.
	dec := e.must(201, e.owner.token, "POST", e.o("/invitations"), `{"email": "bob@acme.test"}`)
	e.must(200, "", "POST", "/v1/invitations/"+dec.s("token")+"/decline", "")
	e.problem(410, cs.EINVITATIONDECLINED, "", "POST", "/v1/invitations/"+dec.s("token")+"/accept", "")

	// A new invitation replaces a pending one.
	first := e.must(201, e.owner.token, "POST", e.o("/invitations"), `{"email": "cy@acme.test"}`)
	second := e.must(201, e.owner.token, "POST", e.o("/invitations"), `{"email": "cy@acme.test", "org_role": "admin"}`)
	e.problem(410, cs.EINVITATIONREPLACED, "", "POST", "/v1/invitations/"+first.s("token")+"/accept", "")
	if got := e.must(200, "", "POST", "/v1/invitations/"+second.s("token")+"/accept", "").m("member"); got.s("org_role") != "admin" {
		t.Fatalf("second invitation: %v", got)
	}

	// Unknown tokens are not found.
	e.problem(404, cs.ENOTFOUND, "", "POST", "/v1/invitations/csi_unknown/accept", "")
}

func TestInvitationExpires(t *testing.T) {
	e := newEnv(t)
	inv := e.must(201, e.owner.token, "POST", e.o("/invitations"), `{"email": "late@acme.test"}`)
	var days float64
	if err := e.db.QueryRow(context.Background(), `SELECT extract(epoch FROM expires_at - created_at) / 86400 FROM invitations WHERE id = $1`,
		inv.s("id")).Scan(&days); err != nil || days != 14 {
		t.Fatalf("invitation lasts %v days (%v), want 14", days, err)
	}
	e.sql(`UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = $1`, inv.s("id"))
	e.problem(410, cs.EINVITATIONEXPIRED, "", "POST", "/v1/invitations/"+inv.s("token")+"/accept", "")
	e.problem(410, cs.EINVITATIONEXPIRED, "", "POST", "/v1/invitations/"+inv.s("token")+"/decline", "")
	if n := e.count(`SELECT count(*) FROM users WHERE email = 'late@acme.test'`); n != 0 {
		t.Fatal("an expired invitation created a user")
	}
	// A new invitation can be sent.
	again := e.must(201, e.owner.token, "POST", e.o("/invitations"), `{"email": "late@acme.test"}`)
	e.must(200, "", "POST", "/v1/invitations/"+again.s("token")+"/accept", "")
}

func TestInvitationsDisabled(t *testing.T) {
	e := newEnv(t)
	// Dee is a user elsewhere and turns invitations off.
	b, err := e.st.Bootstrap(context.Background(), "Elsewhere", "dee@else.test", "Dee")
	if err != nil {
		t.Fatal(err)
	}
	if u := e.must(200, b.Token, "PATCH", "/v1/me", `{"allow_invitations": false}`); u["allow_invitations"] != false {
		t.Fatalf("PATCH /v1/me: %v", u)
	}
	out := e.problem(409, cs.EINVITATIONSDISABLED, e.owner.token, "POST", e.o("/invitations"), `{"email": "DEE@else.test"}`)
	if !strings.Contains(out.s("detail"), "invitations") {
		t.Errorf("detail: %v", out)
	}
	// Turned back on, the invitation goes through.
	e.must(200, b.Token, "PATCH", "/v1/me", `{"allow_invitations": true}`)
	e.must(201, e.owner.token, "POST", e.o("/invitations"), `{"email": "dee@else.test"}`)
}

func TestInvitationImport(t *testing.T) {
	e := newEnv(t)
	admin := e.join("Ada", "admin")
	existing := e.join("Eve", "member")
	e.team("PR")
	evEmail := e.must(200, existing.token, "GET", "/v1/me", "").m("user").s("email")
	if _, err := e.st.Bootstrap(context.Background(), "Else", "shy@else.test", "Shy"); err != nil {
		t.Fatal(err)
	}
	e.sql(`UPDATE users SET allow_invitations = false WHERE email = 'shy@else.test'`)
	e.must(201, e.owner.token, "POST", e.o("/invitations"), `{"email": "pending@acme.test"}`)

	csv := "email,name,org_role,teams\n" +
		"ana@acme.test,Ana,member,PR;Social\n" + // 1 invited, Social created
		"bob@acme.test,Bob,,\n" + // 2 invited as member
		evEmail + ",Eve,member,\n" + // 3 skipped: member
		"ANA@acme.test,Ana again,,\n" + // 4 skipped: duplicate of 1
		"pending@acme.test,,,\n" + // 5 skipped: already invited
		"not-an-email,X,member,\n" + // 6 error
		"cy@acme.test,Cy,king,\n" + // 7 error: role
		"boss@acme.test,Boss,owner,\n" + // 8 error: only owners invite owners
		"shy@else.test,Shy,member,\n" + // 9 error: invitations disabled
		"dan@acme.test,Dan,member,PR,extra\n" + // 10 error: too many fields
		"ed@acme.test,\"Ed, Jr.\",ADMIN,social\n" // 11 invited, existing team (case-insensitive)
	code, raw := e.req(admin.token, "POST", e.o("/invitations/import"), "text/csv; charset=utf-8", csv)
	if code != 200 {
		t.Fatalf("import: %d %s", code, raw)
	}
	out := decode(t, raw)
	want := []struct{ result, code string }{
		{"invited", ""}, {"invited", ""}, {"skipped", cs.EALREADYMEMBER}, {"skipped", "duplicate"}, {"skipped", "already_invited"},
		{"error", cs.EINVALID}, {"error", cs.EINVALID}, {"error", cs.EFORBIDDEN}, {"error", cs.EINVITATIONSDISABLED},
		{"error", cs.EINVALID}, {"invited", ""},
	}
	rows := out.list("rows")
	if len(rows) != len(want) || out["invited"] != 3.0 || out["skipped"] != 3.0 || out["errors"] != 5.0 {
		t.Fatalf("import result: %s", raw)
	}
	for i, w := range want {
		r := rows[i]
		if r["row"] != float64(i+1) || r["line"] != float64(i+2) || r.s("result") != w.result || r.s("code") != w.code ||
			(w.result != "invited" && r.s("reason") == "") {
			t.Errorf("row %d: %v, want %v", i+1, r, w)
		}
	}
	// Invited rows carry a working invitation; the teams were created or found.
	ed := rows[10].m("invitation")
	if ed.s("name") != "Ed, Jr." || ed.s("org_role") != "admin" {
		t.Errorf("ed: %v", ed)
	}
	acc := e.must(200, "", "POST", "/v1/invitations/"+rows[0].m("invitation").s("token")+"/accept", "")
	var teams []string
	for _, tm := range e.must(200, acc.s("api_token"), "GET", e.o("/members/"+acc.m("member").s("id")), "").list("teams") {
		teams = append(teams, tm.s("team_name"))
	}
	if fmt.Sprint(teams) != "[PR Social]" {
		t.Errorf("ana's teams: %v", teams)
	}
	if n := e.count(`SELECT count(*) FROM teams WHERE org_id = $1`, e.org); n != 2 {
		t.Errorf("%d teams, want PR and Social", n)
	}
	// Importing the same file again invites nobody twice.
	code, raw = e.req(admin.token, "POST", e.o("/invitations/import"), "text/csv", csv)
	if again := decode(t, raw); code != 200 || again["invited"] != 0.0 {
		t.Errorf("second import: %d %s", code, raw)
	}
}

func TestInvitationImportIsRefusedWhole(t *testing.T) {
	e := newEnv(t)
	e.team("PR")
	before := func() [2]int {
		return [2]int{e.count(`SELECT count(*) FROM invitations`), e.count(`SELECT count(*) FROM teams`)}
	}
	start := before()
	var big strings.Builder
	big.WriteString("email,teams\n")
	for i := range 501 {
		fmt.Fprintf(&big, "p%d@acme.test,New%d\n", i, i)
	}
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"501 rows", "text/csv", big.String(), 413, cs.ETOOMANYROWS},
		{"JSON body", "application/json", `{"email": "a@acme.test"}`, 415, "unsupported_media_type"},
		{"no content type", "-", "email\na@acme.test\n", 415, "unsupported_media_type"},
		{"JSON as CSV", "text/csv", `[{"email": "a@acme.test"}]`, 422, cs.EINVALIDCSV},
		{"binary", "text/csv", "email\n\x89PNG\r\n\x1a\n\x00\x00", 422, cs.EINVALIDCSV},
		{"no header", "text/csv", "a@acme.test,Ana\n", 422, cs.EINVALIDCSV},
		{"bad quotes", "text/csv", "email,name\na@acme.test,\"Ana\n", 422, cs.EINVALIDCSV},
		{"empty", "text/csv", "", 422, cs.EINVALIDCSV},
		{"over 1 MiB", "text/csv", "email,name\n" + strings.Repeat("a@acme.test,"+strings.Repeat("x", 3000)+"\n", 400), 413, "body_too_large"},
	} {
		code, raw := e.req(e.owner.token, "POST", e.o("/invitations/import"), tc.contentType, tc.body)
		var out obj
		_ = json.Unmarshal(raw, &out)
		if code != tc.status || out.s("code") != tc.code || out.s("detail") == "" {
			t.Errorf("%s: %d %.200s, want %d %s", tc.name, code, raw, tc.status, tc.code)
		}
	}
	if after := before(); after != start {
		t.Fatalf("a refused import wrote: invitations and teams %v -> %v", start, after)
	}
	// 500 rows are fine.
	var ok strings.Builder
	ok.WriteString("email\n")
	for i := range 500 {
		fmt.Fprintf(&ok, "p%d@acme.test\n", i)
	}
	code, raw := e.req(e.owner.token, "POST", e.o("/invitations/import"), "text/csv", ok.String())
	if out := decode(t, raw); code != 200 || out["invited"] != 500.0 {
		t.Fatalf("500 rows: %d %.300s", code, raw)
	}
}

// An e-mail that already has a user is accepted only by that user, with their
// own API token: no new token, nothing about the user changes.
func TestInvitationOfAnExistingUser(t *testing.T) {
	e := newEnv(t)
	pr := e.team("PR")
	dee, err := e.st.Bootstrap(context.Background(), "Elsewhere", "dee@else.test", "Dee Original")
	if err != nil {
		t.Fatal(err)
	}
	inv := e.must(201, e.owner.token, "POST", e.o("/invitations"), `{"email": "Dee@Else.test", "name": "Not Dee", "org_role": "admin", "teams": ["PR"]}`)
	path := "/v1/invitations/" + inv.s("token") + "/accept"
	tokens := func() int { return e.count(`SELECT count(*) FROM api_tokens WHERE user_id = $1`, dee.User.ID) }

	// Anonymous: 401 naming the fix, with WWW-Authenticate; nothing changes.
	code, raw := e.req("", "POST", path, "", `{"name": "Mallory"}`)
	if out := decode(t, raw); code != 401 || out.s("code") != cs.EINVITATIONNEEDSTOKEN || out["api_token"] != nil ||
		!strings.Contains(out.s("detail"), "API token") {
		t.Fatalf("anonymous accept: %d %s", code, raw)
	}
	// Another user's token and an unknown token: refused.
	e.problem(403, cs.EINVITATIONMISMATCH, e.owner.token, "POST", path, "")
	e.problem(401, cs.EUNAUTHORIZED, "cs_not_a_token", "POST", path, "")
	e.problem(401, cs.EINVITATIONNEEDSTOKEN, "", "POST", "/v1/invitations/"+inv.s("token")+"/decline", "")
	e.problem(403, cs.EINVITATIONMISMATCH, e.owner.token, "POST", "/v1/invitations/"+inv.s("token")+"/decline", "")
	if n := e.count(`SELECT count(*) FROM members WHERE org_id = $1 AND user_id = $2`, e.org, dee.User.ID); n != 0 || tokens() != 1 {
		t.Fatalf("refused accepts wrote: %d members, %d tokens", n, tokens())
	}
	if n := e.count(`SELECT count(*) FROM users WHERE id = $1 AND name = 'Dee Original'`, dee.User.ID); n != 1 {
		t.Fatal("a refused accept renamed the user")
	}

	// Dee's own token: joined as invited, no token, the name kept even when
	// the body names someone else.
	acc := e.must(200, dee.Token, "POST", path, `{"name": "Dee New"}`)
	if _, has := acc["api_token"]; has || acc.m("member").s("org_role") != "admin" || acc.m("user").s("name") != "Dee Original" {
		t.Fatalf("accepted with the user's token: %v", acc)
	}
	if tokens() != 1 {
		t.Fatalf("accepting issued a token: %d", tokens())
	}
	ts := e.must(200, dee.Token, "GET", e.o("/members/"+acc.m("member").s("id")), "").list("teams")
	if len(ts) != 1 || ts[0].s("team_id") != pr {
		t.Fatalf("teams: %v", ts)
	}
	e.problem(410, cs.EINVITATIONUSED, dee.Token, "POST", path, "")

	// Declining with one's own token works too.
	again := e.must(201, e.owner.token, "POST", e.o("/invitations"), `{"email": "dee2@else.test"}`)
	dee2, err := e.st.Bootstrap(context.Background(), "Else 2", "dee2@else.test", "Dee Two")
	if err != nil {
		t.Fatal(err)
	}
	e.must(200, dee2.Token, "POST", "/v1/invitations/"+again.s("token")+"/decline", "")
	e.problem(410, cs.EINVITATIONDECLINED, dee2.Token, "POST", "/v1/invitations/"+again.s("token")+"/accept", "")
}

// Admins list the pending invitations and revoke them; nobody else can.
func TestInvitationListAndRevoke(t *testing.T) {
	e := newEnv(t)
	e.team("PR")
	member := e.join("Mo", "member")
	var ids []string
	for i := range 3 {
		ids = append(ids, e.must(201, e.owner.token, "POST", e.o("/invitations"),
			fmt.Sprintf(`{"email": "p%d@acme.test", "teams": ["PR"]}`, i)).s("id"))
	}
	// Neither answered nor expired invitations are listed.
	done := e.must(201, e.owner.token, "POST", e.o("/invitations"), `{"email": "done@acme.test"}`)
	e.must(200, "", "POST", "/v1/invitations/"+done.s("token")+"/accept", "")
	old := e.must(201, e.owner.token, "POST", e.o("/invitations"), `{"email": "old@acme.test"}`)
	e.sql(`UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = $1`, old.s("id"))

	page := e.must(200, e.owner.token, "GET", e.o("/invitations?limit=2"), "")
	items := page.list("items")
	if len(items) != 2 || items[0].s("id") != ids[0] || items[0].s("email") != "p0@acme.test" || page.s("next_cursor") == "" ||
		items[0]["token"] != nil || fmt.Sprint(items[0]["teams"]) != "[PR]" {
		t.Fatalf("first page: %v", page)
	}
	rest := e.must(200, e.owner.token, "GET", e.o("/invitations?limit=2&cursor="+page.s("next_cursor")), "")
	if items := rest.list("items"); len(items) != 1 || items[0].s("id") != ids[2] || rest["next_cursor"] != nil {
		t.Fatalf("second page: %v", rest)
	}
	e.problem(403, cs.EFORBIDDEN, member.token, "GET", e.o("/invitations"), "")
	e.problem(403, cs.EFORBIDDEN, member.token, "DELETE", e.o("/invitations/"+ids[0]), "")

	// Revoke: the token dies, the list shrinks, the audit log has it.
	e.must(204, e.owner.token, "DELETE", e.o("/invitations/"+ids[0]), "")
	e.must(204, e.owner.token, "DELETE", e.o("/invitations/"+ids[0]), "") // again: no-op
	if n := e.count(`SELECT count(*) FROM org_audit WHERE org_id = $1 AND object_type = 'invitation' AND object_id = $2
		AND action = 'revoke' AND actor_member_id = $3 AND after->>'status' = 'revoked'`, e.org, ids[0], e.owner.id); n != 1 {
		t.Fatalf("%d audit rows for the revocation, want 1", n)
	}
	if items := e.must(200, e.owner.token, "GET", e.o("/invitations"), "").list("items"); len(items) != 2 {
		t.Fatalf("after revoking: %v", items)
	}
	e.must(204, e.owner.token, "DELETE", e.o("/invitations/"+old.s("id")), "") // expired ones too
	e.problem(410, cs.EINVITATIONUSED, e.owner.token, "DELETE", e.o("/invitations/"+done.s("id")), "")
	e.problem(404, cs.ENOTFOUND, e.owner.token, "DELETE", e.o("/invitations/0190a000-0000-7000-8000-000000000009"), "")
	e.problem(400, "invalid_id", e.owner.token, "DELETE", e.o("/invitations/nope"), "")

	// Another org's admin cannot see or revoke them.
	other, err := e.st.Bootstrap(context.Background(), "Other", "boss@other.test", "Boss")
	if err != nil {
		t.Fatal(err)
	}
	e.problem(404, cs.ENOTFOUND, other.Token, "DELETE", e.o("/invitations/"+ids[1]), "")
	e.problem(404, cs.ENOTFOUND, other.Token, "DELETE", "/v1/orgs/"+other.Org.ID+"/invitations/"+ids[1], "")
	if items := e.must(200, other.Token, "GET", "/v1/orgs/"+other.Org.ID+"/invitations", "").list("items"); len(items) != 0 {
		t.Fatalf("another org sees: %v", items)
	}
	if n := e.count(`SELECT count(*) FROM invitations WHERE id = $1 AND status = 'pending'`, ids[1]); n != 1 {
		t.Fatal("another org's admin revoked the invitation")
	}
}
