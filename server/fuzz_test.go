package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/testenv"
	"github.com/countersign/countersign/server"
	"net/url"
)

// Fuzz targets of the API. Under plain `go test` their seeds run as ordinary
// tests; `go test -run '^$' -fuzz '^FuzzMutatingBodies$' -parallel 1 ./server`
// fuzzes one (each fuzzing process starts its own PostgreSQL and Temporal).

// fzEnv is an API over a real store (and the package's Temporal server, with
// no worker): an org with an owner, a limited author, an editor who
// approves, a team, a webhook account with a chain, one submitted post and
// one pending invitation.
type fzEnv struct {
	url                           string
	org, post, team, acct, chain  string
	owner, author, approver       string // API tokens
	ownerID, authorID, approverID string // member ids
	invitation                    string // token of a pending invitation
	logs                          *fzLog
	client                        *http.Client
	endpointsOnce                 sync.Once
	endpointsList                 []fzEndpoint
}

func newFzEnv(tb testing.TB) *fzEnv {
	tb.Helper()
	st := testenv.Store(tb)
	if err := st.SetSecretKey(bytes.Repeat([]byte{7}, 32)); err != nil {
		tb.Fatal(err)
	}
	logs := &fzLog{max: 400}
	// No worker runs here: changes fall back to signals after UpdateWait.
	srv := server.New(server.Deps{Store: st, Temporal: testenv.TemporalClient(tb), UpdateWait: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	ts := httptest.NewServer(srv)
	tb.Cleanup(ts.Close)
	b, err := st.Bootstrap(context.Background(), "Fuzz", "owner@fuzz.test", "Olga Owner")
	if err != nil {
		tb.Fatal(err)
	}
	e := &fzEnv{url: ts.URL, org: b.Org.ID, owner: b.Token, ownerID: b.Member.ID, logs: logs,
		client: &http.Client{}}

	join := func(name string) (token, id string) {
		inv := e.must(tb, 201, e.owner, "POST", e.o("/invitations"),
			fmt.Sprintf(`{"email": "%s@fuzz.test", "name": %q, "org_role": "member"}`, strings.ToLower(name), name))
		acc := e.must(tb, 200, "", "POST", "/v1/invitations/"+inv["token"].(string)+"/accept", `{"name": "`+name+`"}`)
		return acc["api_token"].(string), acc["member"].(map[string]any)["id"].(string)
	}
	e.author, e.authorID = join("Ines")
	e.approver, e.approverID = join("Eddie")
	e.team = e.must(tb, 201, e.owner, "POST", e.o("/teams"), `{"name": "PR"}`)["id"].(string)
	e.must(tb, 200, e.owner, "PUT", e.o("/teams/"+e.team+"/members/"+e.approverID), `{"role": "member"}`)
	secret := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 24))
	e.acct = e.must(tb, 201, e.owner, "POST", e.o("/accounts"), fmt.Sprintf(`{"network": "webhook", "handle": "acme",
		"display_name": "Acme", "timezone": "Europe/Paris", "settings": {"url": "https://hooks.fuzz.test/in"},
		"credentials": {"secret": %q}}`, secret))["id"].(string)
	e.must(tb, 200, e.owner, "PUT", e.o("/accounts/"+e.acct+"/permissions"), fmt.Sprintf(`{"grants": [
		{"member_id": %q, "level": "limited"}, {"member_id": %q, "level": "editor"}]}`, e.authorID, e.approverID))
	e.chain = e.must(tb, 201, e.owner, "POST", e.o("/approval-chains"), fmt.Sprintf(`{"name": "Brand",
		"steps": [{"approver": {"team": %q}}, {"approver": {"role": "approvers"}}]}`, e.team))["id"].(string)
	e.must(tb, 200, e.owner, "PATCH", e.o("/accounts/"+e.acct), fmt.Sprintf(`{"approval_chain_id": %q}`, e.chain))
	e.post = e.must(tb, 201, e.author, "POST", e.o("/posts"), fmt.Sprintf(`{"account_id": %q, "text": "Hello"}`, e.acct))["id"].(string)
	e.invitation = e.must(tb, 201, e.owner, "POST", e.o("/invitations"), `{"email": "pending@fuzz.test"}`)["token"].(string)
	return e
}

