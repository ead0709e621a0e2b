package countersign

import "context"

// Mail is one outgoing message. Every message has a plain-text and an HTML
// part.
type Mail struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// Mailer sends mail (internal/mail over SMTP). Send returns an error that
// says why a message could not be handed to the server; callers keep what
// they sent it for and retry.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}
