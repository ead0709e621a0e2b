package posts

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/postflow"
	"github.com/countersign/countersign/internal/secrets"
	"github.com/countersign/countersign/internal/store"
)

// The service's own rules, without PostgreSQL or Temporal: fakes at its two
// boundaries.

type fakeStore struct {
	post    cs.Post
	deleted bool
	started bool
}

func (f *fakeStore) Account(context.Context, string, string) (cs.Account, error) {
	return cs.Account{ID: f.post.AccountID, Network: cs.NetworkWebhook, Handle: "acme"}, nil
}
func (f *fakeStore) EffectiveRight(context.Context, string, string, string) (cs.Right, error) {
	return cs.Right{Compose: true, Publish: cs.PublishWithApproval}, nil
}
func (f *fakeStore) AccountChain(context.Context, string, string) (cs.Chain, error) {
	return cs.DefaultChain(), nil
}
func (f *fakeStore) CreatePost(_ context.Context, in store.NewPost) (cs.Post, bool, error) {
	f.post.Text, f.post.AuthorID = in.Text, in.AuthorID
	return f.post, true, nil
}
func (f *fakeStore) MarkPostStarted(context.Context, string) error     { f.started = true; return nil }
func (f *fakeStore) DeleteUnstartedPost(context.Context, string) error { f.deleted = true; return nil }
func (f *fakeStore) UnstartedPostByID(context.Context, string) (store.UnstartedPost, bool, error) {
	return store.UnstartedPost{}, false, nil
}
func (f *fakeStore) Post(_ context.Context, orgID, postID string) (cs.Post, error) {
	if postID != f.post.ID || orgID != f.post.OrgID {
		return cs.Post{}, cs.Errorf(cs.ENOTFOUND, "post not found")
	}
	return f.post, nil
}
func (f *fakeStore) PostEvents(context.Context, string) ([]cs.PostEvent, error) { return nil, nil }
func (f *fakeStore) ListPosts(context.Context, string, store.PostFilter, cs.Page) ([]cs.Post, error) {
	return []cs.Post{f.post}, nil
}

type call struct {
	kind, name, id string
	arg            any
}

type fakeWorkflows struct {
	calls     []call
	update    func(name string) (cs.PostState, error)
	submitErr error
	exists    bool
	existsErr error
}

func (f *fakeWorkflows) Submit(context.Context, store.UnstartedPost, string, time.Duration) (cs.PostState, error) {
	return cs.PostState{}, f.submitErr
}
func (f *fakeWorkflows) Exists(context.Context, string) (bool, error) { return f.exists, f.existsErr }
func (f *fakeWorkflows) Update(ctx context.Context, postID, name, id string, arg any) (cs.PostState, error) {
	f.calls = append(f.calls, call{"update", name, id, arg})
	return f.update(name)
}
func (f *fakeWorkflows) Signal(_ context.Context, postID, name string, arg any) error {
	f.calls = append(f.calls, call{"signal", name, "", arg})
	return nil
}

func newFixture(t *testing.T, update func(string) (cs.PostState, error)) (*Service, *fakeStore, *fakeWorkflows, cs.Member) {
	signer, err := secrets.NewDecisionSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	st := &fakeStore{post: cs.Post{ID: "p1", OrgID: "o1", AccountID: "a1", AuthorID: "author", Revision: 1, CurrentStep: 1,
		Status: cs.PostPendingApproval}}
	wf := &fakeWorkflows{update: update}
	s := New(Deps{Store: st, Workflows: wf, Signer: signer, Wait: 50 * time.Millisecond})
	return s, st, wf, cs.Member{ID: "maya", OrgID: "o1"}
}

func TestDecideAnswersTheWorkflowsState(t *testing.T) {
	next := cs.PostState{PostID: "p1", Status: cs.PostPendingApproval, Revision: 1, CurrentStep: 2, TotalSteps: 2,
		Steps:   []cs.StepState{{Index: 1, Status: cs.StepApproved}, {Index: 2, Status: cs.StepOpen, Eligible: []string{"pat"}}},
		Awaited: []string{"pat"}}
	s, _, wf, me := newFixture(t, func(string) (cs.PostState, error) { return next, nil })
	out, err := s.Decide(context.Background(), me, Decision{PostID: "p1", Decision: cs.DecisionApprove, Revision: 1, Source: cs.SourceAPI})
	if err != nil || out.Pending || out.Post.CurrentStep != 2 || out.Post.Awaited[0] != "pat" {
		t.Fatalf("Decide: %+v, %v", out, err)
	}
	d := wf.calls[0].arg.(cs.DecisionSignal)
	if wf.calls[0].name != cs.UpdateDecide || d.Step != 1 || d.MemberID != "maya" || d.RequestID == "" || !s.Signer.Verify(d) {
		t.Fatalf("the decision sent: %+v (signed: %v)", d, s.Signer.Verify(d))
	}
}

