package e2e

import (
	"bytes"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// lockedBuffer collects a deployment's log lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type pendingInvitation struct {
	ID, Email, Inviter, Delivery, Token string
	OrgName                             string `json:"org_name"`
	DeliveryError                       string `json:"delivery_error"`
	Attempts                            int    `json:"delivery_attempts"`
}

func (e *mailEnv) pending() map[string]pendingInvitation {
	e.t.Helper()
	var list struct{ Items []pendingInvitation }
	e.must(200, e.owner, "GET", e.org("/invitations"), nil, &list)
	out := map[string]pendingInvitation{}
	for _, p := range list.Items {
		out[p.Email] = p
	}
	return out
}

// waitDelivery waits until the invitation to email shows this delivery state.
func (e *mailEnv) waitDelivery(email, state string) pendingInvitation {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		p, ok := e.pending()[email]
		if ok && p.Delivery == state {
			return p
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("invitation to %s: %+v (present %v), want delivery %s", email, p, ok, state)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

var preRE = regexp.MustCompile(`<pre>([^<\s]+)</pre>`)

// The whole invitee's side with SMTP: the mail, its accept page for a new
// user (name, then the token once), an existing user's list and answer by
// id, a failing SMTP server (retried, then delivery failed, the invitation
// still pending), and re-inviting; no invitation token ever reaches the log.
func TestInvitationMailFlow(t *testing.T) {
	logs := &lockedBuffer{}
	e := newMailEnvLogging(t, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	// A new user: invite, mail, page, accept, token once.
	a := e.call(e.owner, "POST", e.org("/invitations"), map[string]any{"email": "ana@acme.test", "name": "Ana"})
	if a.status != 201 || a.raw["token"] != nil || a.raw["delivery"] != "queued" {
		t.Fatalf("invite: %d %v", a.status, a.raw)
	}
	m := e.mailTo("ana@acme.test", 1)
	if p := e.waitDelivery("ana@acme.test", "sent"); p.Inviter != "Olivia Owner" || p.OrgName != "Acme" {
		t.Errorf("listed as %+v", p)
	}
	path := e.pathOf(m)
	status, h, body := e.page("GET", path, nil)
	if status != 200 || !strings.Contains(body, "Acme") || !strings.Contains(body, `name="name"`) || strings.Contains(body, "<script") {
		t.Fatalf("page: %d\n%s", status, body)
	}
	securePage(t, h)
	status, _, body = e.page("POST", path, url.Values{"action": {"accept"}, "name": {"Ana Lima"}})
	match := preRE.FindStringSubmatch(body)
	if status != 200 || match == nil {
		t.Fatalf("accept page: %d\n%s", status, body)
	}
	var me struct {
		User struct{ Name string } `json:"user"`
	}
	e.must(200, match[1], "GET", "/v1/me", nil, &me)
	if me.User.Name != "Ana Lima" {
		t.Errorf("name %q", me.User.Name)
	}
	if status, _, body = e.page("GET", path, nil); status != 410 || strings.Contains(body, match[1]) {
		t.Errorf("used link: %d", status)
	}

	// An existing user (Vic, of org B): the page says how; the list and the
	// answer by id with Vic's own token.
	e.must(201, e.owner, "POST", e.org("/invitations"), map[string]any{"email": "vic@victim.test", "org_role": "admin"}, nil)
	vm := e.mailTo("vic@victim.test", 1)
	var mine struct {
		Items []map[string]any `json:"items"`
	}
	e.must(200, e.victim.token, "GET", "/v1/me/invitations", nil, &mine)
	if len(mine.Items) != 1 || mine.Items[0]["org_name"] != "Acme" || mine.Items[0]["org_role"] != "admin" ||
		mine.Items[0]["inviter"] != "Olivia Owner" || mine.Items[0]["expires_at"] == nil || mine.Items[0]["delivery"] != nil || mine.Items[0]["token"] != nil {
		t.Fatalf("Vic's invitations: %v", mine.Items)
	}
	id := mine.Items[0]["id"].(string)
	if status, _, body = e.page("GET", e.pathOf(vm), nil); status != 200 || !strings.Contains(body, "/v1/me/invitations/"+id+"/accept") || strings.Contains(body, `name="name"`) {
		t.Errorf("existing user's page: %d\n%s", status, body)
	}
	var acc map[string]any
	e.must(200, e.victim.token, "POST", "/v1/me/invitations/"+id+"/accept", nil, &acc)
	if acc["api_token"] != nil {
		t.Errorf("an existing user got a token: %v", acc)
	}
	e.must(200, e.victim.token, "GET", "/v1/me/invitations", nil, &mine)
	if len(mine.Items) != 0 {
		t.Errorf("still listed: %v", mine.Items)
	}

	// A failing SMTP server: three attempts, then failed; still pending.
	refuse := &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	e.sink.FailNext(refuse, refuse, refuse)
	e.must(201, e.owner, "POST", e.org("/invitations"), map[string]any{"email": "zed@acme.test"}, nil)
	p := e.waitDelivery("zed@acme.test", "failed")
	if p.Attempts != 3 || !strings.Contains(p.DeliveryError, "451") {
		t.Errorf("failed delivery: %+v", p)
	}
	// Re-inviting replaces it and mails again.
	e.must(201, e.owner, "POST", e.org("/invitations"), map[string]any{"email": "zed@acme.test"}, nil)
	e.mailTo("zed@acme.test", 1)
	e.waitDelivery("zed@acme.test", "sent")
	if n := e.count(`SELECT count(*) FROM invitations WHERE email = 'zed@acme.test' AND status = 'replaced'`); n != 1 {
		t.Errorf("%d replaced invitations", n)
	}

	if strings.Contains(logs.String(), "csi_") {
		t.Errorf("an invitation token reached the log")
	}
	if !strings.Contains(logs.String(), "invitation mail failed for good") {
		t.Errorf("the failure is not logged")
	}
}
