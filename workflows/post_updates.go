package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
)

// Version 2 ("updates"): the Workflow Updates of SPEC §3 item 4, edits
// re-authorized with the editor's current right, the revision's writer kept
// out of its approval, and continue-as-new.
//
// One authority: the Updates decide, edit, reschedule and cancel and the
// signals of the same names reach the same function per kind (onDecision,
// onEdit, onReschedule, onCancel). A signal is handled by the main loop when
// it arrives; an Update's handler queues a request on reqCh, which the main
// loop takes in the same select, so requests and signals are handled one at
// a time, in order, and the handler waits for its own answer: the post's
// state once the transition it caused is saved, or the refusal. A validator
// refuses first, without writing history, what the state alone can tell (the
// same checks the function then applies again, as the state may change
// between the two).
const versionUpdates = "updates"

// maxQueued bounds the Updates waiting for the main loop; past it an Update
// is refused with rate_limited (the API's limiter should stop them before).
const maxQueued = 100

// maxSeenCarried bounds the request ids a run carries into the next: a
// repeated request comes within seconds (the API's fallback after 5 s).
const maxSeenCarried = 1000

// refusal is why a decision or change was not applied: a Reason* code and
// the sentence to show.
type refusal struct{ reason, detail string }

// err is the refusal as an Update answers it: a non-retryable application
// error whose type is the reason code.
func (r *refusal) err() error {
	if r == nil {
		return nil
	}
	return temporal.NewApplicationErrorWithOptions(r.detail, r.reason, temporal.ApplicationErrorOptions{NonRetryable: true})
}

// request is one Update waiting for the main loop, then for its answer.
type request struct {
	kind     string
	decision countersign.DecisionSignal
	edit     countersign.EditSignal
	resched  countersign.RescheduleSignal
	cancel   countersign.CancelSignal

	done bool
	st   countersign.PostState
	err  error
}

// process hands a request to its kind's function; it is answered once the
// transition is saved (answer).
func (p *post) process(ctx workflow.Context, r *request) {
	var ref *refusal
	switch r.kind {
	case countersign.UpdateDecide:
		ref = p.onDecision(ctx, r.decision)
	case countersign.UpdateEdit:
		ref = p.onEdit(ctx, r.edit)
	case countersign.UpdateReschedule:
		ref = p.onReschedule(ctx, r.resched)
	case countersign.UpdateCancel:
		ref = p.onCancel(ctx, r.cancel)
	}
	r.err = ref.err()
	p.answering = append(p.answering, r)
}

// answer gives every processed request the post's state as it is now (a
// copy: the main loop goes on changing its own).
func (p *post) answer() {
	p.saved = true
	if len(p.answering) == 0 {
		return
	}
	st := cloneState(p.st)
	for _, r := range p.answering {
		r.st, r.done = st, true
	}
	p.answering = nil
}

// setUpdateHandlers registers the Updates; they must be registered before the
// workflow first blocks, so an Update-With-Start finds them.
func (p *post) setUpdateHandlers(ctx workflow.Context) error {
	if err := setUpdate(ctx, p, countersign.UpdateDecide, p.validateDecision,
		func(d countersign.DecisionSignal) *request {
			return &request{kind: countersign.UpdateDecide, decision: d}
		}); err != nil {
		return err
	}
	if err := setUpdate(ctx, p, countersign.UpdateEdit, p.checkEdit,
		func(e countersign.EditSignal) *request { return &request{kind: countersign.UpdateEdit, edit: e} }); err != nil {
		return err
	}
	if err := setUpdate(ctx, p, countersign.UpdateReschedule,
		func(r countersign.RescheduleSignal) *refusal {
			return p.checkChange("reschedule", r.Revision, r.RequestID)
		},
		func(r countersign.RescheduleSignal) *request {
			return &request{kind: countersign.UpdateReschedule, resched: r}
		}); err != nil {
		return err
	}
	if err := setUpdate(ctx, p, countersign.UpdateCancel,
		func(c countersign.CancelSignal) *refusal { return p.checkChange("cancel", c.Revision, c.RequestID) },
		func(c countersign.CancelSignal) *request { return &request{kind: countersign.UpdateCancel, cancel: c} }); err != nil {
		return err
	}
	// submitted answers once the submission is processed and saved (step 1
	// open with its eligible approvers, or scheduled / publishing).
	return workflow.SetUpdateHandler(ctx, countersign.UpdateSubmitted, func(ctx workflow.Context) (countersign.PostState, error) {
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		if err := workflow.Await(dctx, func() bool { return p.saved }); err != nil {
			return countersign.PostState{}, err
		}
		return cloneState(p.st), nil
	})
}

