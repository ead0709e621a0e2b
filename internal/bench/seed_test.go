package bench

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/pgserver"
	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/testenv"
	"github.com/countersign/countersign/migrations"
	"github.com/countersign/countersign/server"
)

// seedSmall seeds 2,000 posts in 5 orgs on a fresh database.
func seedSmall(t *testing.T) (string, *pgxpool.Pool, *SeedResult) {
	t.Helper()
	ctx := context.Background()
	dbURL := testenv.Postgres(t)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	res, err := Seed(ctx, pool, SeedOptions{Posts: 2000, Orgs: 5, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	return dbURL, pool, res
}

func scalar[T any](t *testing.T, pool *pgxpool.Pool, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func ids(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSeedDistributions seeds a small database and checks what a reader of
// the seeded data relies on: the status mix, who is awaited, times spread
// over months, the per-org counts the metrics read, events for a sample.
func TestSeedDistributions(t *testing.T) {
	_, pool, res := seedSmall(t)
	if n := scalar[int](t, pool, `SELECT count(*) FROM posts`); n != 2000 || res.Posts != 2000 {
		t.Fatalf("posts in the database %d, reported %d; want 2000", n, res.Posts)
	}
	if n := scalar[int](t, pool, `SELECT count(*) FROM orgs o WHERE NOT EXISTS (SELECT 1 FROM members WHERE org_id = o.id AND org_role = 'owner')
		OR NOT EXISTS (SELECT 1 FROM teams WHERE org_id = o.id) OR NOT EXISTS (SELECT 1 FROM accounts WHERE org_id = o.id)
		OR NOT EXISTS (SELECT 1 FROM posts WHERE org_id = o.id)`); n != 0 || res.Orgs != 5 {
		t.Fatalf("%d of %d orgs lack an owner, a team, an account or a post", n, res.Orgs)
	}
	// Orgs differ in size (Zipf), as customers do.
	if big, small := scalar[int](t, pool, `SELECT max(c) FROM (SELECT count(*) c FROM posts GROUP BY org_id) x`),
		scalar[int](t, pool, `SELECT min(c) FROM (SELECT count(*) c FROM posts GROUP BY org_id) x`); big < 3*small {
		t.Errorf("largest org %d posts, smallest %d: not skewed", big, small)
	}
	for _, s := range cs.PostStatuses {
		n := scalar[int](t, pool, `SELECT count(*) FROM posts WHERE status = $1`, string(s))
		share, want := float64(n)/2000, SeedStatusShare(s)
		if math.Abs(share-want) > 0.03 || n != res.ByStatus[s] {
			t.Errorf("%s: %d posts (%.3f), want a share near %.3f (reported %d)", s, n, share, want, res.ByStatus[s])
		}
		// The metrics' per-org counts agree with the posts, COPY included.
		if c := scalar[int](t, pool, `SELECT coalesce(sum(n), 0)::int FROM post_counts WHERE status = $1`, string(s)); c != n {
			t.Errorf("post_counts says %d %s posts, the table holds %d", c, s, n)
		}
	}
	if res.ByStatus[cs.PostPendingApproval] == 0 || res.ByStatus[cs.PostNeedsAttention]+res.ByStatus[cs.PostFailed] == 0 {
		t.Errorf("no pending or failing posts: %v", res.ByStatus)
	}
	// Pending posts await someone (never their author); the others nobody.
	if n := scalar[int](t, pool, `SELECT count(*) FROM posts WHERE status = 'pending_approval'
		AND (cardinality(awaiting) = 0 OR author_id = ANY (awaiting) OR current_step < 1 OR deadline IS NULL)`); n != 0 {
		t.Errorf("%d pending posts await nobody, await their author or have no open step", n)
	}
	if n := scalar[int](t, pool, `SELECT count(*) FROM posts WHERE status <> 'pending_approval' AND cardinality(awaiting) > 0`); n != 0 {
		t.Errorf("%d posts not pending await someone", n)
	}
	if n := scalar[int](t, pool, `SELECT count(*) FROM posts p WHERE EXISTS (SELECT 1 FROM unnest(p.awaiting) a
		WHERE NOT EXISTS (SELECT 1 FROM members m WHERE m.id = a AND m.org_id = p.org_id))`); n != 0 {
		t.Errorf("%d posts await a member of another org or of none", n)
	}
	// The mirrored state says the same as the columns.
	if n := scalar[int](t, pool, `SELECT count(*) FROM posts WHERE state->>'status' <> status
		OR (state->'awaited') <> to_jsonb(awaiting::text[]) AND status = 'pending_approval'`); n != 0 {
		t.Errorf("%d posts' state disagrees with their columns", n)
	}
	// Times: created over months, scheduled ones in the future, published
	// ones in the past after their creation.
	if d := scalar[float64](t, pool, `SELECT extract(epoch FROM max(created_at) - min(created_at)) / 86400 FROM posts`); d < 180 {
		t.Errorf("posts created over %.0f days, want months", d)
	}
	if n := scalar[int](t, pool, `SELECT count(*) FROM posts WHERE status = 'scheduled' AND scheduled_at <= now()`); n != 0 {
		t.Errorf("%d scheduled posts are scheduled in the past", n)
	}
	if n := scalar[int](t, pool, `SELECT count(*) FROM posts WHERE status = 'published'
		AND (published_at IS NULL OR published_at > now() OR published_at < created_at OR external_url IS NULL)`); n != 0 {
		t.Errorf("%d published posts have no or an impossible publication", n)
	}
	// Ids sort by creation, as the store's UUIDv7 do.
	if n := scalar[int](t, pool, `SELECT count(*) FROM (SELECT created_at, lag(created_at) OVER (ORDER BY id) prev FROM posts) x
		WHERE prev > created_at + interval '1 millisecond'`); n != 0 {
		t.Errorf("%d posts' ids do not follow their creation time", n)
	}
	// Events for a sample, in order, starting with the submission.
	with := scalar[int](t, pool, `SELECT count(DISTINCT post_id) FROM post_events`)
	if with < 100 || with > 300 || with != res.WithEvents {
		t.Errorf("%d posts have events (reported %d), want about 10%% of 2000", with, res.WithEvents)
	}
	if n := scalar[int](t, pool, `SELECT count(*) FROM post_events WHERE seq = 1 AND type <> 'submitted'`); n != 0 {
		t.Errorf("%d audit logs do not start with the submission", n)
	}
}

// TestSeededListsThroughTheAPI reads the seeded posts back through the real
// API over HTTP: every filter and the cursor pagination return exactly the
// rows the database holds, newest first.
func TestSeededListsThroughTheAPI(t *testing.T) {
	dbURL, pool, res := seedSmall(t)
	ctx := context.Background()
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	p, err := pickParams(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if p.org != res.Largest || p.orgPosts != res.LargestPosts {
		t.Fatalf("bench picks org %s (%d posts), the seed says the largest is %s (%d)", p.org, p.orgPosts, res.Largest, res.LargestPosts)
	}
	owner, err := st.CreateAPIToken(ctx, p.ownerUser, "test")
	if err != nil {
		t.Fatal(err)
	}
	approver, err := st.CreateAPIToken(ctx, p.approverUser, "test")
	if err != nil {
		t.Fatal(err)
	}
	apiURL, stop, err := serveLoopback(server.New(server.Deps{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)

	// walk follows next_cursor to the end and returns the ids in order.
	walk := func(token, path string, q url.Values) []string {
		t.Helper()
		var got []string
		for pages := 0; ; pages++ {
			req, _ := http.NewRequest(http.MethodGet, apiURL+"/v1/orgs/"+p.org+path+"?"+q.Encode(), nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				Items []struct {
					ID, OrgID string
					Status    string `json:"status"`
				} `json:"items"`
				NextCursor *string `json:"next_cursor"`
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s?%s: HTTP %d, %v", path, q.Encode(), resp.StatusCode, err)
			}
			for _, it := range body.Items {
				got = append(got, it.ID)
			}
			if body.NextCursor == nil {
				return got
			}
			if pages > 1000 {
				t.Fatal("pagination does not end")
			}
			q.Set("cursor", *body.NextCursor)
		}
	}
	check := func(name string, got, want []string) {
		t.Helper()
		if len(want) == 0 {
			t.Fatalf("%s: nothing seeded to list", name)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: the API listed %d posts, the database holds %d (first difference at %d)", name, len(got), len(want),
				firstDiff(got, want))
		}
	}
	check("all posts", walk(owner.Token, "/posts", url.Values{"limit": {"200"}}),
		ids(t, pool, `SELECT id::text FROM posts WHERE org_id = $1 ORDER BY id DESC`, p.org))
	for _, s := range []cs.PostStatus{cs.PostPendingApproval, cs.PostPublished} {
		check("status="+string(s), walk(owner.Token, "/posts", url.Values{"status": {string(s)}, "limit": {"13"}}),
			ids(t, pool, `SELECT id::text FROM posts WHERE org_id = $1 AND status = $2 ORDER BY id DESC`, p.org, string(s)))
	}
	check("account_id", walk(owner.Token, "/posts", url.Values{"account_id": {p.accounts[0]}, "limit": {"17"}}),
		ids(t, pool, `SELECT id::text FROM posts WHERE org_id = $1 AND account_id = $2 ORDER BY id DESC`, p.org, p.accounts[0]))
	check("author_id", walk(owner.Token, "/posts", url.Values{"author_id": {p.authors[0]}, "limit": {"11"}}),
		ids(t, pool, `SELECT id::text FROM posts WHERE org_id = $1 AND author_id = $2 ORDER BY id DESC`, p.org, p.authors[0]))
	check("status and account_id", walk(owner.Token, "/posts", url.Values{"status": {"published"}, "account_id": {p.accounts[0]}}),
		ids(t, pool, `SELECT id::text FROM posts WHERE org_id = $1 AND account_id = $2 AND status = 'published' ORDER BY id DESC`, p.org, p.accounts[0]))
	check("approvals", walk(approver.Token, "/approvals", url.Values{"limit": {"3"}}),
		ids(t, pool, `SELECT id::text FROM posts WHERE org_id = $1 AND status = 'pending_approval' AND $2 = ANY (awaiting) ORDER BY id DESC`,
			p.org, p.approver))
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestSeededQueriesUseIndexes EXPLAINs every statement the bench measures
// and requires an index on posts for each: no Seq Scan on posts. On 2,000
// posts the planner rightly prefers scanning the table, so the test turns
// sequential scans off (enable_seqscan = off): a plan that still scans
// posts has no index it could use.
func TestSeededQueriesUseIndexes(t *testing.T) {
	_, pool, _ := seedSmall(t)
	ctx := context.Background()
	p, err := pickParams(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	plans, err := explain(ctx, conn, explainTargets(p))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range plans {
		t.Logf("%s:\n%s", e.Case, e.Plan)
		if strings.Contains(e.Plan, "Seq Scan on posts") {
			t.Errorf("%s scans the whole posts table:\n%s", e.Case, e.Plan)
		}
		if e.Case == "metrics scrape" {
			if strings.Contains(e.Plan, " on posts") {
				t.Errorf("the metrics scrape reads posts:\n%s", e.Plan)
			}
		} else if !strings.Contains(e.Plan, "Index") {
			t.Errorf("%s uses no index:\n%s", e.Case, e.Plan)
		}
	}
}

// TestSeedTimedMigrations seeds a new database between migrations 00003 and
// 00004 and applies the later ones on it: each is timed, and the seeded
// posts are counted by 00009's backfill.
func TestSeedTimedMigrations(t *testing.T) {
	ctx := context.Background()
	res, timings, dbURL := func() (*SeedResult, []MigrationTiming, string) {
		u, seed, ts, err := SeedTimed(ctx, testenv.Postgres(t), SeedOptions{Posts: 500, Orgs: 3, Progress: testWriter{t}})
		if err != nil {
			t.Fatal(err)
		}
		return seed, ts, u
	}()
	PrintMigrations(os.Stdout, timings)
	if res.Posts != 500 || len(timings) < 9 {
		t.Fatalf("seeded %d posts, timed %d migrations", res.Posts, len(timings))
	}
	for _, m := range timings {
		if (m.Version > 3) != (m.Posts == 500) || m.Took <= 0 {
			t.Errorf("migration %s ran on %d posts in %s", m.Name, m.Posts, m.Took)
		}
	}
	t.Cleanup(func() { // on a TEST_DATABASE_URL server, leave nothing behind
		admin, _ := pgserver.DatabaseURL(dbURL, "postgres")
		if c, err := pgx.Connect(ctx, admin); err == nil {
			u, _ := url.Parse(dbURL)
			name := strings.TrimPrefix(u.Path, "/")
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if n := scalar[int](t, pool, `SELECT sum(n)::int FROM post_counts`); n != 500 {
		t.Errorf("post_counts backfilled %d posts, want 500", n)
	}
}

// TestQueriesSmall runs `bench queries` on a small seeded database: every
// case answers, and --explain prints a plan for each statement.
func TestQueriesSmall(t *testing.T) {
	dbURL, _, _ := seedSmall(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Queries(ctx, QueryOptions{DatabaseURL: dbURL, Calls: 5, Explain: true})
	if err != nil {
		t.Fatal(err)
	}
	res.Print(os.Stdout)
	if len(res.Cases) != 13 || len(res.Explains) != 13 {
		t.Fatalf("%d cases, %d plans", len(res.Cases), len(res.Explains))
	}
	for _, c := range res.Cases {
		if c.Calls == 0 {
			t.Errorf("%s was not measured", c.Name)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Migration 00009 goes down and up again on seeded posts: down brings back
// the old list index and drops the counts; up counts the posts again.
func TestMigration00009DownAndUp(t *testing.T) {
	_, pool, _ := seedSmall(t)
	ctx := context.Background()
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := migrations.Provider(db)
	if err != nil {
		t.Fatal(err)
	}
	// Down to 00008: later migrations go down first.
	if rs, err := p.DownTo(ctx, 8); err != nil || len(rs) == 0 || rs[len(rs)-1].Source.Version != 9 {
		t.Fatalf("down: %v %v", rs, err)
	}
	if n := scalar[int](t, pool, `SELECT count(*) FROM pg_indexes WHERE tablename = 'posts'
		AND indexname IN ('posts_org_list_idx', 'posts_org_account_idx', 'posts_open_idx')`); n != 1 {
		t.Errorf("after down, %d of the list index and 00009's indexes exist, want only the list index", n)
	}
	if reg := scalar[*string](t, pool, `SELECT to_regclass('post_counts')::text`); reg != nil {
		t.Error("post_counts survived the down migration")
	}
	if _, err := p.UpByOne(ctx); err != nil {
		t.Fatal(err)
	}
	if n := scalar[int](t, pool, `SELECT sum(n)::int FROM post_counts`); n != 2000 {
		t.Errorf("post_counts counts %d posts after up, want 2000", n)
	}
}
