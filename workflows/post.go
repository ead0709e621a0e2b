// Package workflows holds the Temporal workflows of Countersign.
//
// PostWorkflow (SPEC §3) is one durable workflow per post: it walks the post
// through its approval chain, sleeps until the scheduled time, publishes once
// and mirrors every transition to Postgres. Read it top to bottom:
//
//	PostWorkflow      the main loop: wait for the next signal or alarm, react
//	submit/openStep   opening the chain and its steps
//	onDecision        authorizing and counting decisions
//	onEdit, ...       the other signals
//	onAlarm           deadlines, reminders, the scheduled time
//	publish           the one publication
//	commit/flush/save one transition: search attributes, details, mirror
//
// Where the SPEC is silent, this is what the workflow does:
//
//   - Eligibility: the member list resolved when a step opens is who gets
//     notified and who PostApprovers shows; the gate is AuthorizeDecision,
//     asked at each decision against the current database (so a member added
//     to the team later may approve, a removed one may not). An approval
//     already counted stays counted if its author is removed afterwards.
//     The list is resolved again after a directory change or at the start
//     or end of an absence (post_directory.go).
//   - Fallback widens the step: the original approvers may still approve,
//     the quorum is unchanged. A step without timeout waits until approved,
//     rejected, edited, canceled or expired by the late policy.
//   - Reminders: one per phase (timeout, then fallback_timeout), when a
//     quarter of that phase is left.
//   - Late policy applies when the last approval arrives after scheduled_at.
//     Once approved, a reschedule means "sleep until then" (a past time or
//     none: publish now), which is also how an on_hold post resumes.
//   - Edit: EditSignal.Revision is the revision the editor saw (0: any). A
//     post that needs no approval keeps its status on edit (new revision).
//   - A rejected post accepts edit (resubmission), reschedule and cancel for
//     ResubmissionWindow, then the workflow ends with status rejected.
//   - Publish is retried for PublishBound from its first attempt. Running out
//     after retryable errors (surely not posted) is failed; a timeout or crash
//     mid-attempt is needs_attention.
//   - Database activities (mirror, resolve) retry without limit: an outage
//     pauses the post. Notifications give up after 2 minutes (logged): telling
//     people holds a post back no longer than that. An authorization that
//     cannot be checked within 2 minutes is ignored with reason
//     authorize_failed and may be sent again (its request id is not marked as
//     seen).
//   - Canceling the workflow from Temporal is a cancel signal that ends the
//     workflow as canceled in Temporal too. Signals that arrive too late are
//     recorded as ignored (reason too_late / not_waiting), never dropped.
//   - PostDeadline while pending is the earlier of the step deadline and
//     scheduled_at; PostApprovers are the members still awaited (not the
//     author, not who already approved this step or, with distinct_approvers,
//     an earlier one).
//
// Determinism: the only clock is workflow.Now, maps are only looked up, never
// ranged over, and there are no goroutines.
//
// Versions (workflow.GetVersion, checked by the replay tests against histories
// recorded with each): posts started before version 1 keep their command
// sequence; version 1 ("one-commit-per-transition") costs fewer actions:
//
//   - One SavePostState per transition, at the end of it, carrying the
//     transition's notifications (no Notify activity of its own).
//   - The approval that completes a step resolves the next step's approvers in
//     its AuthorizeDecision (no ResolveApprovers activity for steps 2 and 3).
//   - ResolveApprovers, AuthorizeDecision and SavePostState, which only touch
//     the database, are local activities: no activity task, no extra
//     workflow task per call.
//   - The scheduled-time timer of the late policy expire is kept when the post
//     is approved (same time, same label), instead of being replaced.
//   - The Publish activity stores the "publishing" transition before it calls
//     the network (PublishRequest.Mirror), unless notifications wait.
//   - A decision counts from when it arrived (the workflow task that received
//     the signal), not from when AuthorizeDecision answered: an approval that
//     arrives before scheduled_at is on time under the late policy.
//
// Version 2 ("updates", post_updates.go) adds the Workflow Updates decide,
// edit, reschedule, cancel and submitted beside the signals, and:
//
//   - Every decision's MAC is checked by AuthorizeDecision (in every version:
//     the activity refuses an unsigned one with reason unsigned).
//   - An edit is authorized with the editor's current right (AuthorizeChange,
//     a local activity): the author while they may compose, others with
//     editor's right or more; otherwise cannot_compose. The new revision
//     needs approval if the post's revisions needed it so far (once a
//     revision needed approval, later ones do too), or the editor's right is
//     not direct, or the chain requires approval for all. An unsigned edit
//     is an operator's: applied with source temporal, always through the
//     chain. A reschedule or cancel from the API or Slack that names a member
//     is authorized with that member's right; an operator's is not.
//   - The revision's writer (PostState.Writer) cannot approve it, at any
//     step; neither can a delegate deciding on behalf of the writer or the
//     author. A decision by someone other than a member step's member (before
//     its fallback) is refused as not_awaited.
//   - Request ids of edits, reschedules and cancels are remembered like the
//     decisions', so the Update and its signal fallback apply once; reschedule
//     and cancel carry the revision the caller saw (0: any).
//   - PostState.Awaited is the one list of who is awaited.
//   - The workflow continues as new when Temporal suggests it, carrying its
//     whole state (Continued), once no signal or Update waits and every
//     Update was answered; never while publishing.
//
// Version 3 ("leaner-histories") cuts the billable actions of a post:
//
//   - Search attributes are upserted once per workflow task, where the task
//     may end (the main loop's wait, a regular activity, the end of the
//     run), with whatever changed in it: transitions of one task share one
//     upsert, and a task that changed nothing searchable has none.
//   - The first Publish attempt is a local activity in the task that
//     decided to publish (the last approval's, or the scheduled time's):
//     that task also stores the end, upserts once and completes. An attempt
//     that fails in a way the activity would retry makes the post show as
//     publishing, then Publish is retried as an activity within the rest of
//     PublishBound (after the delay a 429 asked for). The Publisher settles
//     any doubt from the database, not from Temporal's attempt count, so a
//     worker crash mid-attempt (the local attempt runs again) is handled as
//     before. While the first attempt runs, visibility still shows the state
//     before it (pending_approval or scheduled); the last approver's Update
//     is answered (status publishing) when that task completes.
//   - New posts record no "updates" marker (version 3 implies version 2):
//     two history events fewer. GetVersion(versionLeaner) is asked only on
//     version 1, and answers DefaultVersion when an older history replays.
//
// Version "media-attachments" (images, issue 16) is asked lazily, only when
// a submission or an edit carries images (withMedia): a post without images
// records no marker and hashes its content exactly as before. With it, the
// images (ids, alt texts and the hashes of their bytes, never the bytes) are
// in the state, in the content hash (changing an image or its alt text
// voids approvals) and in the PublishRequest.
//
// Version 4 ("one-start-marker") changes no behaviour: a new post records
// that one version marker instead of the two of versions 1 and 3
// ("one-commit-per-transition" and "leaner-histories"), so one
// TemporalChangeVersion upsert, one visibility write on the Temporal server,
// and two history events fewer per post.
//
// The late grace (change id "late-grace", asked only when a pending post's
// scheduled time passes under the late policy expire; histories
// late_grace_*.v3.json): the post waits LateGrace for decisions sent before
// its time, counted from their signed DecisionSignal.SentAt.
//
// Absences with delegates and directory changes that reach open steps
// ("absences-and-directory-changes", asked lazily: a plain post records no
// marker) are described in post_directory.go.
//
// The clean three-step post (Update-With-Start, three decide Updates, no
// schedule; internal/e2e TestCleanThreeStepPost, counted by internal/bench on
// testdata/clean_three_steps.v2.json to .v4.json): version 2, 17 actions and
// 48 events (workflow started 1, Updates 4, activity 1, local-activity tasks
// 5, upserts 5, timer 1); version 3, 14 actions and 42 events (workflow
// started 1, Updates 4, local-activity tasks 4, upserts 4, timer 1 for step
// 1's deadline); version 4, 14 actions and 40 events. Scheduled 3 s ahead
// (three_levels_published): 18 actions and 52 events in version 2, 16 and
// 46 in version 3, 16 and 44 in version 4.
package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
)

