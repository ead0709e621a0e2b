package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/posts"
	"github.com/countersign/countersign/internal/store"
)

// The post endpoints translate between HTTP and the posts service
// (internal/posts), where the rules are; the workflow decides who may change
// a post, and its reason codes map to HTTP statuses in statusOf (problem.go).

// postRoutes registers the post endpoints on the org group.
func (s *Server) postRoutes(org *gin.RouterGroup) {
	org.POST("/posts", s.submitPost)
	org.GET("/posts", s.listPosts)
	org.GET("/posts/:post", s.getPost)
	org.PATCH("/posts/:post", s.patchPost)
	org.POST("/posts/:post/approve", s.decide(cs.DecisionApprove))
	org.POST("/posts/:post/reject", s.decide(cs.DecisionReject))
	org.POST("/posts/:post/cancel", s.cancelPost)
	org.GET("/approvals", s.listApprovals)
	org.GET("/posts/:post/comments", s.listComments)
	org.POST("/posts/:post/comments", s.addComment)
}

// failPost answers an error of the posts service.
func (s *Server) failPost(c *gin.Context, err error) {
	var (
		limited    *posts.RateLimited
		notStarted *posts.ErrNotStarted
	)
	switch {
	case errors.As(err, &limited):
		c.Header("Retry-After", strconv.Itoa(int(math.Ceil(limited.RetryAfter.Seconds()))))
		problem(c, http.StatusTooManyRequests, cs.ReasonRateLimited, limited.Error()+" (limits: docs/limits.md)", nil)
	case errors.As(err, &notStarted) && notStarted.Saved:
		problem(c, http.StatusServiceUnavailable, "temporal_unavailable",
			"Temporal did not answer; the post was saved and will be started within minutes (retry with the same Idempotency-Key to see it)", nil)
	case errors.As(err, &notStarted):
		problem(c, http.StatusServiceUnavailable, "temporal_unavailable", "the post could not be started (Temporal refused); nothing was saved, retry", nil)
	case errors.Is(err, posts.ErrUnavailable):
		c.Header("Retry-After", "5")
		problem(c, http.StatusServiceUnavailable, "temporal_unavailable", err.Error(), nil)
	default:
		s.fail(c, err)
	}
}

// answer writes a change's outcome: 200 with the post's new state, or 202
// with where to poll when no worker answered in time.
func (s *Server) answer(c *gin.Context, out posts.Outcome) {
	if out.Pending {
		c.Header("Location", fmt.Sprintf("/v1/orgs/%s/posts/%s", out.Post.OrgID, out.Post.ID))
		c.JSON(http.StatusAccepted, out.Post)
		return
	}
	c.JSON(http.StatusOK, out.Post)
}

type submitRequest struct {
	AccountID   string     `json:"account_id"`
	Text        string     `json:"text"`
	MediaURLs   []string   `json:"media_urls"`
	Media       []mediaRef `json:"media,omitempty"`
	ScheduledAt *string    `json:"scheduled_at"`
}

// mediaRef is an image attached to a post, as sent: an upload's id and its
// alt text (the hash of its bytes is the server's to add).
type mediaRef struct {
	ID  string `json:"id"`
	Alt string `json:"alt"`
}

func mediaRefs(refs []mediaRef) []cs.PostMedia {
	if refs == nil {
		return nil
	}
	out := make([]cs.PostMedia, len(refs))
	for i, r := range refs {
		out[i] = cs.PostMedia{ID: r.ID, Alt: r.Alt}
	}
	return out
}

// parseTime reads an RFC 3339 time with its offset ("2026-11-23T09:00:00+01:00").
func parseTime(field string, v *string) (*time.Time, *cs.FieldError) {
	if v == nil {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, *v)
	if err != nil {
		return nil, &cs.FieldError{Field: field, Message: "must be an RFC 3339 time with an offset, e.g. 2026-11-23T09:00:00+01:00"}
	}
	return &t, nil
}

// submitPost answers POST /v1/orgs/{org}/posts: 201 with the post as its
// workflow answered (step 1 open with its eligible approvers, or
// scheduled), 200 with the first post for a replayed Idempotency-Key.
func (s *Server) submitPost(c *gin.Context) {
	me := currentMember(c)
	key := c.GetHeader("Idempotency-Key")
	if err := posts.CheckIdempotencyKey(key); err != nil {
		s.failPost(c, err)
		return
	}
	var req submitRequest
	if !bindJSON(c, &req) {
		return
	}
	at, ferr := parseTime("scheduled_at", req.ScheduledAt)
	if ferr != nil {
		s.fail(c, &cs.Error{Code: cs.EINVALID, Message: "invalid post", Fields: []cs.FieldError{*ferr}})
		return
	}
	canonical, _ := json.Marshal(req) // what a replay must repeat, whatever its spacing
	p, created, err := s.posts.Submit(c, me, posts.Submission{AccountID: req.AccountID, Text: req.Text, MediaURLs: req.MediaURLs,
		Media: mediaRefs(req.Media), ScheduledAt: at, IdempotencyKey: key, RequestHash: posts.BodyHash(canonical)})
	if p.ID != "" {
		c.Set(postIDKey, p.ID)
	}
	if err != nil {
		s.failPost(c, err)
		return
	}
	if !created {
		c.Header("Idempotent-Replayed", "true")
		c.JSON(http.StatusOK, p)
		return
	}
	c.Header("Location", fmt.Sprintf("/v1/orgs/%s/posts/%s", me.OrgID, p.ID))
	c.JSON(http.StatusCreated, p)
}

