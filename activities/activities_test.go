package activities_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
	"github.com/countersign/countersign/internal/secrets"
)

type fakeMirror struct{ saves int }

func (m *fakeMirror) SavePostState(context.Context, string, countersign.PostState, []countersign.PostEvent) error {
	m.saves++
	return nil
}

type fakeNotifier struct {
	sent []activities.NotificationKind
	fail map[activities.NotificationKind]error
}

func (n *fakeNotifier) Notify(_ context.Context, note activities.Notification) error {
	if err := n.fail[note.Kind]; err != nil {
		return err
	}
	n.sent = append(n.sent, note.Kind)
	return nil
}

type fakeDirectory struct {
	allowed bool
	rights  map[string]countersign.Right // absent: not a member
}

func (d fakeDirectory) EffectiveRight(_ context.Context, _, _, memberID string) (countersign.Right, error) {
	r, ok := d.rights[memberID]
	if !ok {
		return countersign.Right{}, countersign.Errorf(countersign.ENOTFOUND, "member not found")
	}
	return r, nil
}

func signer(t *testing.T) *secrets.DecisionSigner {
	s, err := secrets.NewDecisionSigner([]byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, err)
	return s
}

func (d fakeDirectory) Delegations(context.Context, string, []string) ([]countersign.Delegation, error) {
	return nil, nil
}

func (d fakeDirectory) EligibleApprovers(_ context.Context, _, _ string, a countersign.Approver) ([]string, error) {
	if a.Team == "empty" {
		return nil, nil
	}
	return []string{"bob", "cid"}, nil
}

func (d fakeDirectory) AuthorizeDecision(context.Context, activities.AuthorizeRequest) (activities.AuthorizeResult, error) {
	if !d.allowed {
		return activities.AuthorizeResult{Reason: "not in team pr any more"}, nil
	}
	return activities.AuthorizeResult{Allowed: true}, nil
}

func saveInput() activities.SavePostStateInput {
	return activities.SavePostStateInput{PostID: "p1", NotifyUntil: time.Now().Add(activities.NotifyBound),
		Notifications: []activities.Notification{{Kind: activities.NotifyApproved}, {Kind: activities.NotifyPublished}}}
}

func run(t *testing.T, a *activities.Activities, in activities.SavePostStateInput) error {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	_, err := env.ExecuteActivity(a.SavePostState, in)
	return err
}

func TestSavePostStateSavesThenNotifiesInOrder(t *testing.T) {
	m, n := &fakeMirror{}, &fakeNotifier{}
	require.NoError(t, run(t, &activities.Activities{Mirror: m, Notifier: n}, saveInput()))
	require.Equal(t, 1, m.saves)
	require.Equal(t, []activities.NotificationKind{activities.NotifyApproved, activities.NotifyPublished}, n.sent)
}

func TestSavePostStateRetriesAFailedNotificationWithinTheBound(t *testing.T) {
	m := &fakeMirror{}
	n := &fakeNotifier{fail: map[activities.NotificationKind]error{
		activities.NotifyApproved: activities.NotifyRetryAfter("slack: 429", 7*time.Second)}}
	err := run(t, &activities.Activities{Mirror: m, Notifier: n}, saveInput())

	require.Error(t, err, "the attempt fails, so the notification is retried")
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr))
	require.Equal(t, "RateLimited", appErr.Type(), "Slack's retry delay survives")
	require.Equal(t, 1, m.saves, "the state was saved before notifying")
	require.Empty(t, n.sent)
}

func TestSavePostStateDropsANotificationPastTheBound(t *testing.T) {
	m := &fakeMirror{}
	n := &fakeNotifier{fail: map[activities.NotificationKind]error{activities.NotifyApproved: errors.New("slack: 503")}}
	in := saveInput()
	in.NotifyUntil = time.Now().Add(-time.Second)

	require.NoError(t, run(t, &activities.Activities{Mirror: m, Notifier: n}, in))
	require.Equal(t, []activities.NotificationKind{activities.NotifyPublished}, n.sent, "the rest still goes out")
}

func TestAuthorizeDecisionResolvesTheNextStepOnlyWhenAllowed(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	for _, tc := range []struct {
		name    string
		allowed bool
		next    *countersign.Approver
		want    activities.AuthorizeResult
	}{
		{"allowed, next asked", true, &countersign.Approver{Team: "pr"},
			activities.AuthorizeResult{Allowed: true, NextResolved: true, NextEligible: []string{"bob", "cid"}}},
		{"allowed, next resolves to nobody", true, &countersign.Approver{Team: "empty"},
			activities.AuthorizeResult{Allowed: true, NextResolved: true, NextEligible: []string{}}},
		{"allowed, last step", true, nil, activities.AuthorizeResult{Allowed: true}},
		{"denied", false, &countersign.Approver{Team: "pr"}, activities.AuthorizeResult{Reason: "not in team pr any more"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := suite.NewTestActivityEnvironment()
			a := &activities.Activities{Directory: fakeDirectory{allowed: tc.allowed}, Signer: signer(t)}
			env.RegisterActivity(a)
			d := countersign.DecisionSignal{PostID: "p1", MemberID: "ana", Decision: countersign.DecisionApprove}
			d.MAC = a.Signer.(*secrets.DecisionSigner).Sign(d)
			v, err := env.ExecuteActivity(a.AuthorizeDecision, activities.AuthorizeRequest{MemberID: "ana", ResolveNext: tc.next, Decision: &d})
			require.NoError(t, err)
			var got activities.AuthorizeResult
			require.NoError(t, v.Get(&got))
			if len(tc.want.NextEligible) == 0 && len(got.NextEligible) == 0 {
				got.NextEligible = tc.want.NextEligible // empty either way on the wire
			}
			require.Equal(t, tc.want, got)
		})
	}
}