func TestDecideReturnsTheWorkflowsRefusal(t *testing.T) {
	s, _, wf, me := newFixture(t, func(string) (cs.PostState, error) {
		return cs.PostState{}, fmt.Errorf("update failed: %w", temporal.NewApplicationErrorWithOptions(
			"this step is for another member", cs.ReasonNotAwaited, temporal.ApplicationErrorOptions{NonRetryable: true}))
	})
	_, err := s.Decide(context.Background(), me, Decision{PostID: "p1", Decision: cs.DecisionApprove, Revision: 1})
	var e *cs.Error
	if !errors.As(err, &e) || e.Code != cs.ReasonNotAwaited || e.Message != "this step is for another member" {
		t.Fatalf("refusal: %v", err)
	}
	if len(wf.calls) != 1 {
		t.Fatalf("a refusal sent a signal: %+v", wf.calls)
	}
}

// No worker: after Wait the same decision goes as the signal, with the same
// request id (the workflow counts it at most once).
func TestDecideFallsBackToTheSignal(t *testing.T) {
	s, _, wf, me := newFixture(t, func(string) (cs.PostState, error) {
		return cs.PostState{}, context.DeadlineExceeded
	})
	out, err := s.Decide(context.Background(), me, Decision{PostID: "p1", Decision: cs.DecisionApprove, Revision: 1, RequestID: "req-1"})
	if err != nil || !out.Pending || out.Post.ID != "p1" {
		t.Fatalf("fallback: %+v, %v", out, err)
	}
	if len(wf.calls) != 2 || wf.calls[1].kind != "signal" || wf.calls[1].name != cs.SignalDecision {
		t.Fatalf("calls: %+v", wf.calls)
	}
	u, sg := wf.calls[0].arg.(cs.DecisionSignal), wf.calls[1].arg.(cs.DecisionSignal)
	if u != sg || sg.RequestID != "req-1" || !s.Signer.Verify(sg) {
		t.Fatalf("the signal differs from the Update: %+v vs %+v", sg, u)
	}
}

// A decision that already waited Wait before it could be sent (a Slack
// click queued behind others) goes as the signal at once, signed with when
// it was sent: it reaches the history without waiting for a worker. One
// sent just now still tries the Update first.
func TestDecideSentLongAgoGoesAsTheSignal(t *testing.T) {
	s, _, wf, me := newFixture(t, func(string) (cs.PostState, error) { return cs.PostState{PostID: "p1"}, nil })
	sent := time.Now().Add(-time.Second)
	out, err := s.Decide(context.Background(), me, Decision{PostID: "p1", Decision: cs.DecisionApprove, Revision: 1,
		Source: cs.SourceSlack, RequestID: "click-1", SentAt: sent})
	if err != nil || !out.Pending {
		t.Fatalf("a decision queued past the wait: %+v, %v; want it pending", out, err)
	}
	if len(wf.calls) != 1 || wf.calls[0].kind != "signal" || wf.calls[0].name != cs.SignalDecision {
		t.Fatalf("calls: %+v, want the signal alone", wf.calls)
	}
	if d := wf.calls[0].arg.(cs.DecisionSignal); !d.SentAt.Equal(sent.UTC().Truncate(time.Millisecond)) || !s.Signer.Verify(d) {
		t.Fatalf("the signal carries SentAt %v (signed: %v), want %v", d.SentAt, s.Signer.Verify(d), sent)
	}

	wf.calls = nil
	if _, err := s.Decide(context.Background(), me, Decision{PostID: "p1", Decision: cs.DecisionApprove, Revision: 1,
		Source: cs.SourceSlack, RequestID: "click-2", SentAt: time.Now()}); err != nil || len(wf.calls) != 1 || wf.calls[0].kind != "update" {
		t.Fatalf("a decision sent just now: %v, calls %+v; want the Update", err, wf.calls)
	}
}

