package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/testenv"
)

// Abuse cases of SPEC §8 "A manager" and "Unauthenticated endpoints".

func init() {
	addAbuse(
		abuseCase{
			Attacker: "manager (custom manage)", Attack: "grants themselves advanced", Spec: "§8 A manager",
			Run: func(t *testing.T) {
				e, acct := surfaceOrg(t)
				mgr := e.invite("Max", "member")
				e.surfaceGrant(acct, surfaceG(mgr.memberID, "", "custom", "with_approval", false, true))
				before := e.surfaceGrants(acct)
				e.surfaceRefused(mgr.token, acct, "own_grant", surfaceG(mgr.memberID, "", "advanced", "", false, false))
				e.surfaceUnchanged(acct, before)
				// Still with_approval: the post waits for an approver.
				var post cs.Post
				e.must(201, mgr.token, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "Straight out?"}, &post)
				if post.Status != cs.PostPendingApproval {
					t.Fatalf("the manager's post is %s, want %s", post.Status, cs.PostPendingApproval)
				}
			},
		},
		abuseCase{
			Attacker: "manager (custom manage)", Attack: "grants a colleague a level above their own", Spec: "§8 A manager",
			Run: func(t *testing.T) {
				e, acct := surfaceOrg(t)
				mgr, col := e.invite("Max", "member"), e.invite("Cole", "member")
				own := surfaceG(mgr.memberID, "", "custom", "with_approval", false, true)
				e.surfaceGrant(acct, own)
				before := e.surfaceGrants(acct)
				for _, g := range []map[string]any{
					surfaceG(col.memberID, "", "editor", "", false, false),
					surfaceG(col.memberID, "", "advanced", "", false, false),
					surfaceG(col.memberID, "", "custom", "direct", false, false),
					surfaceG(col.memberID, "", "custom", "none", true, false),
				} {
					e.surfaceRefused(mgr.token, acct, "grant_above_own_right", own, g)
				}
				e.surfaceUnchanged(acct, before)
				// Within their own right it works: limited is below custom manage + with_approval.
				e.must(200, mgr.token, "PUT", e.org("/accounts/"+acct+"/permissions"), map[string]any{"grants": []map[string]any{
					own, surfaceG(col.memberID, "", "limited", "", false, false)}}, nil)
			},
		},
		abuseCase{
			Attacker: "manager (advanced)", Attack: "changes or removes their own grant", Spec: "§8 A manager",
			Run: func(t *testing.T) {
				e, acct := surfaceOrg(t)
				mgr, col := e.invite("Max", "member"), e.invite("Cole", "member")
				e.surfaceGrant(acct, surfaceG(mgr.memberID, "", "advanced", "", false, false), surfaceG(col.memberID, "", "limited", "", false, false))
				before := e.surfaceGrants(acct)
				colOnly := surfaceG(col.memberID, "", "limited", "", false, false)
				e.surfaceRefused(mgr.token, acct, "own_grant", colOnly)                                                          // dropped by the replacement
				e.surfaceRefused(mgr.token, acct, "own_grant", surfaceG(mgr.memberID, "", "limited", "", false, false), colOnly) // lowered
				e.surfaceRefused(mgr.token, acct, "own_grant", surfaceG(mgr.memberID, "", "custom", "direct", true, true), colOnly)
				e.surfaceUnchanged(acct, before)
			},
		},
		abuseCase{
			Attacker: "manager (via team grant)", Attack: "raises their team's grant", Spec: "§8 A manager",
			Run: func(t *testing.T) {
				e, acct := surfaceOrg(t)
				mgr := e.invite("Max", "member")
				var team struct{ ID string }
				e.must(201, e.owner, "POST", e.org("/teams"), map[string]any{"name": "Social"}, &team)
				e.must(200, e.owner, "PUT", e.org("/teams/"+team.ID+"/members/"+mgr.memberID), map[string]any{"role": "member"}, nil)
				e.surfaceGrant(acct, surfaceG("", team.ID, "custom", "with_approval", false, true))
				before := e.surfaceGrants(acct)
				e.surfaceRefused(mgr.token, acct, "own_grant", surfaceG("", team.ID, "advanced", "", false, false))
				// Within their right it is still their own grant (it is how they hold it).
				e.surfaceRefused(mgr.token, acct, "own_grant", surfaceG("", team.ID, "limited", "", false, false))
				e.surfaceUnchanged(acct, before)
			},
		},
		abuseCase{
			Attacker: "anonymous", Attack: "reads /readyz while the database is down", Spec: "§8 Unauthenticated endpoints",
			Run: func(t *testing.T) {
				tsrv := testenv.Temporal(t)
				db, err := url.Parse(testenv.Postgres(t))
				if err != nil {
					t.Fatal(err)
				}
				proxy := newSurfaceProxy(t, db.Host)
				db.Host = proxy.addr
				logs := &faultLogBuffer{max: 2000}
				e := startEnv(t, map[string]string{
					"DATABASE_URL":       db.String(),
					"TEMPORAL_ADDRESS":   tsrv.Address,
					"TEMPORAL_NAMESPACE": tsrv.Namespace,
				}, logs.logger())
				proxy.down()
				// The first read finds pooled connections cut; later ones
				// dial again and are refused: neither reason may show.
				host, port, _ := net.SplitHostPort(proxy.addr)
				for range 3 {
					code, raw := surfaceGet(t, e.api.URL+"/readyz")
					var body struct {
						Status string            `json:"status"`
						Checks map[string]string `json:"checks"`
					}
					if err := json.Unmarshal(raw, &body); err != nil {
						t.Fatalf("readyz: %d %s", code, raw)
					}
					if code != http.StatusServiceUnavailable || body.Status != "not_ready" || body.Checks["database"] != "failing" {
						t.Fatalf("readyz with the database down: %d %s", code, raw)
					}
					for _, secret := range []string{host, port, db.User.Username(), db.Path[1:], "dial", "connect", "refused", "EOF", "tcp"} {
						if strings.Contains(string(raw), secret) {
							t.Fatalf("readyz tells an anonymous caller %q: %s", secret, raw)
						}
					}
					for name, v := range body.Checks {
						if v != "ok" && v != "failing" {
							t.Fatalf("check %s says %q, want ok or failing", name, v)
						}
					}
					time.Sleep(100 * time.Millisecond)
				}
				// The operator still learns why, from the log.
				if tail := logs.tail(2000); !strings.Contains(tail, "readiness check failed") || !strings.Contains(tail, "check=database") {
					t.Errorf("the log does not say why the database check failed:\n%s", tail)
				}
			},
		},
		abuseCase{
			Attacker: "anonymous", Attack: "scrapes /metrics on the public API", Spec: "§8 Unauthenticated endpoints",
			Run: func(t *testing.T) {
				e, acct := surfaceOrg(t)
				e.must(201, e.owner, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "counted"}, nil)
				code, raw := surfaceGet(t, e.api.URL+"/metrics")
				if code != http.StatusNotFound || strings.Contains(string(raw), "countersign_posts") {
					t.Fatalf("GET /metrics on the public API: %d %.300s", code, raw)
				}
				code, raw = surfaceGet(t, e.metrics.URL+"/metrics")
				if code != http.StatusOK || !strings.Contains(string(raw), "countersign_posts{") {
					t.Fatalf("GET /metrics on the metrics listener: %d %.300s", code, raw)
				}
			},
		},
	)
}