// PostInput starts a post's workflow.
type PostInput struct {
	PostID    string   `json:"post_id"`
	OrgID     string   `json:"org_id"`
	AccountID string   `json:"account_id"`
	AuthorID  string   `json:"author_id"`
	Revision  int      `json:"revision"` // 0 reads as 1
	Text      string   `json:"text"`
	MediaURLs []string `json:"media_urls,omitempty"`
	// Media are the submission's images: ids, alt texts and hashes, never
	// bytes (version "media-attachments").
	Media []countersign.PostMedia `json:"media,omitempty"`
	// ContentHash is informative: the workflow recomputes
	// countersign.ContentHash(Text, MediaURLs, Media...) and that is what it records.
	ContentHash string     `json:"content_hash,omitempty"`
	ScheduledAt *time.Time `json:"scheduled_at,omitempty"`
	// Chain is the snapshot taken at submission; an empty chain means the
	// default rule.
	Chain         countersign.Chain `json:"chain"`
	NeedsApproval bool              `json:"needs_approval"`
	// Continued is the state a run carries into the next when it continues
	// as new (version 2); nil for a new post.
	Continued *Continued `json:"continued,omitempty"`
	// InputsPerRun, for tests only, continues as new after that many
	// signals and Updates in one run, as if Temporal suggested it (0: only
	// when Temporal suggests it).
	InputsPerRun int `json:"inputs_per_run,omitempty"`
}

const (
	// ResubmissionWindow is how long a rejected post waits for an edit.
	ResubmissionWindow = 30 * 24 * time.Hour
	// PublishBound is how long publishing is retried, from its first attempt
	// (which is at or after scheduled_at, so it is at least SPEC's "1h past
	// scheduled_at").
	PublishBound = time.Hour
)

// Search attributes of post workflows. Register them (with these types) on
// the namespace before starting workers; Keys lists them for that.
var (
	SAOrg         = temporal.NewSearchAttributeKeyKeyword("PostOrg")
	SAAccount     = temporal.NewSearchAttributeKeyKeyword("PostAccount")
	SAAuthor      = temporal.NewSearchAttributeKeyKeyword("PostAuthor")
	SAStatus      = temporal.NewSearchAttributeKeyKeyword("PostStatus")
	SAStep        = temporal.NewSearchAttributeKeyInt64("PostStep")
	SAApprovers   = temporal.NewSearchAttributeKeyKeywordList("PostApprovers")
	SADeadline    = temporal.NewSearchAttributeKeyTime("PostDeadline")
	SAScheduledAt = temporal.NewSearchAttributeKeyTime("PostScheduledAt")
)

// SearchAttributeKeys lists every search attribute the post workflow upserts.
func SearchAttributeKeys() []temporal.SearchAttributeKey {
	return []temporal.SearchAttributeKey{SAOrg, SAAccount, SAAuthor, SAStatus, SAStep, SAApprovers, SADeadline, SAScheduledAt}
}

// acts is nil: its method values only name the activities.
var acts *activities.Activities

// PostWorkflow runs one post from submission to a terminal status.
func PostWorkflow(ctx workflow.Context, in PostInput) (countersign.PostState, error) {
	p := newPost(ctx, in)
	if workflow.GetVersion(ctx, versionOneMarker, workflow.DefaultVersion, 1) == 1 {
		// Version 4 is versions 1 to 3 under one marker (see versionOneMarker).
		p.lean, p.v2, p.v3 = true, true, true
	} else {
		p.lean = workflow.GetVersion(ctx, versionLean, workflow.DefaultVersion, 1) == 1
		// Version 3 implies version 2: its posts skip the "updates" marker (two
		// history events). Replaying an older history, GetVersion(versionLeaner)
		// finds no marker and answers DefaultVersion without a command.
		p.v3 = p.lean && workflow.GetVersion(ctx, versionLeaner, workflow.DefaultVersion, 1) == 1
		p.v2 = p.v3 || workflow.GetVersion(ctx, versionUpdates, workflow.DefaultVersion, 1) == 1
	}
	p.askExternal(ctx)
	if in.Continued == nil && len(in.Media) > 0 && p.withMedia(ctx) {
		p.st.Media = slices.Clone(in.Media)
		p.st.ContentHash = countersign.ContentHash(in.Text, in.MediaURLs, in.Media...)
	}
	if err := workflow.SetQueryHandler(ctx, countersign.QueryState, func() (countersign.PostState, error) {
		return p.st, nil
	}); err != nil {
		return p.st, err
	}
	if p.v2 {
		if err := p.setUpdateHandlers(ctx); err != nil {
			return p.st, err
		}
	}
	if in.Continued != nil {
		p.resume(ctx, *in.Continued)
	} else {
		p.submit(ctx)
	}
	for !p.done {
		if p.st.Status == countersign.PostPublishing {
			p.alarm.stop() // e.g. the scheduled-time timer, after a reschedule to "now"
			p.publish(ctx)
			continue
		}
		p.flush(ctx)
		p.answer()
		if p.continueDue(ctx) {
			if p.readyToContinue(ctx) {
				p.alarm.stop()
				p.syncSearchAttributes(ctx) // the next run inherits them (carry)
				return p.st, workflow.NewContinueAsNewError(ctx, PostWorkflow, p.carry())
			}
			continue
		}
		p.waitNext(ctx)
	}
	p.alarm.stop()
	p.flush(ctx)
	p.drain(ctx)
	p.answer()
	p.syncSearchAttributes(ctx)
	if p.v2 { // answer every Update before the run ends
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		_ = workflow.Await(dctx, func() bool { return workflow.AllHandlersFinished(dctx) })
	}
	if p.canceledByTemporal {
		return p.st, temporal.NewCanceledError("post canceled from Temporal")
	}
	return p.st, nil
}

// versionLean is the change id of version 1 (see the package comment).
const versionLean = "one-commit-per-transition"

// versionLeaner is the change id of version 3 (see the package comment).
const versionLeaner = "leaner-histories"

// versionOneMarker is the change id of version 4: a new post asks it first
// and, answered 1, is a version 3 post without asking the ids of versions 1
// and 3. Each first GetVersion records a marker and upserts
// TemporalChangeVersion, and every upsert is a visibility write on the
// Temporal server: one marker instead of two is one write less per post.
// Replaying an older history, it finds no marker and answers DefaultVersion
// without a command, and the older ids are asked as before.
const versionOneMarker = "one-start-marker"

// versionMedia is the change id of images attached to posts: asked only
// when a submission or an edit carries images (withMedia), so a post
// without any records no marker. From it, the images (ids, alt texts,
// hashes) are part of the content hash and go to the publisher.
const versionMedia = "media-attachments"

// withMedia asks, once per run, whether this run knows images.
func (p *post) withMedia(ctx workflow.Context) bool {
	if p.mediaVer == 0 {
		p.mediaVer = -1
		if workflow.GetVersion(ctx, versionMedia, workflow.DefaultVersion, 1) == 1 {
			p.mediaVer = 1
		}
	}
	return p.mediaVer == 1
}

