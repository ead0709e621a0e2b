package workflows_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/workflows"
)

// The Updates (SPEC §3 item 4, "One authority") in the test environment:
// what each answers, what the validators refuse before anything is written,
// and that an Update and a signal go through the same rules.

// answer is what one Update got back.
type answer struct {
	accepted bool
	rejected error // refused by the validator: nothing was written
	err      error // refused by the handler (recorded as ignored)
	st       countersign.PostState
	done     bool
}

// update sends an Update at a simulated time; the payload is signed as the
// API would sign it (unless f.unsigned).
func (f *fixture) update(after time.Duration, name string, payload any) *answer {
	ans := &answer{}
	f.at(after, func() {
		f.reqN++
		args := []any{}
		if payload != nil {
			args = append(args, f.sign(payload))
		}
		f.env.UpdateWorkflow(name, fmt.Sprintf("upd-%d", f.reqN), &testsuite.TestUpdateCallback{
			OnAccept: func() { ans.accepted = true },
			OnReject: func(err error) { ans.rejected, ans.done = err, true },
			OnComplete: func(v any, err error) {
				ans.err, ans.done = err, true
				switch r := v.(type) {
				case countersign.PostState:
					ans.st = r
				case converter.EncodedValue:
					if err == nil {
						require.NoError(f.t, r.Get(&ans.st))
					}
				}
			},
		}, args...)
	})
	return ans
}

func decision(memberID string, revision, step int, reqID string) countersign.DecisionSignal {
	return countersign.DecisionSignal{PostID: "p1", Revision: revision, Step: step, MemberID: memberID,
		Decision: countersign.DecisionApprove, Source: countersign.SourceAPI, RequestID: reqID}
}

// reason is the reason code of an Update's refusal.
func reason(t *testing.T, err error) string {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "refusal is an application error: %v", err)
	require.True(t, appErr.NonRetryable())
	return appErr.Type()
}

func threeSteps() countersign.Chain {
	return chain(countersign.LateExpire, member("ana"), team("pr", 1), role())
}

// Each accepted decide answers the state after the approval counted: the
// next step open with who it awaits, so the next approver can act at once.
func TestDecideAnswersTheNextStepOpen(t *testing.T) {
	f := newFixture(t)
	sub := f.update(0, countersign.UpdateSubmitted, nil)
	first := f.update(time.Minute, countersign.UpdateDecide, decision("ana", 1, 1, "r1"))
	second := f.update(time.Minute+time.Second, countersign.UpdateDecide, decision("bob", 1, 2, "r2"))
	third := f.update(time.Minute+2*time.Second, countersign.UpdateDecide, decision("eve", 1, 3, "r3"))

	st := f.run(input(threeSteps()))

	require.Equal(t, countersign.PostPublished, st.Status)
	require.True(t, sub.done)
	require.NoError(t, sub.err)
	require.Equal(t, countersign.PostPendingApproval, sub.st.Status)
	require.Equal(t, 1, sub.st.CurrentStep)
	require.Equal(t, []string{"ana"}, sub.st.Awaited)

	for _, a := range []*answer{first, second, third} {
		require.True(t, a.accepted)
		require.NoError(t, a.err)
	}
	require.Equal(t, 2, first.st.CurrentStep)
	require.Equal(t, countersign.StepOpen, first.st.Steps[1].Status)
	require.Equal(t, []string{"bob", "cid"}, first.st.Steps[1].Eligible)
	require.Equal(t, []string{"bob", "cid"}, first.st.Awaited)
	require.Equal(t, 3, second.st.CurrentStep)
	// role approvers are ana, dan, eve and the author: not the author, not
	// ana (distinct approvers).
	require.Equal(t, []string{"dan", "eve"}, second.st.Awaited)
	require.Equal(t, countersign.PostPublishing, third.st.Status)
	require.Empty(t, third.st.Awaited)
	require.Len(t, f.publishes, 1)
}