func TestDecideChecksItsInput(t *testing.T) {
	s, _, wf, me := newFixture(t, func(string) (cs.PostState, error) { return cs.PostState{}, nil })
	for name, d := range map[string]Decision{
		"no revision":        {PostID: "p1", Decision: cs.DecisionApprove},
		"reject no note":     {PostID: "p1", Decision: cs.DecisionReject, Revision: 1, Note: "  "},
		"long note":          {PostID: "p1", Decision: cs.DecisionApprove, Revision: 1, Note: string(make([]byte, MaxNote+1))},
		"long request id":    {PostID: "p1", Decision: cs.DecisionApprove, Revision: 1, RequestID: string(make([]byte, 256))},
		"another org's post": {PostID: "p2", Decision: cs.DecisionApprove, Revision: 1},
	} {
		if _, err := s.Decide(context.Background(), me, d); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if len(wf.calls) != 0 {
		t.Fatalf("bad input reached the workflow: %+v", wf.calls)
	}
}

func TestChangesAreRateLimited(t *testing.T) {
	s, _, _, me := newFixture(t, func(string) (cs.PostState, error) { return cs.PostState{PostID: "p1"}, nil })
	var limited *RateLimited
	for i := 0; i <= PerMember.Burst; i++ {
		_, err := s.Decide(context.Background(), me, Decision{PostID: "p1", Decision: cs.DecisionApprove, Revision: 1})
		if i < PerMember.Burst && err != nil {
			t.Fatalf("decision %d: %v", i, err)
		}
		if i == PerMember.Burst && (!errors.As(err, &limited) || limited.RetryAfter <= 0) {
			t.Fatalf("decision %d past the burst: %v", i, err)
		}
	}
}

func TestLimitsPerMemberAndPerPost(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLimits(Rate{Every: time.Second, Burst: 2}, Rate{Every: time.Second, Burst: 3}, func() time.Time { return now })
	for i := range 2 {
		if d := l.Allow("ana", "p"); d != 0 {
			t.Fatalf("ana %d: %v", i, d)
		}
	}
	if d := l.Allow("ana", "p"); d <= 0 {
		t.Fatal("ana's third change in a second allowed")
	}
	if d := l.Allow("bob", "p"); d != 0 {
		t.Fatalf("bob's first: %v", d)
	}
	if d := l.Allow("cyd", "p"); d <= 0 {
		t.Fatal("the post's fourth change in a second allowed")
	}
	if d := l.Allow("cyd", "q"); d != 0 {
		t.Fatalf("cyd on another post: %v (a refusal by the post's bucket must not take cyd's token)", d)
	}
	now = now.Add(2 * time.Second)
	if d := l.Allow("ana", "p"); d != 0 {
		t.Fatalf("after refill: %v", d)
	}
}

func TestLimitsKeepBoundedMemory(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLimits(PerMember, PerPost, func() time.Time { return now })
	for i := range 3 * maxKeys {
		now = now.Add(time.Millisecond)
		l.Allow(fmt.Sprint("m", i), fmt.Sprint("p", i))
	}
	if n := len(l.member.keys); n > maxKeys {
		t.Fatalf("%d member buckets kept, bound %d", n, maxKeys)
	}
}

// A start whose outcome is unknown never removes the post; one Temporal
// surely refused does.
func TestSubmitKeepsThePostUnlessTemporalRefused(t *testing.T) {
	for _, tc := range []struct {
		name        string
		err         error
		exists      bool
		wantDeleted bool
		wantErr     bool
	}{
		{"started, not answered", fmt.Errorf("%w: timeout", postflow.ErrNoAnswer), false, false, false},
		{"client-side timeout", context.DeadlineExceeded, false, false, true},
		{"refused", serviceerror.NewInvalidArgument("no"), false, true, true},
		{"error but it exists", serviceerror.NewUnavailable("flaky"), true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, st, wf, me := newFixture(t, nil)
			wf.submitErr, wf.exists = tc.err, tc.exists
			_, _, err := s.Submit(context.Background(), me, Submission{AccountID: "0190d4a2-0000-7000-8000-000000000001", Text: "hi"})
			if (err != nil) != tc.wantErr || st.deleted != tc.wantDeleted {
				t.Fatalf("err %v, deleted %v", err, st.deleted)
			}
			var ns *ErrNotStarted
			if err != nil && (!errors.As(err, &ns) || ns.Saved == tc.wantDeleted) {
				t.Fatalf("error %v does not say whether the post was kept", err)
			}
		})
	}
}

func TestSubmitChecksLimits(t *testing.T) {
	s, _, _, me := newFixture(t, nil)
	acct := "0190d4a2-0000-7000-8000-000000000001"
	long := make([]byte, cs.MaxTextBytes+1)
	for i := range long {
		long[i] = 'a'
	}
	for name, in := range map[string]Submission{
		"text over 64 KiB": {AccountID: acct, Text: string(long)},
		"long key":         {AccountID: acct, Text: "hi", IdempotencyKey: string(make([]byte, MaxIdempotencyKey+1))},
		"five media":       {AccountID: acct, Text: "hi", MediaURLs: []string{"https://a", "https://b", "https://c", "https://d", "https://e"}},
		"long media url":   {AccountID: acct, Text: "hi", MediaURLs: []string{"https://a/" + string(long[:MaxMediaURL])}},
	} {
		if _, _, err := s.Submit(context.Background(), me, in); cs.ErrorCode(err) != cs.EINVALID {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}