// editMedia are the images an edit brings: none where this run's history
// was recorded by code that ignored them. A validator, which may not ask
// GetVersion, takes an unknown version as the current one (validators do
// not run on replay).
func (p *post) editMedia(e countersign.EditSignal) []countersign.PostMedia {
	if p.mediaVer == -1 || len(e.Media) == 0 {
		return nil
	}
	return slices.Clone(e.Media)
}

// versionLateGrace is the change id of the late grace (see LateGrace). It is
// asked only when a pending post's scheduled time passes under the late
// policy expire, so other posts record no marker.
const versionLateGrace = "late-grace"

// LateGrace is how long, once the scheduled time has passed under the late
// policy expire, a post still pending waits for decisions sent before that
// time (DecisionSignal.SentAt, signed) that have not reached it yet: a busy
// worker or server delays them, and the approver who answered in time should
// not see the post expire for it. A decision sent after the scheduled time
// expires the post at once, as before; with none, it expires at the end of
// the grace. Ten seconds cover a busy deployment's queues (the API's own
// wait for a worker is 5 s) and keep "expired" prompt.
const LateGrace = 10 * time.Second

// post is the workflow's state. st is what the query returns and the mirror
// stores; the other fields are bookkeeping that nobody outside needs.
type post struct {
	in    PostInput
	chain countersign.Chain
	st    countersign.PostState
	lean  bool // version 1: one commit per transition
	v2    bool // version 2: Updates, edits re-authorized, continue-as-new
	v3    bool // version 3: one upsert per workflow task, the first publish attempt local
	ext   bool // external reviewers (external.go); asked only of posts whose chain has one
	// mediaVer is the answer of GetVersion(versionMedia): 0 not asked yet
	// in this run, 1 images count, -1 this history predates them.
	mediaVer int

	seq     int                       // last event sequence number
	pending []countersign.PostEvent   // events not mirrored yet
	outbox  []activities.Notification // notifications for the next save (lean)
	dirty   bool                      // a commit is due at the end of the transition (lean)
	next    *[]string                 // the next step's approvers, resolved with the approval completing this one (lean)
	seen    map[string]bool           // request ids of decisions (and, v2, changes) already handled
	seenIDs []string                  // the same ids in the order seen, to bound what a run carries

	// needsApproval says whether the current revision goes through the
	// chain: in.NeedsApproval, and from version 2 also set by an edit whose
	// writer may not publish directly (or that is unsigned).
	needsApproval bool
	reqCh         workflow.Channel // Update requests, processed in order by the main loop (v2)
	answering     []*request       // processed requests, answered once their transition is saved
	saved         bool             // the first transition is saved (the Update submitted waits for it)
	inputs        int              // signals and Updates handled by this run

	phaseLen   time.Duration // length of the current step phase (timeout or fallback_timeout)
	reminded   bool          // the current phase's reminder is sent
	rejectedAt time.Time
	graceUntil *time.Time // set once the scheduled time passed while pending (LateGrace)
	since      time.Time  // when the current wait (st.WaitingFor) began
	alarm      alarm
	sa         saValues
	saSet      bool

	done               bool
	canceledByTemporal bool

	// Absences and directory changes (post_directory.go).
	dirVer   int                       // versionDirectory: 0 not asked yet, 1 on, -1 off
	dirAt    time.Time                 // the next start or end of an absence the open step knows
	dels     []countersign.Delegation  // the absences the open step's last resolution found
	nextDels *[]countersign.Delegation // the next step's, resolved with the approval completing this one

	decisionCh, editCh, rescheduleCh, cancelCh, dirCh workflow.ReceiveChannel
}

func newPost(ctx workflow.Context, in PostInput) *post {
	chain := in.Chain
	if len(chain.Steps) == 0 {
		def := countersign.DefaultChain()
		chain.Steps, chain.DistinctApprovers = def.Steps, true
	}
	if chain.LatePolicy == "" {
		chain.LatePolicy = countersign.LateExpire
	}
	rev := max(in.Revision, 1)
	return &post{
		in:    in,
		chain: chain,
		st: countersign.PostState{
			PostID:      in.PostID,
			Revision:    rev,
			ContentHash: countersign.ContentHash(in.Text, in.MediaURLs),
			Text:        in.Text,
			MediaURLs:   in.MediaURLs,
			TotalSteps:  len(chain.Steps),
			Steps:       []countersign.StepState{},
			ScheduledAt: in.ScheduledAt,
			Awaited:     []string{},
			Writer:      in.AuthorID,
		},
		seen:          map[string]bool{},
		needsApproval: in.NeedsApproval,
		reqCh:         workflow.NewBufferedChannel(ctx, maxQueued),
		decisionCh:    workflow.GetSignalChannel(ctx, countersign.SignalDecision),
		editCh:        workflow.GetSignalChannel(ctx, countersign.SignalEdit),
		rescheduleCh:  workflow.GetSignalChannel(ctx, countersign.SignalReschedule),
		cancelCh:      workflow.GetSignalChannel(ctx, countersign.SignalCancel),
		dirCh:         workflow.GetSignalChannel(ctx, countersign.SignalDirectoryChanged),
	}
}

// --- the main loop ----------------------------------------------------------

// waitNext arms the alarm for what the current status waits for (reusing the
// running timer when the time did not change), then handles exactly one thing:
// a signal, the alarm, or a cancellation of the workflow from Temporal.
func (p *post) waitNext(ctx workflow.Context) {
	if ctx.Err() != nil { // canceled during an activity: a timer would fire at once
		p.onTemporalCancel(ctx)
		return
	}
	p.syncSearchAttributes(ctx) // the workflow task ends here
	at, what := p.nextAlarm()
	p.alarm.set(ctx, at, what)

	sel := workflow.NewSelector(ctx)
	onSignal(sel, p.decisionCh, func(s countersign.DecisionSignal) { p.onDecision(ctx, s) })
	onSignal(sel, p.editCh, func(s countersign.EditSignal) { p.onEdit(ctx, s) })
	onSignal(sel, p.rescheduleCh, func(s countersign.RescheduleSignal) { p.onReschedule(ctx, s) })
	onSignal(sel, p.cancelCh, func(s countersign.CancelSignal) { p.onCancel(ctx, s) })
	onSignal(sel, p.dirCh, func(s countersign.DirectoryChangedSignal) { p.onDirectoryChanged(ctx, s) })
	if p.v2 {
		sel.AddReceive(p.reqCh, func(c workflow.ReceiveChannel, _ bool) {
			var r *request
			if c.ReceiveAsync(&r) {
				p.process(ctx, r)
			}
		})
	}
	sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) { p.onTemporalCancel(ctx) })
	if p.alarm.f != nil {
		sel.AddFuture(p.alarm.f, func(workflow.Future) {
			p.alarm.fired()
			p.onAlarm(ctx)
		})
	}
	sel.Select(ctx)
}

// onSignal adds a signal channel to sel. It uses ReceiveAsync, not Receive: a
// payload that does not decode (typed by hand in the UI) is dropped by the
// SDK, and Receive would then block the workflow until the next good one.
func onSignal[T any](sel workflow.Selector, ch workflow.ReceiveChannel, handle func(T)) {
	sel.AddReceive(ch, func(c workflow.ReceiveChannel, _ bool) {
		var v T
		if c.ReceiveAsync(&v) {
			handle(v)
		}
	})
}

