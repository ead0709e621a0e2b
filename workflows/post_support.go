package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
)

// This file holds what post.go's transitions lean on: the alarm (one
// cancellable timer), activity calls, search attributes, the UI's current
// details, and small pure helpers.

// --- the alarm --------------------------------------------------------------

// alarm is the one timer the workflow may have running. set replaces it when
// the time changes and stop cancels it, so no timer is ever left behind (the
// SDK's AwaitWithTimeout would leave its timer running).
type alarm struct {
	at     time.Time
	what   string
	f      workflow.Future
	cancel workflow.CancelFunc
}

// set makes the alarm fire at at (zero: no alarm). A running timer for the
// same time and purpose is kept; any other is canceled first.
func (a *alarm) set(ctx workflow.Context, at time.Time, what string) {
	if a.f != nil && at.Equal(a.at) && what == a.what {
		return
	}
	a.stop()
	if at.IsZero() {
		return
	}
	a.at, a.what = at, what
	d := at.Sub(workflow.Now(ctx))
	if d <= 0 { // already due: fire at once, without a timer
		f, s := workflow.NewFuture(ctx)
		s.Set(nil, nil)
		a.f, a.cancel = f, func() {}
		return
	}
	tctx, cancel := workflow.WithCancel(ctx)
	a.f = workflow.NewTimerWithOptions(tctx, d, workflow.TimerOptions{Summary: what})
	a.cancel = cancel
}

// stop cancels the running timer, if any.
func (a *alarm) stop() {
	if a.f != nil && !a.f.IsReady() {
		a.cancel()
	}
	*a = alarm{}
}

// fired forgets the timer that just fired.
func (a *alarm) fired() { *a = alarm{} }

// --- activities -------------------------------------------------------------

// dbActivity runs an activity that only reads or writes the database,
// retried until giveUp (0: without limit, so an outage pauses the post). From
// version 1 it is a local activity: it runs inside the workflow task, so it
// costs no activity task and no further workflow task.
func (p *post) dbActivity(ctx workflow.Context, summary string, giveUp time.Duration, fn, arg any) workflow.Future {
	retry := &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second}
	if !p.lean {
		return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 30 * time.Second, ScheduleToCloseTimeout: giveUp, RetryPolicy: retry, Summary: summary,
		}), fn, arg)
	}
	return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 30 * time.Second, ScheduleToCloseTimeout: giveUp, RetryPolicy: retry, Summary: summary,
	}), fn, arg)
}

// resolve returns the members an approver stands for now, sorted.
func (p *post) resolve(ctx workflow.Context, a countersign.Approver) []string {
	var res activities.ResolveApproversResult
	err := p.dbActivity(ctx, "resolve "+a.String(), 0, acts.ResolveApprovers,
		activities.ResolveApproversInput{OrgID: p.in.OrgID, AccountID: p.in.AccountID, PostID: p.in.PostID, Approver: a},
	).Get(ctx, &res)
	if err != nil {
		workflow.GetLogger(ctx).Error("resolving approvers failed", "approver", a.String(), "error", err)
	}
	return union(res.MemberIDs)
}

// authorize asks the directory whether the member may decide now. It gives up
// after two minutes: the decision is then ignored (and may be sent again).
// next, when set, is the approver of the step this approval would open.
func (p *post) authorize(ctx workflow.Context, d, sent countersign.DecisionSignal, next *countersign.Approver) (activities.AuthorizeResult, error) {
	s := p.step()
	req := activities.AuthorizeRequest{OrgID: p.in.OrgID, AccountID: p.in.AccountID, PostID: p.in.PostID,
		AuthorID: p.in.AuthorID, MemberID: d.MemberID, Revision: d.Revision, Step: d.Step, Approver: s.Approver,
		ResolveNext: next, Decision: &sent, OnBehalfOf: d.OnBehalfOf}
	if s.FallbackActive {
		req.FallbackTeam = s.FallbackTeam
	}
	if p.chain.DistinctApprovers {
		req.EarlierApprovers = p.earlierApprovers()
	}
	var res activities.AuthorizeResult
	err := p.dbActivity(ctx, "authorize "+d.MemberID, 2*time.Minute, acts.AuthorizeDecision, req).Get(ctx, &res)
	return res, err
}

