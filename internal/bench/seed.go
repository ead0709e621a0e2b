package bench

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	cs "github.com/countersign/countersign"
)

// SeedOptions sizes `countersign bench seed`: a database filled directly
// (COPY, in batches) with orgs, their directory and posts in realistic
// proportions, for measuring the API's reads at scale.
type SeedOptions struct {
	Posts, Orgs int
	// Months is how far back posts were created (default 12); more recent
	// months hold more posts (the customers grow).
	Months int
	// EventsFraction of the posts get their audit log (default 0.1).
	EventsFraction float64
	// Seed makes a run repeatable (default 1).
	Seed uint64
	// Batch is posts per COPY (default 20,000).
	Batch    int
	Progress io.Writer // one line per batch; nil: none
	Now      time.Time // default time.Now()
}

// SeedResult says what was written.
type SeedResult struct {
	Orgs, Users, Members, Teams, Accounts, Posts, Events int
	WithEvents                                           int // posts that have events
	ByStatus                                             map[cs.PostStatus]int
	// Largest is the org with the most posts (the bench measures on it).
	Largest      string
	LargestPosts int
	Elapsed      time.Duration
}

// seedStatusWeights: most posts are published; the rest are what a year of
// real use leaves behind.
var seedStatusWeights = []struct {
	s cs.PostStatus
	w float64
}{
	{cs.PostPublished, 0.784}, {cs.PostScheduled, 0.06}, {cs.PostPendingApproval, 0.05},
	{cs.PostRejected, 0.03}, {cs.PostExpired, 0.03}, {cs.PostCanceled, 0.03}, {cs.PostFailed, 0.007},
	{cs.PostOnHold, 0.005}, {cs.PostNeedsAttention, 0.003}, {cs.PostPublishing, 0.001},
}

// SeedStatusShare is the expected share of a status among seeded posts.
func SeedStatusShare(s cs.PostStatus) float64 {
	for _, x := range seedStatusWeights {
		if x.s == s {
			return x.w
		}
	}
	return 0
}