type fakePublisher struct{ calls int }

func (p *fakePublisher) Publish(context.Context, activities.PublishRequest) (activities.PublishResult, error) {
	p.calls++
	return activities.PublishResult{ExternalID: "1"}, nil
}

type downMirror struct{}

func (downMirror) SavePostState(context.Context, string, countersign.PostState, []countersign.PostEvent) error {
	return errors.New("connection refused")
}

func TestPublishStoresThePublishingStateBeforeCallingTheNetwork(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	req := activities.PublishRequest{PostID: "p1", Mirror: &activities.SavePostStateInput{PostID: "p1"}}

	env := suite.NewTestActivityEnvironment()
	m, p := &fakeMirror{}, &fakePublisher{}
	a := &activities.Activities{Mirror: m, Publisher: p}
	env.RegisterActivity(a)
	_, err := env.ExecuteActivity(a.Publish, req)
	require.NoError(t, err)
	require.Equal(t, 1, m.saves)
	require.Equal(t, 1, p.calls)

	env = suite.NewTestActivityEnvironment()
	p = &fakePublisher{}
	a = &activities.Activities{Mirror: downMirror{}, Publisher: p}
	env.RegisterActivity(a)
	_, err = env.ExecuteActivity(a.Publish, req)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr))
	require.Equal(t, activities.ErrTypePublishRetryable, appErr.Type(), "nothing was sent: retried")
	require.Zero(t, p.calls, "the network is not called before the state is stored")
}

// A decision without a valid MAC (sent straight to Temporal, or altered after
// signing) is refused as unsigned before the directory is asked.
func TestAuthorizeDecisionRefusesUnsignedDecisions(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	sg := signer(t)
	signed := countersign.DecisionSignal{PostID: "p1", Revision: 1, Step: 1, MemberID: "ana", Decision: countersign.DecisionApprove}
	signed.MAC = sg.Sign(signed)
	altered := signed
	altered.MemberID = "bob"
	for name, d := range map[string]*countersign.DecisionSignal{"no payload": nil, "no mac": {PostID: "p1", MemberID: "ana"},
		"altered": &altered} {
		t.Run(name, func(t *testing.T) {
			env := suite.NewTestActivityEnvironment()
			a := &activities.Activities{Directory: fakeDirectory{allowed: true}, Signer: sg}
			env.RegisterActivity(a)
			v, err := env.ExecuteActivity(a.AuthorizeDecision, activities.AuthorizeRequest{MemberID: "ana", Decision: d})
			require.NoError(t, err)
			var got activities.AuthorizeResult
			require.NoError(t, v.Get(&got))
			require.False(t, got.Allowed)
			require.Equal(t, countersign.ReasonUnsigned, got.Code)
		})
	}
}

// Who may change a post is decided with the member's current right: the
// author while they may compose, anyone else with editor's right or more; an
// unsigned edit is an operator's and is not checked further.
func TestAuthorizeChangeUsesTheCurrentRight(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	sg := signer(t)
	dir := fakeDirectory{rights: map[string]countersign.Right{
		"author":  countersign.LevelRight(countersign.LevelLimited, nil),
		"lost":    countersign.LevelRight(countersign.LevelNone, nil),
		"editor":  countersign.LevelRight(countersign.LevelEditor, nil),
		"limited": countersign.LevelRight(countersign.LevelLimited, nil),
	}}
	edit := func(by string, sign bool) *countersign.EditSignal {
		e := countersign.EditSignal{Revision: 1, Text: "new", By: by, Source: countersign.SourceAPI}
		if sign {
			e.MAC = sg.SignEdit(e)
		}
		return &e
	}
	for _, tc := range []struct {
		name, by, author string
		edit             *countersign.EditSignal
		want             activities.AuthorizeChangeResult
	}{
		{"author who may compose", "author", "author", edit("author", true),
			activities.AuthorizeChangeResult{Signed: true, Allowed: true, Publish: countersign.PublishWithApproval}},
		{"author who lost compose", "lost", "lost", edit("lost", true),
			activities.AuthorizeChangeResult{Signed: true, Code: countersign.ReasonCannotCompose, Reason: "you may no longer compose posts on this account", Publish: countersign.PublishNone}},
		{"editor on another's post", "editor", "author", nil,
			activities.AuthorizeChangeResult{Signed: true, Allowed: true, Publish: countersign.PublishDirect}},
		{"limited member on another's post", "limited", "author", edit("limited", true),
			activities.AuthorizeChangeResult{Signed: true, Code: countersign.ReasonCannotCompose, Reason: "only the author or an editor of the account may edit this post", Publish: countersign.PublishWithApproval}},
		{"removed member", "gone", "author", nil,
			activities.AuthorizeChangeResult{Signed: true, Code: countersign.ReasonCannotCompose, Reason: "gone is no longer an active member of the organization"}},
		{"unsigned edit", "limited", "author", edit("limited", false), activities.AuthorizeChangeResult{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := suite.NewTestActivityEnvironment()
			a := &activities.Activities{Directory: dir, Signer: sg}
			env.RegisterActivity(a)
			kind := "cancel"
			if tc.edit != nil {
				kind = "edit"
			}
			if tc.name == "removed member" {
				kind = "cancel"
			}
			v, err := env.ExecuteActivity(a.AuthorizeChange, activities.AuthorizeChangeRequest{AuthorID: tc.author,
				MemberID: tc.by, Kind: kind, Edit: tc.edit})
			require.NoError(t, err)
			var got activities.AuthorizeChangeResult
			require.NoError(t, v.Get(&got))
			require.Equal(t, tc.want, got)
		})
	}
}
