package bench

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/metrics"
	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/server"
)

// QueryOptions configures `countersign bench queries`.
type QueryOptions struct {
	DatabaseURL string
	Calls       int  // calls per case (default 200)
	Explain     bool // also EXPLAIN (ANALYZE, BUFFERS) each case's statement
}

// QueryResult is the read path's latency on a seeded database.
type QueryResult struct {
	TotalPosts int
	Org        string // the org measured: the one with the most posts
	OrgPosts   int
	Cases      []QueryCase
	Explains   []Explained
}

// QueryCase is one kind of call, measured Calls times, one at a time.
type QueryCase struct {
	Name  string
	Calls int
	Lat   Percentiles
	Note  string
}

// Explained is one statement behind a case with its plan.
type Explained struct {
	Case, SQL string
	Args      []any
	Plan      string
}

// benchParams are the seeded rows the cases ask about.
type benchParams struct {
	org, ownerUser, approver, approverUser string
	orgPosts, totalPosts                   int
	accounts, authors, posts               []string
	middle                                 string // a post in the middle of the org: a deep cursor
}

// pickParams chooses the org with the most posts, its owner, the member
// most awaited there, busy accounts and authors, and sample posts.
func pickParams(ctx context.Context, pool *pgxpool.Pool) (benchParams, error) {
	var p benchParams
	err := pool.QueryRow(ctx, `SELECT org_id, sum(n)::int, (SELECT sum(n)::int FROM post_counts) FROM post_counts
		GROUP BY org_id ORDER BY 2 DESC LIMIT 1`).Scan(&p.org, &p.orgPosts, &p.totalPosts)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, errors.New("the database holds no posts: run `countersign bench seed` first")
	}
	if err != nil {
		return p, err
	}
	if err := pool.QueryRow(ctx, `SELECT user_id FROM members WHERE org_id = $1 AND org_role = 'owner' AND removed_at IS NULL
		ORDER BY id LIMIT 1`, p.org).Scan(&p.ownerUser); err != nil {
		return p, fmt.Errorf("owner of org %s: %w", p.org, err)
	}
	err = pool.QueryRow(ctx, `SELECT a.m, m.user_id FROM (
			SELECT m, count(*) n FROM posts, unnest(awaiting) m WHERE org_id = $1 AND status = 'pending_approval' GROUP BY m
		) a JOIN members m ON m.id = a.m ORDER BY a.n DESC, a.m LIMIT 1`, p.org).Scan(&p.approver, &p.approverUser)
	if err != nil {
		return p, fmt.Errorf("an awaited member of org %s: %w", p.org, err)
	}
	col := func(sql string) ([]string, error) {
		rows, err := pool.Query(ctx, sql, p.org)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if p.accounts, err = col(`SELECT DISTINCT account_id::text FROM (SELECT account_id FROM posts WHERE org_id = $1 ORDER BY id DESC LIMIT 500) x LIMIT 5`); err != nil {
		return p, err
	}
	if p.authors, err = col(`SELECT DISTINCT author_id::text FROM (SELECT author_id FROM posts WHERE org_id = $1 ORDER BY id DESC LIMIT 500) x LIMIT 5`); err != nil {
		return p, err
	}
	if p.posts, err = col(`SELECT id::text FROM posts WHERE org_id = $1 ORDER BY random() LIMIT 200`); err != nil {
		return p, err
	}
	err = pool.QueryRow(ctx, `SELECT id::text FROM posts WHERE org_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1`,
		p.org, p.orgPosts/2).Scan(&p.middle)
	return p, err
}

// sqlTarget is a statement the API or the reconciler runs, with arguments.
type sqlTarget struct {
	name, sql string
	args      []any
}