// nextAlarm is the time the current status waits for, if any.
func (p *post) nextAlarm() (time.Time, string) {
	switch p.st.Status {
	case countersign.PostPendingApproval:
		var at time.Time
		var what string
		consider := func(t time.Time, w string) {
			if !t.IsZero() && (at.IsZero() || t.Before(at)) {
				at, what = t, w
			}
		}
		s := p.step()
		if s.Deadline != nil {
			consider(*s.Deadline, fmt.Sprintf("step %d deadline", s.Index))
			if !p.reminded {
				consider(s.Deadline.Add(-p.phaseLen/4), fmt.Sprintf("step %d reminder", s.Index))
			}
		}
		if p.chain.LatePolicy == countersign.LateExpire && p.st.ScheduledAt != nil {
			label := "scheduled time (late policy expire)"
			if p.lean { // the same timer then waits for the approved post
				label = "scheduled time"
			}
			if p.graceUntil != nil {
				consider(*p.graceUntil, "decisions sent before the scheduled time (late grace)")
			} else {
				consider(*p.st.ScheduledAt, label)
			}
		}
		consider(p.dirAt, "an absence starts or ends")
		return at, what
	case countersign.PostScheduled:
		return *p.st.ScheduledAt, "scheduled time"
	case countersign.PostRejected:
		return p.rejectedAt.Add(ResubmissionWindow), "end of resubmission window"
	}
	return time.Time{}, "" // on_hold waits for a reschedule, nothing else
}

// onAlarm handles the alarm set by nextAlarm.
func (p *post) onAlarm(ctx workflow.Context) {
	now := workflow.Now(ctx)
	switch p.st.Status {
	case countersign.PostPendingApproval:
		s, cs := p.step(), p.chainStep()
		switch {
		case p.chain.LatePolicy == countersign.LateExpire && p.st.ScheduledAt != nil && !now.Before(*p.st.ScheduledAt):
			if p.inLateGrace(ctx, now) {
				p.absenceChange(ctx, now) // an absence may start or end within the grace too
				return
			}
			p.expire(ctx, "the scheduled time passed before the post was approved")
		case s.Deadline != nil && !now.Before(*s.Deadline) && !s.FallbackActive && cs.FallbackTeam != "":
			p.openFallback(ctx)
		case s.Deadline != nil && !now.Before(*s.Deadline):
			p.expire(ctx, fmt.Sprintf("step %d/%d timed out", s.Index, p.st.TotalSteps))
		case p.absenceChange(ctx, now):
		case !p.reminded:
			p.remind(ctx)
		}
	case countersign.PostScheduled:
		p.st.Status = countersign.PostPublishing
	case countersign.PostRejected:
		p.record(ctx, countersign.PostEvent{Type: countersign.EventClosed,
			Detail: "the resubmission window passed: the rejection is final"})
		p.finish(ctx)
	}
}

// --- the chain --------------------------------------------------------------

// submit records the submission and starts the chain, or skips it.
func (p *post) submit(ctx workflow.Context) {
	detail := fmt.Sprintf("chain %q, %d step(s)", p.chain.Name, len(p.chain.Steps))
	if !p.in.NeedsApproval {
		detail = "approval not needed"
	}
	p.record(ctx, countersign.PostEvent{Type: countersign.EventSubmitted, Actor: p.in.AuthorID,
		Source: countersign.SourceAPI, Detail: detail})
	if p.in.NeedsApproval {
		p.startChain(ctx)
		return
	}
	p.release(ctx, nil) // nothing was pending: a past time means now
}

// startChain forgets every step of the previous revision and opens step 1.
func (p *post) startChain(ctx workflow.Context) {
	p.st.Status = countersign.PostPendingApproval
	p.st.LastError = ""
	p.st.Steps = make([]countersign.StepState, len(p.chain.Steps))
	for i, cs := range p.chain.Steps {
		p.st.Steps[i] = countersign.StepState{Index: i + 1, Approver: cs.Approver, Quorum: cs.NeededApprovals(),
			FallbackTeam: cs.FallbackTeam, Status: countersign.StepWaiting,
			Eligible: []string{}, Approvals: []countersign.DecisionRecord{}}
	}
	p.openStep(ctx, 1)
}

// openStep resolves the step's approvers, records it, mirrors and notifies.
func (p *post) openStep(ctx workflow.Context, n int) {
	p.st.CurrentStep = n
	cs, s := p.chainStep(), p.step()
	var ids []string
	var dels []countersign.Delegation
	switch {
	case p.ext && cs.Approver.External != nil: // nobody in the directory: the reviewer gets a link
		ids, p.next = []string{}, nil
	case p.next != nil:
		ids, p.next = *p.next, nil
		if p.nextDels != nil {
			dels = *p.nextDels
		}
	default:
		res := p.resolveAll(ctx, cs.Approver)
		ids, dels = res.MemberIDs, res.Delegations
	}
	p.nextDels = nil
	now := workflow.Now(ctx)
	s.Status, s.OpenedAt, s.Eligible = countersign.StepOpen, &now, ids
	p.setDelegations(ctx, dels)
	p.startPhase(now, cs.Timeout.D())
	p.record(ctx, countersign.PostEvent{Type: countersign.EventStepOpened, Step: n, Detail: fmt.Sprintf(
		"step %d/%d: %s, %d approval(s) needed, %d eligible member(s)%s",
		n, p.st.TotalSteps, cs.Approver, s.Quorum, len(ids), deadlineText(s.Deadline))})
	p.commit(ctx)
	p.checkSatisfiable(ctx)
	p.notify(ctx, activities.Notification{Kind: activities.NotifyStepOpened, MemberIDs: ids,
		TeamID: cs.Approver.Team, Deadline: s.Deadline, External: p.reviewer(), LinkExpires: p.linkExpiry()})
	p.notifyDelegates(ctx)
}

// notifyDelegates asks the delegates the open step awaits, by direct
// message (a team's channel does not reach them).
func (p *post) notifyDelegates(ctx workflow.Context) {
	if len(p.step().Delegates) == 0 {
		return
	}
	if ds := p.delegatesAwaited(p.principals()); len(ds) > 0 && p.step().Unsatisfiable == "" {
		p.notify(ctx, activities.Notification{Kind: activities.NotifyStepOpened, MemberIDs: ds, Deadline: p.step().Deadline})
	}
}

// startPhase starts the primary or the fallback phase of the current step.
func (p *post) startPhase(now time.Time, length time.Duration) {
	s := p.step()
	s.Deadline = nil
	if length > 0 {
		d := now.Add(length)
		s.Deadline = &d
	}
	p.phaseLen, p.reminded = length, false
}

// openFallback widens the current step to its fallback team.
func (p *post) openFallback(ctx workflow.Context) {
	cs, s := p.chainStep(), p.step()
	res := p.resolveAll(ctx, countersign.Approver{Team: cs.FallbackTeam})
	ids := res.MemberIDs
	s.FallbackActive, s.FallbackEligible = true, ids
	if len(res.Delegations) > 0 || len(p.dels) > 0 {
		p.setDelegations(ctx, append(slices.Clone(p.dels), res.Delegations...))
	}
	p.startPhase(workflow.Now(ctx), cs.FallbackTimeout.D())
	p.record(ctx, countersign.PostEvent{Type: countersign.EventFallbackOpened, Step: s.Index, Detail: fmt.Sprintf(
		"step %d timed out: fallback team %s (%d member(s)) may approve too%s",
		s.Index, cs.FallbackTeam, len(ids), deadlineText(s.Deadline))})
	p.commit(ctx)
	p.checkSatisfiable(ctx)
	p.notify(ctx, activities.Notification{Kind: activities.NotifyFallback, TeamID: cs.FallbackTeam,
		MemberIDs: union(s.Eligible, ids), Deadline: s.Deadline})
	p.notifyDelegates(ctx)
}

