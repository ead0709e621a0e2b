package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/countersign/countersign/internal/mail/mailsink"
	"github.com/countersign/countersign/internal/testenv"
)

// Abuse cases of invitation mail and the org audit log (People issue) (SPEC §2 Invitation and Org audit log):
// the invitee's own list, the invitation mail and its accept page, and who
// reads the org audit log.

// mailEnv is idEnv (org A: Acme, owned by e.owner; org B: Victim Corp,
// owned by Vic) with invitation mail going to an in-process SMTP sink, and
// the mail dispatcher running as `serve` runs it.
type mailEnv struct {
	*idEnv
	sink *mailsink.Sink
}

func newMailEnv(t *testing.T) *mailEnv { return newMailEnvLogging(t, testenv.Logger(t)) }

func newMailEnvLogging(t *testing.T, logger *slog.Logger) *mailEnv {
	t.Helper()
	sink, err := mailsink.Start(mailsink.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	dbURL := testenv.Postgres(t)
	tsrv := testenv.Temporal(t)
	e := startEnv(t, map[string]string{
		"DATABASE_URL":          dbURL,
		"TEMPORAL_ADDRESS":      tsrv.Address,
		"TEMPORAL_NAMESPACE":    tsrv.Namespace,
		"COUNTERSIGN_SMTP_URL":  sink.URL(),
		"COUNTERSIGN_MAIL_FROM": "Countersign <no-reply@acme.test>",
	}, logger)
	e.app.Mail.Interval = 50 * time.Millisecond
	e.app.Mail.Backoff = []time.Duration{10 * time.Millisecond, 10 * time.Millisecond}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.app.Mail.Run(ctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	db, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close(context.Background()) })
	a, err := e.app.Store.Bootstrap(ctx, "Acme", "owner@acme.test", "Olivia Owner")
	if err != nil {
		t.Fatal(err)
	}
	e.orgID, e.owner = a.Org.ID, a.Token
	b, err := e.app.Store.Bootstrap(ctx, "Victim Corp", "vic@victim.test", "Vic Victim")
	if err != nil {
		t.Fatal(err)
	}
	return &mailEnv{idEnv: &idEnv{env: e, db: db, ownerID: a.Member.ID, orgB: b.Org.ID,
		victim: person{token: b.Token, memberID: b.Member.ID}}, sink: sink}
}

