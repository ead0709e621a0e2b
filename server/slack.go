package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	slackgo "github.com/slack-go/slack"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/posts"
	csslack "github.com/countersign/countersign/internal/slack"
	"github.com/countersign/countersign/internal/store"
)

// POST /slack/interactions: Slack's interactivity requests (button clicks and
// the reject modal). The signature is checked over the raw body before
// anything is parsed; then the request is acknowledged at once and handled in
// the background by a bounded pool (map the Slack user to a member, send the
// decision through the posts service as the API does; a refusal comes back as
// an ephemeral message with the workflow's reason). Socket Mode
// hands its interactions to the same HandleSlackInteraction.

func (s *Server) slackInteractions(c *gin.Context) {
	body, ok := s.slackBody(c)
	if !ok {
		return
	}
	cb, err := csslack.ParseInteraction(body)
	if err != nil {
		problem(c, http.StatusBadRequest, "invalid_payload", err.Error(), nil)
		return
	}
	if ack := s.HandleSlackInteraction(cb); ack != nil {
		c.JSON(http.StatusOK, ack)
		return
	}
	c.Status(http.StatusOK)
	c.Writer.WriteHeaderNow()
}

// slackBody reads a Slack request's raw body and verifies its signature
// before anything parses it; on failure it answers and returns false.
func (s *Server) slackBody(c *gin.Context) ([]byte, bool) {
	if s.Slack == nil || s.Slack.Config().SigningSecret == "" {
		problem(c, http.StatusNotFound, "slack_not_configured",
			"Slack requests are not configured on this server (COUNTERSIGN_SLACK_SIGNING_SECRET)", nil)
		return nil, false
	}
	body, err := io.ReadAll(c.Request.Body)
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		problem(c, http.StatusRequestEntityTooLarge, "body_too_large", "the body is larger than 1 MiB", nil)
		return nil, false
	case err != nil:
		problem(c, http.StatusBadRequest, "invalid_body", "the body could not be read", nil)
		return nil, false
	}
	if err := s.Slack.VerifyRequest(c.Request.Header, body); err != nil {
		s.Logger.Warn("slack request refused", "path", c.FullPath(), "error", err)
		problem(c, http.StatusUnauthorized, "invalid_signature",
			"the request is not signed by Slack (X-Slack-Signature, X-Slack-Request-Timestamp within 5 minutes)", nil)
		return nil, false
	}
	return body, true
}

// POST /slack/events: the Events API (signed like interactions). It answers
// Slack's url_verification challenge, and app_home_opened publishes the App
// Home tab in the background; other events are acknowledged and ignored.
func (s *Server) slackEvents(c *gin.Context) {
	body, ok := s.slackBody(c)
	if !ok {
		return
	}
	e, err := csslack.ParseEvent(body)
	if err != nil {
		problem(c, http.StatusBadRequest, "invalid_payload", err.Error(), nil)
		return
	}
	if e.Type == "url_verification" {
		c.JSON(http.StatusOK, gin.H{"challenge": e.Challenge})
		return
	}
	s.Slack.HandleEvent(e)
	c.Status(http.StatusOK)
	c.Writer.WriteHeaderNow()
}

// HandleSlackInteraction handles one verified interaction (from the HTTP
// endpoint or Socket Mode) and returns what to acknowledge it with: nil for
// an empty acknowledgement, or a view submission response. It only parses;
// the decision is taken in the background, so it returns at once.
func (s *Server) HandleSlackInteraction(cb slackgo.InteractionCallback) any {
	if s.Slack == nil {
		return nil
	}
	at := time.Now() // when the decision was sent, whenever the pool gets to it
	switch cb.Type {
	case slackgo.InteractionTypeBlockActions:
		act, err := csslack.ParseAction(cb)
		if err != nil {
			return nil // some other button (Countersign has none): nothing to do
		}
		if !s.Slack.Go(func(ctx context.Context) { s.slackClick(ctx, cb, act, at) }) {
			s.tellBusy(cb)
		}
	case slackgo.InteractionTypeViewSubmission:
		if cb.View.CallbackID != csslack.RejectCallbackID {
			return nil
		}
		meta, reason, err := csslack.ParseRejectSubmission(cb)
		if err != nil {
			s.Logger.Warn("slack reject modal with unreadable metadata", "error", err)
			return nil
		}
		if reason == "" {
			return slackgo.NewErrorsViewSubmissionResponse(map[string]string{
				csslack.RejectReasonBlock: "Say why, so that the author can fix the post.",
			})
		}
		if !s.Slack.Go(func(ctx context.Context) { s.slackRejectSubmitted(ctx, cb, meta, reason, at) }) {
			// The modal stays open with the reason typed: submitting again is
			// one click.
			return slackgo.NewErrorsViewSubmissionResponse(map[string]string{csslack.RejectReasonBlock: csslack.BusyText})
		}
	}
	return nil
}

// tellBusy tells the person that their click was not taken (the pool's
// queue stayed full), so that they click again rather than believe it
// counted. It is one call to Slack, made apart from the full pool.
func (s *Server) tellBusy(cb slackgo.InteractionCallback) {
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Slack.Ephemeral(ctx, channel, cb.User.ID, cb.ResponseURL, csslack.BusyText); err != nil {
			s.Logger.Warn("slack: could not tell the user their click was not taken", "slack_user_id", cb.User.ID, "error", err)
		}
	}()
}