// remind tells the step's approvers that a quarter of its time is left.
func (p *post) remind(ctx workflow.Context) {
	s := p.step()
	p.reminded = true
	p.record(ctx, countersign.PostEvent{Type: countersign.EventReminderSent, Step: s.Index,
		Detail: "a quarter of the step's time is left" + deadlineText(s.Deadline)})
	p.commit(ctx)
	team := p.chainStep().Approver.Team
	if s.FallbackActive {
		team = s.FallbackTeam
	}
	p.notify(ctx, activities.Notification{Kind: activities.NotifyReminder, MemberIDs: p.awaited(),
		TeamID: team, Deadline: s.Deadline, External: p.reviewer(), LinkExpires: p.linkExpiry()})
}

// inLateGrace reports whether a pending post past its scheduled time still
// waits for decisions sent in time (LateGrace). The first call opens the
// grace; posts started before the grace existed expire at once.
func (p *post) inLateGrace(ctx workflow.Context, now time.Time) bool {
	if p.graceUntil == nil {
		if !p.v3 || workflow.GetVersion(ctx, versionLateGrace, workflow.DefaultVersion, 1) != 1 {
			return false
		}
		until := p.st.ScheduledAt.Add(LateGrace)
		p.graceUntil = &until
	}
	return now.Before(*p.graceUntil)
}

// lateGraceOpen reports whether a decision received at now falls in the
// late grace. The grace is opened here when the scheduled time has passed but
// its alarm has not been handled yet: the decision and the alarm arrived in
// one workflow task and the decision is handled first.
func (p *post) lateGraceOpen(ctx workflow.Context, now time.Time) bool {
	if p.graceUntil != nil {
		return true
	}
	if p.chain.LatePolicy != countersign.LateExpire || p.st.ScheduledAt == nil || now.Before(*p.st.ScheduledAt) {
		return false
	}
	return p.inLateGrace(ctx, now)
}

// expire ends the post expired and tells everyone involved.
func (p *post) expire(ctx workflow.Context, why string) {
	if p.st.CurrentStep > 0 && p.step().Status == countersign.StepOpen {
		p.step().Status = countersign.StepExpired
	}
	p.st.Status = countersign.PostExpired
	p.record(ctx, countersign.PostEvent{Type: countersign.EventExpired, Detail: why})
	p.finish(ctx)
	p.notify(ctx, activities.Notification{Kind: activities.NotifyExpired, MemberIDs: p.involved(), Detail: why})
}

// --- decisions --------------------------------------------------------------

// onDecision checks a decision, asks the directory, and counts it or records
// why it was ignored (and returns why). The signal and the Update decide
// both come here.
func (p *post) onDecision(ctx workflow.Context, d countersign.DecisionSignal) *refusal {
	p.inputs++
	received := workflow.Now(ctx)
	d.Source = sourceOr(d.Source)
	sent := d // as signed: the MAC covers what the sender wrote
	d = p.onBehalf(d)
	if reason, detail := p.precheck(d); reason != "" {
		return p.ignoreDecision(ctx, d, reason, detail)
	}
	var next *countersign.Approver
	if s := p.step(); p.lean && d.Decision == countersign.DecisionApprove &&
		len(s.Approvals)+1 >= s.Quorum && s.Index < p.st.TotalSteps {
		next = &p.chain.Steps[s.Index].Approver
	}
	res, err := p.authorize(ctx, d, sent, next)
	if err != nil {
		// Not marked as seen: the same request may be sent again.
		return p.ignoreDecision(ctx, d, countersign.ReasonAuthorizeFailed, "could not check the decision: "+err.Error())
	}
	p.markSeen(d.RequestID)
	if !res.Allowed {
		code := res.Code
		if code == "" {
			code = countersign.ReasonNotAuthorized
		}
		return p.ignoreDecision(ctx, d, code, res.Reason)
	}
	if res.NextResolved {
		ids := union(res.NextEligible)
		p.next = &ids
		if len(res.NextDelegations) > 0 {
			p.nextDels = &res.NextDelegations
		}
	}
	rec := countersign.DecisionRecord{Step: d.Step, MemberID: d.MemberID, External: d.External, Decision: d.Decision,
		Note: d.Note, Source: d.Source, RequestID: d.RequestID, OnBehalfOf: d.OnBehalfOf, At: workflow.Now(ctx)}
	if p.lean { // a decision counts from when it arrived, not from when the directory answered
		rec.At = received
	}
	if d.SentAt != nil && d.SentAt.Before(received) && p.lateGraceOpen(ctx, received) {
		// In the late grace, from when it was sent: its MAC, just checked,
		// covers SentAt. One sent in time releases the post; a later one
		// expires it (release).
		rec.At = *d.SentAt
	}
	if d.Decision == countersign.DecisionReject {
		p.reject(ctx, rec)
		return nil
	}
	p.approve(ctx, rec)
	return nil
}

// precheck applies every rule the workflow can decide alone, in the order a
// person would ask: is it still waiting, is this a repeat, is it for this
// revision and step, and may this member decide.
func (p *post) precheck(d countersign.DecisionSignal) (reason, detail string) {
	switch {
	case p.st.Status != countersign.PostPendingApproval:
		return countersign.ReasonNotWaiting, fmt.Sprintf("the post is %s, not waiting for approval", p.st.Status)
	case d.RequestID != "" && p.seen[d.RequestID]:
		return countersign.ReasonDuplicateRequest, fmt.Sprintf("request %s was already handled", d.RequestID)
	case d.Revision != p.st.Revision:
		return countersign.ReasonStaleRevision, fmt.Sprintf("decision on revision %d, the post is at revision %d", d.Revision, p.st.Revision)
	case d.Step != p.st.CurrentStep:
		return countersign.ReasonWrongStep, fmt.Sprintf("decision on step %d, the post is at step %d", d.Step, p.st.CurrentStep)
	case d.Decision != countersign.DecisionApprove && d.Decision != countersign.DecisionReject:
		return countersign.ReasonInvalidDecision, fmt.Sprintf("unknown decision %q", d.Decision)
	case d.External != "" && !p.externalAnswer(d):
		return countersign.ReasonNotAwaited, fmt.Sprintf("step %d waits for %s, not the external reviewer %s", d.Step, p.step().Approver, d.External)
	case d.External == "" && p.externalOnly():
		return countersign.ReasonNotAwaited, fmt.Sprintf("step %d waits for the external reviewer %s, who answers through their review link", d.Step, p.step().Approver.External.Email)
	case hasApproval(p.step().Approvals, d.MemberID):
		return countersign.ReasonAlreadyDecided, fmt.Sprintf("%s already approved step %d", d.MemberID, d.Step)
	case d.MemberID == p.in.AuthorID || (p.v2 && d.OnBehalfOf != "" && d.OnBehalfOf == p.in.AuthorID):
		return countersign.ReasonAuthor, "the author cannot decide on their own post"
	case p.v2 && p.st.Writer != "" && (d.MemberID == p.st.Writer || d.OnBehalfOf == p.st.Writer):
		return countersign.ReasonRevisionWriter, fmt.Sprintf("%s wrote revision %d and cannot approve it", p.st.Writer, p.st.Revision)
	case p.v2 && p.notAwaited(d):
		return countersign.ReasonNotAwaited, fmt.Sprintf("step %d waits for %s, not %s", d.Step, p.step().Approver, d.MemberID)
	case p.chain.DistinctApprovers && slices.Contains(p.earlierApprovers(), d.MemberID):
		return countersign.ReasonDistinctApprovers, fmt.Sprintf("%s already approved an earlier step of revision %d", d.MemberID, p.st.Revision)
	case d.Decision == countersign.DecisionReject && strings.TrimSpace(d.Note) == "":
		return countersign.ReasonNoteRequired, "a rejection needs a note"
	}
	if r := p.delegateRefusal(d); r != nil {
		return r.reason, r.detail
	}
	return "", ""
}

