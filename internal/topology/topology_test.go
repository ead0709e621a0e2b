package topology

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/devtemporal"
	"github.com/countersign/countersign/internal/pgserver"
	"github.com/countersign/countersign/internal/testenv"
)

// TestProductionTopology walks posts through the three-step chain across
// both APIs and both workers, runs the operators' visibility queries of
// docs/operating.md against Temporal's SQL visibility on PostgreSQL, then
// kills one worker and one API and restarts PostgreSQL, then Temporal, while
// posts are in flight: every post must be published exactly once and every
// decision an API accepted counted. -short skips it; COUNTERSIGN_TOPOLOGY_FAULT_POSTS
// (default 12) sets the fault run's size.
func TestProductionTopology(t *testing.T) {
	if testing.Short() {
		t.Skip("production topology: not with -short")
	}
	testenv.RequirePostgresBinaries(t)
	tp := startTopology(t)
	acct := tp.setupOrg()
	t.Run("visibility", func(t *testing.T) { tp.visibility(t, acct) })
	if t.Failed() {
		return
	}
	t.Run("faults", func(t *testing.T) { tp.faults(t, acct) })
}

// topology is the running deployment and the test's view of it.
type topology struct {
	*Deployment
	t    *testing.T
	tc   client.Client
	api  *apiClient
	hook *testenv.Webhook
	xapi *httptest.Server // an X API that takes posts and answers nonsense

	orgID, owner string
	members      map[string]person
}

type person struct{ token, memberID string }

