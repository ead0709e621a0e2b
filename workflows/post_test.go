package workflows_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
	"github.com/countersign/countersign/internal/secrets"
	"github.com/countersign/countersign/workflows"
)

// The tests drive PostWorkflow in the SDK's test environment: time is skipped,
// activities are mocks that record what they were asked, and signals are sent
// at simulated times with RegisterDelayedCallback. Every test ends with the
// invariants of check(): the workflow completed, event keys are unique and
// sequential, the mirror's last state is the workflow's result, and no timer
// is left running.

var (
	start = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	a     *activities.Activities // names the activities in mocks
)

// fixture is one workflow run with its recording mocks.
type fixture struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment

	dir          map[string][]string          // approver.String() -> member ids
	absences     []countersign.Delegation     // the directory's absences (ResolveApprovers returns those of its members)
	deny         map[string]string            // member id -> reason AuthorizeDecision gives
	rights       map[string]countersign.Right // member id -> right on the account (default: editor)
	signer       *secrets.DecisionSigner      // signs what the fixture sends as the API would
	unsigned     bool                         // send decisions and edits without a MAC (straight to Temporal)
	changeReqs   []activities.AuthorizeChangeRequest
	publishErr   error         // what Publish returns (nil: success)
	publishFails int           // how many Publish attempts fail first, retryably (the network is down)
	publishDelay time.Duration // how long Publish takes on the workflow's clock
	authDown     bool          // AuthorizeDecision fails (directory unavailable)
	authDelay    time.Duration // how long AuthorizeDecision takes on the workflow's clock
	notifyDown   bool          // Notify fails (Slack unavailable)
	saveFailures int           // how many SavePostState attempts fail first
	failedSaves  [][]string    // event keys of the failed SavePostState attempts

	acts       []string // activity types, in the order they ran
	local      []string // the same, local activities only
	saves      []activities.SavePostStateInput
	upsertsAt  []int // number of search attribute upserts when each save happened
	upserts    []temporal.SearchAttributes
	notes      []activities.Notification
	authReqs   []activities.AuthorizeRequest
	resolved   []countersign.Approver
	publishes  []activities.PublishRequest
	openTimers map[string]time.Duration
	timers     []time.Duration // every timer started, in order
	canceled   []time.Duration // durations of the timers canceled
	reqN       int
	scheduled  int // callbacks registered with at
	ran        int // callbacks that ran
}

func newFixture(t *testing.T) *fixture {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(start)
	env.RegisterWorkflow(workflows.PostWorkflow)
	env.RegisterActivity(&activities.Activities{})
	f := &fixture{
		t: t, env: env,
		dir: map[string][]string{
			"member:ana":     {"ana"},
			"team:pr":        {"bob", "cid"},
			"team:ops":       {"gus", "hal"},
			"role:approvers": {"ana", "dan", "eve", "author"},
		},
		deny:       map[string]string{},
		rights:     map[string]countersign.Right{},
		openTimers: map[string]time.Duration{},
	}
	signer, err := secrets.NewDecisionSigner([]byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, err)
	f.signer = signer
	// The authorizations are the real activities (MAC checks, rights) over
	// the fixture's directory.
	real := &activities.Activities{Directory: fixtureDir{f}, Signer: signer}
	env.OnActivity(a.ResolveApprovers, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ResolveApproversInput) (activities.ResolveApproversResult, error) {
			f.resolved = append(f.resolved, in.Approver)
			ids := f.dir[in.Approver.String()]
			dels, _ := fixtureDir{f}.Delegations(context.Background(), in.OrgID, ids)
			return activities.ResolveApproversResult{MemberIDs: ids, Delegations: dels}, nil
		})
	env.OnActivity(a.AuthorizeDecision, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.AuthorizeRequest) (activities.AuthorizeResult, error) {
			if f.authDown {
				return activities.AuthorizeResult{}, errors.New("connection refused")
			}
			return real.AuthorizeDecision(ctx, in)
		}).AfterFn(func() time.Duration { return f.authDelay })
	env.OnActivity(a.AuthorizeChange, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.AuthorizeChangeRequest) (activities.AuthorizeChangeResult, error) {
			if f.authDown {
				return activities.AuthorizeChangeResult{}, errors.New("connection refused")
			}
			f.changeReqs = append(f.changeReqs, in)
			return real.AuthorizeChange(ctx, in)
		}).AfterFn(func() time.Duration { return f.authDelay })
	env.OnActivity(a.SavePostState, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SavePostStateInput) error {
			if f.saveFailures > 0 {
				f.saveFailures--
				f.failedSaves = append(f.failedSaves, keys(in.Events))
				return errors.New("database is restarting")
			}
			f.saves = append(f.saves, in)
			f.upsertsAt = append(f.upsertsAt, len(f.upserts))
			if !f.notifyDown { // the activity drops what Slack refuses for NotifyBound
				f.notes = append(f.notes, in.Notifications...)
			}
			return nil
		})
	env.OnActivity(a.Notify, mock.Anything, mock.Anything).Return(
		func(_ context.Context, n activities.Notification) error {
			if f.notifyDown {
				return errors.New("slack: 503")
			}
			f.notes = append(f.notes, n)
			return nil
		})
	env.OnActivity(a.Publish, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PublishRequest) (activities.PublishResult, error) {
			if in.Mirror != nil { // stored first, like the real activity
				f.saves = append(f.saves, *in.Mirror)
				f.upsertsAt = append(f.upsertsAt, len(f.upserts))
			}
			f.publishes = append(f.publishes, in)
			if f.publishErr != nil {
				return activities.PublishResult{}, f.publishErr
			}
			if f.publishFails > 0 {
				f.publishFails--
				return activities.PublishResult{}, temporal.NewApplicationError("connection refused", activities.ErrTypePublishRetryable)
			}
			return activities.PublishResult{ExternalID: "ext-1", ExternalURL: "https://social.test/@acme/ext-1"}, nil
		}).AfterFn(func() time.Duration { return f.publishDelay })
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		f.upserts = append(f.upserts, args.Get(0).(temporal.SearchAttributes))
	}).Return(nil)
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		f.acts = append(f.acts, info.ActivityType.Name)
	})
	env.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, _ []any) {
		f.acts = append(f.acts, info.ActivityType.Name)
		f.local = append(f.local, info.ActivityType.Name)
	})
	env.SetOnTimerScheduledListener(func(id string, d time.Duration) {
		f.openTimers[id] = d
		f.timers = append(f.timers, d)
	})
	env.SetOnTimerFiredListener(func(id string) { delete(f.openTimers, id) })
	env.SetOnTimerCanceledListener(func(id string) {
		f.canceled = append(f.canceled, f.openTimers[id])
		delete(f.openTimers, id)
	})
	return f
}

// fixtureDir is the directory the real authorization activities ask.
type fixtureDir struct{ f *fixture }

func (d fixtureDir) EligibleApprovers(_ context.Context, _, _ string, a countersign.Approver) ([]string, error) {
	d.f.resolved = append(d.f.resolved, a)
	return d.f.dir[a.String()], nil
}

func (d fixtureDir) AuthorizeDecision(_ context.Context, in activities.AuthorizeRequest) (activities.AuthorizeResult, error) {
	d.f.authReqs = append(d.f.authReqs, in)
	if in.OnBehalfOf != "" { // the delegate decides as the absent member would
		if !slices.ContainsFunc(d.f.absences, func(x countersign.Delegation) bool {
			return x.MemberID == in.OnBehalfOf && x.DelegateID == in.MemberID
		}) {
			return activities.AuthorizeResult{Code: countersign.ReasonNotDelegate, Reason: "not away with this delegate"}, nil
		}
		in.MemberID = in.OnBehalfOf
	}
	if reason, ok := d.f.deny[in.MemberID]; ok {
		return activities.AuthorizeResult{Allowed: false, Reason: reason}, nil
	}
	return activities.AuthorizeResult{Allowed: true}, nil
}

func (d fixtureDir) Delegations(_ context.Context, _ string, memberIDs []string) ([]countersign.Delegation, error) {
	var out []countersign.Delegation
	for _, del := range d.f.absences {
		if slices.Contains(memberIDs, del.MemberID) {
			out = append(out, del)
		}
	}
	return out, nil
}

func (d fixtureDir) EffectiveRight(_ context.Context, _, _, memberID string) (countersign.Right, error) {
	if r, ok := d.f.rights[memberID]; ok {
		return r, nil
	}
	if _, gone := d.f.deny[memberID]; gone {
		return countersign.Right{}, countersign.Errorf(countersign.ENOTFOUND, "member not found")
	}
	return countersign.LevelRight(countersign.LevelEditor, nil), nil
}

// --- inputs -----------------------------------------------------------------

