package workflows_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
)

const cleo = "cleo@client.test"

func external(timeout time.Duration) countersign.ChainStep {
	return countersign.ChainStep{Approver: countersign.Approver{External: &countersign.ExternalReviewer{Email: cleo, Name: "Cleo Client"}},
		Timeout: countersign.Duration(timeout)}
}

// linkDecision is what the review page sends: no member, the step's e-mail,
// source link, the link's request id.
func linkDecision(revision, step int, email, decision, note, reqID string) countersign.DecisionSignal {
	return countersign.DecisionSignal{PostID: "p1", Revision: revision, Step: step, External: email, Decision: decision,
		Note: note, Source: countersign.SourceLink, RequestID: reqID}
}

func TestExternalStepApprovedThroughItsLink(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana"), external(48*time.Hour)))
	f.approve(time.Minute, "ana", 1, 1)
	f.queryAt(2*time.Minute, func(st countersign.PostState) {
		require.Equal(t, 2, st.CurrentStep)
		require.Empty(t, st.Steps[1].Eligible, "nobody in the directory")
		require.Empty(t, st.Awaited)
		require.Contains(t, st.WaitingFor, "external:"+cleo)
	})
	// Members cannot answer the external step, through a signal or an Update.
	f.approve(3*time.Minute, "dan", 1, 2)
	upd := f.update(4*time.Minute, countersign.UpdateDecide, countersign.DecisionSignal{PostID: "p1", Revision: 1, Step: 2,
		MemberID: "dan", Decision: countersign.DecisionApprove, Source: countersign.SourceAPI, RequestID: "upd-dan"})
	// A member passing as the reviewer: another e-mail, or the right one with a member id.
	f.signalAt(5*time.Minute, countersign.SignalDecision, linkDecision(1, 2, "eve@client.test", countersign.DecisionApprove, "", "link:x"))
	forged := linkDecision(1, 2, cleo, countersign.DecisionApprove, "", "link:y")
	forged.MemberID = "dan"
	f.signalAt(6*time.Minute, countersign.SignalDecision, forged)
	// Straight to Temporal, without the API's MAC.
	unsigned := linkDecision(1, 2, cleo, countersign.DecisionApprove, "", "link:z")
	unsigned.MAC = "AAAA"
	f.signalAt(7*time.Minute, countersign.SignalDecision, unsigned)
	f.signalAt(8*time.Minute, countersign.SignalDecision, linkDecision(1, 2, strings.ToUpper(cleo), countersign.DecisionApprove, "", "link:ok"))
	f.signalAt(8*time.Minute, countersign.SignalDecision, linkDecision(1, 2, cleo, countersign.DecisionApprove, "", "link:ok")) // the same link again

	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.NotNil(t, upd.rejected, "the validator refuses a member on an external step")
	require.Contains(t, upd.rejected.Error(), "external reviewer")
	require.Equal(t, []string{"dan:not_awaited", ":not_awaited", "dan:not_awaited", ":unsigned", ":not_waiting"}, f.ignored())
	rec := f.publishes[0].Approvals[1]
	require.Equal(t, strings.ToUpper(cleo), rec.External)
	require.Empty(t, rec.MemberID)
	require.Equal(t, countersign.SourceLink, rec.Source)
	counted := f.eventsOf(countersign.EventDecisionCounted)
	require.Len(t, counted, 2)
	require.Empty(t, counted[1].Actor)
	require.Equal(t, countersign.SourceLink, counted[1].Source)
	require.Contains(t, counted[1].Detail, "by external reviewer")

	opened := f.notesOf(activities.NotifyStepOpened)
	require.Len(t, opened, 2)
	require.Nil(t, opened[0].External, "a member step e-mails nobody")
	require.Equal(t, &countersign.ExternalReviewer{Email: cleo, Name: "Cleo Client"}, opened[1].External)
	require.Equal(t, start.Add(time.Minute+48*time.Hour), *opened[1].LinkExpires, "the link expires with the step")
	require.Empty(t, opened[1].MemberIDs)
	for _, a := range f.resolved {
		require.Nil(t, a.External, "an external step resolves nobody")
	}
	require.Empty(t, f.eventsOf(countersign.EventStepUnsatisfiable), "the reviewer may answer: the step is satisfiable")
	require.Empty(t, f.notesOf(activities.NotifyUnsatisfiable))
}

