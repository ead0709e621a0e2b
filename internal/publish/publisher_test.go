package publish_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
	"github.com/countersign/countersign/internal/egress"
	"github.com/countersign/countersign/internal/publish"
	"github.com/countersign/countersign/internal/publish/fakenet"
	"github.com/countersign/countersign/internal/secrets"
	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// clientTimeout is the adapters' HTTP timeout in these tests: a stalled
// fake is given up on after it.
const clientTimeout = 1500 * time.Millisecond

// fixture is a database with an org, and a Publisher whose adapters time
// out quickly.
type fixture struct {
	t      *testing.T
	st     *store.Store
	org    string
	author string
	pub    *publish.Publisher
	n      int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := testenv.Store(t)
	if err := st.SetSecretKey(secrets.RandomBytes(32)); err != nil {
		t.Fatal(err)
	}
	b, err := st.Bootstrap(context.Background(), "Acme", "owner@acme.test", "Olivia Owner")
	if err != nil {
		t.Fatal(err)
	}
	// The fakes listen on loopback, which these tests allow.
	guard, err := egress.Parse("127.0.0.0/8,::1/128")
	if err != nil {
		t.Fatal(err)
	}
	st.SetEgress(guard)
	client := publish.NewHTTPClient(guard, clientTimeout)
	pub := publish.New(st, testenv.Logger(t), "http://countersign.test", guard)
	pub.Adapters[cs.NetworkMastodon] = publish.Mastodon{Client: client}
	pub.Adapters[cs.NetworkBluesky] = publish.Bluesky{Client: client}
	pub.Adapters[cs.NetworkX] = publish.X{Client: client}
	pub.Adapters[cs.NetworkWebhook] = publish.Webhook{Client: client}
	return &fixture{t: t, st: st, org: b.Org.ID, author: b.Member.ID, pub: pub}
}