func (e *fzEnv) o(path string) string { return "/v1/orgs/" + e.org + path }

// send sends body with the content type (none when ""), as token.
func (e *fzEnv) send(token, method, path, contentType string, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw, err
}

func (e *fzEnv) must(tb testing.TB, want int, token, method, path, body string) map[string]any {
	tb.Helper()
	code, _, raw, err := e.send(token, method, path, "application/json", []byte(body))
	if err != nil || code != want {
		tb.Fatalf("%s %s %s: %d %s %v, want %d", method, path, body, code, raw, err, want)
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			tb.Fatalf("%s %s: %s is not a JSON object", method, path, raw)
		}
	}
	return out
}

// fzEndpoint is one endpoint that reads a request body.
type fzEndpoint struct {
	name, method, path, token string
	csv                       bool // takes text/csv, not JSON
}

// endpoints lists every endpoint that reads a body, as someone allowed to
// call it (so the body is what decides the answer).
func (e *fzEnv) endpoints() []fzEndpoint {
	e.endpointsOnce.Do(func() {
		e.endpointsList = []fzEndpoint{
			{"submit post", "POST", e.o("/posts"), e.author, false},
			{"patch post", "PATCH", e.o("/posts/" + e.post), e.author, false},
			{"approve", "POST", e.o("/posts/" + e.post + "/approve"), e.approver, false},
			{"reject", "POST", e.o("/posts/" + e.post + "/reject"), e.approver, false},
			{"cancel", "POST", e.o("/posts/" + e.post + "/cancel"), e.author, false},
			{"create team", "POST", e.o("/teams"), e.owner, false},
			{"patch team", "PATCH", e.o("/teams/" + e.team), e.owner, false},
			{"put team member", "PUT", e.o("/teams/" + e.team + "/members/" + e.authorID), e.owner, false},
			{"create account", "POST", e.o("/accounts"), e.owner, false},
			{"patch account", "PATCH", e.o("/accounts/" + e.acct), e.owner, false},
			{"put permissions", "PUT", e.o("/accounts/" + e.acct + "/permissions"), e.owner, false},
			{"create chain", "POST", e.o("/approval-chains"), e.owner, false},
			{"replace chain", "PUT", e.o("/approval-chains/" + e.chain), e.owner, false},
			{"invite", "POST", e.o("/invitations"), e.owner, false},
			{"import invitations", "POST", e.o("/invitations/import"), e.owner, true},
			{"accept invitation", "POST", "/v1/invitations/" + e.invitation + "/accept", "", false},
			{"decline invitation", "POST", "/v1/invitations/" + e.invitation + "/decline", "", false},
			{"patch member", "PATCH", e.o("/members/" + e.approverID), e.owner, false},
			{"patch me", "PATCH", "/v1/me", e.author, false},
			{"create token", "POST", "/v1/me/tokens", e.author, false},
			{"put absence", "PUT", e.o("/members/" + e.authorID + "/absence"), e.author, false},
		}
	})
	return e.endpointsList
}

// fzAllEndpoints (as the fuzz argument "which") sends the body to every
// endpoint; the seeds do, and the fuzzer mostly picks one.
const fzAllEndpoints = uint8(21)

var fzContentTypes = []string{"application/json", "", "application/json; charset=utf-8", "text/plain", "text/csv"}