// A validator refuses what the state can tell, before anything is written:
// no event, no activity, no save.
func TestValidatorsRefuseWithoutWriting(t *testing.T) {
	f := newFixture(t)
	in := input(threeSteps())
	var savesBefore, actsBefore int
	f.at(30*time.Second, func() { savesBefore, actsBefore = len(f.saves), len(f.acts) })
	type refusal struct {
		code string
		a    *answer
	}
	refused := []refusal{
		{countersign.ReasonStaleRevision, f.update(time.Minute, countersign.UpdateDecide, decision("ana", 2, 1, "a"))},
		{countersign.ReasonWrongStep, f.update(time.Minute, countersign.UpdateDecide, decision("ana", 1, 2, "b"))},
		{countersign.ReasonAuthor, f.update(time.Minute, countersign.UpdateDecide, decision("author", 1, 1, "c"))},
		{countersign.ReasonNotAwaited, f.update(time.Minute, countersign.UpdateDecide, decision("bob", 1, 1, "d"))},
		{countersign.ReasonNoteRequired, f.update(time.Minute, countersign.UpdateDecide, countersign.DecisionSignal{PostID: "p1",
			Revision: 1, Step: 1, MemberID: "ana", Decision: countersign.DecisionReject, RequestID: "e"})},
		{countersign.ReasonUnchanged, f.update(time.Minute, countersign.UpdateEdit, countersign.EditSignal{Revision: 1,
			Text: "Hello world", By: "author", Source: countersign.SourceAPI, RequestID: "f"})},
		{countersign.ReasonStaleRevision, f.update(time.Minute, countersign.UpdateEdit, countersign.EditSignal{Revision: 3,
			Text: "new", By: "author", Source: countersign.SourceAPI, RequestID: "g"})},
		{countersign.ReasonStaleRevision, f.update(time.Minute, countersign.UpdateCancel, countersign.CancelSignal{Revision: 2,
			By: "author", Source: countersign.SourceAPI, RequestID: "h"})},
	}
	f.at(2*time.Minute, func() {
		require.Equal(t, savesBefore, len(f.saves), "a refused Update saves nothing")
		require.Equal(t, actsBefore, len(f.acts), "a refused Update runs no activity")
	})
	counted := f.update(3*time.Minute, countersign.UpdateDecide, decision("ana", 1, 1, "i"))
	dup := f.update(4*time.Minute, countersign.UpdateDecide, decision("bob", 1, 2, "i"))
	f.signalAt(time.Hour, countersign.SignalCancel, countersign.CancelSignal{By: "author"})

	st := f.run(in)

	require.Equal(t, countersign.PostCanceled, st.Status)
	for i, r := range refused {
		require.False(t, r.a.accepted, "refusal %d", i)
		require.Error(t, r.a.rejected, "refusal %d", i)
		require.Equal(t, r.code, reason(t, r.a.rejected), "refusal %d", i)
	}
	require.NoError(t, counted.err)
	require.Equal(t, countersign.ReasonDuplicateRequest, reason(t, dup.rejected))
	require.Empty(t, f.eventsOf(countersign.EventDecisionIgnored), "no refusal by a validator is recorded")
	require.Empty(t, f.eventsOf(countersign.EventSignalIgnored))
}

// A refusal that needs the database is made by the handler: recorded as an
// ignored decision with its reason, and answered as the error.
func TestDecideRefusedByTheDirectoryIsRecordedAndAnswered(t *testing.T) {
	f := newFixture(t)
	f.deny["cid"] = "not a member of team pr any more"
	in := input(chain(countersign.LateExpire, team("pr", 1)))
	refused := f.update(time.Minute, countersign.UpdateDecide, decision("cid", 1, 1, "a"))
	ok := f.update(2*time.Minute, countersign.UpdateDecide, decision("bob", 1, 1, "b"))

	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.True(t, refused.accepted)
	require.Equal(t, countersign.ReasonNotAuthorized, reason(t, refused.err))
	require.Contains(t, refused.err.Error(), "not a member of team pr any more")
	require.NoError(t, ok.err)
	require.Equal(t, []string{"cid:not_authorized"}, f.ignored())
}

// A decision without a valid MAC (sent straight to Temporal) is ignored as
// unsigned, by signal or by Update, and recorded.
func TestUnsignedDecisionIsIgnored(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana")))
	f.unsigned = true
	f.approve(time.Minute, "ana", 1, 1)
	byUpdate := f.update(2*time.Minute, countersign.UpdateDecide, decision("ana", 1, 1, "u"))
	forged := decision("ana", 1, 1, "v")
	forged.MAC = f.signer.Sign(decision("ana", 1, 1, "other")) // a MAC of another decision
	f.signalAt(3*time.Minute, countersign.SignalDecision, forged)
	f.at(4*time.Minute, func() { f.unsigned = false })
	f.approve(5*time.Minute, "ana", 1, 1)

	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, countersign.ReasonUnsigned, reason(t, byUpdate.err))
	require.Equal(t, []string{"ana:unsigned", "ana:unsigned", "ana:unsigned"}, f.ignored())
	require.Len(t, st.Steps[0].Approvals, 1)
}

