package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/countersign/countersign/internal/slack/slackfake"
	"github.com/countersign/countersign/internal/testenv"
)

// Abuse cases of identities (SPEC §2 Invitation and Member, §8 "an admin
// cannot act as a user who exists outside the org"): invitations that would
// hand out another user's account, and Slack ids that would make a
// colleague's clicks count as someone else's.

// idEnv is a deployment with two orgs: Acme (org A, e.orgID, whose owner
// e.owner is the attacking admin) and Victim Corp (org B), owned by Vic, a
// user who exists outside Acme.
type idEnv struct {
	*env
	db      *pgx.Conn
	slack   *slackfake.Slack // nil when Slack is not configured
	ownerID string           // e.owner's member id in org A
	orgB    string
	victim  person // Vic's token and member id in org B
}

// newIdentityEnv builds the two orgs, with Slack (the fake) configured or not.
func newIdentityEnv(t *testing.T, withSlack bool) *idEnv {
	t.Helper()
	dbURL := testenv.Postgres(t)
	tsrv := testenv.Temporal(t)
	vars := map[string]string{
		"DATABASE_URL":       dbURL,
		"TEMPORAL_ADDRESS":   tsrv.Address,
		"TEMPORAL_NAMESPACE": tsrv.Namespace,
	}
	var fake *slackfake.Slack
	if withSlack {
		fake = slackfake.New(t)
		vars["COUNTERSIGN_SLACK_BOT_TOKEN"] = "xoxb-test-token"
		vars["COUNTERSIGN_SLACK_SIGNING_SECRET"] = slackSecret
		vars["COUNTERSIGN_SLACK_API_URL"] = fake.APIURL()
	}
	e := startEnv(t, vars, testenv.Logger(t))
	db, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	ctx := context.Background()
	a, err := e.app.Store.Bootstrap(ctx, "Acme", "owner@acme.test", "Olivia Owner")
	if err != nil {
		t.Fatal(err)
	}
	e.orgID, e.owner = a.Org.ID, a.Token
	b, err := e.app.Store.Bootstrap(ctx, "Victim Corp", "vic@victim.test", "Vic Victim")
	if err != nil {
		t.Fatal(err)
	}
	return &idEnv{env: e, db: db, slack: fake, ownerID: a.Member.ID, orgB: b.Org.ID, victim: person{token: b.Token, memberID: b.Member.ID}}
}

// count answers a count(*) query.
func (e *idEnv) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// sql runs a statement on the deployment's database.
func (e *idEnv) sql(q string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Exec(context.Background(), q, args...); err != nil {
		e.t.Fatal(err)
	}
}

// answer is what an invitation endpoint said: the status and the fields a
// client (or an attacker) would look at.
type answer struct {
	status   int
	code     string
	detail   string
	apiToken string
	raw      map[string]any
}

// call sends a request and keeps the answer whatever its status.
func (e *idEnv) call(token, method, path string, body any) answer {
	e.t.Helper()
	var raw map[string]any
	status := e.do(token, method, path, body, &raw)
	a := answer{status: status, raw: raw}
	a.code, _ = raw["code"].(string)
	a.detail, _ = raw["detail"].(string)
	a.apiToken, _ = raw["api_token"].(string)
	return a
}

// inviteEmail invites an e-mail into org A as its owner and returns the
// invitation's id and token.
func (e *idEnv) inviteEmail(email string) (id, token string) {
	e.t.Helper()
	var inv struct{ ID, Token string }
	e.must(201, e.owner, "POST", e.org("/invitations"), map[string]any{"email": email, "name": "Invited Name"}, &inv)
	return inv.ID, inv.Token
}

// victimUnchanged checks that nothing about Vic changed: name, tokens,
// memberships, and that org A has no member with Vic's e-mail.
func (e *idEnv) victimUnchanged() {
	e.t.Helper()
	var me struct {
		User struct{ Name string } `json:"user"`
	}
	e.must(200, e.victim.token, "GET", "/v1/me", nil, &me)
	if me.User.Name != "Vic Victim" {
		e.t.Errorf("Vic's name is now %q", me.User.Name)
	}
	if n := e.count(`SELECT count(*) FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE u.email = 'vic@victim.test'`); n != 1 {
		e.t.Errorf("Vic has %d API tokens, want the 1 Vic made", n)
	}
	if n := e.count(`SELECT count(*) FROM members m JOIN users u ON u.id = m.user_id WHERE u.email = 'vic@victim.test'`); n != 1 {
		e.t.Errorf("Vic has %d memberships, want only org B's", n)
	}
}

