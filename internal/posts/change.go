package posts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	cs "github.com/countersign/countersign"
)

// Decision is an approval or a rejection.
type Decision struct {
	PostID   string
	Decision string // cs.DecisionApprove or cs.DecisionReject
	Revision int
	// Step is the step decided on; 0 means the step the post is at (the
	// API's decisions name only the revision; a Slack button names its step).
	Step      int
	Note      string
	Source    string // cs.SourceAPI or cs.SourceSlack
	RequestID string // the click or call; "" for a new one
	// SentAt is when the decision reached Countersign (zero: now). Signed
	// with the decision, it lets one sent before the scheduled time count
	// while the post's workflow catches up (workflows.LateGrace).
	SentAt time.Time
	// NoteAsComment also records a counted rejection's note as the
	// rejecter's comment (Slack's reject form).
	NoteAsComment bool
}

// Decide sends a signed decision to the post's workflow and returns the
// post's new state, or the workflow's refusal.
func (s *Service) Decide(ctx context.Context, me cs.Member, d Decision) (Outcome, error) {
	var fields []cs.FieldError
	if d.Revision < 1 {
		fields = append(fields, cs.FieldError{Field: "revision", Message: "is required: say which revision you decide on"})
	}
	if d.Decision == cs.DecisionReject && strings.TrimSpace(d.Note) == "" {
		return Outcome{}, &cs.Error{Code: cs.ReasonNoteRequired, Message: "a rejection needs a reason",
			Fields: []cs.FieldError{{Field: "note", Message: "is required when rejecting"}}}
	}
	if d.Decision != cs.DecisionApprove && d.Decision != cs.DecisionReject {
		fields = append(fields, cs.FieldError{Field: "decision", Message: "must be approve or reject"})
	}
	if len(fields) > 0 {
		return Outcome{}, &cs.Error{Code: cs.EINVALID, Message: "invalid decision", Fields: fields}
	}
	if err := checkNote(d.Note); err != nil {
		return Outcome{}, err
	}
	p, id, err := s.target(ctx, me, d.PostID, d.RequestID)
	if err != nil {
		return Outcome{}, err
	}
	if err := s.limit(me.ID, p.ID); err != nil {
		return Outcome{}, err
	}
	step := d.Step
	if step == 0 {
		step = p.CurrentStep
	}
	sent := d.SentAt
	if sent.IsZero() {
		sent = time.Now()
	}
	sent = sent.UTC().Truncate(time.Millisecond)
	sig := cs.DecisionSignal{PostID: p.ID, Revision: d.Revision, Step: step, MemberID: me.ID,
		Decision: d.Decision, Note: d.Note, Source: d.Source, RequestID: id, SentAt: &sent}
	if s.Signer != nil {
		sig.MAC = s.Signer.Sign(sig)
	}
	out, err := s.change(ctx, p, cs.UpdateDecide, cs.SignalDecision, id, sig, sent)
	if err == nil && !out.Pending && d.NoteAsComment && d.Decision == cs.DecisionReject {
		s.rejectionComment(ctx, me, p, d.Note)
	}
	return out, err
}

// Change is an edit and/or a reschedule of a post.
type Change struct {
	PostID   string
	Revision int // the revision the caller saw; 0: whatever it is now
	// Text and MediaURLs: new content (Text nil: the content stays).
	Text      *string
	MediaURLs []string
	// Media are the new content's images as sent (ids and alt texts).
	Media []cs.PostMedia
	// Reschedule: a new time (ScheduledAt nil: as soon as approved).
	Reschedule  bool
	ScheduledAt *time.Time
	Source      string
	RequestID   string
}

// Edit changes a post's content and/or its time. New content is a signed
// edit (a new revision, approval restarts when needed); a new time keeps the
// approvals. With both, they are one edit (EditSignal.Reschedule): one
// Update, so the change applies whole or not at all.
func (s *Service) Edit(ctx context.Context, me cs.Member, c Change) (Outcome, error) {
	var fields []cs.FieldError
	if c.Text == nil && (c.MediaURLs != nil || c.Media != nil) {
		fields = append(fields, cs.FieldError{Field: "text", Message: "send the text with media_urls and media (the content is replaced whole)"})
	}
	fields = append(fields, CheckMedia(c.MediaURLs)...)
	if c.Text == nil && !c.Reschedule && len(fields) == 0 {
		fields = append(fields, cs.FieldError{Field: "text", Message: "send text (and media_urls) and/or scheduled_at"})
	}
	if len(fields) > 0 {
		return Outcome{}, &cs.Error{Code: cs.EINVALID, Message: "invalid change", Fields: fields}
	}
	p, id, err := s.target(ctx, me, c.PostID, c.RequestID)
	if err != nil {
		return Outcome{}, err
	}
	revision := c.Revision
	if revision == 0 {
		revision = p.Revision
	}
	out := Outcome{Post: p}
	if c.Text != nil {
		acct, err := s.Store.Account(ctx, p.OrgID, p.AccountID)
		if err != nil {
			return Outcome{}, err
		}
		if err := cs.CheckPost(acct.Network, *c.Text, c.MediaURLs); err != nil {
			return Outcome{}, err
		}
		if err := s.limit(me.ID, p.ID); err != nil {
			return Outcome{}, err
		}
		media, err := s.resolveMedia(ctx, p.OrgID, acct.Network, c.Media)
		if err != nil {
			return Outcome{}, err
		}
		// Text and time together are one edit: one Update, one transition.
		edit := cs.EditSignal{Revision: revision, Text: *c.Text, MediaURLs: c.MediaURLs, Media: media, By: me.ID, Source: c.Source,
			RequestID: id, Reschedule: c.Reschedule, ScheduledAt: c.ScheduledAt}
		if edit.MediaURLs == nil {
			edit.MediaURLs = []string{}
		}
		if s.Signer != nil {
			edit.MAC = s.Signer.SignEdit(edit)
		}
		return s.change(ctx, p, cs.UpdateEdit, cs.SignalEdit, id, edit, time.Time{})
	}
	if err := s.limit(me.ID, p.ID); err != nil {
		return Outcome{}, err
	}
	r := cs.RescheduleSignal{ScheduledAt: c.ScheduledAt, By: me.ID, Source: c.Source, Revision: revision, RequestID: id}
	return s.change(ctx, out.Post, cs.UpdateReschedule, cs.SignalReschedule, id, r, time.Time{})
}

