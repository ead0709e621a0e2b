package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/countersign/countersign"
)

// Activities holds the dependencies of the post workflow's activities. Register
// a filled *Activities with the worker (worker.RegisterActivity(acts)); the
// workflow refers to the methods through a nil *Activities, so the activity
// names are the method names: ResolveApprovers, AuthorizeDecision,
// SavePostState, Notify, Publish.
type Activities struct {
	Directory Directory
	Mirror    Mirror
	Notifier  Notifier
	Publisher Publisher
	// Signer checks decision and edit MACs (secrets.DecisionSigner).
	Signer Signer
	// Reviews e-mails external reviewers their review links (internal/review);
	// without it an external step's notification is only logged.
	Reviews ReviewSender
}

// ReviewSender mints an external reviewer's link and e-mails it, for a
// step_opened or reminder notification whose External is set.
type ReviewSender interface {
	SendReviewLink(ctx context.Context, n Notification) error
}

// errNotConfigured is returned (and retried) when the worker was built
// without a dependency: fixing the configuration and restarting the worker
// lets the post carry on.
func errNotConfigured(dep string) error {
	return fmt.Errorf("activities: no %s configured on this worker", dep)
}

// ResolveApprovers returns who an approver stands for now (sorted member ids).
func (a *Activities) ResolveApprovers(ctx context.Context, in ResolveApproversInput) (ResolveApproversResult, error) {
	if in.Approver.External != nil { // outside the directory: reached by e-mail
		return ResolveApproversResult{MemberIDs: []string{}}, nil
	}
	if a.Directory == nil {
		return ResolveApproversResult{}, errNotConfigured("Directory")
	}
	ids, err := a.Directory.EligibleApprovers(ctx, in.OrgID, in.AccountID, in.Approver)
	if err != nil {
		return ResolveApproversResult{}, fmt.Errorf("resolve %s: %w", in.Approver, err)
	}
	if ids == nil {
		ids = []string{}
	}
	var dels []countersign.Delegation
	if len(ids) > 0 {
		if dels, err = a.Directory.Delegations(ctx, in.OrgID, ids); err != nil {
			return ResolveApproversResult{}, fmt.Errorf("absences of %s: %w", in.Approver, err)
		}
	}
	return ResolveApproversResult{MemberIDs: ids, Delegations: dels}, nil
}

// AuthorizeDecision re-checks a decision against the current database and,
// when allowed and asked to, resolves the approver of the step it opens.
func (a *Activities) AuthorizeDecision(ctx context.Context, in AuthorizeRequest) (AuthorizeResult, error) {
	if a.Directory == nil {
		return AuthorizeResult{}, errNotConfigured("Directory")
	}
	if a.Signer == nil {
		return AuthorizeResult{}, errNotConfigured("Signer")
	}
	if in.Decision == nil || !a.Signer.Verify(*in.Decision) {
		return AuthorizeResult{Code: countersign.ReasonUnsigned,
			Reason: "the decision was not sent through the API, Slack or a review link (no valid signature)"}, nil
	}
	if ext := in.Decision.External; ext != "" && (in.Approver.External == nil ||
		!strings.EqualFold(strings.TrimSpace(ext), strings.TrimSpace(in.Approver.External.Email)) || in.Decision.MemberID != "") {
		return AuthorizeResult{Code: countersign.ReasonNotAwaited, Reason: "this step does not wait for the external reviewer " + ext}, nil
	}
	res, err := a.Directory.AuthorizeDecision(ctx, in)
	if err != nil || !res.Allowed || in.ResolveNext == nil {
		return res, err
	}
	next, err := a.ResolveApprovers(ctx, ResolveApproversInput{OrgID: in.OrgID, AccountID: in.AccountID,
		PostID: in.PostID, Approver: *in.ResolveNext})
	if err != nil {
		return AuthorizeResult{}, err
	}
	res.NextResolved, res.NextEligible, res.NextDelegations = true, next.MemberIDs, next.Delegations
	return res, nil
}