func (p *post) ignoreDecision(ctx workflow.Context, d countersign.DecisionSignal, reason, detail string) *refusal {
	p.record(ctx, countersign.PostEvent{Type: countersign.EventDecisionIgnored, Actor: d.MemberID, Source: d.Source,
		Step: d.Step, Reason: reason, Detail: d.Decision + " ignored: " + detail, OnBehalfOf: d.OnBehalfOf})
	p.commit(ctx)
	return &refusal{reason: reason, detail: detail}
}

// approve counts an approval; a full quorum completes the step.
func (p *post) approve(ctx workflow.Context, rec countersign.DecisionRecord) {
	s := p.step()
	s.Approvals = append(s.Approvals, rec)
	p.record(ctx, countersign.PostEvent{Type: countersign.EventDecisionCounted, Actor: rec.MemberID, Source: rec.Source,
		Step: s.Index, Detail: fmt.Sprintf("approval %d/%d on step %d%s", len(s.Approvals), s.Quorum, s.Index, behalfText(rec.OnBehalfOf)) + byExternal(rec),
		OnBehalfOf: rec.OnBehalfOf})
	if len(s.Approvals) < s.Quorum {
		p.commit(ctx)
		if p.lean { // rides on the same save: the requests show "1 of 2 approvals"
			p.notify(ctx, activities.Notification{Kind: activities.NotifyProgress, Actor: rec.MemberID})
		}
		return
	}
	s.Status = countersign.StepApproved
	if s.Index < p.st.TotalSteps {
		p.openStep(ctx, s.Index+1) // mirrors the counted decision with the step opening
		return
	}
	p.record(ctx, countersign.PostEvent{Type: countersign.EventApproved, Actor: rec.MemberID, Source: rec.Source,
		Detail: fmt.Sprintf("all %d step(s) approved", p.st.TotalSteps)})
	p.release(ctx, &rec.At)
	if !p.done { // approved too late under late_policy expire: only "expired" is told
		p.notify(ctx, activities.Notification{Kind: activities.NotifyApproved, MemberIDs: p.involved(), Actor: rec.MemberID})
	}
}

// reject ends the chain; the post waits for an edit (resubmission).
func (p *post) reject(ctx workflow.Context, rec countersign.DecisionRecord) {
	s := p.step()
	s.Status, s.Rejection = countersign.StepRejected, &rec
	p.st.Status = countersign.PostRejected
	p.rejectedAt = rec.At
	p.record(ctx, countersign.PostEvent{Type: countersign.EventDecisionCounted, Actor: rec.MemberID, Source: rec.Source,
		Step: s.Index, Detail: "rejection on step " + fmt.Sprint(s.Index) + behalfText(rec.OnBehalfOf) + byExternal(rec), OnBehalfOf: rec.OnBehalfOf})
	p.record(ctx, countersign.PostEvent{Type: countersign.EventRejected, Actor: rec.MemberID, Source: rec.Source,
		Step: s.Index, Detail: rec.Note, OnBehalfOf: rec.OnBehalfOf})
	p.commit(ctx)
	p.notify(ctx, activities.Notification{Kind: activities.NotifyRejected, MemberIDs: []string{p.in.AuthorID},
		Actor: rec.MemberID, Detail: rec.Note})
}

// release is what happens once the post may go out (approved, or approval not
// needed). approvedAt, the time the last approval arrived, applies the late
// policy if it is not before scheduled_at; without it (no approval needed, a
// reschedule of an approved post) a past time means "now".
func (p *post) release(ctx workflow.Context, approvedAt *time.Time) {
	now := workflow.Now(ctx)
	switch at := p.st.ScheduledAt; {
	case at == nil:
		p.st.Status = countersign.PostPublishing // publish commits
	case now.Before(*at):
		p.st.Status = countersign.PostScheduled
		p.commit(ctx)
	case approvedAt == nil || approvedAt.Before(*at):
		// Nothing to be late for, or approved on time though authorizing it
		// took us past the slot: publish now.
		p.st.Status = countersign.PostPublishing
	case p.chain.LatePolicy == countersign.LatePublishWhenApproved:
		p.st.Status = countersign.PostPublishing
	case p.chain.LatePolicy == countersign.LateHold:
		p.st.Status = countersign.PostOnHold
		p.record(ctx, countersign.PostEvent{Type: countersign.EventOnHold,
			Detail: "approved after the scheduled time: on hold until rescheduled"})
		p.commit(ctx)
		p.notify(ctx, activities.Notification{Kind: activities.NotifyOnHold, MemberIDs: []string{p.in.AuthorID}})
	default:
		p.expire(ctx, "the scheduled time passed before the post was approved")
	}
}

// --- edit, reschedule, cancel -----------------------------------------------

// onEdit applies a content change: a new revision whose approvals start
// over. From version 2 the editor's current right decides whether they may
// edit and whether the new revision needs approval (SPEC §3 item 4); an
// unsigned edit is an operator's, and its revision always needs approval.
func (p *post) onEdit(ctx workflow.Context, e countersign.EditSignal) *refusal {
	p.inputs++
	if len(e.Media) > 0 {
		p.withMedia(ctx)
	}
	src := sourceOr(e.Source)
	if r := p.checkEdit(e); r != nil {
		return p.ignoreSignal(ctx, "edit", e.By, src, r)
	}
	needs := p.needsApproval
	if p.v2 {
		res, err := p.authorizeChange(ctx, "edit", e.By, &e)
		if err != nil { // not marked as seen: the same request may be sent again
			return p.ignoreSignal(ctx, "edit", e.By, src, &refusal{countersign.ReasonAuthorizeFailed, "could not check the edit: " + err.Error()})
		}
		p.markSeen(e.RequestID)
		switch {
		case !res.Signed: // an operator's edit (Temporal UI or CLI)
			src, needs = countersign.SourceTemporal, true
		case !res.Allowed:
			return p.ignoreSignal(ctx, "edit", e.By, src, &refusal{res.Code, res.Reason})
		default:
			needs = needs || res.Publish != countersign.PublishDirect || p.chain.RequireApprovalForAll
		}
	}
	media := p.editMedia(e)
	hash := countersign.ContentHash(e.Text, e.MediaURLs, media...)
	if hash == p.st.ContentHash { // only with Reschedule (checkEdit): the time alone changes
		p.applySchedule(ctx, e.ScheduledAt, e.By, src)
		p.afterReschedule(ctx)
		return nil
	}
	voided := p.involvedApprovers()
	was := p.st.Status
	p.st.Revision++
	p.graceUntil = nil // a new revision, a new grace if its time passes
	p.st.Text, p.st.MediaURLs, p.st.Media, p.st.ContentHash = e.Text, e.MediaURLs, media, hash
	p.st.Writer = e.By
	detail := "content changed"
	switch {
	case needs && !p.needsApproval:
		detail = fmt.Sprintf("content changed while %s by someone who may not publish directly: approval needed, starting at step 1", was)
	case needs:
		detail = fmt.Sprintf("content changed while %s: approvals voided, restarting at step 1", was)
	}
	p.needsApproval = needs
	p.record(ctx, countersign.PostEvent{Type: countersign.EventEdited, Actor: e.By, Source: src, Detail: detail})
	if e.Reschedule { // same transition: the chain below opens against the new time
		p.applySchedule(ctx, e.ScheduledAt, e.By, src)
	}
	if !needs {
		if e.Reschedule {
			p.afterReschedule(ctx)
		} else {
			p.commit(ctx)
		}
		return nil
	}
	p.startChain(ctx)
	if len(voided) > 0 {
		p.notify(ctx, activities.Notification{Kind: activities.NotifySuperseded, Revision: p.st.Revision - 1,
			MemberIDs: voided, Actor: e.By})
	}
	return nil
}

