package server

import (
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/posts"
	"github.com/countersign/countersign/internal/review"
)

// The external reviewer's page (SPEC §2, §6): GET /review/{token} shows the
// post, POST answers it. The token is the only credential: no API token, no
// cookie. Both answer HTML, never JSON, and a link that cannot be used is a
// clear 4xx page (review.Problem), never a 500.

// reviewHeaders are set on every review page: no script may run (the CSP
// allows only the page's own style, by hash), the page cannot be framed,
// the token in its URL never leaves in a Referer, nothing is cached or
// indexed, and no type is sniffed.
func reviewHeaders(c *gin.Context) { htmlPageHeaders(c, review.CSP) }

// htmlPageHeaders are the headers of every HTML page the API serves to
// someone holding a token in its URL (the review page, the invitation's
// accept page): csp, no framing, no Referer (the token stays in the
// address bar), no caching or indexing, no type sniffing.
func htmlPageHeaders(c *gin.Context, csp string) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Robots-Tag", "noindex, nofollow")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

func html(c *gin.Context, status int, body []byte) {
	c.Data(status, "text/html; charset=utf-8", body)
}

func (s *Server) reviewProblem(c *gin.Context, err error) {
	p := review.AsProblem(err)
	if p.Status >= 500 {
		s.Logger.Error("review page", "route", c.FullPath(), "error", err) // the route, never the token
	}
	html(c, p.Status, review.ProblemPage(p))
}

// reviewPage shows the post to its external reviewer.
func (s *Server) reviewPage(c *gin.Context) {
	reviewHeaders(c)
	if s.reviews == nil {
		s.reviewProblem(c, &review.Problem{Status: http.StatusNotFound, Title: "Review links are not enabled",
			Detail: "This server has no COUNTERSIGN_SECRET_KEY, so it cannot check review links."})
		return
	}
	r, err := s.reviews.Open(c, c.Param("token"))
	if err != nil {
		s.reviewProblem(c, err)
		return
	}
	html(c, http.StatusOK, s.reviews.Page(c, r, "", ""))
}

// reviewAnswer records the reviewer's answer through the posts service's
// decide, like every other decision.
func (s *Server) reviewAnswer(c *gin.Context) {
	reviewHeaders(c)
	if s.reviews == nil {
		s.reviewPage(c)
		return
	}
	// The token in the path is what authorizes the answer; a form posted
	// from another site (which would need the token) is refused anyway, as
	// browsers say where a form comes from.
	if !sameOrigin(c.Request, s.PublicURL) {
		s.reviewProblem(c, &review.Problem{Status: http.StatusForbidden, Title: "This answer came from another site",
			Detail: "Open the link from your e-mail and answer on its page."})
		return
	}
	if mt, _, _ := mime.ParseMediaType(c.ContentType()); mt != "application/x-www-form-urlencoded" {
		s.reviewProblem(c, &review.Problem{Status: http.StatusUnsupportedMediaType, Title: "Send the form from the review page",
			Detail: "The answer must be the page's form (application/x-www-form-urlencoded)."})
		return
	}
	r, err := s.reviews.Open(c, c.Param("token"))
	if err != nil {
		s.reviewProblem(c, err)
		return
	}
	decision, note := c.PostForm("decision"), strings.ReplaceAll(c.PostForm("note"), "\x00", "")
	out, err := s.posts.DecideExternal(c, posts.ExternalDecision{OrgID: r.Link.OrgID, PostID: r.Link.PostID,
		Revision: r.Link.Revision, Step: r.Link.Step, Email: r.Reviewer.Email, Decision: decision, Note: note,
		RequestID: r.RequestID})
	var ce *cs.Error
	var limited *posts.RateLimited
	switch {
	case err == nil:
		_ = out // the post's new state (or, Pending, the signal is sent: it counts once)
		html(c, http.StatusOK, review.Result(r, decision))
	case errors.As(err, &limited):
		c.Header("Retry-After", limited.RetryAfter.String())
		s.reviewProblem(c, &review.Problem{Status: http.StatusTooManyRequests, Title: "Too many answers",
			Detail: "Please wait a moment and try again."})
	case errors.As(err, &ce) && (ce.Code == cs.EINVALID || ce.Code == cs.ReasonNoteRequired):
		msg := "Choose Approve, or write a reason and choose Reject."
		if ce.Code == cs.ReasonNoteRequired {
			msg = "To reject the post, write the reason in the box, then choose Reject."
		} else if len(ce.Fields) > 0 && ce.Fields[0].Field == "note" {
			msg = "The reason is too long: " + ce.Fields[0].Message + "."
		}
		html(c, http.StatusUnprocessableEntity, s.reviews.Page(c, r, msg, note))
	case errors.As(err, &ce): // the workflow's refusal (the step moved on, a repeat, ...)
		status, ok := statusOf[ce.Code]
		if !ok || status < 400 || status >= 500 {
			status = http.StatusConflict
		}
		s.reviewProblem(c, &review.Problem{Status: status, Title: "Your answer was not recorded", Detail: ce.Message})
	default:
		s.reviewProblem(c, err)
	}
}

// sameOrigin reports whether the browser says the form was posted from this
// site: Sec-Fetch-Site same-origin (or none: typed or bookmarked) when the
// browser sends it; otherwise an Origin, when sent, whose host is the
// request's or COUNTERSIGN_PUBLIC_URL's. (With Referrer-Policy no-referrer,
// browsers send Origin "null" on the page's own form: Sec-Fetch-Site is what
// tells.)
func sameOrigin(r *http.Request, publicURL string) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil {
			return false
		}
		pub, _ := url.Parse(publicURL)
		return u.Host == r.Host || (pub != nil && pub.Host != "" && u.Host == pub.Host)
	}
	return true
}
