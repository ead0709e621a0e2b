package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
)

// The metrics gauge countersign_posts{status} reads the per-org counts that
// migration 00009's triggers keep: a submission, each status change, a
// state mirrored again with the same status and a deleted post all leave
// them equal to the posts table, including changes racing in both
// directions (which would deadlock if the two counters were taken in
// different orders).
func TestPostCountsFollowEveryChange(t *testing.T) {
	d := newDir(t)
	ctx := context.Background()
	account := d.account("counts")
	want := func(when string, exp map[cs.PostStatus]int) {
		t.Helper()
		got, err := d.st.CountPostsByStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range cs.PostStatuses {
			if got[string(s)] != exp[s] {
				t.Errorf("%s: %s counted %d, want %d (all: %v)", when, s, got[string(s)], exp[s], got)
			}
		}
	}
	submit := func(needsApproval bool) string { return d.post(account, needsApproval) }
	mirror := func(id string, s cs.PostStatus, at time.Time) {
		t.Helper()
		if err := d.st.SavePostState(ctx, id, cs.PostState{PostID: id, Status: s, Revision: 1, UpdatedAt: at}, nil); err != nil {
			t.Fatal(err)
		}
	}
	a, b, c := submit(true), submit(true), submit(false)
	want("after three submissions", map[cs.PostStatus]int{cs.PostPendingApproval: 2, cs.PostScheduled: 1})
	t0 := time.Now()
	mirror(a, cs.PostScheduled, t0)
	mirror(a, cs.PostScheduled, t0.Add(time.Millisecond)) // same status again
	mirror(b, cs.PostRejected, t0)
	want("after mirrors", map[cs.PostStatus]int{cs.PostScheduled: 2, cs.PostRejected: 1})
	if err := d.st.FlagPost(ctx, c, "gone"); err != nil {
		t.Fatal(err)
	}
	unstarted := submit(true)
	if err := d.st.DeleteUnstartedPost(ctx, unstarted); err != nil {
		t.Fatal(err)
	}
	want("after a flag and a deleted submission", map[cs.PostStatus]int{cs.PostScheduled: 1, cs.PostRejected: 1, cs.PostNeedsAttention: 1})

	// Changes in opposite directions at once: pending→scheduled and
	// scheduled→pending, many times over.
	var up, down []string
	for range 20 {
		up = append(up, submit(true))
		p := submit(false)
		down = append(down, p)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range up {
		wg.Add(2)
		go func(id string) {
			defer wg.Done()
			errs <- d.st.SavePostState(ctx, id, cs.PostState{PostID: id, Status: cs.PostScheduled, Revision: 1, UpdatedAt: time.Now()}, nil)
		}(up[i])
		go func(id string) {
			defer wg.Done()
			errs <- d.st.SavePostState(ctx, id, cs.PostState{PostID: id, Status: cs.PostPendingApproval, Revision: 1, UpdatedAt: time.Now()}, nil)
		}(down[i])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a concurrent status change failed: %v", err)
		}
	}
	want("after concurrent changes", map[cs.PostStatus]int{cs.PostScheduled: 21, cs.PostPendingApproval: 20, cs.PostRejected: 1, cs.PostNeedsAttention: 1})
}