// The API's fallback: the Update, then the signal with the same request id
// (or the other way round) counts once.
func TestUpdateAndSignalWithTheSameRequestCountOnce(t *testing.T) {
	f := newFixture(t)
	three := role()
	three.Quorum = 3
	in := input(chain(countersign.LateExpire, three))
	first := f.update(time.Minute, countersign.UpdateDecide, decision("ana", 1, 1, "same"))
	f.signalAt(time.Minute+time.Second, countersign.SignalDecision, decision("ana", 1, 1, "same"))
	f.signalAt(2*time.Minute, countersign.SignalDecision, decision("dan", 1, 1, "other"))
	late := f.update(2*time.Minute+time.Second, countersign.UpdateDecide, decision("dan", 1, 1, "other"))
	f.queryAt(3*time.Minute, func(st countersign.PostState) {
		require.Len(t, st.Steps[0].Approvals, 2)
		require.Equal(t, []string{"eve"}, st.Awaited)
	})
	f.approve(4*time.Minute, "eve", 1, 1)

	st := f.run(in)

	require.NoError(t, first.err)
	require.Equal(t, countersign.ReasonDuplicateRequest, reason(t, late.rejected))
	require.Len(t, st.Steps[0].Approvals, 3)
	require.Equal(t, []string{"ana:duplicate_request"}, f.ignored())
	require.Len(t, f.publishes, 1)
}

// An editor demoted to limited edits their scheduled post that needed no
// approval: the new revision goes through the chain. An editor who still
// publishes directly edits another's post without approval.
func TestDemotedEditorsEditNeedsApproval(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana")))
	in.NeedsApproval, in.ScheduledAt = false, at(48*time.Hour)
	direct := f.update(time.Hour, countersign.UpdateEdit, countersign.EditSignal{Revision: 1, Text: "by an editor",
		By: "dan", Source: countersign.SourceAPI, RequestID: "e1"})
	f.at(2*time.Hour, func() { f.rights["author"] = countersign.LevelRight(countersign.LevelLimited, nil) })
	demoted := f.update(3*time.Hour, countersign.UpdateEdit, countersign.EditSignal{Revision: 2, Text: "by the demoted author",
		By: "author", Source: countersign.SourceAPI, RequestID: "e2"})
	f.approve(4*time.Hour, "ana", 3, 1)

	st := f.run(in)

	require.NoError(t, direct.err)
	require.Equal(t, countersign.PostScheduled, direct.st.Status, "an editor's edit of a post that needed no approval")
	require.Equal(t, "dan", direct.st.Writer)
	require.NoError(t, demoted.err)
	require.Equal(t, countersign.PostPendingApproval, demoted.st.Status)
	require.Equal(t, 3, demoted.st.Revision)
	require.Equal(t, []string{"ana"}, demoted.st.Awaited)
	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, "by the demoted author", f.publishes[0].Text)
}

// Who may not change a post is refused by the handler with cannot_compose:
// a limited member editing another's post, an author who lost compose.
func TestChangesNeedTheCurrentRight(t *testing.T) {
	f := newFixture(t)
	f.rights["lim"] = countersign.LevelRight(countersign.LevelLimited, nil)
	in := input(chain(countersign.LateExpire, member("ana")))
	other := f.update(time.Minute, countersign.UpdateEdit, countersign.EditSignal{Revision: 1, Text: "hijack", By: "lim",
		Source: countersign.SourceAPI, RequestID: "x1"})
	f.at(2*time.Minute, func() { f.rights["author"] = countersign.LevelRight(countersign.LevelNone, nil) })
	lost := f.update(3*time.Minute, countersign.UpdateEdit, countersign.EditSignal{Revision: 1, Text: "mine", By: "author",
		Source: countersign.SourceAPI, RequestID: "x2"})
	cancel := f.update(4*time.Minute, countersign.UpdateCancel, countersign.CancelSignal{Revision: 1, By: "lim",
		Source: countersign.SourceAPI, RequestID: "x3"})
	f.approve(5*time.Minute, "ana", 1, 1)

	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, "Hello world", f.publishes[0].Text)
	for _, a := range []*answer{other, lost, cancel} {
		require.True(t, a.accepted)
		require.Equal(t, countersign.ReasonCannotCompose, reason(t, a.err))
	}
	var reasons []string
	for _, e := range f.eventsOf(countersign.EventSignalIgnored) {
		reasons = append(reasons, e.Actor+":"+e.Reason)
	}
	require.Equal(t, []string{"lim:cannot_compose", "author:cannot_compose", "lim:cannot_compose"}, reasons)
}