// setUpdate registers one Update: the validator refuses what the state can
// tell, the handler queues the request for the main loop and waits for its
// answer. The wait is not canceled with the workflow: a queued request is
// processed (and answered) whatever happens.
func setUpdate[T any](ctx workflow.Context, p *post, name string, validate func(T) *refusal, wrap func(T) *request) error {
	return workflow.SetUpdateHandlerWithOptions(ctx, name,
		func(ctx workflow.Context, v T) (countersign.PostState, error) {
			r := wrap(v)
			if !p.reqCh.SendAsync(r) {
				return countersign.PostState{}, busy().err()
			}
			dctx, _ := workflow.NewDisconnectedContext(ctx)
			if err := workflow.Await(dctx, func() bool { return r.done }); err != nil {
				return countersign.PostState{}, err
			}
			return r.st, r.err
		},
		workflow.UpdateHandlerOptions{Validator: func(v T) error {
			if p.reqCh.Len() >= maxQueued {
				return busy().err()
			}
			return validate(v).err()
		}})
}

func busy() *refusal {
	return &refusal{countersign.ReasonRateLimited, "too many changes are waiting for this post; try again in a moment"}
}

// validateDecision is the decide validator: precheck on the state as it is.
func (p *post) validateDecision(d countersign.DecisionSignal) *refusal {
	if reason, detail := p.precheck(p.onBehalf(d)); reason != "" {
		return &refusal{reason, detail}
	}
	return nil
}

// checkEdit is what the state can tell about an edit; before version 2 only
// too late, stale revision and same content were checked.
func (p *post) checkEdit(e countersign.EditSignal) *refusal {
	switch {
	case p.tooLate():
		return &refusal{countersign.ReasonTooLate, fmt.Sprintf("the post is %s", p.st.Status)}
	case p.v2 && e.RequestID != "" && p.seen[e.RequestID]:
		return duplicate(e.RequestID)
	case e.Revision != 0 && e.Revision != p.st.Revision:
		return &refusal{countersign.ReasonStaleRevision, fmt.Sprintf("edit of revision %d, the post is at revision %d", e.Revision, p.st.Revision)}
	case !e.Reschedule && countersign.ContentHash(e.Text, e.MediaURLs, p.editMedia(e)...) == p.st.ContentHash:
		return &refusal{countersign.ReasonUnchanged, "same content: approvals kept"}
	}
	return nil
}

// checkChange is what the state can tell about a reschedule or a cancel;
// before version 2 only too late was checked.
func (p *post) checkChange(what string, revision int, requestID string) *refusal {
	switch {
	case p.tooLate():
		return &refusal{countersign.ReasonTooLate, fmt.Sprintf("the post is %s", p.st.Status)}
	case !p.v2:
	case requestID != "" && p.seen[requestID]:
		return duplicate(requestID)
	case revision != 0 && revision != p.st.Revision:
		return &refusal{countersign.ReasonStaleRevision, fmt.Sprintf("%s of revision %d, the post is at revision %d", what, revision, p.st.Revision)}
	}
	return nil
}