func TestExternalStepRejectedThroughItsLink(t *testing.T) {
	f := newFixture(t)
	f.signalAt(time.Minute, countersign.SignalDecision, linkDecision(1, 1, cleo, countersign.DecisionReject, " ", "link:a"))
	f.signalAt(2*time.Minute, countersign.SignalDecision, linkDecision(1, 1, cleo, countersign.DecisionReject, "Wrong date", "link:a"))

	st := f.run(input(chain(countersign.LateExpire, external(0))))

	require.Equal(t, countersign.PostRejected, st.Status)
	require.Equal(t, cleo, st.Steps[0].Rejection.External)
	require.Equal(t, []string{":note_required"}, f.ignored())
	rejected := f.eventsOf(countersign.EventRejected)
	require.Len(t, rejected, 1)
	require.Empty(t, rejected[0].Actor)
	require.Equal(t, countersign.SourceLink, rejected[0].Source)
	require.Equal(t, "Wrong date", rejected[0].Detail)
	notes := f.notesOf(activities.NotifyRejected)
	require.Len(t, notes, 1)
	require.Equal(t, []string{"author"}, notes[0].MemberIDs)
	require.Nil(t, f.notesOf(activities.NotifyStepOpened)[0].LinkExpires, "a step without timeout: the link lives while it is open")
}

func TestExternalStepExpiresWithItsLink(t *testing.T) {
	f := newFixture(t)

	st := f.run(input(chain(countersign.LateExpire, external(2*time.Hour))))

	require.Equal(t, countersign.PostExpired, st.Status)
	require.Equal(t, countersign.StepExpired, st.Steps[0].Status)
	require.Equal(t, start.Add(2*time.Hour), f.eventsOf(countersign.EventExpired)[0].At)
	reminders := f.notesOf(activities.NotifyReminder)
	require.Len(t, reminders, 1)
	require.Equal(t, cleo, reminders[0].External.Email, "the reminder e-mails the reviewer again")
	require.Equal(t, start.Add(2*time.Hour), *reminders[0].LinkExpires)
	require.Empty(t, f.publishes)
	require.Empty(t, f.eventsOf(countersign.EventStepUnsatisfiable))
}

func TestExternalLinkVoidedByAnEdit(t *testing.T) {
	f := newFixture(t)
	f.signalAt(time.Hour, countersign.SignalEdit, countersign.EditSignal{Revision: 1, Text: "Hello, world!", By: "author", Source: countersign.SourceAPI})
	f.signalAt(2*time.Hour, countersign.SignalDecision, linkDecision(1, 1, cleo, countersign.DecisionApprove, "", "link:rev1"))
	f.signalAt(3*time.Hour, countersign.SignalDecision, linkDecision(2, 1, cleo, countersign.DecisionApprove, "", "link:rev2"))

	st := f.run(input(chain(countersign.LateExpire, external(48*time.Hour))))

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, 2, st.Revision)
	require.Equal(t, []string{":stale_revision"}, f.ignored())
	opened := f.notesOf(activities.NotifyStepOpened)
	require.Len(t, opened, 2, "the new revision sends a new link")
	require.Equal(t, 1, opened[0].Revision)
	require.Equal(t, 2, opened[1].Revision)
	require.Equal(t, start.Add(time.Hour+48*time.Hour), *opened[1].LinkExpires)
}

func TestExternalStepWithFallbackTeam(t *testing.T) {
	f := newFixture(t)
	step := external(time.Hour)
	step.FallbackTeam, step.FallbackTimeout = "pr", countersign.Duration(time.Hour)
	f.approve(30*time.Minute, "bob", 1, 1) // not yet: the step waits for its reviewer
	f.approve(90*time.Minute, "bob", 1, 1) // the fallback team may answer once it opens

	st := f.run(input(chain(countersign.LateExpire, step)))

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, []string{"bob:not_awaited"}, f.ignored())
	require.Equal(t, start.Add(2*time.Hour), *f.notesOf(activities.NotifyStepOpened)[0].LinkExpires, "the link lasts through the fallback")
}