// account creates an account; handles are made unique in the org.
func (f *fixture) account(network cs.Network, handle string, settings, creds map[string]string) cs.Account {
	f.t.Helper()
	f.n++
	if f.n > 1 {
		handle = fmt.Sprintf("%s%d", handle, f.n)
	}
	a, err := f.st.CreateAccount(context.Background(), f.org, store.NewAccount{Network: network, Handle: handle,
		Timezone: "UTC", Settings: settings, Credentials: creds})
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

// post creates a post on the account and returns its publish request.
func (f *fixture) post(acct cs.Account, text string, media ...string) activities.PublishRequest {
	f.t.Helper()
	p, _, err := f.st.CreatePost(context.Background(), store.NewPost{OrgID: f.org, AccountID: acct.ID, AuthorID: f.author,
		Text: text, MediaURLs: media})
	if err != nil {
		f.t.Fatal(err)
	}
	return activities.PublishRequest{PostID: p.ID, OrgID: f.org, AccountID: acct.ID, AuthorID: f.author,
		Revision: 1, ContentHash: p.ContentHash, Text: text, MediaURLs: media}
}

func (f *fixture) publish(ctx context.Context, req activities.PublishRequest) (activities.PublishResult, error) {
	return f.pub.Publish(ctx, req)
}

func (f *fixture) publication(req activities.PublishRequest) store.Publication {
	f.t.Helper()
	p, err := f.st.Publication(context.Background(), req.PostID, req.Revision)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// outcome is how the Publish activity's error reads to the workflow.
type outcome struct {
	typ   string // "" for success; PublishRejected, PublishUnknown, PublishRetryable; "error" otherwise
	msg   string
	delay time.Duration
}

func classify(err error) outcome {
	if err == nil {
		return outcome{}
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return outcome{typ: ae.Type(), msg: ae.Message(), delay: ae.NextRetryDelay()}
	}
	return outcome{typ: "error", msg: err.Error()}
}

func (f *fixture) expect(err error, typ string, contains ...string) outcome {
	f.t.Helper()
	o := classify(err)
	if o.typ != typ {
		f.t.Fatalf("outcome %q (%s), want %q", o.typ, o.msg, typ)
	}
	for _, s := range contains {
		if !strings.Contains(o.msg, s) {
			f.t.Fatalf("message %q lacks %q", o.msg, s)
		}
	}
	return o
}

// noSecrets fails if a credential shows in the publication's record.
func (f *fixture) noSecrets(req activities.PublishRequest, secrets ...string) {
	f.t.Helper()
	p := f.publication(req)
	for _, s := range secrets {
		if strings.Contains(p.LastError, s) || strings.Contains(p.Evidence, s) {
			f.t.Fatalf("a credential leaked into the publication record: %q / %q", p.LastError, p.Evidence)
		}
	}
}

// cancelOnAccept returns a context that is canceled the moment the fake
// network has accepted the post: the worker "dies" between the network call
// and recording its outcome.
func cancelOnAccept(hook *func()) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	*hook = func() { once.Do(cancel) }
	return ctx
}

// --- Mastodon -----------------------------------------------------------------

func mastodonAccount(f *fixture, fake *fakenet.Mastodon) cs.Account {
	return f.account(cs.NetworkMastodon, "acme", map[string]string{"instance_url": fake.URL}, map[string]string{"access_token": "mastodon-token-1"})
}

func TestPublishMastodon(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	t.Run("success, with media as links", func(t *testing.T) {
		fake := fakenet.NewMastodon("mastodon-token-1")
		defer fake.Close()
		req := f.post(mastodonAccount(f, fake), "Our autumn launch is live!", "https://cdn.acme.test/a.png")
		res, err := f.publish(ctx, req)
		f.expect(err, "")
		if fake.Count() != 1 || res.ExternalID != fake.Statuses[0].ID || res.ExternalURL != fake.Statuses[0].URL {
			t.Fatalf("result %+v, statuses %+v", res, fake.Statuses)
		}
		if fake.Statuses[0].Key != publish.IdemKey(req.PostID, 1) || fake.Statuses[0].Text != "Our autumn launch is live!\n\nhttps://cdn.acme.test/a.png" {
			t.Fatalf("status %+v", fake.Statuses[0])
		}
		p := f.publication(req)
		if p.Status != store.PubPublished || p.ExternalID != res.ExternalID || p.InDoubt || !strings.Contains(p.Evidence, "POST /api/v1/statuses") {
			t.Fatalf("publication %+v", p)
		}
		// Publishing again (a retried activity after the record) answers
		// from the record without calling the network.
		again, err := f.publish(ctx, req)
		if err != nil || again != res || fake.CallCount("POST /api/v1/statuses") != 1 {
			t.Fatalf("again: %+v %v, %d calls", again, err, fake.CallCount("POST /api/v1/statuses"))
		}
		f.noSecrets(req, "mastodon-token-1")
	})

	t.Run("429 then success, Retry-After honoured", func(t *testing.T) {
		fake := fakenet.NewMastodon("mastodon-token-1")
		defer fake.Close()
		fake.Script(fakenet.Reply{Status: 429, Body: `{"error":"Too many requests"}`, Header: map[string]string{"Retry-After": "7"}})
		req := f.post(mastodonAccount(f, fake), "Rate limited once")
		_, err := f.publish(ctx, req)
		if o := f.expect(err, activities.ErrTypePublishRetryable, "Too many requests"); o.delay != 7*time.Second {
			t.Fatalf("next retry delay %v, want 7s", o.delay)
		}
		if p := f.publication(req); p.InDoubt || p.Status != store.PubAttempting {
			t.Fatalf("after a 429: %+v", p)
		}
		_, err = f.publish(ctx, req)
		f.expect(err, "")
		if fake.Count() != 1 {
			t.Fatalf("%d statuses", fake.Count())
		}
	})

	t.Run("5xx after the status was created: resent with the same key", func(t *testing.T) {
		fake := fakenet.NewMastodon("mastodon-token-1")
		defer fake.Close()
		fake.Script(fakenet.Reply{Status: 502, Body: "<html>Bad Gateway</html>", AfterCreate: true})
		req := f.post(mastodonAccount(f, fake), "Through a flaky proxy")
		_, err := f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishRetryable, "502")
		if p := f.publication(req); !p.InDoubt {
			t.Fatalf("a 502 leaves a doubt: %+v", p)
		}
		res, err := f.publish(ctx, req)
		f.expect(err, "")
		if fake.Count() != 1 || res.ExternalID != fake.Statuses[0].ID {
			t.Fatalf("%d statuses, result %+v", fake.Count(), res)
		}
		if fake.CallCount("POST /api/v1/statuses") != 2 {
			t.Fatalf("%d calls", fake.CallCount("POST /api/v1/statuses"))
		}
	})

	t.Run("timeout after the server accepted", func(t *testing.T) {
		fake := fakenet.NewMastodon("mastodon-token-1")
		defer fake.Close()
		fake.Script(fakenet.Reply{Stall: true})
		req := f.post(mastodonAccount(f, fake), "Slow instance")
		_, err := f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishRetryable, "did not answer after the request was sent")
		_, err = f.publish(ctx, req)
		f.expect(err, "")
		if fake.Count() != 1 {
			t.Fatalf("%d statuses", fake.Count())
		}
	})

	t.Run("worker dies between the network call and the record", func(t *testing.T) {
		fake := fakenet.NewMastodon("mastodon-token-1")
		defer fake.Close()
		req := f.post(mastodonAccount(f, fake), "Crash-proof")
		dying := cancelOnAccept(&fake.OnAccept)
		if _, err := f.publish(dying, req); err == nil {
			t.Fatal("the dying attempt reported success")
		}
		if p := f.publication(req); p.Status != store.PubAttempting || !p.InDoubt {
			t.Fatalf("after the crash: %+v", p)
		}
		fake.OnAccept = nil
		res, err := f.publish(ctx, req)
		f.expect(err, "")
		if fake.Count() != 1 || res.ExternalID != fake.Statuses[0].ID {
			t.Fatalf("%d statuses, %+v", fake.Count(), res)
		}
		if p := f.publication(req); p.Attempts != 2 || p.Status != store.PubPublished {
			t.Fatalf("publication %+v", p)
		}
	})

	t.Run("revoked token: failed with the reason, final", func(t *testing.T) {
		fake := fakenet.NewMastodon("another-token")
		defer fake.Close()
		req := f.post(mastodonAccount(f, fake), "Revoked")
		_, err := f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishRejected, "mastodon refused the access token", "The access token is invalid")
		if p := f.publication(req); p.Status != store.PubFailed {
			t.Fatalf("publication %+v", p)
		}
		_, err = f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishRejected, "The access token is invalid")
		if fake.CallCount("POST /api/v1/statuses") != 1 {
			t.Fatal("a failed publication called the network again")
		}
		f.noSecrets(req, "mastodon-token-1")
	})

	t.Run("content refused: failed with Mastodon's message", func(t *testing.T) {
		fake := fakenet.NewMastodon("mastodon-token-1")
		defer fake.Close()
		req := f.post(mastodonAccount(f, fake), strings.Repeat("x", 501))
		_, err := f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishRejected, "Text character limit of 500 exceeded")
	})

	t.Run("connection refused: surely not posted", func(t *testing.T) {
		fake := fakenet.NewMastodon("mastodon-token-1")
		acct := mastodonAccount(f, fake)
		fake.Close()
		req := f.post(acct, "Nobody home")
		_, err := f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishRetryable, "could not be reached")
		if p := f.publication(req); p.InDoubt {
			t.Fatalf("a refused connection left a doubt: %+v", p)
		}
	})
}

