package e2e

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
)

// Abuse cases of external reviewers' links (SPEC §2, the external approver;
// §6 /review/{token}; §8 Approvals). Each asserts the attack failed with a
// clear 4xx page (never a 500) and that the post did not move.

func init() {
	addAbuse(
		abuseCase{Attacker: "anyone with a review link", Attack: "tampers with the token to reach another step",
			Spec: "§2 Approval chain (external)", Run: oneAtATime(abuseTamperedLink)},
		abuseCase{Attacker: "external reviewer", Attack: "answers with the revision 1 link after the post was edited",
			Spec: "§2 Approval chain (external)", Run: oneAtATime(abuseStaleLink)},
		abuseCase{Attacker: "external reviewer", Attack: "replays a review link after using it",
			Spec: "§2 Approval chain (external)", Run: oneAtATime(abuseReplayedLink)},
		abuseCase{Attacker: "external reviewer", Attack: "answers with the step 1 link while step 2 is open",
			Spec: "§2 Approval chain (external)", Run: oneAtATime(abuseEarlierStepLink)},
		abuseCase{Attacker: "member", Attack: "answers an external step as a member or claims to be its reviewer",
			Spec: "§8 Approvals", Run: oneAtATime(abuseMemberOnExternalStep)},
		abuseCase{Attacker: "anyone reaching Temporal", Attack: "sends an external reviewer's decision without a valid MAC",
			Spec: "§8 Approvals", Run: oneAtATime(abuseUnsignedExternal)},
		abuseCase{Attacker: "another website", Attack: "frames the review page or posts its form from elsewhere",
			Spec: "§6 /review/{token}", Run: oneAtATime(abuseFramedReviewPage)},
		abuseCase{Attacker: "author", Attack: "writes a script into the post to run on the reviewer's page",
			Spec: "§6 /review/{token}", Run: oneAtATime(abuseScriptedReviewPage)},
	)
}

// externalPost is a submitted post whose step 1 is Cleo's (48h) and step 2
// Maya's, with the link Cleo was sent.
func (e *env) externalPost(text string, steps ...map[string]any) (cs.Post, string, *mailbox) {
	e.t.Helper()
	box := e.withMailbox()
	if len(steps) == 0 {
		steps = []map[string]any{externalStep(cleo, "48h"), mayaStep()}
	}
	acct := e.setupExternal("webhook", steps...)
	p := e.submit(acct, text, nil)
	return p, e.reviewURL(box.wait(e.t, cleo, 1)), box
}

// unmoved fails unless the post is still pending at step with no approval
// there.
func (e *env) unmoved(postID string, revision, step int) {
	e.t.Helper()
	var p cs.Post
	e.must(200, e.owner, "GET", e.org("/posts/"+postID), nil, &p)
	if p.Status != cs.PostPendingApproval || p.Revision != revision || p.CurrentStep != step || len(p.Steps[step-1].Approvals) != 0 {
		e.t.Fatalf("the post moved: %s revision %d step %d approvals %v", p.Status, p.Revision, p.CurrentStep, p.Steps[step-1].Approvals)
	}
}

// refusedPage fails unless both the page and its form answer want with
// title in the page.
func refusedPage(t *testing.T, u string, want int, title string) {
	t.Helper()
	for _, method := range []string{"GET", "POST"} {
		var form url.Values
		if method == "POST" {
			form = url.Values{"decision": {"approve"}}
		}
		code, h, body := page(t, method, u, form, nil)
		if code != want || !strings.Contains(body, title) || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d, want %d with %q: %s", method, code, want, title, body)
		}
	}
}

func abuseTamperedLink(t *testing.T) {
	e := newEnv(t)
	p, u, _ := e.externalPost("Tampered link", externalStep(cleo, "48h"), externalStep(cleo, "48h"))
	i := strings.LastIndex(u, "/review/") + len("/review/")
	payload, mac, _ := strings.Cut(u[i:], ".")
	raw, _ := base64.RawURLEncoding.DecodeString(payload)
	raw[37] = 2 // the step byte: Cleo's step 2, not open yet
	other := u[:i] + base64.RawURLEncoding.EncodeToString(raw) + "." + mac
	refusedPage(t, other, 404, "This review link is not valid")
	refusedPage(t, u[:i]+payload+".AAAA", 404, "This review link is not valid")
	refusedPage(t, u[:i]+"not-a-token", 404, "This review link is not valid")
	e.unmoved(p.ID, 1, 1)
}

func abuseStaleLink(t *testing.T) {
	e := newEnv(t)
	p, u, box := e.externalPost("Before the edit")
	e.must(200, e.members["Ines"].token, "PATCH", e.org("/posts/"+p.ID), map[string]any{"text": "After the edit"}, nil)
	box.wait(t, cleo, 2) // the new revision's link
	refusedPage(t, u, 410, "The post was edited")
	e.unmoved(p.ID, 2, 1)
}