// checkAnswer checks one answer: never a 5xx; a 4xx is a problem document
// whose status matches; a 2xx body is JSON.
func checkAnswer(t *testing.T, e *fzEnv, what string, body []byte, code int, h http.Header, raw []byte) map[string]any {
	t.Helper()
	if code >= 500 {
		t.Errorf("%s with body %.300q: %d %s\nserver log:\n%s", what, body, code, raw, e.logs.tail(20))
		return nil
	}
	if code < 400 {
		if len(raw) > 0 && !json.Valid(raw) {
			t.Errorf("%s with body %.300q: %d with a body that is not JSON: %.300q", what, body, code, raw)
		}
		return nil
	}
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "application/problem+json" {
		t.Errorf("%s with body %.300q: %d with Content-Type %q, want application/problem+json", what, body, code, h.Get("Content-Type"))
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Errorf("%s with body %.300q: %d with a problem that is not a JSON object: %.300q", what, body, code, raw)
		return nil
	}
	status, _ := p["status"].(float64)
	pcode, _ := p["code"].(string)
	title, _ := p["title"].(string)
	if int(status) != code || pcode == "" || title == "" {
		t.Errorf("%s with body %.300q: %d with problem %s (want status, title and code)", what, body, code, raw)
	}
	if errs, ok := p["errors"]; ok {
		list, ok := errs.([]any)
		if !ok {
			t.Errorf("%s: errors is not a list: %s", what, raw)
			return p
		}
		for _, fe := range list {
			m, ok := fe.(map[string]any)
			_, okF := m["field"].(string)
			msg, okM := m["message"].(string)
			if !ok || !okF || !okM || msg == "" {
				t.Errorf("%s: errors entry %v is not {field, message}", what, fe)
			}
		}
	}
	return p
}

