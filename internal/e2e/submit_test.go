package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/postflow"
	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/testenv"
	"github.com/countersign/countersign/server"
)

// TestSubmitRules covers what the API decides before a workflow exists.
func TestSubmitRules(t *testing.T) {
	e := newEnv(t)
	acct := e.setupThreeLevels()
	ines, maya := e.members["Ines"].token, e.members["Maya"].token
	posts := e.org("/posts")

	// Idempotency-Key: the same key gives the same post, not a second one.
	send := func(token, key string, body any) (int, cs.Post, http.Header) {
		var raw json.RawMessage
		code, h := e.submitWithKey(token, key, body, &raw)
		var p cs.Post
		_ = json.Unmarshal(raw, &p) // a problem answer leaves p empty
		return code, p, h
	}
	body := map[string]any{"account_id": acct, "text": "Once only"}
	code1, p1, _ := send(ines, "k-1", body)
	code2, p2, h2 := send(ines, "k-1", body)
	if code1 != 201 || code2 != 200 || p1.ID != p2.ID || h2.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("idempotent submit: %d %s / %d %s %v", code1, p1.ID, code2, p2.ID, h2)
	}
	var list struct{ Items []cs.Post }
	e.must(200, e.owner, "GET", posts+"?author_id="+e.members["Ines"].memberID, nil, &list)
	if len(list.Items) != 1 {
		t.Fatalf("two submissions with one key made %d posts", len(list.Items))
	}

	// Maya has no grant on the account: she cannot post to it.
	if code, _, _ := send(maya, "", body); code != 403 {
		t.Fatalf("member without a grant submitting: %d, want 403", code)
	}
	// Bad input is a 4xx naming the field, and nothing is written.
	for name, bad := range map[string]map[string]any{
		"past time":     {"account_id": acct, "text": "x", "scheduled_at": "2020-01-01T00:00:00Z"},
		"no offset":     {"account_id": acct, "text": "x", "scheduled_at": "2026-12-01T09:00:00"},
		"bad account":   {"account_id": "nope", "text": "x"},
		"no text":       {"account_id": acct, "text": ""},
		"bad media":     {"account_id": acct, "text": "x", "media_urls": []string{"ftp://x"}},
		"unknown field": {"account_id": acct, "text": "x", "colour": "red"},
	} {
		if code, _, _ := send(ines, "", bad); code < 400 || code >= 500 {
			t.Errorf("%s: %d, want 4xx", name, code)
		}
	}
	// Another org's account is not found, not forbidden.
	if code, _, _ := send(ines, "", map[string]any{"account_id": "0190f000-0000-7000-8000-000000000000", "text": "x"}); code != 404 {
		t.Errorf("unknown account: %d, want 404", code)
	}
	e.must(200, e.owner, "GET", posts, nil, &list)
	if len(list.Items) != 1 {
		t.Fatalf("refused submissions left %d posts", len(list.Items))
	}
	// Filters are validated.
	if code := e.do(e.owner, "GET", posts+"?status=bogus", nil, nil); code != 400 {
		t.Errorf("status=bogus: %d, want 400", code)
	}
	// The author's post shows up for the approver of its open step.
	e.waitPost(p1.ID, "opened step 1", atStep(1))
	var waiting struct{ Items []cs.Post }
	e.must(200, maya, "GET", e.org("/approvals"), nil, &waiting)
	if len(waiting.Items) != 1 || waiting.Items[0].ID != p1.ID {
		t.Fatalf("Maya's approvals: %+v", waiting.Items)
	}
	e.must(200, ines, "GET", e.org("/approvals"), nil, &waiting)
	if len(waiting.Items) != 0 {
		t.Fatalf("the author is awaited on her own post: %+v", waiting.Items)
	}
}

// TestTextLimitAtSubmission: a post too long for its network is refused
// with the count and the limit.
func TestTextLimitAtSubmission(t *testing.T) {
	e := newEnv(t)
	e.setupThreeLevels()
	var acct struct{ ID string }
	e.must(201, e.owner, "POST", e.org("/accounts"), map[string]any{
		"network": "mastodon", "handle": "acme@social.example", "display_name": "Acme", "timezone": "UTC",
		"settings": map[string]string{"instance_url": "https://social.example"}, "credentials": map[string]string{"access_token": "t0k3n"}}, &acct)
	var prob struct {
		Code   string
		Errors []cs.FieldError
	}
	if code := e.do(e.owner, "POST", e.org("/posts"), map[string]any{"account_id": acct.ID, "text": strings.Repeat("a", 501)}, &prob); code != 422 ||
		len(prob.Errors) != 1 || !strings.Contains(prob.Errors[0].Message, "501") || !strings.Contains(prob.Errors[0].Message, "500") {
		t.Fatalf("501 characters on mastodon: %d %+v", code, prob)
	}
}

