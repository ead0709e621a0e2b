package e2e

import (
	"context"
	"strings"
	"testing"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/publish/fakenet"
	"github.com/countersign/countersign/internal/store"
)

// pubBootstrap makes the org and its owner, who publishes without approval
// (no chain on the account, owners hold advanced rights).
func (e *env) pubBootstrap() {
	e.t.Helper()
	b, err := e.app.Store.Bootstrap(context.Background(), "Acme", "owner@acme.test", "Olivia Owner")
	if err != nil {
		e.t.Fatal(err)
	}
	e.orgID, e.owner = b.Org.ID, b.Token
}

func (e *env) pubMastodonAccount(handle, instance, token string) string {
	e.t.Helper()
	var acct struct{ ID string }
	e.must(201, e.owner, "POST", e.org("/accounts"), map[string]any{
		"network": "mastodon", "handle": handle, "display_name": "Acme", "timezone": "Europe/Paris",
		"settings": map[string]string{"instance_url": instance}, "credentials": map[string]string{"access_token": token}}, &acct)
	return acct.ID
}

// TestPublishToMastodonExactlyOnce: a post goes through the HTTP API to a
// fake Mastodon whose first answer is a gateway error after it created the
// status; the workflow retries with the same Idempotency-Key and the post is
// published with exactly one status on the instance.
func TestPublishToMastodonExactlyOnce(t *testing.T) {
	e := newEnv(t)
	e.pubBootstrap()
	fake := fakenet.NewMastodon("mastodon-token")
	t.Cleanup(fake.Close)
	fake.Script(fakenet.Reply{Status: 502, Body: "<html>502 Bad Gateway</html>", AfterCreate: true})
	acct := e.pubMastodonAccount("acme", fake.URL, "mastodon-token")

	var post cs.Post
	e.must(201, e.owner, "POST", e.org("/posts"), map[string]any{
		"account_id": acct, "text": "Hello fediverse", "media_urls": []string{"https://cdn.acme.test/hello.png"}}, &post)
	done := e.waitPost(post.ID, "published", func(p cs.Post) bool { return p.Status == cs.PostPublished })

	if got := fake.Count(); got != 1 {
		t.Fatalf("statuses on the instance: %d, want exactly 1", got)
	}
	st := fake.Statuses[0]
	if done.ExternalID != st.ID || done.ExternalURL != st.URL {
		t.Fatalf("post %s / %s, status %+v", done.ExternalID, done.ExternalURL, st)
	}
	if st.Text != "Hello fediverse\n\nhttps://cdn.acme.test/hello.png" {
		t.Fatalf("status text %q", st.Text)
	}
	if calls := fake.CallCount("POST /api/v1/statuses"); calls != 2 {
		t.Fatalf("POST /api/v1/statuses: %d calls, want 2 (the 502, then the resend)", calls)
	}
	pub, err := e.app.Store.Publication(context.Background(), post.ID, 1)
	if err != nil || pub.Status != store.PubPublished || pub.Attempts != 2 || pub.IdemKey != st.Key ||
		!strings.Contains(pub.Evidence, "Bad Gateway (502)") {
		t.Fatalf("publication %+v (%v)", pub, err)
	}
	if strings.Contains(pub.Evidence, "mastodon-token") || strings.Contains(pub.LastError, "mastodon-token") {
		t.Fatal("the access token leaked into the publication record")
	}
}

// TestPublishRevokedMastodonToken: a revoked token fails the post at once,
// with Mastodon's reason.
func TestPublishRevokedMastodonToken(t *testing.T) {
	e := newEnv(t)
	e.pubBootstrap()
	fake := fakenet.NewMastodon("the-current-token")
	t.Cleanup(fake.Close)
	acct := e.pubMastodonAccount("acme", fake.URL, "a-revoked-token")

	var post cs.Post
	e.must(201, e.owner, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "Will not go out"}, &post)
	done := e.waitPost(post.ID, "failed", func(p cs.Post) bool { return p.Status == cs.PostFailed })
	if !strings.Contains(done.LastError, "mastodon refused the access token") || !strings.Contains(done.LastError, "The access token is invalid") {
		t.Fatalf("last error %q", done.LastError)
	}
	if strings.Contains(done.LastError, "a-revoked-token") {
		t.Fatal("the token leaked into the post's error")
	}
	if fake.Count() != 0 || fake.CallCount("POST /api/v1/statuses") != 1 {
		t.Fatalf("%d statuses, %d calls", fake.Count(), fake.CallCount("POST /api/v1/statuses"))
	}
	var found bool
	for _, ev := range done.Events {
		found = found || (ev.Type == cs.EventPublishFailed && strings.Contains(ev.Detail, "The access token is invalid"))
	}
	if !found {
		t.Fatalf("no publish_failed event with the reason: %+v", done.Events)
	}
}
