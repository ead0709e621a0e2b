// Package postflow starts post workflows and keeps the database and Temporal
// in agreement: the API starts a workflow right after inserting its post, and
// the reconciler starts any whose start was lost (a crash in between).
package postflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	in := workflows.PostInput{
		PostID: p.ID, OrgID: p.OrgID, AccountID: p.AccountID, AuthorID: p.AuthorID, Revision: 1,
		Text: p.Text, MediaURLs: p.MediaURLs, ContentHash: cs.ContentHash(p.Text, p.MediaURLs),
		ScheduledAt: p.ScheduledAt, Chain: p.Chain, NeedsApproval: p.NeedsApproval,
	}
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
	_, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       cs.WorkflowID(p.ID),
		TaskQueue:                cs.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes:    temporal.NewSearchAttributes(attrs...),
		StaticSummary:            summary,
	}, cs.WorkflowType, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil // it ran before: nothing to do
	}
	if err != nil {
		return fmt.Errorf("start workflow %s: %w", cs.WorkflowID(p.ID), err)
	}
	return nil
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
}

// Run reconciles every Interval until ctx is done.
func (r *Reconciler) Run(ctx context.Context) {
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		if n, err := r.Once(ctx); err != nil {
			r.Logger.Error("reconcile unstarted posts", "error", err)
		} else if n > 0 {
			r.Logger.Warn("started workflows of posts whose start was lost", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once starts every post that needs it and returns how many it started.
func (r *Reconciler) Once(ctx context.Context) (int, error) {
	n := 0
	for {
		posts, err := r.Store.UnstartedPosts(ctx, r.Grace, 100)
		if err != nil || len(posts) == 0 {
			return n, err
		}
		for _, p := range posts {
			if err := Start(ctx, r.Temporal, p, r.summary(ctx, p)); err != nil {
				return n, err
			}
			if err := r.Store.MarkPostStarted(ctx, p.ID); err != nil {
				return n, err
			}
			r.Logger.Info("reconciler started post workflow", "post_id", p.ID, "workflow_id", cs.WorkflowID(p.ID))
			n++
		}
	}
}

// summary is the workflow's static summary, with names where they can still
// be read (the account or author may be gone by now).
func (r *Reconciler) summary(ctx context.Context, p store.UnstartedPost) string {
	handle, author := p.AccountID, p.AuthorID
	if a, err := r.Store.Account(ctx, p.OrgID, p.AccountID); err == nil {
		handle = a.Handle
	}
	if m, err := r.Store.Member(ctx, p.OrgID, p.AuthorID); err == nil {
		author = m.Name
	}
	return cs.WorkflowSummary(handle, author, p.Text)
}
