// Package postflow starts post workflows and keeps the database and Temporal
// in agreement: the API starts a workflow right after inserting its post, and
// the reconciler starts any whose start was lost (a crash in between).
package postflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/workflows"
)

// Start starts the post's workflow. Starting a post that already has one,
// running or closed, is a no-op.
func Start(ctx context.Context, tc client.Client, p store.UnstartedPost, summary string) error {
	_, err := tc.ExecuteWorkflow(ctx, startOptions(p, summary), cs.WorkflowType, input(p))
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil // it ran before: nothing to do
	}
	if err != nil {
		return fmt.Errorf("start workflow %s: %w", cs.WorkflowID(p.ID), err)
	}
	return nil
}

// ErrNoAnswer wraps a submission whose workflow started (or may have) but
// whose "submitted" Update was not answered in time: no worker polls, or an
// old worker without the Update.
var ErrNoAnswer = errors.New("the workflow did not answer the submission in time")

// StartWithUpdate starts the post's workflow with the Update "submitted"
// (Update-With-Start, conflict policy USE_EXISTING) and returns the state it
// answers: step 1 open with its eligible approvers, or scheduled. It waits
// for the answer at most wait. The error wraps ErrNoAnswer when the start
// happened but the Update was not answered; any other error leaves the
// start's outcome to Exists (a client-side timeout may hide a start).
func StartWithUpdate(ctx context.Context, tc client.Client, p store.UnstartedPost, summary string, wait time.Duration) (cs.PostState, error) {
	var st cs.PostState
	op := tc.NewWithStartWorkflowOperation(startOptions(p, summary), cs.WorkflowType, input(p))
	uctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	h, err := tc.UpdateWithStartWorkflow(uctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: op,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateID: "submitted", UpdateName: cs.UpdateSubmitted, WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err == nil {
		err = h.Get(uctx, &st)
	}
	if err == nil {
		return st, nil
	}
	// Whether the start happened: known once the server answered it.
	gctx, gcancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer gcancel()
	if _, serr := op.Get(gctx); serr == nil || isAlreadyStarted(serr) {
		return st, fmt.Errorf("%w: %w", ErrNoAnswer, err)
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) && strings.Contains(app.Error(), "unknown update") {
		return st, fmt.Errorf("%w: %w", ErrNoAnswer, err)
	}
	return st, fmt.Errorf("start workflow %s: %w", cs.WorkflowID(p.ID), err)
}

func isAlreadyStarted(err error) bool {
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	return errors.As(err, &started)
}

// Refused reports whether err from a start is Temporal's definite refusal
// (the start surely did not happen), as opposed to no answer.
func Refused(err error) bool {
	var (
		inv  *serviceerror.InvalidArgument
		nsnf *serviceerror.NamespaceNotFound
		perm *serviceerror.PermissionDenied
		pre  *serviceerror.FailedPrecondition
	)
	return errors.As(err, &inv) || errors.As(err, &nsnf) || errors.As(err, &perm) || errors.As(err, &pre)
}

func input(p store.UnstartedPost) workflows.PostInput {
	return workflows.PostInput{
		PostID: p.ID, OrgID: p.OrgID, AccountID: p.AccountID, AuthorID: p.AuthorID, Revision: 1,
		Text: p.Text, MediaURLs: p.MediaURLs, Media: p.Media, ContentHash: cs.ContentHash(p.Text, p.MediaURLs, p.Media...),
		ScheduledAt: p.ScheduledAt, Chain: p.Chain, NeedsApproval: p.NeedsApproval,
	}
}

// startOptions start the post's workflow at most once: a repeated start
// finds the running one (USE_EXISTING) or is refused (a closed one).
func startOptions(p store.UnstartedPost, summary string) client.StartWorkflowOptions {
	status := cs.PostScheduled
	if p.NeedsApproval {
		status = cs.PostPendingApproval
	}
	attrs := []temporal.SearchAttributeUpdate{
		workflows.SAOrg.ValueSet(p.OrgID), workflows.SAAccount.ValueSet(p.AccountID),
		workflows.SAAuthor.ValueSet(p.AuthorID), workflows.SAStatus.ValueSet(string(status)),
	}
	if p.ScheduledAt != nil {
		attrs = append(attrs, workflows.SAScheduledAt.ValueSet(*p.ScheduledAt))
	}
	return client.StartWorkflowOptions{
		ID:                       cs.WorkflowID(p.ID),
		TaskQueue:                cs.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes:    temporal.NewSearchAttributes(attrs...),
		StaticSummary:            summary,
	}
}

// Exists reports whether the post's workflow exists (running or closed). A
// start that failed on the client side (a timeout) may still have happened.
func Exists(ctx context.Context, tc client.Client, postID string) (bool, error) {
	_, err := tc.DescribeWorkflowExecution(ctx, cs.WorkflowID(postID), "")
	var nf *serviceerror.NotFound
	var nsnf *serviceerror.NamespaceNotFound
	if errors.As(err, &nf) || errors.As(err, &nsnf) {
		return false, nil
	}
	return err == nil, err
}

// Reconciler starts the workflows of posts whose start was never confirmed.
type Reconciler struct {
	Store    *store.Store
	Temporal client.Client
	Logger   *slog.Logger
	// Grace is how old an unstarted post must be before the reconciler acts,
	// so it does not race the API's own start.
	Grace    time.Duration
	Interval time.Duration
	// RepairEvery: look for ended workflows every this many passes (0: never).
	RepairEvery int
	// Backoff is the wait before retrying a post whose start failed,
	// doubled with each failure up to MaxBackoff (defaults: 1 min, 1 h).
	Backoff, MaxBackoff time.Duration
}

// Run reconciles until ctx is done: lost starts every Interval, ended
// workflows every RepairEvery passes (that pass asks Temporal about every
// open post, so it runs less often).
func (r *Reconciler) Run(ctx context.Context) {
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for pass := 0; ; pass++ {
		n, err := r.startLost(ctx)
		if err == nil && r.RepairEvery > 0 && pass%r.RepairEvery == 0 {
			var m int
			m, err = r.repairEnded(ctx)
			n += m
		}
		if err != nil {
			r.Logger.Error("reconcile posts", "error", err)
		} else if n > 0 {
			r.Logger.Warn("reconciler started or repaired posts", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once starts every post whose start was lost and repairs every post whose
// workflow ended without mirroring its end; it returns how many it started
// or repaired. A post that cannot start is logged and put off; it neither
// stops the others nor the repair.
func (r *Reconciler) Once(ctx context.Context) (int, error) {
	started, err := r.startLost(ctx)
	repaired, rerr := r.repairEnded(ctx)
	return started + repaired, errors.Join(err, rerr)
}

// startLost starts every post whose workflow start was never confirmed and
// whose back-off has passed. A start that fails puts that post off (longer
// at each failure) and the pass goes on with the rest; only a database error
// ends it.
func (r *Reconciler) startLost(ctx context.Context) (int, error) {
	base, max := r.Backoff, r.MaxBackoff
	if base <= 0 {
		base = time.Minute
	}
	if max <= 0 {
		max = time.Hour
	}
	n := 0
	for {
		posts, err := r.Store.UnstartedPosts(ctx, r.Grace, 100)
		if err != nil || len(posts) == 0 {
			return n, err
		}
		for _, p := range posts {
			logger := r.Logger.With("org", p.OrgID, "post_id", p.ID, "workflow_id", cs.WorkflowID(p.ID))
			if err := StartKept(ctx, r.Store, r.Temporal, p); err != nil {
				if ctx.Err() != nil {
					return n, ctx.Err()
				}
				// Put it off before anything else, so the next query moves on.
				attempts, derr := r.Store.DeferStart(ctx, p.ID, base, max)
				if derr != nil {
					return n, derr
				}
				logger.Error("reconciler could not start post workflow; retrying later", "attempts", attempts, "error", err)
				continue
			}
			logger.Info("reconciler started post workflow")
			n++
		}
	}
}

// StartKept starts the workflow of a post kept without a confirmed start (a
// no-op if it runs) and records the start.
func StartKept(ctx context.Context, st *store.Store, tc client.Client, p store.UnstartedPost) error {
	if err := Start(ctx, tc, p, keptSummary(ctx, st, p)); err != nil {
		return err
	}
	return st.MarkPostStarted(ctx, p.ID)
}

// keptSummary is the workflow's static summary, with names where they can
// still be read (the account or author may be gone by now).
func keptSummary(ctx context.Context, st *store.Store, p store.UnstartedPost) string {
	handle, author := p.AccountID, p.AuthorID
	if a, err := st.Account(ctx, p.OrgID, p.AccountID); err == nil {
		handle = a.Handle
	}
	if m, err := st.Member(ctx, p.OrgID, p.AuthorID); err == nil {
		author = m.Name
	}
	return cs.WorkflowSummary(handle, author, p.Text)
}

// repairEnded finds posts the database believes open whose workflow has
// closed: a completed workflow's result is mirrored; one that ended without
// a result (terminated, timed out, failed) is flagged needs_attention.
func (r *Reconciler) repairEnded(ctx context.Context) (int, error) {
	n, after := 0, ""
	for {
		posts, err := r.Store.OpenPosts(ctx, r.Grace, after, 100)
		if err != nil || len(posts) == 0 {
			return n, err
		}
		after = posts[len(posts)-1].ID
		for _, p := range posts {
			repaired, err := r.repair(ctx, p)
			if err != nil {
				r.Logger.Error("reconcile post", "org", p.OrgID, "post_id", p.ID, "workflow_id", cs.WorkflowID(p.ID), "error", err)
				continue
			}
			if repaired {
				n++
			}
		}
	}
}

func (r *Reconciler) repair(ctx context.Context, p store.OpenPost) (bool, error) {
	id := cs.WorkflowID(p.ID)
	desc, err := r.Temporal.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		// Gone (retention passed, or never existed although marked started).
		return true, r.Store.FlagPost(ctx, p.ID, "the post's workflow no longer exists in Temporal")
	}
	if err != nil {
		return false, err
	}
	status := desc.GetWorkflowExecutionInfo().GetStatus()
	logger := r.Logger.With("org", p.OrgID, "post_id", p.ID, "workflow_id", id, "workflow_status", status.String())
	switch status {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return false, nil
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		var st cs.PostState
		if err := r.Temporal.GetWorkflow(ctx, id, "").Get(ctx, &st); err != nil {
			return false, err
		}
		st.Closed = true
		if err := r.Store.SavePostState(ctx, p.ID, st, nil); err != nil {
			return false, err
		}
		logger.Warn("mirrored the end of a workflow that had not recorded it", "status", st.Status)
		return true, nil
	default:
		reason := fmt.Sprintf("the workflow ended %s without recording the post's end; look at its history", strings.ToLower(strings.TrimPrefix(status.String(), "WORKFLOW_EXECUTION_STATUS_")))
		logger.Error("flagged a post whose workflow ended without recording its end")
		return true, r.Store.FlagPost(ctx, p.ID, reason)
	}
}