// listPosts answers GET /v1/orgs/{org}/posts?status=&account_id=&author_id=.
func (s *Server) listPosts(c *gin.Context) {
	me := currentMember(c)
	f := store.PostFilter{Status: cs.PostStatus(c.Query("status")), AccountID: c.Query("account_id"), AuthorID: c.Query("author_id")}
	var fields []cs.FieldError
	if f.Status != "" && !f.Status.Valid() {
		fields = append(fields, cs.FieldError{Field: "status", Message: "is not a post status"})
	}
	for _, q := range []struct{ name, v string }{{"account_id", f.AccountID}, {"author_id", f.AuthorID}} {
		if _, err := uuid.Parse(q.v); q.v != "" && err != nil {
			fields = append(fields, cs.FieldError{Field: q.name, Message: "must be a UUID"})
		}
	}
	if len(fields) > 0 {
		problem(c, http.StatusBadRequest, "invalid_query", "invalid list parameters", fields)
		return
	}
	listPage(s, c, func(p cs.Page) ([]cs.Post, error) { return s.posts.List(c, me.OrgID, f, p) },
		func(p cs.Post) string { return p.ID })
}

// listApprovals answers GET /v1/orgs/{org}/approvals: posts whose open step
// waits for the caller now.
func (s *Server) listApprovals(c *gin.Context) {
	me := currentMember(c)
	listPage(s, c, func(p cs.Page) ([]cs.Post, error) { return s.posts.Approvals(c, me, p) },
		func(p cs.Post) string { return p.ID })
}

// getPost answers GET /v1/orgs/{org}/posts/{post}, with its audit log.
func (s *Server) getPost(c *gin.Context) {
	id, ok := pathID(c, "post")
	if !ok {
		return
	}
	p, err := s.posts.PostWithDiscussion(c, currentMember(c), id)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

type patchRequest struct {
	Revision    int             `json:"revision"`
	Text        *string         `json:"text"`
	MediaURLs   []string        `json:"media_urls"`
	Media       []mediaRef      `json:"media"`
	ScheduledAt json.RawMessage `json:"scheduled_at"`
}

// patchPost answers PATCH /v1/orgs/{org}/posts/{post}: new content (which
// restarts approval at step 1 when it needs approval) and/or a new scheduled
// time (which keeps approvals); 200 with the post's new state.
func (s *Server) patchPost(c *gin.Context) {
	id, ok := pathID(c, "post")
	if !ok {
		return
	}
	var req patchRequest
	if !bindJSON(c, &req) {
		return
	}
	ch := posts.Change{PostID: id, Revision: req.Revision, Text: req.Text, MediaURLs: req.MediaURLs, Media: mediaRefs(req.Media),
		Source: cs.SourceAPI, RequestID: c.GetHeader("Idempotency-Key")}
	if len(req.ScheduledAt) > 0 {
		ch.Reschedule = true
		if string(req.ScheduledAt) != "null" {
			var v string
			var ferr *cs.FieldError
			if err := json.Unmarshal(req.ScheduledAt, &v); err != nil {
				ferr = &cs.FieldError{Field: "scheduled_at", Message: "must be an RFC 3339 time or null"}
			} else {
				ch.ScheduledAt, ferr = parseTime("scheduled_at", &v)
			}
			if ferr != nil {
				s.fail(c, &cs.Error{Code: cs.EINVALID, Message: "invalid change", Fields: []cs.FieldError{*ferr}})
				return
			}
		}
	}
	out, err := s.posts.Edit(c, currentMember(c), ch)
	if err != nil {
		s.failPost(c, err)
		return
	}
	s.answer(c, out)
}

type decisionRequest struct {
	Revision int    `json:"revision"`
	Note     string `json:"note"`
}

// decide answers POST …/approve and …/reject: 200 with the post's new state,
// or the workflow's refusal.
func (s *Server) decide(decision string) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, ok := pathID(c, "post")
		if !ok {
			return
		}
		var req decisionRequest
		if !bindJSON(c, &req) {
			return
		}
		out, err := s.posts.Decide(c, currentMember(c), posts.Decision{PostID: id, Decision: decision, Revision: req.Revision,
			Note: req.Note, Source: cs.SourceAPI, RequestID: c.GetHeader("Idempotency-Key")})
		if err != nil {
			s.failPost(c, err)
			return
		}
		s.answer(c, out)
	}
}

type cancelRequest struct {
	Revision int    `json:"revision"`
	Note     string `json:"note"`
	// Reason is the note's older name.
	Reason string `json:"reason"`
}

// cancelPost answers POST …/cancel {revision, note}: the post ends canceled
// unless publishing has started.
func (s *Server) cancelPost(c *gin.Context) {
	id, ok := pathID(c, "post")
	if !ok {
		return
	}
	var req cancelRequest
	if c.Request.ContentLength != 0 && !bindJSON(c, &req) {
		return
	}
	note := req.Note
	if note == "" {
		note = req.Reason
	}
	out, err := s.posts.Cancel(c, currentMember(c), posts.Cancellation{PostID: id, Revision: req.Revision, Note: note,
		Source: cs.SourceAPI, RequestID: c.GetHeader("Idempotency-Key")})
	if err != nil {
		s.failPost(c, err)
		return
	}
	s.answer(c, out)
}
