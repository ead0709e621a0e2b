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

// api is a small HTTP client for the Countersign API.
type api struct {
	base, org string
	hc        *http.Client
}

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
	req, err := http.NewRequestWithContext(ctx, method, a.base+"/v1/orgs/"+a.org+path, rd)
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

func runCountersign(ctx context.Context, s *devstack.Stack, o Options, serverPID int) (*Pipeline, error) {
	hook, err := newReceiver()
	if err != nil {
		return nil, err
	}
	defer hook.srv.Close()
	a := &api{base: s.APIURL, org: s.Demo.OrgID, hc: &http.Client{
		Timeout:   time.Minute,
		Transport: &http.Transport{MaxIdleConns: 4 * o.Concurrency, MaxIdleConnsPerHost: 4 * o.Concurrency},
	}}
	if err := waitReady(ctx, a); err != nil {
		return nil, err
	}
	acct, err := setup(ctx, a, s.Demo, hook)
	if err != nil {
		return nil, err
	}
	tok := s.Demo.Tokens

	ids := make([]string, o.Posts)
	lat := samples{}
	var mu sync.Mutex
	add := func(name string, d time.Duration) {
		mu.Lock()
		lat[name] = append(lat[name], d)
		mu.Unlock()
	}
	p := &Pipeline{}
	fail := func(i int, what string, err error) {
		mu.Lock()
		defer mu.Unlock()
		p.Failed++
		if p.FirstError == "" {
			p.FirstError = fmt.Sprintf("post %d: %s: %v", i, what, err)
		}
	}
	timeout := o.Lead + 3*time.Minute

	mem := sampleMemory(serverPID)
	start := time.Now()
	pool(ctx, o.Posts, o.Concurrency, o.Progress, "countersign", func(ctx context.Context, i int) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		t0 := time.Now()
		var at time.Time // set by the author's reschedule just before the last approval
		var post cs.Post
		if err := a.do(ctx, 201, tok["INES"], "POST", "/posts", map[string]any{
			"account_id": acct, "text": fmt.Sprintf("Bench post %d", i), "scheduled_at": t0.Add(time.Hour).Format(time.RFC3339)}, &post); err != nil {
			fail(i, "submit", err)
			return
		}
		last := time.Now()
		add("submit", last.Sub(t0))
		ids[i] = cs.WorkflowID(post.ID)
		delivered := hook.wait(post.ID)
		approvers := []string{"MAYA", []string{"PAT", "PAUL"}[i%2], "EDDIE"}
		for step, who := range approvers {
			n := step + 1
			if err := pollPost(ctx, a, tok[who], post.ID, o.Poll, func(p cs.Post) (bool, error) {
				if p.Status != cs.PostPendingApproval {
					return false, fmt.Errorf("status %s before step %d opened (%s)", p.Status, n, p.LastError)
				}
				return p.CurrentStep == n && len(p.Steps) >= n && p.Steps[n-1].Status == cs.StepOpen, nil
			}); err != nil {
				fail(i, fmt.Sprintf("wait for step %d", n), err)
				return
			}
			if n == 1 {
				add("submit → step 1 open", time.Since(last))
			} else {
				add("decision → next step open", time.Since(last))
			}
			if n == len(approvers) {
				// The author moves the post to Lead from now, keeping its approvals.
				t := time.Now()
				at = t.Add(o.Lead)
				if err := a.do(ctx, 200, tok["INES"], "PATCH", "/posts/"+post.ID, map[string]any{
					"scheduled_at": at.Format(time.RFC3339Nano)}, nil); err != nil {
					fail(i, "reschedule", err)
					return
				}
				add("reschedule", time.Since(t))
			}
			t := time.Now()
			if err := a.do(ctx, 200, tok[who], "POST", "/posts/"+post.ID+"/approve", map[string]any{"revision": 1, "note": "ok"}, nil); err != nil {
				fail(i, fmt.Sprintf("approve step %d", n), err)
				return
			}
			last = time.Now()
			add("approve", last.Sub(t))
		}
		// The last decision: scheduled (or already published), then delivered.
		if err := pollPost(ctx, a, tok["EDDIE"], post.ID, o.Poll, func(p cs.Post) (bool, error) {
			switch p.Status {
			case cs.PostScheduled, cs.PostPublishing, cs.PostPublished:
				return true, nil
			case cs.PostPendingApproval:
				return false, nil
			}
			return false, fmt.Errorf("status %s (%s)", p.Status, p.LastError)
		}); err != nil {
			fail(i, "wait for scheduled", err)
			return
		}
		add("last decision → scheduled", time.Since(last))
		select {
		case <-delivered:
		case <-ctx.Done():
			var p cs.Post
			_ = a.do(context.Background(), 200, tok["OWNER"], "GET", "/posts/"+post.ID, nil, &p)
			fail(i, "wait for the delivery", fmt.Errorf("%w; post status %s %s", ctx.Err(), p.Status, p.LastError))
			return
		}
		d := hook.deliveredAt(post.ID)
		add("publish lateness", d.Sub(at))
		add("end to end", d.Sub(t0))
		mu.Lock()
		p.Completed++
		mu.Unlock()
	})
	p.WallSeconds = time.Since(start).Seconds()
	p.Memory = mem.finish()
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
	p.Latency = lat.percentiles()
	var started []string
	for _, id := range ids {
		if id != "" {
			started = append(started, id)
		}
	}
	p.History, err = countHistories(ctx, s.App.Temporal, started)
	return p, err
}

// pollPost reads the post as token every interval until cond holds.
func pollPost(ctx context.Context, a *api, token, postID string, every time.Duration, cond func(cs.Post) (bool, error)) error {
	for {
		var p cs.Post
		if err := a.do(ctx, 200, token, "GET", "/posts/"+postID, nil, &p); err != nil {
			return err
		}
		ok, err := cond(p)
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: status %s, step %d)", ctx.Err(), p.Status, p.CurrentStep)
		case <-time.After(every):
		}
	}
}

// waitReady waits for /readyz (the worker has polled its task queue).
func waitReady(ctx context.Context, a *api) error {
	deadline := time.Now().Add(time.Minute)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, "GET", a.base+"/readyz", nil)
		resp, err := a.hc.Do(req)
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