// surfaceOrg is a deployment with an org, its owner and a log account.
func surfaceOrg(t *testing.T) (*env, string) {
	e := newEnv(t)
	b, err := e.app.Store.Bootstrap(context.Background(), "Acme", "owner@acme.test", "Olivia Owner")
	if err != nil {
		t.Fatal(err)
	}
	e.orgID, e.owner = b.Org.ID, b.Token
	var acct struct{ ID string }
	e.must(201, e.owner, "POST", e.org("/accounts"), map[string]any{
		"network": "log", "handle": "acme", "display_name": "Acme", "timezone": "UTC"}, &acct)
	return e, acct.ID
}

// surfaceG is one grant as the API takes it; publish set means custom flags.
func surfaceG(member, team, level, publish string, approve, manage bool) map[string]any {
	g := map[string]any{"level": level}
	if member != "" {
		g["member_id"] = member
	} else {
		g["team_id"] = team
	}
	if level == "custom" {
		g["custom"] = map[string]any{"publish": publish, "approve": approve, "manage": manage}
	}
	return g
}

// surfaceGrant sets the account's grants as the owner.
func (e *env) surfaceGrant(acct string, grants ...map[string]any) {
	e.t.Helper()
	e.must(200, e.owner, "PUT", e.org("/accounts/"+acct+"/permissions"), map[string]any{"grants": grants}, nil)
}

// surfaceGrants reads the account's grants as the owner.
func (e *env) surfaceGrants(acct string) string {
	e.t.Helper()
	var raw json.RawMessage
	e.must(200, e.owner, "GET", e.org("/accounts/"+acct+"/permissions"), nil, &raw)
	return string(raw)
}

func (e *env) surfaceUnchanged(acct, before string) {
	e.t.Helper()
	if now := e.surfaceGrants(acct); now != before {
		e.t.Fatalf("grants changed:\nbefore %s\nnow    %s", before, now)
	}
}

// surfaceRefused PUTs grants as token and wants 403 with code and a reason.
func (e *env) surfaceRefused(token, acct, code string, grants ...map[string]any) {
	e.t.Helper()
	var p struct{ Code, Detail string }
	if got := e.do(token, "PUT", e.org("/accounts/"+acct+"/permissions"), map[string]any{"grants": grants}, &p); got != 403 || p.Code != code || p.Detail == "" {
		e.t.Fatalf("PUT grants %v: %d %+v, want 403 %s with a reason", grants, got, p, code)
	}
}

func surfaceGet(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// surfaceProxy forwards loopback TCP to PostgreSQL until down, which closes
// the listener and every connection: the database is then unreachable.
type surfaceProxy struct {
	addr   string
	l      net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func newSurfaceProxy(t *testing.T, target string) *surfaceProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &surfaceProxy{addr: l.Addr().String(), l: l}
	t.Cleanup(p.down)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.closed {
				c.Close()
				u.Close()
			}
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *surfaceProxy) down() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