// slackClick handles the approve and reject buttons: approve goes to the
// posts service at once; reject opens the modal asking why.
func (s *Server) slackClick(ctx context.Context, cb slackgo.InteractionCallback, act csslack.Action, at time.Time) {
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	tell := func(text string) {
		if err := s.Slack.Ephemeral(ctx, channel, cb.User.ID, cb.ResponseURL, text); err != nil {
			s.Logger.Warn("slack: could not answer the user", "slack_user_id", cb.User.ID, "error", err)
		}
	}
	sp, me, blocked := s.slackDecider(ctx, cb.User.ID, act.Target)
	if blocked != "" {
		tell(fmt.Sprintf("you cannot %s this post: %s", act.Decision, blocked))
		return
	}
	if act.Decision == cs.DecisionReject {
		meta := csslack.ModalMeta{Target: act.Target, ChannelID: channel}
		if err := s.Slack.OpenRejectModal(ctx, cb.TriggerID, meta, "the post on @"+sp.Account.Handle); err != nil {
			s.Logger.Warn("slack: could not open the reject modal", "org", sp.Post.OrgID, "post_id", sp.Post.ID, "error", err)
			tell("Countersign could not open the rejection form; try again, or reject through the API.")
		}
		return
	}
	// One click is one request: the same payload delivered twice counts
	// once, and a second click is the same member on the same step, which
	// the workflow counts once too.
	id := strings.Join([]string{"slack", cb.Team.ID, cb.User.ID, act.ActionTS}, ":")
	out, err := s.posts.Decide(ctx, me, posts.Decision{PostID: sp.Post.ID, Decision: cs.DecisionApprove,
		Revision: act.Target.Revision, Step: act.Target.Step, Source: cs.SourceSlack, RequestID: id, SentAt: at})
	if msg := s.slackAnswer(sp.Post, cs.DecisionApprove, out, err); msg != "" {
		tell(msg)
	}
}

// slackRejectSubmitted handles the reject modal's submission: the rejection.
func (s *Server) slackRejectSubmitted(ctx context.Context, cb slackgo.InteractionCallback, meta csslack.ModalMeta, reason string, at time.Time) {
	tell := func(text string) {
		if err := s.Slack.Ephemeral(ctx, meta.ChannelID, cb.User.ID, "", text); err != nil {
			s.Logger.Warn("slack: could not answer the user", "slack_user_id", cb.User.ID, "error", err)
		}
	}
	sp, me, blocked := s.slackDecider(ctx, cb.User.ID, meta.Target)
	if blocked != "" {
		tell("you cannot reject this post: " + blocked)
		return
	}
	out, err := s.posts.Decide(ctx, me, posts.Decision{PostID: sp.Post.ID, Decision: cs.DecisionReject,
		Revision: meta.Revision, Step: meta.Step, Note: reason, Source: cs.SourceSlack, NoteAsComment: true,
		RequestID: "slack:" + cb.Team.ID + ":view:" + cb.View.ID, SentAt: at})
	if msg := s.slackAnswer(sp.Post, cs.DecisionReject, out, err); msg != "" {
		tell(msg)
	}
}

// slackDecider finds the post and the member behind a Slack user; blocked
// says why there is no decision to send (no such post, an unlinked user).
// Whether that member may decide is the workflow's to say.
func (s *Server) slackDecider(ctx context.Context, slackUserID string, t csslack.Target) (store.SlackPost, cs.Member, string) {
	sp, err := s.Store.SlackPost(ctx, t.PostID)
	if cs.ErrorCode(err) == cs.ENOTFOUND {
		return sp, cs.Member{}, "it no longer exists"
	}
	if err != nil {
		s.Logger.Error("slack: read post", "post_id", t.PostID, "error", err)
		return sp, cs.Member{}, "Countersign could not read it right now; try again in a moment"
	}
	me, err := s.Slack.MemberForSlackUser(ctx, sp.Post.OrgID, slackUserID)
	if cs.ErrorCode(err) == cs.ENOTFOUND {
		return sp, me, fmt.Sprintf("your Slack account is not linked to a member of %s (ask an admin to set your Slack user id)", sp.OrgName)
	}
	if err != nil {
		s.Logger.Error("slack: map slack user to member", "slack_user_id", slackUserID, "error", err)
		return sp, me, "Countersign could not check who you are right now; try again in a moment"
	}
	return sp, me, ""
}

// slackAnswer is what to tell the person about their decision's outcome
// ("" for nothing: the request message itself shows the new state).
func (s *Server) slackAnswer(p cs.Post, decision string, out posts.Outcome, err error) string {
	noun := map[string]string{cs.DecisionApprove: "approval", cs.DecisionReject: "rejection"}[decision]
	var limited *posts.RateLimited
	var e *cs.Error
	switch {
	case err == nil && out.Pending:
		return fmt.Sprintf("Your %s %s", noun, csslack.ReceivedText)
	case err == nil:
		if q := out.Post; decision == cs.DecisionApprove && q.Status == cs.PostPendingApproval && q.CurrentStep >= 1 && q.CurrentStep <= len(q.Steps) {
			if st := q.Steps[q.CurrentStep-1]; st.Quorum > 1 && len(st.Approvals) < st.Quorum {
				return fmt.Sprintf("Your approval of step %d/%d counted; this step needs %d approvals (%d so far).",
					st.Index, q.TotalSteps, st.Quorum, len(st.Approvals))
			}
		}
		return ""
	case errors.As(err, &limited):
		return fmt.Sprintf("Too many decisions at once; try again in %d s.", int(limited.RetryAfter.Seconds())+1)
	case errors.As(err, &e):
		return fmt.Sprintf("you cannot %s this post: %s", decision, e.Message)
	default:
		s.Logger.Error("slack decision", "org", p.OrgID, "post_id", p.ID, "workflow_id", cs.WorkflowID(p.ID), "source", cs.SourceSlack, "error", err)
		return fmt.Sprintf("Countersign could not record your %s right now; try again in a moment.", noun)
	}
}