// FuzzMutatingBodies sends arbitrary bytes as the body of every endpoint that
// reads one (or of the one "which" picks), under one of several content
// types: the answer is never a 5xx, and every 4xx is a problem+json whose
// status matches.
func FuzzMutatingBodies(f *testing.F) {
	e := newFzEnv(f)
	in := func(s string) string {
		return strings.NewReplacer("ACCT", e.acct, "TEAM", e.team, "CHAIN", e.chain,
			"AUTHOR", e.authorID, "APPROVER", e.approverID).Replace(s)
	}
	for _, s := range []string{
		// valid bodies, one per endpoint family
		`{"account_id": "ACCT", "text": "Autumn launch", "media_urls": ["https://cdn.fuzz.test/a.png"], "scheduled_at": "2099-11-23T09:00:00+01:00"}`,
		`{"text": "Autumn launch, take 2", "revision": 1}`,
		`{"scheduled_at": null}`,
		`{"revision": 1, "note": "ok"}`,
		`{"reason": "duplicate"}`,
		`{"name": "Design", "slack_channel_id": "C123"}`,
		`{"role": "admin"}`,
		`{"network": "mastodon", "handle": "acme@social.fuzz.test", "display_name": "Acme", "timezone": "UTC", "settings": {"instance_url": "https://social.fuzz.test"}, "credentials": {"access_token": "t0k3n"}}`,
		`{"approval_chain_id": null}`,
		`{"approval_chain_id": "CHAIN"}`,
		`{"grants": [{"member_id": "AUTHOR", "level": "limited"}, {"member_id": "APPROVER", "level": "editor"}, {"team_id": "TEAM", "level": "custom", "custom": {"publish": "with_approval", "approve": true, "manage": false}}]}`,
		`{"name": "Brand", "late_policy": "hold", "distinct_approvers": false, "steps": [{"approver": {"team": "TEAM"}, "timeout": "4h", "fallback_team": "TEAM", "fallback_timeout": "2h"}, {"approver": {"role": "approvers"}}]}`,
		`{"email": "ana@fuzz.test", "name": "Ana", "org_role": "member", "teams": ["PR"]}`,
		`{"name": "Ana"}`,
		`{"org_role": "admin", "slack_user_id": "U123"}`,
		`{"name": "Ines", "allow_invitations": false}`,
		`{"label": "ci"}`,
		`{"from": "2030-01-01T00:00:00+01:00", "until": "2030-01-05T00:00:00+01:00", "delegate_member_id": "APPROVER"}`,
		`{"from": "2030-01-05T00:00:00Z", "until": "2030-01-01T00:00:00Z", "delegate_member_id": "AUTHOR"}`,
		`{"from": "2030-01-01", "until": null, "delegate_member_id": "00000000-0000-0000-0000-000000000000"}`,
		"email,name,org_role,teams\nana@fuzz.test,Ana,member,PR;Design\n",
		// invalid ones
		``, ` `, `{}`, `[]`, `null`, `"x"`, `1e999`, `{"x":1}`, `{} {}`, `{"text": 1}`, `{"revision": "1"}`,
		`{"revision": -1, "note": ""}`, `{"revision": 99999999999999999999}`, `{"steps": {}}`, `{"steps": [{"approver": "x"}]}`,
		`{"steps": [{"approver": {"member": "not-a-uuid"}, "quorum": 0, "timeout": "soon"}]}`,
		`{"account_id": "ACCT", "text": "` + strings.Repeat("a", 600) + `"}`,
		`{"account_id": "00000000-0000-0000-0000-000000000000", "text": "x"}`,
		`{"account_id": "ACCT", "text": "x", "scheduled_at": "2020-01-01T00:00:00"}`,
		`{"grants": [{"member_id": "AUTHOR", "team_id": "TEAM", "level": "root"}]}`,
		`{"network": "x", "handle": "", "timezone": "Mars/Olympus", "settings": {"api_url": "ftp://x"}}`,
		`{"email": "not an email", "org_role": "owner", "teams": [""]}`,
		`{"name": "\u0000", "text": "\u0000", "email": "a\u0000@fuzz.test"}`,
		`{"text": "\ud800"}`,
		"\xff\xfe{",
	} {
		for ct := range fzContentTypes[:2] {
			f.Add([]byte(in(s)), uint8(ct), fzAllEndpoints)
		}
	}
	// Once a 500: a U+0000 in a string field reached PostgreSQL, which
	// refuses it. bindJSON now answers 422.
	for _, s := range []string{`{"name": "PR\u0000"}`, `{"account_id": "ACCT", "text": "nul \u0000"}`,
		`{"email": "a\u0000@fuzz.test"}`, `{"label": "\u0000"}`, `{"slack_user_id": "U\u0000"}`} {
		f.Add([]byte(in(s)), uint8(0), fzAllEndpoints)
	}
	if n := len(e.endpoints()); n != int(fzAllEndpoints) {
		f.Fatalf("fzAllEndpoints is %d, there are %d endpoints", fzAllEndpoints, n)
	}
	f.Fuzz(func(t *testing.T, body []byte, ct, which uint8) {
		contentType := fzContentTypes[int(ct)%len(fzContentTypes)]
		eps := e.endpoints()
		if i := int(which) % (len(eps) + 1); i < len(eps) {
			eps = eps[i : i+1] // one endpoint: the fuzzer runs 20 times faster
		}
		for _, ep := range eps {
			typ := contentType
			if ep.csv && ct%2 == 0 {
				typ = "text/csv"
			}
			code, h, raw, err := e.send(ep.token, ep.method, ep.path, typ, body)
			if err != nil {
				t.Fatalf("%s: %v", ep.name, err)
			}
			checkAnswer(t, e, fmt.Sprintf("%s %s (%s, Content-Type %q)", ep.method, ep.path, ep.name, typ), body, code, h, raw)
		}
	})
}

// chainFieldPattern is what a chain's field errors may name.
var chainFieldPattern = regexp.MustCompile(`^(name|steps|late_policy|require_approval_for_all|distinct_approvers|` +
	`steps\[\d+\]\.(approver(\.(member|team|role))?|quorum|timeout|fallback_team|fallback_timeout))$`)