// notify sends a notification, filling in the post's details: from version 1
// with the transition's save, before it as an activity of its own. A
// notification that cannot be sent within two minutes is logged and dropped:
// telling people never holds a post back.
func (p *post) notify(ctx workflow.Context, n activities.Notification) {
	n.PostID, n.OrgID, n.AccountID, n.AuthorID = p.in.PostID, p.in.OrgID, p.in.AccountID, p.in.AuthorID
	if n.Revision == 0 {
		n.Revision = p.st.Revision
	}
	n.Step, n.TotalSteps = p.st.CurrentStep, p.st.TotalSteps
	n.Text, n.ScheduledAt = p.st.Text, p.st.ScheduledAt
	n.MemberIDs = union(n.MemberIDs)
	if p.lean {
		p.outbox = append(p.outbox, n)
		return
	}
	if ctx.Err() != nil {
		ctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: activities.NotifyBound,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second},
		Summary:                "notify " + string(n.Kind),
	})
	if err := workflow.ExecuteActivity(actx, acts.Notify, n).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("notification not sent", "kind", n.Kind, "error", err)
	}
}

// --- who --------------------------------------------------------------------

// step is the current step's state; chainStep its definition.
func (p *post) step() *countersign.StepState     { return &p.st.Steps[p.st.CurrentStep-1] }
func (p *post) chainStep() countersign.ChainStep { return p.chain.Steps[p.st.CurrentStep-1] }

// awaited are the members whose decision the current step still waits for:
// its (and, once open, its fallback's) members, minus who already approved,
// the author, (from version 2) the revision's writer, and earlier approvers
// when approvers must be distinct. This is the one computation of who is
// awaited: the state's Awaited, PostApprovers and the reminders use it.
//
// From versionDirectory it adds the delegates of awaited members away now,
// and is empty while the step cannot be satisfied (post_directory.go).
func (p *post) awaited() []string {
	if p.st.Status != countersign.PostPendingApproval {
		return nil
	}
	if p.step().Unsatisfiable != "" {
		return nil
	}
	out := p.principals()
	if ds := p.delegatesAwaited(out); len(ds) > 0 {
		return union(out, ds)
	}
	return out
}

// earlierApprovers approved a step before the current one, this revision.
func (p *post) earlierApprovers() []string {
	var ids []string
	for _, s := range p.st.Steps[:max(p.st.CurrentStep-1, 0)] {
		for _, a := range s.Approvals {
			ids = append(ids, a.MemberID, a.OnBehalfOf)
		}
	}
	return union(ids)
}

// involvedApprovers are everyone asked to decide on this revision so far.
func (p *post) involvedApprovers() []string {
	var ids []string
	for _, s := range p.st.Steps {
		ids = append(ids, s.Eligible...)
		ids = append(ids, s.FallbackEligible...)
		for _, a := range s.Approvals {
			ids = append(ids, a.MemberID)
		}
	}
	return union(ids)
}

// involved is the author and every approver involved in this revision.
func (p *post) involved() []string {
	return union(p.involvedApprovers(), []string{p.in.AuthorID})
}

// approvals are the counted approvals of this revision, in step order.
func (p *post) approvals() []countersign.DecisionRecord {
	var out []countersign.DecisionRecord
	for _, s := range p.st.Steps {
		out = append(out, s.Approvals...)
	}
	return out
}

// hasApproval: memberID approved, in person or (versionDirectory) through
// their delegate.
func hasApproval(recs []countersign.DecisionRecord, memberID string) bool {
	return slices.ContainsFunc(recs, func(r countersign.DecisionRecord) bool {
		return r.MemberID == memberID || (memberID != "" && r.OnBehalfOf == memberID)
	})
}

func behalfText(id string) string {
	if id == "" {
		return ""
	}
	return " on behalf of " + id
}