// Whoever wrote a revision cannot approve it, on a member, a team or a role
// step, and is not awaited.
func TestRewriterCannotApproveTheirRevision(t *testing.T) {
	for _, tc := range []struct {
		name, writer string
		step         countersign.ChainStep
	}{
		{"member step", "ana", member("ana")},
		{"team step", "bob", team("pr", 1)},
		{"role step", "dan", role()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.rights["author"] = countersign.LevelRight(countersign.LevelLimited, nil)
			in := input(chain(countersign.LateExpire, tc.step))
			edit := f.update(time.Minute, countersign.UpdateEdit, countersign.EditSignal{Revision: 1, Text: "rewritten",
				By: tc.writer, Source: countersign.SourceAPI, RequestID: "w"})
			byUpdate := f.update(2*time.Minute, countersign.UpdateDecide, decision(tc.writer, 2, 1, "d1"))
			f.signalAt(3*time.Minute, countersign.SignalDecision, decision(tc.writer, 2, 1, "d2"))
			f.signalAt(time.Hour, countersign.SignalCancel, countersign.CancelSignal{By: "author"})

			st := f.run(in)

			require.NoError(t, edit.err)
			require.Equal(t, tc.writer, edit.st.Writer)
			require.NotContains(t, edit.st.Awaited, tc.writer)
			require.Equal(t, countersign.ReasonRevisionWriter, reason(t, byUpdate.rejected))
			require.Equal(t, []string{tc.writer + ":revision_writer"}, f.ignored())
			require.Equal(t, countersign.PostCanceled, st.Status)
			require.Empty(t, st.Steps[0].Approvals)
		})
	}
}

// An edit sent straight to Temporal (no MAC) is an operator's: applied, with
// source temporal, and its revision goes through the chain even on a post
// that needed no approval.
func TestUnsignedEditAlwaysNeedsApproval(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana")))
	in.NeedsApproval, in.ScheduledAt = false, at(48*time.Hour)
	f.unsigned = true
	f.signalAt(time.Hour, countersign.SignalEdit, countersign.EditSignal{Text: "operator text", By: "dan", Source: countersign.SourceAPI})
	f.at(90*time.Minute, func() { f.unsigned = false })
	f.queryAt(2*time.Hour, func(st countersign.PostState) {
		require.Equal(t, countersign.PostPendingApproval, st.Status)
		require.Equal(t, []string{"ana"}, st.Awaited)
	})
	f.approve(3*time.Hour, "ana", 2, 1)

	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	edited := f.eventsOf(countersign.EventEdited)
	require.Len(t, edited, 1)
	require.Equal(t, countersign.SourceTemporal, edited[0].Source)
	require.Equal(t, "dan", edited[0].Actor)
}

// Reschedule and cancel by a member through the API use their current right;
// an operator's (source temporal) need none.
func TestOperatorsRescheduleAndCancel(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana")))
	f.deny["gone"] = "removed"
	refused := f.update(time.Minute, countersign.UpdateReschedule, countersign.RescheduleSignal{ScheduledAt: at(5 * time.Hour),
		By: "gone", Source: countersign.SourceAPI, RequestID: "r1"})
	moved := f.update(2*time.Minute, countersign.UpdateReschedule, countersign.RescheduleSignal{ScheduledAt: at(6 * time.Hour),
		By: "author", Source: countersign.SourceAPI, RequestID: "r2", Revision: 1})
	f.signalAt(3*time.Minute, countersign.SignalCancel, countersign.CancelSignal{Reason: "operator", Source: countersign.SourceTemporal})

	st := f.run(in)

	require.Equal(t, countersign.ReasonCannotCompose, reason(t, refused.err))
	require.NoError(t, moved.err)
	require.Equal(t, start.Add(6*time.Hour), *moved.st.ScheduledAt)
	require.Equal(t, countersign.PostCanceled, st.Status)
	require.Len(t, f.changeReqs, 2, "an operator's cancel asks nobody")
}