// FuzzChainBody: the body of POST /approval-chains is decoded and validated
// without a 5xx, and every 422 names the fields at fault in the chain's own
// terms (steps[1].quorum, not a Go type).
func FuzzChainBody(f *testing.F) {
	e := newFzEnv(f)
	for _, s := range []string{
		`{"name": "Brand", "late_policy": "expire", "require_approval_for_all": false, "distinct_approvers": true,
		  "steps": [{"approver": {"member": "APPROVER"}, "timeout": "4h", "fallback_team": "TEAM", "fallback_timeout": "2h"},
		            {"approver": {"team": "TEAM"}, "quorum": 1}, {"approver": {"role": "approvers"}}]}`,
		`{"name": "one", "steps": [{"approver": {"role": "approvers"}}]}`,
		`{"name": "", "steps": []}`,
		`{"name": "four", "steps": [{"approver": {"role": "approvers"}}, {"approver": {"role": "approvers"}}, {"approver": {"role": "approvers"}}, {"approver": {"role": "approvers"}}]}`,
		`{"name": "x", "steps": [{"approver": {"member": "APPROVER", "team": "TEAM"}}]}`,
		`{"name": "x", "steps": [{"approver": {}}]}`,
		`{"name": "x", "steps": [{"approver": {"role": "admins"}}]}`,
		`{"name": "x", "steps": [{"approver": {"member": "APPROVER"}, "quorum": 3}]}`,
		`{"name": "x", "steps": [{"approver": {"team": "TEAM"}, "quorum": 5}]}`,
		`{"name": "x", "steps": [{"approver": {"team": "TEAM"}, "quorum": 0}]}`,
		`{"name": "x", "steps": [{"approver": {"team": "TEAM"}, "timeout": "10ms"}]}`,
		`{"name": "x", "steps": [{"approver": {"team": "TEAM"}, "timeout": "4"}]}`,
		`{"name": "x", "steps": [{"approver": {"team": "TEAM"}, "fallback_team": "TEAM"}]}`,
		`{"name": "x", "steps": [{"approver": {"team": "00000000-0000-0000-0000-000000000000"}}]}`,
		`{"name": "x", "steps": [{"approver": {"member": "nope"}}]}`,
		`{"name": "x", "late_policy": "later", "steps": [{"approver": {"role": "approvers"}}]}`,
		`{"name": "` + strings.Repeat("n", 101) + `", "steps": [{"approver": {"role": "approvers"}}]}`,
		`{"name": "x", "steps": [{"approver": {"role": "approvers"}, "colour": "red"}]}`,
		`{"name": "x", "steps": [{"approver": {"role": "approvers"}, "timeout": 4}]}`,
		`{"name": 1}`,
	} {
		f.Add([]byte(strings.NewReplacer("APPROVER", e.approverID, "TEAM", e.team).Replace(s)))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		code, h, raw, err := e.send(e.owner, "POST", e.o("/approval-chains"), "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		p := checkAnswer(t, e, "POST /approval-chains", body, code, h, raw)
		if code != 422 || p == nil {
			return
		}
		errs, _ := p["errors"].([]any)
		if len(errs) == 0 {
			t.Errorf("422 without field errors for %.300q: %s", body, raw)
		}
		for _, fe := range errs {
			m, _ := fe.(map[string]any)
			field, _ := m["field"].(string)
			msg, _ := m["message"].(string)
			switch {
			case p["code"] == "unknown_field":
				// names what the client sent, whatever it is
			case p["detail"] == "a field has the wrong type" && strings.Contains(msg, "server."):
				t.Errorf("a type mismatch names a Go type: %q for %.300q", msg, body)
			case p["detail"] == "a field has the wrong type" && field == "body":
				// the whole body is not an object
			case !chainFieldPattern.MatchString(field):
				t.Errorf("422 names field %q (%q) for %.300q", field, msg, body)
			}
		}
	})
}

// fzLog keeps the server's last log lines (warnings and errors), so a 5xx
// comes with its cause.
type fzLog struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (l *fzLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.TrimRight(string(p), "\n"))
	if len(l.lines) > l.max {
		l.lines = append([]string(nil), l.lines[len(l.lines)-l.max/2:]...)
	}
	return len(p), nil
}

