// Package e2e drives Countersign end to end over HTTP: the real API, a real
// worker, a real PostgreSQL and a real in-process Temporal server, and a
// webhook receiver that verifies signatures and counts deliveries.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/app"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/secrets"
	"github.com/countersign/countersign/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is one Countersign deployment under test.
type env struct {
	t       *testing.T
	app     *app.App
	api     *httptest.Server
	metrics *httptest.Server // the metrics listener
	hook    *testenv.Webhook
	stopW   context.CancelFunc
	wDone   chan struct{}
	orgID   string
	owner   string // API token
	members map[string]person
}

type person struct {
	token, memberID string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	tsrv := testenv.Temporal(t)
	return startEnv(t, map[string]string{
		"DATABASE_URL":       testenv.Postgres(t),
		"TEMPORAL_ADDRESS":   tsrv.Address,
		"TEMPORAL_NAMESPACE": tsrv.Namespace,
	}, testenv.Logger(t))
}

// startEnv opens an app configured by vars (plus a fresh secret key), serves
// its API, starts a worker and a webhook receiver; all stop with the test.
func startEnv(t *testing.T, vars map[string]string, logger *slog.Logger) *env {
	t.Helper()
	dataDir := t.TempDir()
	cfg, err := config.Load(func(name string) string {
		if name == "COUNTERSIGN_SECRET_KEY" {
			return fmt.Sprintf("%x", secrets.RandomBytes(32))
		}
		if _, ok := vars[name]; !ok && name == "COUNTERSIGN_DATA_DIR" {
			return dataDir // media blobs: the test's own directory
		}
		if _, ok := vars[name]; !ok && name == "COUNTERSIGN_EGRESS_ALLOW" {
			// The fakes and receivers listen on loopback; nothing else is
			// allowed (a test that says otherwise sets the variable).
			return "127.0.0.0/8,::1/128"
		}
		return vars[name]
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Open(context.Background(), cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, app: a, members: map[string]person{}}
	e.api = httptest.NewServer(a.Server())
	e.metrics = httptest.NewServer(a.MetricsHandler())
	e.hook = testenv.NewWebhook(t)
	t.Cleanup(func() {
		e.stopWorker()
		e.api.Close()
		e.metrics.Close()
		a.Close()
	})
	e.startWorker()
	return e
}

func (e *env) startWorker() {
	ctx, cancel := context.WithCancel(context.Background())
	e.stopW, e.wDone = cancel, make(chan struct{})
	go func() { _ = e.app.RunWorker(ctx); close(e.wDone) }()
}

func (e *env) stopWorker() {
	if e.stopW != nil {
		e.stopW()
		<-e.wDone
		e.stopW = nil
	}
}

// do sends a request as token and decodes the JSON answer into out.
func (e *env) do(token, method, path string, body any, out any) int {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.api.URL+path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: %s: %v", method, path, raw, err)
		}
	}
	if resp.StatusCode >= 300 && out == nil {
		e.t.Logf("%s %s -> %d %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode
}

// must is do that fails the test unless the status is want.
func (e *env) must(want int, token, method, path string, body any, out any) {
	e.t.Helper()
	var raw json.RawMessage
	if got := e.do(token, method, path, body, &raw); got != want {
		e.t.Fatalf("%s %s: got %d, want %d: %s", method, path, got, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) org(path string) string { return "/v1/orgs/" + e.orgID + path }

// invite adds a member through the invitation flow and returns their token.
func (e *env) invite(name, role string) person {
	e.t.Helper()
	var inv struct{ Token string }
	e.must(201, e.owner, "POST", e.org("/invitations"), map[string]any{
		"email": strings.ToLower(name) + "@acme.test", "name": name, "org_role": role}, &inv)
	var acc struct {
		Member   struct{ ID string } `json:"member"`
		APIToken string              `json:"api_token"`
	}
	e.must(200, "", "POST", "/v1/invitations/"+inv.Token+"/accept", map[string]any{"name": name}, &acc)
	p := person{token: acc.APIToken, memberID: acc.Member.ID}
	e.members[name] = p
	return p
}

// setupThreeLevels builds the org of the walk-through: a limited author
// (Ines, the intern), a chain of three steps — a member (Maya), a team (PR:
// Pat and Paul, quorum 1) and the approvers role (Eddie, an editor) — on a
// webhook account.
func (e *env) setupThreeLevels() (accountID string) {
	e.t.Helper()
	b, err := e.app.Store.Bootstrap(context.Background(), "Acme", "owner@acme.test", "Olivia Owner")
	if err != nil {
		e.t.Fatal(err)
	}
	e.orgID, e.owner = b.Org.ID, b.Token
	ines, maya, pat, paul, eddie := e.invite("Ines", "member"), e.invite("Maya", "member"),
		e.invite("Pat", "member"), e.invite("Paul", "member"), e.invite("Eddie", "member")

	var team struct{ ID string }
	e.must(201, e.owner, "POST", e.org("/teams"), map[string]any{"name": "PR"}, &team)
	for _, p := range []person{pat, paul} {
		e.must(200, e.owner, "PUT", e.org("/teams/"+team.ID+"/members/"+p.memberID), map[string]any{"role": "member"}, nil)
	}
	var acct struct{ ID string }
	e.must(201, e.owner, "POST", e.org("/accounts"), map[string]any{
		"network": "webhook", "handle": "acme", "display_name": "Acme", "timezone": "Europe/Paris",
		"settings": map[string]string{"url": e.hook.URL}, "credentials": map[string]string{"secret": e.hook.Secret}}, &acct)
	e.must(200, e.owner, "PUT", e.org("/accounts/"+acct.ID+"/permissions"), map[string]any{"grants": []map[string]any{
		{"member_id": ines.memberID, "level": "limited"},
		{"member_id": eddie.memberID, "level": "editor"},
	}}, nil)
	var chain struct{ ID string }
	e.must(201, e.owner, "POST", e.org("/approval-chains"), map[string]any{
		"name": "Brand", "late_policy": "expire", "distinct_approvers": true,
		"steps": []map[string]any{
			{"approver": map[string]string{"member": maya.memberID}, "timeout": "4h", "fallback_team": team.ID, "fallback_timeout": "2h"},
			{"approver": map[string]string{"team": team.ID}},
			{"approver": map[string]string{"role": "approvers"}},
		}}, &chain)
	e.must(200, e.owner, "PATCH", e.org("/accounts/"+acct.ID), map[string]any{"approval_chain_id": chain.ID}, nil)
	return acct.ID
}

// waitPost polls the post until cond holds.
func (e *env) waitPost(postID string, what string, cond func(cs.Post) bool) cs.Post {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var p cs.Post
	for time.Now().Before(deadline) {
		p = cs.Post{}
		e.must(200, e.owner, "GET", e.org("/posts/"+postID), nil, &p)
		if cond(p) {
			return p
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("post never %s; last: status=%s step=%d waiting=%q error=%q", what, p.Status, p.CurrentStep, p.WaitingFor, p.LastError)
	return p
}

// approve approves as who and returns the post's new state (200: the
// workflow answered).
func (e *env) approve(who string, postID string, revision int) cs.Post {
	e.t.Helper()
	var p cs.Post
	e.must(200, e.members[who].token, "POST", e.org("/posts/"+postID+"/approve"), map[string]any{"revision": revision, "note": "ok"}, &p)
	return p
}

func atStep(n int) func(cs.Post) bool {
	return func(p cs.Post) bool {
		return p.CurrentStep == n && len(p.Steps) >= n && p.Steps[n-1].Status == cs.StepOpen
	}
}

// TestThreeLevelsToWebhook: a limited author's post goes through a member,
// a team and the approvers role, then is delivered once, signed, at its time.
func TestThreeLevelsToWebhook(t *testing.T) {
	e := newEnv(t)
	acct := e.setupThreeLevels()
	at := time.Now().Add(3 * time.Second).Truncate(time.Second)

	var post cs.Post
	e.must(201, e.members["Ines"].token, "POST", e.org("/posts"), map[string]any{
		"account_id": acct, "text": "Our autumn launch is live!", "scheduled_at": at.Format(time.RFC3339)}, &post)
	if post.Status != cs.PostPendingApproval || post.Revision != 1 || post.CurrentStep != 1 || len(post.Steps) != 3 {
		t.Fatalf("submitted post: %+v", post)
	}
	// The author cannot approve, and step 2's team cannot jump the queue.
	if code := e.do(e.members["Ines"].token, "POST", e.org("/posts/"+post.ID+"/approve"), map[string]any{"revision": 1}, nil); code != 403 {
		t.Fatalf("author approving: %d, want 403", code)
	}
	e.waitPost(post.ID, "opened step 1", atStep(1))
	if code := e.do(e.members["Pat"].token, "POST", e.org("/posts/"+post.ID+"/approve"), map[string]any{"revision": 1}, nil); code != 403 {
		t.Fatalf("step 2's team approving step 1: %d, want 403", code)
	}

	e.approve("Maya", post.ID, 1)
	e.waitPost(post.ID, "opened step 2", atStep(2))
	e.approve("Paul", post.ID, 1)
	e.waitPost(post.ID, "opened step 3", atStep(3))
	e.approve("Eddie", post.ID, 1)
	done := e.waitPost(post.ID, "published", func(p cs.Post) bool { return p.Status == cs.PostPublished })

	if got := e.hook.Count(); got != 1 {
		t.Fatalf("deliveries = %d, want exactly 1", got)
	}
	if done.PublishedAt == nil || done.PublishedAt.Before(at) {
		t.Fatalf("published at %v, before its time %v", done.PublishedAt, at)
	}
	d := e.hook.Payloads()[0]
	if d.Data.Post.ID != post.ID || d.Data.Post.Text != "Our autumn launch is live!" || len(d.Approvals) != 3 {
		t.Fatalf("delivery body: %+v", d)
	}
	var types []string
	for _, ev := range done.Events {
		types = append(types, ev.Type)
	}
	for _, want := range []string{cs.EventSubmitted, cs.EventStepOpened, cs.EventDecisionCounted, cs.EventApproved, cs.EventPublished} {
		if !slices.Contains(types, want) {
			t.Errorf("audit log lacks %s: %v", want, types)
		}
	}
	recordHistory(t, e.app.Temporal, post.ID, "three_levels_published")

	// What an operator's Prometheus sees after this one post.
	// The SDK's metrics reach the registry on its reporting interval (1s).
	var raw []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(e.metrics.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(raw), "temporal_workflow_completed") {
			break
		}
	}
	for _, want := range []string{
		`countersign_http_request_duration_seconds_count{method="POST",route="/v1/orgs/:org/posts/:post/approve",status="200"} 3`,
		`countersign_decisions_total{outcome="counted",reason="",source="api"} 3`,
		`countersign_publish_outcomes_total{outcome="published"} 1`,
		`countersign_publish_lateness_seconds_count 1`,
		`countersign_posts{status="published"} 1`,
		`countersign_step_wait_seconds_count{outcome="approved",step="1"} 1`,
		`countersign_step_wait_seconds_count{outcome="approved",step="3"} 1`,
		`temporal_workflow_completed`, // the SDK's own worker metrics
		`temporal_request`,            // and client metrics
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestWorkerRestartWhilePostWaits: the worker stops while the post waits for
// step 2; a decision sent meanwhile is kept by Temporal, and once a worker is
// back the post finishes with exactly one delivery.
func TestWorkerRestartWhilePostWaits(t *testing.T) {
	e := newEnv(t)
	acct := e.setupThreeLevels()

	var post cs.Post
	e.must(201, e.members["Ines"].token, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "Restart-proof"}, &post)
	e.waitPost(post.ID, "opened step 1", atStep(1))
	e.approve("Maya", post.ID, 1)
	e.waitPost(post.ID, "opened step 2", atStep(2))

	e.stopWorker()
	// No worker answers the Update: after 5 s the API sends the signal with
	// the same request id and answers 202 with where to poll.
	var pending cs.Post
	e.must(202, e.members["Pat"].token, "POST", e.org("/posts/"+post.ID+"/approve"), map[string]any{"revision": 1, "note": "ok"}, &pending)
	time.Sleep(500 * time.Millisecond)
	if p := e.waitPost(post.ID, "still at step 2", atStep(2)); p.Status != cs.PostPendingApproval {
		t.Fatalf("moved without a worker: %+v", p)
	}
	if pending.ID != post.ID {
		t.Fatalf("the 202 shows %+v", pending)
	}
	e.startWorker()
	e.waitPost(post.ID, "opened step 3", atStep(3))
	e.approve("Eddie", post.ID, 1)
	done := e.waitPost(post.ID, "published", func(p cs.Post) bool { return p.Status == cs.PostPublished })
	if got := e.hook.Count(); got != 1 {
		t.Fatalf("deliveries = %d, want exactly 1", got)
	}
	// The Update (kept by Temporal) and its fallback signal counted once.
	counted := 0
	for _, ev := range done.Events {
		if ev.Type == cs.EventDecisionCounted && ev.Actor == e.members["Pat"].memberID {
			counted++
		}
	}
	if counted != 1 || len(done.Steps) != 3 || len(done.Steps[1].Approvals) != 1 {
		t.Fatalf("Pat's approval sent with no worker counted %d times (step 2 approvals: %+v)", counted, done.Steps[1].Approvals)
	}
	recordHistory(t, e.app.Temporal, post.ID, "worker_restart_published")
}

// TestRejectEditResubmit: a rejection at step 2 ends the chain; the author's
// edit restarts it at step 1 with a new revision.
func TestRejectEditResubmit(t *testing.T) {
	e := newEnv(t)
	acct := e.setupThreeLevels()
	var post cs.Post
	e.must(201, e.members["Ines"].token, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "First try"}, &post)
	e.waitPost(post.ID, "opened step 1", atStep(1))
	e.approve("Maya", post.ID, 1)
	e.waitPost(post.ID, "opened step 2", atStep(2))
	if code := e.do(e.members["Pat"].token, "POST", e.org("/posts/"+post.ID+"/reject"), map[string]any{"revision": 1}, nil); code != 422 {
		t.Fatalf("reject without a note: %d, want 422", code)
	}
	var rejected cs.Post
	e.must(200, e.members["Pat"].token, "POST", e.org("/posts/"+post.ID+"/reject"), map[string]any{"revision": 1, "note": "off-brand"}, &rejected)
	if rejected.Status != cs.PostRejected {
		t.Fatalf("the reject's answer shows %s, want rejected", rejected.Status)
	}

	var edited cs.Post
	e.must(200, e.members["Ines"].token, "PATCH", e.org("/posts/"+post.ID), map[string]any{"text": "Second try, on brand"}, &edited)
	if edited.Revision != 2 || edited.Status != cs.PostPendingApproval || !atStep(1)(edited) {
		t.Fatalf("the edit's answer: revision %d, %s, step %d", edited.Revision, edited.Status, edited.CurrentStep)
	}
	p := e.waitPost(post.ID, "resubmitted", func(p cs.Post) bool {
		return p.Revision == 2 && p.Status == cs.PostPendingApproval && atStep(1)(p)
	})
	if p.Text != "Second try, on brand" {
		t.Fatalf("text after edit: %q", p.Text)
	}
	// A decision on the old revision is refused with the reason.
	if code := e.do(e.members["Maya"].token, "POST", e.org("/posts/"+post.ID+"/approve"), map[string]any{"revision": 1}, nil); code != 409 {
		t.Fatalf("approving revision 1 after the edit: %d, want 409", code)
	}
	// The SPEC's {revision, note}: a stale revision is refused, the current one cancels.
	if code := e.do(e.members["Ines"].token, "POST", e.org("/posts/"+post.ID+"/cancel"), map[string]any{"revision": 1, "note": "not needed"}, nil); code != 409 {
		t.Fatalf("cancel of revision 1 at revision 2: %d, want 409", code)
	}
	var canceled cs.Post
	e.must(200, e.members["Ines"].token, "POST", e.org("/posts/"+post.ID+"/cancel"), map[string]any{"revision": 2, "note": "not needed"}, &canceled)
	if canceled.Status != cs.PostCanceled {
		t.Fatalf("the cancel's answer shows %s", canceled.Status)
	}
	e.waitPost(post.ID, "canceled", func(p cs.Post) bool { return p.Status == cs.PostCanceled })
	if e.hook.Count() != 0 {
		t.Fatal("a canceled post was delivered")
	}
	recordHistory(t, e.app.Temporal, post.ID, "reject_edit_cancel")
}

// historyVersion is the PostWorkflow version (workflow.GetVersion) that new
// posts run: recorded histories are named after it, and older ones stay.
const historyVersion = "v4"

// recordHistory writes the workflow's history into workflows/testdata when
// COUNTERSIGN_RECORD_HISTORIES=1, for the replay tests.
func recordHistory(t *testing.T, tc client.Client, postID, name string) {
	writeHistory(t, tc, postID, name+"."+historyVersion)
}

// writeHistory writes the workflow's history to workflows/testdata/<file>.json
// when COUNTERSIGN_RECORD_HISTORIES=1.
func writeHistory(t *testing.T, tc client.Client, postID, file string) {
	if os.Getenv("COUNTERSIGN_RECORD_HISTORIES") != "1" {
		return
	}
	// The run is closed once the post is: wait for it, so the history is whole.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = tc.GetWorkflow(ctx, cs.WorkflowID(postID), "").Get(ctx, nil)
	var events []json.RawMessage
	for _, ev := range workflowHistory(t, tc, postID) {
		raw, err := protojson.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, raw)
	}
	out, _ := json.MarshalIndent(map[string]any{"events": events}, "", " ")
	path := filepath.Join("..", "..", "workflows", "testdata", file+".json")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d events to %s", len(events), path)
}

// workflowHistory is the post's workflow history (its latest run), every event.
func workflowHistory(t *testing.T, tc client.Client, postID string) []*historypb.HistoryEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	it := tc.GetWorkflowHistory(ctx, cs.WorkflowID(postID), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var events []*historypb.HistoryEvent
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	return events
}