// AuthorizeChange decides whether an edit, reschedule or cancel may be made
// now, with the member's current right (SPEC §3 item 4): an author changes
// their own post while they may still compose; anyone else needs editor's
// right or more on the account (compose, direct publishing and approve). An
// edit's MAC is checked first: an unsigned edit is an operator's, answered
// with Signed false and nothing else.
func (a *Activities) AuthorizeChange(ctx context.Context, in AuthorizeChangeRequest) (AuthorizeChangeResult, error) {
	if a.Directory == nil {
		return AuthorizeChangeResult{}, errNotConfigured("Directory")
	}
	if in.Edit != nil {
		if a.Signer == nil {
			return AuthorizeChangeResult{}, errNotConfigured("Signer")
		}
		if !a.Signer.VerifyEdit(*in.Edit) {
			return AuthorizeChangeResult{}, nil
		}
	}
	res := AuthorizeChangeResult{Signed: true, Code: countersign.ReasonCannotCompose}
	if in.MemberID == "" {
		res.Reason = "the " + in.Kind + " names no member"
		return res, nil
	}
	right, err := a.Directory.EffectiveRight(ctx, in.OrgID, in.AccountID, in.MemberID)
	if countersign.ErrorCode(err) == countersign.ENOTFOUND {
		res.Reason = in.MemberID + " is no longer an active member of the organization"
		return res, nil
	}
	if err != nil {
		return AuthorizeChangeResult{}, fmt.Errorf("right of %s: %w", in.MemberID, err)
	}
	res.Publish = right.Publish
	switch {
	case in.MemberID == in.AuthorID && right.Compose:
		res.Allowed = true
	case in.MemberID == in.AuthorID:
		res.Reason = "you may no longer compose posts on this account"
	case right.Compose && right.Publish == countersign.PublishDirect && right.Approve:
		res.Allowed = true
	default:
		res.Reason = "only the author or an editor of the account may " + in.Kind + " this post"
	}
	if res.Allowed {
		res.Code = ""
	}
	return res, nil
}

// NotifyBound is how long a notification is retried before it is logged and
// dropped: telling people never holds a post back.
const NotifyBound = 2 * time.Minute

// SavePostState mirrors one transition (state and events) to the database,
// then sends its notifications, in order. A failed notification fails the
// attempt, so it is retried with the rest (the mirror write is idempotent and
// the Slack notifier never sends a message twice) until in.NotifyUntil; past
// that it is logged and skipped.
func (a *Activities) SavePostState(ctx context.Context, in SavePostStateInput) error {
	if a.Mirror == nil {
		return errNotConfigured("Mirror")
	}
	if err := a.Mirror.SavePostState(ctx, in.PostID, in.State, in.Events); err != nil {
		return err
	}
	for _, n := range in.Notifications {
		err := a.Notify(ctx, n)
		if err == nil {
			continue
		}
		if time.Now().Before(in.NotifyUntil) {
			var appErr *temporal.ApplicationError
			if errors.As(err, &appErr) {
				return appErr // as is, so a Slack 429's retry delay is kept
			}
			return fmt.Errorf("notify %s: %w", n.Kind, err)
		}
		activity.GetLogger(ctx).Warn("notification not sent", "kind", n.Kind, "error", err)
	}
	return nil
}

// Notify sends one notification; an external step's opening or reminder
// also e-mails its reviewer a review link.
func (a *Activities) Notify(ctx context.Context, n Notification) error {
	if a.Notifier == nil {
		return errNotConfigured("Notifier")
	}
	if n.External != nil && (n.Kind == NotifyStepOpened || n.Kind == NotifyReminder) {
		if a.Reviews == nil {
			activity.GetLogger(ctx).Warn("no mail configured: the external reviewer was not sent a review link",
				"post_id", n.PostID, "step", n.Step)
		} else if err := a.Reviews.SendReviewLink(ctx, n); err != nil {
			return fmt.Errorf("review link: %w", err)
		}
	}
	return a.Notifier.Notify(ctx, n)
}