func chain(policy countersign.LatePolicy, steps ...countersign.ChainStep) countersign.Chain {
	return countersign.Chain{ID: "chain-1", Name: "Brand", Steps: steps, LatePolicy: policy, DistinctApprovers: true}
}

func member(id string) countersign.ChainStep {
	return countersign.ChainStep{Approver: countersign.Approver{Member: id}}
}

func team(id string, quorum int) countersign.ChainStep {
	return countersign.ChainStep{Approver: countersign.Approver{Team: id}, Quorum: quorum}
}

func role() countersign.ChainStep {
	return countersign.ChainStep{Approver: countersign.Approver{Role: countersign.ApproverRoleApprovers}}
}

func input(c countersign.Chain) workflows.PostInput {
	return workflows.PostInput{PostID: "p1", OrgID: "org1", AccountID: "acc1", AuthorID: "author", Revision: 1,
		Text: "Hello world", Chain: c, NeedsApproval: true}
}

func at(d time.Duration) *time.Time {
	t := start.Add(d)
	return &t
}

// --- signals at simulated times ------------------------------------------------

func (f *fixture) signalAt(after time.Duration, name string, payload any) {
	f.at(after, func() { f.env.SignalWorkflow(name, f.sign(payload)) })
}

// sign puts the MAC the API would on a decision or an edit (unless the test
// sends them straight to Temporal, f.unsigned).
func (f *fixture) sign(payload any) any {
	if f.unsigned {
		return payload
	}
	switch v := payload.(type) {
	case countersign.DecisionSignal:
		if v.MAC == "" {
			v.MAC = f.signer.Sign(v)
		}
		return v
	case countersign.EditSignal:
		if v.MAC == "" {
			v.MAC = f.signer.SignEdit(v)
		}
		return v
	}
	return payload
}

// at runs fn at a simulated time; check() verifies that it did run, so an
// assertion scheduled after the workflow's end cannot pass silently.
func (f *fixture) at(after time.Duration, fn func()) {
	f.scheduled++
	f.env.RegisterDelayedCallback(func() {
		f.ran++
		fn()
	}, after)
}

// decide sends a decision with a fresh request id and returns that id.
func (f *fixture) decide(after time.Duration, memberID string, revision, step int, decision, note string) string {
	f.reqN++
	id := fmt.Sprintf("req-%d", f.reqN)
	f.decideReq(after, id, memberID, revision, step, decision, note)
	return id
}

func (f *fixture) decideReq(after time.Duration, reqID, memberID string, revision, step int, decision, note string) {
	f.signalAt(after, countersign.SignalDecision, countersign.DecisionSignal{PostID: "p1", Revision: revision,
		Step: step, MemberID: memberID, Decision: decision, Note: note, Source: countersign.SourceSlack, RequestID: reqID})
}

func (f *fixture) approve(after time.Duration, memberID string, revision, step int) string {
	return f.decide(after, memberID, revision, step, countersign.DecisionApprove, "")
}

// query returns the workflow's "state" query result now.
func (f *fixture) query() countersign.PostState {
	v, err := f.env.QueryWorkflow(countersign.QueryState)
	require.NoError(f.t, err)
	var st countersign.PostState
	require.NoError(f.t, v.Get(&st))
	return st
}

// queryAt runs check with the state queried at a simulated time.
func (f *fixture) queryAt(after time.Duration, check func(countersign.PostState)) {
	f.at(after, func() { check(f.query()) })
}

// currentDetails reads the workflow's current details as the UI does.
func (f *fixture) currentDetails() string {
	v, err := f.env.QueryWorkflow("__temporal_workflow_metadata")
	require.NoError(f.t, err)
	var md sdkpb.WorkflowMetadata
	require.NoError(f.t, v.Get(&md))
	return md.GetCurrentDetails()
}

// --- running and reading --------------------------------------------------------

// run executes the workflow to its end and checks the invariants.
func (f *fixture) run(in workflows.PostInput) countersign.PostState {
	f.t.Helper()
	f.env.ExecuteWorkflow(workflows.PostWorkflow, in)
	require.True(f.t, f.env.IsWorkflowCompleted(), "workflow did not complete")
	var st countersign.PostState
	if err := f.env.GetWorkflowError(); err == nil {
		require.NoError(f.t, f.env.GetWorkflowResult(&st))
	} else {
		st = f.lastSaved()
	}
	f.check(st)
	return st
}

func (f *fixture) check(st countersign.PostState) {
	f.t.Helper()
	events := f.events()
	keys := map[string]bool{}
	for i, e := range events {
		require.Equal(f.t, i+1, e.Seq, "events are mirrored in order, each once")
		require.False(f.t, keys[e.Key], "duplicate event key %s", e.Key)
		keys[e.Key] = true
		require.NotEmpty(f.t, e.Source)
		require.False(f.t, e.At.IsZero())
	}
	require.Empty(f.t, f.openTimers, "timers left running at the end")
	require.Equal(f.t, f.scheduled, f.ran, "a scheduled signal or check did not run before the end")
	last := f.lastSaved()
	require.Equal(f.t, st.Status, last.Status, "the mirror ends with the workflow's status")
	require.Equal(f.t, st.Revision, last.Revision)
	require.True(f.t, last.Closed)
}

func (f *fixture) lastSaved() countersign.PostState {
	require.NotEmpty(f.t, f.saves)
	return f.saves[len(f.saves)-1].State
}

// events are every event stored, in order. Like the store, an identical
// event sent again (a transition re-sent after a failed publish) is skipped;
// a different event under a stored key is kept, so check() catches it.
func (f *fixture) events() []countersign.PostEvent {
	var out []countersign.PostEvent
	stored := map[string]countersign.PostEvent{}
	for _, s := range f.saves {
		for _, e := range s.Events {
			if prev, ok := stored[e.Key]; ok && reflect.DeepEqual(prev, e) {
				continue
			}
			stored[e.Key] = e
			out = append(out, e)
		}
	}
	return out
}

func (f *fixture) eventTypes() []string {
	var out []string
	for _, e := range f.events() {
		out = append(out, e.Type)
	}
	return out
}

func (f *fixture) eventsOf(typ string) []countersign.PostEvent {
	var out []countersign.PostEvent
	for _, e := range f.events() {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func (f *fixture) notesOf(kind activities.NotificationKind) []activities.Notification {
	var out []activities.Notification
	for _, n := range f.notes {
		if n.Kind == kind {
			out = append(out, n)
		}
	}
	return out
}

func keys(events []countersign.PostEvent) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.Key)
	}
	return out
}

// saValues lists, in upsert order, every value set for one search attribute.
// (The SDK hides unset values from the upserted SearchAttributes, so a
// ValueUnset cannot be observed here.)
func saValues[T any](f *fixture, get func(temporal.SearchAttributes) (T, bool)) []T {
	var out []T
	for _, sa := range f.upserts {
		if v, ok := get(sa); ok {
			out = append(out, v)
		}
	}
	return out
}

// ignored maps the reason of every ignored decision to its actor.
func (f *fixture) ignored() []string {
	var out []string
	for _, e := range f.eventsOf(countersign.EventDecisionIgnored) {
		out = append(out, e.Actor+":"+e.Reason)
	}
	return out
}

// --- no approval --------------------------------------------------------------

func TestNoApprovalNeededPublishesAtScheduledTime(t *testing.T) {
	f := newFixture(t)
	in := input(countersign.DefaultChain())
	in.NeedsApproval = false
	in.ScheduledAt = at(2 * time.Hour)
	f.queryAt(time.Hour, func(st countersign.PostState) {
		require.Equal(t, countersign.PostScheduled, st.Status)
		require.Equal(t, *at(2 * time.Hour), *st.Deadline)
	})

	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, "ext-1", st.ExternalID)
	require.Equal(t, "https://social.test/@acme/ext-1", st.ExternalURL)
	require.Equal(t, start.Add(2*time.Hour), *st.PublishedAt)
	require.Empty(t, f.resolved, "nobody is asked")
	require.Len(t, f.publishes, 1)
	require.Equal(t, 1, f.publishes[0].Revision)
	require.Equal(t, "Hello world", f.publishes[0].Text)
	require.Equal(t, countersign.ContentHash("Hello world", nil), f.publishes[0].ContentHash)
	require.Equal(t, []string{"submitted", "publish_started", "published"}, f.eventTypes())
	require.Equal(t, []string{"author"}, f.notesOf(activities.NotifyPublished)[0].MemberIDs)
}

func TestNoApprovalNeededAndNoScheduleMeansNow(t *testing.T) {
	f := newFixture(t)
	in := input(countersign.DefaultChain())
	in.NeedsApproval = false

	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, start, *st.PublishedAt)
	require.Empty(t, f.timers)
}

// --- the chain ----------------------------------------------------------------