// explainTargets are the statements behind the cases, with the values the
// cases use (the first of each rotation).
func explainTargets(p benchParams) []sqlTarget {
	page := cs.Page{Limit: 51}
	deep := cs.Page{Limit: 51, After: p.middle}
	list := func(name string, f store.PostFilter, pg cs.Page) sqlTarget {
		sql, args := store.ListPostsQuery(p.org, f, pg)
		return sqlTarget{name, sql, args}
	}
	return []sqlTarget{
		list("posts", store.PostFilter{}, page),
		list("posts, deep cursor", store.PostFilter{}, deep),
		list("posts?status=published", store.PostFilter{Status: cs.PostPublished}, page),
		list("posts?status=pending_approval", store.PostFilter{Status: cs.PostPendingApproval}, page),
		list("posts?status=failed", store.PostFilter{Status: cs.PostFailed}, page),
		list("posts?account_id", store.PostFilter{AccountID: p.accounts[0]}, page),
		list("posts?author_id", store.PostFilter{AuthorID: p.authors[0]}, page),
		list("approvals", store.PostFilter{Status: cs.PostPendingApproval, AwaitingMember: p.approver}, page),
		// store.Post and store.PostEvents, columns aside.
		{"posts/{id}", `SELECT * FROM posts WHERE org_id = $1 AND id = $2`, []any{p.org, p.posts[0]}},
		{"posts/{id} events", `SELECT * FROM post_events WHERE post_id = $1 ORDER BY seq, at`, []any{p.posts[0]}},
		{"metrics scrape", store.CountPostsByStatusQuery, nil},
		{"reconciler: lost starts", store.UnstartedPostsQuery, []any{"1m", 100}},
		{"reconciler: open posts page", store.OpenPostsQuery, []any{"1m", nil, 100}},
	}
}

// explain runs EXPLAIN (ANALYZE, BUFFERS) of each target on conn.
func explain(ctx context.Context, conn *pgxpool.Conn, ts []sqlTarget) ([]Explained, error) {
	var out []Explained
	for _, t := range ts {
		rows, err := conn.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+t.sql, t.args...)
		if err != nil {
			return out, fmt.Errorf("explain %s: %w", t.name, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return out, fmt.Errorf("explain %s: %w", t.name, err)
		}
		out = append(out, Explained{Case: t.name, SQL: t.sql, Args: t.args, Plan: strings.Join(lines, "\n")})
	}
	return out, nil
}

