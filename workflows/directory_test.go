package workflows_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
	"github.com/countersign/countersign/workflows"
)

// Absences with delegates and directory changes reaching open steps
// (SPEC §2 Member; post_directory.go).

func away(member, delegate string, from, until time.Duration) countersign.Delegation {
	return countersign.Delegation{MemberID: member, DelegateID: delegate, From: start.Add(from), Until: start.Add(until)}
}

func (f *fixture) directoryChanged(after time.Duration, change func()) {
	f.at(after, func() {
		change()
		f.env.SignalWorkflow(countersign.SignalDirectoryChanged, countersign.DirectoryChangedSignal{Reason: "test change"})
	})
}

func counted(f *fixture) []string {
	var out []string
	for _, e := range f.eventsOf(countersign.EventDecisionCounted) {
		out = append(out, e.Actor+"/"+e.OnBehalfOf)
	}
	return out
}

func TestAbsenceStartingWhileStepIsOpenLetsTheDelegateApprove(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana")))
	f.queryAt(30*time.Minute, func(st countersign.PostState) {
		require.Equal(t, []string{"ana"}, st.Awaited)
		require.Empty(t, st.Steps[0].Delegates)
	})
	// Before the absence, dan is not awaited: refused.
	f.approve(45*time.Minute, "dan", 1, 1)
	// The absence is set at 1h, from now on.
	f.directoryChanged(time.Hour, func() { f.absences = append(f.absences, away("ana", "dan", time.Hour, 48*time.Hour)) })
	f.queryAt(90*time.Minute, func(st countersign.PostState) {
		require.Equal(t, []string{"ana", "dan"}, st.Awaited, "the delegate is awaited beside the absent member")
		require.Equal(t, []countersign.Delegation{away("ana", "dan", time.Hour, 48*time.Hour)}, st.Steps[0].Delegates)
	})
	f.approve(2*time.Hour, "dan", 1, 1)
	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, []string{"dan/ana"}, counted(f), "the delegate's approval is recorded on behalf of ana")
	require.Equal(t, "ana", st.Steps[0].Approvals[0].OnBehalfOf)
	require.Equal(t, "dan", st.Steps[0].Approvals[0].MemberID)
	require.Contains(t, f.ignored(), "dan:not_awaited")
	changed := f.eventsOf(countersign.EventApproversChanged)
	require.Len(t, changed, 1)
	require.Contains(t, changed[0].Detail, "added dan")
	// dan was asked as an approver would be, once the absence began.
	var asked []string
	for _, n := range f.notesOf(activities.NotifyStepOpened) {
		asked = append(asked, strings.Join(n.MemberIDs, ","))
	}
	require.Equal(t, []string{"ana", "dan"}, asked)
}

func TestFutureAbsenceStartsAndEndsOnTimeWithoutAnySignal(t *testing.T) {
	f := newFixture(t)
	f.absences = []countersign.Delegation{away("ana", "dan", 2*time.Hour, 4*time.Hour)}
	in := input(chain(countersign.LateExpire, member("ana")))
	f.queryAt(time.Hour, func(st countersign.PostState) { require.Equal(t, []string{"ana"}, st.Awaited) })
	f.queryAt(3*time.Hour, func(st countersign.PostState) { require.Equal(t, []string{"ana", "dan"}, st.Awaited) })
	f.queryAt(5*time.Hour, func(st countersign.PostState) {
		require.Equal(t, []string{"ana"}, st.Awaited, "the absence ended mid-step: the delegate is no longer eligible")
		require.Empty(t, st.Steps[0].Delegates)
	})
	f.approve(6*time.Hour, "dan", 1, 1) // too late: refused
	f.approve(7*time.Hour, "ana", 1, 1)
	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, []string{"ana/"}, counted(f))
	require.Contains(t, f.ignored(), "dan:not_awaited")
	require.Len(t, f.eventsOf(countersign.EventApproversChanged), 2, "one at the start, one at the end")
	require.Empty(t, f.openTimers)
}

