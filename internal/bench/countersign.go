package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/devstack"
	"github.com/countersign/countersign/internal/publish"
	"github.com/countersign/countersign/internal/secrets"
)

// receiver is the webhook endpoint: it verifies each delivery's Standard
// Webhooks signature and counts deliveries by webhook-id.
type receiver struct {
	secret string
	url    string
	srv    *http.Server

	mu       sync.Mutex
	seen     map[string]int       // webhook-id → deliveries
	at       map[string]time.Time // post id → first delivery
	waiters  map[string]chan struct{}
	badSig   int
	firstBad string
}

func newReceiver() (*receiver, error) {
	r := &receiver{secret: "whsec_" + base64.StdEncoding.EncodeToString(secrets.RandomBytes(24)),
		seen: map[string]int{}, at: map[string]time.Time{}, waiters: map[string]chan struct{}{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.url = "http://" + l.Addr().String() + "/hook"
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(l) }()
	return r, nil
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	body, _ := io.ReadAll(req.Body)
	if err := publish.VerifyWebhook(r.secret, req.Header, body, now, 5*time.Minute); err != nil {
		r.mu.Lock()
		r.badSig++
		if r.firstBad == "" {
			r.firstBad = err.Error()
		}
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var p publish.WebhookPayload
	_ = json.Unmarshal(body, &p)
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	r.seen[id]++
	if _, ok := r.at[p.Data.Post.ID]; !ok {
		r.at[p.Data.Post.ID] = now
		if ch, ok := r.waiters[p.Data.Post.ID]; ok {
			close(ch)
		}
	}
	n := len(r.at)
	r.mu.Unlock()
	_, _ = fmt.Fprintf(w, `{"id":"bench-%d","url":"https://hooks.bench.test/%s"}`, n, id)
}

// wait returns a channel closed once postID was delivered.
func (r *receiver) wait(postID string) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan struct{})
	if _, ok := r.at[postID]; ok {
		close(ch)
	} else {
		r.waiters[postID] = ch
	}
	return ch
}

func (r *receiver) deliveredAt(postID string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.at[postID]
}

// api is a small HTTP client for the Countersign API: it spreads its
// requests over the APIs, round-robin.
type api struct {
	bases []string
	next  atomic.Uint64
	org   string
	hc    *http.Client
}

// base is the API the next request goes to.
func (a *api) base() string { return a.bases[int(a.next.Add(1)%uint64(len(a.bases)))] }