// union returns the sorted, distinct, non-empty ids of lists (never nil).
func union(lists ...[]string) []string {
	out := []string{}
	for _, l := range lists {
		for _, id := range l {
			if id != "" {
				out = append(out, id)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func sourceOr(s string) string {
	if s == "" {
		return countersign.SourceTemporal
	}
	return s
}

// --- what it waits for: state, UI details, search attributes ------------------

// waitingFor says what the current status waits for, and until when.
func (p *post) waitingFor() (string, *time.Time) {
	switch p.st.Status {
	case countersign.PostPendingApproval:
		s := p.step()
		what := fmt.Sprintf("approval of step %d/%d (revision %d) by %s", s.Index, p.st.TotalSteps, p.st.Revision, s.Approver)
		if s.FallbackActive {
			what += " or fallback team " + s.FallbackTeam
		}
		return what, earliest(s.Deadline, p.st.ScheduledAt)
	case countersign.PostScheduled:
		return "the scheduled time", p.st.ScheduledAt
	case countersign.PostOnHold:
		return "a reschedule (approved after the scheduled time)", nil
	case countersign.PostRejected:
		if p.done {
			return "", nil
		}
		end := p.rejectedAt.Add(ResubmissionWindow)
		return fmt.Sprintf("an edit to resubmit (revision %d was rejected)", p.st.Revision), &end
	case countersign.PostPublishing:
		return fmt.Sprintf("the network to publish revision %d", p.st.Revision), nil
	}
	return "", nil
}

// details is the workflow's current details for the Temporal UI (markdown).
func (p *post) details() string {
	// Plain string building: the SDK's workflowcheck takes fmt.Fprintf for I/O.
	var b strings.Builder
	b.WriteString(fmt.Sprintf("**%s** · revision %d", p.st.Status, p.st.Revision))
	if p.st.CurrentStep > 0 {
		b.WriteString(fmt.Sprintf(" · step %d/%d", p.st.CurrentStep, p.st.TotalSteps))
	}
	if p.st.WaitingFor != "" {
		b.WriteString("\n\nWaiting for " + p.st.WaitingFor)
		if p.st.Status == countersign.PostPendingApproval {
			s := p.step()
			b.WriteString(fmt.Sprintf(" — %d/%d approval(s)", len(s.Approvals), s.Quorum))
		}
		until := "no deadline"
		if p.st.Deadline != nil {
			until = "until " + p.st.Deadline.UTC().Format(time.RFC3339)
		}
		b.WriteString("\n\nSince " + p.since.UTC().Format(time.RFC3339) + ", " + until)
	}
	if p.st.Status == countersign.PostPendingApproval && p.step().Unsatisfiable != "" {
		b.WriteString("\n\n**Cannot be satisfied**: " + p.step().Unsatisfiable + ". Nobody is awaited; the org's admins were told.")
	}
	if p.st.ExternalURL != "" {
		b.WriteString("\n\nPublished: " + p.st.ExternalURL)
	}
	if p.st.LastError != "" {
		b.WriteString("\n\nLast error: " + p.st.LastError)
	}
	return b.String()
}

// saValues are the search attribute values last upserted.
type saValues struct {
	status              string
	step                int64
	approvers           []string
	deadline, scheduled time.Time
}

// syncSearchAttributes is where version 3 upserts: wherever the workflow
// task may end (the main loop's wait, a regular activity, the end of the
// run), so every transition of one task costs at most one upsert. Before
// version 3 each transition upserts its own (transition).
func (p *post) syncSearchAttributes(ctx workflow.Context) {
	if !p.v3 {
		return
	}
	if ctx.Err() != nil { // canceled from Temporal: still show the end
		ctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	p.upsertSearchAttributes(ctx)
}

// upsertSearchAttributes upserts the attributes whose value changed, if any.
func (p *post) upsertSearchAttributes(ctx workflow.Context) {
	v := saValues{status: string(p.st.Status), step: int64(p.st.CurrentStep), approvers: p.awaited(),
		deadline: deref(p.st.Deadline), scheduled: deref(p.st.ScheduledAt)}
	first, old := !p.saSet, p.sa
	var ups []temporal.SearchAttributeUpdate
	if first {
		ups = append(ups, SAOrg.ValueSet(p.in.OrgID), SAAccount.ValueSet(p.in.AccountID), SAAuthor.ValueSet(p.in.AuthorID))
	}
	if first || v.status != old.status {
		ups = append(ups, SAStatus.ValueSet(v.status))
	}
	if first || v.step != old.step {
		ups = append(ups, SAStep.ValueSet(v.step))
	}
	if first || !slices.Equal(v.approvers, old.approvers) {
		if len(v.approvers) > 0 {
			ups = append(ups, SAApprovers.ValueSet(v.approvers))
		} else if !first {
			ups = append(ups, SAApprovers.ValueUnset())
		}
	}
	ups = appendTime(ups, SADeadline, first, old.deadline, v.deadline)
	ups = appendTime(ups, SAScheduledAt, first, old.scheduled, v.scheduled)
	p.sa, p.saSet = v, true
	if len(ups) == 0 {
		return
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, ups...); err != nil {
		workflow.GetLogger(ctx).Error("upserting search attributes failed", "error", err)
	}
}

func appendTime(ups []temporal.SearchAttributeUpdate, key temporal.SearchAttributeKeyTime, first bool, old, v time.Time) []temporal.SearchAttributeUpdate {
	switch {
	case !first && old.Equal(v):
		return ups
	case !v.IsZero():
		return append(ups, key.ValueSet(v))
	case !first:
		return append(ups, key.ValueUnset())
	}
	return ups
}

// --- small pure helpers ---------------------------------------------------------

func earliest(ts ...*time.Time) *time.Time {
	var out *time.Time
	for _, t := range ts {
		if t != nil && (out == nil || t.Before(*out)) {
			out = t
		}
	}
	return out
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func timeText(t *time.Time) string {
	if t == nil {
		return "as soon as approved"
	}
	return t.UTC().Format(time.RFC3339)
}

func deadlineText(t *time.Time) string {
	if t == nil {
		return ", no deadline"
	}
	return ", deadline " + t.UTC().Format(time.RFC3339)
}