// Publish publishes a revision. Errors from the publisher that are not already
// classified (PublishRejected, PublishUnknown, or any Temporal application
// error) are returned as retryable: by the Publisher contract they mean "surely
// not posted".
func (a *Activities) Publish(ctx context.Context, in PublishRequest) (PublishResult, error) {
	if a.Publisher == nil {
		return PublishResult{}, errNotConfigured("Publisher")
	}
	if m := in.Mirror; m != nil {
		if a.Mirror == nil {
			return PublishResult{}, errNotConfigured("Mirror")
		}
		if err := a.Mirror.SavePostState(ctx, m.PostID, m.State, m.Events); err != nil {
			// Nothing was sent: retried like any "surely not posted" error.
			return PublishResult{}, temporal.NewApplicationErrorWithCause("store the publishing state: "+err.Error(), ErrTypePublishRetryable, err)
		}
	}
	res, err := a.Publisher.Publish(ctx, in)
	if err != nil {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			// The SDK keeps an application error's type only when it is
			// returned as is, not wrapped.
			return PublishResult{}, appErr
		}
		return PublishResult{}, temporal.NewApplicationErrorWithCause(err.Error(), ErrTypePublishRetryable, err)
	}
	return res, nil
}

// PublishRejected is the error a Publisher returns when the network refused
// the post for good (bad content, bad credentials): the post becomes failed
// with message as its last error. message must be safe to show (no secrets).
func PublishRejected(message string) error {
	return temporal.NewNonRetryableApplicationError(message, ErrTypePublishRejected, nil)
}

// PublishUnknown is the error a Publisher returns when it cannot know whether
// the post went out, even after looking it up: the post becomes
// needs_attention and is never published blindly again.
func PublishUnknown(message string) error {
	return temporal.NewNonRetryableApplicationError(message, ErrTypePublishUnknown, nil)
}

// NotifyRetryAfter is the error a Notifier returns when it was rate limited
// (Slack 429 with Retry-After): the activity is retried after that delay.
func NotifyRetryAfter(message string, after time.Duration) error {
	return temporal.NewApplicationErrorWithOptions(message, "RateLimited", temporal.ApplicationErrorOptions{NextRetryDelay: after})
}

// LogNotifier writes notifications to a slog.Logger: the notifier when Slack
// is not configured.
type LogNotifier struct {
	Logger *slog.Logger
}

// Notify logs n.
func (l LogNotifier) Notify(ctx context.Context, n Notification) error {
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	attrs := []slog.Attr{
		slog.String("kind", string(n.Kind)),
		slog.String("org", n.OrgID),
		slog.String("post_id", n.PostID),
		slog.String("workflow_id", countersign.WorkflowID(n.PostID)),
		slog.String("account_id", n.AccountID),
		slog.Int("revision", n.Revision),
	}
	if n.Step > 0 {
		attrs = append(attrs, slog.String("step", fmt.Sprintf("%d/%d", n.Step, n.TotalSteps)))
	}
	if len(n.MemberIDs) > 0 {
		attrs = append(attrs, slog.Any("members", n.MemberIDs))
	}
	if n.TeamID != "" {
		attrs = append(attrs, slog.String("team", n.TeamID))
	}
	if n.Deadline != nil {
		attrs = append(attrs, slog.Time("deadline", *n.Deadline))
	}
	if n.ScheduledAt != nil {
		attrs = append(attrs, slog.Time("scheduled_at", *n.ScheduledAt))
	}
	if n.Actor != "" {
		attrs = append(attrs, slog.String("actor", n.Actor))
	}
	if n.Detail != "" {
		attrs = append(attrs, slog.String("detail", n.Detail))
	}
	if n.ExternalURL != "" {
		attrs = append(attrs, slog.String("url", n.ExternalURL))
	}
	logger.LogAttrs(ctx, slog.LevelInfo, "notification", attrs...)
	return nil
}