func (l *fzLog) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines[max(0, len(l.lines)-n):], "\n")
}

// FuzzSubmitIdempotencyKey: any Idempotency-Key with a text of any length
// up to 70 KiB: never a 5xx; a key over 255 characters, or a text over 64
// KiB, is a 422 naming it; an accepted submission is always the caller's own
// post with the text sent, and a key replayed with another body is 422
// idempotency_key_reused (SPEC §8 Limits).
func FuzzSubmitIdempotencyKey(f *testing.F) {
	e := newFzEnv(f)
	for _, s := range []struct {
		key string
		n   uint32
	}{{"k1", 5}, {"k1", 6}, {"", 1}, {strings.Repeat("k", 255), 10}, {strings.Repeat("k", 256), 10},
		{"ключ <&> \"quoted\"", 12}, {"k2", 64 << 10}, {"k3", 64<<10 + 1}, {strings.Repeat("é", 200), 3}} {
		f.Add(s.key, s.n)
	}
	f.Fuzz(func(t *testing.T, key string, n uint32) {
		text := strings.Repeat("a", int(n%(70<<10)))
		body, _ := json.Marshal(map[string]string{"account_id": e.acct, "text": text})
		req, err := http.NewRequest("POST", e.url+e.o("/posts"), bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+e.author)
		req.Header.Set("Idempotency-Key", key)
		resp, err := e.client.Do(req)
		if err != nil {
			t.Skip("the client refuses this header value:", err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		what := fmt.Sprintf("POST /posts with Idempotency-Key %.80q (%d characters)", key, len(key))
		p := checkAnswer(t, e, what, body, resp.StatusCode, resp.Header, raw)
		field := func() string {
			if errs, _ := p["errors"].([]any); len(errs) > 0 {
				f, _ := errs[0].(map[string]any)["field"].(string)
				return f
			}
			return ""
		}
		sentKey := strings.Trim(req.Header.Get("Idempotency-Key"), " \t") // as the server reads it
		switch {
		case len(sentKey) > 255:
			if resp.StatusCode != 422 || field() != "Idempotency-Key" {
				t.Fatalf("%s: %d %s, want 422 naming Idempotency-Key", what, resp.StatusCode, raw)
			}
		case text == "" || len(text) > 64<<10:
			if resp.StatusCode != 422 || field() != "text" {
				t.Fatalf("%s, text of %d bytes: %d %s, want 422 naming text", what, len(text), resp.StatusCode, raw)
			}
		case resp.StatusCode == 200 || resp.StatusCode == 201:
			var post struct {
				AuthorID string `json:"author_id"`
				Text     string `json:"text"`
			}
			if err := json.Unmarshal(raw, &post); err != nil || post.AuthorID != e.authorID || post.Text != text {
				t.Fatalf("%s: %d answered another post: author %s, %d bytes of text (sent %d)", what, resp.StatusCode, post.AuthorID, len(post.Text), len(text))
			}
		case resp.StatusCode == 422:
			if c, _ := p["code"].(string); c != "idempotency_key_reused" {
				t.Fatalf("%s: %d %s", what, resp.StatusCode, raw)
			}
		default:
			t.Fatalf("%s: unexpected %d %s", what, resp.StatusCode, raw)
		}
	})
}

// FuzzAccountSettings: PATCH an account's URL setting with any string, with
// or without its credentials: never a 5xx; a refusal leaves the account
// exactly as it was; an accepted URL has no user info, query or fragment,
// is not plain http (the fuzz deployment allows no host), and moved only if
// the credentials came with it.
func FuzzAccountSettings(f *testing.F) {
	e := newFzEnv(f)
	secret := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 24))
	path := e.o("/accounts/" + e.acct)
	for _, s := range []string{
		"https://hooks.fuzz.test/in", "https://HOOKS.fuzz.test:443/in/", "https://evil.test/in", "http://hooks.fuzz.test/in",
		"https://hooks.fuzz.test/in?x=1", "https://hooks.fuzz.test/in#f", "https://u:p@hooks.fuzz.test/in", "https://169.254.169.254/",
		"https://[fd00:ec2::254]/", "https://10.0.0.1:8443/", "https://localhost/", "ftp://hooks.fuzz.test", "", " https://a.test",
		"https://a.test/\u0000", "https://" + strings.Repeat("a", 3000) + ".test",
	} {
		for _, creds := range []bool{false, true} {
			f.Add(s, uint8(0), creds)
		}
	}
	f.Add("https://social.fuzz.test", uint8(1), true)
	f.Fuzz(func(t *testing.T, raw string, key uint8, withCreds bool) {
		keys := []string{"url", "instance_url"}
		body := map[string]any{"settings": map[string]string{keys[int(key)%len(keys)]: raw}}
		if withCreds {
			body["credentials"] = map[string]string{"secret": secret}
		}
		b, _ := json.Marshal(body)
		before := e.must(t, 200, e.owner, "GET", path, "")
		code, h, out, err := e.send(e.owner, "PATCH", path, "application/json", b)
		if err != nil {
			t.Fatal(err)
		}
		checkAnswer(t, e, "PATCH account settings", b, code, h, out)
		after := e.must(t, 200, e.owner, "GET", path, "")
		if code != 200 {
			if fmt.Sprint(before) != fmt.Sprint(after) {
				t.Fatalf("a refused change (%d %s) changed the account:\n%v\n%v", code, out, before, after)
			}
			return
		}
		got := after["settings"].(map[string]any)["url"].(string)
		u, perr := url.Parse(got)
		if perr != nil || u.Scheme != "https" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Contains(got, "#") {
			t.Fatalf("accepted %q", got)
		}
		was := before["settings"].(map[string]any)["url"].(string)
		if cs.DestinationURL(cs.NetworkWebhook, map[string]string{"url": got}) != cs.DestinationURL(cs.NetworkWebhook, map[string]string{"url": was}) {
			if !withCreds {
				t.Fatalf("moved from %q to %q without the credentials", was, got)
			}
			// Put it back for the next input.
			e.must(t, 200, e.owner, "PATCH", path, fmt.Sprintf(`{"settings": {"url": %q}, "credentials": {"secret": %q}}`, was, secret))
		}
	})
}

