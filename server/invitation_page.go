package server

import (
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
)

// The accept page: where the invitation mail's link lands
// (GET/POST /invitations/{token}). Server-rendered HTML without JavaScript:
// a new user gives a name and sees their API token once; an existing user
// is told how to answer with their own token. The invitation token travels
// in the path: the access log has only the route template, and the page
// sends no Referer anywhere (Referrer-Policy: no-referrer).

// pageHeaders keeps the page to itself: no script, no framing, no referrer,
// no caching (it shows a token once).
func pageHeaders(c *gin.Context) {
	htmlPageHeaders(c, "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
}

type invitationPageData struct {
	Title, Message string
	Inv            *cs.Invitation
	Existing       bool
	Base           string // the API's public base URL, for the curl lines
	Token          string // a new user's API token, shown once
	User           *cs.User
}

var invitationPageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}} · Countersign</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto;padding:0 1em;line-height:1.5}pre,code{background:#f4f4f4;padding:.1em .3em;overflow-x:auto}pre{padding:.6em}</style>
</head><body>
<h1>{{.Title}}</h1>
{{if .Message}}<p>{{.Message}}</p>{{end}}
{{with .Inv}}
<p><strong>{{if .Inviter}}{{.Inviter}}{{else}}An admin{{end}}</strong> invited <strong>{{.Email}}</strong> to join
<strong>{{.OrgName}}</strong> as <strong>{{.OrgRole}}</strong>{{if .Teams}}, in {{range $i, $t := .Teams}}{{if $i}}, {{end}}{{$t}}{{end}}{{end}}.
The invitation expires on {{.ExpiresAt.UTC.Format "2 January 2006 at 15:04 UTC"}}.</p>
{{if $.Existing}}
<p>{{.Email}} already has a Countersign user. Answer with that user's own API token (the one you use with the API):</p>
<pre>curl -X POST -H "Authorization: Bearer $COUNTERSIGN_TOKEN" {{$.Base}}/v1/me/invitations/{{.ID}}/accept</pre>
<p>or, to decline:</p>
<pre>curl -X POST -H "Authorization: Bearer $COUNTERSIGN_TOKEN" {{$.Base}}/v1/me/invitations/{{.ID}}/decline</pre>
<p>Your pending invitations: <code>curl -H "Authorization: Bearer $COUNTERSIGN_TOKEN" {{$.Base}}/v1/me/invitations</code></p>
{{else}}
<form method="post">
<p><label>Your name <input name="name" maxlength="200" value="{{.Name}}" required></label></p>
<p><button name="action" value="accept">Accept and create my user</button></p>
</form>
<form method="post"><p><button name="action" value="decline">Decline</button></p></form>
{{end}}
{{end}}
{{if .Token}}
<p>Welcome{{with .User}}, {{.Name}}{{end}}. This is your API token. It is shown <strong>once</strong>: keep it now, in a password manager.</p>
<pre>{{.Token}}</pre>
<p>Try it: <code>curl -H "Authorization: Bearer {{.Token}}" {{.Base}}/v1/me</code></p>
{{end}}
</body></html>
`))

// pageBase is the API's public base URL.
func (s *Server) pageBase(c *gin.Context) string {
	if s.PublicURL != "" {
		return strings.TrimRight(s.PublicURL, "/")
	}
	scheme := "http"
	if c.Request.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + c.Request.Host
}

func (s *Server) renderPage(c *gin.Context, status int, d invitationPageData) {
	pageHeaders(c)
	d.Base = s.pageBase(c)
	c.Status(status)
	c.Header("Content-Type", "text/html; charset=utf-8")
	if err := invitationPageTmpl.Execute(c.Writer, d); err != nil {
		s.Logger.Error("render invitation page", "error", err)
	}
}

// pageFailed renders the page of a token that cannot be answered: gone
// (410, saying why), unknown (404), or a refusal; never the error's
// internals.
func (s *Server) pageFailed(c *gin.Context, err error) {
	var e *cs.Error
	if errors.As(err, &e) {
		status, ok := statusOf[e.Code]
		if !ok {
			status = http.StatusBadRequest
		}
		title := "This invitation cannot be answered"
		if e.Code == cs.ENOTFOUND {
			title, e.Message = "No such invitation", "This link does not match any invitation. Check that you opened the whole link from the mail."
		}
		s.renderPage(c, status, invitationPageData{Title: title, Message: e.Message})
		return
	}
	status, msg := http.StatusInternalServerError, "Something went wrong on our side. Try again in a moment."
	if store.Unavailable(err) {
		status = http.StatusServiceUnavailable
	} else {
		s.Logger.Error("invitation page failed", "route", c.FullPath(), "error", err)
	}
	s.renderPage(c, status, invitationPageData{Title: "Try again later", Message: msg})
}

// pageToken reads the path's invitation token; anything that cannot be one
// is an unknown invitation without asking the database.
func pageToken(c *gin.Context) (string, bool) {
	t := c.Param("token")
	if !strings.HasPrefix(t, store.InvitationTokenPrefix) || len(t) > 200 {
		return "", false
	}
	return t, true
}

// invitationPage answers GET /invitations/{token}.
func (s *Server) invitationPage(c *gin.Context) {
	token, ok := pageToken(c)
	if !ok {
		s.pageFailed(c, cs.Errorf(cs.ENOTFOUND, "no such invitation"))
		return
	}
	p, err := s.Store.PreviewInvitation(c, token)
	if err != nil {
		s.pageFailed(c, err)
		return
	}
	inv := p.Invitation
	s.renderPage(c, http.StatusOK, invitationPageData{Title: "Invitation to " + inv.OrgName, Inv: &inv, Existing: p.ExistingUser})
}

// invitationPageAnswer answers the page's forms: accept (a new user, with
// a name) or decline. An existing user's invitation is answered through
// the API with their own token, so the page only shows how.
func (s *Server) invitationPageAnswer(c *gin.Context) {
	token, ok := pageToken(c)
	if !ok {
		s.pageFailed(c, cs.Errorf(cs.ENOTFOUND, "no such invitation"))
		return
	}
	switch c.PostForm("action") {
	case "accept":
		a, err := s.Store.AcceptInvitation(c, token, c.PostForm("name"))
		if cs.ErrorCode(err) == cs.EINVITATIONNEEDSTOKEN {
			s.invitationPage(c) // explains how an existing user answers
			return
		}
		if err != nil {
			s.pageFailed(c, err)
			return
		}
		s.Slack.LinkMemberLater(a.Member.OrgID, a.Member.ID, a.User.Email)
		s.renderPage(c, http.StatusOK, invitationPageData{Title: "Welcome to Countersign", Token: a.APIToken, User: &a.User,
			Message: "You are now a member of the organization."})
	case "decline":
		if err := s.Store.DeclineInvitation(c, token, nil); err != nil {
			if cs.ErrorCode(err) == cs.EINVITATIONNEEDSTOKEN {
				s.invitationPage(c)
				return
			}
			s.pageFailed(c, err)
			return
		}
		s.renderPage(c, http.StatusOK, invitationPageData{Title: "Invitation declined", Message: "You declined the invitation. The link no longer works."})
	default:
		s.renderPage(c, http.StatusBadRequest, invitationPageData{Title: "Unknown answer", Message: "Use the Accept or Decline button of the invitation page."})
	}
}
