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
	e.problem(409, cs.EINVITATIONANSWERED, "", "POST", "/v1/invitations/"+inv.s("token")+"/accept", "")
	e.problem(409, cs.EINVITATIONANSWERED, "", "POST", "/v1/invitations/"+inv.s("token")+"/decline", "")
	e.problem(409, cs.EALREADYMEMBER, e.owner.token, "POST", e.o("/invitations"), `{"email": "ANA@acme.test"}`)

	// Decline: the token stops working.
	dec := e.must(201, e.owner.token, "POST", e.o("/invitations"), `{"email": "bob@acme.test"}`)
	e.must(200, "", "POST", "/v1/invitations/"+dec.s("token")+"/decline", "")
	e.problem(409, cs.EINVITATIONANSWERED, "", "POST", "/v1/invitations/"+dec.s("token")+"/accept", "")

	// A new invitation replaces a pending one.
	first := e.must(201, e.owner.token, "POST", e.o("/invitations"), `{"email": "cy@acme.test"}`)
	second := e.must(201, e.owner.token, "POST", e.o("/invitations"), `{"email": "cy@acme.test", "org_role": "admin"}`)
	e.problem(409, cs.EINVITATIONANSWERED, "", "POST", "/v1/invitations/"+first.s("token")+"/accept", "")
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
