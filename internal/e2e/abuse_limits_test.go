package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	cs "github.com/countersign/countersign"
)

// Abuse cases of SPEC §8 Limits: what reaches a post's workflow is bounded,
// Idempotency-Key is bounded and the caller's own, and decisions are
// rate-limited.

func init() {
	addAbuse(
		abuseCase{Attacker: "limited author", Attack: "submits a 300 KB text to a webhook account", Spec: "§8 Limits",
			Run: func(t *testing.T) {
				e := newEnv(t)
				acct := e.setupThreeLevels()
				var prob struct {
					Code   string
					Errors []cs.FieldError
				}
				code, _ := e.submitWithKey(e.members["Ines"].token, "", map[string]any{"account_id": acct, "text": strings.Repeat("a", 300<<10)}, &prob)
				if code != 422 || len(prob.Errors) != 1 || prob.Errors[0].Field != "text" ||
					!strings.Contains(prob.Errors[0].Message, "307200 bytes") || !strings.Contains(prob.Errors[0].Message, "65536") {
					t.Fatalf("300 KB text: %d %+v, want 422 naming the count and the limit", code, prob)
				}
				e.noPosts()
			}},
		abuseCase{Attacker: "limited author", Attack: "sends an Idempotency-Key of 10,000 characters", Spec: "§8 Limits",
			Run: func(t *testing.T) {
				e := newEnv(t)
				acct := e.setupThreeLevels()
				var prob struct {
					Code   string
					Errors []cs.FieldError
				}
				code, _ := e.submitWithKey(e.members["Ines"].token, strings.Repeat("k", 10000), map[string]any{"account_id": acct, "text": "hi"}, &prob)
				if code != 422 || len(prob.Errors) != 1 || prob.Errors[0].Field != "Idempotency-Key" {
					t.Fatalf("a 10,000-character Idempotency-Key: %d %+v, want 422 naming the header", code, prob)
				}
				e.noPosts()
			}},
		abuseCase{Attacker: "limited author", Attack: "replays an Idempotency-Key with another body", Spec: "§8 Limits",
			Run: func(t *testing.T) {
				e := newEnv(t)
				acct := e.setupThreeLevels()
				ines := e.members["Ines"].token
				var first cs.Post
				if code, _ := e.submitWithKey(ines, "launch-1", map[string]any{"account_id": acct, "text": "The first text"}, &first); code != 201 {
					t.Fatalf("first submission: %d", code)
				}
				var same cs.Post
				if code, hdr := e.submitWithKey(ines, "launch-1", map[string]any{"account_id": acct, "text": "The first text"}, &same); code != 200 || same.ID != first.ID || hdr.Get("Idempotent-Replayed") != "true" {
					t.Fatalf("an honest replay: %d %s, want 200 with post %s", code, same.ID, first.ID)
				}
				var prob struct{ Code string }
				if code, _ := e.submitWithKey(ines, "launch-1", map[string]any{"account_id": acct, "text": "Another text"}, &prob); code != 422 || prob.Code != "idempotency_key_reused" {
					t.Fatalf("replay with another body: %d %+v, want 422 idempotency_key_reused", code, prob)
				}
				var list struct{ Items []cs.Post }
				e.must(200, e.owner, "GET", e.org("/posts"), nil, &list)
				if len(list.Items) != 1 || list.Items[0].Text != "The first text" {
					t.Fatalf("after the replays: %d posts, %+v", len(list.Items), list.Items)
				}
			}},
		abuseCase{Attacker: "approver", Attack: "floods a post with decisions", Spec: "§8 Limits",
			Run: func(t *testing.T) {
				e := newEnv(t)
				acct := e.setupThreeLevels()
				var post cs.Post
				e.must(201, e.members["Ines"].token, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "Flooded"}, &post)
				// Pat is not awaited at step 1: each try is refused by the
				// workflow (403; 202 when a loaded machine's worker did not
				// answer in 5 s, and the workflow ignores it later) until the
				// limiter refuses before it (429).
				limited := false
				for i := 0; i < 40 && !limited; i++ {
					req, _ := http.NewRequest("POST", e.api.URL+e.org("/posts/"+post.ID+"/approve"), strings.NewReader(`{"revision":1}`))
					req.Header.Set("Authorization", "Bearer "+e.members["Pat"].token)
					req.Header.Set("Content-Type", "application/json")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					raw, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch resp.StatusCode {
					case 403, 202:
					case 429:
						var prob struct{ Code string }
						_ = json.Unmarshal(raw, &prob)
						if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || prob.Code != cs.ReasonRateLimited {
							t.Fatalf("429 without Retry-After seconds or code: %q %s", resp.Header.Get("Retry-After"), raw)
						}
						limited = true
					default:
						t.Fatalf("decision %d: %d %s", i, resp.StatusCode, raw)
					}
				}
				if !limited {
					t.Fatal("40 decisions in a row by one member were never rate-limited")
				}
				p := e.waitPost(post.ID, "still at step 1", atStep(1))
				if len(p.Steps[0].Approvals) != 0 || p.Status != cs.PostPendingApproval {
					t.Fatalf("the flood changed the post: %+v", p.Steps[0])
				}
			}},
	)
}

// submitWithKey submits body as token with an Idempotency-Key ("" for none).
func (e *env) submitWithKey(token, key string, body any, out any) (int, http.Header) {
	e.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", e.api.URL+e.org("/posts"), bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s: %v", raw, err)
		}
	}
	return resp.StatusCode, resp.Header
}

// noPosts fails unless the org has no post.
func (e *env) noPosts() {
	e.t.Helper()
	var list struct{ Items []cs.Post }
	e.must(200, e.owner, "GET", e.org("/posts"), nil, &list)
	if len(list.Items) != 0 {
		e.t.Fatalf("the refused submission left %d posts", len(list.Items))
	}
}

// TestIdempotencyKeyIsTheCallers: another member's Idempotency-Key neither
// returns nor touches their post (SPEC §8 Limits). Keys were already scoped
// per author before the Trust issues, so this is a regression test, not an
// abuse case that failed before its fix.
func TestIdempotencyKeyIsTheCallers(t *testing.T) {
	e := newEnv(t)
	acct := e.setupThreeLevels()
	var ines, eddie cs.Post
	if code, _ := e.submitWithKey(e.members["Ines"].token, "shared-key", map[string]any{"account_id": acct, "text": "Ines's secret draft"}, &ines); code != 201 {
		t.Fatalf("Ines's submission: %d", code)
	}
	if code, _ := e.submitWithKey(e.members["Eddie"].token, "shared-key", map[string]any{"account_id": acct, "text": "Eddie's post"}, &eddie); code != 201 ||
		eddie.ID == ines.ID || eddie.AuthorID != e.members["Eddie"].memberID || eddie.Text != "Eddie's post" {
		t.Fatalf("Eddie with Ines's key: %d, post %s by %s %q; want his own new post", code, eddie.ID, eddie.AuthorID, eddie.Text)
	}
	var p cs.Post
	e.must(200, e.owner, "GET", e.org("/posts/"+ines.ID), nil, &p)
	if p.Text != "Ines's secret draft" || p.AuthorID != e.members["Ines"].memberID {
		t.Fatalf("Ines's post changed: %+v", p)
	}
}
