package e2e

import (
	"testing"

	cs "github.com/countersign/countersign"
)

// TestCleanThreeStepPost: the post the billing figures are about (issue 14,
// "leaner histories"): submitted through the API (Update-With-Start), each
// step approved through the API (a decide Update) as soon as the previous
// answer came back, no schedule, published once. Each answer already shows
// the next step open. Its history is recorded as clean_three_steps.vN.json;
// internal/bench counts its actions and events.
func TestCleanThreeStepPost(t *testing.T) {
	e := newEnv(t)
	acct := e.setupThreeLevels()

	var post cs.Post
	e.must(201, e.members["Ines"].token, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "Clean run"}, &post)
	if !atStep(1)(post) {
		t.Fatalf("submitted: %s at step %d", post.Status, post.CurrentStep)
	}
	for i, who := range []string{"Maya", "Paul", "Eddie"} {
		p := e.approve(who, post.ID, 1)
		if i < 2 && !atStep(i+2)(p) {
			t.Fatalf("%s's approval answered %s at step %d", who, p.Status, p.CurrentStep)
		}
	}
	e.waitPost(post.ID, "published", func(p cs.Post) bool { return p.Status == cs.PostPublished })
	if got := e.hook.Count(); got != 1 {
		t.Fatalf("deliveries = %d, want exactly 1", got)
	}
	recordHistory(t, e.app.Temporal, post.ID, "clean_three_steps")
}