func TestThreeStepsMemberTeamAndRole(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana"), team("pr", 1), role()))
	f.approve(10*time.Minute, "ana", 1, 1)
	f.approve(20*time.Minute, "bob", 1, 2)
	f.queryAt(25*time.Minute, func(st countersign.PostState) {
		require.Equal(t, countersign.PostPendingApproval, st.Status)
		require.Equal(t, 3, st.CurrentStep)
		require.Equal(t, countersign.StepApproved, st.Steps[1].Status)
		require.Equal(t, countersign.StepOpen, st.Steps[2].Status)
		require.Contains(t, f.currentDetails(), "Waiting for approval of step 3/3 (revision 1) by role:approvers")
	})
	f.approve(30*time.Minute, "dan", 1, 3)

	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, start.Add(30*time.Minute), *st.PublishedAt)
	require.Equal(t, 3, st.TotalSteps)
	for i, who := range []string{"ana", "bob", "dan"} {
		require.Equal(t, countersign.StepApproved, st.Steps[i].Status)
		require.Len(t, st.Steps[i].Approvals, 1)
		require.Equal(t, who, st.Steps[i].Approvals[0].MemberID)
		require.Equal(t, countersign.SourceSlack, st.Steps[i].Approvals[0].Source)
	}
	require.Equal(t, []string{"ana", "author", "dan", "eve"}, st.Steps[2].Eligible)

	// Each step was opened in order, recorded and announced to its approvers.
	opened := f.eventsOf(countersign.EventStepOpened)
	require.Len(t, opened, 3)
	for i, when := range []time.Duration{0, 10 * time.Minute, 20 * time.Minute} {
		require.Equal(t, i+1, opened[i].Step)
		require.Equal(t, start.Add(when), opened[i].At)
	}
	notes := f.notesOf(activities.NotifyStepOpened)
	require.Len(t, notes, 3)
	require.Equal(t, []string{"ana"}, notes[0].MemberIDs)
	require.Equal(t, []string{"bob", "cid"}, notes[1].MemberIDs)
	require.Equal(t, "pr", notes[1].TeamID)
	require.Equal(t, 2, notes[1].Step)
	require.Equal(t, 3, notes[1].TotalSteps)

	// Every decision was authorized against the directory for its step.
	require.Len(t, f.authReqs, 3)
	require.Equal(t, countersign.Approver{Team: "pr"}, f.authReqs[1].Approver)
	require.Equal(t, []string{"ana", "bob"}, f.authReqs[2].EarlierApprovers)
	require.Equal(t, "author", f.authReqs[2].AuthorID)

	require.Len(t, f.publishes, 1)
	require.Len(t, f.publishes[0].Approvals, 3)
	require.Equal(t, []string{
		"submitted", "step_opened", "decision_counted", "step_opened", "decision_counted", "step_opened",
		"decision_counted", "approved", "publish_started", "published",
	}, f.eventTypes())

	// Search attributes: who is awaited at step 3 excludes the author and ana
	// (she approved step 1); the last upsert says published.
	var approvers [][]string
	for _, sa := range f.upserts {
		if v, ok := sa.GetKeywordList(workflows.SAApprovers); ok {
			approvers = append(approvers, v)
		}
	}
	require.Equal(t, [][]string{{"ana"}, {"bob", "cid"}, {"dan", "eve"}}, approvers)
	first := f.upserts[0]
	org, _ := first.GetKeyword(workflows.SAOrg)
	require.Equal(t, "org1", org)
	status, _ := f.upserts[len(f.upserts)-1].GetKeyword(workflows.SAStatus)
	require.Equal(t, "published", status)
}

func TestQuorumTwoNeedsTwoDistinctApprovals(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, team("pr", 2)))
	f.approve(time.Minute, "bob", 1, 1)
	f.approve(2*time.Minute, "bob", 1, 1) // the same person again does not count twice
	f.queryAt(3*time.Minute, func(st countersign.PostState) {
		require.Equal(t, countersign.PostPendingApproval, st.Status)
		require.Len(t, st.Steps[0].Approvals, 1)
		require.Equal(t, 2, st.Steps[0].Quorum)
	})
	f.approve(4*time.Minute, "cid", 1, 1)

	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, start.Add(4*time.Minute), *st.PublishedAt)
	require.Len(t, st.Steps[0].Approvals, 2)
	require.Equal(t, []string{"bob:already_decided"}, f.ignored())
	counted := f.eventsOf(countersign.EventDecisionCounted)
	require.Equal(t, "approval 1/2 on step 1", counted[0].Detail)
	require.Equal(t, "approval 2/2 on step 1", counted[1].Detail)
	// The first approval is told as progress (the requests show "1 of 2"),
	// in the save that stores it.
	progress := f.notesOf(activities.NotifyProgress)
	require.Len(t, progress, 1)
	require.Equal(t, "bob", progress[0].Actor)
}

func fallbackChain() countersign.Chain {
	s := member("ana")
	s.Timeout = countersign.Duration(4 * time.Hour)
	s.FallbackTeam = "ops"
	s.FallbackTimeout = countersign.Duration(2 * time.Hour)
	return chain(countersign.LateExpire, s)
}

func TestTimeoutThenFallbackTeamApproves(t *testing.T) {
	f := newFixture(t)
	f.queryAt(4*time.Hour+time.Minute, func(st countersign.PostState) {
		require.True(t, st.Steps[0].FallbackActive)
		require.Equal(t, []string{"gus", "hal"}, st.Steps[0].FallbackEligible)
		require.Equal(t, start.Add(6*time.Hour), *st.Steps[0].Deadline)
	})
	f.approve(5*time.Hour+45*time.Minute, "gus", 1, 1)

	st := f.run(input(fallbackChain()))

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, start.Add(5*time.Hour+45*time.Minute), *st.PublishedAt)

	reminders := f.eventsOf(countersign.EventReminderSent)
	require.Len(t, reminders, 2, "one per phase, when a quarter of its time is left")
	require.Equal(t, start.Add(3*time.Hour), reminders[0].At)
	require.Equal(t, start.Add(5*time.Hour+30*time.Minute), reminders[1].At)

	fb := f.eventsOf(countersign.EventFallbackOpened)
	require.Len(t, fb, 1)
	require.Equal(t, start.Add(4*time.Hour), fb[0].At)

	// The fallback team is told, and so is the original approver.
	notes := f.notesOf(activities.NotifyFallback)
	require.Len(t, notes, 1)
	require.Equal(t, "ops", notes[0].TeamID)
	require.Equal(t, []string{"ana", "gus", "hal"}, notes[0].MemberIDs)
	remindNotes := f.notesOf(activities.NotifyReminder)
	require.Equal(t, []string{"ana"}, remindNotes[0].MemberIDs)
	require.Equal(t, []string{"ana", "gus", "hal"}, remindNotes[1].MemberIDs)
	require.Equal(t, "ops", remindNotes[1].TeamID)

	// gus is eligible only through the fallback: the directory is told so.
	require.Len(t, f.authReqs, 1)
	require.Equal(t, "ops", f.authReqs[0].FallbackTeam)
}

func TestFallbackTimesOutAndThePostExpires(t *testing.T) {
	f := newFixture(t)

	st := f.run(input(fallbackChain()))

	require.Equal(t, countersign.PostExpired, st.Status)
	require.Equal(t, countersign.StepExpired, st.Steps[0].Status)
	expired := f.eventsOf(countersign.EventExpired)
	require.Len(t, expired, 1)
	require.Equal(t, start.Add(6*time.Hour), expired[0].At)
	require.Equal(t, "step 1/1 timed out", expired[0].Detail)
	notes := f.notesOf(activities.NotifyExpired)
	require.Len(t, notes, 1)
	require.Equal(t, []string{"ana", "author", "gus", "hal"}, notes[0].MemberIDs, "everyone involved is told")
	require.Empty(t, f.publishes)
}

func TestStepWithoutFallbackExpiresAtItsTimeout(t *testing.T) {
	f := newFixture(t)
	s := team("pr", 1)
	s.Timeout = countersign.Duration(time.Hour)

	st := f.run(input(chain(countersign.LateExpire, s)))

	require.Equal(t, countersign.PostExpired, st.Status)
	require.Equal(t, start.Add(time.Hour), f.eventsOf(countersign.EventExpired)[0].At)
	require.Empty(t, f.eventsOf(countersign.EventFallbackOpened))
}

func TestUndecodableSignalIsDroppedWithoutBlockingTheWorkflow(t *testing.T) {
	f := newFixture(t)
	s := member("ana")
	s.Timeout = countersign.Duration(time.Hour)
	f.signalAt(time.Minute, countersign.SignalDecision, "approve please") // not a DecisionSignal

	st := f.run(input(chain(countersign.LateExpire, s)))

	require.Equal(t, countersign.PostExpired, st.Status)
	require.Equal(t, start.Add(time.Hour), f.eventsOf(countersign.EventExpired)[0].At, "the step deadline still fired on time")
	require.Empty(t, f.authReqs)
}

