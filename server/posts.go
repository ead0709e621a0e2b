package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/postflow"
	"github.com/countersign/countersign/internal/store"
)

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
}

type submitRequest struct {
	AccountID   string   `json:"account_id"`
	Text        string   `json:"text"`
	MediaURLs   []string `json:"media_urls"`
	ScheduledAt *string  `json:"scheduled_at"`
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

// submitPost answers POST /v1/orgs/{org}/posts: it checks what the API can
// (account, right, text limit, time), inserts the post and starts its
// workflow. If the start fails the post is removed again: the client gets a
// 503 and nothing half-done remains (a crash in between is the reconciler's).
func (s *Server) submitPost(c *gin.Context) {
	me := currentMember(c)
	var req submitRequest
	if !bindJSON(c, &req) {
		return
	}
	var fields []cs.FieldError
	if _, err := uuid.Parse(req.AccountID); err != nil {
		fields = append(fields, cs.FieldError{Field: "account_id", Message: "must be the id of an account"})
	}
	at, ferr := parseTime("scheduled_at", req.ScheduledAt)
	if ferr != nil {
		fields = append(fields, *ferr)
	} else if at != nil && at.Before(time.Now().Add(-time.Minute)) {
		fields = append(fields, cs.FieldError{Field: "scheduled_at", Message: "is in the past"})
	}
	fields = append(fields, checkMedia(req.MediaURLs)...)
	if len(fields) > 0 {
		s.fail(c, &cs.Error{Code: cs.EINVALID, Message: "invalid post", Fields: fields})
		return
	}
	acct, err := s.Store.Account(c, me.OrgID, req.AccountID)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := cs.CheckPost(acct.Network, req.Text, req.MediaURLs); err != nil {
		s.fail(c, err)
		return
	}
	right, err := s.Store.EffectiveRight(c, me.OrgID, acct.ID, me.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	if !right.Compose || right.Publish == cs.PublishNone {
		s.fail(c, cs.Errorf(cs.EFORBIDDEN, "you have no right to post to %s: ask an admin for a grant on this account", acct.Handle))
		return
	}
	chain, err := s.Store.AccountChain(c, me.OrgID, acct.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	np := store.NewPost{
		OrgID: me.OrgID, AccountID: acct.ID, AuthorID: me.ID, Text: req.Text, MediaURLs: req.MediaURLs,
		ScheduledAt: at, Chain: chain, IdempotencyKey: c.GetHeader("Idempotency-Key"),
		NeedsApproval: right.Publish == cs.PublishWithApproval || chain.RequireApprovalForAll,
	}
	post, created, err := s.Store.CreatePost(c, np)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Set(postIDKey, post.ID)
	if !created {
		// A post kept after an unanswered start is started now rather than
		// waiting for the reconciler (a no-op if the first start happened).
		if u, kept, err := s.Store.UnstartedPostByID(c, post.ID); err == nil && kept {
			if err := postflow.StartKept(c, s.Store, s.Temporal, u); err != nil {
				s.Logger.Warn("start kept post on replay; the reconciler will", "org", post.OrgID, "post_id", post.ID,
					"workflow_id", cs.WorkflowID(post.ID), "error", err)
			}
		}
		c.Header("Idempotent-Replayed", "true")
		c.JSON(http.StatusOK, post)
		return
	}
	summary := cs.WorkflowSummary(acct.Handle, me.Name, req.Text)
	if err := postflow.Start(c, s.Temporal, store.UnstartedPost{NewPost: np, ID: post.ID}, summary); err != nil {
		s.Logger.Error("start post workflow", "org", me.OrgID, "post_id", post.ID, "workflow_id", cs.WorkflowID(post.ID), "error", err)
		// The start may have happened although the client saw an error.
		exists, derr := postflow.Exists(c, s.Temporal, post.ID)
		switch {
		case exists:
		case derr == nil: // surely not started: undo the insert
			if err := s.Store.DeleteUnstartedPost(c, post.ID); err != nil {
				s.Logger.Error("remove post after failed start; the reconciler will start it", "org", post.OrgID, "post_id", post.ID, "error", err)
			}
			problem(c, http.StatusServiceUnavailable, "temporal_unavailable", "the post could not be started (Temporal refused); nothing was saved, retry", nil)
			return
		default: // unknown: keep the row, the reconciler starts it (a no-op if it runs)
			problem(c, http.StatusServiceUnavailable, "temporal_unavailable",
				"Temporal did not answer; the post was saved and will be started within minutes (retry with the same Idempotency-Key to see it)", nil)
			return
		}
	}
	if err := s.Store.MarkPostStarted(c, post.ID); err != nil {
		s.Logger.Warn("mark post started", "org", post.OrgID, "post_id", post.ID, "error", err) // the reconciler's start is a no-op
	}
	if len(post.Steps) == 0 {
		post.Steps = plannedSteps(chain, np.NeedsApproval)
	}
	c.Header("Location", fmt.Sprintf("/v1/orgs/%s/posts/%s", me.OrgID, post.ID))
	c.JSON(http.StatusCreated, post)
}

// plannedSteps shows the chain's steps before the workflow has mirrored its
// own view (the first response of a submission).
func plannedSteps(chain cs.Chain, needsApproval bool) []cs.StepState {
	steps := []cs.StepState{}
	if !needsApproval {
		return steps
	}
	for i, st := range chain.Steps {
		status := cs.StepWaiting
		if i == 0 {
			status = cs.StepOpen
		}
		steps = append(steps, cs.StepState{Index: i + 1, Approver: st.Approver, Quorum: st.NeededApprovals(),
			Status: status, FallbackTeam: st.FallbackTeam, Eligible: []string{}, Approvals: []cs.DecisionRecord{}})
	}
	return steps
}

func checkMedia(urls []string) []cs.FieldError {
	var fields []cs.FieldError
	if len(urls) > 4 {
		fields = append(fields, cs.FieldError{Field: "media_urls", Message: "at most 4 media URLs"})
	}
	for i, u := range urls {
		if len(u) > 2048 || !(strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")) {
			fields = append(fields, cs.FieldError{Field: fmt.Sprintf("media_urls[%d]", i), Message: "must be an http(s) URL"})
		}
	}
	return fields
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
	listPage(s, c, func(p cs.Page) ([]cs.Post, error) { return s.Store.ListPosts(c, me.OrgID, f, p) },
		func(p cs.Post) string { return p.ID })
}

// listApprovals answers GET /v1/orgs/{org}/approvals: posts whose open step
// waits for the caller now.
func (s *Server) listApprovals(c *gin.Context) {
	me := currentMember(c)
	f := store.PostFilter{Status: cs.PostPendingApproval, AwaitingMember: me.ID}
	listPage(s, c, func(p cs.Page) ([]cs.Post, error) { return s.Store.ListPosts(c, me.OrgID, f, p) },
		func(p cs.Post) string { return p.ID })
}

// loadPost reads the :post of the caller's org (404 for another org's).
func (s *Server) loadPost(c *gin.Context) (cs.Post, bool) {
	id, ok := pathID(c, "post")
	if !ok {
		return cs.Post{}, false
	}
	p, err := s.Store.Post(c, currentMember(c).OrgID, id)
	if err != nil {
		s.fail(c, err)
		return p, false
	}
	return p, true
}

// getPost answers GET /v1/orgs/{org}/posts/{post}, with its audit log.
func (s *Server) getPost(c *gin.Context) {
	p, ok := s.loadPost(c)
	if !ok {
		return
	}
	events, err := s.Store.PostEvents(c, p.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	p.Events = events
	if p.Events == nil {
		p.Events = []cs.PostEvent{}
	}
	c.JSON(http.StatusOK, p)
}

// mayModerate says whether the caller may edit or cancel the post: its
// author, or an editor and above on its account.
func (s *Server) mayModerate(c *gin.Context, p cs.Post, action string) bool {
	me := currentMember(c)
	if p.AuthorID == me.ID {
		return true
	}
	r, err := s.Store.EffectiveRight(c, me.OrgID, p.AccountID, me.ID)
	if err != nil {
		s.fail(c, err)
		return false
	}
	if r.Manage || (r.Publish == cs.PublishDirect && r.Approve) {
		return true
	}
	s.fail(c, cs.Errorf(cs.EFORBIDDEN, "only the author, and editors and above on the account, can %s this post", action))
	return false
}

// stillOpen answers 409 when the post can no longer change.
func (s *Server) stillOpen(c *gin.Context, p cs.Post, action string) bool {
	switch p.Status {
	case cs.PostPublishing, cs.PostPublished, cs.PostExpired, cs.PostCanceled, cs.PostFailed, cs.PostNeedsAttention:
		s.fail(c, cs.Errorf(cs.ECONFLICT, "cannot %s a post that is %s", action, p.Status))
		return false
	}
	return true
}

type patchRequest struct {
	Revision    int             `json:"revision"`
	Text        *string         `json:"text"`
	MediaURLs   []string        `json:"media_urls"`
	ScheduledAt json.RawMessage `json:"scheduled_at"`
}

// patchPost answers PATCH /v1/orgs/{org}/posts/{post}: new content (which
// restarts approval at step 1) and/or a new scheduled time (which keeps
// approvals). 202: the workflow applies it; GET shows it once mirrored.
func (s *Server) patchPost(c *gin.Context) {
	p, ok := s.loadPost(c)
	if !ok {
		return
	}
	var req patchRequest
	if !bindJSON(c, &req) {
		return
	}
	var fields []cs.FieldError
	var reschedule *cs.RescheduleSignal
	if len(req.ScheduledAt) > 0 {
		reschedule = &cs.RescheduleSignal{By: currentMember(c).ID, Source: "api"}
		if string(req.ScheduledAt) != "null" {
			var v string
			if err := json.Unmarshal(req.ScheduledAt, &v); err != nil {
				fields = append(fields, cs.FieldError{Field: "scheduled_at", Message: "must be an RFC 3339 time or null"})
			} else if at, ferr := parseTime("scheduled_at", &v); ferr != nil {
				fields = append(fields, *ferr)
			} else {
				reschedule.ScheduledAt = at
			}
		}
	}
	if req.Text == nil && req.MediaURLs != nil {
		fields = append(fields, cs.FieldError{Field: "text", Message: "send the text with media_urls (the content is replaced whole)"})
	}
	fields = append(fields, checkMedia(req.MediaURLs)...)
	if req.Text == nil && reschedule == nil && len(fields) == 0 {
		fields = append(fields, cs.FieldError{Field: "text", Message: "send text (and media_urls) and/or scheduled_at"})
	}
	if req.Revision != 0 && req.Revision != p.Revision {
		s.fail(c, cs.Errorf(cs.ECONFLICT, "the post is at revision %d, not %d: reload it", p.Revision, req.Revision))
		return
	}
	if len(fields) > 0 {
		s.fail(c, &cs.Error{Code: cs.EINVALID, Message: "invalid change", Fields: fields})
		return
	}
	if !s.mayModerate(c, p, "edit") || !s.stillOpen(c, p, "edit") {
		return
	}
	if req.Text != nil {
		acct, err := s.Store.Account(c, p.OrgID, p.AccountID)
		if err != nil {
			s.fail(c, err)
			return
		}
		if err := cs.CheckPost(acct.Network, *req.Text, req.MediaURLs); err != nil {
			s.fail(c, err)
			return
		}
		edit := cs.EditSignal{Revision: p.Revision, Text: *req.Text, MediaURLs: req.MediaURLs, By: currentMember(c).ID, Source: "api"}
		if edit.MediaURLs == nil {
			edit.MediaURLs = []string{}
		}
		if !s.signal(c, p, cs.SignalEdit, edit) {
			return
		}
	}
	if reschedule != nil && !s.signal(c, p, cs.SignalReschedule, *reschedule) {
		return
	}
	c.JSON(http.StatusAccepted, p)
}

type decisionRequest struct {
	Revision int    `json:"revision"`
	Note     string `json:"note"`
}

// decide answers POST …/approve and …/reject: it refuses what it can tell is
// not allowed (403) or out of date (409), then signals the workflow, which
// re-checks everything against the database and counts the decision.
func (s *Server) decide(decision string) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, ok := s.loadPost(c)
		if !ok {
			return
		}
		var req decisionRequest
		if !bindJSON(c, &req) {
			return
		}
		me := currentMember(c)
		if req.Revision < 1 {
			s.fail(c, &cs.Error{Code: cs.EINVALID, Message: "say which revision you decide on",
				Fields: []cs.FieldError{{Field: "revision", Message: "is required"}}})
			return
		}
		if decision == cs.DecisionReject && req.Note == "" {
			s.fail(c, &cs.Error{Code: cs.EINVALID, Message: "a rejection needs a reason",
				Fields: []cs.FieldError{{Field: "note", Message: "is required when rejecting"}}})
			return
		}
		if reason, code := s.decisionBlocked(c, p, me, req.Revision); reason != "" {
			s.fail(c, cs.Errorf(code, "you cannot %s this post: %s", decision, reason))
			return
		}
		if c.IsAborted() {
			return
		}
		requestID := c.GetHeader("Idempotency-Key")
		if requestID == "" {
			requestID = uuid.NewString()
		}
		sig := cs.DecisionSignal{PostID: p.ID, Revision: req.Revision, Step: p.CurrentStep, MemberID: me.ID,
			Decision: decision, Note: req.Note, Source: "api", RequestID: requestID}
		if !s.signal(c, p, cs.SignalDecision, sig) {
			return
		}
		c.JSON(http.StatusAccepted, p)
	}
}

// decisionBlocked returns why the member cannot decide on the post now (and
// the error code), or "" — from the mirrored state; the workflow re-checks.
// On a database error it answers the request itself (and returns "").
func (s *Server) decisionBlocked(c *gin.Context, p cs.Post, me cs.Member, revision int) (string, string) {
	reason, code, err := s.decisionCheck(c, p, me.ID, revision, 0)
	if err != nil {
		s.fail(c, err)
		return "", ""
	}
	return reason, code
}

// decisionCheck is the pre-check of a decision shared by the API and Slack:
// why memberID cannot decide on revision (and step, when not 0: a Slack
// button names the step it was sent for) of the post now, with the error
// code, or "" when nothing the mirrored state shows stands in the way.
func (s *Server) decisionCheck(ctx context.Context, p cs.Post, memberID string, revision, step int) (string, string, error) {
	if p.Status != cs.PostPendingApproval {
		return fmt.Sprintf("it is %s, not awaiting approval", p.Status), cs.ECONFLICT, nil
	}
	if revision != p.Revision {
		return fmt.Sprintf("it is at revision %d, not %d", p.Revision, revision), cs.ECONFLICT, nil
	}
	if p.AuthorID == memberID {
		return "authors cannot approve their own posts", cs.EFORBIDDEN, nil
	}
	if p.CurrentStep < 1 || p.CurrentStep > len(p.Steps) {
		return "its approval step is opening; retry in a moment", cs.ECONFLICT, nil
	}
	if step != 0 && step != p.CurrentStep {
		return fmt.Sprintf("step %d is over; the post is at step %d/%d", step, p.CurrentStep, p.TotalSteps), cs.ECONFLICT, nil
	}
	cur := p.Steps[p.CurrentStep-1]
	for _, a := range cur.Approvals {
		if a.MemberID == memberID {
			return "you already approved this step", cs.ECONFLICT, nil
		}
	}
	fallback := ""
	if cur.FallbackActive {
		fallback = cur.FallbackTeam
	}
	reason, err := s.Store.CheckApprover(ctx, p.OrgID, p.AccountID, memberID, cur.Approver, fallback)
	if err != nil {
		return "", "", err
	}
	if reason != "" {
		return reason, cs.EFORBIDDEN, nil
	}
	chain, err := s.Store.PostChain(ctx, p.ID)
	if err != nil {
		return "", "", err
	}
	if chain.DistinctApprovers {
		for _, earlier := range p.Steps[:p.CurrentStep-1] {
			for _, a := range earlier.Approvals {
				if a.MemberID == memberID {
					return fmt.Sprintf("you approved step %d of this revision, and this chain wants a different person at each step", earlier.Index), cs.EFORBIDDEN, nil
				}
			}
		}
	}
	return "", "", nil
}

type cancelRequest struct {
	Reason string `json:"reason"`
	Note   string `json:"note"`
}

// cancelPost answers POST …/cancel: the post ends canceled unless publishing
// has started.
func (s *Server) cancelPost(c *gin.Context) {
	p, ok := s.loadPost(c)
	if !ok {
		return
	}
	var req cancelRequest
	if c.Request.ContentLength != 0 && !bindJSON(c, &req) {
		return
	}
	if !s.mayModerate(c, p, "cancel") || !s.stillOpen(c, p, "cancel") {
		return
	}
	reason := req.Reason
	if reason == "" {
		reason = req.Note
	}
	if !s.signal(c, p, cs.SignalCancel, cs.CancelSignal{By: currentMember(c).ID, Reason: reason, Source: "api"}) {
		return
	}
	c.JSON(http.StatusAccepted, p)
}

// signal sends a signal to the post's workflow; on failure it answers.
func (s *Server) signal(c *gin.Context, p cs.Post, name string, payload any) bool {
	err := s.Temporal.SignalWorkflow(c, cs.WorkflowID(p.ID), "", name, payload)
	if err == nil {
		return true
	}
	s.Logger.Error("signal post workflow", "org", p.OrgID, "post_id", p.ID, "workflow_id", cs.WorkflowID(p.ID), "signal", name, "error", err)
	if isNotFound(err) {
		s.fail(c, cs.Errorf(cs.ECONFLICT, "the post's workflow has ended; it can no longer change"))
		return false
	}
	problem(c, http.StatusServiceUnavailable, "temporal_unavailable", "Temporal did not take the "+name+"; retry", nil)
	return false
}

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}