func TestAbsenceEndingMidStepThroughTheAPI(t *testing.T) {
	f := newFixture(t)
	f.absences = []countersign.Delegation{away("bob", "dan", -time.Hour, 48*time.Hour)}
	f.deny["dan"] = "not a member of the step's team"
	in := input(chain(countersign.LateExpire, team("pr", 2)))
	f.queryAt(time.Minute, func(st countersign.PostState) {
		require.Equal(t, []string{"bob", "cid", "dan"}, st.Awaited)
	})
	f.approve(10*time.Minute, "cid", 1, 1)
	// The absence is deleted (DELETE …/absence) at 1h.
	f.directoryChanged(time.Hour, func() { f.absences = nil })
	f.queryAt(90*time.Minute, func(st countersign.PostState) { require.Equal(t, []string{"bob"}, st.Awaited) })
	f.approve(2*time.Hour, "dan", 1, 1)
	f.approve(3*time.Hour, "bob", 1, 1)
	st := f.run(in)
	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, []string{"cid/", "bob/"}, counted(f))
	require.Equal(t, []string{"dan:not_authorized"}, f.ignored(), "in his own name, dan is not in the team")
	dropped := f.notesOf(activities.NotifyApproversChanged)
	require.Len(t, dropped, 1)
	require.Equal(t, []string{"dan"}, dropped[0].MemberIDs, "the dropped delegate's requests lose their buttons")
}

func TestDelegateWhoIsTheAuthorCannotApprove(t *testing.T) {
	f := newFixture(t)
	f.absences = []countersign.Delegation{away("ana", "author", -time.Hour, 48*time.Hour)}
	in := input(chain(countersign.LateExpire, member("ana")))
	f.queryAt(time.Minute, func(st countersign.PostState) {
		require.Equal(t, []string{"ana"}, st.Awaited, "the author is never awaited, not even as a delegate")
	})
	f.approve(time.Hour, "author", 1, 1)
	// Naming the absent member explicitly does not help either.
	f.signalAt(2*time.Hour, countersign.SignalDecision, countersign.DecisionSignal{PostID: "p1", Revision: 1, Step: 1,
		MemberID: "author", OnBehalfOf: "ana", Decision: countersign.DecisionApprove, Source: countersign.SourceAPI, RequestID: "x"})
	f.approve(3*time.Hour, "ana", 1, 1)
	st := f.run(in)
	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, []string{"author:author", "author:author"}, f.ignored())
	require.Equal(t, []string{"ana/"}, counted(f))
}

func TestDelegateWhoApprovedAnEarlierStepCannotApproveForTheAbsentMember(t *testing.T) {
	f := newFixture(t)
	f.absences = []countersign.Delegation{away("ana", "bob", -time.Hour, 48*time.Hour)}
	in := input(chain(countersign.LateExpire, team("pr", 1), member("ana")))
	f.approve(time.Minute, "bob", 1, 1)
	f.queryAt(2*time.Minute, func(st countersign.PostState) {
		require.Equal(t, 2, st.CurrentStep)
		require.Equal(t, []string{"ana"}, st.Awaited, "bob approved step 1: distinct approvers keep him out of step 2")
		require.Equal(t, []countersign.Delegation{away("ana", "bob", -time.Hour, 48*time.Hour)}, st.Steps[1].Delegates)
	})
	f.approve(time.Hour, "bob", 1, 2)
	f.approve(2*time.Hour, "ana", 1, 2)
	st := f.run(in)
	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, []string{"bob:distinct_approvers"}, f.ignored())
	require.Equal(t, []string{"bob/", "ana/"}, counted(f))
}

