package publish

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
	"github.com/countersign/countersign/internal/egress"
	"github.com/countersign/countersign/internal/publish/fakenet"
)

// loopback lets the adapters reach the fakes, which listen on loopback.
var loopback, _ = egress.Parse("127.0.0.0/8,::1/128")

// TestDescribeIsShortAndSanitized: what a network answers reaches users as
// its status and its own error message, on one line and short; never a raw
// body or a header.
func TestDescribeIsShortAndSanitized(t *testing.T) {
	huge := strings.Repeat("é", 100_000)
	for _, c := range []struct {
		ex   exchange
		want string
	}{
		{exchange{Status: 422, Body: []byte(`{"error":"Validation failed: Text character limit of 500 exceeded"}`)},
			"Unprocessable Entity (422): Validation failed: Text character limit of 500 exceeded"},
		{exchange{Status: 502, Body: []byte("<html><body>internal-host-name db01.corp</body></html>")}, "Bad Gateway (502)"},
		{exchange{Status: 400, Body: []byte(`{"error":"InvalidRequest","message":"bad\u001b[31m\nline"}`)}, "Bad Request (400): InvalidRequest: bad [31m line"},
		{exchange{Status: 401, Header: http.Header{"X-Secret": {"s3cr3t"}}, Body: []byte(`{"title":"Unauthorized","detail":"Unauthorized"}`)},
			"Unauthorized (401): Unauthorized"},
	} {
		if got := c.ex.describe(); got != c.want {
			t.Errorf("describe = %q, want %q", got, c.want)
		}
	}
	got := exchange{Status: 400, Body: []byte(`{"error":"` + huge + `"}`)}.describe()
	if len(got) > maxReason || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "Bad Request (400): éé") {
		t.Fatalf("a huge message: %d bytes, %q…", len(got), got[:40])
	}
	if e := (capped{errors.New(strings.Repeat("x\n", 1000))}).Error(); len(e) > maxReason || strings.Contains(e, "\n") {
		t.Fatalf("a transport error: %d bytes", len(e))
	}
}

func TestSafeResult(t *testing.T) {
	mast := cs.Account{Network: cs.NetworkMastodon, Settings: map[string]string{"instance_url": "https://Social.Acme.Test/"}}
	local := cs.Account{Network: cs.NetworkMastodon, Settings: map[string]string{"instance_url": "http://127.0.0.1:8080"}}
	hook := cs.Account{Network: cs.NetworkWebhook, Settings: map[string]string{"url": "https://hooks.acme.test/in"}}
	for _, c := range []struct {
		acct      cs.Account
		url, want string
	}{
		{mast, "https://social.acme.test/@acme/1", "https://social.acme.test/@acme/1"},
		{mast, "https://evil.test/@acme/1", ""},
		{mast, "https://SOCIAL.acme.test:443/@acme/2", "https://SOCIAL.acme.test:443/@acme/2"},
		{mast, "https://social.acme.test:8443/@acme/2", ""},
		{mast, "http://social.acme.test/@acme/1", ""},
		{mast, "javascript:alert(1)", ""},
		{mast, "https://user@social.acme.test/x", ""},
		{mast, "https://social.acme.test/" + strings.Repeat("a", MaxExternalURL), ""},
		{local, "http://127.0.0.1:8080/@acme/1", "http://127.0.0.1:8080/@acme/1"},
		{local, "http://127.0.0.1:9999/@acme/1", ""},
		{hook, "https://hooks.acme.test/deliveries/7", "https://hooks.acme.test/deliveries/7"},
		{hook, "https://hooks.acme.test.evil.test/", ""},
		{cs.Account{Network: cs.NetworkBluesky}, "https://bsky.app/profile/acme.test/post/3k", "https://bsky.app/profile/acme.test/post/3k"},
		{cs.Account{Network: cs.NetworkX}, "https://x.com.evil.test/a/status/1", ""},
		{cs.Account{Network: cs.NetworkLog}, "http://localhost:8080/v1/orgs/o/posts/p", "http://localhost:8080/v1/orgs/o/posts/p"},
	} {
		if got := safeResult(c.acct, Result{ExternalID: "1", ExternalURL: c.url}, Request{}); got.ExternalURL != c.want {
			t.Errorf("%s on %v: %q, want %q", c.url, c.acct.Settings, got.ExternalURL, c.want)
		}
	}
	if got := bskyResult(bskySession{Handle: "evil.test/../../x", DID: "did:plc:abc"}, "at://x", "3k"); got.ExternalURL != "https://bsky.app/profile/did:plc:abc/post/3k" {
		t.Errorf("a hostile handle: %q", got.ExternalURL)
	}
	if got := (X{}).result(Request{Account: cs.Account{Handle: "@acme"}}, "a/../b", "12"); got.ExternalURL != "https://x.com/i/web/status/12" {
		t.Errorf("a hostile username: %q", got.ExternalURL)
	}
	if got := (X{}).result(Request{}, "acme", "12/../../evil"); got.ExternalURL != "" {
		t.Errorf("a hostile id: %q", got.ExternalURL)
	}
}

