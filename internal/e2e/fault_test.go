package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/devtemporal"
	"github.com/countersign/countersign/internal/pgserver"
	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/testenv"
)

// TestFaults puts a few dozen posts through approvals and schedules while
// the worker is killed, the Temporal server is restarted (its SQLite file
// kept) and PostgreSQL is restarted, all on the same ports, under the same
// API process and the same clients. Approvals go over the HTTP API and are
// retried while parts are down (5xx and transport errors are retried with the
// same Idempotency-Key; 403 and 409 are real answers).
//
// At the end every post must be in its planned end state, every published
// post delivered exactly once to the webhook receiver (no webhook-id twice),
// and every decision the API accepted with 202 counted in the post's audit
// log (or explained by the post's end).
//
// COUNTERSIGN_FAULT_POSTS (default 24) and COUNTERSIGN_FAULT_ROUNDS (default
// 1) make a bigger run; COUNTERSIGN_FAULT_DEBUG=1 logs each post's timing,
// the slowest post's audit log and workflow history, and the logs of the App
// and of the Temporal server; -short skips it.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: not with -short")
	}
	testenv.RequirePostgresBinaries(t)
	nPosts := faultEnvInt(t, "COUNTERSIGN_FAULT_POSTS", 24)
	rounds := faultEnvInt(t, "COUNTERSIGN_FAULT_ROUNDS", 1)
	began := time.Now()

	fx := startFaultStack(t)
	brand, quick := fx.setupOrg()
	setupTook := time.Since(began)

	// The plan: the kinds rotate, so every run has each of them.
	window := time.Duration(rounds) * faultRoundLength
	// Submitting takes ~100ms a post; the faults start once all are in.
	chaosStart := time.Now().Add(2*time.Second + time.Duration(nPosts)*100*time.Millisecond)
	fx.events.start = chaosStart
	plans := make([]*faultPlan, nPosts)
	for i := range plans {
		k := faultKinds[i%len(faultKinds)]
		p := &faultPlan{idx: i, kind: k, startAt: chaosStart.Add(time.Duration(i) * (window - 4*time.Second) / time.Duration(nPosts))}
		switch k {
		case kindThree, kindThreeScheduled, kindReject, kindCancel:
			p.account, p.author = brand, "Ines"
		case kindOneScheduled:
			p.account, p.author = quick, "Ines"
		case kindDirect, kindCancelScheduled:
			p.account, p.author = quick, "Eddie"
		}
		switch k {
		case kindThreeScheduled:
			at := p.startAt.Add(5 * time.Second).Truncate(time.Second)
			p.scheduledAt = &at
		case kindOneScheduled, kindDirect:
			at := p.startAt.Add(3 * time.Second).Truncate(time.Second)
			p.scheduledAt = &at
		case kindCancelScheduled:
			at := time.Now().Add(time.Hour).Truncate(time.Second)
			p.scheduledAt = &at
		}
		p.want = k.end()
		if k == kindThree {
			// Within its round, the next outage after the driver starts.
			round := p.startAt.Sub(chaosStart) / faultRoundLength
			roundStart := chaosStart.Add(round * faultRoundLength)
			for _, o := range faultOutagePlan {
				if at := roundStart.Add(o.down); p.startAt.Before(at) {
					p.holdFor, p.holdUntil = o.what, roundStart.Add(o.up)
					break
				}
			}
		}
		plans[i] = p
	}

	// Submit everything while all is up (a submission that Temporal does not
	// answer is kept for the reconciler, which waits a minute: out of scope).
	for _, p := range plans {
		fx.submit(p)
	}
	fx.events.add("%d posts submitted", len(plans))

	// Drive the posts and break things at the same time.
	ctx, cancel := context.WithTimeout(context.Background(), window+150*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(plans))
	for _, p := range plans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fx.drive(ctx, p); err != nil {
				errs <- fmt.Errorf("post %d (%s, %s): %w", p.idx, p.kind, p.id, err)
			}
		}()
	}
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		for r := 0; r < rounds; r++ {
			fx.faultRound(ctx, chaosStart.Add(time.Duration(r)*faultRoundLength))
		}
	}()
	wg.Wait()
	<-faultsDone
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if ctx.Err() != nil {
		t.Errorf("the run did not finish within %s", window+150*time.Second)
	}

	// Every post in its end state.
	final := map[string]cs.Post{}
	for _, p := range plans {
		got, err := fx.waitFinal(ctx, p)
		if err != nil {
			t.Errorf("post %d (%s, %s): %v", p.idx, p.kind, p.id, err)
		}
		final[p.id] = got
	}
	r := fx.report(plans, final)
	r.setup, r.total = setupTook, time.Since(began)
	t.Log(r.String())
	fmt.Println(r.line())
	if r.missing > 0 || r.duplicates > 0 || r.unexpected > 0 || r.lost > 0 || r.wrongStatus > 0 {
		t.Errorf("fault run failed its checks: %s", r.line())
	}
	if t.Failed() || os.Getenv("COUNTERSIGN_FAULT_DEBUG") == "1" {
		for _, p := range plans {
			q := final[p.id]
			t.Logf("post %2d %-16s driver +%5.1fs  ended %s at +%5.1fs", p.idx, p.kind,
				p.startAt.Sub(fx.events.start).Seconds(), q.Status, q.UpdatedAt.Sub(fx.events.start).Seconds())
		}
		t.Log("audit log of the last post to finish:" + r.lastEvents)
		t.Log("its Temporal history:" + fx.history(r.lastID))
		fx.dumpLog()
	}
}

