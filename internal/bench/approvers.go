package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	cs "github.com/countersign/countersign"
)

// slackPost drives post i with approvers who react to their Slack
// notifications: each request reaches the fake Slack, the step's approver
// clicks Approve on it at once (a signed POST /slack/interactions), and the
// next step's request arriving at the fake Slack is the moment that step
// opened (the notifier sends it right after the transition's commit).
func (r *run) slackPost(ctx context.Context, i int, workflowID *string) {
	t0 := time.Now() // the post's end-to-end time starts with its submission
	post, ok := r.submit(ctx, i, workflowID)
	if !ok {
		return
	}
	events := r.slack.subscribe(post.ID)
	defer r.slack.unsubscribe(post.ID)
	// Where each step's request arrives, and who clicks it.
	who := approvers(i)
	channel := []string{"D" + slackPeople["MAYA"][1:], slackTeamChannel, "D" + slackPeople["EDDIE"][1:]}
	var lastClick, at, prevRequest time.Time
	for n := 1; n <= len(who); n++ {
		ev, err := waitEvent(ctx, events, func(ev slackEvent) bool {
			return ev.Method == "chat.postMessage" && ev.Target.Step == n && ev.Channel == channel[n-1]
		})
		if err != nil {
			r.fail(i, post.ID, fmt.Sprintf("wait for the request of step %d", n), err, lastClick, at)
			return
		}
		if n == 1 {
			r.add("submit → step 1 request", ev.At.Sub(t0))
		} else {
			r.add("click → next step open", ev.At.Sub(lastClick))
			r.add("notification → click → next step open", ev.At.Sub(prevRequest))
		}
		prevRequest = ev.At
		if n == len(who) {
			if at, err = r.reschedule(ctx, post.ID); err != nil {
				r.fail(i, post.ID, "reschedule", err, lastClick, at)
				return
			}
		}
		lastClick = time.Now()
		if n < len(who) {
			r.add("notification → click", lastClick.Sub(ev.At))
		} else { // the author's PATCH came between
			r.add("notification → reschedule → click", lastClick.Sub(ev.At))
		}
		if err := r.slack.click(ctx, r.a.hc, r.a.base(), slackPeople[who[n-1]], ev); err != nil {
			r.fail(i, post.ID, fmt.Sprintf("click step %d", n), err, lastClick, at)
			return
		}
		r.add("click acknowledged", time.Since(lastClick))
	}
	// The last click: the requests are updated to say the post is scheduled.
	ev, err := waitEvent(ctx, events, func(ev slackEvent) bool {
		return ev.Method == "chat.update" && strings.Contains(ev.Text, "All steps approved")
	})
	if err != nil {
		r.fail(i, post.ID, "wait for scheduled", err, lastClick, at)
		return
	}
	r.add("last click → scheduled", ev.At.Sub(lastClick))
	r.delivered(ctx, i, post.ID, t0, lastClick, at)
}

// waitEvent returns the first event that matches; an update saying the post
// ended (expired, rejected…) is an error.
func waitEvent(ctx context.Context, events <-chan slackEvent, match func(slackEvent) bool) (slackEvent, error) {
	for {
		select {
		case ev := <-events:
			if match(ev) {
				return ev, nil
			}
			if ev.Method == "chat.update" {
				if what, ok := terminal(ev); ok {
					return ev, fmt.Errorf("the request now says %q", what)
				}
			}
		case <-ctx.Done():
			return slackEvent{}, ctx.Err()
		}
	}
}

// apiApprovers are the approvers of --approvers api: each reads
// GET /approvals every interval (a person checking their queue, or an
// integration polling) and hands what is waiting for them to the post's
// driver.
type apiApprovers struct {
	mu    sync.Mutex
	posts map[string]*apiPost
}

// apiPost is a post being driven: its step's approver, once seen, sends
// the step on seen.
type apiPost struct {
	who  []string
	seen chan apiSeen
	sent map[int]bool
}

type apiSeen struct {
	step int
	at   time.Time
}