// onReschedule changes the time only; approvals are kept.
func (p *post) onReschedule(ctx workflow.Context, r countersign.RescheduleSignal) *refusal {
	p.inputs++
	src := sourceOr(r.Source)
	if ref := p.checkChange("reschedule", r.Revision, r.RequestID); ref != nil {
		return p.ignoreSignal(ctx, "reschedule", r.By, src, ref)
	}
	if ref := p.authorizeMember(ctx, "reschedule", r.By, src, r.RequestID); ref != nil {
		return ref
	}
	p.applySchedule(ctx, r.ScheduledAt, r.By, src)
	p.afterReschedule(ctx)
	return nil
}

// applySchedule sets the scheduled time (nil: as soon as approved) and
// records it; approvals are kept.
func (p *post) applySchedule(ctx workflow.Context, at *time.Time, by, src string) {
	old := p.st.ScheduledAt
	p.graceUntil = nil // a new time, a new grace if it passes too
	if at != nil {
		t := *at
		p.st.ScheduledAt = &t
	} else {
		p.st.ScheduledAt = nil
	}
	p.record(ctx, countersign.PostEvent{Type: countersign.EventRescheduled, Actor: by, Source: src,
		Detail: fmt.Sprintf("from %s to %s", timeText(old), timeText(p.st.ScheduledAt))})
}

// afterReschedule ends a transition that changed the time: an approved or
// held post is released against it; a pending or rejected one only commits
// (the loop re-arms the late alarm).
func (p *post) afterReschedule(ctx workflow.Context) {
	switch p.st.Status {
	case countersign.PostScheduled, countersign.PostOnHold:
		p.release(ctx, nil)
	default:
		p.commit(ctx)
	}
}

// onCancel ends the post canceled, unless publishing has started.
func (p *post) onCancel(ctx workflow.Context, c countersign.CancelSignal) *refusal {
	p.inputs++
	src := sourceOr(c.Source)
	if ref := p.checkChange("cancel", c.Revision, c.RequestID); ref != nil {
		return p.ignoreSignal(ctx, "cancel", c.By, src, ref)
	}
	if ref := p.authorizeMember(ctx, "cancel", c.By, src, c.RequestID); ref != nil {
		return ref
	}
	p.st.Status = countersign.PostCanceled
	p.record(ctx, countersign.PostEvent{Type: countersign.EventCanceled, Actor: c.By, Source: src, Detail: c.Reason})
	p.finish(ctx)
	p.notify(ctx, activities.Notification{Kind: activities.NotifyCanceled, MemberIDs: p.involved(),
		Actor: c.By, Detail: c.Reason})
	return nil
}

// onTemporalCancel treats a cancellation of the workflow (Temporal UI or CLI)
// like the cancel signal; the workflow then ends as canceled in Temporal too.
func (p *post) onTemporalCancel(ctx workflow.Context) {
	p.canceledByTemporal = true
	p.onCancel(ctx, countersign.CancelSignal{Reason: "workflow canceled from Temporal", Source: countersign.SourceTemporal})
}

func (p *post) tooLate() bool {
	return p.done || p.st.Status == countersign.PostPublishing
}

func (p *post) ignoreSignal(ctx workflow.Context, what, by, src string, r *refusal) *refusal {
	p.record(ctx, countersign.PostEvent{Type: countersign.EventSignalIgnored, Actor: by, Source: src, Reason: r.reason,
		Detail: what + " ignored: " + r.detail})
	p.commit(ctx)
	return r
}

// drain records every signal that arrived too late to act on, so none is lost
// silently when the workflow completes.
func (p *post) drain(ctx workflow.Context) {
	for {
		n := drainAll(p.decisionCh, func(d countersign.DecisionSignal) {
			p.record(ctx, countersign.PostEvent{Type: countersign.EventDecisionIgnored, Actor: d.MemberID,
				Source: sourceOr(d.Source), Step: d.Step, Reason: countersign.ReasonNotWaiting,
				Detail: fmt.Sprintf("%s ignored: the post is %s", d.Decision, p.st.Status)})
		})
		n += drainAll(p.editCh, func(e countersign.EditSignal) { p.recordLate(ctx, "edit", e.By, e.Source) })
		n += drainAll(p.rescheduleCh, func(r countersign.RescheduleSignal) { p.recordLate(ctx, "reschedule", r.By, r.Source) })
		n += drainAll(p.cancelCh, func(c countersign.CancelSignal) { p.recordLate(ctx, "cancel", c.By, c.Source) })
		n += drainAll(p.reqCh, func(r *request) { p.process(ctx, r) }) // refused (the post ended), recorded, answered
		drainAll(p.dirCh, func(countersign.DirectoryChangedSignal) {}) // nothing open to re-resolve
		if n == 0 {
			return
		}
		p.commit(ctx)
		p.flush(ctx) // may block: loop again for signals that came meanwhile
	}
}

// drainAll hands every signal waiting on ch to handle and counts them.
func drainAll[T any](ch workflow.ReceiveChannel, handle func(T)) int {
	n := 0
	for {
		var v T
		if !ch.ReceiveAsync(&v) {
			return n
		}
		handle(v)
		n++
	}
}

func (p *post) recordLate(ctx workflow.Context, what, by, src string) {
	p.record(ctx, countersign.PostEvent{Type: countersign.EventSignalIgnored, Actor: by, Source: sourceOr(src),
		Reason: countersign.ReasonTooLate, Detail: fmt.Sprintf("%s ignored: the post is %s", what, p.st.Status)})
}

// --- publishing -------------------------------------------------------------

