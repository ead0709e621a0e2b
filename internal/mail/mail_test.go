package mail_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/egress"
	"github.com/countersign/countersign/internal/mail"
	"github.com/countersign/countersign/internal/mail/mailsink"
	"github.com/countersign/countersign/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// loopback lets the sender reach the in-process sink (SPEC §8: tests allow
// loopback explicitly).
func loopback(t *testing.T) *egress.Guard {
	g, err := egress.Parse("127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// testTLS returns a server certificate for 127.0.0.1 and a client config
// that trusts it (httptest's).
func testTLS(t *testing.T) (server, client *tls.Config) {
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(ts.Close)
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	return &tls.Config{Certificates: ts.TLS.Certificates}, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

func sink(t *testing.T, o mailsink.Options) *mailsink.Sink {
	s, err := mailsink.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func sender(t *testing.T, url string, g *egress.Guard, tc *tls.Config) *mail.Sender {
	s, err := mail.NewSender(mail.Settings{URL: url, From: "Countersign <no-reply@countersign.test>", Egress: g, TLSConfig: tc, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func invitation(org, inviter string) cs.Invitation {
	return cs.Invitation{ID: "i1", Email: "ana@acme.test", OrgName: org, Inviter: inviter, OrgRole: cs.RoleAdmin,
		Teams: []string{"PR"}, Token: "csi_secret-token", ExpiresAt: time.Date(2026, 12, 14, 9, 0, 0, 0, time.UTC)}
}

// The invitation reaches a real SMTP server with a text and an HTML part
// naming the org, the inviter, the role and the accept link; names cannot
// add headers (CRLF) nor markup (HTML).
func TestInvitationMailThroughSMTP(t *testing.T) {
	sk := sink(t, mailsink.Options{Dir: t.TempDir()})
	inv := invitation("Acme <script>alert(1)</script>\r\nBcc: eve@evil.test", "Bo\r\nX-Injected: yes")
	m, err := mail.InvitationMail(inv, "https://cs.acme.test/")
	if err != nil {
		t.Fatal(err)
	}
	if err := sender(t, sk.URL(), loopback(t), nil).Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	msgs := sk.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages received", len(msgs))
	}
	got := msgs[0]
	if len(got.To) != 1 || got.To[0] != "ana@acme.test" {
		t.Errorf("recipients %v, want only the invitee", got.To)
	}
	hdr, text, html, err := mailsink.Parts(got.Data)
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Get("Bcc") != "" || hdr.Get("X-Injected") != "" {
		t.Errorf("a name injected a header: %v", hdr)
	}
	link := "https://cs.acme.test/invitations/csi_secret-token"
	for _, want := range []string{"Bo", "Acme", "as admin", "in PR", link} {
		if !strings.Contains(text, want) {
			t.Errorf("text part lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(html, "<script>") || !strings.Contains(html, "&lt;script&gt;") || !strings.Contains(html, `href="`+link+`"`) {
		t.Errorf("HTML part not escaped or without the link:\n%s", html)
	}
	if mailsink.Link(got.Data) != link {
		t.Errorf("the sink's link is %q", mailsink.Link(got.Data))
	}
	if n := mailsink.Notice(got); !strings.Contains(n, link) || !strings.Contains(n, got.Path) {
		t.Errorf("notice %q", n)
	}
}

// With credentials, smtp:// requires STARTTLS: a server that does not offer
// it gets no password and no message, and the reason says why without the
// password.
func TestCredentialsRequireSTARTTLS(t *testing.T) {
	sk := sink(t, mailsink.Options{Users: map[string]string{"u": "pw-s3cret"}})
	s := sender(t, "smtp://u:pw-s3cret@"+sk.Addr(), loopback(t), nil)
	err := s.Send(context.Background(), cs.Mail{To: "ana@acme.test", Subject: "x", Text: "x", HTML: "x"})
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") || strings.Contains(err.Error(), "pw-s3cret") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(s.String(), "pw-s3cret") {
		t.Errorf("String() shows the password: %s", s)
	}
	if n := len(sk.Messages()); n != 0 {
		t.Fatalf("%d messages went through", n)
	}
}

// smtp:// with credentials upgrades with STARTTLS and authenticates;
// smtps:// is TLS from the first byte.
func TestSTARTTLSAndImplicitTLS(t *testing.T) {
	srvTLS, cliTLS := testTLS(t)
	users := map[string]string{"u": "pw"}
	for _, implicit := range []bool{false, true} {
		sk := sink(t, mailsink.Options{TLSConfig: srvTLS, Implicit: implicit, Users: users})
		url := strings.Replace(sk.URL(), "://", "://u:pw@", 1)
		if err := sender(t, url, loopback(t), cliTLS).Send(context.Background(), cs.Mail{To: "ana@acme.test", Subject: "s", Text: "t", HTML: "<p>h</p>"}); err != nil {
			t.Fatalf("%s: %v", sk.URL(), err)
		}
		m := sk.Messages()
		if len(m) != 1 || !m[0].TLS || m[0].Auth != "u" {
			t.Fatalf("%s: messages %+v", sk.URL(), m)
		}
	}
}

// Mail never reaches loopback unless the operator allows it (SPEC §8).
func TestEgressGuardRefusesLoopback(t *testing.T) {
	sk := sink(t, mailsink.Options{})
	err := sender(t, sk.URL(), nil, nil).Send(context.Background(), cs.Mail{To: "ana@acme.test", Subject: "s", Text: "t", HTML: "h"})
	if err == nil || !strings.Contains(err.Error(), egress.Variable) || strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("err = %v", err)
	}
	if len(sk.Messages()) != 0 {
		t.Fatal("a message went through")
	}
}

func TestSettingsAreChecked(t *testing.T) {
	for _, url := range []string{"http://h", "smtp://", "smtp://h/path", "smtp://h?x=1", "smtp://h:99999"} {
		if _, err := mail.NewSender(mail.Settings{URL: url, From: "a@b.test"}); err == nil {
			t.Errorf("%s accepted", url)
		}
	}
	if _, err := mail.NewSender(mail.Settings{URL: "smtp://u:pw-hidden@h:bad", From: "a@b.test"}); err == nil || strings.Contains(err.Error(), "pw-hidden") {
		t.Errorf("bad port: %v", err)
	}
	if _, err := mail.NewSender(mail.Settings{URL: "smtp://h", From: "a@b.test\r\nBcc: e@x.test"}); err == nil {
		t.Error("a From with CRLF accepted")
	}
}
