package review

import (
	"bytes"
	"context"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
	"github.com/countersign/countersign/internal/secrets"
)

// Accounts reads the account a post goes to (*store.Store).
type Accounts interface {
	Account(ctx context.Context, orgID, accountID string) (cs.Account, error)
}

// Sender e-mails an external reviewer their link when their step opens (and
// with the step's reminder). It runs in the activity that sends the
// notification: the link is minted here, so it never enters workflow history.
// It is activities.ReviewSender.
type Sender struct {
	Links     *secrets.ReviewLinks
	Mailer    cs.Mailer
	Accounts  Accounts
	PublicURL string // COUNTERSIGN_PUBLIC_URL
}

var _ activities.ReviewSender = (*Sender)(nil)

// URL is the page of a link.
func URL(publicURL, token string) string {
	return strings.TrimRight(publicURL, "/") + "/review/" + token
}

// SendReviewLink mints the step's link and sends it to its reviewer.
func (s *Sender) SendReviewLink(ctx context.Context, n activities.Notification) error {
	if n.External == nil {
		return nil
	}
	l := secrets.ReviewLink{OrgID: n.OrgID, PostID: n.PostID, Revision: n.Revision, Step: n.Step, Email: n.External.Email}
	if n.LinkExpires != nil {
		l.Expires = *n.LinkExpires
	}
	token, err := s.Links.Mint(l)
	if err != nil {
		return err
	}
	acct, err := s.Accounts.Account(ctx, n.OrgID, n.AccountID)
	if err != nil {
		return fmt.Errorf("account of post %s: %w", n.PostID, err)
	}
	m := mailView{Name: n.External.Name, Handle: acct.Handle, Network: string(acct.Network), Step: n.Step, Steps: n.TotalSteps,
		Text: n.Text, URL: URL(s.PublicURL, token), Reminder: n.Kind == activities.NotifyReminder}
	if n.LinkExpires != nil {
		m.Until = inZone(*n.LinkExpires, acct.Timezone)
	}
	if len([]rune(m.Text)) > 280 {
		m.Text = string([]rune(m.Text)[:280]) + "…"
	}
	subject := fmt.Sprintf("Please review a post for %s (step %d/%d)", acct.Handle, n.Step, n.TotalSteps)
	if m.Reminder {
		subject = "Reminder: " + subject
	}
	var text, html bytes.Buffer
	if err := mailText.Execute(&text, m); err != nil {
		return err
	}
	if err := mailHTML.Execute(&html, m); err != nil {
		return err
	}
	return s.Mailer.Send(ctx, cs.Mail{To: n.External.Email, Subject: subject, Text: text.String(), HTML: html.String()})
}

type mailView struct {
	Name, Handle, Network, Text, URL, Until string
	Step, Steps                             int
	Reminder                                bool
}

var mailText = texttemplate.Must(texttemplate.New("text").Parse(`Hello {{.Name}},
{{if .Reminder}}
This is a reminder: a post still waits for your review.
{{end}}
You are asked to review a post for {{.Handle}} ({{.Network}}), step {{.Step}}/{{.Steps}}:

{{.Text}}

Open this link to see the post as it will appear, and approve or reject it:
{{.URL}}
{{if .Until}}
The link works until {{.Until}}, once.{{else}}
The link works once, while the review is open.{{end}} Do not forward it: whoever has it can answer for you.
`))

var mailHTML = htmltemplate.Must(htmltemplate.New("html").Parse(`<!doctype html><html><body>
<p>Hello {{.Name}},</p>
{{if .Reminder}}<p>This is a reminder: a post still waits for your review.</p>{{end}}
<p>You are asked to review a post for <b>{{.Handle}}</b> ({{.Network}}), step {{.Step}}/{{.Steps}}:</p>
<blockquote>{{.Text}}</blockquote>
<p><a href="{{.URL}}">Review the post</a></p>
<p>{{if .Until}}The link works until {{.Until}}, once.{{else}}The link works once, while the review is open.{{end}}
Do not forward it: whoever has it can answer for you.</p>
</body></html>`))
