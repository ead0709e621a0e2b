// Package mail sends Countersign's mail over SMTP (github.com/wneessen/go-mail)
// and builds the invitation message; Dispatcher delivers the invitation
// mail queue. Package mailsink is the in-process SMTP server of dev and
// tests.
package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	gomail "github.com/wneessen/go-mail"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/egress"
)

// Settings configure a Sender.
type Settings struct {
	// URL is COUNTERSIGN_SMTP_URL: smtp://[user:pass@]host[:port] (STARTTLS
	// when offered, required with credentials; port 587 by default) or
	// smtps://[user:pass@]host[:port] (implicit TLS; port 465).
	URL string
	// From is COUNTERSIGN_MAIL_FROM, e.g. "Countersign <no-reply@acme.test>".
	From string
	// Egress guards the connection (SPEC §8); nil allows public addresses only.
	Egress *egress.Guard
	// TLSConfig overrides the TLS client settings (tests trust their own
	// certificate with it); ServerName defaults to the URL's host.
	TLSConfig *tls.Config
	// Timeout bounds one delivery (30 s when zero).
	Timeout time.Duration
}

// Sender sends mail over SMTP. It implements countersign.Mailer.
type Sender struct {
	host      string
	port      int
	implicit  bool // smtps://
	user      string
	pass      string
	from      *mail.Address
	guard     *egress.Guard
	tlsConfig *tls.Config
	timeout   time.Duration
}

var _ cs.Mailer = (*Sender)(nil)

// NewSender checks the settings; it does not connect. Its errors never
// contain the password.
func NewSender(s Settings) (*Sender, error) {
	u, err := url.Parse(s.URL)
	if err != nil {
		return nil, errors.New("COUNTERSIGN_SMTP_URL is not a URL (smtp://user:pass@host:587 or smtps://user:pass@host:465)")
	}
	snd := &Sender{host: u.Hostname(), guard: s.Egress, timeout: s.Timeout}
	switch u.Scheme {
	case "smtp":
		snd.port = 587
	case "smtps":
		snd.port, snd.implicit = 465, true
	default:
		return nil, fmt.Errorf("COUNTERSIGN_SMTP_URL: scheme %q is not smtp or smtps", u.Scheme)
	}
	if snd.host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, errors.New("COUNTERSIGN_SMTP_URL must be smtp[s]://[user:pass@]host[:port], with no path, query or fragment")
	}
	if p := u.Port(); p != "" {
		if snd.port, err = strconv.Atoi(p); err != nil || snd.port < 1 || snd.port > 65535 {
			return nil, errors.New("COUNTERSIGN_SMTP_URL: the port is not a number from 1 to 65535")
		}
	}
	if u.User != nil {
		snd.user = u.User.Username()
		snd.pass, _ = u.User.Password()
	}
	if snd.from, err = mail.ParseAddress(s.From); err != nil || strings.ContainsAny(s.From, "\r\n") {
		return nil, fmt.Errorf("COUNTERSIGN_MAIL_FROM %q is not an e-mail address (e.g. \"Countersign <no-reply@acme.test>\")", s.From)
	}
	if snd.guard == nil {
		snd.guard, _ = egress.Parse("")
	}
	if s.TLSConfig != nil {
		snd.tlsConfig = s.TLSConfig.Clone()
	} else {
		snd.tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if snd.tlsConfig.ServerName == "" {
		snd.tlsConfig.ServerName = snd.host
	}
	if snd.timeout <= 0 {
		snd.timeout = 30 * time.Second
	}
	return snd, nil
}

// String describes the sender without its password.
func (s *Sender) String() string {
	scheme := "smtp"
	if s.implicit {
		scheme = "smtps"
	}
	who := ""
	if s.user != "" {
		who = s.user + ":***@"
	}
	return fmt.Sprintf("%s://%s%s", scheme, who, net.JoinHostPort(s.host, strconv.Itoa(s.port)))
}

// dial connects through the egress guard, and wraps the connection in TLS
// for smtps:// (go-mail's own TLS dialer is bypassed by a custom dialer).
func (s *Sender) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := s.guard.DialContext(ctx, network, addr)
	if err != nil || !s.implicit {
		return conn, err
	}
	tc := tls.Client(conn, s.tlsConfig)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

func (s *Sender) client() (*gomail.Client, error) {
	opts := []gomail.Option{
		gomail.WithPort(s.port),
		gomail.WithTimeout(s.timeout),
		gomail.WithDialContextFunc(s.dial),
		gomail.WithTLSConfig(s.tlsConfig),
	}
	switch {
	case s.implicit:
		// The connection is TLS from the first byte: no STARTTLS.
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case s.user != "":
		// Credentials never cross an unencrypted connection.
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	switch {
	case s.user == "":
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthNoAuth))
	case s.implicit:
		// go-mail's discovery does not see a TLS connection it did not
		// dial; PLAIN checks the connection is TLS itself.
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername(s.user), gomail.WithPassword(s.pass))
	default:
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(s.user), gomail.WithPassword(s.pass))
	}
	return gomail.NewClient(s.host, opts...)
}

// Send hands one message to the SMTP server. Its error is already
// sanitized (Reason): no address, no password.
func (s *Sender) Send(ctx context.Context, m cs.Mail) error {
	to, err := mail.ParseAddress(m.To)
	if err != nil || strings.ContainsAny(m.To, "\r\n") {
		return errors.New("the recipient is not an e-mail address")
	}
	msg := gomail.NewMsg()
	msg.FromMailAddress(s.from)
	msg.ToMailAddress(&mail.Address{Address: to.Address})
	msg.Subject(HeaderSafe(m.Subject))
	msg.SetMessageID()
	msg.SetDate()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	c, err := s.client()
	if err != nil {
		return errors.New(s.Reason(err))
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return errors.New(s.Reason(err))
	}
	return nil
}

// HeaderSafe makes a value safe for a header: control characters
// (CR and LF above all, which would start a new header) become spaces.
func HeaderSafe(v string) string {
	return strings.Join(strings.FieldsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }), " ")
}

// Reason is a short, sanitized reason for a failed delivery, fit to show
// an admin: what went wrong, never an address or the password.
func (s *Sender) Reason(err error) string {
	var refused *egress.RefusedError
	var netErr net.Error
	var opErr *net.OpError
	var dnsErr *net.DNSError
	msg := err.Error()
	var r string
	switch {
	case errors.As(err, &refused):
		r = "the SMTP server's address is refused by the egress guard: it is a " + refused.Reason + " (allow it with " + egress.Variable + ")"
	case errors.As(err, &dnsErr):
		r = "the SMTP server's name does not resolve"
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		r = "the SMTP server did not answer in time"
	case strings.Contains(msg, "does not support STARTTLS"):
		r = "the SMTP server does not offer STARTTLS, which is required to send credentials"
	case strings.Contains(msg, "tls:") || strings.Contains(msg, "x509:") || strings.Contains(msg, "certificate"):
		r = "the TLS handshake with the SMTP server failed (certificate or protocol)"
	case errors.As(err, &opErr):
		r = "could not connect to the SMTP server"
		if errors.Is(err, syscall.ECONNREFUSED) {
			r += " (connection refused)"
		}
	case strings.Contains(strings.ToLower(msg), "auth"):
		r = "the SMTP server refused the credentials"
	default:
		r = "the SMTP server refused the message: " + msg
	}
	if s != nil && s.pass != "" {
		r = strings.ReplaceAll(r, s.pass, "***")
	}
	r = HeaderSafe(r)
	if len(r) > 300 {
		r = r[:300] + "…"
	}
	return r
}