// Queries measures the read path on a seeded database over real HTTP: the
// API (in this process, on loopback) and the metrics listener's /metrics,
// and the reconciler's statements through the store.
func Queries(ctx context.Context, o QueryOptions) (*QueryResult, error) {
	if o.Calls <= 0 {
		o.Calls = 200
	}
	st, err := store.Open(ctx, o.DatabaseURL)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, o.DatabaseURL)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	p, err := pickParams(ctx, pool)
	if err != nil {
		return nil, err
	}
	res := &QueryResult{TotalPosts: p.totalPosts, Org: p.org, OrgPosts: p.orgPosts}

	owner, err := st.CreateAPIToken(ctx, p.ownerUser, "bench queries")
	if err != nil {
		return nil, err
	}
	defer func() { _ = st.RevokeAPIToken(context.Background(), p.ownerUser, owner.ID) }()
	approver, err := st.CreateAPIToken(ctx, p.approverUser, "bench queries")
	if err != nil {
		return nil, err
	}
	defer func() { _ = st.RevokeAPIToken(context.Background(), p.approverUser, approver.ID) }()

	m := metrics.New()
	m.PostsByStatus(st.CountPostsByStatus)
	api := server.New(server.Deps{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: m})
	apiURL, stopAPI, err := serveLoopback(api)
	if err != nil {
		return nil, err
	}
	defer stopAPI()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	metricsURL, stopMetrics, err := serveLoopback(mux)
	if err != nil {
		return nil, err
	}
	defer stopMetrics()

	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer hc.CloseIdleConnections()
	get := func(token, u string, out any) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: HTTP %d: %.300s", u, resp.StatusCode, b)
		}
		if out != nil {
			return json.Unmarshal(b, out)
		}
		return nil
	}
	orgURL := apiURL + "/v1/orgs/" + p.org
	type page struct {
		Items      []cs.Post `json:"items"`
		NextCursor *string   `json:"next_cursor"`
	}
	var first page
	if err := get(owner.Token, orgURL+"/posts", &first); err != nil {
		return nil, err
	}
	cursor := ""
	if first.NextCursor != nil {
		cursor = *first.NextCursor
	}
	deep := cursorOf(p.middle)
	rot := func(vals []string, f func(string) string) func(int) string {
		return func(i int) string { return f(vals[i%len(vals)]) }
	}
	fixed := func(u string) func(int) string { return func(int) string { return u } }
	type httpCase struct {
		name, token string
		url         func(int) string
	}
	cases := []httpCase{
		{"GET /posts", owner.Token, fixed(orgURL + "/posts")},
		{"GET /posts?cursor= (page 2)", owner.Token, fixed(orgURL + "/posts?cursor=" + url.QueryEscape(cursor))},
		{"GET /posts?cursor= (middle of the org)", owner.Token, fixed(orgURL + "/posts?cursor=" + url.QueryEscape(deep))},
		{"GET /posts?status=published", owner.Token, fixed(orgURL + "/posts?status=published")},
		{"GET /posts?status=pending_approval", owner.Token, fixed(orgURL + "/posts?status=pending_approval")},
		{"GET /posts?status=failed", owner.Token, fixed(orgURL + "/posts?status=failed")},
		{"GET /posts?account_id=", owner.Token, rot(p.accounts, func(a string) string { return orgURL + "/posts?account_id=" + a })},
		{"GET /posts?author_id=", owner.Token, rot(p.authors, func(a string) string { return orgURL + "/posts?author_id=" + a })},
		{"GET /approvals", approver.Token, fixed(orgURL + "/approvals")},
		{"GET /posts/{id}", owner.Token, rot(p.posts, func(id string) string { return orgURL + "/posts/" + id })},
		{"GET /metrics (metrics listener)", "", fixed(metricsURL + "/metrics")},
	}
	for _, c := range cases {
		var lat []time.Duration
		for i := -5; i < o.Calls; i++ { // 5 warm-up calls
			t := time.Now()
			if err := get(c.token, c.url(max(i, 0)), nil); err != nil {
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
			if i >= 0 {
				lat = append(lat, time.Since(t))
			}
		}
		res.Cases = append(res.Cases, QueryCase{Name: c.name, Calls: len(lat), Lat: samples{"": lat}.percentiles()[""]})
	}

	// The reconciler's pass: its statements through the store (a seeded
	// post has no workflow to describe, so the Temporal half is not run).
	var lost []time.Duration
	for range o.Calls {
		t := time.Now()
		if _, err := st.UnstartedPosts(ctx, time.Minute, 100); err != nil {
			return nil, err
		}
		lost = append(lost, time.Since(t))
	}
	res.Cases = append(res.Cases, QueryCase{Name: "reconciler: lost starts (each pass)", Calls: len(lost), Lat: samples{"": lost}.percentiles()[""]})
	var pages []time.Duration
	open, after, walk := 0, "", time.Now()
	for {
		t := time.Now()
		ps, err := st.OpenPosts(ctx, time.Minute, after, 100)
		if err != nil {
			return nil, err
		}
		pages = append(pages, time.Since(t))
		if len(ps) == 0 {
			break
		}
		open += len(ps)
		after = ps[len(ps)-1].ID
	}
	res.Cases = append(res.Cases, QueryCase{Name: "reconciler: open posts, one page of 100", Calls: len(pages),
		Lat:  samples{"": pages}.percentiles()[""],
		Note: fmt.Sprintf("whole walk: %d open posts in %s (plus one Temporal describe each, not run)", open, time.Since(walk).Round(time.Millisecond))})

	if o.Explain {
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		defer conn.Release()
		if res.Explains, err = explain(ctx, conn, explainTargets(p)); err != nil {
			return res, err
		}
	}
	return res, nil
}

// cursorOf is the API's cursor of a post id (server.listPage's encoding).
func cursorOf(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(id))
}

// serveLoopback serves h on a free loopback port.
func serveLoopback(h http.Handler) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() { _ = srv.Close() }, nil
}

// Print writes the figures as a table, then the plans.
func (r *QueryResult) Print(w io.Writer) {
	fmt.Fprintf(w, "\n%d posts in the database; measured on the org with the most: %s (%d posts)\n\n", r.TotalPosts, r.Org, r.OrgPosts)
	fmt.Fprintln(w, "| call | calls | p50 | p99 | max | target p99 ≤ 50 ms |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, c := range r.Cases {
		ok := "yes"
		if c.Lat.P99 > 50 {
			ok = "NO"
		}
		fmt.Fprintf(w, "| %s | %d | %.1f ms | %.1f ms | %.1f ms | %s |\n", c.Name, c.Calls, c.Lat.P50, c.Lat.P99, c.Lat.Max, ok)
	}
	for _, c := range r.Cases {
		if c.Note != "" {
			fmt.Fprintf(w, "\n%s: %s\n", c.Name, c.Note)
		}
	}
	for _, e := range r.Explains {
		fmt.Fprintf(w, "\n-- %s\n%s\n-- arguments: %v\n%s\n", e.Case, strings.Join(strings.Fields(e.SQL), " "), e.Args, e.Plan)
	}
}