func duplicate(requestID string) *refusal {
	return &refusal{countersign.ReasonDuplicateRequest, fmt.Sprintf("request %s was already handled", requestID)}
}

// markSeen remembers a handled request id (a repeat then counts once).
func (p *post) markSeen(id string) {
	if id == "" || p.seen[id] {
		return
	}
	p.seen[id] = true
	p.seenIDs = append(p.seenIDs, id)
}

// notAwaited is true when the state alone shows the decision cannot be
// awaited: a member step asks one member (until its fallback opens), who
// decides or (later) has a delegate decide on their behalf. Team and role
// steps are decided by the directory at the decision (who belongs now).
func (p *post) notAwaited(d countersign.DecisionSignal) bool {
	s := p.step()
	return s.Approver.Member != "" && !s.FallbackActive && s.Approver.Member != d.MemberID && s.Approver.Member != d.OnBehalfOf
}

// authorizeChange asks the directory (a local activity) whether by may make
// the change now; for an edit, also whether its MAC is valid.
func (p *post) authorizeChange(ctx workflow.Context, kind, by string, e *countersign.EditSignal) (activities.AuthorizeChangeResult, error) {
	var res activities.AuthorizeChangeResult
	err := p.dbActivity(ctx, kind+" by "+by, 2*time.Minute, acts.AuthorizeChange, activities.AuthorizeChangeRequest{
		OrgID: p.in.OrgID, AccountID: p.in.AccountID, PostID: p.in.PostID, AuthorID: p.in.AuthorID,
		MemberID: by, Kind: kind, Edit: e,
	}).Get(ctx, &res)
	return res, err
}

// authorizeMember authorizes a reschedule or cancel sent by a member through
// the API or Slack with that member's current right (version 2); operators'
// (source temporal, or no member named) need no check. A refusal is recorded.
func (p *post) authorizeMember(ctx workflow.Context, kind, by, src, requestID string) *refusal {
	if !p.v2 {
		return nil
	}
	if src == countersign.SourceTemporal || by == "" {
		p.markSeen(requestID)
		return nil
	}
	res, err := p.authorizeChange(ctx, kind, by, nil)
	if err != nil {
		return p.ignoreSignal(ctx, kind, by, src, &refusal{countersign.ReasonAuthorizeFailed, "could not check the " + kind + ": " + err.Error()})
	}
	p.markSeen(requestID)
	if !res.Allowed {
		return p.ignoreSignal(ctx, kind, by, src, &refusal{res.Code, res.Reason})
	}
	return nil
}

// --- continue-as-new --------------------------------------------------------

// Continued is what a run carries into the next when it continues as new:
// everything the workflow knows that its input does not say.
type Continued struct {
	State         countersign.PostState   `json:"state"`
	Seq           int                     `json:"seq"`
	Seen          []string                `json:"seen,omitempty"`
	NeedsApproval bool                    `json:"needs_approval"`
	PhaseLen      time.Duration           `json:"phase_len"`
	Reminded      bool                    `json:"reminded"`
	RejectedAt    time.Time               `json:"rejected_at"`
	Since         time.Time               `json:"since"`
	GraceUntil    *time.Time              `json:"grace_until,omitempty"`
	Pending       []countersign.PostEvent `json:"pending,omitempty"`
	// DirVer, DirAt and Dels are versionDirectory's bookkeeping.
	DirVer int                      `json:"dir_ver,omitempty"`
	DirAt  time.Time                `json:"dir_at,omitzero"`
	Dels   []countersign.Delegation `json:"dels,omitempty"`
	// SA are the search attribute values last upserted: the next run
	// inherits the attributes and upserts only what changes.
	SA struct {
		Status    string    `json:"status"`
		Step      int64     `json:"step"`
		Approvers []string  `json:"approvers"`
		Deadline  time.Time `json:"deadline"`
		Scheduled time.Time `json:"scheduled"`
	} `json:"sa"`
}

