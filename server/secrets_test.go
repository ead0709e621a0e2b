package server_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	cs "github.com/countersign/countersign"
)

// Credentials are write-only and tokens are shown once: after the answer that
// created them, no response and no log line contains them, and the database
// holds credentials only sealed.
func TestSecretsAreShownOnceAndNeverLogged(t *testing.T) {
	e := newEnv(t)
	const (
		webhookSecret = "whsec_S3CR3T-webhook-value"
		mastoToken    = "masto-T0KEN-value"
		newToken      = "masto-R0TATED-value"
		rejected      = "R3JECTED-secret-value"
	)
	mark := func() int { e.mu.Lock(); defer e.mu.Unlock(); return len(e.bodies) }
	// bodiesSince returns every response body after mark m.
	bodiesSince := func(m int) string {
		e.mu.Lock()
		defer e.mu.Unlock()
		return strings.Join(e.bodies[m:], "\n")
	}

	// Account credentials: never in any response, not even the creating one.
	start := mark()
	hook := e.must(201, e.owner.token, "POST", e.o("/accounts"), fmt.Sprintf(`{"network": "webhook", "handle": "hook", "timezone": "UTC",
		"settings": {"url": "https://hooks.acme.test/in"}, "credentials": {"secret": %q}}`, webhookSecret)).s("id")
	masto := e.must(201, e.owner.token, "POST", e.o("/accounts"), fmt.Sprintf(`{"network": "mastodon", "handle": "@acme", "timezone": "UTC",
		"settings": {"instance_url": "https://mastodon.test"}, "credentials": {"access_token": %q}}`, mastoToken)).s("id")
	e.must(200, e.owner.token, "GET", e.o("/accounts/"+hook), "")
	e.must(200, e.owner.token, "GET", e.o("/accounts"), "")
	e.must(200, e.owner.token, "PATCH", e.o("/accounts/"+masto), fmt.Sprintf(`{"credentials": {"access_token": %q}}`, newToken))
	// A refused credential is not echoed back in the error.
	e.problem(422, cs.EINVALID, e.owner.token, "PATCH", e.o("/accounts/"+hook), fmt.Sprintf(`{"credentials": {"secret": %q}}`, rejected))
	e.problem(422, cs.EINVALID, e.owner.token, "PATCH", e.o("/accounts/"+hook), fmt.Sprintf(`{"credentials": {"token": %q}}`, rejected))
	e.problem(400, "invalid_json", e.owner.token, "PATCH", e.o("/accounts/"+hook), fmt.Sprintf(`{"credentials": {"secret": %q`, rejected))
	e.problem(422, cs.EINVALID, e.owner.token, "PATCH", e.o("/accounts/"+hook), fmt.Sprintf(`{"credentials": {"secret": [%q]}}`, rejected))
	if got := bodiesSince(start); strings.Contains(got, "S3CR3T") || strings.Contains(got, "T0KEN") ||
		strings.Contains(got, "R0TATED") || strings.Contains(got, "R3JECTED") {
		t.Fatalf("a response shows a credential:\n%s", got)
	}
	// At rest they are sealed; the publisher's store call opens them.
	for _, secret := range []string{webhookSecret, mastoToken, newToken} {
		if n := e.count(`SELECT count(*) FROM accounts WHERE position($1::bytea IN credentials) > 0 OR settings::text LIKE '%' || $2 || '%'`,
			[]byte(secret), secret); n != 0 {
			t.Fatalf("%s is stored in clear", secret)
		}
	}
	creds, err := e.st.AccountCredentials(context.Background(), e.org, masto)
	if err != nil || len(creds) != 1 || creds["access_token"] != newToken {
		t.Fatalf("AccountCredentials = %v, %v", creds, err)
	}
	if creds, err := e.st.AccountCredentials(context.Background(), e.org, hook); err != nil || creds["secret"] != webhookSecret {
		t.Fatalf("webhook credentials = %v, %v", creds, err)
	}
	// Sealed for one account, they do not open for another.
	e.sql(`UPDATE accounts SET credentials = (SELECT credentials FROM accounts WHERE id = $1) WHERE id = $2`, hook, masto)
	if _, err := e.st.AccountCredentials(context.Background(), e.org, masto); err == nil || strings.Contains(err.Error(), "S3CR3T") {
		t.Fatalf("swapped credentials opened: %v", err)
	}

	// An invitation token appears in the answer that made it, and an API
	// token in the answer of accept: nowhere after that.
	inv := e.must(201, e.owner.token, "POST", e.o("/invitations"), `{"email": "ivy@acme.test"}`)
	invToken := inv.s("token")
	start = mark()
	acc := e.must(200, "", "POST", "/v1/invitations/"+invToken+"/accept", `{"name": "Ivy"}`)
	apiToken := acc.s("api_token")
	afterAccept := mark()
	e.problem(410, cs.EINVITATIONUSED, "", "POST", "/v1/invitations/"+invToken+"/accept", "")
	e.must(200, apiToken, "GET", "/v1/me", "")
	e.must(200, apiToken, "GET", "/v1/me/tokens", "")
	e.must(200, apiToken, "GET", e.o("/members"), "")
	created := e.must(201, apiToken, "POST", "/v1/me/tokens", `{"label": "ci"}`)
	second := created.s("token")
	afterCreate := mark()
	e.must(200, apiToken, "GET", "/v1/me/tokens", "")
	if got := bodiesSince(start); strings.Contains(got, invToken) {
		t.Fatal("a response after the invitation shows its token")
	}
	if got := bodiesSince(afterAccept); strings.Contains(got, apiToken) {
		t.Fatal("a response after accepting shows the API token")
	}
	if got := bodiesSince(afterCreate); strings.Contains(got, second) {
		t.Fatal("a response after creating a token shows it")
	}
	// CSV import tokens, too, are shown once.
	code, raw := e.req(e.owner.token, "POST", e.o("/invitations/import"), "text/csv", "email\nzed@acme.test\n")
	csvToken := decode(t, raw).list("rows")[0].m("invitation").s("token")
	if code != 200 || csvToken == "" {
		t.Fatalf("import: %d %s", code, raw)
	}
	afterImport := mark()
	e.must(200, "", "POST", "/v1/invitations/"+csvToken+"/decline", "")
	if got := bodiesSince(afterImport); strings.Contains(got, csvToken) {
		t.Fatal("a response after the import shows its token")
	}

	// Revoked tokens stop working at once.
	var tokenID string
	for _, tk := range e.must(200, apiToken, "GET", "/v1/me/tokens", "").list("items") {
		if tk.s("label") == "ci" {
			tokenID = tk.s("id")
		}
	}
	e.must(200, second, "GET", "/v1/me", "")
	e.must(204, apiToken, "DELETE", "/v1/me/tokens/"+tokenID, "")
	e.problem(401, cs.EUNAUTHORIZED, second, "GET", "/v1/me", "")
	e.problem(404, cs.ENOTFOUND, e.owner.token, "DELETE", "/v1/me/tokens/"+tokenID, "") // not the owner's

	// No log line ever shows any of them.
	logs := e.logs.String()
	if !strings.Contains(logs, "/v1/invitations/:token/accept") {
		t.Fatalf("the requests were not logged:\n%s", logs)
	}
	for _, secret := range []string{webhookSecret, mastoToken, newToken, rejected, "S3CR3T", "T0KEN", invToken, apiToken, second, csvToken, e.owner.token} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the log shows %q", secret)
		}
	}
	// Nor is any token stored in clear.
	for _, tok := range []string{apiToken, second, e.owner.token} {
		if n := e.count(`SELECT count(*) FROM api_tokens WHERE position($1::bytea IN token_hash) > 0`, []byte(tok)); n != 0 {
			t.Fatal("an API token is stored in clear")
		}
	}
	if bytes.Contains([]byte(logs), []byte("whsec_")) {
		t.Fatal("the log shows a webhook secret prefix")
	}
}