// faultRoundLength is one round of faults: worker killed, Temporal
// restarted, PostgreSQL restarted, each a few seconds apart.
const faultRoundLength = 24 * time.Second

// faultOutagePlan is when, within a round, each part goes down and comes
// back up.
var faultOutagePlan = []struct {
	what     string
	down, up time.Duration
}{
	{"worker", 2 * time.Second, 6 * time.Second},
	{"temporal", 9 * time.Second, 12 * time.Second},
	{"postgres", 16 * time.Second, 19 * time.Second},
}

type faultKind int

const (
	kindThree           faultKind = iota // 3 approvals (member, team, role), as soon as approved
	kindThreeScheduled                   // 3 approvals, scheduled a few seconds ahead
	kindOneScheduled                     // 1 approval, scheduled a few seconds ahead
	kindDirect                           // an editor's post: no approval, scheduled a few seconds ahead
	kindReject                           // step 1 approved, step 2 rejects
	kindCancel                           // step 1 approved, the author cancels at step 2
	kindCancelScheduled                  // an editor's scheduled post, canceled before its time
)

var faultKinds = []faultKind{kindThree, kindThreeScheduled, kindOneScheduled, kindDirect,
	kindReject, kindCancel, kindCancelScheduled, kindThree}

func (k faultKind) String() string {
	return [...]string{"three", "three-scheduled", "one-scheduled", "direct", "reject", "cancel", "cancel-scheduled"}[k]
}

func (k faultKind) end() cs.PostStatus {
	switch k {
	case kindReject:
		return cs.PostRejected
	case kindCancel, kindCancelScheduled:
		return cs.PostCanceled
	}
	return cs.PostPublished
}

// faultPlan is one post of the run and what happened to it.
type faultPlan struct {
	idx         int
	kind        faultKind
	account     string
	author      string
	scheduledAt *time.Time
	startAt     time.Time // when its driver starts deciding
	// holdFor, when set, holds the step 1 decision until that part is down
	// ("worker", "temporal", "postgres"), so it is sent during the outage.
	holdFor   string
	holdUntil time.Time // give up holding then (the outage came and went)
	want      cs.PostStatus
	id        string

	mu        sync.Mutex
	decisions []*faultDecision
}

// faultDecision is one approve or reject sent through the API.
type faultDecision struct {
	who, memberID string
	step          int
	decision      string
	requestID     string
	status        int // the final answer: 202, or a 403/409
	sentAt        time.Time
	took          time.Duration // from the first attempt to the final answer
	uncertain     bool          // an earlier attempt failed in a way that may have delivered it
	attempts      int
}

// faultStack is a private deployment whose parts the test stops and starts:
// its own PostgreSQL (data kept), its own Temporal server (SQLite file kept),
// one App (one store pool, one Temporal client) behind one API, a worker.
type faultStack struct {
	t   *testing.T
	env *env
	log *faultLogBuffer

	pgDir  string
	pgPort int
	tmpDB  string
	tmpPrt int
	tmpLog string

	mu  sync.Mutex
	pg  *pgserver.Server
	tmp *devtemporal.Server

	http    *faultHTTP
	events  faultEvents
	outages faultOutages
}