func TestDelegationCountsOnceForThePairAndDoesNotChain(t *testing.T) {
	f := newFixture(t)
	// ana is away with dan; dan is away with eve: eve does not stand for ana.
	f.absences = []countersign.Delegation{away("ana", "dan", -time.Hour, 48*time.Hour), away("dan", "eve", -time.Hour, 48*time.Hour)}
	f.dir["team:pr"] = []string{"ana", "cid"}
	f.deny["eve"] = "not a member of the step's team"
	in := input(chain(countersign.LateExpire, team("pr", 2), team("ops", 1)))
	f.queryAt(time.Minute, func(st countersign.PostState) { require.Equal(t, []string{"ana", "cid", "dan"}, st.Awaited) })
	f.approve(10*time.Minute, "eve", 1, 1) // a delegate of a delegate
	f.approve(20*time.Minute, "dan", 1, 1) // for ana
	f.approve(30*time.Minute, "ana", 1, 1) // the pair counted already
	f.queryAt(40*time.Minute, func(st countersign.PostState) { require.Equal(t, []string{"cid"}, st.Awaited) })
	f.approve(time.Hour, "cid", 1, 1)
	f.approve(2*time.Hour, "gus", 1, 2)
	st := f.run(in)
	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, []string{"dan/ana", "cid/", "gus/"}, counted(f))
	require.Equal(t, []string{"eve:not_authorized", "ana:already_decided"}, f.ignored())
}

func TestRemovedTeamMemberOnOpenStepIsReportedAndReplaced(t *testing.T) {
	f := newFixture(t)
	f.dir["team:pr"] = []string{"bob"}
	in := input(chain(countersign.LateExpire, team("pr", 1)))
	f.queryAt(time.Minute, func(st countersign.PostState) { require.Equal(t, []string{"bob"}, st.Awaited) })
	// bob is removed from the team (the case).
	f.directoryChanged(time.Hour, func() {
		f.dir["team:pr"] = []string{}
		f.deny["bob"] = "not a member of the step's team"
	})
	f.queryAt(90*time.Minute, func(st countersign.PostState) {
		require.Empty(t, st.Awaited, "nobody is awaited")
		require.Contains(t, st.Steps[0].Unsatisfiable, "needs 1 approval(s), has 0, and only 0 eligible")
		require.Contains(t, f.currentDetails(), "Cannot be satisfied")
	})
	f.approve(2*time.Hour, "bob", 1, 1)
	// cid joins the team: the step is satisfiable again and cid is asked.
	f.directoryChanged(3*time.Hour, func() { f.dir["team:pr"] = []string{"cid"} })
	f.queryAt(4*time.Hour, func(st countersign.PostState) {
		require.Equal(t, []string{"cid"}, st.Awaited)
		require.Empty(t, st.Steps[0].Unsatisfiable)
		require.NotContains(t, f.currentDetails(), "Cannot be satisfied")
	})
	f.approve(5*time.Hour, "cid", 1, 1)
	st := f.run(in)
	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, []string{"bob:not_authorized"}, f.ignored())
	require.Len(t, f.eventsOf(countersign.EventStepUnsatisfiable), 1)
	require.Len(t, f.notesOf(activities.NotifyUnsatisfiable), 1, "the org's admins are told once")
	// PostApprovers went from bob to nothing (unset), then showed cid.
	approvers := saValues(f, func(sa temporal.SearchAttributes) ([]string, bool) { return sa.GetKeywordList(workflows.SAApprovers) })
	require.Equal(t, [][]string{{"bob"}, {"cid"}}, approvers)
	var mirrored [][]string
	for _, sv := range f.saves {
		if len(mirrored) == 0 || !slices.Equal(mirrored[len(mirrored)-1], sv.State.Awaited) {
			mirrored = append(mirrored, sv.State.Awaited)
		}
	}
	require.Equal(t, [][]string{{"bob"}, {}, {"cid"}, {}}, mirrored)
	last := f.notesOf(activities.NotifyStepOpened)
	require.Equal(t, []string{"cid"}, last[len(last)-1].MemberIDs, "the newcomer gets a request")
}

func TestQuorumThatCannotBeMetIsReportedAtOnce(t *testing.T) {
	f := newFixture(t)
	f.dir["role:approvers"] = []string{"ana", "author"} // the author cannot approve: one left for quorum 3
	step := role()
	step.Quorum = 3
	step.Timeout = countersign.Duration(24 * time.Hour)
	in := input(chain(countersign.LateExpire, step))
	f.queryAt(time.Minute, func(st countersign.PostState) {
		require.Empty(t, st.Awaited)
		require.Contains(t, st.Steps[0].Unsatisfiable, "needs 3 approval(s), has 0, and only 1 eligible")
	})
	st := f.run(in)
	require.Equal(t, countersign.PostExpired, st.Status, "it stays open until its deadline")
	require.Equal(t, []string{countersign.EventSubmitted, countersign.EventStepOpened, countersign.EventStepUnsatisfiable,
		countersign.EventReminderSent, countersign.EventExpired}, f.eventTypes())
	require.Len(t, f.notesOf(activities.NotifyUnsatisfiable), 1)
}