// publish publishes the current revision once and ends the workflow.
func (p *post) publish(ctx workflow.Context) {
	p.record(ctx, countersign.PostEvent{Type: countersign.EventPublishStarted})
	p.commit(ctx)
	// Stored before the network is called: from version 1 by the Publish
	// activity itself, unless notifications wait (they must not delay it).
	var mirror *activities.SavePostStateInput
	if p.lean && len(p.outbox) == 0 {
		in := p.transition(ctx)
		mirror = &in
	} else {
		p.flush(ctx)
	}
	p.answer() // Updates answer "publishing" now, not after the network

	req := activities.PublishRequest{
		PostID: p.in.PostID, OrgID: p.in.OrgID, AccountID: p.in.AccountID, AuthorID: p.in.AuthorID,
		Revision: p.st.Revision, ContentHash: p.st.ContentHash, Text: p.st.Text, MediaURLs: p.st.MediaURLs,
		Media: slices.Clone(p.st.Media), ScheduledAt: p.st.ScheduledAt, Approvals: p.approvals(), Mirror: mirror,
	}
	summary := fmt.Sprintf("publish revision %d", p.st.Revision)
	var res activities.PublishResult
	var err error
	if p.v3 {
		// The first attempt runs in this workflow task, as a local activity:
		// no activity task, and the end of the post (its state, search
		// attributes, notifications) goes in the same task. Its bound is the
		// whole PublishBound, so the Publisher reads the time left as it would
		// in the activity.
		first := workflow.Now(ctx)
		lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: 2 * time.Minute, ScheduleToCloseTimeout: PublishBound,
			RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}, Summary: summary,
		})
		err = workflow.ExecuteLocalActivity(lctx, acts.Publish, req).Get(ctx, &res)
		if err != nil && retryPublish(ctx, err) {
			// Retried as an activity (attempts and errors visible in the UI),
			// after the delay a 429 asked for, within the rest of the bound.
			// The post shows as publishing meanwhile.
			workflow.GetLogger(ctx).Warn("first publish attempt failed; retrying as an activity", "error", err)
			p.syncSearchAttributes(ctx)
			var appErr *temporal.ApplicationError
			if errors.As(err, &appErr) && appErr.NextRetryDelay() > 0 {
				_ = workflow.Sleep(ctx, appErr.NextRetryDelay())
			}
			err = publishActivity(ctx, req, summary, max(PublishBound-workflow.Now(ctx).Sub(first), 2*time.Minute), &res)
		}
	} else {
		err = publishActivity(ctx, req, summary, PublishBound, &res)
	}
	if err != nil && mirror != nil {
		p.requeue(*mirror)
	}

	if err == nil {
		now := workflow.Now(ctx)
		p.st.Status, p.st.ExternalID, p.st.ExternalURL, p.st.PublishedAt = countersign.PostPublished, res.ExternalID, res.ExternalURL, &now
		p.record(ctx, countersign.PostEvent{Type: countersign.EventPublished, Detail: res.ExternalURL})
		p.finish(ctx)
		p.notify(ctx, activities.Notification{Kind: activities.NotifyPublished, MemberIDs: p.involved(), ExternalURL: res.ExternalURL})
		return
	}
	status, msg := classifyPublishError(err)
	typ, kind := countersign.EventPublishFailed, activities.NotifyFailed
	if status == countersign.PostNeedsAttention {
		typ, kind = countersign.EventNeedsAttention, activities.NotifyNeedsAttention
	}
	p.st.Status, p.st.LastError = status, msg
	p.record(ctx, countersign.PostEvent{Type: typ, Detail: msg})
	p.finish(ctx)
	p.notify(ctx, activities.Notification{Kind: kind, MemberIDs: p.involved(), Detail: msg})
}

// publishActivity runs Publish as an activity, retried within bound.
func publishActivity(ctx workflow.Context, req activities.PublishRequest, summary string, bound time.Duration, res *activities.PublishResult) error {
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    2 * time.Minute,
		ScheduleToCloseTimeout: bound,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypePublishRejected, activities.ErrTypePublishUnknown},
		},
		Summary: summary,
	}), acts.Publish, req).Get(ctx, res)
}

// retryPublish says whether the first, local, attempt (version 3) failed in a
// way the activity's retry policy would retry: not a refusal or an unknown
// outcome, and not a cancellation of the workflow.
func retryPublish(ctx workflow.Context, err error) bool {
	var appErr *temporal.ApplicationError
	switch {
	case ctx.Err() != nil || temporal.IsCanceledError(err):
		return false
	case errors.As(err, &appErr):
		return !appErr.NonRetryable() && appErr.Type() != activities.ErrTypePublishRejected &&
			appErr.Type() != activities.ErrTypePublishUnknown
	}
	return true // a timeout, or an error that is not an application error
}

// classifyPublishError maps the Publish activity's failure to a status. Only a
// retryable application error that ran out of retries means "surely not
// posted" (failed); a timeout, a cancellation or a crash mid-attempt leaves
// the outcome unknown (needs_attention).
func classifyPublishError(err error) (countersign.PostStatus, string) {
	var appErr *temporal.ApplicationError
	var timeoutErr *temporal.TimeoutError
	switch {
	case errors.As(err, &timeoutErr):
		// The bound ran out; the last attempt's failure says whether it posted.
		if errors.As(timeoutErr.Unwrap(), &appErr) {
			return countersign.PostFailed, "gave up publishing after " + PublishBound.String() + ": " + appErr.Message()
		}
	case errors.As(err, &appErr) && appErr.Type() == activities.ErrTypePublishRejected:
		return countersign.PostFailed, appErr.Message()
	case errors.As(err, &appErr) && appErr.Type() == activities.ErrTypePublishUnknown:
		return countersign.PostNeedsAttention, appErr.Message()
	case errors.As(err, &appErr):
		return countersign.PostFailed, appErr.Message()
	}
	return countersign.PostNeedsAttention, "publish outcome unknown: " + err.Error()
}

// --- one transition ---------------------------------------------------------

// finish marks the workflow's end and mirrors it.
func (p *post) finish(ctx workflow.Context) {
	p.alarm.stop() // before the last activities: nothing may fire after the end
	p.done = true
	p.st.Closed = true
	p.commit(ctx)
}

// record queues an event for the next commit, stamped with a deterministic
// key, the current revision, content hash and time.
func (p *post) record(ctx workflow.Context, e countersign.PostEvent) {
	p.seq++
	e.Seq = p.seq
	e.Key = fmt.Sprintf("%s/%d", countersign.WorkflowID(p.in.PostID), p.seq)
	e.Revision, e.ContentHash = p.st.Revision, p.st.ContentHash
	if e.Source == "" {
		e.Source = countersign.SourceSystem
	}
	e.At = workflow.Now(ctx)
	p.pending = append(p.pending, e)
}

// commit ends a transition. Before version 1 it saves at once; from version 1
// the save waits for flush, at the end of the transition, so a transition that
// commits more than once (a counted approval that opens the next step) and its
// notifications cost one activity.
func (p *post) commit(ctx workflow.Context) {
	if p.lean {
		p.dirty = true
		return
	}
	p.save(ctx)
}

// flush saves what the transition committed or notified (lean); otherwise a no-op.
func (p *post) flush(ctx workflow.Context) {
	if p.dirty || len(p.outbox) > 0 {
		p.save(ctx)
	}
}

// save is one transition: the search attributes (only what changed), the
// current details for the UI, and one SavePostState call with the new events
// (and, from version 1, the notifications).
func (p *post) save(ctx workflow.Context) {
	if ctx.Err() != nil { // canceled from Temporal: still mirror the end
		ctx, _ = workflow.NewDisconnectedContext(ctx)
	}
	in := p.transition(ctx)
	err := p.dbActivity(ctx, "save post state", 0, acts.SavePostState, in).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Error("mirroring the post failed; its events go with the next transition", "error", err)
		p.requeue(in)
	}
	p.answer()
}

// transition closes the current transition: it updates what the post waits
// for, the UI's details and the search attributes, and takes the pending
// events and notifications into the SavePostState input that will store them.
func (p *post) transition(ctx workflow.Context) activities.SavePostStateInput {
	now := workflow.Now(ctx)
	p.st.UpdatedAt = now
	waiting, deadline := p.waitingFor()
	if waiting != p.st.WaitingFor || p.since.IsZero() {
		p.since = now
	}
	p.st.WaitingFor, p.st.Deadline = waiting, deadline
	p.st.Awaited = union(p.awaited())
	workflow.SetCurrentDetails(ctx, p.details())
	if !p.v3 { // from version 3, once per workflow task (syncSearchAttributes)
		p.upsertSearchAttributes(ctx)
	}

	events, notes := p.pending, p.outbox
	p.pending, p.outbox, p.dirty = nil, nil, false
	if events == nil {
		events = []countersign.PostEvent{}
	}
	return activities.SavePostStateInput{PostID: p.in.PostID, State: p.st, Events: events, Notifications: notes,
		NotifyUntil: now.Add(activities.NotifyBound)}
}

// requeue puts back the events of a transition that may not have been stored
// (stored ones are skipped by their key when sent again).
func (p *post) requeue(in activities.SavePostStateInput) {
	p.pending = append(in.Events, p.pending...)
}