// cannotReadOrgB checks that a token an attacker got (if any) opens nothing
// in org B.
func (e *idEnv) cannotReadOrgB(token string) {
	e.t.Helper()
	if token == "" {
		return
	}
	if code := e.do(token, "GET", "/v1/orgs/"+e.orgB+"/members", nil, nil); code == 200 {
		e.t.Errorf("the token the attacker obtained reads org B's members")
	}
}

// memberSlackID reads a member's Slack id in org A.
func (e *idEnv) memberSlackID(memberID string) string {
	e.t.Helper()
	var m struct {
		SlackUserID string `json:"slack_user_id"`
	}
	e.must(200, e.owner, "GET", e.org("/members/"+memberID), nil, &m)
	return m.SlackUserID
}

func init() {
	addAbuse(
		abuseCase{
			Attacker: "admin of another org",
			Attack:   "accepts an invitation for an existing user's e-mail without their token",
			Spec:     "§2 Invitation",
			Run: func(t *testing.T) {
				e := newIdentityEnv(t, false)
				_, token := e.inviteEmail("VIC@victim.test")
				a := e.call("", "POST", "/v1/invitations/"+token+"/accept", map[string]any{"name": "Pwned"})
				if a.status != 401 || a.apiToken != "" {
					t.Errorf("anonymous accept of an existing user's invitation: %d %v, want 401 and no token", a.status, a.raw)
				}
				e.cannotReadOrgB(a.apiToken)
				e.victimUnchanged()
				if n := e.count(`SELECT count(*) FROM invitations WHERE status = 'pending'`); n != 1 {
					t.Errorf("the invitation is no longer pending (%d pending)", n)
				}
				// Declining in Vic's place is refused as well: only Vic answers.
				if a := e.call("", "POST", "/v1/invitations/"+token+"/decline", nil); a.status != 401 {
					t.Errorf("anonymous decline of an existing user's invitation: %d %v, want 401", a.status, a.raw)
				}
				if n := e.count(`SELECT count(*) FROM invitations WHERE status = 'pending'`); n != 1 {
					t.Errorf("the invitation is no longer pending after the decline (%d pending)", n)
				}
			},
		},
		abuseCase{
			Attacker: "admin of another org",
			Attack:   "accepts an existing user's invitation with their own token",
			Spec:     "§2 Invitation",
			Run: func(t *testing.T) {
				e := newIdentityEnv(t, false)
				_, token := e.inviteEmail("vic@victim.test")
				a := e.call(e.owner, "POST", "/v1/invitations/"+token+"/accept", nil)
				if a.status != 403 || a.code != "invitation_email_mismatch" || !strings.Contains(a.detail, "vic@victim.test") || a.apiToken != "" {
					t.Errorf("accepting Vic's invitation with the attacker's token: %d %v, want 403 invitation_email_mismatch naming the e-mail", a.status, a.raw)
				}
				e.cannotReadOrgB(a.apiToken)
				e.victimUnchanged()
				if n := e.count(`SELECT count(*) FROM invitations WHERE status = 'pending'`); n != 1 {
					t.Errorf("the invitation is no longer pending (%d pending)", n)
				}
				// Nor can the attacker's token take an invitation meant for a new e-mail.
				_, fresh := e.inviteEmail("newbie@acme.test")
				if a := e.call(e.owner, "POST", "/v1/invitations/"+fresh+"/accept", nil); a.status != 403 || a.apiToken != "" {
					t.Errorf("accepting a new e-mail's invitation with another user's token: %d %v, want 403", a.status, a.raw)
				}
				if n := e.count(`SELECT count(*) FROM users WHERE email = 'newbie@acme.test'`); n != 0 {
					t.Errorf("a user was created for newbie@acme.test")
				}
			},
		},
		abuseCase{
			Attacker: "anyone holding an invitation token",
			Attack:   "reuses a used, declined, revoked or expired invitation",
			Spec:     "§2 Invitation",
			Run: func(t *testing.T) {
				e := newIdentityEnv(t, false)
				users := func() int { return e.count(`SELECT count(*) FROM users`) }
				tokens := func() int { return e.count(`SELECT count(*) FROM api_tokens`) }

				_, used := e.inviteEmail("used@acme.test")
				e.must(200, "", "POST", "/v1/invitations/"+used+"/accept", nil, nil)
				_, declined := e.inviteEmail("declined@acme.test")
				e.must(200, "", "POST", "/v1/invitations/"+declined+"/decline", nil, nil)
				revokedID, revoked := e.inviteEmail("revoked@acme.test")
				if code := e.do(e.owner, "DELETE", e.org("/invitations/"+revokedID), nil, nil); code != 204 {
					t.Errorf("revoking an invitation: %d, want 204", code)
				}
				expiredID, expired := e.inviteEmail("expired@acme.test")
				e.sql(`UPDATE invitations SET expires_at = now() - interval '1 minute' WHERE id = $1`, expiredID)

				u0, t0 := users(), tokens()
				for _, tc := range []struct{ name, token, code string }{
					{"used", used, "invitation_used"},
					{"declined", declined, "invitation_declined"},
					{"revoked", revoked, "invitation_revoked"},
					{"expired", expired, "invitation_expired"},
				} {
					for _, verb := range []string{"accept", "decline"} {
						a := e.call("", "POST", "/v1/invitations/"+tc.token+"/"+verb, nil)
						if a.status != 410 || a.code != tc.code || a.apiToken != "" || !strings.Contains(a.detail, tc.name) {
							t.Errorf("%s of a %s invitation: %d %v, want 410 %s saying %q", verb, tc.name, a.status, a.raw, tc.code, tc.name)
						}
					}
				}
				if u, tk := users(), tokens(); u != u0 || tk != t0 {
					t.Errorf("users %d -> %d, API tokens %d -> %d: a dead invitation wrote", u0, u, t0, tk)
				}
				if n := e.count(`SELECT count(*) FROM users WHERE email IN ('declined@acme.test', 'revoked@acme.test', 'expired@acme.test')`); n != 0 {
					t.Errorf("%d users created from dead invitations", n)
				}
				// An unknown token is not found.
				if a := e.call("", "POST", "/v1/invitations/csi_unknown/accept", nil); a.status != 404 {
					t.Errorf("unknown invitation: %d %v, want 404", a.status, a.raw)
				}
			},
		},
		abuseCase{
			Attacker: "member",
			Attack:   "links a colleague's Slack id to themselves",
			Spec:     "§2 Member",
			Run: func(t *testing.T) {
				e := newIdentityEnv(t, true)
				mallet, cora := e.invite("Mallet", "member"), e.invite("Cora", "member")
				// Neither is in Slack when they join, so neither is linked by e-mail;
				// then Cora joins Slack.
				e.slack.Eventually("looked both up by e-mail", func() bool { return len(e.slack.Calls("users.lookupByEmail")) >= 2 })
				e.slack.AddUser("UCORA", "cora@acme.test")
				var out map[string]any
				code := e.do(mallet.token, "PATCH", e.org("/members/"+mallet.memberID), map[string]any{"slack_user_id": "UCORA"}, &out)
				if code != 403 || !strings.Contains(strings.ToLower(out["detail"].(string)), "e-mail") {
					t.Errorf("linking Cora's Slack id to Mallet: %d %v, want 403 saying the e-mail does not match", code, out)
				}
				if got := e.memberSlackID(mallet.memberID); got != "" {
					t.Errorf("Mallet's Slack id is now %q", got)
				}
				if got := e.memberSlackID(cora.memberID); got != "" {
					t.Errorf("Cora's Slack id is now %q", got)
				}
				if n := len(e.slack.Calls("users.info")); n == 0 {
					t.Errorf("Slack's users.info was never asked")
				}
			},
		},
		abuseCase{
			Attacker: "member",
			Attack:   "sets a Slack id while Slack is not configured",
			Spec:     "§2 Member",
			Run: func(t *testing.T) {
				e := newIdentityEnv(t, false)
				mallet := e.invite("Mallet", "member")
				var out map[string]any
				code := e.do(mallet.token, "PATCH", e.org("/members/"+mallet.memberID), map[string]any{"slack_user_id": "UANY"}, &out)
				if code != 403 || !strings.Contains(out["detail"].(string), "Slack") {
					t.Errorf("setting a Slack id without Slack: %d %v, want 403 with the reason", code, out)
				}
				if got := e.memberSlackID(mallet.memberID); got != "" {
					t.Errorf("Mallet's Slack id is now %q", got)
				}
			},
		},
		abuseCase{
			Attacker: "admin",
			Attack:   "links a Slack id that another member already holds",
			Spec:     "§2 Member",
			Run: func(t *testing.T) {
				e := newIdentityEnv(t, false)
				ana, bo := e.invite("Ana", "member"), e.invite("Bo", "member")
				e.must(200, e.owner, "PATCH", e.org("/members/"+ana.memberID), map[string]any{"slack_user_id": "UANA"}, nil)
				var out map[string]any
				code := e.do(e.owner, "PATCH", e.org("/members/"+bo.memberID), map[string]any{"slack_user_id": "UANA"}, &out)
				if code != 409 || out["code"] != "slack_id_taken" {
					raw, _ := json.Marshal(out)
					t.Errorf("linking a taken Slack id: %d %s, want 409 slack_id_taken", code, raw)
				}
				if a, b := e.memberSlackID(ana.memberID), e.memberSlackID(bo.memberID); a != "UANA" || b != "" {
					t.Errorf("Slack ids after the refusal: Ana %q, Bo %q", a, b)
				}
			},
		},
	)
}