func startFaultStack(t *testing.T) *faultStack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fx := &faultStack{t: t, log: &faultLogBuffer{max: 5000}}
	fx.pgDir = filepath.Join(testenv.DataDir(t), "pg")
	fx.pgPort = testenv.FreePort(t)
	pg, err := pgserver.Start(ctx, pgserver.Options{Dir: fx.pgDir, Port: fx.pgPort, Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	fx.pg = pg
	t.Cleanup(func() { fx.mu.Lock(); defer fx.mu.Unlock(); fx.pg.Stop() })
	st, err := store.Open(ctx, pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()

	fx.tmpDB = filepath.Join(t.TempDir(), "temporal.db")
	fx.tmpPrt = testenv.FreePort(t)
	fx.tmpLog = filepath.Join(filepath.Dir(fx.tmpDB), "temporal.log")
	tmp, err := devtemporal.Start(ctx, devtemporal.Options{DBFile: fx.tmpDB, Port: fx.tmpPrt, LogFile: fx.tmpLog})
	if err != nil {
		t.Fatal(err)
	}
	fx.tmp = tmp
	t.Cleanup(func() { fx.mu.Lock(); defer fx.mu.Unlock(); fx.tmp.Stop() })

	e := startEnv(t, map[string]string{
		"DATABASE_URL":       pg.URL,
		"TEMPORAL_ADDRESS":   tmp.Address,
		"TEMPORAL_NAMESPACE": tmp.Namespace,
	}, fx.log.logger())
	fx.env = e
	fx.http = newFaultHTTP(e.api.URL)
	return fx
}

// setupOrg builds the org: Ines (limited) writes, a three-step chain
// (Maya; the PR team of Pat and Paul; the approvers role, i.e. Eddie, an
// editor) on the "brand" webhook account, and a one-step chain (approvers
// role) on the "quick" webhook account, where Eddie publishes directly.
// Both chains publish when approved after their time, so a post held up by
// an outage is late, never expired.
func (fx *faultStack) setupOrg() (brand, quick string) {
	e := fx.env
	b, err := e.app.Store.Bootstrap(context.Background(), "Acme", "owner@acme.test", "Olivia Owner")
	if err != nil {
		fx.t.Fatal(err)
	}
	e.orgID, e.owner = b.Org.ID, b.Token
	ines, eddie := e.invite("Ines", "member"), e.invite("Eddie", "member")
	e.invite("Maya", "member")
	pat, paul := e.invite("Pat", "member"), e.invite("Paul", "member")
	var team struct{ ID string }
	e.must(201, e.owner, "POST", e.org("/teams"), map[string]any{"name": "PR"}, &team)
	for _, p := range []person{pat, paul} {
		e.must(200, e.owner, "PUT", e.org("/teams/"+team.ID+"/members/"+p.memberID), map[string]any{"role": "member"}, nil)
	}
	account := func(handle string, steps []map[string]any) string {
		var acct, chain struct{ ID string }
		e.must(201, e.owner, "POST", e.org("/accounts"), map[string]any{
			"network": "webhook", "handle": handle, "display_name": handle, "timezone": "Europe/Paris",
			"settings": map[string]string{"url": e.hook.URL}, "credentials": map[string]string{"secret": e.hook.Secret}}, &acct)
		e.must(200, e.owner, "PUT", e.org("/accounts/"+acct.ID+"/permissions"), map[string]any{"grants": []map[string]any{
			{"member_id": ines.memberID, "level": "limited"},
			{"member_id": eddie.memberID, "level": "editor"},
		}}, nil)
		e.must(201, e.owner, "POST", e.org("/approval-chains"), map[string]any{
			"name": handle, "late_policy": "publish_when_approved", "distinct_approvers": true, "steps": steps}, &chain)
		e.must(200, e.owner, "PATCH", e.org("/accounts/"+acct.ID), map[string]any{"approval_chain_id": chain.ID}, nil)
		return acct.ID
	}
	brand = account("brand", []map[string]any{
		{"approver": map[string]string{"member": e.members["Maya"].memberID}},
		{"approver": map[string]string{"team": team.ID}},
		{"approver": map[string]string{"role": "approvers"}},
	})
	quick = account("quick", []map[string]any{{"approver": map[string]string{"role": "approvers"}}})
	return brand, quick
}

// submit creates the plan's post (everything is up: no retries needed, but
// the Idempotency-Key would make them safe).
func (fx *faultStack) submit(p *faultPlan) {
	e := fx.env
	body := map[string]any{"account_id": p.account, "text": fmt.Sprintf("Fault run post %d (%s)", p.idx, p.kind)}
	if p.scheduledAt != nil {
		body["scheduled_at"] = p.scheduledAt.Format(time.RFC3339)
	}
	var post cs.Post
	e.must(201, e.members[p.author].token, "POST", e.org("/posts"), body, &post)
	p.id = post.ID
}

// drive makes the plan's decisions (and cancel) over the API.
func (fx *faultStack) drive(ctx context.Context, p *faultPlan) error {
	if err := sleepUntil(ctx, p.startAt); err != nil {
		return err
	}
	pace := func() error { return sleepCtx(ctx, 1500*time.Millisecond) }
	team := "Pat"
	if p.idx%2 == 1 {
		team = "Paul"
	}
	switch p.kind {
	case kindThree, kindThreeScheduled:
		for step, who := range []string{"Maya", team, "Eddie"} {
			held := step == 0 && p.holdFor != ""
			if held {
				if _, err := fx.waitPostHTTP(ctx, p, "at step 1", atStep(1)); err != nil {
					return err
				}
				fx.outages.waitDown(ctx, p.holdFor, p.holdUntil)
			}
			if err := fx.decideNow(ctx, p, step+1, who, cs.DecisionApprove, held); err != nil {
				return err
			}
			if err := pace(); err != nil {
				return err
			}
		}
	case kindOneScheduled:
		return fx.decide(ctx, p, 1, "Eddie", cs.DecisionApprove)
	case kindReject:
		if err := fx.decide(ctx, p, 1, "Maya", cs.DecisionApprove); err != nil {
			return err
		}
		if err := pace(); err != nil {
			return err
		}
		return fx.decide(ctx, p, 2, team, cs.DecisionReject)
	case kindCancel:
		if err := fx.decide(ctx, p, 1, "Maya", cs.DecisionApprove); err != nil {
			return err
		}
		if _, err := fx.waitPostHTTP(ctx, p, "at step 2", atStep(2)); err != nil {
			return err
		}
		return fx.cancelPost(ctx, p, p.author)
	case kindCancelScheduled:
		if _, err := fx.waitPostHTTP(ctx, p, "scheduled", func(q cs.Post) bool { return q.Status == cs.PostScheduled }); err != nil {
			return err
		}
		return fx.cancelPost(ctx, p, p.author)
	}
	return nil
}

// decide waits until the post's step is open (as the API shows it), then
// sends the decision until the API answers something other than a 5xx or a
// transport error.
func (fx *faultStack) decide(ctx context.Context, p *faultPlan, step int, who, decision string) error {
	return fx.decideNow(ctx, p, step, who, decision, false)
}

// decideNow is decide; with stepKnownOpen it sends at once (the caller saw
// the step open), even while the API cannot read the post.
func (fx *faultStack) decideNow(ctx context.Context, p *faultPlan, step int, who, decision string, stepKnownOpen bool) error {
	if !stepKnownOpen {
		if _, err := fx.waitPostHTTP(ctx, p, fmt.Sprintf("at step %d", step), atStep(step)); err != nil {
			return err
		}
	}
	e := fx.env
	d := &faultDecision{who: who, memberID: e.members[who].memberID, step: step, decision: decision,
		requestID: fmt.Sprintf("fault-%s-r1-s%d-%s", p.id, step, decision)}
	p.mu.Lock()
	p.decisions = append(p.decisions, d)
	p.mu.Unlock()
	body := map[string]any{"revision": 1, "note": "ok"}
	if decision == cs.DecisionReject {
		body["note"] = "off-brand"
	}
	d.sentAt = time.Now()
	defer func() { d.took = time.Since(d.sentAt) }()
	for {
		d.attempts++
		code, raw, err := fx.http.send(ctx, e.members[who].token, "POST", e.org("/posts/"+p.id+"/"+decision), body, d.requestID)
		switch {
		case err == nil && (code == 200 || code == 202):
			d.status = code
			return nil
		case err == nil && (code == 403 || code == 409):
			d.status = code
			if d.uncertain {
				// An earlier attempt may have been delivered and moved the
				// post on: the audit log at the end tells.
				fx.events.add("decision answered %d after an uncertain attempt: %s", code, raw)
				return nil
			}
			return fmt.Errorf("%s of step %d by %s refused: %d %s", decision, step, who, code, raw)
		case err == nil && code < 500:
			return fmt.Errorf("%s of step %d by %s: unexpected %d %s", decision, step, who, code, raw)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s of step %d by %s never accepted (last: %d %v)", decision, step, who, code, err)
		}
		d.uncertain = true
		_ = sleepCtx(ctx, 300*time.Millisecond)
	}
}

// cancelPost cancels as who, retrying 5xx and transport errors.
func (fx *faultStack) cancelPost(ctx context.Context, p *faultPlan, who string) error {
	e := fx.env
	uncertain := false
	for {
		code, raw, err := fx.http.send(ctx, e.members[who].token, "POST", e.org("/posts/"+p.id+"/cancel"), map[string]any{"reason": "fault run"}, "")
		switch {
		case err == nil && (code == 200 || code == 202):
			return nil
		case err == nil && code == 409 && uncertain:
			return nil // the final state tells
		case err == nil && code < 500:
			return fmt.Errorf("cancel by %s: %d %s", who, code, raw)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("cancel by %s never accepted (last: %d %v)", who, code, err)
		}
		uncertain = true
		_ = sleepCtx(ctx, 300*time.Millisecond)
	}
}

// waitPostHTTP polls the post over the API (retrying while parts are down)
// until cond holds; a post that reached an end state it was not planned to
// reach fails at once.
func (fx *faultStack) waitPostHTTP(ctx context.Context, p *faultPlan, what string, cond func(cs.Post) bool) (cs.Post, error) {
	var last cs.Post
	for {
		var q cs.Post
		code, raw, err := fx.http.getJSON(ctx, fx.env.owner, fx.env.org("/posts/"+p.id), &q)
		if err == nil && code == 200 {
			last = q
			if cond(q) {
				return q, nil
			}
			if q.Status != p.want && (q.Status.Terminal() || q.Status == cs.PostNeedsAttention) {
				return q, fmt.Errorf("waiting until %s, the post ended %s (%s)", what, q.Status, q.LastError)
			}
		} else if err == nil && code < 500 {
			return q, fmt.Errorf("GET post: %d %s", code, raw)
		}
		if ctx.Err() != nil {
			return last, fmt.Errorf("never %s; last: status=%s step=%d waiting=%q error=%q", what, last.Status, last.CurrentStep, last.WaitingFor, last.LastError)
		}
		_ = sleepCtx(ctx, 150*time.Millisecond)
	}
}

// waitFinal waits for the planned end state (and, for posts whose workflow
// ends, for the end to be mirrored).
func (fx *faultStack) waitFinal(ctx context.Context, p *faultPlan) (cs.Post, error) {
	// A rejected post's workflow stays open (it waits for a resubmission);
	// the others end with their status.
	return fx.waitPostHTTP(ctx, p, string(p.want), func(q cs.Post) bool { return q.Status == p.want })
}

// faultRound kills the worker, restarts Temporal, restarts PostgreSQL.
func (fx *faultStack) faultRound(ctx context.Context, at time.Time) {
	step := func(offset time.Duration, what string, fn func()) {
		if sleepUntil(ctx, at.Add(offset)) != nil {
			return
		}
		start := time.Now()
		fn()
		fx.events.add("%s (%.1fs)", what, time.Since(start).Seconds())
	}
	plan := map[string][2]time.Duration{}
	for _, o := range faultOutagePlan {
		plan[o.what] = [2]time.Duration{o.down, o.up}
	}
	step(plan["worker"][0], "worker killed", func() {
		fx.env.stopWorker()
		fx.outages.begin("worker") // down once stopped
	})
	step(plan["worker"][1], "worker started", func() {
		fx.env.startWorker()
		fx.outages.end("worker")
	})
	step(plan["temporal"][0], "Temporal stopped", func() {
		fx.mu.Lock()
		defer fx.mu.Unlock()
		fx.tmp.Stop()
		fx.outages.begin("temporal")
	})
	step(plan["temporal"][1], "Temporal started on the same port and file", fx.restartTemporal)
	step(plan["temporal"][1], "Temporal client reconnected by itself", func() {
		fx.waitTemporalClient(ctx)
		fx.outages.end("temporal")
	})
	step(plan["postgres"][0], "PostgreSQL stopped", func() {
		fx.mu.Lock()
		defer fx.mu.Unlock()
		fx.pg.Stop()
		fx.outages.begin("postgres")
	})
	step(plan["postgres"][1], "PostgreSQL started on the same port and data", fx.restartPostgres)
	step(plan["postgres"][1], "store pool reconnected by itself", func() {
		fx.waitStore(ctx)
		fx.outages.end("postgres")
	})
}

func (fx *faultStack) restartTemporal() {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		tmp, err := devtemporal.Start(ctx, devtemporal.Options{DBFile: fx.tmpDB, Port: fx.tmpPrt, LogFile: fx.tmpLog})
		cancel()
		if err == nil {
			fx.tmp = tmp
			return
		}
		if time.Now().After(deadline) {
			fx.t.Errorf("restart Temporal: %v", err)
			return
		}
		fx.events.add("restart Temporal failed, retrying: %v", err)
		time.Sleep(500 * time.Millisecond)
	}
}

func (fx *faultStack) restartPostgres() {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pg, err := pgserver.Start(ctx, pgserver.Options{Dir: fx.pgDir, Port: fx.pgPort, Ephemeral: true})
	if err != nil {
		fx.t.Errorf("restart PostgreSQL: %v", err)
		return
	}
	fx.pg = pg
}

// waitTemporalClient checks that the App's own client (never redialed)
// answers again.
func (fx *faultStack) waitTemporalClient(ctx context.Context) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := fx.env.app.Temporal.CheckHealth(cctx, &client.CheckHealthRequest{})
		if err == nil {
			_, err = fx.env.app.Temporal.WorkflowService().GetSystemInfo(cctx, nil)
		}
		cancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			fx.t.Errorf("the App's Temporal client never reconnected: %v", err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitStore checks that the App's own pool answers again.
func (fx *faultStack) waitStore(ctx context.Context) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := fx.env.app.Store.Ping(cctx)
		cancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			fx.t.Errorf("the App's store never reconnected: %v", err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// history renders a post's workflow history, one event a line.
func (fx *faultStack) history(postID string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iter := fx.env.app.Temporal.GetWorkflowHistory(ctx, cs.WorkflowID(postID), "", false, 0)
	var b strings.Builder
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			fmt.Fprintf(&b, "\n    %v", err)
			break
		}
		extra := ""
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			extra = a.GetActivityType().GetName()
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
			extra = fmt.Sprintf("attempt %d", a.GetAttempt())
		}
		if a := ev.GetActivityTaskTimedOutEventAttributes(); a != nil {
			extra = a.GetFailure().GetMessage()
		}
		if a := ev.GetWorkflowTaskTimedOutEventAttributes(); a != nil {
			extra = a.GetTimeoutType().String()
		}
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil {
			extra = a.GetSignalName()
		}
		fmt.Fprintf(&b, "\n    +%5.1fs #%d %s %s", ev.GetEventTime().AsTime().Sub(fx.events.start).Seconds(), ev.GetEventId(), ev.GetEventType(), extra)
	}
	return b.String()
}