type apiError struct {
	status int
	body   string
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

func (a *api) do(ctx context.Context, want int, token, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base()+"/v1/orgs/"+a.org+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return &apiError{resp.StatusCode, string(raw)}
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// setup creates a webhook account on the demo org (the demo owner, over the
// API) with Ines limited and Eddie editor, on the demo's three-step chain.
func setup(ctx context.Context, a *api, d *devstack.Demo, hook *receiver) (string, error) {
	owner := d.Tokens["OWNER"]
	var acct struct{ ID string }
	if err := a.do(ctx, 201, owner, "POST", "/accounts", map[string]any{
		"network": "webhook", "handle": fmt.Sprintf("bench-%d", time.Now().UnixNano()), "display_name": "Bench", "timezone": "UTC",
		"settings": map[string]string{"url": hook.url}, "credentials": map[string]string{"secret": hook.secret}}, &acct); err != nil {
		return "", fmt.Errorf("create the webhook account: %w", err)
	}
	if err := a.do(ctx, 200, owner, "PUT", "/accounts/"+acct.ID+"/permissions", map[string]any{"grants": []map[string]any{
		{"member_id": d.Members["INES"], "level": "limited"},
		{"member_id": d.Members["EDDIE"], "level": "editor"},
	}}, nil); err != nil {
		return "", fmt.Errorf("grants: %w", err)
	}
	if err := a.do(ctx, 200, owner, "PATCH", "/accounts/"+acct.ID, map[string]any{"approval_chain_id": d.ChainID}, nil); err != nil {
		return "", fmt.Errorf("set the chain: %w", err)
	}
	return acct.ID, nil
}

// run is one Countersign run's shared state: its drivers record into it.
type run struct {
	o     Options
	conc  int
	a     *api
	tok   map[string]string
	acct  string
	hook  *receiver
	slack *slackTap // nil with --approvers api
	apis  *apiApprovers

	mu  sync.Mutex
	lat samples
	p   *Pipeline
}

func (r *run) add(name string, d time.Duration) {
	r.mu.Lock()
	r.lat[name] = append(r.lat[name], d)
	r.mu.Unlock()
}

// fail records a post that did not complete. It reads the post once to
// tell why, and counts a post that expired although its last approval was
// sent before its scheduled time (lastDecision before at): the machine was
// slow, not the approvers.
func (r *run) fail(i int, postID, what string, err error, lastDecision, at time.Time) {
	var p cs.Post
	status := ""
	if postID != "" && r.a.do(context.Background(), 200, r.tok["OWNER"], "GET", "/posts/"+postID, nil, &p) == nil {
		status = fmt.Sprintf("; post status %s %s", p.Status, p.LastError)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.p.Failed++
	if p.Status == cs.PostExpired {
		r.p.Expired++
		if !lastDecision.IsZero() && lastDecision.Before(at) {
			r.p.ExpiredAfterTimelyApproval++
		}
	}
	if r.p.FirstError == "" {
		r.p.FirstError = fmt.Sprintf("post %d: %s: %v%s", i, what, err, status)
	}
}

func (r *run) completed() {
	r.mu.Lock()
	r.p.Completed++
	r.mu.Unlock()
}

// approvers of step 1, 2, 3 of post i: the demo's chain (Maya; the PR team,
// Pat or Paul in turn; Eddie, an editor).
func approvers(i int) []string { return []string{"MAYA", []string{"PAT", "PAUL"}[i%2], "EDDIE"} }

func runCountersign(ctx context.Context, e *env, o Options, conc, n int) (*Pipeline, error) {
	tap := e.slack
	hook, err := newReceiver()
	if err != nil {
		return nil, err
	}
	defer hook.srv.Close()
	a := &api{bases: e.apiURLs, org: e.demo.OrgID, hc: &http.Client{
		Timeout:   time.Minute,
		Transport: &http.Transport{MaxIdleConns: 4 * conc, MaxIdleConnsPerHost: 4 * conc},
	}}
	if err := waitReady(ctx, a); err != nil {
		return nil, err
	}
	acct, err := setup(ctx, a, e.demo, hook)
	if err != nil {
		return nil, err
	}
	r := &run{o: o, conc: conc, a: a, tok: e.demo.Tokens, acct: acct, hook: hook, slack: tap, lat: samples{}, p: &Pipeline{}}
	if tap != nil {
		// Step 2's request goes to the PR team's channel.
		if err := a.do(ctx, 200, r.tok["OWNER"], "PATCH", "/teams/"+e.demo.TeamID,
			map[string]any{"slack_channel_id": slackTeamChannel}, nil); err != nil {
			return nil, fmt.Errorf("set the team's Slack channel: %w", err)
		}
	} else {
		actx, stop := context.WithCancel(ctx)
		defer stop()
		r.apis = startAPIApprovers(actx, a, r.tok, o.Poll)
	}

	ids := make([]string, n)
	refusedBefore := 0
	if tap != nil {
		refusedBefore, _ = tap.refusals()
	}
	mem := sampleMemory(e.serverPID)
	cpu := newCPUMeter(e.serverPID, e.services)
	start := time.Now()
	pool(ctx, len(ids), conc, o.Progress, "countersign", func(ctx context.Context, i int) {
		ctx, cancel := context.WithTimeout(ctx, o.Lead+3*time.Minute)
		defer cancel()
		if tap != nil {
			r.slackPost(ctx, i, &ids[i])
		} else {
			r.apiPost(ctx, i, &ids[i])
		}
	})
	p := r.p
	p.WallSeconds = time.Since(start).Seconds()
	p.Memory = mem.finish()
	p.CPU = cpu.per(p.Completed)
	p.PostsPerSecond = float64(p.Completed) / p.WallSeconds
	// A moment for late duplicates to show up before counting.
	time.Sleep(500 * time.Millisecond)
	hook.mu.Lock()
	for _, n := range hook.seen {
		p.Deliveries++
		p.Duplicates += n - 1
	}
	if hook.badSig > 0 && p.FirstError == "" {
		p.FirstError = fmt.Sprintf("%d delivery(ies) with a bad signature: %s", hook.badSig, hook.firstBad)
		p.Failed += hook.badSig
	}
	hook.mu.Unlock()
	if tap != nil {
		refused, first := tap.refusals()
		if p.RefusedClicks = refused - refusedBefore; p.RefusedClicks > 0 && p.FirstError == "" {
			p.FirstError = "a click was refused: " + first
		}
	}
	p.Latency = r.lat.percentiles()
	var started []string
	for _, id := range ids {
		if id != "" {
			started = append(started, id)
		}
	}
	p.History, err = countHistories(ctx, e.tc, started)
	return p, err
}

// submit is the author's POST /posts, scheduled an hour ahead (the last
// approver's driver moves it to Lead from then).
func (r *run) submit(ctx context.Context, i int, workflowID *string) (cs.Post, bool) {
	t0 := time.Now()
	var post cs.Post
	err := r.a.do(ctx, 201, r.tok["INES"], "POST", "/posts", map[string]any{
		"account_id": r.acct, "text": fmt.Sprintf("Bench post %d", i), "scheduled_at": time.Now().Add(time.Hour).Format(time.RFC3339)}, &post)
	if err != nil {
		r.fail(i, "", "submit", err, time.Time{}, time.Time{})
		return post, false
	}
	r.add("submit", time.Since(t0))
	*workflowID = cs.WorkflowID(post.ID)
	return post, true
}

// reschedule is the author moving the post to Lead from now, keeping its
// approvals, just before the last approval (a slot chosen at submission
// would expire under the `expire` policy before three approvals on a slow
// machine). It returns the new scheduled time.
func (r *run) reschedule(ctx context.Context, postID string) (time.Time, error) {
	t := time.Now()
	at := t.Add(r.o.Lead)
	err := r.a.do(ctx, 200, r.tok["INES"], "PATCH", "/posts/"+postID, map[string]any{"scheduled_at": at.Format(time.RFC3339Nano)}, nil)
	r.add("reschedule", time.Since(t))
	return at, err
}

// delivered waits for the post's delivery and records its lateness.
func (r *run) delivered(ctx context.Context, i int, postID string, t0, lastDecision, at time.Time) {
	select {
	case <-r.hook.wait(postID):
	case <-ctx.Done():
		r.fail(i, postID, "wait for the delivery", ctx.Err(), lastDecision, at)
		return
	}
	d := r.hook.deliveredAt(postID)
	r.add("publish lateness", d.Sub(at))
	r.add("end to end", d.Sub(t0))
	r.completed()
}

// waitReady waits for every API's /readyz (a worker has polled its task
// queue).
func waitReady(ctx context.Context, a *api) error {
	for _, base := range a.bases {
		if err := waitReadyAt(ctx, a.hc, base); err != nil {
			return err
		}
	}
	return nil
}

func waitReadyAt(ctx context.Context, hc *http.Client, base string) error {
	deadline := time.Now().Add(time.Minute)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/readyz", nil)
		resp, err := hc.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			err = errors.New(string(b))
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the API never became ready: %v", last)
}