// --- Bluesky ------------------------------------------------------------------

func blueskyAccount(f *fixture, fake *fakenet.Bluesky) cs.Account {
	return f.account(cs.NetworkBluesky, "acme.bsky.social", map[string]string{"pds_url": fake.URL},
		map[string]string{"identifier": "acme.bsky.social", "app_password": "abcd-efgh-ijkl-mnop"})
}

func TestPublishBluesky(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	newFake := func() *fakenet.Bluesky { return fakenet.NewBluesky("acme.bsky.social", "abcd-efgh-ijkl-mnop") }

	t.Run("success under the revision's record key", func(t *testing.T) {
		fake := newFake()
		defer fake.Close()
		req := f.post(blueskyAccount(f, fake), "Launch day: https://acme.test/launch #Acme")
		res, err := f.publish(ctx, req)
		f.expect(err, "")
		p := f.publication(req)
		if !publish.ValidTID(p.IdemKey) || fake.Count() != 1 {
			t.Fatalf("record key %q, %d records", p.IdemKey, fake.Count())
		}
		rec := fake.Records[p.IdemKey]
		if res.ExternalID != "at://did:plc:fakeacme/app.bsky.feed.post/"+p.IdemKey ||
			res.ExternalURL != "https://bsky.app/profile/acme.bsky.social/post/"+p.IdemKey {
			t.Fatalf("result %+v", res)
		}
		facets, _ := json.Marshal(rec.Record["facets"])
		if !strings.Contains(string(facets), `"uri":"https://acme.test/launch"`) || !strings.Contains(string(facets), `"tag":"Acme"`) {
			t.Fatalf("facets %s", facets)
		}
		f.noSecrets(req, "abcd-efgh-ijkl-mnop")
	})

	t.Run("429 then success", func(t *testing.T) {
		fake := newFake()
		defer fake.Close()
		fake.Script(fakenet.Reply{Status: 429, Body: `{"error":"RateLimitExceeded","message":"Rate Limit Exceeded"}`,
			Header: map[string]string{"RateLimit-Reset": fmt.Sprint(time.Now().Add(42 * time.Second).Unix())}})
		req := f.post(blueskyAccount(f, fake), "Rate limited once")
		_, err := f.publish(ctx, req)
		o := f.expect(err, activities.ErrTypePublishRetryable, "Rate Limit Exceeded")
		if o.delay < 40*time.Second || o.delay > 43*time.Second {
			t.Fatalf("delay %v", o.delay)
		}
		if p := f.publication(req); p.InDoubt {
			t.Fatalf("a 429 left a doubt: %+v", p)
		}
		_, err = f.publish(ctx, req)
		f.expect(err, "")
		if fake.Count() != 1 {
			t.Fatalf("%d records", fake.Count())
		}
	})

	t.Run("5xx: looked up, then created under the same key", func(t *testing.T) {
		fake := newFake()
		defer fake.Close()
		fake.Script(fakenet.Reply{Status: 503, Body: `{"error":"InternalServerError","message":"Service Unavailable"}`})
		req := f.post(blueskyAccount(f, fake), "Through an outage")
		_, err := f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishRetryable, "not there (yet)")
		key := f.publication(req).IdemKey
		_, err = f.publish(ctx, req)
		f.expect(err, "")
		if fake.Count() != 1 || f.publication(req).IdemKey != key || fake.Records[key].RKey != key {
			t.Fatalf("%d records, key %s", fake.Count(), key)
		}
		if fake.CallCount("GET /xrpc/com.atproto.repo.getRecord") != 2 {
			t.Fatalf("getRecord calls: %d", fake.CallCount("GET /xrpc/com.atproto.repo.getRecord"))
		}
	})

	t.Run("timeout after the PDS accepted: getRecord settles it", func(t *testing.T) {
		fake := newFake()
		defer fake.Close()
		fake.Script(fakenet.Reply{Stall: true})
		req := f.post(blueskyAccount(f, fake), "Slow PDS")
		res, err := f.publish(ctx, req)
		f.expect(err, "")
		if fake.Count() != 1 || !strings.HasSuffix(res.ExternalID, f.publication(req).IdemKey) {
			t.Fatalf("%d records, %+v", fake.Count(), res)
		}
		if ev := f.publication(req).Evidence; !strings.Contains(ev, "the record exists") {
			t.Fatalf("evidence %q", ev)
		}
	})

	t.Run("worker dies between the network call and the record", func(t *testing.T) {
		fake := newFake()
		defer fake.Close()
		req := f.post(blueskyAccount(f, fake), "Crash-proof")
		dying := cancelOnAccept(&fake.OnAccept)
		if _, err := f.publish(dying, req); err == nil {
			t.Fatal("the dying attempt reported success")
		}
		fake.OnAccept = nil
		if p := f.publication(req); p.Status != store.PubAttempting || !p.InDoubt {
			t.Fatalf("after the crash: %+v", p)
		}
		_, err := f.publish(ctx, req)
		f.expect(err, "")
		if fake.Count() != 1 || fake.CallCount("POST /xrpc/com.atproto.repo.createRecord") != 1 {
			t.Fatalf("%d records, %d creates", fake.Count(), fake.CallCount("POST /xrpc/com.atproto.repo.createRecord"))
		}
	})

	t.Run("revoked app password: failed, clear reason", func(t *testing.T) {
		fake := fakenet.NewBluesky("acme.bsky.social", "a-new-password")
		defer fake.Close()
		req := f.post(blueskyAccount(f, fake), "Revoked")
		_, err := f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishRejected, "bluesky refused the login", "Invalid identifier or password")
		if fake.Count() != 0 {
			t.Fatal("posted")
		}
		f.noSecrets(req, "abcd-efgh-ijkl-mnop")
	})

	t.Run("content refused: failed with the PDS's message", func(t *testing.T) {
		fake := newFake()
		defer fake.Close()
		req := f.post(blueskyAccount(f, fake), strings.Repeat("x", 301))
		_, err := f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishRejected, "must not be longer than 300 graphemes")
	})
}