func (fx *faultStack) dumpLog() {
	fx.t.Log("fault run timeline:\n" + strings.Join(fx.events.all(), "\n"))
	fx.t.Log("last lines of the App's log:\n" + fx.log.tail(400))
	if b, err := os.ReadFile(fx.tmpLog); err == nil {
		lines := strings.Split(string(b), "\n")
		fx.t.Log("last lines of the Temporal server's log:\n" + strings.Join(lines[max(0, len(lines)-200):], "\n"))
	}
}

// faultReport is what the run counted.
type faultReport struct {
	posts       int
	byStatus    map[cs.PostStatus]int
	wrongStatus int
	deliveries  int            // distinct webhook-ids
	duplicates  int            // deliveries beyond the first of a webhook-id
	unexpected  int            // deliveries of posts not planned to publish, or more than one id per post
	missing     int            // published posts not delivered
	sent        int            // decisions sent (one per planned decision)
	accepted    int            // answered 202
	counted     int            // of the sent ones, counted in the audit log
	explained   int            // accepted but ignored, and the post's end explains it
	lost        int            // accepted, neither counted nor explained
	uncertain   int            // decisions with an attempt that failed in doubt
	ignoredDup  int            // decision_ignored duplicate_request (a retry of a delivered attempt)
	across      map[string]int // decisions in flight while that part was down
	slowest     time.Duration  // the longest a decision took to be answered
	lastDone    string         // the post that reached its end state last
	lastEvents  string         // and its audit log
	lastID      string
	held        []string // decisions sent while a part was down, and how they went
	http        map[int]int
	transport   int
	setup       time.Duration
	total       time.Duration
	timeline    []string
}