func startAPIApprovers(ctx context.Context, a *api, tok map[string]string, every time.Duration) *apiApprovers {
	x := &apiApprovers{posts: map[string]*apiPost{}}
	for _, name := range []string{"MAYA", "PAT", "PAUL", "EDDIE"} {
		go func() {
			// People check their queues out of step with one another.
			select {
			case <-ctx.Done():
				return
			case <-time.After(rand.N(every)):
			}
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				x.check(ctx, a, tok[name], name)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	return x
}

// check reads name's approvals queue once, every page.
func (x *apiApprovers) check(ctx context.Context, a *api, token, name string) {
	cursor := ""
	for {
		var page struct {
			Items      []cs.Post `json:"items"`
			NextCursor string    `json:"next_cursor"`
		}
		path := "/approvals?limit=200"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		if err := a.do(ctx, 200, token, "GET", path, nil, &page); err != nil {
			return // the next tick tries again
		}
		now := time.Now()
		x.mu.Lock()
		for _, p := range page.Items {
			ap := x.posts[p.ID]
			n := p.CurrentStep
			if ap == nil || n < 1 || n > len(ap.who) || ap.who[n-1] != name || ap.sent[n] {
				continue
			}
			ap.sent[n] = true
			ap.seen <- apiSeen{step: n, at: now}
		}
		x.mu.Unlock()
		if page.NextCursor == "" {
			return
		}
		cursor = page.NextCursor
	}
}

func (x *apiApprovers) add(postID string, who []string) *apiPost {
	ap := &apiPost{who: who, seen: make(chan apiSeen, len(who)), sent: map[int]bool{}}
	x.mu.Lock()
	x.posts[postID] = ap
	x.mu.Unlock()
	return ap
}

func (x *apiApprovers) remove(postID string) {
	x.mu.Lock()
	delete(x.posts, postID)
	x.mu.Unlock()
}

// apiPost drives post i with approvers who find it in GET /approvals and
// approve it over the API; an approval answers with the post's new state,
// so "approve" includes the next step opening.
func (r *run) apiPost(ctx context.Context, i int, workflowID *string) {
	t0 := time.Now() // the post's end-to-end time starts with its submission
	post, ok := r.submit(ctx, i, workflowID)
	if !ok {
		return
	}
	who := approvers(i)
	ap := r.apis.add(post.ID, who)
	defer r.apis.remove(post.ID)
	var last, at time.Time
	var err error
	for n := 1; n <= len(who); n++ {
		var s apiSeen
		select {
		case s = <-ap.seen:
		case <-ctx.Done():
			r.fail(i, post.ID, fmt.Sprintf("wait for step %d in GET /approvals", n), ctx.Err(), last, at)
			return
		}
		if s.step != n {
			r.fail(i, post.ID, fmt.Sprintf("wait for step %d", n), fmt.Errorf("step %d came first", s.step), last, at)
			return
		}
		if n == 1 {
			r.add("submit → seen in GET /approvals", s.at.Sub(t0))
		} else {
			r.add("approve → next approver sees it", s.at.Sub(last))
		}
		if n == len(who) {
			if at, err = r.reschedule(ctx, post.ID); err != nil {
				r.fail(i, post.ID, "reschedule", err, last, at)
				return
			}
		}
		t := time.Now()
		var now cs.Post
		if err := r.a.do(ctx, 200, r.tok[who[n-1]], "POST", "/posts/"+post.ID+"/approve", map[string]any{"revision": 1, "note": "ok"}, &now); err != nil {
			r.fail(i, post.ID, fmt.Sprintf("approve step %d", n), err, t, at)
			return
		}
		last = time.Now()
		r.add("approve (answers with the next step open)", last.Sub(t))
		want := now.Status == cs.PostPendingApproval && now.CurrentStep == n+1
		if n == len(who) {
			want = now.Status == cs.PostScheduled || now.Status == cs.PostPublishing || now.Status == cs.PostPublished
		}
		if !want {
			r.fail(i, post.ID, fmt.Sprintf("approve step %d", n), errors.New("unexpected state "+string(now.Status)), t, at)
			return
		}
		last = t // the decision was sent then
	}
	r.delivered(ctx, i, post.ID, t0, last, at)
}