// --- reject, edit, resubmit ---------------------------------------------------

func TestRejectAtStep2ThenEditResubmits(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana"), team("pr", 1)))
	f.approve(10*time.Minute, "ana", 1, 1)
	f.decide(20*time.Minute, "bob", 1, 2, countersign.DecisionReject, "off-brand")
	f.queryAt(time.Hour, func(st countersign.PostState) {
		require.Equal(t, countersign.PostRejected, st.Status)
		require.Equal(t, countersign.StepRejected, st.Steps[1].Status)
		require.Equal(t, "off-brand", st.Steps[1].Rejection.Note)
		require.Equal(t, start.Add(20*time.Minute+workflows.ResubmissionWindow), *st.Deadline)
	})
	f.approve(2*time.Hour, "cid", 1, 2) // too late: the chain ended
	f.signalAt(24*time.Hour, countersign.SignalEdit, countersign.EditSignal{Revision: 1, Text: "Hello, world!", By: "author", Source: countersign.SourceAPI})
	f.queryAt(25*time.Hour, func(st countersign.PostState) {
		require.Equal(t, countersign.PostPendingApproval, st.Status)
		require.Equal(t, 2, st.Revision)
		require.Equal(t, 1, st.CurrentStep)
		require.Empty(t, st.Steps[0].Approvals, "approvals of revision 1 are void")
	})
	f.approve(26*time.Hour, "ana", 2, 1)
	f.approve(27*time.Hour, "bob", 2, 2)

	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, 2, st.Revision)
	require.Equal(t, "Hello, world!", st.Text)
	require.Equal(t, countersign.ContentHash("Hello, world!", nil), st.ContentHash)
	require.Len(t, f.publishes, 1)
	require.Equal(t, 2, f.publishes[0].Revision)
	require.Equal(t, "Hello, world!", f.publishes[0].Text)

	rejected := f.eventsOf(countersign.EventRejected)
	require.Len(t, rejected, 1)
	require.Equal(t, "bob", rejected[0].Actor)
	require.Equal(t, "off-brand", rejected[0].Detail)
	notes := f.notesOf(activities.NotifyRejected)
	require.Len(t, notes, 1)
	require.Equal(t, []string{"author"}, notes[0].MemberIDs, "the author is told")
	require.Equal(t, "off-brand", notes[0].Detail)
	require.Equal(t, []string{"cid:not_waiting"}, f.ignored())

	edited := f.eventsOf(countersign.EventEdited)
	require.Len(t, edited, 1)
	require.Equal(t, 2, edited[0].Revision)
	require.Equal(t, countersign.SourceAPI, edited[0].Source)
	require.Contains(t, edited[0].Detail, "restarting at step 1")
	require.Len(t, f.notesOf(activities.NotifySuperseded), 1)
}

func TestRejectedPostEndsAfterTheResubmissionWindow(t *testing.T) {
	f := newFixture(t)
	f.decide(time.Hour, "ana", 1, 1, countersign.DecisionReject, "no")

	st := f.run(input(chain(countersign.LateExpire, member("ana"))))

	require.Equal(t, countersign.PostRejected, st.Status)
	require.True(t, st.Closed)
	closed := f.eventsOf(countersign.EventClosed)
	require.Len(t, closed, 1)
	require.Equal(t, start.Add(time.Hour+workflows.ResubmissionWindow), closed[0].At)
	require.Empty(t, f.publishes)
}

func TestEditAtStep3VoidsApprovalsAndSameContentIsANoOp(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana"), team("pr", 1), role()))
	f.approve(time.Minute, "ana", 1, 1)
	f.approve(2*time.Minute, "bob", 1, 2)
	// Same content at step 3: recorded, approvals kept.
	f.signalAt(3*time.Minute, countersign.SignalEdit, countersign.EditSignal{Revision: 1, Text: "Hello world", By: "author"})
	f.queryAt(4*time.Minute, func(st countersign.PostState) {
		require.Equal(t, 3, st.CurrentStep)
		require.Equal(t, 1, st.Revision)
	})
	// A real change at step 3: everything starts over.
	f.signalAt(5*time.Minute, countersign.SignalEdit, countersign.EditSignal{Revision: 1, Text: "Hello world", MediaURLs: []string{"https://img.test/1.png"}, By: "author"})
	f.approve(6*time.Minute, "dan", 1, 3) // for the voided revision
	f.queryAt(7*time.Minute, func(st countersign.PostState) {
		require.Equal(t, countersign.PostPendingApproval, st.Status)
		require.Equal(t, 2, st.Revision)
		require.Equal(t, 1, st.CurrentStep)
		for _, s := range st.Steps {
			require.Empty(t, s.Approvals)
		}
		require.Equal(t, countersign.StepWaiting, st.Steps[1].Status)
	})
	f.approve(8*time.Minute, "ana", 2, 1)
	f.approve(9*time.Minute, "cid", 2, 2)
	f.approve(10*time.Minute, "eve", 2, 3)

	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, 2, st.Revision)
	require.Equal(t, []string{"https://img.test/1.png"}, f.publishes[0].MediaURLs)
	require.Equal(t, []string{"ana", "cid", "eve"}, []string{
		f.publishes[0].Approvals[0].MemberID, f.publishes[0].Approvals[1].MemberID, f.publishes[0].Approvals[2].MemberID})

	noop := f.eventsOf(countersign.EventSignalIgnored)
	require.Len(t, noop, 1)
	require.Equal(t, countersign.ReasonUnchanged, noop[0].Reason)
	require.Equal(t, 1, noop[0].Revision)
	require.Equal(t, []string{"dan:stale_revision"}, f.ignored())
	require.Len(t, f.eventsOf(countersign.EventStepOpened), 6)

	superseded := f.notesOf(activities.NotifySuperseded)
	require.Len(t, superseded, 1)
	require.Equal(t, 1, superseded[0].Revision)
	require.Equal(t, []string{"ana", "author", "bob", "cid", "dan", "eve"}, superseded[0].MemberIDs)
}

// --- reschedule, cancel ---------------------------------------------------------

func TestRescheduleKeepsApprovals(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, team("pr", 2)))
	in.ScheduledAt = at(24 * time.Hour)
	f.approve(time.Hour, "bob", 1, 1)
	// While pending: the time moves, bob's approval stays.
	f.signalAt(2*time.Hour, countersign.SignalReschedule, countersign.RescheduleSignal{ScheduledAt: at(30 * time.Hour), By: "author"})
	f.approve(3*time.Hour, "cid", 1, 1)
	// While scheduled: the sleep is replaced.
	f.signalAt(4*time.Hour, countersign.SignalReschedule, countersign.RescheduleSignal{ScheduledAt: at(48 * time.Hour), By: "author"})
	f.queryAt(5*time.Hour, func(st countersign.PostState) {
		require.Equal(t, countersign.PostScheduled, st.Status)
		require.Equal(t, *at(48 * time.Hour), *st.ScheduledAt)
		require.Len(t, st.Steps[0].Approvals, 2)
	})

	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, start.Add(48*time.Hour), *st.PublishedAt)
	require.Len(t, f.publishes, 1)
	require.Len(t, st.Steps[0].Approvals, 2)
	require.Len(t, f.eventsOf(countersign.EventRescheduled), 2)
	require.Len(t, f.eventsOf(countersign.EventStepOpened), 1, "a reschedule does not restart the chain")
	// The late alarm (24h, then 30h) was replaced, then kept as the sleep once
	// approved (same time), then replaced (48h): never left running.
	require.Equal(t, []time.Duration{24 * time.Hour, 28 * time.Hour, 44 * time.Hour}, f.timers)
	require.Equal(t, []time.Duration{24 * time.Hour, 28 * time.Hour}, f.canceled)
}

func TestCancelBeforeApproval(t *testing.T) {
	f := newFixture(t)
	f.approve(time.Minute, "ana", 1, 1)
	f.signalAt(2*time.Minute, countersign.SignalCancel, countersign.CancelSignal{By: "author", Reason: "typo", Source: countersign.SourceAPI})

	st := f.run(input(chain(countersign.LateExpire, member("ana"), team("pr", 1))))

	require.Equal(t, countersign.PostCanceled, st.Status)
	require.Empty(t, f.publishes)
	canceled := f.eventsOf(countersign.EventCanceled)
	require.Len(t, canceled, 1)
	require.Equal(t, "author", canceled[0].Actor)
	require.Equal(t, "typo", canceled[0].Detail)
	require.Equal(t, []string{"ana", "author", "bob", "cid"}, f.notesOf(activities.NotifyCanceled)[0].MemberIDs)
}