// TestFailedStart: when Temporal refuses the start, the client gets 503 and
// nothing remains; when Temporal does not answer (the start may or may not
// have happened), the client gets 503, the post is kept, and the reconciler
// starts it. A start lost in a crash is the reconciler's too.
func TestFailedStart(t *testing.T) {
	e := newEnv(t)
	acct := e.setupThreeLevels()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	submitVia := func(tc client.Client, key string) int {
		api := httptest.NewServer(server.New(server.Deps{Store: e.app.Store, Temporal: tc, Logger: testenv.Logger(t)}))
		defer api.Close()
		b, _ := json.Marshal(map[string]any{"account_id": acct, "text": "Nobody will move me"})
		req, _ := http.NewRequestWithContext(ctx, "POST", api.URL+e.org("/posts"), bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+e.members["Ines"].token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	countPosts := func() int {
		var list struct{ Items []cs.Post }
		e.must(200, e.owner, "GET", e.org("/posts"), nil, &list)
		return len(list.Items)
	}

	// Refused: a namespace Temporal does not have.
	refusing, err := client.NewLazyClient(client.Options{HostPort: testenv.Temporal(t).Address, Namespace: "no-such-namespace"})
	if err != nil {
		t.Fatal(err)
	}
	defer refusing.Close()
	if code := submitVia(refusing, "refused"); code != http.StatusServiceUnavailable {
		t.Fatalf("submit refused by Temporal: %d, want 503", code)
	}
	if n := countPosts(); n != 0 {
		t.Fatalf("a refused submission left %d posts", n)
	}

	// No answer: nothing listens there.
	dead, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1", Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	if code := submitVia(dead, "unanswered"); code != http.StatusServiceUnavailable {
		t.Fatalf("submit with Temporal down: %d, want 503", code)
	}
	// A crash between insert and start leaves a row just like it.
	crashed, _, err := e.app.Store.CreatePost(ctx, storeNewPost(e, acct))
	if err != nil {
		t.Fatal(err)
	}
	// A second unanswered submission: its retry will start it.
	if code := submitVia(dead, "retried"); code != http.StatusServiceUnavailable {
		t.Fatalf("submit with Temporal down: %d, want 503", code)
	}
	if n := countPosts(); n != 3 {
		t.Fatalf("want the unanswered, the crashed and the retried post kept, have %d", n)
	}
	// Retrying with the same Idempotency-Key finds the kept post and starts it.
	if code := submitVia(e.app.Temporal, "retried"); code != http.StatusOK {
		t.Fatalf("retry with the same Idempotency-Key: %d, want 200 (the first post)", code)
	}
	var list struct{ Items []cs.Post }
	e.must(200, e.owner, "GET", e.org("/posts"), nil, &list)
	started := 0
	for _, p := range list.Items {
		if _, kept, err := e.app.Store.UnstartedPostByID(ctx, p.ID); err != nil {
			t.Fatal(err)
		} else if !kept {
			started++
			e.waitPost(p.ID, "opened step 1 after the retry started it", atStep(1))
		}
	}
	if started != 1 {
		t.Fatalf("%d posts started after the retry, want 1 (the retried one)", started)
	}
	rec := &postflow.Reconciler{Store: e.app.Store, Temporal: e.app.Temporal, Logger: testenv.Logger(t), Grace: 0}
	n, err := rec.Once(ctx)
	if err != nil || n != 2 {
		t.Fatalf("reconciler started %d posts (want the unanswered and the crashed one): %v", n, err)
	}
	e.waitPost(crashed.ID, "opened step 1 after the reconciler started it", atStep(1))
	// Retrying the unanswered submission with its key finds the kept post.
	if code := submitVia(e.app.Temporal, "unanswered"); code != http.StatusOK {
		t.Fatalf("retry with the same Idempotency-Key: %d, want 200 (the first post)", code)
	}
	if n := countPosts(); n != 3 {
		t.Fatalf("the retry made a new post: %d posts", n)
	}
	if n, err := rec.Once(ctx); err != nil || n != 0 {
		t.Fatalf("second pass started %d more: %v", n, err)
	}
}

func storeNewPost(e *env, acct string) store.NewPost {
	e.t.Helper()
	chain, err := e.app.Store.AccountChain(context.Background(), e.orgID, acct)
	if err != nil {
		e.t.Fatal(err)
	}
	return store.NewPost{OrgID: e.orgID, AccountID: acct, AuthorID: e.members["Ines"].memberID,
		Text: "Started by the reconciler", Chain: chain, NeedsApproval: true}
}
