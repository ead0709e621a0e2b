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
	"github.com/countersign/countersign/internal/publish/fakenet"
)

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
		"<html>\n<body>Bad   gateway</body></html>":                                                                   "<html> <body>Bad gateway</body></html>",
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
	m := Mastodon{Client: NewHTTPClient(5 * time.Second), Now: func() time.Time { return now }}
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
		b := Bluesky{Client: NewHTTPClient(5 * time.Second)}
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