func abuseReplayedLink(t *testing.T) {
	e := newEnv(t)
	p, u, _ := e.externalPost("Used once")
	// A double submit: both at once, one decision.
	codes := make(chan int, 2)
	for range 2 {
		go func() { // no t.Fatal off the test's goroutine: an error is code 0
			resp, err := http.PostForm(u, url.Values{"decision": {"approve"}})
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	ok := 0
	for range 2 {
		switch code := <-codes; code {
		case 200:
			ok++
		case 409, 410:
		default:
			t.Fatalf("a double submit answered %d", code)
		}
	}
	got := e.waitPost(p.ID, "at step 2", atStep(2))
	if ok == 0 || len(got.Steps[0].Approvals) != 1 {
		t.Fatalf("a double submit: %d answered 200, step 1 has %d approvals", ok, len(got.Steps[0].Approvals))
	}
	refusedPage(t, u, 410, "You have already answered")
	refusedPage(t, u, 410, "You have already answered")
	e.unmoved(p.ID, 1, 2)
}

func abuseEarlierStepLink(t *testing.T) {
	e := newEnv(t)
	step := externalStep(cleo, "1s")
	step["fallback_team"], step["fallback_timeout"] = "pr", "1h"
	p, u, _ := e.externalPost("Answered by the fallback", step, mayaStep())
	e.waitPost(p.ID, "widened to its fallback", func(p cs.Post) bool { return len(p.Steps) > 0 && p.Steps[0].FallbackActive })
	e.approve("Pat", p.ID, 1)
	e.waitPost(p.ID, "at step 2", atStep(2))
	refusedPage(t, u, 410, "This post no longer waits for your review")
	e.unmoved(p.ID, 1, 2)
}

func abuseMemberOnExternalStep(t *testing.T) {
	e := newEnv(t)
	p, _, _ := e.externalPost("Not Maya's step")
	var prob struct{ Code string }
	if code := e.do(e.members["Maya"].token, "POST", e.org("/posts/"+p.ID+"/approve"), map[string]any{"revision": 1}, &prob); code != 403 ||
		prob.Code != cs.ReasonNotAwaited {
		t.Fatalf("a member's approval of the external step: %d %s", code, prob.Code)
	}
	if code := e.do(e.members["Maya"].token, "POST", e.org("/posts/"+p.ID+"/approve"),
		map[string]any{"revision": 1, "external": cleo, "source": "link"}, &prob); code != 422 {
		t.Fatalf("an approval claiming to be the reviewer's: %d %s", code, prob.Code)
	}
	e.unmoved(p.ID, 1, 1)
}

func abuseUnsignedExternal(t *testing.T) {
	e := newEnv(t)
	p, _, _ := e.externalPost("Forged link decision")
	u := e.updater(p.ID)
	d := cs.DecisionSignal{PostID: p.ID, Revision: 1, Step: 1, External: cleo, Decision: cs.DecisionApprove,
		Source: cs.SourceLink, RequestID: "link:forged"}
	u.signal(cs.SignalDecision, d) // no MAC
	// The MAC of the same decision by another reviewer (MACs are in history).
	d.RequestID = "link:forged2"
	other := d
	other.External = "someone@else.test"
	d.MAC = u.signer.Sign(other)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := u.update(ctx, cs.UpdateDecide, d); err == nil || !strings.Contains(err.Error(), cs.ReasonUnsigned) {
		t.Fatalf("the Update with another decision's MAC: %v", err)
	}
	e.waitEvent(p.ID, cs.EventDecisionIgnored, cs.ReasonUnsigned)
	e.unmoved(p.ID, 1, 1)
}

func abuseFramedReviewPage(t *testing.T) {
	e := newEnv(t)
	p, u, _ := e.externalPost("Framed")
	code, h, _ := page(t, "GET", u, nil, nil)
	csp := h.Get("Content-Security-Policy")
	if code != 200 || !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") ||
		strings.Contains(csp, "script-src") || strings.Contains(csp, "unsafe-inline") ||
		h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" ||
		h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("headers of the review page: %d %v", code, h)
	}
	for _, hdr := range []map[string]string{{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}} {
		code, h, body := page(t, "POST", u, url.Values{"decision": {"approve"}}, hdr)
		if code != 403 || !strings.Contains(body, "another site") || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Fatalf("a form posted from another site (%v): %d %s", hdr, code, body)
		}
	}
	if code, _, _ := page(t, "POST", u, nil, nil); code != 415 {
		t.Fatalf("a POST that is not the form: %d", code)
	}
	e.unmoved(p.ID, 1, 1)
}

func abuseScriptedReviewPage(t *testing.T) {
	e := newEnv(t)
	p, u, box := e.externalPost(`<script>alert(1)</script><img src=x onerror=alert(2)> https://x.example/"><script>`)
	code, h, body := page(t, "GET", u, nil, nil)
	if code != 200 || strings.Contains(strings.ToLower(body), "<script") || strings.Contains(body, "<img") ||
		!strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("the page runs the author's markup: %d %s", code, body)
	}
	if mail := box.wait(t, cleo, 1); strings.Contains(strings.ToLower(mail.HTML), "<script") {
		t.Fatalf("the mail carries the author's script: %s", mail.HTML)
	}
	e.unmoved(p.ID, 1, 1)
}