func TestCancelAfterApproval(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana")))
	in.ScheduledAt = at(24 * time.Hour)
	f.approve(time.Minute, "ana", 1, 1)
	f.signalAt(time.Hour, countersign.SignalCancel, countersign.CancelSignal{By: "ana", Reason: "event postponed"})

	st := f.run(in)

	require.Equal(t, countersign.PostCanceled, st.Status)
	require.Empty(t, f.publishes)
	require.Equal(t, start.Add(time.Hour), f.eventsOf(countersign.EventCanceled)[0].At)
	require.Equal(t, countersign.SourceTemporal, f.eventsOf(countersign.EventCanceled)[0].Source, "no source: sent from the Temporal UI")
	require.Equal(t, []time.Duration{24 * time.Hour}, f.timers, "the late alarm is kept as the sleep once approved")
	require.Len(t, f.canceled, 1, "the sleep was canceled")
}

func TestCancelAfterPublishingStartedIsIgnored(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana")))
	f.publishDelay = 10 * time.Minute
	f.approve(time.Minute, "ana", 1, 1)
	f.signalAt(5*time.Minute, countersign.SignalCancel, countersign.CancelSignal{By: "author"})
	f.approve(6*time.Minute, "bob", 1, 1)

	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, start.Add(11*time.Minute), *st.PublishedAt)
	late := f.eventsOf(countersign.EventSignalIgnored)
	require.Len(t, late, 1, "the cancel is recorded, not lost")
	require.Equal(t, countersign.ReasonTooLate, late[0].Reason)
	require.Equal(t, "author", late[0].Actor)
	require.Equal(t, []string{"bob:not_waiting"}, f.ignored())
	types := f.eventTypes()
	require.Equal(t, "published", types[len(types)-3], "late signals are recorded after the outcome")
}

func TestCancelFromTemporalEndsCanceled(t *testing.T) {
	f := newFixture(t)
	f.at(time.Hour, func() { f.env.CancelWorkflow() })

	st := f.run(input(chain(countersign.LateExpire, member("ana"))))

	var canceled *temporal.CanceledError
	require.True(t, errors.As(f.env.GetWorkflowError(), &canceled))
	require.Equal(t, countersign.PostCanceled, st.Status)
	require.Equal(t, countersign.SourceTemporal, f.eventsOf(countersign.EventCanceled)[0].Source)
}

// --- late policies --------------------------------------------------------------

// Nobody answered: the post expires once the scheduled time and the late
// grace for decisions sent in time have passed.
func TestLatePolicyExpireEndsThePostAtTheScheduledTime(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana")))
	in.ScheduledAt = at(2 * time.Hour)
	f.queryAt(119*time.Minute, func(st countersign.PostState) {
		require.Equal(t, countersign.PostPendingApproval, st.Status)
	})

	st := f.run(in)

	require.Equal(t, countersign.PostExpired, st.Status)
	expired := f.eventsOf(countersign.EventExpired)
	require.Len(t, expired, 1)
	require.Equal(t, start.Add(2*time.Hour+workflows.LateGrace), expired[0].At)
	require.Empty(t, f.publishes)
	require.Len(t, f.notesOf(activities.NotifyExpired), 1)
}

func TestLatePolicyPublishWhenApproved(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LatePublishWhenApproved, member("ana")))
	in.ScheduledAt = at(2 * time.Hour)
	f.queryAt(150*time.Minute, func(st countersign.PostState) {
		require.Equal(t, countersign.PostPendingApproval, st.Status, "late, still waiting")
		require.Equal(t, *at(2 * time.Hour), *st.Deadline, "operators see it past its deadline")
	})
	f.approve(3*time.Hour, "ana", 1, 1)

	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, start.Add(3*time.Hour), *st.PublishedAt, "published right after the last approval")
	require.Len(t, f.publishes, 1)
}

func TestLatePolicyHoldWaitsForAReschedule(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateHold, member("ana")))
	in.ScheduledAt = at(2 * time.Hour)
	f.approve(3*time.Hour, "ana", 1, 1)
	f.queryAt(4*time.Hour, func(st countersign.PostState) {
		require.Equal(t, countersign.PostOnHold, st.Status)
		require.Nil(t, st.Deadline)
		require.Empty(t, f.openTimers, "on hold waits for a person, not a timer")
	})
	f.signalAt(5*time.Hour, countersign.SignalReschedule, countersign.RescheduleSignal{ScheduledAt: at(6 * time.Hour), By: "author"})

	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, start.Add(6*time.Hour), *st.PublishedAt)
	require.Len(t, f.eventsOf(countersign.EventOnHold), 1)
	require.Equal(t, start.Add(3*time.Hour), f.eventsOf(countersign.EventOnHold)[0].At)
	require.Equal(t, []string{"author"}, f.notesOf(activities.NotifyOnHold)[0].MemberIDs)
}

// --- ignored decisions ------------------------------------------------------------

func TestIgnoredDecisionsAreRecordedWithTheirReason(t *testing.T) {
	f := newFixture(t)
	f.deny["zed"] = "member was removed from the organization"
	in := input(chain(countersign.LateExpire, member("ana"), team("pr", 2)))

	f.approve(1*time.Minute, "author", 1, 1)                                         // the author
	f.approve(2*time.Minute, "zed", 1, 1)                                            // not the step's member
	f.approve(3*time.Minute, "ana", 0, 1)                                            // stale revision
	f.approve(4*time.Minute, "ana", 1, 2)                                            // wrong step
	f.decide(5*time.Minute, "ana", 1, 1, countersign.DecisionReject, "")             // reject without a note
	f.decide(6*time.Minute, "ana", 1, 1, "maybe", "")                                // not a decision
	first := f.approve(10*time.Minute, "ana", 1, 1)                                  // counts: step 2 opens
	f.decideReq(11*time.Minute, first, "ana", 1, 2, countersign.DecisionApprove, "") // same request again
	f.approve(12*time.Minute, "ana", 1, 2)                                           // same person, two steps
	f.at(13*time.Minute, func() { f.deny["cid"] = "not a member of team pr any more" })
	f.approve(14*time.Minute, "cid", 1, 2) // removed from the team after the step opened
	f.approve(15*time.Minute, "bob", 1, 2)
	f.approve(16*time.Minute, "bob", 1, 2) // same member, same step
	f.queryAt(17*time.Minute, func(st countersign.PostState) {
		require.Equal(t, countersign.PostPendingApproval, st.Status)
		require.Len(t, st.Steps[1].Approvals, 1)
	})
	f.signalAt(time.Hour, countersign.SignalCancel, countersign.CancelSignal{By: "author"})

	st := f.run(in)

	require.Equal(t, countersign.PostCanceled, st.Status)
	require.Equal(t, []string{
		"author:author",
		"zed:not_awaited",
		"ana:stale_revision",
		"ana:wrong_step",
		"ana:note_required",
		"ana:invalid_decision",
		"ana:duplicate_request",
		"ana:distinct_approvers",
		"cid:not_authorized",
		"bob:already_decided",
	}, f.ignored())
	details := map[string]string{}
	for _, e := range f.eventsOf(countersign.EventDecisionIgnored) {
		details[e.Actor+":"+e.Reason] = e.Detail
		require.Equal(t, countersign.SourceSlack, e.Source)
	}
	require.Contains(t, details["zed:not_awaited"], "step 1 waits for member:ana, not zed")
	require.Contains(t, details["cid:not_authorized"], "not a member of team pr any more")
	require.Contains(t, details["ana:stale_revision"], "revision 0")

	// Only decisions that passed the workflow's own checks reached the directory.
	var asked []string
	for _, r := range f.authReqs {
		asked = append(asked, r.MemberID)
	}
	require.Equal(t, []string{"ana", "cid", "bob"}, asked)

	// An ignored decision changes no search attribute: no upsert for it
	// (from version 3 the upsert comes at the end of the workflow task, after
	// its save and before the next).
	for i, s := range f.saves {
		if len(s.Events) == 1 && s.Events[0].Type == countersign.EventDecisionIgnored {
			next := len(f.upserts)
			if i+1 < len(f.saves) {
				next = f.upsertsAt[i+1]
			}
			require.Equal(t, f.upsertsAt[i], next, "upsert for an ignored decision")
		}
	}
}

// --- publishing -------------------------------------------------------------------

func TestPublishRejectedFails(t *testing.T) {
	f := newFixture(t)
	f.publishErr = activities.PublishRejected("422 Validation failed: Text character limit of 500 exceeded")
	f.approve(time.Minute, "ana", 1, 1)

	st := f.run(input(chain(countersign.LateExpire, member("ana"))))

	require.Equal(t, countersign.PostFailed, st.Status)
	require.Contains(t, st.LastError, "character limit")
	require.Len(t, f.publishes, 1, "a final error is not retried")
	require.Len(t, f.eventsOf(countersign.EventPublishFailed), 1)
	require.Equal(t, []string{"ana", "author"}, f.notesOf(activities.NotifyFailed)[0].MemberIDs)
}