// Cancellation ends a post canceled.
type Cancellation struct {
	PostID    string
	Revision  int // the revision the caller saw; 0: any
	Note      string
	Source    string
	RequestID string
}

// Cancel ends the post canceled, unless publishing has started.
func (s *Service) Cancel(ctx context.Context, me cs.Member, c Cancellation) (Outcome, error) {
	if err := checkNote(c.Note); err != nil {
		return Outcome{}, err
	}
	p, id, err := s.target(ctx, me, c.PostID, c.RequestID)
	if err != nil {
		return Outcome{}, err
	}
	sig := cs.CancelSignal{By: me.ID, Reason: c.Note, Source: c.Source, Revision: c.Revision, RequestID: id}
	return s.change(ctx, p, cs.UpdateCancel, cs.SignalCancel, id, sig, time.Time{})
}

// change sends the Update name and returns the post's new state. A refusal
// is a *cs.Error with the workflow's reason code and sentence. When no worker
// answers within Wait of sent (when the change reached Countersign; zero:
// now), the signal of the same name (same payload, same request id, so it
// counts at most once) is sent instead and the outcome is Pending. A change
// that already waited Wait before it could be sent (a Slack click queued
// behind others) goes as the signal at once: it reaches the workflow's
// history without waiting for a worker, in time for the late grace.
func (s *Service) change(ctx context.Context, p cs.Post, update, signal, id string, arg any, sent time.Time) (Outcome, error) {
	if sent.IsZero() {
		sent = time.Now()
	}
	if wait := time.Until(sent.Add(s.Wait)); wait > 0 {
		uctx, cancel := context.WithTimeout(ctx, wait)
		st, err := s.Workflows.Update(uctx, p.ID, update, id, arg)
		cancel()
		if err == nil {
			return Outcome{Post: answered(p, st)}, nil
		}
		if refusal := Refusal(err); refusal != nil {
			return Outcome{}, refusal
		}
		if isNotFound(err) {
			return Outcome{}, ended()
		}
		if ctx.Err() != nil {
			return Outcome{}, ctx.Err() // the caller went away
		}
		if !noAnswer(err) {
			return Outcome{}, s.unavailable(p, update, err)
		}
	}
	s.Logger.Warn("no worker answered a post change within its wait; sent as a signal", "org", p.OrgID, "post_id", p.ID,
		"workflow_id", cs.WorkflowID(p.ID), "update", update, "waited", time.Since(sent).Round(time.Millisecond))
	if err := s.Workflows.Signal(ctx, p.ID, signal, arg); err != nil {
		if isNotFound(err) {
			return Outcome{}, ended()
		}
		return Outcome{}, s.unavailable(p, signal, err)
	}
	return Outcome{Post: p, Pending: true}, nil
}

func ended() error {
	return cs.Errorf(cs.ReasonTooLate, "the post's workflow has ended; it can no longer change")
}

// ErrUnavailable is wrapped when Temporal could not take a change.
var ErrUnavailable = errors.New("Temporal did not take the change; retry")

func (s *Service) unavailable(p cs.Post, what string, err error) error {
	s.Logger.Error("send post change", "org", p.OrgID, "post_id", p.ID, "workflow_id", cs.WorkflowID(p.ID), "change", what, "error", err)
	return fmt.Errorf("%w (%s)", ErrUnavailable, what)
}

// Refusal is the workflow's refusal carried by err (a non-retryable
// ApplicationError whose Type is a reason code), as a *cs.Error with that
// code and sentence; nil when err is no refusal.
func Refusal(err error) *cs.Error {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() == "" || strings.Contains(app.Message(), "unknown update") {
		return nil
	}
	return &cs.Error{Code: app.Type(), Message: app.Message()}
}

// noAnswer reports whether err means no worker answered in time (or the
// worker does not know the Update yet: a worker older than the API).
func noAnswer(err error) bool {
	var timeout *client.WorkflowUpdateServiceTimeoutOrCanceledError
	var deadline *serviceerror.DeadlineExceeded
	var app *temporal.ApplicationError
	return errors.As(err, &timeout) || errors.As(err, &deadline) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &app) && strings.Contains(app.Message(), "unknown update"))
}

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}

// target is the post a change is for, in the caller's org, and the request
// id the workflow will know the change by.
func (s *Service) target(ctx context.Context, me cs.Member, postID, reqID string) (cs.Post, string, error) {
	id, err := requestID(reqID)
	if err != nil {
		return cs.Post{}, "", err
	}
	p, err := s.Store.Post(ctx, me.OrgID, postID)
	return p, id, err
}