func TestForgedDirectoryChangedPayloadCannotWidenTheStep(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana")))
	// A payload sent straight to Temporal, naming who should approve.
	forged := json.RawMessage(`{"reason":"x","member_ids":["mallory"],"eligible":["mallory"],"delegates":[{"member_id":"ana","delegate_id":"mallory"}]}`)
	f.at(time.Hour, func() { f.env.SignalWorkflow(countersign.SignalDirectoryChanged, forged) })
	f.queryAt(2*time.Hour, func(st countersign.PostState) {
		require.Equal(t, []string{"ana"}, st.Awaited)
		require.Empty(t, st.Steps[0].Delegates)
	})
	f.approve(3*time.Hour, "mallory", 1, 1)
	f.approve(4*time.Hour, "ana", 1, 1)
	st := f.run(in)
	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, []string{"mallory:not_awaited"}, f.ignored())
	require.Empty(t, f.eventsOf(countersign.EventApproversChanged), "re-reading the same directory records nothing")
}

// Continue-as-new carries the absences and the time of the next change: the
// next run still awaits the delegate, and drops him when the absence ends.
func TestContinueAsNewCarriesDelegations(t *testing.T) {
	f := newFixture(t)
	f.absences = []countersign.Delegation{away("ana", "dan", -time.Hour, 3*time.Hour)}
	in := input(chain(countersign.LateExpire, member("ana")))
	in.InputsPerRun = 2
	f.approve(time.Minute, "zed", 1, 1)
	f.approve(2*time.Minute, "zed", 1, 1)
	f.env.ExecuteWorkflow(workflows.PostWorkflow, in)
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(f.env.GetWorkflowError(), &can), "continued as new: %v", f.env.GetWorkflowError())
	var next workflows.PostInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.Equal(t, start.Add(3*time.Hour), next.Continued.DirAt)

	g := newFixture(t)
	g.absences = f.absences
	g.saves, g.upserts, g.reqN = f.saves, f.upserts, f.reqN
	g.env.SetStartTime(start.Add(5 * time.Minute))
	g.queryAt(time.Second, func(st countersign.PostState) { require.Equal(t, []string{"ana", "dan"}, st.Awaited) })
	g.queryAt(3*time.Hour, func(st countersign.PostState) { require.Equal(t, []string{"ana"}, st.Awaited) })
	g.approve(4*time.Hour, "dan", 1, 1)
	g.approve(5*time.Hour, "ana", 1, 1)
	next.InputsPerRun = 0
	st := g.run(next)
	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, []string{"ana/"}, counted(g))
	require.Contains(t, g.ignored(), "dan:not_awaited")
}

// An absence that ends within the late grace (the scheduled time passed,
// decisions sent before it may still arrive) is acted on once, and the post
// still expires when the grace ends.
func TestAbsenceEndingWithinTheLateGrace(t *testing.T) {
	f := newFixture(t)
	f.absences = []countersign.Delegation{away("ana", "dan", -time.Hour, time.Hour+workflows.LateGrace/2)}
	in := input(chain(countersign.LateExpire, member("ana")))
	in.ScheduledAt = at(time.Hour)
	st := f.run(in)
	require.Equal(t, countersign.PostExpired, st.Status)
	changed := f.eventsOf(countersign.EventApproversChanged)
	require.Len(t, changed, 1)
	require.Equal(t, start.Add(time.Hour+workflows.LateGrace/2), changed[0].At)
	require.Equal(t, start.Add(time.Hour+workflows.LateGrace), f.eventsOf(countersign.EventExpired)[0].At)
}