// --- X ----------------------------------------------------------------------

func xAccount(f *fixture, fake *fakenet.X) cs.Account {
	return f.account(cs.NetworkX, "@acme", map[string]string{"api_url": fake.URL}, map[string]string{
		"access_token": fake.AccessToken, "refresh_token": fake.RefreshToken, "client_id": fake.ClientID, "client_secret": fake.ClientSecret})
}

func newX() *fakenet.X {
	return fakenet.NewX("x-access-0", "x-refresh-0", "client-1", "client-secret-1")
}

func TestPublishX(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	posts := "POST /2/tweets"

	t.Run("success", func(t *testing.T) {
		fake := newX()
		defer fake.Close()
		acct := xAccount(f, fake)
		req := f.post(acct, "Hello X")
		res, err := f.publish(ctx, req)
		f.expect(err, "")
		if fake.Count() != 1 || res.ExternalID != fake.Tweets[0].ID || res.ExternalURL != "https://x.com/"+strings.TrimPrefix(acct.Handle, "@")+"/status/"+fake.Tweets[0].ID {
			t.Fatalf("%+v, %+v", res, fake.Tweets)
		}
	})

	t.Run("429 then success", func(t *testing.T) {
		fake := newX()
		defer fake.Close()
		fake.Script(fakenet.Reply{Status: 429, Body: `{"title":"Too Many Requests","detail":"Too Many Requests","status":429}`,
			Header: map[string]string{"x-rate-limit-reset": fmt.Sprint(time.Now().Add(5 * time.Minute).Unix())}})
		req := f.post(xAccount(f, fake), "Rate limited once")
		_, err := f.publish(ctx, req)
		if o := f.expect(err, activities.ErrTypePublishRetryable, "Too Many Requests"); o.delay < 4*time.Minute {
			t.Fatalf("delay %v", o.delay)
		}
		_, err = f.publish(ctx, req)
		f.expect(err, "")
		if fake.Count() != 1 {
			t.Fatalf("%d posts", fake.Count())
		}
	})

	t.Run("expired token: renewed, sealed back, posted", func(t *testing.T) {
		fake := newX()
		defer fake.Close()
		acct := xAccount(f, fake)
		fake.Expire()
		req := f.post(acct, "After two hours")
		_, err := f.publish(ctx, req)
		f.expect(err, "")
		creds, err := f.st.AccountCredentials(ctx, f.org, acct.ID)
		if err != nil || creds["access_token"] != "access-1" || creds["refresh_token"] != "refresh-1" || creds["client_secret"] != "client-secret-1" {
			t.Fatalf("stored credentials after the renewal: %v %v", creds, err)
		}
		if fake.Count() != 1 || fake.Refreshes != 1 {
			t.Fatalf("%d posts, %d refreshes", fake.Count(), fake.Refreshes)
		}
		f.noSecrets(req, "access-1", "refresh-1", "x-refresh-0", "client-secret-1")
	})

	t.Run("revoked: failed, clear reason", func(t *testing.T) {
		fake := newX()
		defer fake.Close()
		acct := xAccount(f, fake)
		fake.Revoke()
		req := f.post(acct, "Revoked")
		_, err := f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishRejected, "X refused to renew the access token", "reconnect the account")
		if creds, _ := f.st.AccountCredentials(ctx, f.org, acct.ID); creds["access_token"] != "x-access-0" {
			t.Fatalf("credentials changed: %v", creds)
		}
		f.noSecrets(req, "x-access-0", "x-refresh-0", "client-secret-1")
	})

	t.Run("5xx after posting: found by the look-up", func(t *testing.T) {
		fake := newX()
		defer fake.Close()
		fake.Script(fakenet.Reply{Status: 503, Body: `{"title":"Service Unavailable","status":503}`, AfterCreate: true})
		req := f.post(xAccount(f, fake), "Through an outage & back: https://acme.test/x")
		res, err := f.publish(ctx, req)
		f.expect(err, "")
		if fake.Count() != 1 || res.ExternalID != fake.Tweets[0].ID {
			t.Fatalf("%d posts, %+v", fake.Count(), res)
		}
	})

	t.Run("5xx, not posted: needs attention, never resent", func(t *testing.T) {
		fake := newX()
		defer fake.Close()
		fake.Script(fakenet.Reply{Status: 503, Body: `{"title":"Service Unavailable","status":503}`})
		req := f.post(xAccount(f, fake), "Maybe posted")
		_, err := f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishUnknown, "Service Unavailable", "not found among the account's recent posts",
			"Evidence: POST /2/tweets: Service Unavailable (503)", "is not among the account's 0 posts since")
		p := f.publication(req)
		if p.Status != store.PubUnknown || !strings.Contains(p.Evidence, "GET /2/users/me") || !strings.Contains(p.Evidence, "is not among the account's") {
			t.Fatalf("publication %+v", p)
		}
		_, err = f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishUnknown)
		if fake.CallCount(posts) != 1 {
			t.Fatal("resent")
		}
	})

	t.Run("timeout after X accepted: found by the look-up", func(t *testing.T) {
		fake := newX()
		defer fake.Close()
		fake.Script(fakenet.Reply{Stall: true})
		req := f.post(xAccount(f, fake), "Slow X")
		_, err := f.publish(ctx, req)
		f.expect(err, "")
		if fake.Count() != 1 || fake.CallCount(posts) != 1 {
			t.Fatalf("%d posts", fake.Count())
		}
	})

	t.Run("timeout after X accepted, no read access: needs attention with the evidence", func(t *testing.T) {
		fake := newX()
		defer fake.Close()
		fake.NoReads = true
		fake.Script(fakenet.Reply{Stall: true})
		req := f.post(xAccount(f, fake), "Slow X, no reads")
		_, err := f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishUnknown, "did not answer after the post was sent")
		if ev := f.publication(req).Evidence; !strings.Contains(ev, "could not identify the account") || !strings.Contains(ev, "request sent=true") {
			t.Fatalf("evidence %q", ev)
		}
		if fake.Count() != 1 || fake.CallCount(posts) != 1 {
			t.Fatalf("%d posts", fake.Count())
		}
	})

	t.Run("worker dies between the network call and the record", func(t *testing.T) {
		fake := newX()
		defer fake.Close()
		fake.NoReads = true // the second attempt must not post blindly either
		req := f.post(xAccount(f, fake), "Crash-proof")
		dying := cancelOnAccept(&fake.OnAccept)
		if _, err := f.publish(dying, req); err == nil {
			t.Fatal("the dying attempt reported success")
		}
		fake.OnAccept = nil
		if p := f.publication(req); !p.InDoubt || p.Status != store.PubAttempting {
			t.Fatalf("after the crash: %+v", p)
		}
		_, err := f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishUnknown, "an earlier attempt may have reached X")
		t.Logf("evidence:\n%s", f.publication(req).Evidence)
		// With reads, the next revision's crash is settled by the look-up.
		fake.NoReads = false
		req2 := f.post(xAccount(f, fake), "Crash-proof, with reads")
		dying = cancelOnAccept(&fake.OnAccept)
		_, _ = f.publish(dying, req2)
		fake.OnAccept = nil
		res, err := f.publish(ctx, req2)
		f.expect(err, "")
		if fake.Count() != 2 || fake.CallCount(posts) != 2 || res.ExternalID != fake.Tweets[1].ID {
			t.Fatalf("%d posts, %d calls, %+v", fake.Count(), fake.CallCount(posts), res)
		}
	})

	t.Run("duplicate content: needs attention", func(t *testing.T) {
		fake := newX()
		defer fake.Close()
		fake.Tweets = append(fake.Tweets, fakenet.Tweet{ID: "1", Text: "Same again", At: time.Now()})
		req := f.post(xAccount(f, fake), "Same again")
		_, err := f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishUnknown, "duplicate")
	})

	t.Run("connection refused: surely not posted", func(t *testing.T) {
		fake := newX()
		acct := xAccount(f, fake)
		fake.Close()
		req := f.post(acct, "Nobody home")
		_, err := f.publish(ctx, req)
		f.expect(err, activities.ErrTypePublishRetryable, "could not be reached")
		if p := f.publication(req); p.InDoubt {
			t.Fatalf("in doubt: %+v", p)
		}
	})
}