func TestRetryDelay(t *testing.T) {
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		header, value string
		want          time.Duration
	}{
		{"Retry-After", "7", 7 * time.Second},
		{"Retry-After", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"X-RateLimit-Reset", now.Add(2 * time.Minute).Format("2006-01-02T15:04:05.000000Z"), 2 * time.Minute}, // Mastodon
		{"x-rate-limit-reset", strconv.FormatInt(now.Add(time.Minute).Unix(), 10), time.Minute},                // X, epoch seconds
		{"RateLimit-Reset", strconv.FormatInt(now.Add(30*time.Second).Unix(), 10), 30 * time.Second},           // Bluesky
		{"Retry-After", "0", time.Second},                                                                      // at least a second
		{"Retry-After", "86400", time.Hour},                                                                    // at most an hour
		{"Retry-After", "soon", 0},
	} {
		h := http.Header{}
		h.Set(c.header, c.value)
		if got := retryDelay(h, now); got != c.want {
			t.Errorf("%s: %s = %v, want %v", c.header, c.value, got, c.want)
		}
	}
	if got := retryDelay(http.Header{}, now); got != 0 {
		t.Errorf("no header: %v", got)
	}
}

func TestTID(t *testing.T) {
	at := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	a, b := NewTID(at), NewTID(at.Add(time.Microsecond*1024))
	if !ValidTID(a) || !ValidTID(b) || len(a) != 13 {
		t.Fatalf("TIDs %q %q", a, b)
	}
	if a >= b {
		t.Fatalf("TIDs do not sort by time: %q >= %q", a, b)
	}
	// The reference TID of the AT Protocol specification's examples.
	for _, s := range []string{"3jzfcijpj2z2a", "7777777777777", "3zzzzzzzzzzzz"} {
		if !ValidTID(s) {
			t.Errorf("%s should be a valid TID", s)
		}
	}
	for _, s := range []string{"3jzfcijpj2z21", "0000000000000", "3JZFCIJPJ2Z2A", "kjzfcijpj2z2a", "post-1-r1"} {
		if ValidTID(s) {
			t.Errorf("%s should not be a valid TID", s)
		}
	}
}

func TestBlueskyFacets(t *testing.T) {
	text := "Ça démarre ! https://acme.test/launch?x=1. #Launch2026 #2026 and (https://acme.test/a)"
	f := bskyFacets(text)
	if len(f) != 3 {
		t.Fatalf("facets: %+v", f)
	}
	span := func(i int) string {
		ix := f[i]["index"].(map[string]int)
		return text[ix["byteStart"]:ix["byteEnd"]]
	}
	if span(0) != "https://acme.test/launch?x=1" || span(1) != "https://acme.test/a" || span(2) != "#Launch2026" {
		t.Fatalf("spans %q %q %q", span(0), span(1), span(2))
	}
	if tag := f[2]["features"].([]map[string]string)[0]["tag"]; tag != "Launch2026" {
		t.Fatalf("tag %q", tag)
	}
}

func TestNetworkMessage(t *testing.T) {
	for body, want := range map[string]string{
		`{"error":"The access token is invalid"}`:                                                                     "The access token is invalid",
		`{"error":"InvalidRequest","message":"Record/text must not be longer than 300 graphemes"}`:                    "InvalidRequest: Record/text must not be longer than 300 graphemes",
		`{"title":"Forbidden","detail":"You are not allowed to create a Tweet with duplicate content.","status":403}`: "You are not allowed to create a Tweet with duplicate content.",
		`{"error":"invalid_request","error_description":"Value passed for the token was invalid."}`:                   "invalid_request: Value passed for the token was invalid.",
		"<html>\n<body>Bad   gateway</body></html>":                                                                   "", // raw bodies are not shown
	} {
		if got := networkMessage([]byte(body)); got != want {
			t.Errorf("%s: %q, want %q", body, got, want)
		}
	}
}