// A flood of inputs makes the workflow continue as new, carrying its whole
// state: the next run answers the query as before, keeps its search
// attributes, counts a repeated request once and publishes exactly once.
func TestContinueAsNewCarriesTheState(t *testing.T) {
	f := newFixture(t)
	in := input(threeSteps())
	in.ScheduledAt = at(10 * time.Hour)
	in.InputsPerRun = 4
	first := f.approve(time.Minute, "ana", 1, 1)
	for i := range 3 {
		f.approve(time.Duration(2+i)*time.Minute, "zed", 1, 1) // stale: ignored
	}
	f.env.ExecuteWorkflow(workflows.PostWorkflow, in)
	require.True(t, f.env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(f.env.GetWorkflowError(), &can), "continued as new: %v", f.env.GetWorkflowError())
	// (The first run's alarm is canceled with the continue-as-new command;
	// the test environment ends the run before it reports the cancellation.)
	var next workflows.PostInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.NotNil(t, next.Continued)
	before := f.lastSaved()
	upsertsBefore := len(f.upserts)

	g := newFixture(t)
	g.saves, g.upserts, g.reqN = f.saves, f.upserts, f.reqN // one post, two runs: the mirror carries on
	g.env.SetStartTime(start.Add(5 * time.Minute))
	g.queryAt(time.Second, func(st countersign.PostState) {
		require.Equal(t, before.Status, st.Status)
		require.Equal(t, 2, st.CurrentStep)
		require.Equal(t, before.Steps, st.Steps)
		require.Equal(t, []string{"bob", "cid"}, st.Awaited)
	})
	g.decideReq(time.Minute, first, "bob", 1, 2, countersign.DecisionApprove, "") // a request the first run saw
	g.approve(2*time.Minute, "bob", 1, 2)
	g.approve(3*time.Minute, "eve", 1, 3)
	next.InputsPerRun = 0
	st := g.run(next)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Len(t, g.publishes, 1)
	require.Equal(t, start.Add(10*time.Hour), *st.PublishedAt, "the scheduled time was carried")
	require.Contains(t, g.ignored(), "bob:duplicate_request")
	for _, u := range g.upserts[upsertsBefore:] {
		_, org := u.GetKeyword(workflows.SAOrg)
		require.False(t, org, "the next run keeps the attributes set once")
	}
}

// When Temporal suggests it, the workflow continues as new at its next
// transition, with the Update answered first.
func TestContinueAsNewWhenTemporalSuggests(t *testing.T) {
	f := newFixture(t)
	in := input(threeSteps())
	f.at(2*time.Minute, func() { f.env.SetContinueAsNewSuggested(true) })
	ans := f.update(3*time.Minute, countersign.UpdateDecide, decision("ana", 1, 1, "r1"))
	f.env.ExecuteWorkflow(workflows.PostWorkflow, in)
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(f.env.GetWorkflowError(), &can), "continued as new: %v", f.env.GetWorkflowError())
	require.NoError(t, ans.err)
	require.Equal(t, 2, ans.st.CurrentStep, "the Update was answered before the run ended")
	var next workflows.PostInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.Equal(t, []string{"r1"}, next.Continued.Seen)
	require.Equal(t, 2, next.Continued.State.CurrentStep)
	require.Equal(t, f.lastSaved().Steps, next.Continued.State.Steps)
}

// A PATCH of text and time is one edit (EditSignal.Reschedule): one Update
// whose answer already shows the new revision at its new time; the same
// time change alone with unchanged content is a reschedule, not refused as
// content_unchanged.
func TestEditWithRescheduleIsOneChange(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana")))
	in.NeedsApproval, in.ScheduledAt = false, at(48*time.Hour)
	later, latest := at(72*time.Hour), at(96*time.Hour)
	both := f.update(time.Hour, countersign.UpdateEdit, countersign.EditSignal{Revision: 1, Text: "new words",
		By: "dan", Source: countersign.SourceAPI, RequestID: "e1", Reschedule: true, ScheduledAt: later})
	timeOnly := f.update(2*time.Hour, countersign.UpdateEdit, countersign.EditSignal{Revision: 2, Text: "new words",
		By: "dan", Source: countersign.SourceAPI, RequestID: "e2", Reschedule: true, ScheduledAt: latest})
	same := f.update(3*time.Hour, countersign.UpdateEdit, countersign.EditSignal{Revision: 2, Text: "new words",
		By: "dan", Source: countersign.SourceAPI, RequestID: "e3"})

	st := f.run(in)

	require.NoError(t, both.err)
	require.Equal(t, 2, both.st.Revision)
	require.Equal(t, "new words", both.st.Text)
	require.Equal(t, countersign.PostScheduled, both.st.Status)
	require.True(t, both.st.ScheduledAt.Equal(*later), "answer shows the new time: %v", both.st.ScheduledAt)
	require.NoError(t, timeOnly.err)
	require.Equal(t, 2, timeOnly.st.Revision, "same content: no new revision")
	require.True(t, timeOnly.st.ScheduledAt.Equal(*latest))
	require.Error(t, same.rejected)
	require.Equal(t, countersign.ReasonUnchanged, reason(t, same.rejected))
	require.Equal(t, countersign.PostPublished, st.Status)
	require.True(t, st.PublishedAt.Equal(*latest) || st.PublishedAt.After(*latest))
	require.Len(t, f.publishes, 1)
}
