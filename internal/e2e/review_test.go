package e2e

import (
	"context"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/mail"
	"github.com/countersign/countersign/internal/mail/mailsink"
)

// External reviewers (SPEC §2, the external approver; §6 /review/{token}):
// the reviewer is e-mailed a signed link when their step opens, and answers
// on its page, through the same decide Update as everyone else.

const cleo = "cleo@client.test"

// mailbox is where the deployment's mail goes: the real SMTP sender
// (internal/mail) to an in-process SMTP sink.
type mailbox struct {
	sink *mailsink.Sink
}

// wait returns the n-th message (1-based) sent to to, decoded.
func (m *mailbox) wait(t *testing.T, to string, n int) cs.Mail {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var got []mailsink.Message
		for _, msg := range m.sink.Messages() {
			if slices.Contains(msg.To, to) {
				got = append(got, msg)
			}
		}
		if len(got) >= n {
			hdr, text, html, err := mailsink.Parts(got[n-1].Data)
			if err != nil {
				t.Fatal(err)
			}
			subject, err := new(mime.WordDecoder).DecodeHeader(hdr.Get("Subject"))
			if err != nil {
				t.Fatal(err)
			}
			return cs.Mail{To: to, Subject: subject, Text: text, HTML: html}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no mail #%d to %s", n, to)
	return cs.Mail{}
}

// withMailbox restarts the worker with the SMTP sender, to a sink, as its
// Mailer. (Invitations stay unmailed: the tests' invite reads the token from
// the API's answer.)
func (e *env) withMailbox() *mailbox {
	e.t.Helper()
	sink, err := mailsink.Start(mailsink.Options{Dir: e.t.TempDir()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { sink.Close() })
	sender, err := mail.NewSender(mail.Settings{URL: sink.URL(), From: "Countersign <no-reply@acme.test>", Egress: e.app.Config.Egress})
	if err != nil {
		e.t.Fatal(err)
	}
	e.stopWorker()
	e.app.Mailer = sender
	e.startWorker()
	return &mailbox{sink: sink}
}

var reviewLink = regexp.MustCompile(`https?://[^\s"<>]+/review/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)`)

// reviewURL is the link a mail carries, on the deployment under test (the
// link itself points at COUNTERSIGN_PUBLIC_URL).
func (e *env) reviewURL(mail cs.Mail) string {
	e.t.Helper()
	m := reviewLink.FindStringSubmatch(mail.Text)
	if m == nil || !strings.Contains(mail.HTML, m[0]) {
		e.t.Fatalf("no review link in both parts of the mail: %q", mail.Text)
	}
	if !strings.HasPrefix(m[0], e.app.Config.PublicURL+"/review/") {
		e.t.Fatalf("the link %s is not under COUNTERSIGN_PUBLIC_URL %s", m[0], e.app.Config.PublicURL)
	}
	return e.api.URL + "/review/" + m[1]
}

// setupExternal builds an org whose account's chain is steps: Ines
// (limited) writes, Maya is a member approver, PR (Pat) a team. network is
// mastodon (never reached: posts are scheduled later) or webhook (the
// receiver). steps may name "maya" and "pr" as placeholders.
func (e *env) setupExternal(network string, steps ...map[string]any) (accountID string) {
	e.t.Helper()
	b, err := e.app.Store.Bootstrap(context.Background(), "Acme", "owner@acme.test", "Olivia Owner")
	if err != nil {
		e.t.Fatal(err)
	}
	e.orgID, e.owner = b.Org.ID, b.Token
	ines, maya, pat := e.invite("Ines", "member"), e.invite("Maya", "member"), e.invite("Pat", "member")
	var team struct{ ID string }
	e.must(201, e.owner, "POST", e.org("/teams"), map[string]any{"name": "PR"}, &team)
	e.must(200, e.owner, "PUT", e.org("/teams/"+team.ID+"/members/"+pat.memberID), map[string]any{"role": "member"}, nil)
	acct := map[string]any{"network": network, "handle": "acme", "display_name": "Acme", "timezone": "Europe/Paris"}
	if network == "webhook" {
		acct["settings"] = map[string]string{"url": e.hook.URL}
		acct["credentials"] = map[string]string{"secret": e.hook.Secret}
	} else {
		acct["settings"] = map[string]string{"instance_url": "https://mastodon.example"}
		acct["credentials"] = map[string]string{"access_token": "never-used"}
	}
	var a struct{ ID string }
	e.must(201, e.owner, "POST", e.org("/accounts"), acct, &a)
	e.must(200, e.owner, "PUT", e.org("/accounts/"+a.ID+"/permissions"), map[string]any{"grants": []map[string]any{
		{"member_id": ines.memberID, "level": "limited"}}}, nil)
	for _, s := range steps {
		if ap, ok := s["approver"].(map[string]any); ok {
			switch ap["member"] {
			case "maya":
				ap["member"] = maya.memberID
			}
		}
		if s["fallback_team"] == "pr" {
			s["fallback_team"] = team.ID
		}
	}
	var chain struct{ ID string }
	e.must(201, e.owner, "POST", e.org("/approval-chains"), map[string]any{"name": "Client", "steps": steps}, &chain)
	e.must(200, e.owner, "PATCH", e.org("/accounts/"+a.ID), map[string]any{"approval_chain_id": chain.ID}, nil)
	return a.ID
}

func externalStep(email, timeout string) map[string]any {
	s := map[string]any{"approver": map[string]any{"external": map[string]string{"email": email, "name": "Cleo Client"}}}
	if timeout != "" {
		s["timeout"] = timeout
	}
	return s
}

func mayaStep() map[string]any { return map[string]any{"approver": map[string]any{"member": "maya"}} }

// submit posts text as Ines (scheduled at at, or as soon as approved).
func (e *env) submit(acct, text string, at *time.Time) cs.Post {
	e.t.Helper()
	body := map[string]any{"account_id": acct, "text": text}
	if at != nil {
		body["scheduled_at"] = at.Format(time.RFC3339)
	}
	var p cs.Post
	e.must(201, e.members["Ines"].token, "POST", e.org("/posts"), body, &p)
	return p
}

// page GETs or POSTs (form) a review URL: status, headers and body.
func page(t *testing.T, method, u string, form url.Values, header map[string]string) (int, http.Header, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

// TestExternalReviewerOverHTTP: Maya approves step 1, the client is
// e-mailed a link for step 2, reads the page and approves with a form post;
// the post is published. A second submit of the link shows that it was used.
func TestExternalReviewerOverHTTP(t *testing.T) {
	e := newEnv(t)
	box := e.withMailbox()
	acct := e.setupExternal("webhook", mayaStep(), externalStep(" Cleo@Client.test", "48h"))
	p := e.submit(acct, "Our client's launch <b>today</b>", nil)
	e.approve("Maya", p.ID, 1)

	e.must(201, e.members["Maya"].token, "POST", e.org("/posts/"+p.ID+"/comments"), map[string]any{"text": "Checked the date <ok>"}, nil)
	mail := box.wait(t, cleo, 1)
	if !strings.Contains(mail.Subject, "acme") || !strings.Contains(mail.Subject, "step 2/2") ||
		!strings.Contains(mail.Text, "Hello Cleo Client") || !strings.Contains(mail.Text, "Our client's launch <b>today</b>") ||
		!strings.Contains(mail.HTML, "Our client&#39;s launch &lt;b&gt;today&lt;/b&gt;") {
		t.Fatalf("mail: %+v", mail)
	}
	u := e.reviewURL(mail)
	code, h, body := page(t, "GET", u, nil, nil)
	if code != 200 || !strings.Contains(body, "Our client&#39;s launch &lt;b&gt;today&lt;/b&gt;") || !strings.Contains(body, `id="step">2/2<`) ||
		!strings.Contains(body, "Maya, revision 1") || !strings.Contains(body, "Checked the date &lt;ok&gt;") ||
		!strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", code, body)
	}
	code, _, body = page(t, "POST", u, url.Values{"decision": {"reject"}, "note": {"  "}}, nil)
	if code != 422 || !strings.Contains(body, "write the reason") {
		t.Fatalf("a reject without a reason: %d %s", code, body)
	}
	code, _, body = page(t, "POST", u, url.Values{"decision": {"approve"}}, nil)
	if code != 200 || !strings.Contains(body, "you approved the post") {
		t.Fatalf("approve: %d %s", code, body)
	}
	got := e.waitPost(p.ID, "published", func(p cs.Post) bool { return p.Status == cs.PostPublished })
	rec := got.Steps[1].Approvals[0]
	if rec.External != cleo || rec.MemberID != "" || rec.Source != cs.SourceLink {
		t.Fatalf("the decision record: %+v", rec)
	}
	if e.hook.Count() != 1 {
		t.Fatalf("%d deliveries", e.hook.Count())
	}
	code, _, body = page(t, "POST", u, url.Values{"decision": {"approve"}}, nil)
	if code != 410 || !strings.Contains(body, "You have already answered") {
		t.Fatalf("the link used again: %d %s", code, body)
	}
	writeHistory(t, e.app.Temporal, p.ID, "external_review_published.v3")
}

// chromium is the browser binary, "" when none is installed.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	return ""
}

// TestExternalReviewerInABrowser: headless Chromium opens the link from the
// mail, reads the preview (text with the network's count, handle, step,
// time in the account's zone), clicks Approve, and the post moves on.
func TestExternalReviewerInABrowser(t *testing.T) {
	bin := chromium()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI: chromium is not installed (.ci/run installs it)")
		}
		t.Skip("no chromium binary (apt-get install chromium); CI runs this test")
	}
	e := newEnv(t)
	box := e.withMailbox()
	acct := e.setupExternal("mastodon", externalStep(cleo, "48h"), mayaStep())
	at := time.Date(2030, 6, 1, 7, 30, 0, 0, time.UTC) // 09:30 in Paris (CEST)
	text0 := "Launch day! https://acme.example/a/very/long/link/that/counts/as/23 🎉"
	p := e.submit(acct, text0, &at)
	u := e.reviewURL(box.wait(t, cleo, 1))

	ctx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()))
	defer cancel()
	ctx, cancel = chromedp.NewContext(ctx)
	defer cancel()
	// The first action starts the browser, on a context without a timeout
	// (chromedp stops the browser with it); the others are bounded.
	if err := chromedp.Do(ctx, chromedp.Navigate(u)); err != nil {
		t.Fatal(err)
	}
	tctx, tcancel := context.WithTimeout(ctx, 60*time.Second)
	defer tcancel()
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	handle, step, shown, count, scheduled := text("#handle"), text("#step"), text("#text"), text("#count"), text("#scheduled")
	want := cs.TextLimits[cs.NetworkMastodon].Count(text0)
	if handle != "acme" || step != "1/2" || shown != text0 || !strings.HasPrefix(count, strconv.Itoa(want)+" / 500 characters") ||
		!strings.Contains(scheduled, "09:30") || !strings.Contains(scheduled, "Europe/Paris") {
		t.Fatalf("preview: handle %q step %q text %q count %q scheduled %q", handle, step, shown, count, scheduled)
	}
	if err := chromedp.Do(tctx, chromedp.Click(chromedp.CSS("#approve")), chromedp.WaitVisible(chromedp.CSS("#result"))); err != nil {
		t.Fatal(err)
	}
	if result := text("#result"); !strings.Contains(result, "you approved the post") {
		t.Fatalf("after Approve the page says %q", result)
	}
	got := e.waitPost(p.ID, "at step 2", atStep(2))
	if rec := got.Steps[0].Approvals; len(rec) != 1 || rec[0].External != cleo || rec[0].Source != cs.SourceLink {
		t.Fatalf("step 1: %+v", got.Steps[0])
	}
	// Opening the link again shows it was used.
	if err := chromedp.Do(tctx, chromedp.Navigate(u)); err != nil {
		t.Fatal(err)
	}
	if problem := text("#problem"); problem != "You have already answered" {
		t.Fatalf("the used link shows %q", problem)
	}
}