func TestPublishUnknownNeedsAttention(t *testing.T) {
	f := newFixture(t)
	f.publishErr = activities.PublishUnknown("timeout after sending; getRecord failed")
	f.approve(time.Minute, "ana", 1, 1)

	st := f.run(input(chain(countersign.LateExpire, member("ana"))))

	require.Equal(t, countersign.PostNeedsAttention, st.Status)
	require.Contains(t, st.LastError, "getRecord failed")
	require.Len(t, f.publishes, 1, "never published blindly again")
	require.Len(t, f.eventsOf(countersign.EventNeedsAttention), 1)
	require.Len(t, f.notesOf(activities.NotifyNeedsAttention), 1)
}

func TestPublishRetriesWhatSurelyDidNotPostUntilTheBound(t *testing.T) {
	f := newFixture(t)
	f.publishErr = errors.New("dial tcp: connection refused")

	in := input(chain(countersign.LateExpire, member("ana")))
	in.NeedsApproval = false
	st := f.run(in)

	require.Equal(t, countersign.PostFailed, st.Status)
	require.Contains(t, st.LastError, "connection refused")
	require.Greater(t, len(f.publishes), 3, "retried")
	require.Len(t, f.eventsOf(countersign.EventPublishStarted), 1, "one publication, retried inside one activity")
}

// --- timers ---------------------------------------------------------------------------

func TestNoTimerIsLeftRunningWhileSleepingUntilTheScheduledTime(t *testing.T) {
	f := newFixture(t)
	in := input(fallbackChain()) // step timers: reminder, deadline, fallback
	in.ScheduledAt = at(72 * time.Hour)
	f.approve(time.Hour, "ana", 1, 1)
	f.at(48*time.Hour, func() {
		// Only the sleep is running: its duration is from approval to 72h.
		require.Len(t, f.openTimers, 1)
		for _, d := range f.openTimers {
			require.Equal(t, 71*time.Hour, d)
		}
		st := f.query()
		require.Equal(t, countersign.PostScheduled, st.Status)
		require.Equal(t, "the scheduled time", st.WaitingFor)
		details := f.currentDetails()
		require.Contains(t, details, "**scheduled**")
		require.Contains(t, details, "Waiting for the scheduled time")
		require.Contains(t, details, "Since 2026-11-20T10:00:00Z, until 2026-11-23T09:00:00Z")
	})

	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, start.Add(72*time.Hour), *st.PublishedAt)
	// The reminder timer (3h) was canceled at approval, the sleep fired.
	require.Equal(t, []time.Duration{3 * time.Hour, 71 * time.Hour}, f.timers)
	require.Equal(t, []time.Duration{3 * time.Hour}, f.canceled)
	require.Empty(t, f.eventsOf(countersign.EventReminderSent))
}

// --- small pure pieces --------------------------------------------------------------

func TestContentHashIsUnambiguous(t *testing.T) {
	require.Equal(t, countersign.ContentHash("ab", []string{"c"}), countersign.ContentHash("ab", []string{"c"}))
	require.NotEqual(t, countersign.ContentHash("ab", []string{"c"}), countersign.ContentHash("a", []string{"bc"}))
	require.NotEqual(t, countersign.ContentHash("a", nil), countersign.ContentHash("a", []string{""}))
}

func TestChainJSONUsesTheSpecShape(t *testing.T) {
	const body = `{"name": "Brand", "late_policy": "expire", "require_approval_for_all": false,
		"distinct_approvers": true,
		"steps": [{"approver": {"member": "m1"}, "timeout": "4h", "fallback_team": "t9", "fallback_timeout": "2h"},
		          {"approver": {"team": "t1"}, "quorum": 2},
		          {"approver": {"role": "approvers"}}]}`
	var c countersign.Chain
	require.NoError(t, json.Unmarshal([]byte(body), &c))
	require.NoError(t, c.Validate())
	require.Equal(t, 4*time.Hour, c.Steps[0].Timeout.D())
	require.Equal(t, "t9", c.Steps[0].FallbackTeam)
	require.Equal(t, 2, c.Steps[1].NeededApprovals())
	require.Equal(t, 1, c.Steps[2].NeededApprovals())

	out, err := json.Marshal(countersign.DefaultChain())
	require.NoError(t, err)
	require.JSONEq(t, `{"name":"default","steps":[{"approver":{"role":"approvers"},"quorum":1}],
		"require_approval_for_all":false,"late_policy":"expire","distinct_approvers":true}`, string(out))
	out, err = json.Marshal(c.Steps[0])
	require.NoError(t, err)
	require.JSONEq(t, `{"approver":{"member":"m1"},"timeout":"4h0m0s","fallback_team":"t9","fallback_timeout":"2h0m0s"}`, string(out))

	require.Error(t, json.Unmarshal([]byte(`{"timeout": 4}`), &countersign.ChainStep{}), "a bare number is not a duration")
	require.Error(t, json.Unmarshal([]byte(`{"timeout": "4 hours"}`), &countersign.ChainStep{}))
}

func TestChainValidateNamesTheField(t *testing.T) {
	bad := countersign.Chain{LatePolicy: "later", Steps: []countersign.ChainStep{
		{Approver: countersign.Approver{Member: "m1", Team: "t1"}},
		{Approver: countersign.Approver{Team: "t1"}, FallbackTeam: "t2"},
		{Approver: countersign.Approver{Role: "admins"}, Timeout: countersign.Duration(time.Millisecond)},
		{Approver: countersign.Approver{Member: "m2"}},
	}}
	var e *countersign.Error
	require.ErrorAs(t, bad.Validate(), &e)
	require.Equal(t, countersign.EINVALID, e.Code)
	var fields []string
	for _, fe := range e.Fields {
		fields = append(fields, fe.Field)
	}
	require.Equal(t, []string{"steps", "steps[0].approver", "steps[1].fallback_team", "steps[2].approver",
		"steps[2].timeout", "late_policy"}, fields)
}

func TestSearchAttributeKeysHaveTheSpecNames(t *testing.T) {
	var names []string
	for _, k := range workflows.SearchAttributeKeys() {
		names = append(names, k.GetName())
	}
	slices.Sort(names)
	require.Equal(t, "PostAccount PostApprovers PostAuthor PostDeadline PostOrg PostScheduledAt PostStatus PostStep",
		strings.Join(names, " "))
}

// --- robustness ---------------------------------------------------------------------

func TestDirectoryUnavailableIgnoresTheDecisionWhichCanBeSentAgain(t *testing.T) {
	f := newFixture(t)
	f.authDown = true
	f.decideReq(time.Minute, "click-1", "ana", 1, 1, countersign.DecisionApprove, "")
	f.at(10*time.Minute, func() { f.authDown = false })
	f.decideReq(20*time.Minute, "click-1", "ana", 1, 1, countersign.DecisionApprove, "") // the same click, retried

	st := f.run(input(chain(countersign.LateExpire, member("ana"))))

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, start.Add(20*time.Minute), *st.PublishedAt)
	require.Equal(t, []string{"ana:authorize_failed"}, f.ignored())
	ignoredAt := f.eventsOf(countersign.EventDecisionIgnored)[0].At
	require.True(t, ignoredAt.Before(start.Add(4*time.Minute)), "gave up within the bound, at %s", ignoredAt)
}

func TestNotificationOutageDoesNotHoldThePostBack(t *testing.T) {
	f := newFixture(t)
	f.notifyDown = true
	f.approve(time.Hour, "ana", 1, 1)

	st := f.run(input(chain(countersign.LateExpire, member("ana"))))

	require.Equal(t, countersign.PostPublished, st.Status)
	require.WithinDuration(t, start.Add(time.Hour), *st.PublishedAt, 3*time.Minute)
}

func TestMirrorRetryResendsTheSameEvents(t *testing.T) {
	f := newFixture(t)
	f.saveFailures = 2
	f.approve(time.Minute, "ana", 1, 1)

	st := f.run(input(chain(countersign.LateExpire, member("ana"))))

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Len(t, f.failedSaves, 2)
	// The retried call carries the same event keys: the mirror stores them once.
	require.Equal(t, f.failedSaves[0], keys(f.saves[0].Events))
	require.Equal(t, f.failedSaves[1], keys(f.saves[0].Events))
	require.Equal(t, []string{"submitted", "step_opened"}, []string{f.saves[0].Events[0].Type, f.saves[0].Events[1].Type})
	require.Equal(t, "post-p1/1", f.saves[0].Events[0].Key)
}

// --- more edits and reschedules -------------------------------------------------------