func startTopology(t *testing.T) *topology {
	tp := &topology{t: t, members: map[string]person{}}
	dir := testenv.DataDir(t)
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	bin, devBin, err := Build(filepath.Dir(strings.TrimSpace(string(out))), dir)
	if err != nil {
		t.Fatal(err)
	}
	tp.hook = testenv.NewWebhook(t)
	tp.xapi = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/2/tweets" {
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, "<html>gateway</html>")
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(tp.xapi.Close)
	tp.Deployment, err = Start(context.Background(), Options{Dir: dir, Bin: bin, TemporalBin: devBin})
	if tp.Deployment != nil {
		t.Cleanup(tp.Stop)
	}
	if err != nil {
		t.Fatal(err)
	}
	tp.api = &apiClient{urls: tp.APIURLs, hc: &http.Client{Timeout: 30 * time.Second}, served: make([]atomic.Int64, len(tp.APIURLs))}
	c, err := client.Dial(client.Options{HostPort: tp.Temporal, Namespace: "default", Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	tp.tc = c
	return tp
}

// apiClient spreads requests over the APIs, round-robin: a request to an
// API that is down fails, and its retry goes to the next one.
type apiClient struct {
	urls   []string
	next   atomic.Uint64
	served []atomic.Int64 // answers by API
	hc     *http.Client
}

// send sends one request (with an Idempotency-Key when key is set) and
// returns the status and body; err is a transport error.
func (c *apiClient) send(ctx context.Context, token, method, path string, body any, key string) (int, []byte, error) {
	i := int(c.next.Add(1) % uint64(len(c.urls)))
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.urls[i]+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	c.served[i].Add(1)
	return resp.StatusCode, raw, nil
}

// must sends a request that has to answer want.
func (tp *topology) must(t *testing.T, want int, token, method, path string, body, out any) {
	t.Helper()
	code, raw, err := tp.api.send(context.Background(), token, method, path, body, "")
	if err != nil || code != want {
		t.Fatalf("%s %s: %d %v, want %d: %s", method, path, code, err, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
}

func (tp *topology) org(path string) string { return "/v1/orgs/" + tp.orgID + path }

// setupOrg is the walk-through's org (e2e's setupThreeLevels), made with
// `countersign bootstrap` and the API: Ines (limited) writes, Maya, then team
// PR (Pat, Paul), then the approvers role (Eddie, an editor) approve, on a
// webhook account.
func (tp *topology) setupOrg() (accountID string) {
	t := tp.t
	out, err := tp.Command("bootstrap", "--org", "Acme", "--email", "owner@acme.test", "--name", "Olivia Owner", "--json").Output()
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	var b struct {
		OrgID string `json:"org_id"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal(out, &b); err != nil || b.Token == "" {
		t.Fatalf("bootstrap printed %s: %v", out, err)
	}
	tp.orgID, tp.owner = b.OrgID, b.Token
	for _, name := range []string{"Ines", "Maya", "Pat", "Paul", "Eddie"} {
		var inv struct{ Token string }
		tp.must(t, 201, tp.owner, "POST", tp.org("/invitations"), map[string]any{
			"email": strings.ToLower(name) + "@acme.test", "name": name, "org_role": "member"}, &inv)
		var acc struct {
			Member   struct{ ID string } `json:"member"`
			APIToken string              `json:"api_token"`
		}
		tp.must(t, 200, "", "POST", "/v1/invitations/"+inv.Token+"/accept", map[string]any{"name": name}, &acc)
		tp.members[name] = person{token: acc.APIToken, memberID: acc.Member.ID}
	}
	var team struct{ ID string }
	tp.must(t, 201, tp.owner, "POST", tp.org("/teams"), map[string]any{"name": "PR"}, &team)
	for _, who := range []string{"Pat", "Paul"} {
		tp.must(t, 200, tp.owner, "PUT", tp.org("/teams/"+team.ID+"/members/"+tp.members[who].memberID), map[string]any{"role": "member"}, nil)
	}
	var acct struct{ ID string }
	tp.must(t, 201, tp.owner, "POST", tp.org("/accounts"), map[string]any{
		"network": "webhook", "handle": "acme", "display_name": "Acme", "timezone": "Europe/Paris",
		"settings": map[string]string{"url": tp.hook.URL}, "credentials": map[string]string{"secret": tp.hook.Secret}}, &acct)
	tp.must(t, 200, tp.owner, "PUT", tp.org("/accounts/"+acct.ID+"/permissions"), map[string]any{"grants": []map[string]any{
		{"member_id": tp.members["Ines"].memberID, "level": "limited"},
		{"member_id": tp.members["Eddie"].memberID, "level": "editor"},
	}}, nil)
	var chain struct{ ID string }
	tp.must(t, 201, tp.owner, "POST", tp.org("/approval-chains"), map[string]any{
		"name": "Brand", "late_policy": "expire", "distinct_approvers": true,
		"steps": []map[string]any{
			{"approver": map[string]string{"member": tp.members["Maya"].memberID}, "timeout": "4h", "fallback_team": team.ID, "fallback_timeout": "2h"},
			{"approver": map[string]string{"team": team.ID}},
			{"approver": map[string]string{"role": "approvers"}},
		}}, &chain)
	tp.must(t, 200, tp.owner, "PATCH", tp.org("/accounts/"+acct.ID), map[string]any{"approval_chain_id": chain.ID}, nil)
	return acct.ID
}

func (tp *topology) submit(t *testing.T, account, text string, at *time.Time) string {
	t.Helper()
	body := map[string]any{"account_id": account, "text": text}
	if at != nil {
		body["scheduled_at"] = at.Format(time.RFC3339)
	}
	var p cs.Post
	tp.must(t, 201, tp.members["Ines"].token, "POST", tp.org("/posts"), body, &p)
	return p.ID
}

// getPost reads a post, retrying while the API or the database is down.
func (tp *topology) getPost(ctx context.Context, id string) (cs.Post, error) {
	for {
		code, raw, err := tp.api.send(ctx, tp.owner, "GET", tp.org("/posts/"+id), nil, "")
		if err == nil && code == 200 {
			var p cs.Post
			return p, json.Unmarshal(raw, &p)
		}
		if err == nil && code < 500 {
			return cs.Post{}, fmt.Errorf("GET post %s: %d %s", id, code, raw)
		}
		select {
		case <-ctx.Done():
			return cs.Post{}, fmt.Errorf("GET post %s: %w (last: %d %v)", id, ctx.Err(), code, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (tp *topology) waitPost(ctx context.Context, id, what string, cond func(cs.Post) bool) (cs.Post, error) {
	var last cs.Post // the last state read
	for {
		p, err := tp.getPost(ctx, id)
		if err != nil {
			return last, err
		}
		if last = p; cond(p) {
			return p, nil
		}
		select {
		case <-ctx.Done():
			return p, fmt.Errorf("post %s never %s; last: status=%s step=%d error=%q", id, what, p.Status, p.CurrentStep, p.LastError)
		case <-time.After(150 * time.Millisecond):
		}
	}
}

func atStep(n int) func(cs.Post) bool {
	return func(p cs.Post) bool {
		return p.CurrentStep == n && len(p.Steps) >= n && p.Steps[n-1].Status == cs.StepOpen
	}
}

func hasStatus(s cs.PostStatus) func(cs.Post) bool {
	return func(p cs.Post) bool { return p.Status == s }
}

// chain is who decides each step of the Brand chain.
var chain = []string{"Maya", "Pat", "Eddie"}

// visibility walks posts through the chain, then runs each query of
// docs/operating.md's "Finding stuck posts" against the Temporal server.
func (tp *topology) visibility(t *testing.T, acct string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// An account Ines may publish to directly, whose X API takes the post
	// and answers nonsense: its post ends needs_attention.
	var doubtful struct{ ID string }
	tp.must(t, 201, tp.owner, "POST", tp.org("/accounts"), map[string]any{
		"network": "x", "handle": "doubtful", "display_name": "Doubtful", "timezone": "UTC",
		"settings": map[string]string{"api_url": tp.xapi.URL}, "credentials": map[string]string{"access_token": "x-token"}}, &doubtful)
	tp.must(t, 200, tp.owner, "PUT", tp.org("/accounts/"+doubtful.ID+"/permissions"), map[string]any{"grants": []map[string]any{
		{"member_id": tp.members["Ines"].memberID, "level": "editor"}}}, nil)
	// An account whose one step times out in 2s: past that, with no worker,
	// its post waits past its deadline.
	var quick, quickAcct struct{ ID string }
	tp.must(t, 201, tp.owner, "POST", tp.org("/approval-chains"), map[string]any{"name": "Quick", "steps": []map[string]any{
		{"approver": map[string]string{"member": tp.members["Maya"].memberID}, "timeout": "2s"}}}, &quick)
	tp.must(t, 201, tp.owner, "POST", tp.org("/accounts"), map[string]any{
		"network": "log", "handle": "quick", "display_name": "Quick", "timezone": "UTC"}, &quickAcct)
	tp.must(t, 200, tp.owner, "PUT", tp.org("/accounts/"+quickAcct.ID+"/permissions"), map[string]any{"grants": []map[string]any{
		{"member_id": tp.members["Ines"].memberID, "level": "limited"}}}, nil)
	tp.must(t, 200, tp.owner, "PATCH", tp.org("/accounts/"+quickAcct.ID), map[string]any{"approval_chain_id": quick.ID}, nil)

	// Three posts through the whole chain, each decision on whichever API
	// the client picks.
	before := tp.hook.Total()
	var walked []string
	for i := range 3 {
		id := tp.submit(t, acct, fmt.Sprintf("walked post %d", i), nil)
		walked = append(walked, id)
		for step, who := range chain {
			if _, err := tp.waitPost(ctx, id, fmt.Sprintf("opened step %d", step+1), atStep(step+1)); err != nil {
				t.Fatal(err)
			}
			tp.must(t, 200, tp.members[who].token, "POST", tp.org("/posts/"+id+"/approve"), map[string]any{"revision": 1, "note": "ok"}, nil)
		}
	}
	for _, id := range walked {
		if _, err := tp.waitPost(ctx, id, "published", hasStatus(cs.PostPublished)); err != nil {
			t.Fatal(err)
		}
	}
	if got := tp.hook.Total() - before; got != len(walked) {
		t.Errorf("%d deliveries for %d published posts", got, len(walked))
	}
	for i := range tp.api.served {
		if tp.api.served[i].Load() == 0 {
			t.Errorf("API %d answered no request", i+1)
		}
	}

	tomorrow := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	at := tomorrow.Add(9 * time.Hour)
	pending := []string{tp.submit(t, acct, "pending, unscheduled", nil), tp.submit(t, acct, "pending, for tomorrow", &at)}
	stuck := tp.submit(t, quickAcct.ID, "will be stuck past its deadline", nil)
	attention := tp.submit(t, doubtful.ID, "nobody knows if this went out", nil)
	for _, id := range append(slices.Clone(pending), stuck) {
		if _, err := tp.waitPost(ctx, id, "opened step 1", atStep(1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tp.waitPost(ctx, attention, "needs attention", hasStatus(cs.PostNeedsAttention)); err != nil {
		t.Fatal(err)
	}

	// Both workers die: the quick post's 2s deadline passes with nobody to act.
	for _, w := range tp.Workers {
		w.Kill()
	}
	time.Sleep(3 * time.Second)
	now := time.Now().UTC().Format(time.RFC3339)
	for _, q := range []struct {
		name, query string
		want        []string
	}{
		{"waiting past its deadline", `PostStatus = "pending_approval" AND PostDeadline < "` + now + `"`, []string{stuck}},
		{"one account awaiting approval", `PostAccount = "` + acct + `" AND PostStatus = "pending_approval"`, pending},
		{"needs attention", `PostStatus = "needs_attention"`, []string{attention}},
		{"awaiting Maya", `PostApprovers = "` + tp.members["Maya"].memberID + `"`, append(slices.Clone(pending), stuck)},
		{"scheduled tomorrow", `PostOrg = "` + tp.orgID + `" AND PostScheduledAt BETWEEN "` + tomorrow.Format(time.RFC3339) +
			`" AND "` + tomorrow.Add(24*time.Hour-time.Second).Format(time.RFC3339) + `"`, pending[1:]},
	} {
		want := make([]string, len(q.want))
		for i, id := range q.want {
			want[i] = cs.WorkflowID(id)
		}
		slices.Sort(want)
		if got := tp.visible(ctx, q.query, len(want)); !slices.Equal(got, want) {
			t.Errorf("%s (%s):\n got %v\nwant %v", q.name, q.query, got, want)
		}
	}

	// Those answers came from Temporal's SQL visibility in PostgreSQL.
	visURL, err := pgserver.DatabaseURL(tp.PG.AdminURL, devtemporal.PostgresVisibilityDatabase)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, visURL)
	if err != nil {
		t.Fatalf("Temporal's visibility database: %v", err)
	}
	var rows int
	all := append(append(slices.Clone(walked), pending...), stuck, attention)
	for i, id := range all {
		all[i] = cs.WorkflowID(id)
	}
	err = conn.QueryRow(ctx, `SELECT count(*) FROM executions_visibility WHERE workflow_id = ANY($1)`, all).Scan(&rows)
	conn.Close(ctx)
	if err != nil || rows != len(all) {
		t.Errorf("%s holds %d of the %d workflows (%v)", devtemporal.PostgresVisibilityDatabase, rows, len(all), err)
	}

	// Two workers again for what follows.
	for i := range tp.Workers {
		w, err := tp.StartProc(fmt.Sprintf("worker-%d-again", i+1), tp.Bin, nil, "worker")
		if err != nil {
			t.Fatal(err)
		}
		tp.Workers[i] = w
	}
}

// visible runs a visibility query until it returns want results (visibility
// is eventually consistent) or 20 seconds pass, and returns the sorted ids.
func (tp *topology) visible(ctx context.Context, query string, want int) []string {
	tp.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := tp.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err != nil {
			tp.t.Fatalf("query %s: %v", query, err)
		}
		var ids []string
		for _, ex := range resp.GetExecutions() {
			ids = append(ids, ex.GetExecution().GetWorkflowId())
		}
		slices.Sort(ids)
		if len(ids) == want || time.Now().After(deadline) {
			return ids
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// decision is one approval sent through the API, retried with the same
// Idempotency-Key until an API answers something other than a 5xx.
type decision struct {
	post, who, requestID string
	step                 int
	status               int
	uncertain            bool // an attempt failed in a way that may have delivered it
}

// faults puts posts through the chain while one worker is killed, one API
// is killed, PostgreSQL is restarted and then Temporal (killed, started
// again on the same port and databases).
func (tp *topology) faults(t *testing.T, acct string) {
	n := 12
	if v := os.Getenv("COUNTERSIGN_TOPOLOGY_FAULT_POSTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("COUNTERSIGN_TOPOLOGY_FAULT_POSTS=%q", v)
		}
	}
	before := tp.hook.Total()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = tp.submit(t, acct, fmt.Sprintf("fault post %d", i), nil)
	}

	// The faults, a few seconds apart, while the drivers decide.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		pause := func(d time.Duration) { time.Sleep(d) }
		pause(2 * time.Second)
		t.Log("killing worker-1")
		tp.Workers[0].Kill()
		pause(3 * time.Second)
		t.Log("killing serve-1")
		tp.APIs[0].Kill()
		pause(3 * time.Second)
		t.Log("stopping PostgreSQL")
		tp.PG.Stop()
		pause(3 * time.Second)
		t.Log("starting PostgreSQL again")
		if err := tp.StartPostgres(context.Background()); err != nil {
			t.Error(err)
			return
		}
		pause(3 * time.Second)
		t.Log("killing Temporal, starting it again on the same port")
		if err := tp.RestartTemporal(context.Background()); err != nil {
			t.Error(err)
		}
	}()

	var mu sync.Mutex
	var decisions []*decision
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the posts over the faults.
			time.Sleep(time.Duration(i) * 15 * time.Second / time.Duration(n))
			for step, who := range chain {
				if _, err := tp.waitPost(ctx, id, fmt.Sprintf("opened step %d", step+1), atStep(step+1)); err != nil {
					errs <- err
					return
				}
				d := &decision{post: id, who: who, step: step + 1, requestID: fmt.Sprintf("topo-%s-s%d", id, step+1)}
				mu.Lock()
				decisions = append(decisions, d)
				mu.Unlock()
				if err := tp.decide(ctx, d); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	<-faultsDone
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	final := map[string]cs.Post{} // the posts that could be read
	finalCtx, cancelFinal := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancelFinal()
	for _, id := range ids {
		p, err := tp.waitPost(finalCtx, id, "published", hasStatus(cs.PostPublished))
		if err != nil {
			t.Error(err)
		}
		if p.ID != "" {
			final[id] = p
		}
	}

	// 0 lost, 0 duplicated: each post delivered once, by one webhook-id.
	lost, duplicated, decisionsLost, accepted, retried := 0, 0, 0, 0, 0
	after, total := tp.hook.ByPost(), tp.hook.Total()
	for _, id := range ids {
		hooks := 0
		for hid, c := range after[id] {
			hooks++
			if c > 1 {
				duplicated += c - 1
				t.Errorf("post %s: webhook-id %s delivered %d times", id, hid, c)
			}
		}
		switch {
		case hooks == 0:
			lost++
			t.Errorf("post %s was never delivered (status %s)", id, final[id].Status)
		case hooks > 1:
			duplicated += hooks - 1
			t.Errorf("post %s delivered under %d webhook-ids", id, hooks)
		}
	}
	if extra := total - before - n; extra > 0 && duplicated == 0 {
		t.Errorf("%d deliveries beyond the %d posts", extra, n)
	}
	// 0 decisions lost: every decision an API accepted is counted on its
	// step under its request id.
	for _, d := range decisions {
		if d.status/100 == 2 {
			accepted++
		}
		if d.uncertain {
			retried++
		}
		p, read := final[d.post]
		if !read {
			continue // its post could not be read: already an error
		}
		counted := false
		if d.step <= len(p.Steps) {
			for _, a := range p.Steps[d.step-1].Approvals {
				counted = counted || a.RequestID == d.requestID
			}
		}
		if !counted && (d.status/100 == 2 || d.uncertain) {
			decisionsLost++
			t.Errorf("post %s: %s's approval of step %d (answer %d, uncertain %v) is not counted under %s",
				d.post, d.who, d.step, d.status, d.uncertain, d.requestID)
		}
	}
	t.Logf("topology fault run: posts=%d published=%d lost=%d duplicated=%d decisions=%d accepted=%d retried_after_a_failure=%d decisions_lost=%d answers_by_api=[%d %d]",
		n, n-lost, lost, duplicated, len(decisions), accepted, retried, decisionsLost, tp.api.served[0].Load(), tp.api.served[1].Load())
}

// decide sends the approval until an API answers it; 409 after an uncertain
// attempt means the earlier attempt went through (checked at the end).
func (tp *topology) decide(ctx context.Context, d *decision) error {
	for {
		code, raw, err := tp.api.send(ctx, tp.members[d.who].token, "POST", tp.org("/posts/"+d.post+"/approve"),
			map[string]any{"revision": 1, "note": "ok"}, d.requestID)
		switch {
		case err == nil && code/100 == 2:
			d.status = code
			return nil
		case err == nil && code == 409 && d.uncertain:
			d.status = code
			return nil
		case err == nil && code == http.StatusTooManyRequests:
			// The approver's rate limit (docs/limits.md): not an answer to
			// the decision; wait and send it again, as a client should.
			time.Sleep(time.Second)
			continue
		case err == nil && code < 500:
			return fmt.Errorf("post %s: %s's approval of step %d: %d %s", d.post, d.who, d.step, code, raw)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("post %s: %s's approval of step %d never answered (last: %d %v)", d.post, d.who, d.step, code, err)
		}
		d.uncertain = true
		time.Sleep(300 * time.Millisecond)
	}
}

// quietLogger silences the SDK client that runs the visibility queries.
type quietLogger struct{}

func (quietLogger) Debug(string, ...interface{}) {}
func (quietLogger) Info(string, ...interface{})  {}
func (quietLogger) Warn(string, ...interface{})  {}
func (quietLogger) Error(string, ...interface{}) {}
