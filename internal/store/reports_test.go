package store_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
)

// The turnaround report reads hand-made post events, written through the
// mirror as the workflow writes them (types, steps, revisions, sentences),
// and computes per step and per approver: decisions, median and p90 from
// the step's opening, timeouts, fallbacks, expiries, rejections; events
// outside the range and of another org count for nothing.
func TestApprovalReportFromEvents(t *testing.T) {
	d := newDir(t)
	account := d.account("report")
	maya, pat, eddie := d.member("maya", cs.RoleMember), d.member("pat", cs.RoleMember), d.member("eddie", cs.RoleMember)
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	min := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }

	post := func(st *store.Store, org, author string) (string, func(typ string, rev, step int, actor, detail string, at time.Time)) {
		p, _, err := st.CreatePost(d.ctx, store.NewPost{OrgID: org, AccountID: account, AuthorID: author, Text: "hi",
			Chain: cs.DefaultChain(), NeedsApproval: true})
		if err != nil {
			t.Fatal(err)
		}
		seq := 0
		return p.ID, func(typ string, rev, step int, actor, detail string, at time.Time) {
			t.Helper()
			seq++
			e := cs.PostEvent{Key: fmt.Sprintf("post-%s/%d", p.ID, seq), Seq: seq, Type: typ, Actor: actor, Source: cs.SourceAPI,
				Revision: rev, ContentHash: "h", Step: step, Detail: detail, At: at}
			if err := st.SavePostState(d.ctx, p.ID, cs.PostState{PostID: p.ID, Status: cs.PostPendingApproval, Revision: rev,
				UpdatedAt: at}, []cs.PostEvent{e}); err != nil {
				t.Fatal(err)
			}
		}
	}
	owner := d.owner.ID
	// A, revision 1: three steps, rejected at step 3. Revision 2: step 1
	// times out, its fallback team's Pat approves.
	_, a := post(d.st, d.org, owner)
	a(cs.EventSubmitted, 1, 0, owner, "", min(0))
	a(cs.EventStepOpened, 1, 1, "", "step 1/3", min(0))
	a(cs.EventDecisionCounted, 1, 1, maya.ID, "approval 1/1 on step 1", min(10))
	a(cs.EventStepOpened, 1, 2, "", "step 2/3", min(10))
	a(cs.EventDecisionCounted, 1, 2, pat.ID, "approval 1/1 on step 2", min(70))
	a(cs.EventStepOpened, 1, 3, "", "step 3/3", min(70))
	a(cs.EventReminderSent, 1, 3, "", "", min(80))
	a(cs.EventDecisionCounted, 1, 3, eddie.ID, "rejection on step 3", min(100))
	a(cs.EventRejected, 1, 3, eddie.ID, "off-brand", min(100))
	a(cs.EventEdited, 2, 0, owner, "", min(110))
	a(cs.EventStepOpened, 2, 1, "", "step 1/3", min(120))
	a(cs.EventFallbackOpened, 2, 1, "", "step 1 timed out: fallback team", min(360))
	a(cs.EventDecisionIgnored, 2, 1, eddie.ID, "approve ignored", min(361))
	a(cs.EventDecisionCounted, 2, 1, pat.ID, "approval 1/1 on step 1", min(390))
	// B: step 1 approved by Maya after 20 minutes; step 2 times out with no
	// fallback: the post expires.
	_, b := post(d.st, d.org, owner)
	b(cs.EventStepOpened, 1, 1, "", "step 1/3", min(0))
	b(cs.EventDecisionCounted, 1, 1, maya.ID, "approval 1/1 on step 1", min(20))
	b(cs.EventStepOpened, 1, 2, "", "step 2/3", min(20))
	b(cs.EventExpired, 1, 0, "", "step 2/3 timed out", min(260))
	// C: its scheduled time passes while step 1 waits.
	_, c := post(d.st, d.org, owner)
	c(cs.EventStepOpened, 1, 1, "", "step 1/3", min(0))
	c(cs.EventExpired, 1, 0, "", "the scheduled time passed before the post was approved", min(30))
	// D: before the range.
	_, dd := post(d.st, d.org, owner)
	dd(cs.EventStepOpened, 1, 1, "", "step 1/3", min(-10*24*60))
	dd(cs.EventDecisionCounted, 1, 1, maya.ID, "approval 1/1 on step 1", min(-9*24*60))
	// Another org's post, in the range.
	other, err := d.st.Bootstrap(d.ctx, "Other", "o@other.test", "Oscar")
	if err != nil {
		t.Fatal(err)
	}
	otherAcct, err := d.st.CreateAccount(d.ctx, other.Org.ID, store.NewAccount{Network: cs.NetworkLog, Handle: "o", Timezone: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	account, otherOwner := otherAcct.ID, other.Member.ID
	_, o := post(d.st, other.Org.ID, otherOwner)
	o(cs.EventStepOpened, 1, 1, "", "step 1/1", min(0))
	o(cs.EventFallbackOpened, 1, 1, "", "step 1 timed out", min(5))
	o(cs.EventDecisionCounted, 1, 1, otherOwner, "approval", min(6))

	r, err := d.st.ApprovalReport(d.ctx, d.org, t0.Add(-time.Hour), t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	f := func(v float64) *float64 { return &v }
	wantSteps := []store.StepTurnaround{
		{Step: 1, Opened: 4, Decisions: 3, Approvals: 3, MedianSeconds: f(1200), P90Seconds: f(13200), Timeouts: 1, Fallbacks: 1, Expiries: 1},
		{Step: 2, Opened: 2, Decisions: 1, Approvals: 1, MedianSeconds: f(3600), P90Seconds: f(3600), Timeouts: 1, Expiries: 1},
		{Step: 3, Opened: 1, Decisions: 1, Rejections: 1, MedianSeconds: f(1800), P90Seconds: f(1800)},
	}
	if len(r.Steps) != len(wantSteps) {
		t.Fatalf("steps: got %+v", r.Steps)
	}
	for i, w := range wantSteps {
		if g := r.Steps[i]; !sameStep(g, w) {
			t.Errorf("step %d: got %s, want %s", w.Step, stepString(g), stepString(w))
		}
	}
	type ap struct {
		name                                   string
		step, decisions, approvals, rejections int
		viaFallback                            int
		median, p90                            float64
	}
	wantApprovers := []ap{
		{"maya", 1, 2, 2, 0, 0, 900, 1140},
		{"pat", 1, 1, 1, 0, 1, 16200, 16200},
		{"pat", 2, 1, 1, 0, 0, 3600, 3600},
		{"eddie", 3, 1, 0, 1, 0, 1800, 1800},
	}
	if len(r.Approvers) != len(wantApprovers) {
		t.Fatalf("approvers: got %+v", r.Approvers)
	}
	for i, w := range wantApprovers {
		g := r.Approvers[i]
		got := ap{g.Name, g.Step, g.Decisions, g.Approvals, g.Rejections, g.ViaFallback, deref(g.MedianSeconds), deref(g.P90Seconds)}
		if got != w {
			t.Errorf("approver %d: got %+v, want %+v", i, got, w)
		}
	}

	// A range with nothing in it: empty lists, not nulls.
	r, err = d.st.ApprovalReport(d.ctx, d.org, t0.Add(48*time.Hour), t0.Add(72*time.Hour))
	if err != nil || len(r.Steps) != 0 || r.Approvers == nil || len(r.Approvers) != 0 {
		t.Fatalf("empty range: %+v, %v", r, err)
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return math.Round(*p*1000) / 1000
}

func sameStep(a, b store.StepTurnaround) bool { return stepString(a) == stepString(b) }

func stepString(s store.StepTurnaround) string {
	return fmt.Sprintf("{step %d opened %d decisions %d approvals %d rejections %d median %v p90 %v timeouts %d fallbacks %d expiries %d}",
		s.Step, s.Opened, s.Decisions, s.Approvals, s.Rejections, deref(s.MedianSeconds), deref(s.P90Seconds), s.Timeouts, s.Fallbacks, s.Expiries)
}

// An external reviewer's decisions (no actor: source link) count in their
// step, their rejection as a rejection, and have no per-approver row.
func TestApprovalReportExternalReviewer(t *testing.T) {
	d := newDir(t)
	account := d.account("client")
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	p, _, err := d.st.CreatePost(d.ctx, store.NewPost{OrgID: d.org, AccountID: account, AuthorID: d.owner.ID, Text: "hi",
		Chain: cs.DefaultChain(), NeedsApproval: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range []cs.PostEvent{
		{Type: cs.EventStepOpened, Step: 1, At: t0},
		{Type: cs.EventDecisionCounted, Step: 1, Source: cs.SourceLink, Detail: "rejection on step 1 by external reviewer cleo@client.test", At: t0.Add(time.Hour)},
		{Type: cs.EventRejected, Step: 1, Source: cs.SourceLink, Detail: "wrong date", At: t0.Add(time.Hour)},
	} {
		e.Key, e.Seq, e.Revision, e.ContentHash = fmt.Sprintf("post-%s/%d", p.ID, i+1), i+1, 1, "h"
		if e.Source == "" {
			e.Source = cs.SourceSystem
		}
		if err := d.st.SavePostState(d.ctx, p.ID, cs.PostState{PostID: p.ID, Status: cs.PostPendingApproval, Revision: 1, UpdatedAt: e.At},
			[]cs.PostEvent{e}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := d.st.ApprovalReport(d.ctx, d.org, t0.Add(-time.Hour), t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Steps) != 1 || r.Steps[0].Decisions != 1 || r.Steps[0].Rejections != 1 || r.Steps[0].Approvals != 0 || len(r.Approvers) != 0 {
		t.Fatalf("report: steps %+v approvers %+v", r.Steps, r.Approvers)
	}
}
