// Package mailsink is an in-process SMTP server (github.com/emersion/go-smtp)
// for `countersign dev` and tests: it accepts every message on loopback,
// keeps each as a .eml file under its directory (<data-dir>/mail), and
// tells about it with a one-line notice that carries the first link of the
// message. Tests use it as the real SMTP server the sender talks to.
package mailsink

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure a Sink; the zero value is a plain sink on 127.0.0.1.
type Options struct {
	// Dir keeps each message as a file; "" keeps them in memory only.
	Dir string
	// Notify is called with each message received (dev prints a notice).
	Notify func(Message)
	// TLSConfig offers STARTTLS with this certificate.
	TLSConfig *tls.Config
	// Implicit makes the listener TLS from the first byte (smtps://).
	Implicit bool
	// Users requires AUTH PLAIN with one of these user:password pairs.
	Users map[string]string
}

// Message is one message the sink received.
type Message struct {
	From string
	To   []string
	Data []byte
	Path string // its file, when the sink has a directory
	Auth string // the user who authenticated, if any
	TLS  bool   // whether the session was encrypted
}

// Sink is a running SMTP sink.
type Sink struct {
	opts   Options
	server *smtp.Server
	ln     net.Listener
	done   chan struct{}

	mu       sync.Mutex
	messages []Message
	fail     []error // answers of the next deliveries, in order
}

// Start listens on 127.0.0.1 (a free port) and serves until Close.
func Start(opts Options) (*Sink, error) {
	if opts.Dir != "" {
		if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
			return nil, err
		}
	}
	s := &Sink{opts: opts, done: make(chan struct{})}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "countersign-mailsink.localhost"
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 50
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	srv.TLSConfig = opts.TLSConfig
	srv.ErrorLog = discard{}
	var (
		ln  net.Listener
		err error
	)
	if opts.Implicit {
		if opts.TLSConfig == nil {
			return nil, errors.New("mailsink: implicit TLS needs a TLSConfig")
		}
		ln, err = tls.Listen("tcp", "127.0.0.1:0", opts.TLSConfig)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, err
	}
	s.server, s.ln = srv, ln
	go func() { defer close(s.done); _ = srv.Serve(ln) }()
	return s, nil
}

// Addr is the listener's host:port.
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// URL is a COUNTERSIGN_SMTP_URL for the sink (without credentials).
func (s *Sink) URL() string {
	if s.opts.Implicit {
		return "smtps://" + s.Addr()
	}
	return "smtp://" + s.Addr()
}

// Close stops the server.
func (s *Sink) Close() error {
	// Closing the listener ourselves also stops a Serve that had not yet
	// registered it with the server when Close ran.
	s.ln.Close()
	err := s.server.Close()
	<-s.done
	if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Messages returns what the sink received so far.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// FailNext makes the next len(errs) deliveries answer these errors (a
// *smtp.SMTPError gives the client its code), as a flaky server would.
func (s *Sink) FailNext(errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = append(s.fail, errs...)
}

func (s *Sink) receive(m Message) error {
	s.mu.Lock()
	if len(s.fail) > 0 {
		err := s.fail[0]
		s.fail = s.fail[1:]
		s.mu.Unlock()
		return err
	}
	if s.opts.Dir != "" {
		m.Path = filepath.Join(s.opts.Dir, fmt.Sprintf("%s-%03d.eml", time.Now().UTC().Format("20060102T150405.000000000Z"), len(s.messages)+1))
		if err := os.WriteFile(m.Path, m.Data, 0o600); err != nil {
			s.mu.Unlock()
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot keep the message"}
		}
	}
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	if s.opts.Notify != nil {
		s.opts.Notify(m)
	}
	return nil
}

type backend struct{ sink *Sink }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{sink: b.sink, tls: isTLS, conn: c}, nil
}

type session struct {
	sink *Sink
	conn *smtp.Conn
	tls  bool
	user string
	from string
	to   []string
}

func (s *session) AuthMechanisms() []string {
	if s.sink.opts.Users == nil {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if want, ok := s.sink.opts.Users[username]; !ok || want != password {
			return errors.New("invalid credentials")
		}
		s.user = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.sink.opts.Users != nil && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	return s.sink.receive(Message{From: s.from, To: s.to, Data: data, Auth: s.user, TLS: isTLS || s.tls})
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

type discard struct{}

func (discard) Printf(string, ...any) {}
func (discard) Println(...any)        {}

// Parts reads a message: its header, and its text/plain and text/html
// parts decoded (quoted-printable and base64 undone).
func Parts(data []byte) (mail.Header, string, string, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return nil, "", "", err
	}
	var text, html string
	var walk func(ct string, body io.Reader, enc string) error
	walk = func(ct string, body io.Reader, enc string) error {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			return err
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				if err := walk(p.Header.Get("Content-Type"), p, p.Header.Get("Content-Transfer-Encoding")); err != nil {
					return err
				}
			}
		}
		b, err := io.ReadAll(decode(body, enc))
		if err != nil {
			return err
		}
		switch mt {
		case "text/plain":
			text = string(b)
		case "text/html":
			html = string(b)
		}
		return nil
	}
	err = walk(msg.Header.Get("Content-Type"), msg.Body, msg.Header.Get("Content-Transfer-Encoding"))
	return msg.Header, text, html, err
}

var linkRE = regexp.MustCompile(`https?://[^\s<>"]+`)

// Link is the first link of the message's text part ("" without one).
func Link(data []byte) string {
	_, text, _, err := Parts(data)
	if err != nil {
		return ""
	}
	return linkRE.FindString(text)
}

// Notice is the one-line notice dev prints for a message.
func Notice(m Message) string {
	hdr, _, _, _ := Parts(m.Data)
	subject := ""
	if hdr != nil {
		subject, _ = new(mime.WordDecoder).DecodeHeader(hdr.Get("Subject"))
	}
	line := fmt.Sprintf("mail to %s: %q", strings.Join(m.To, ", "), subject)
	if l := Link(m.Data); l != "" {
		line += " -> " + l
	}
	if m.Path != "" {
		line += " (saved to " + m.Path + ")"
	}
	return line
}