func TestComparableText(t *testing.T) {
	ours := "Launch & <news>: https://acme.test/very/long/link\n\nhttps://cdn.acme.test/a.png"
	shown := "Launch &amp; &lt;news&gt;: https://t.co/abc123\n\nhttps://t.co/def456"
	if comparableText(ours) != comparableText(shown) {
		t.Fatalf("%q != %q", comparableText(ours), comparableText(shown))
	}
	if comparableText("Launch") == comparableText("Launch!") {
		t.Fatal("different texts compare equal")
	}
}

func TestPastBound(t *testing.T) {
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	bound := now.Add(10 * time.Minute)
	if pastBound(now, 5*time.Minute+2*time.Minute, bound) {
		t.Fatal("a 2-minute attempt in 5 minutes fits a 10-minute bound")
	}
	if !pastBound(now, 8*time.Minute+2*time.Minute, bound) {
		t.Fatal("a 2-minute attempt in 8 minutes does not end before a 10-minute bound")
	}
	rp := &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute}
	for n, want := range map[int]time.Duration{1: 5 * time.Second, 2: 10 * time.Second, 4: 40 * time.Second, 10: 5 * time.Minute} {
		if got := backoff(rp, n); got != want {
			t.Errorf("backoff after attempt %d: %v, want %v", n, got, want)
		}
	}
}

func TestRedactor(t *testing.T) {
	r := newRedactor(map[string]string{"access_token": "tok-SECRET-123", "client_id": "abc"})
	r.add(map[string]string{"access_token": "tok-NEW-456789"})
	got := r.clean("401 for tok-SECRET-123 then tok-NEW-456789, client abc")
	if strings.Contains(got, "SECRET") || strings.Contains(got, "NEW") || !strings.Contains(got, "client abc") {
		t.Fatalf("redacted: %q", got)
	}
}

// Mastodon keeps an Idempotency-Key for an hour: past that, a doubt is not
// settled by resending.
func TestMastodonDoesNotResendPastTheKeyWindow(t *testing.T) {
	fake := fakenet.NewMastodon("tok")
	defer fake.Close()
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	m := Mastodon{Client: NewHTTPClient(loopback, 5*time.Second), Now: func() time.Time { return now }}
	r := Request{
		PublishRequest: activities.PublishRequest{PostID: "p", Revision: 1, Text: "hello"},
		Account:        cs.Account{Network: cs.NetworkMastodon, Settings: map[string]string{"instance_url": fake.URL}},
		Credentials:    map[string]string{"access_token": "tok"}, IdemKey: "post-p-r1",
		Retry: true, FirstAttempt: now.Add(-58 * time.Minute), Trail: &Trail{},
	}
	_, err := m.Publish(context.Background(), r)
	if !errors.Is(err, ErrUnknown) || fake.CallCount("POST /api/v1/statuses") != 0 {
		t.Fatalf("58 minutes after the first attempt: %v, %d calls", err, fake.CallCount("POST /api/v1/statuses"))
	}
	r.FirstAttempt = now.Add(-20 * time.Minute)
	if _, err := m.Publish(context.Background(), r); err != nil || fake.Count() != 1 {
		t.Fatalf("20 minutes after: %v, %d statuses", err, fake.Count())
	}
}

// A PDS answers a taken record key with 500 today, and with a named error
// in newer versions: either way, the record is looked up and found.
func TestBlueskyDuplicateKeyIsLookedUp(t *testing.T) {
	for _, explicit := range []bool{false, true} {
		fake := fakenet.NewBluesky("acme.bsky.social", "app-pass-word")
		fake.ExplicitDuplicate = explicit
		b := Bluesky{Client: NewHTTPClient(loopback, 5*time.Second)}
		r := Request{
			PublishRequest: activities.PublishRequest{PostID: "p", Revision: 1, Text: "hello"},
			Account:        cs.Account{Network: cs.NetworkBluesky, Settings: map[string]string{"pds_url": fake.URL}},
			Credentials:    map[string]string{"identifier": "acme.bsky.social", "app_password": "app-pass-word"},
			IdemKey:        NewTID(time.Now()), Trail: &Trail{},
		}
		first, err := b.Publish(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		// A second attempt that was (wrongly) not told of the doubt.
		again, err := b.Publish(context.Background(), r)
		if err != nil || again.ExternalID != first.ExternalID || fake.Count() != 1 {
			t.Fatalf("explicit=%v: %+v %v, %d records", explicit, again, err, fake.Count())
		}
		if !strings.Contains(strings.Join(r.Trail.Lines(), "\n"), "the record exists") {
			t.Fatalf("evidence: %q", r.Trail.Lines())
		}
		fake.Close()
	}
}