func TestEditWithoutApprovalKeepsTheSchedule(t *testing.T) {
	f := newFixture(t)
	in := input(countersign.DefaultChain())
	in.NeedsApproval = false
	in.ScheduledAt = at(2 * time.Hour)
	f.signalAt(time.Hour, countersign.SignalEdit, countersign.EditSignal{Text: "Hello again", By: "author"})

	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, start.Add(2*time.Hour), *st.PublishedAt)
	require.Equal(t, 2, f.publishes[0].Revision)
	require.Equal(t, "Hello again", f.publishes[0].Text)
	require.Empty(t, f.resolved)
	require.Equal(t, []time.Duration{2 * time.Hour}, f.timers, "the sleep was kept, not restarted")
}

func TestEditOfAnOlderRevisionIsIgnored(t *testing.T) {
	f := newFixture(t)
	f.signalAt(time.Minute, countersign.SignalEdit, countersign.EditSignal{Revision: 2, Text: "from the future", By: "author"})
	f.approve(2*time.Minute, "ana", 1, 1)

	st := f.run(input(chain(countersign.LateExpire, member("ana"))))

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, 1, st.Revision)
	require.Equal(t, "Hello world", f.publishes[0].Text)
	ign := f.eventsOf(countersign.EventSignalIgnored)
	require.Len(t, ign, 1)
	require.Equal(t, countersign.ReasonStaleRevision, ign[0].Reason)
}

func TestRescheduleToNowPublishesAnApprovedPost(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana")))
	in.ScheduledAt = at(24 * time.Hour)
	f.approve(time.Minute, "ana", 1, 1)
	f.signalAt(time.Hour, countersign.SignalReschedule, countersign.RescheduleSignal{By: "author", Source: countersign.SourceAPI})

	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, start.Add(time.Hour), *st.PublishedAt)
	require.Nil(t, st.ScheduledAt)
	require.Contains(t, f.eventsOf(countersign.EventRescheduled)[0].Detail, "to as soon as approved")
}

func TestRejectedPostCanBeRescheduledThenResubmitted(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana")))
	in.ScheduledAt = at(24 * time.Hour)
	f.decide(time.Hour, "ana", 1, 1, countersign.DecisionReject, "wrong date")
	// While rejected, the scheduled time must not expire the post.
	f.signalAt(30*time.Hour, countersign.SignalReschedule, countersign.RescheduleSignal{ScheduledAt: at(72 * time.Hour), By: "author"})
	f.signalAt(31*time.Hour, countersign.SignalEdit, countersign.EditSignal{Revision: 1, Text: "Hello on Monday", By: "author"})
	f.approve(32*time.Hour, "ana", 2, 1)

	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, start.Add(72*time.Hour), *st.PublishedAt)
	require.Equal(t, 2, st.Revision)
	require.Empty(t, f.eventsOf(countersign.EventExpired))
}

// --- what operators see -----------------------------------------------------------------

func TestSearchAttributesFollowWhatThePostWaitsFor(t *testing.T) {
	f := newFixture(t)
	in := input(fallbackChain())
	in.ScheduledAt = at(72 * time.Hour)
	f.approve(5*time.Hour, "gus", 1, 1)

	st := f.run(in)
	require.Equal(t, countersign.PostPublished, st.Status)

	// Version 3: "publishing" and "published" come in the same workflow task
	// (the first attempt is a local activity): one upsert, the end.
	status := saValues(f, func(sa temporal.SearchAttributes) (string, bool) { return sa.GetKeyword(workflows.SAStatus) })
	require.Equal(t, []string{"pending_approval", "scheduled", "published"}, status)

	deadline := saValues(f, func(sa temporal.SearchAttributes) (time.Time, bool) { return sa.GetTime(workflows.SADeadline) })
	require.Equal(t, []time.Time{
		start.Add(4 * time.Hour),  // the step's deadline
		start.Add(6 * time.Hour),  // the fallback's deadline
		start.Add(72 * time.Hour), // the scheduled time
	}, deadline)

	approvers := saValues(f, func(sa temporal.SearchAttributes) ([]string, bool) { return sa.GetKeywordList(workflows.SAApprovers) })
	require.Equal(t, [][]string{{"ana"}, {"ana", "gus", "hal"}}, approvers)

	scheduled, ok := f.upserts[0].GetTime(workflows.SAScheduledAt)
	require.True(t, ok)
	require.Equal(t, start.Add(72*time.Hour), scheduled)
	for _, sa := range f.upserts[1:] {
		require.False(t, sa.ContainsKey(workflows.SAOrg), "static attributes are upserted once")
	}
	// The reminder changed nothing an operator searches on: no upsert for it.
	require.Len(t, f.upserts, 4)
}

// TestVersion3OneUpsertAndOneLocalTaskPerTransition: a three-step post with
// no schedule, approved step by step, upserts once per workflow task
// (submission, each approval; the last one's task also publishes and ends)
// and publishes with a local activity.
func TestVersion3OneUpsertAndOneLocalTaskPerTransition(t *testing.T) {
	f := newFixture(t)
	f.approve(10*time.Minute, "ana", 1, 1)
	f.approve(20*time.Minute, "bob", 1, 2)
	f.approve(30*time.Minute, "dan", 1, 3)

	st := f.run(input(chain(countersign.LateExpire, member("ana"), team("pr", 1), role())))

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, f.acts, f.local, "every activity ran as a local activity")
	require.Len(t, f.upserts, 4)
	status := saValues(f, func(sa temporal.SearchAttributes) (string, bool) { return sa.GetKeyword(workflows.SAStatus) })
	require.Equal(t, []string{"pending_approval", "published"}, status)
	steps := saValues(f, func(sa temporal.SearchAttributes) (int64, bool) { return sa.GetInt64(workflows.SAStep) })
	require.Equal(t, []int64{1, 2, 3}, steps)
	approvers := saValues(f, func(sa temporal.SearchAttributes) ([]string, bool) { return sa.GetKeywordList(workflows.SAApprovers) })
	require.Equal(t, [][]string{{"ana"}, {"bob", "cid"}, {"dan", "eve"}}, approvers, "the end sets none")
}

// TestVersion3RetriesPublishAsAnActivity: when the local first attempt fails
// retryably, the post shows as publishing and Publish is retried as an
// activity; before version 3 every attempt is an activity.
func TestVersion3RetriesPublishAsAnActivity(t *testing.T) {
	for _, v := range []workflow.Version{1, workflow.DefaultVersion} {
		f := newFixture(t)
		if v != 1 {
			f.env.OnGetVersion("one-start-marker", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
			f.env.OnGetVersion("leaner-histories", workflow.DefaultVersion, 1).Return(v)
		}
		f.publishFails = 2
		f.approve(10*time.Minute, "ana", 1, 1)

		st := f.run(input(chain(countersign.LateExpire, member("ana"))))

		require.Equal(t, countersign.PostPublished, st.Status)
		require.Len(t, f.publishes, 3)
		status := saValues(f, func(sa temporal.SearchAttributes) (string, bool) { return sa.GetKeyword(workflows.SAStatus) })
		require.Equal(t, []string{"pending_approval", "publishing", "published"}, status)
		var local int
		for _, a := range f.local {
			if a == "Publish" {
				local++
			}
		}
		if v == 1 {
			require.Equal(t, 1, local, "version 3: the first attempt is local, the retries are not")
		} else {
			require.Zero(t, local, "version 2: every attempt is an activity")
		}
	}
}

// --- versions -------------------------------------------------------------------

// threeStepRun approves a three-step chain scheduled at +1h and returns the
// activities that ran and, per SavePostState, the notification kinds it sent.
func threeStepRun(t *testing.T, version workflow.Version) ([]string, [][]activities.NotificationKind, *fixture) {
	f := newFixture(t)
	if version != 1 {
		f.env.OnGetVersion("one-start-marker", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
		f.env.OnGetVersion("one-commit-per-transition", workflow.DefaultVersion, 1).Return(version)
	}
	in := input(chain(countersign.LateExpire, member("ana"), team("pr", 1), role()))
	in.ScheduledAt = at(time.Hour)
	f.approve(10*time.Minute, "ana", 1, 1)
	f.approve(20*time.Minute, "bob", 1, 2)
	f.approve(30*time.Minute, "dan", 1, 3)
	st := f.run(in)
	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, start.Add(time.Hour), *st.PublishedAt)
	require.Equal(t, []string{"ana", "author", "dan", "eve"}, st.Steps[2].Eligible)
	var kinds [][]activities.NotificationKind
	for _, s := range f.saves {
		var k []activities.NotificationKind
		for _, n := range s.Notifications {
			k = append(k, n.Kind)
		}
		kinds = append(kinds, k)
	}
	return f.acts, kinds, f
}

func TestVersion1SavesEachTransitionOnceWithItsNotifications(t *testing.T) {
	acts, kinds, f := threeStepRun(t, 1)

	// 10 activities: resolve step 1 and save; per approval, authorize (which
	// resolves the next step) and save; publish (which stores "publishing"
	// first), save.
	require.Equal(t, []string{
		"ResolveApprovers", "SavePostState",
		"AuthorizeDecision", "SavePostState",
		"AuthorizeDecision", "SavePostState",
		"AuthorizeDecision", "SavePostState",
		"Publish", "SavePostState",
	}, acts)
	require.NotNil(t, f.publishes[0].Mirror)
	require.Equal(t, countersign.PostPublishing, f.publishes[0].Mirror.State.Status)
	require.Equal(t, []string{"publish_started"}, types(f.publishes[0].Mirror.Events))
	require.Equal(t, [][]activities.NotificationKind{
		{activities.NotifyStepOpened}, {activities.NotifyStepOpened}, {activities.NotifyStepOpened},
		{activities.NotifyApproved}, nil, {activities.NotifyPublished},
	}, kinds)
	// The approval that completes a step asks for the next step's approvers.
	require.Equal(t, countersign.Approver{Team: "pr"}, *f.authReqs[0].ResolveNext)
	require.Equal(t, countersign.Approver{Role: countersign.ApproverRoleApprovers}, *f.authReqs[1].ResolveNext)
	require.Nil(t, f.authReqs[2].ResolveNext, "the last step opens nothing")
	// The decision that opens a step is saved with that step's opening, and
	// its notifications are tried for NotifyBound from then.
	require.Equal(t, []string{"decision_counted", "step_opened"}, types(f.saves[1].Events))
	require.Equal(t, start.Add(10*time.Minute+activities.NotifyBound), f.saves[1].NotifyUntil)
	// One timer: the late alarm at the scheduled time is kept as the sleep.
	require.Equal(t, []time.Duration{time.Hour}, f.timers)
}

func TestVersion1NotificationsWaitingAtPublishTimeAreNotDelayedByIt(t *testing.T) {
	f := newFixture(t)
	f.approve(10*time.Minute, "ana", 1, 1)

	st := f.run(input(chain(countersign.LateExpire, member("ana")))) // no schedule: publish when approved

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, []string{"ResolveApprovers", "SavePostState", "AuthorizeDecision", "SavePostState", "Publish", "SavePostState"}, f.acts)
	require.Nil(t, f.publishes[0].Mirror, "the approval's notification is sent before publishing, not with it")
	require.Equal(t, activities.NotifyApproved, f.saves[1].Notifications[0].Kind)
	require.Equal(t, countersign.PostPublishing, f.saves[1].State.Status)
}