// mailTo waits for the n-th message (1-based) to rcpt and returns it.
func (e *mailEnv) mailTo(rcpt string, n int) mailsink.Message {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var got []mailsink.Message
		for _, m := range e.sink.Messages() {
			if len(m.To) > 0 && strings.EqualFold(m.To[0], rcpt) {
				got = append(got, m)
			}
		}
		if len(got) >= n {
			return got[n-1]
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no mail #%d to %s (the sink has %d messages)", n, rcpt, len(e.sink.Messages()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// page fetches an HTML page (form: a POST of these fields).
func (e *mailEnv) page(method, path string, form url.Values) (int, http.Header, string) {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, e.api.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

// pathOf is the path of the mail's accept link.
func (e *mailEnv) pathOf(m mailsink.Message) string {
	e.t.Helper()
	u, err := url.Parse(mailsink.Link(m.Data))
	if err != nil || !strings.HasPrefix(u.Path, "/invitations/csi_") {
		e.t.Fatalf("mail link %q", mailsink.Link(m.Data))
	}
	return u.Path
}

// securePage checks the accept page's headers: no script, no framing, no
// referrer (the token is in the URL).
func securePage(t *testing.T, h http.Header) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
		h.Get("Referrer-Policy") != "no-referrer" || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Errorf("page headers: %v", h)
	}
}

func init() {
	addAbuse(
		abuseCase{
			Attacker: "member or team admin",
			Attack:   "reads the org audit log",
			Spec:     "§2 Org audit log",
			Run: func(t *testing.T) {
				e := newIdentityEnv(t, false)
				mo := e.invite("Mo", "member")
				var team struct{ ID string }
				e.must(201, e.owner, "POST", e.org("/teams"), map[string]any{"name": "PR"}, &team)
				e.must(200, e.owner, "PUT", e.org("/teams/"+team.ID+"/members/"+mo.memberID), map[string]any{"role": "admin"}, nil)
				before := e.count(`SELECT count(*) FROM org_audit`)
				for _, q := range []string{"", "?actor=" + e.ownerID, "?object=team"} {
					if a := e.call(mo.token, "GET", e.org("/audit"+q), nil); a.status != 403 || a.raw["items"] != nil {
						t.Errorf("GET /audit%s as a member and team admin: %d %v", q, a.status, a.raw)
					}
				}
				// Another org's admin cannot name this org either.
				if a := e.call(e.victim.token, "GET", e.org("/audit"), nil); a.status != 404 && a.status != 403 {
					t.Errorf("org B's owner reads org A's audit: %d", a.status)
				}
				if after := e.count(`SELECT count(*) FROM org_audit`); after != before {
					t.Errorf("audit rows %d -> %d", before, after)
				}
				// The owner can: the control.
				e.must(200, e.owner, "GET", e.org("/audit"), nil, nil)
			},
		},
		abuseCase{
			Attacker: "user",
			Attack:   "answers another user's invitation by id, in their org or another",
			Spec:     "§2 Invitation",
			Run: func(t *testing.T) {
				e := newIdentityEnv(t, false)
				bo := e.invite("Bo", "member")
				anaID, _ := e.inviteEmail("ana@acme.test")
				var vicInv struct{ ID string }
				e.must(201, e.victim.token, "POST", "/v1/orgs/"+e.orgB+"/invitations", map[string]any{"email": "zed@victim.test"}, &vicInv)
				for _, id := range []string{anaID, vicInv.ID} {
					for _, verb := range []string{"accept", "decline"} {
						if a := e.call(bo.token, "POST", "/v1/me/invitations/"+id+"/"+verb, nil); a.status != 404 {
							t.Errorf("Bo %ss invitation %s: %d %v", verb, id, a.status, a.raw)
						}
					}
				}
				var mine struct{ Items []map[string]any }
				e.must(200, bo.token, "GET", "/v1/me/invitations", nil, &mine)
				if len(mine.Items) != 0 {
					t.Errorf("Bo sees invitations that are not his: %v", mine.Items)
				}
				if n := e.count(`SELECT count(*) FROM invitations WHERE status = 'pending' AND id IN ($1, $2)`, anaID, vicInv.ID); n != 2 {
					t.Errorf("%d of the 2 invitations still pending", n)
				}
				if n := e.count(`SELECT count(*) FROM members WHERE org_id = $1`, e.orgB); n != 1 {
					t.Errorf("org B has %d members", n)
				}
			},
		},
		abuseCase{
			Attacker: "admin",
			Attack:   "puts CR LF and a header in a name to add a recipient to the invitation mail",
			Spec:     "§2 Invitation",
			Run: func(t *testing.T) {
				e := newMailEnv(t)
				e.must(200, e.owner, "PATCH", "/v1/me", map[string]any{"name": "Olivia\r\nBcc: spy@evil.test\r\nX-Injected: 1"}, nil)
				e.must(201, e.owner, "POST", e.org("/invitations"), map[string]any{"email": "ana@acme.test", "name": "Ana\r\nCc: spy@evil.test"}, nil)
				m := e.mailTo("ana@acme.test", 1)
				hdr, _, _, err := mailsink.Parts(m.Data)
				if err != nil {
					t.Fatal(err)
				}
				if len(m.To) != 1 || hdr.Get("Bcc") != "" || hdr.Get("Cc") != "" || hdr.Get("X-Injected") != "" {
					t.Errorf("recipients %v, headers %v", m.To, hdr)
				}
				time.Sleep(200 * time.Millisecond)
				for _, x := range e.sink.Messages() {
					if strings.Contains(strings.Join(x.To, ","), "spy@") {
						t.Errorf("a mail went to %v", x.To)
					}
				}
			},
		},
		abuseCase{
			Attacker: "admin",
			Attack:   "puts HTML and script in an org or inviter name, into the mail and the accept page",
			Spec:     "§2 Invitation",
			Run: func(t *testing.T) {
				e := newMailEnv(t)
				e.sql(`UPDATE orgs SET name = '<img src=x onerror=alert(1)>Acme' WHERE id = $1`, e.orgID)
				e.must(200, e.owner, "PATCH", "/v1/me", map[string]any{"name": `<script>alert("owned")</script>`}, nil)
				e.must(201, e.owner, "POST", e.org("/invitations"), map[string]any{"email": "ana@acme.test"}, nil)
				m := e.mailTo("ana@acme.test", 1)
				_, _, html, err := mailsink.Parts(m.Data)
				if err != nil {
					t.Fatal(err)
				}
				status, h, body := e.page("GET", e.pathOf(m), nil)
				for what, doc := range map[string]string{"mail": html, "page": body} {
					if strings.Contains(doc, "<script>") || strings.Contains(doc, "<img") || !strings.Contains(doc, "&lt;script&gt;") {
						t.Errorf("%s not escaped:\n%s", what, doc)
					}
				}
				if status != 200 {
					t.Errorf("page: %d", status)
				}
				securePage(t, h)
			},
		},
		abuseCase{
			Attacker: "anyone",
			Attack:   "opens the accept page with a forged, revoked or replaced token",
			Spec:     "§2 Invitation",
			Run: func(t *testing.T) {
				e := newMailEnv(t)
				var inv struct{ ID string }
				e.must(201, e.owner, "POST", e.org("/invitations"), map[string]any{"email": "ana@acme.test"}, &inv)
				first := e.pathOf(e.mailTo("ana@acme.test", 1))
				e.must(201, e.owner, "POST", e.org("/invitations"), map[string]any{"email": "ana@acme.test"}, &inv) // replaces
				second := e.pathOf(e.mailTo("ana@acme.test", 2))
				e.must(204, e.owner, "DELETE", e.org("/invitations/"+inv.ID), nil, nil)
				for path, want := range map[string]int{
					"/invitations/csi_forged0000000000000000000000": 404,
					"/invitations/not-a-token":                      404,
					"/invitations/csi_%3Cscript%3E%0D%0A":           404,
					first:                                           410,
					second:                                          410,
				} {
					for _, method := range []string{"GET", "POST"} {
						status, h, body := e.page(method, path, url.Values{"action": {"accept"}, "name": {"Eve"}})
						if status != want || !strings.Contains(body, "<h1>") || strings.Contains(body, "api_token") || strings.Contains(body, "csi_") {
							t.Errorf("%s %s: %d, want %d:\n%s", method, path, status, want, body)
						}
						securePage(t, h)
					}
				}
				if n := e.count(`SELECT count(*) FROM users WHERE lower(email) = 'ana@acme.test'`); n != 0 {
					t.Errorf("a user was created")
				}
			},
		},
		abuseCase{
			Attacker: "admin",
			Attack:   "reads a mailed invitation's token from the API",
			Spec:     "§2 Invitation",
			Run: func(t *testing.T) {
				e := newMailEnv(t)
				a := e.call(e.owner, "POST", e.org("/invitations"), map[string]any{"email": "ana@acme.test"})
				imp := e.rawCSV("email\nben@acme.test\n")
				token := strings.TrimPrefix(e.pathOf(e.mailTo("ana@acme.test", 1)), "/invitations/")
				var list map[string]any
				e.must(200, e.owner, "GET", e.org("/invitations"), nil, &list)
				var audit map[string]any
				e.must(200, e.owner, "GET", e.org("/audit"), nil, &audit)
				for what, v := range map[string]any{"invite answer": a.raw, "import answer": imp, "list": list, "audit": audit} {
					if s := dump(v); strings.Contains(s, "csi_") || strings.Contains(s, token) {
						t.Errorf("the %s carries an invitation token: %s", what, s)
					}
				}
				if a.status != 201 {
					t.Errorf("invite: %d", a.status)
				}
			},
		},
	)
}

// rawCSV imports invitations as the owner and returns the decoded answer.
func (e *mailEnv) rawCSV(csv string) map[string]any {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.api.URL+e.org("/invitations/import"), strings.NewReader(csv))
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Authorization", "Bearer "+e.owner)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		e.t.Fatalf("import: %d %v", resp.StatusCode, err)
	}
	return out
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