// --- webhook ------------------------------------------------------------------

// A receiver that verifies signatures and deduplicates on webhook-id sees
// one delivery through a 500 and a stall.
func TestPublishWebhook(t *testing.T) {
	f := newFixture(t)
	secret := "whsec_" + base64.StdEncoding.EncodeToString(secrets.RandomBytes(24))
	var mu sync.Mutex
	seen := map[string]int{}
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := publish.VerifyWebhook(secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		mu.Lock()
		calls++
		n := calls
		seen[r.Header.Get("webhook-id")]++
		mu.Unlock()
		switch n {
		case 1:
			http.Error(w, "busy", http.StatusInternalServerError) // after recording it
		case 2:
			<-r.Context().Done() // stall
		default:
			fmt.Fprintf(w, `{"id":"hook-1","url":"https://hooks.acme.test/1"}`)
		}
	}))
	defer srv.Close()
	acct := f.account(cs.NetworkWebhook, "hook", map[string]string{"url": srv.URL}, map[string]string{"secret": secret})
	req := f.post(acct, "Signed")
	for i := 0; i < 2; i++ {
		_, err := f.publish(context.Background(), req)
		f.expect(err, activities.ErrTypePublishRetryable)
	}
	res, err := f.publish(context.Background(), req)
	f.expect(err, "")
	if res.ExternalID != "hook-1" || len(seen) != 1 || seen[publish.IdemKey(req.PostID, 1)] != 3 {
		t.Fatalf("%+v, deliveries by id %v", res, seen)
	}

	// A wrong secret: the receiver's 401 is final (its plain-text body is
	// not shown: only a JSON error message would be).
	acct2 := f.account(cs.NetworkWebhook, "hook2", map[string]string{"url": srv.URL},
		map[string]string{"secret": "whsec_" + base64.StdEncoding.EncodeToString(secrets.RandomBytes(24))})
	_, err = f.publish(context.Background(), f.post(acct2, "Forged"))
	o := f.expect(err, activities.ErrTypePublishRejected, "Unauthorized (401)")
	if strings.Contains(o.msg, "webhook-signature") {
		t.Fatalf("the raw body reached the message: %q", o.msg)
	}
}