func (o *SeedOptions) defaults() {
	if o.Posts <= 0 {
		o.Posts = 1000
	}
	if o.Orgs <= 0 {
		o.Orgs = 10
	}
	if o.Months <= 0 {
		o.Months = 12
	}
	if o.EventsFraction <= 0 {
		o.EventsFraction = 0.1
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Batch <= 0 {
		o.Batch = 20000
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
}

// seedOrg is one org's directory, kept in memory while its posts are made.
type seedOrg struct {
	id       string
	posts    int
	members  []string // member ids; [0] is the owner
	teams    []string
	accounts []string
	// approvers: the members the chain's steps resolve to (the first fifth,
	// owner and admins among them).
	approvers []string
	chain     cs.Chain
	chainJSON []byte
	// weights for picking authors and accounts (a few do most of the work).
	authorCum, accountCum []float64
}

// Seed fills the database at pool (migrated to at least 00003) and returns
// what it wrote. It only inserts: run it on a dev or bench database.
func Seed(ctx context.Context, pool *pgxpool.Pool, o SeedOptions) (*SeedResult, error) {
	o.defaults()
	start := time.Now()
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	runID := uuidAt(o.Now, rng)
	run := hex.EncodeToString(runID[10:]) // tags this run's e-mails
	res := &SeedResult{ByStatus: map[cs.PostStatus]int{}}

	orgs := seedSizes(o.Posts, o.Orgs)
	d := directoryRows{}
	for i, n := range orgs {
		org := d.addOrg(rng, run, i, n, o.Now)
		if n > res.LargestPosts {
			res.Largest, res.LargestPosts = org.id, n
		}
	}
	if err := d.copy(ctx, pool); err != nil {
		return nil, err
	}
	res.Orgs, res.Users, res.Members = len(d.orgs), len(d.users), len(d.members)
	res.Teams, res.Accounts = len(d.teams), len(d.accounts)

	g := postGen{rng: rng, now: o.Now, span: time.Duration(o.Months) * 30 * 24 * time.Hour, events: o.EventsFraction}
	var posts, events [][]any
	flush := func() error {
		if len(posts) == 0 {
			return nil
		}
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"posts"}, seedPostColumns, pgx.CopyFromRows(posts)); err != nil {
			return fmt.Errorf("copy posts: %w", err)
		}
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"post_events"}, seedEventColumns, pgx.CopyFromRows(events)); err != nil {
			return fmt.Errorf("copy post events: %w", err)
		}
		res.Posts += len(posts)
		res.Events += len(events)
		posts, events = posts[:0], events[:0]
		if o.Progress != nil {
			el := time.Since(start)
			fmt.Fprintf(o.Progress, "seeded %d/%d posts, %d events (%.0f posts/s)\n", res.Posts, o.Posts, res.Events,
				float64(res.Posts)/el.Seconds())
		}
		return nil
	}
	for _, org := range d.orgs {
		for range org.posts {
			row, evs, status := g.post(org)
			res.ByStatus[status]++
			posts = append(posts, row)
			events = append(events, evs...)
			if len(evs) > 0 {
				res.WithEvents++
			}
			if len(posts) >= o.Batch {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	// Fresh statistics, so the planner sees the new sizes at once.
	if _, err := pool.Exec(ctx, `ANALYZE posts; ANALYZE post_events; ANALYZE members; ANALYZE accounts`); err != nil {
		return nil, err
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// seedSizes splits posts over orgs by a Zipf law (s = 1): the largest org
// has about 13% of the posts at 1,000 orgs, the smallest a few dozen; every
// org gets at least one.
func seedSizes(posts, orgs int) []int {
	if orgs > posts {
		orgs = posts
	}
	w, sum := make([]float64, orgs), 0.0
	for i := range w {
		w[i] = 1 / float64(i+1)
		sum += w[i]
	}
	sizes, left := make([]int, orgs), posts-orgs
	given := 0
	for i := range sizes {
		sizes[i] = 1 + int(float64(left)*w[i]/sum)
		given += sizes[i]
	}
	for i := 0; given < posts; i = (i + 1) % orgs {
		sizes[i]++
		given++
	}
	return sizes
}

// uuidAt is a UUIDv7 of time t, as the store's ids are: ids sort by creation.
func uuidAt(t time.Time, rng *rand.Rand) uuid.UUID {
	var u uuid.UUID
	ms := uint64(t.UnixMilli())
	for i := 0; i < 6; i++ {
		u[i] = byte(ms >> (40 - 8*i))
	}
	a, b := rng.Uint64(), rng.Uint64()
	for i := 6; i < 16; i++ {
		if i < 11 {
			u[i] = byte(a >> (8 * (i - 6)))
		} else {
			u[i] = byte(b >> (8 * (i - 11)))
		}
	}
	u[6] = 0x70 | u[6]&0x0f
	u[8] = 0x80 | u[8]&0x3f
	return u
}

// cumulative returns the running sums of n Zipf weights (exponent s).
func cumulative(n int, s float64) []float64 {
	c, sum := make([]float64, n), 0.0
	for i := range c {
		sum += math.Pow(float64(i+1), -s)
		c[i] = sum
	}
	return c
}

// pick draws an index by cumulative weights.
func pick(rng *rand.Rand, cum []float64) int {
	x := rng.Float64() * cum[len(cum)-1]
	lo, hi := 0, len(cum)-1
	for lo < hi {
		m := (lo + hi) / 2
		if cum[m] < x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// directoryRows are the orgs' directories, copied before their posts.
type directoryRows struct {
	orgs                                                       []*seedOrg
	users, orgRows, members, teams, teamMembers, chains, steps [][]any
	accounts, grants                                           [][]any
}

func (d *directoryRows) addOrg(rng *rand.Rand, run string, i, posts int, now time.Time) *seedOrg {
	created := now.Add(-400 * 24 * time.Hour)
	id := func() string { return uuidAt(created, rng).String() }
	org := &seedOrg{id: id(), posts: posts}
	d.orgRows = append(d.orgRows, []any{org.id, fmt.Sprintf("Seed org %04d", i+1), created})
	// People grow with the work: about 1.2 × √posts members (3 to 400),
	// a team per 8 members, an account per 5.
	nm := min(400, max(3, int(1.2*math.Sqrt(float64(posts)))))
	nt := min(40, max(1, nm/8))
	na := min(60, max(1, nm/5))
	for m := range nm {
		uid, mid := id(), id()
		role := "member"
		switch {
		case m == 0:
			role = "owner"
		case m < max(1, nm/20)+1:
			role = "admin"
		}
		var slack any
		if rng.Float64() < 0.6 {
			slack = fmt.Sprintf("U%s%04d", strings.ToUpper(run[:6]), m)
		}
		d.users = append(d.users, []any{uid, fmt.Sprintf("seed-%s-o%d-m%d@example.invalid", run, i+1, m+1),
			fmt.Sprintf("Member %d of org %d", m+1, i+1), true, created})
		d.members = append(d.members, []any{mid, org.id, uid, role, slack, created})
		org.members = append(org.members, mid)
	}
	org.approvers = org.members[:max(2, nm/5)]
	for t := range nt {
		tid := id()
		org.teams = append(org.teams, tid)
		d.teams = append(d.teams, []any{tid, org.id, fmt.Sprintf("Team %d", t+1), created})
	}
	for m, mid := range org.members { // everyone in one team, some in two
		d.teamMembers = append(d.teamMembers, []any{org.id, org.teams[m%nt], mid, "member", created})
		if nt > 1 && rng.Float64() < 0.3 {
			d.teamMembers = append(d.teamMembers, []any{org.id, org.teams[(m+1)%nt], mid, "member", created})
		}
	}
	// One chain: 1 to 3 steps (an approver member, a team, the approvers role).
	org.chain = cs.Chain{ID: id(), Name: "Review", LatePolicy: cs.LateExpire, DistinctApprovers: true}
	d.chains = append(d.chains, []any{org.chain.ID, org.id, "Review", false, string(cs.LateExpire), true, created, created})
	steps := 1 + rng.IntN(3)
	for s := 1; s <= steps; s++ {
		var st cs.ChainStep
		var member, team, role any
		switch s {
		case 1:
			st.Approver.Member = org.approvers[1%len(org.approvers)]
			member = st.Approver.Member
		case 2:
			st.Approver.Team = org.teams[0]
			team = st.Approver.Team
		default:
			st.Approver.Role = cs.ApproverRoleApprovers
			role = cs.ApproverRoleApprovers
		}
		st.Quorum = 1
		org.chain.Steps = append(org.chain.Steps, st)
		d.steps = append(d.steps, []any{org.id, org.chain.ID, s, member, team, role, 1})
	}
	org.chainJSON, _ = json.Marshal(org.chain)
	networks := []string{"mastodon", "bluesky", "x", "webhook", "log"}
	for a := range na {
		aid := id()
		org.accounts = append(org.accounts, aid)
		var chain any
		if rng.Float64() < 0.8 {
			chain = org.chain.ID
		}
		d.accounts = append(d.accounts, []any{aid, org.id, networks[a%len(networks)], fmt.Sprintf("account%d", a+1),
			"Europe/Paris", chain, created, created})
		d.grants = append(d.grants, []any{org.id, aid, nil, org.teams[a%nt], "limited", created})
		d.grants = append(d.grants, []any{org.id, aid, org.approvers[0], nil, "editor", created})
	}
	org.authorCum, org.accountCum = cumulative(nm, 0.8), cumulative(na, 0.8)
	d.orgs = append(d.orgs, org)
	return org
}

// copy writes the directory, parents first.
func (d *directoryRows) copy(ctx context.Context, pool *pgxpool.Pool) error {
	for _, t := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"users", []string{"id", "email", "name", "allow_invitations", "created_at"}, d.users},
		{"orgs", []string{"id", "name", "created_at"}, d.orgRows},
		{"members", []string{"id", "org_id", "user_id", "org_role", "slack_user_id", "created_at"}, d.members},
		{"teams", []string{"id", "org_id", "name", "created_at"}, d.teams},
		{"team_members", []string{"org_id", "team_id", "member_id", "team_role", "created_at"}, d.teamMembers},
		{"approval_chains", []string{"id", "org_id", "name", "require_approval_for_all", "late_policy", "distinct_approvers", "created_at", "updated_at"}, d.chains},
		{"approval_chain_steps", []string{"org_id", "chain_id", "position", "approver_member_id", "approver_team_id", "approver_role", "quorum"}, d.steps},
		{"accounts", []string{"id", "org_id", "network", "handle", "timezone", "approval_chain_id", "created_at", "updated_at"}, d.accounts},
		{"account_grants", []string{"org_id", "account_id", "member_id", "team_id", "level", "created_at"}, d.grants},
	} {
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{t.table}, t.cols, pgx.CopyFromRows(t.rows)); err != nil {
			return fmt.Errorf("copy %s: %w", t.table, err)
		}
	}
	return nil
}

// The columns the seeder writes: all exist from migration 00003 on, so a
// database can be seeded before the later migrations are timed on it.
var (
	seedPostColumns = []string{"id", "org_id", "account_id", "author_id", "text", "media_urls", "scheduled_at",
		"revision", "content_hash", "status", "current_step", "total_steps", "awaiting", "deadline", "external_id",
		"external_url", "published_at", "last_error", "state", "state_updated_at", "chain", "needs_approval",
		"workflow_started_at", "created_at", "updated_at"}
	seedEventColumns = []string{"org_id", "post_id", "key", "seq", "type", "actor", "source", "revision",
		"content_hash", "step", "reason", "detail", "at"}
)

// postGen makes posts.
type postGen struct {
	rng    *rand.Rand
	now    time.Time
	span   time.Duration
	events float64
	cum    []float64 // status weights, cumulative
}

var seedWords = strings.Fields(`the launch our team new release today customers thanks week product update
	join us live event read more blog open source approval social schedule post morning community feature
	webinar hiring engineers design roadmap spring summer autumn winter coffee data privacy security`)

func (g *postGen) status() cs.PostStatus {
	if g.cum == nil {
		sum := 0.0
		for _, x := range seedStatusWeights {
			sum += x.w
			g.cum = append(g.cum, sum)
		}
	}
	return seedStatusWeights[pick(g.rng, g.cum)].s
}

// ago is a random duration in [lo, hi).
func (g *postGen) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(g.rng.Int64N(int64(hi-lo)))
}

// post returns one post's row, its events (for a sample) and its status.
func (g *postGen) post(org *seedOrg) ([]any, [][]any, cs.PostStatus) {
	rng, now := g.rng, g.now
	status := g.status()
	author := org.members[pick(rng, org.authorCum)]
	account := org.accounts[pick(rng, org.accountCum)]
	needsApproval := rng.Float64() < 0.85
	switch status {
	case cs.PostPendingApproval, cs.PostRejected, cs.PostOnHold, cs.PostExpired:
		needsApproval = true
	}
	h, d := time.Hour, 24*time.Hour
	// created: over the whole span, denser toward now (√ of a uniform draw);
	// open posts are recent.
	created := now.Add(-time.Duration(float64(g.span) * (1 - math.Sqrt(rng.Float64()))))
	var sched, deadline, published *time.Time
	at := func(t time.Time) *time.Time { return &t }
	lead := time.Duration(math.Exp(math.Log(float64(10*time.Minute)) + rng.Float64()*math.Log(float64(7*d)/float64(10*time.Minute))))
	switch status {
	case cs.PostPendingApproval:
		created = now.Add(-g.between(time.Minute, 7*d))
		sched = at(now.Add(g.between(h, 14*d)))
	case cs.PostScheduled:
		created = now.Add(-g.between(time.Minute, 14*d))
		sched = at(now.Add(g.between(10*time.Minute, 30*d)))
	case cs.PostOnHold:
		created = now.Add(-g.between(2*d, 20*d))
		sched = at(created.Add(g.between(h, 2*d)))
	case cs.PostPublishing:
		created = now.Add(-g.between(h, 2*d))
		sched = at(now.Add(-g.between(time.Second, 30*time.Second)))
	default:
		if created.After(now.Add(-time.Hour)) {
			created = now.Add(-g.between(h, 2*h))
		}
		if room := now.Add(-time.Minute).Sub(created); lead >= room {
			lead = g.between(0, room)
		}
		sched = at(created.Add(lead))
		if rng.Float64() < 0.1 { // "as soon as approved"
			sched = nil
		}
	}
	id := uuidAt(created, rng).String()
	text := g.text()
	var media []string
	if rng.Float64() < 0.2 {
		media = []string{fmt.Sprintf("https://media.example.com/%s/%d.jpg", org.id[:8], rng.IntN(100000))}
	}
	if media == nil {
		media = []string{}
	}
	hash := cs.ContentHash(text, media)
	total := 0
	if needsApproval {
		total = len(org.chain.Steps)
	}
	st := cs.PostState{PostID: id, Status: status, Revision: 1, ContentHash: hash, Text: text, MediaURLs: media,
		TotalSteps: total, Writer: author, ScheduledAt: sched, Awaited: []string{}}
	// Steps: approved up to the step the status stopped at.
	upTo, open := total, 0
	switch status {
	case cs.PostPendingApproval, cs.PostOnHold:
		open = 1 + rng.IntN(total)
		upTo = open - 1
	case cs.PostRejected, cs.PostExpired:
		open = 1 + rng.IntN(total)
		upTo = open - 1
	case cs.PostCanceled:
		upTo = rng.IntN(total + 1)
	}
	t := created
	var evs [][]any
	withEvents := rng.Float64() < g.events
	seq := 0
	event := func(typ string, actor any, source string, step int, reason string, when time.Time) {
		if !withEvents {
			return
		}
		seq++
		evs = append(evs, []any{org.id, id, fmt.Sprintf("%s/%d", typ, seq), seq, typ, actor, source, 1, hash, step, reason, "", when})
	}
	event(cs.EventSubmitted, author, cs.SourceAPI, 0, "", t)
	for i, cst := range org.chain.Steps[:total] {
		step := cs.StepState{Index: i + 1, Approver: cst.Approver, Quorum: 1, Status: cs.StepWaiting,
			Eligible: g.eligible(org, author), Approvals: []cs.DecisionRecord{}}
		switch {
		case i < upTo:
			opened := t
			t = t.Add(g.between(time.Minute, 3*h))
			if sched != nil && t.After(*sched) {
				t = opened.Add(time.Second)
			}
			who := step.Eligible[rng.IntN(len(step.Eligible))]
			step.Status, step.OpenedAt = cs.StepApproved, &opened
			step.Approvals = append(step.Approvals, cs.DecisionRecord{Step: i + 1, MemberID: who, Decision: "approve", Source: cs.SourceAPI, At: t})
			event(cs.EventStepOpened, nil, cs.SourceSystem, i+1, "", opened)
			event(cs.EventDecisionCounted, who, cs.SourceAPI, i+1, "", t)
		case i+1 == open:
			opened := t
			step.Status, step.OpenedAt = cs.StepOpen, &opened
			event(cs.EventStepOpened, nil, cs.SourceSystem, i+1, "", opened)
			switch status {
			case cs.PostPendingApproval, cs.PostOnHold:
				st.CurrentStep = i + 1
				if status == cs.PostPendingApproval {
					st.Awaited = step.Eligible
					st.WaitingFor = "approval of step " + fmt.Sprint(i+1)
					deadline = sched
				}
			case cs.PostRejected:
				t = t.Add(g.between(time.Minute, 6*h))
				who := step.Eligible[0]
				step.Status = cs.StepRejected
				step.Rejection = &cs.DecisionRecord{Step: i + 1, MemberID: who, Decision: "reject", Note: "not on brand", Source: cs.SourceAPI, At: t}
				event(cs.EventRejected, who, cs.SourceAPI, i+1, "not on brand", t)
			case cs.PostExpired:
				step.Status = cs.StepExpired
			}
		}
		st.Steps = append(st.Steps, step)
	}
	var lastErr, extID, extURL any
	closed := true
	switch status {
	case cs.PostPublished, cs.PostFailed, cs.PostNeedsAttention:
		p := t.Add(g.between(time.Second, 30*time.Second))
		if sched != nil && sched.After(t) {
			p = sched.Add(g.between(time.Second, 5*time.Second))
		}
		if p.After(now) {
			p = now.Add(-time.Second)
		}
		t = p
		event(cs.EventPublishStarted, nil, cs.SourceSystem, 0, "", t)
		switch status {
		case cs.PostPublished:
			published = &p
			extID = fmt.Sprintf("%d", rng.Int64N(1<<53))
			extURL = "https://social.example.com/@account/" + extID.(string)
			st.PublishedAt, st.ExternalID, st.ExternalURL = published, extID.(string), extURL.(string)
			event(cs.EventPublished, nil, cs.SourceSystem, 0, "", t)
		case cs.PostFailed:
			lastErr = "the network refused the post (422): text too long for this account"
			event(cs.EventPublishFailed, nil, cs.SourceSystem, 0, "rejected_by_network", t)
		default:
			lastErr = "the publication's outcome is unknown: look the post up on the network"
			event(cs.EventNeedsAttention, nil, cs.SourceSystem, 0, "publish_unknown", t)
		}
	case cs.PostExpired:
		if sched != nil && sched.After(t) {
			t = *sched
		}
		event(cs.EventExpired, nil, cs.SourceSystem, 0, "late", t)
	case cs.PostCanceled:
		t = t.Add(g.between(time.Minute, 2*d))
		if t.After(now) {
			t = now.Add(-time.Second)
		}
		event(cs.EventCanceled, author, cs.SourceAPI, 0, "", t)
	case cs.PostRejected:
		closed = now.Sub(t) > 30*d // the author may resubmit for 30 days
	case cs.PostScheduled:
		closed = false
		deadline = sched
		st.WaitingFor = "the scheduled time"
	case cs.PostOnHold:
		closed = false
		st.WaitingFor = "an approval or a new time"
	default:
		closed = false
	}
	if t.After(now) {
		t = now
	}
	st.Closed, st.Deadline, st.UpdatedAt = closed, deadline, t
	if lastErr != nil {
		st.LastError = lastErr.(string)
	}
	state, _ := json.Marshal(st)
	awaiting := st.Awaited
	if status != cs.PostPendingApproval {
		awaiting = []string{}
	}
	row := []any{id, org.id, account, author, text, media, sched, 1, hash, string(status), st.CurrentStep, total,
		awaiting, deadline, extID, extURL, published, lastErr, state, t, org.chainJSON, needsApproval, created, created, t}
	return row, evs, status
}

// eligible is who a step resolves to: one to four of the org's approvers,
// never the author.
func (g *postGen) eligible(org *seedOrg, author string) []string {
	n := 1 + g.rng.IntN(min(4, len(org.approvers)))
	out := make([]string, 0, n)
	for range 4 * n {
		if len(out) == n {
			break
		}
		if m := org.approvers[g.rng.IntN(len(org.approvers))]; m != author && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	if len(out) == 0 { // the author was the only approver drawn
		for _, m := range org.approvers {
			if m != author {
				return []string{m}
			}
		}
	}
	return out
}

// text is a post of 60 to 280 characters.
func (g *postGen) text() string {
	var b strings.Builder
	n := 60 + g.rng.IntN(220)
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(seedWords[g.rng.IntN(len(seedWords))])
	}
	return b.String()
}

// Print writes what was seeded.
func (r *SeedResult) Print(w io.Writer) {
	fmt.Fprintf(w, "\nseeded %d posts (%d with events: %d events) in %d orgs, %d users and members, %d teams, %d accounts in %s\n",
		r.Posts, r.WithEvents, r.Events, r.Orgs, r.Members, r.Teams, r.Accounts, r.Elapsed.Round(time.Second))
	fmt.Fprintf(w, "largest org %s: %d posts\n", r.Largest, r.LargestPosts)
	for _, s := range cs.PostStatuses {
		fmt.Fprintf(w, "  %-17s %8d  %5.1f%%\n", s, r.ByStatus[s], 100*float64(r.ByStatus[s])/float64(max(r.Posts, 1)))
	}
}