func (fx *faultStack) report(plans []*faultPlan, final map[string]cs.Post) *faultReport {
	r := &faultReport{posts: len(plans), byStatus: map[cs.PostStatus]int{}, across: map[string]int{}}
	var last time.Time
	hook := fx.env.hook
	idsByPost := map[string][]string{}
	for _, d := range hook.Payloads() {
		idsByPost[d.Data.Post.ID] = append(idsByPost[d.Data.Post.ID], fmt.Sprintf("post-%s-r%d", d.Data.Post.ID, d.Data.Post.Revision))
	}
	for id, n := range hook.Seen() {
		r.deliveries++
		if n > 1 {
			r.duplicates += n - 1
			fx.t.Errorf("webhook-id %s delivered %d times", id, n)
		}
	}

	for _, p := range plans {
		q := final[p.id]
		r.byStatus[q.Status]++
		if q.UpdatedAt.After(last) {
			last = q.UpdatedAt
			r.lastDone = fmt.Sprintf("post %d (%s) at +%.1fs, %.1fs after its driver started",
				p.idx, p.kind, q.UpdatedAt.Sub(fx.events.start).Seconds(), q.UpdatedAt.Sub(p.startAt).Seconds())
			var b strings.Builder
			for _, ev := range q.Events {
				fmt.Fprintf(&b, "\n    +%5.1fs %s step=%d %s %s", ev.At.Sub(fx.events.start).Seconds(), ev.Type, ev.Step, ev.Reason, ev.Detail)
			}
			r.lastEvents, r.lastID = b.String(), p.id
		}
		if q.Status != p.want {
			r.wrongStatus++
		}
		ids := idsByPost[p.id]
		switch {
		case p.want == cs.PostPublished && len(ids) == 0:
			r.missing++
			fx.t.Errorf("post %d (%s) was never delivered", p.idx, p.kind)
		case p.want != cs.PostPublished && len(ids) > 0, len(ids) > 1:
			r.unexpected += len(ids)
			fx.t.Errorf("post %d (%s, %s) delivered as %v", p.idx, p.kind, q.Status, ids)
		}
		if p.want == cs.PostPublished && p.scheduledAt != nil && q.PublishedAt != nil && q.PublishedAt.Before(*p.scheduledAt) {
			fx.t.Errorf("post %d (%s) published at %s, before its time %s", p.idx, p.kind, q.PublishedAt, p.scheduledAt)
		}
		for _, ev := range q.Events {
			if ev.Type == cs.EventDecisionIgnored && ev.Reason == cs.ReasonDuplicateRequest {
				r.ignoredDup++
			}
		}
		if p.holdFor != "" && len(p.decisions) > 0 {
			d := p.decisions[0]
			r.held = append(r.held, fmt.Sprintf("post %d step 1 sent at +%.1fs, %s down: %d after %d attempt(s), %.1fs",
				p.idx, d.sentAt.Sub(fx.events.start).Seconds(), p.holdFor, d.status, d.attempts, d.took.Seconds()))
		}
		for _, d := range p.decisions {
			r.sent++
			r.slowest = max(r.slowest, d.took)
			for _, what := range fx.outages.overlapping(d.sentAt, d.sentAt.Add(d.took)) {
				r.across[what]++
			}
			if d.uncertain {
				r.uncertain++
			}
			if d.status/100 == 2 {
				r.accepted++
			}
			counted, ignored := false, ""
			for _, ev := range q.Events {
				if ev.Actor != d.memberID || ev.Step != d.step || ev.Revision != 1 {
					continue
				}
				switch ev.Type {
				case cs.EventDecisionCounted:
					counted = true
				case cs.EventDecisionIgnored:
					if ev.Reason != cs.ReasonDuplicateRequest {
						ignored = ev.Reason
					}
				}
			}
			switch {
			case counted:
				r.counted++
				if !fx.hasRequest(q, d) {
					fx.t.Errorf("post %d: %s's %s of step %d counted, but not under request %s", p.idx, d.who, d.decision, d.step, d.requestID)
				}
			case d.status/100 == 2 && ignored != "" && (q.Status == cs.PostCanceled || q.Status == cs.PostRejected):
				r.explained++
			case d.status/100 == 2:
				r.lost++
				fx.t.Errorf("post %d (%s, %s): %s's %s of step %d was accepted (202) but never counted (ignored: %q)",
					p.idx, p.kind, q.Status, d.who, d.decision, d.step, ignored)
			case d.uncertain:
				fx.t.Errorf("post %d (%s): %s's %s of step %d answered %d after a doubtful attempt, and is not counted",
					p.idx, p.kind, d.who, d.decision, d.step, d.status)
			}
		}
	}
	r.http, r.transport = fx.http.stats()
	r.timeline = fx.events.all()
	return r
}