// continueDue says whether this run should end and continue as new: Temporal
// suggests it (the history grows long), or the test bound is reached. Never
// while publishing or once the post ended.
func (p *post) continueDue(ctx workflow.Context) bool {
	if !p.v2 || p.done || p.st.Status == countersign.PostPublishing || ctx.Err() != nil {
		return false
	}
	return workflow.GetInfo(ctx).GetContinueAsNewSuggested() || (p.in.InputsPerRun > 0 && p.inputs >= p.in.InputsPerRun)
}

// readyToContinue handles what is still waiting (one signal or request per
// call, through the main loop's select) and reports true once nothing is
// waiting and every Update handler has answered, so nothing is lost.
func (p *post) readyToContinue(ctx workflow.Context) bool {
	if p.waiting() {
		p.waitNext(ctx)
		return false
	}
	p.syncSearchAttributes(ctx) // the wait may end the workflow task
	if err := workflow.Await(ctx, func() bool { return p.waiting() || workflow.AllHandlersFinished(ctx) }); err != nil {
		return false // canceled from Temporal: the loop handles it
	}
	return !p.waiting()
}

// waiting reports signals or requests not taken yet.
func (p *post) waiting() bool {
	return p.decisionCh.Len()+p.editCh.Len()+p.rescheduleCh.Len()+p.cancelCh.Len()+p.reqCh.Len()+p.dirCh.Len() > 0
}

// carry is the next run's input.
func (p *post) carry() PostInput {
	in := p.in
	seen := p.seenIDs
	if len(seen) > maxSeenCarried {
		seen = seen[len(seen)-maxSeenCarried:]
	}
	c := &Continued{State: cloneState(p.st), Seq: p.seq, Seen: slices.Clone(seen), NeedsApproval: p.needsApproval,
		PhaseLen: p.phaseLen, Reminded: p.reminded, RejectedAt: p.rejectedAt, Since: p.since, Pending: p.pending, GraceUntil: p.graceUntil,
		DirVer: p.dirVer, DirAt: p.dirAt, Dels: p.dels}
	c.SA.Status, c.SA.Step, c.SA.Approvers, c.SA.Deadline, c.SA.Scheduled =
		p.sa.status, p.sa.step, p.sa.approvers, p.sa.deadline, p.sa.scheduled
	in.Continued = c
	return in
}

// resume takes up the state a previous run carried.
func (p *post) resume(ctx workflow.Context, c Continued) {
	p.st, p.seq, p.needsApproval = c.State, c.Seq, c.NeedsApproval
	p.phaseLen, p.reminded, p.rejectedAt, p.since, p.pending = c.PhaseLen, c.Reminded, c.RejectedAt, c.Since, c.Pending
	p.graceUntil = c.GraceUntil
	p.dirVer, p.dirAt, p.dels = c.DirVer, c.DirAt, c.Dels
	for _, id := range c.Seen {
		p.markSeen(id)
	}
	p.sa = saValues{status: c.SA.Status, step: c.SA.Step, approvers: c.SA.Approvers, deadline: c.SA.Deadline, scheduled: c.SA.Scheduled}
	p.saSet, p.saved = true, true
	workflow.SetCurrentDetails(ctx, p.details())
}

// cloneState copies the state deep enough that later changes to the
// workflow's own do not reach the copy.
func cloneState(st countersign.PostState) countersign.PostState {
	st.MediaURLs = slices.Clone(st.MediaURLs)
	st.Media = slices.Clone(st.Media)
	st.Awaited = slices.Clone(st.Awaited)
	steps := make([]countersign.StepState, len(st.Steps))
	for i, s := range st.Steps {
		s.Eligible, s.FallbackEligible = slices.Clone(s.Eligible), slices.Clone(s.FallbackEligible)
		s.Approvals = slices.Clone(s.Approvals)
		s.Delegates = slices.Clone(s.Delegates)
		steps[i] = s
	}
	st.Steps = steps
	return st
}