// A deleted account after an attempt that may have posted is a doubt, not
// a failure.
func TestPublishAccountDeletedMidway(t *testing.T) {
	f := newFixture(t)
	fake := fakenet.NewMastodon("mastodon-token-1")
	defer fake.Close()
	acct := mastodonAccount(f, fake)
	req := f.post(acct, "Gone")
	fake.Script(fakenet.Reply{Stall: true})
	_, err := f.publish(context.Background(), req)
	f.expect(err, activities.ErrTypePublishRetryable)
	if err := f.st.DeleteAccount(context.Background(), f.org, acct.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.publish(context.Background(), req)
	f.expect(err, activities.ErrTypePublishUnknown, "account was deleted")

	req2 := f.post(mastodonAccount(f, fake), "Never tried")
	if err := f.st.DeleteAccount(context.Background(), f.org, req2.AccountID); err != nil {
		t.Fatal(err)
	}
	_, err = f.publish(context.Background(), req2)
	f.expect(err, activities.ErrTypePublishRejected, "account was deleted")
}

// --- Egress ---------------------------------------------------------------------

// TestEgressRefusalIsFinal: a Publisher whose guard does not allow loopback
// refuses an account on "localhost" (a name, so only the dial can tell)
// before any connection, and the post fails at once with a short reason:
// retrying cannot help.
func TestEgressRefusalIsFinal(t *testing.T) {
	f := newFixture(t)
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	strict, err := egress.Parse("")
	if err != nil {
		t.Fatal(err)
	}
	client := publish.NewHTTPClient(strict, clientTimeout)
	f.pub.Adapters[cs.NetworkWebhook] = publish.Webhook{Client: client}
	f.pub.Adapters[cs.NetworkMastodon] = publish.Mastodon{Client: client}
	for _, acct := range []cs.Account{
		f.account(cs.NetworkWebhook, "hook", map[string]string{"url": fmt.Sprintf("https://localhost:%d/in", port)},
			map[string]string{"secret": "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))}),
		f.account(cs.NetworkMastodon, "acme", map[string]string{"instance_url": fmt.Sprintf("https://localhost:%d", port)},
			map[string]string{"access_token": "tok-localhost"}),
	} {
		req := f.post(acct, "to loopback")
		_, err := f.publish(context.Background(), req)
		o := f.expect(err, activities.ErrTypePublishRejected, "was not contacted", "loopback address", "COUNTERSIGN_EGRESS_ALLOW")
		if len(o.msg) > 200 {
			t.Fatalf("reason of %d characters: %q", len(o.msg), o.msg)
		}
		if p := f.publication(req); p.Status != store.PubFailed || p.InDoubt {
			t.Fatalf("publication: %+v", p)
		}
		f.noSecrets(req, "tok-localhost")
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("%d connections reached the loopback server", n)
	}
}

// TestPlainHTTPNotSentUnlessAllowed: an account whose http URL reached the
// database (saved before the rule, or edited behind the API) does not get
// its credentials sent in the clear unless the operator allows the host.
func TestPlainHTTPNotSentUnlessAllowed(t *testing.T) {
	f := newFixture(t)
	fake := fakenet.NewMastodon("mastodon-token-1")
	defer fake.Close()
	acct := mastodonAccount(f, fake) // http://127.0.0.1:port, allowed by the fixture's guard
	strict, _ := egress.Parse("")
	f.pub.Guard = strict
	req := f.post(acct, "in the clear?")
	_, err := f.publish(context.Background(), req)
	f.expect(err, activities.ErrTypePublishRejected, "plain http", "COUNTERSIGN_EGRESS_ALLOW")
	if fake.Count() != 0 || f.publication(req).Status != store.PubFailed {
		t.Fatalf("%d statuses, publication %+v", fake.Count(), f.publication(req))
	}
}