// FuzzInvitationPage posts arbitrary form bodies (and paths) to the accept
// page: the answer is always an HTML page with its security headers, never
// a 5xx, and never shows an API token unless it created a user.
func FuzzInvitationPage(f *testing.F) {
	e := newFzEnv(f)
	for _, s := range []string{
		"action=accept&name=Ana", "action=decline", "action=accept&name=" + strings.Repeat("a", 300), "action=x",
		"", "name=%00", "action=accept&name=%E2%80%AE%0D%0ABcc:x", "%zz", "action=accept&action=decline",
	} {
		f.Add([]byte(s), "")
		f.Add([]byte(s), e.invitation)
	}
	f.Add([]byte("action=accept"), "csi_forged")
	f.Add([]byte("action=accept"), "csi_%00")
	f.Fuzz(func(t *testing.T, body []byte, token string) {
		if token == "" {
			token = "csi_none"
		}
		for _, method := range []string{"GET", "POST"} {
			code, h, raw, err := e.send("", method, "/invitations/"+url.PathEscape(token), "application/x-www-form-urlencoded", body)
			if err != nil {
				t.Fatal(err)
			}
			if code >= 500 && code != 503 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") && code != 404 && code != 405 {
				t.Errorf("%s %q with %q: %d %s %.200s", method, token, body, code, h.Get("Content-Type"), raw)
			}
			if strings.HasPrefix(h.Get("Content-Type"), "text/html") && (h.Get("Referrer-Policy") != "no-referrer" ||
				!strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'")) {
				t.Errorf("%s %q: page without its headers: %v", method, token, h)
			}
		}
	})
}