// hasRequest says whether the post's steps hold the decision under its
// request id (the Idempotency-Key the test sent).
func (fx *faultStack) hasRequest(q cs.Post, d *faultDecision) bool {
	if d.step > len(q.Steps) {
		return q.Status == cs.PostCanceled // steps may be cleared; the event is what counts
	}
	s := q.Steps[d.step-1]
	for _, a := range s.Approvals {
		if a.RequestID == d.requestID {
			return true
		}
	}
	return s.Rejection != nil && s.Rejection.RequestID == d.requestID
}

func (r *faultReport) statusText() string {
	var parts []string
	for st, n := range r.byStatus {
		parts = append(parts, fmt.Sprintf("%s=%d", st, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func (r *faultReport) httpText() string {
	var parts []string
	for code, n := range r.http {
		parts = append(parts, fmt.Sprintf("%d:%d", code, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func (r *faultReport) line() string {
	return fmt.Sprintf("FAULT SUMMARY posts=%d %s wrong_status=%d deliveries=%d duplicates=%d unexpected=%d missing=%d "+
		"decisions_sent=%d accepted=%d counted=%d explained=%d lost=%d uncertain=%d dup_ignored=%d across_outage=[%s] "+
		"http=[%s] transport_errors=%d setup=%.1fs total=%.1fs",
		r.posts, r.statusText(), r.wrongStatus, r.deliveries, r.duplicates, r.unexpected, r.missing,
		r.sent, r.accepted, r.counted, r.explained, r.lost, r.uncertain, r.ignoredDup, r.acrossText(),
		r.httpText(), r.transport, r.setup.Seconds(), r.total.Seconds())
}

func (r *faultReport) acrossText() string {
	var parts []string
	for what, n := range r.across {
		parts = append(parts, fmt.Sprintf("%s:%d", what, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func (r *faultReport) String() string {
	return fmt.Sprintf(`fault run:
  posts: %d, by final status: %s (not as planned: %d)
  webhook deliveries: %d distinct webhook-ids, %d duplicates, %d unexpected, %d missing
  decisions: %d sent, %d accepted (202), %d counted, %d explained by the post's end, %d lost; %d retried after a doubtful attempt, %d ignored as duplicate requests
  decisions in flight during an outage: %s; slowest answer %.1fs
    %s
  API answers: %s; transport errors: %d
  time: setup %.1fs, total %.1fs; last to finish: %s
  timeline:
    %s`,
		r.posts, r.statusText(), r.wrongStatus,
		r.deliveries, r.duplicates, r.unexpected, r.missing,
		r.sent, r.accepted, r.counted, r.explained, r.lost, r.uncertain, r.ignoredDup,
		r.acrossText(), r.slowest.Seconds(), strings.Join(r.held, "\n    "),
		r.httpText(), r.transport,
		r.setup.Seconds(), r.total.Seconds(), r.lastDone,
		strings.Join(r.timeline, "\n    "))
}

func faultEnvInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func sleepUntil(ctx context.Context, at time.Time) error { return sleepCtx(ctx, time.Until(at)) }

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}
