package mail

import (
	"bytes"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"

	cs "github.com/countersign/countersign"
)

// AcceptPath is where an invitation's accept link points, under
// COUNTERSIGN_PUBLIC_URL: the server's accept page (GET /invitations/{token}).
const AcceptPath = "/invitations/"

// AcceptLink is the accept page's URL for an invitation token.
func AcceptLink(publicURL, token string) string {
	return strings.TrimRight(publicURL, "/") + AcceptPath + token
}

// invitationView is what the invitation templates show. Names come from
// users and admins: the HTML template escapes them, the subject has its
// control characters removed (HeaderSafe).
type invitationView struct {
	Org, Inviter, Role, Link, Expires string
	Teams                             []string
}

var invitationText = texttemplate.Must(texttemplate.New("text").Parse(
	`{{.Inviter}} invited you to join {{.Org}} on Countersign as {{.Role}}{{if .Teams}}, in {{range $i, $t := .Teams}}{{if $i}}, {{end}}{{$t}}{{end}}{{end}}.

Accept or decline the invitation here:
{{.Link}}

The link works until {{.Expires}}. If you did not expect this invitation, ignore this message.
`))

var invitationHTML = htmltemplate.Must(htmltemplate.New("html").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Invitation to {{.Org}}</title></head>
<body style="font-family: sans-serif">
<p><strong>{{.Inviter}}</strong> invited you to join <strong>{{.Org}}</strong> on Countersign as <strong>{{.Role}}</strong>{{if .Teams}}, in {{range $i, $t := .Teams}}{{if $i}}, {{end}}{{$t}}{{end}}{{end}}.</p>
<p><a href="{{.Link}}">Accept or decline the invitation</a></p>
<p>Or open this link: {{.Link}}</p>
<p>The link works until {{.Expires}}. If you did not expect this invitation, ignore this message.</p>
</body></html>
`))

// InvitationMail builds the invitation message for inv (with its token) to
// the invitee: a plain-text and an HTML part with the org, the inviter, the
// role and the accept link.
func InvitationMail(inv cs.Invitation, publicURL string) (cs.Mail, error) {
	v := invitationView{
		Org: inv.OrgName, Inviter: inv.Inviter, Role: string(inv.OrgRole), Teams: inv.Teams,
		Link: AcceptLink(publicURL, inv.Token), Expires: inv.ExpiresAt.UTC().Format(time.RFC1123),
	}
	if v.Inviter == "" {
		v.Inviter = "An admin"
	}
	var text, html bytes.Buffer
	if err := invitationText.Execute(&text, v); err != nil {
		return cs.Mail{}, err
	}
	if err := invitationHTML.Execute(&html, v); err != nil {
		return cs.Mail{}, err
	}
	return cs.Mail{
		To:      inv.Email,
		Subject: HeaderSafe(v.Inviter + " invited you to " + v.Org + " on Countersign"),
		Text:    text.String(),
		HTML:    html.String(),
	}, nil
}