func TestVersion1FailedPublishStillRecordsItsStart(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana")))
	in.ScheduledAt = at(time.Hour)
	f.approve(10*time.Minute, "ana", 1, 1)
	f.publishErr = activities.PublishRejected("the network refused the text")

	st := f.run(in)

	require.Equal(t, countersign.PostFailed, st.Status)
	require.NotNil(t, f.publishes[0].Mirror)
	// Re-sent with the end in case the Publish activity never stored it.
	last := f.saves[len(f.saves)-1]
	require.Equal(t, []string{"publish_started", "publish_failed"}, types(last.Events))
	require.Len(t, f.eventsOf(countersign.EventPublishStarted), 1, "stored once")
}

// An approval that arrives 10 s before the slot counts as on time although
// the directory answers 20 s after it (version 1); before, it expired.
func lastMinuteApproval(t *testing.T, version workflow.Version) countersign.PostState {
	f := newFixture(t)
	if version != 1 {
		f.env.OnGetVersion("one-start-marker", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
		f.env.OnGetVersion("one-commit-per-transition", workflow.DefaultVersion, 1).Return(version)
	}
	f.authDelay = 30 * time.Second
	in := input(chain(countersign.LateExpire, member("ana")))
	in.ScheduledAt = at(time.Hour)
	f.approve(time.Hour-10*time.Second, "ana", 1, 1)
	return f.run(in)
}

func TestVersion1ApprovalArrivingBeforeTheSlotIsOnTime(t *testing.T) {
	st := lastMinuteApproval(t, 1)
	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, start.Add(time.Hour-10*time.Second), st.Steps[0].Approvals[0].At, "counted from its arrival")
	require.Equal(t, start.Add(time.Hour+20*time.Second), *st.PublishedAt, "published as soon as authorized")
}

func TestVersion0ApprovalAuthorizedAfterTheSlotExpired(t *testing.T) {
	st := lastMinuteApproval(t, workflow.DefaultVersion)
	require.Equal(t, countersign.PostExpired, st.Status)
}

func TestVersion0KeepsItsCommandsForPostsStartedBefore(t *testing.T) {
	acts, kinds, f := threeStepRun(t, workflow.DefaultVersion)

	require.Equal(t, []string{
		"ResolveApprovers", "SavePostState", "Notify",
		"AuthorizeDecision", "ResolveApprovers", "SavePostState", "Notify",
		"AuthorizeDecision", "ResolveApprovers", "SavePostState", "Notify",
		"AuthorizeDecision", "SavePostState", "Notify",
		"SavePostState", "Publish", "SavePostState", "Notify",
	}, acts)
	for _, k := range kinds {
		require.Empty(t, k, "before version 1, notifications are activities of their own")
	}
	require.Len(t, f.notes, 5)
	for _, r := range f.authReqs {
		require.Nil(t, r.ResolveNext)
	}
	require.Equal(t, []time.Duration{time.Hour, time.Hour - 30*time.Minute}, f.timers, "the late alarm is replaced by the sleep")
}

func types(events []countersign.PostEvent) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.Type)
	}
	return out
}

// A decision sent before the scheduled time but reaching the workflow after
// it (a busy worker) still counts under the late policy expire: the post
// waits LateGrace for it, then publishes at once.
func TestLatePolicyExpireCountsADecisionSentInTime(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana")))
	in.ScheduledAt = at(2 * time.Hour)
	sent := start.Add(2*time.Hour - time.Second)
	f.signalAt(2*time.Hour+5*time.Second, countersign.SignalDecision, countersign.DecisionSignal{PostID: "p1", Revision: 1, Step: 1,
		MemberID: "ana", Decision: countersign.DecisionApprove, Source: countersign.SourceSlack, RequestID: "late-1", SentAt: &sent})

	st := f.run(in)

	require.Equal(t, countersign.PostPublished, st.Status)
	require.Equal(t, start.Add(2*time.Hour+5*time.Second), *st.PublishedAt, "published as soon as the decision arrived")
	require.Equal(t, sent, st.Steps[0].Approvals[0].At, "counted from when it was sent")
	require.Empty(t, f.eventsOf(countersign.EventExpired))
}

// One sent after the scheduled time expires the post at once, grace or not;
// and with nothing sent the post expires when the grace ends.
func TestLatePolicyExpireRefusesADecisionSentLate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		decide  bool
		expired time.Duration
	}{
		{"sent late", true, 2*time.Hour + 3*time.Second},
		{"nothing sent", false, 2*time.Hour + workflows.LateGrace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			in := input(chain(countersign.LateExpire, member("ana")))
			in.ScheduledAt = at(2 * time.Hour)
			if tc.decide {
				sent := start.Add(2*time.Hour + time.Second)
				f.signalAt(2*time.Hour+3*time.Second, countersign.SignalDecision, countersign.DecisionSignal{PostID: "p1", Revision: 1, Step: 1,
					MemberID: "ana", Decision: countersign.DecisionApprove, Source: countersign.SourceSlack, RequestID: "late-1", SentAt: &sent})
			}
			f.queryAt(2*time.Hour+2*time.Second, func(st countersign.PostState) {
				require.Equal(t, countersign.PostPendingApproval, st.Status, "in the grace")
			})

			st := f.run(in)

			require.Equal(t, countersign.PostExpired, st.Status)
			require.Empty(t, f.publishes)
			expired := f.eventsOf(countersign.EventExpired)
			require.Len(t, expired, 1)
			require.Equal(t, start.Add(tc.expired), expired[0].At)
		})
	}
}

// A decision claiming an earlier SentAt than its MAC covers is not counted:
// the time is signed with the rest.
func TestLatePolicyExpireSentAtIsSigned(t *testing.T) {
	f := newFixture(t)
	in := input(chain(countersign.LateExpire, member("ana")))
	in.ScheduledAt = at(2 * time.Hour)
	late, forged := start.Add(2*time.Hour+time.Second), start.Add(time.Hour)
	d := countersign.DecisionSignal{PostID: "p1", Revision: 1, Step: 1, MemberID: "ana",
		Decision: countersign.DecisionApprove, Source: countersign.SourceSlack, RequestID: "late-1", SentAt: &late}
	d.MAC = f.signer.Sign(d)
	d.SentAt = &forged
	f.signalAt(2*time.Hour+3*time.Second, countersign.SignalDecision, d)

	st := f.run(in)

	require.Equal(t, countersign.PostExpired, st.Status)
	require.Equal(t, []string{"ana:" + countersign.ReasonUnsigned}, f.ignored())
}
