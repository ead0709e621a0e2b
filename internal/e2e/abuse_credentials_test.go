package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/publish/fakenet"
	"github.com/countersign/countersign/internal/testenv"
)

// Abuse cases of SPEC §8 "Credentials are bound to where they were entered"
// and "Outbound calls". Every server here listens on loopback, which the
// test deployment allows (startEnv); addresses that must be refused are
// refused before any connection is attempted.

// trap is a server an attacker controls: it records every request that
// reaches it (and every connection, even one that never sends a request).
type trap struct {
	srv   *httptest.Server
	mu    sync.Mutex
	conns int
	reqs  []string // "METHOD /path Authorization"
}

func newTrap(t *testing.T) *trap {
	tr := &trap{}
	tr.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.mu.Lock()
		tr.reqs = append(tr.reqs, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		tr.mu.Unlock()
		http.Error(w, "captured", http.StatusTeapot)
	}))
	tr.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			tr.mu.Lock()
			tr.conns++
			tr.mu.Unlock()
		}
	}
	tr.srv.Start()
	t.Cleanup(tr.srv.Close)
	return tr
}

func (tr *trap) caught() (int, []string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.conns, append([]string(nil), tr.reqs...)
}

// accountState is what an admin reads of an account.
func (e *env) accountState(id string) map[string]any {
	e.t.Helper()
	var a map[string]any
	e.must(200, e.owner, "GET", e.org("/accounts/"+id), nil, &a)
	return a
}

func (e *env) createAccount(network, handle string, settings, creds map[string]string) string {
	e.t.Helper()
	var a struct{ ID string }
	e.must(201, e.owner, "POST", e.org("/accounts"), map[string]any{"network": network, "handle": handle,
		"timezone": "Europe/Paris", "settings": settings, "credentials": creds}, &a)
	return a.ID
}

// problemFields is the answer's status and the fields its problem names.
func (e *env) problemFields(method, path string, body any) (int, []string) {
	e.t.Helper()
	var p struct {
		Errors []struct{ Field string } `json:"errors"`
	}
	code := e.do(e.owner, method, path, body, &p)
	var fields []string
	for _, f := range p.Errors {
		fields = append(fields, f.Field)
	}
	return code, fields
}

// publishNow submits a post as the owner (who publishes without approval)
// and waits for it to end.
func (e *env) publishNow(acct, text string) cs.Post {
	e.t.Helper()
	var post cs.Post
	e.must(201, e.owner, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": text}, &post)
	return e.waitPost(post.ID, "published or failed", func(p cs.Post) bool {
		return p.Status == cs.PostPublished || p.Status == cs.PostFailed || p.Status == cs.PostNeedsAttention
	})
}

// repoint is one credentialed network whose URL an admin tries to move.
type repoint struct {
	network, key string
	settings     func() map[string]string // the legitimate destination
	creds        map[string]string
	published    func() int // posts the legitimate destination received
}

// checkRepointRefused: moving the account's URL to the trap without
// resending credentials is 422 naming credentials; the account is as it was;
// the next post goes to the legitimate destination and the trap gets
// nothing.
func checkRepointRefused(e *env, r repoint, handle string) {
	t := e.t
	tr := newTrap(t)
	acct := e.createAccount(r.network, handle, r.settings(), r.creds)
	before := e.accountState(acct)
	code, fields := e.problemFields("PATCH", e.org("/accounts/"+acct), map[string]any{
		"settings": map[string]string{r.key: tr.srv.URL}})
	if code != 422 || !containsField(fields, "credentials") {
		t.Errorf("%s: PATCH %s to the trap without credentials: %d %v, want 422 naming credentials", r.network, r.key, code, fields)
	}
	// Nor may a second, harmless-looking field carry the change through.
	code, _ = e.problemFields("PATCH", e.org("/accounts/"+acct), map[string]any{
		"display_name": "Renamed", "settings": map[string]string{r.key: tr.srv.URL + "/"}})
	if code != 422 {
		t.Errorf("%s: PATCH with another field: %d, want 422", r.network, code)
	}
	if after := e.accountState(acct); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("%s: a refused change changed the account:\n%v\n%v", r.network, before, after)
	}
	p := e.publishNow(acct, "Still going where it should, via "+r.network)
	if p.Status != cs.PostPublished || r.published() != 1 {
		t.Errorf("%s: post %s (%q), %d at the legitimate destination", r.network, p.Status, p.LastError, r.published())
	}
	if conns, reqs := tr.caught(); conns != 0 || len(reqs) != 0 {
		t.Errorf("%s: the trap got %d connections: %q", r.network, conns, reqs)
	}
}

// serial runs one deployment at a time. Deployments under test share the
// in-process Temporal server and its task queue, so two running at once
// pick up each other's activity tasks (against the wrong database: "mirror
// post …: no rows in result set"), and posts stall. TestAbuse runs its cases
// in parallel; these take turns.
func serial(run func(t *testing.T)) func(t *testing.T) {
	return func(t *testing.T) {
		serialMu.Lock()
		t.Cleanup(serialMu.Unlock) // registered first, so it runs after the deployment stopped
		run(t)
	}
}

var serialMu sync.Mutex

func containsField(fields []string, want string) bool {
	for _, f := range fields {
		if f == want || strings.HasPrefix(f, want+".") {
			return true
		}
	}
	return false
}

func init() {
	addAbuse(abuseCase{
		Attacker: "admin", Attack: "re-points a Mastodon account's instance_url without resending credentials", Spec: "§8 Credentials",
		Run: serial(func(t *testing.T) {
			e := newEnv(t)
			e.pubBootstrap()
			m := fakenet.NewMastodon("mastodon-secret-token")
			t.Cleanup(m.Close)
			checkRepointRefused(e, repoint{network: "mastodon", key: "instance_url",
				settings: func() map[string]string { return map[string]string{"instance_url": m.URL} },
				creds:    map[string]string{"access_token": "mastodon-secret-token"}, published: m.Count}, "acme")
		}),
	}, abuseCase{
		Attacker: "admin", Attack: "re-points a Bluesky, X or webhook account's URL without resending credentials", Spec: "§8 Credentials",
		Run: serial(func(t *testing.T) {
			e := newEnv(t)
			e.pubBootstrap()
			b := fakenet.NewBluesky("acme.bsky.social", "app-pass-word")
			x := fakenet.NewX("x-access", "x-refresh", "x-client", "x-secret")
			t.Cleanup(b.Close)
			t.Cleanup(x.Close)
			for _, r := range []repoint{
				{network: "bluesky", key: "pds_url", settings: func() map[string]string { return map[string]string{"pds_url": b.URL} },
					creds: map[string]string{"identifier": "acme.bsky.social", "app_password": "app-pass-word"}, published: b.Count},
				{network: "x", key: "api_url", settings: func() map[string]string { return map[string]string{"api_url": x.URL} },
					creds:     map[string]string{"access_token": "x-access", "refresh_token": "x-refresh", "client_id": "x-client", "client_secret": "x-secret"},
					published: x.Count},
				{network: "webhook", key: "url", settings: func() map[string]string { return map[string]string{"url": e.hook.URL} },
					creds: map[string]string{"secret": e.hook.Secret}, published: e.hook.Count},
			} {
				checkRepointRefused(e, r, "acme-"+r.network)
			}
		}),
	}, abuseCase{
		Attacker: "admin", Attack: "sets an http:// URL on a credentialed network", Spec: "§8 Credentials",
		Run: serial(func(t *testing.T) {
			e := newEnv(t)
			e.pubBootstrap()
			for _, c := range []struct {
				network, key string
				creds        map[string]string
			}{
				{"mastodon", "instance_url", map[string]string{"access_token": "tok"}},
				{"bluesky", "pds_url", map[string]string{"identifier": "a.test", "app_password": "pw"}},
				{"x", "api_url", map[string]string{"access_token": "tok"}},
				{"webhook", "url", map[string]string{"secret": e.hook.Secret}},
			} {
				code, fields := e.problemFields("POST", e.org("/accounts"), map[string]any{"network": c.network, "handle": "plain-" + c.network,
					"timezone": "UTC", "settings": map[string]string{c.key: "http://example.test"}, "credentials": c.creds})
				if code != 422 || !containsField(fields, "settings."+c.key) {
					t.Errorf("%s over http: %d %v, want 422 naming settings.%s", c.network, code, fields, c.key)
				}
			}
			// An existing account cannot be moved to http either, even with
			// its credentials sent again.
			acct := e.createAccount("webhook", "hook", map[string]string{"url": "https://hooks.acme.test/in"}, map[string]string{"secret": e.hook.Secret})
			before := e.accountState(acct)
			code, fields := e.problemFields("PATCH", e.org("/accounts/"+acct), map[string]any{
				"settings": map[string]string{"url": "http://example.test/in"}, "credentials": map[string]string{"secret": e.hook.Secret}})
			if code != 422 || !containsField(fields, "settings.url") {
				t.Errorf("PATCH to http: %d %v, want 422 naming settings.url", code, fields)
			}
			if after := e.accountState(acct); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("a refused change changed the account:\n%v\n%v", before, after)
			}
			var list struct{ Items []any }
			e.must(200, e.owner, "GET", e.org("/accounts"), nil, &list)
			if len(list.Items) != 1 {
				t.Errorf("%d accounts exist, want only the one created legitimately", len(list.Items))
			}
		}),
	}, abuseCase{
		Attacker: "admin", Attack: "points an account at a private, loopback or metadata address", Spec: "§8 Outbound calls",
		Run: serial(func(t *testing.T) {
			// A deployment that does not allow loopback (one deployment per
			// case: deployments share Temporal's task queue).
			tsrv := testenv.Temporal(t)
			e := startEnv(t, map[string]string{
				"DATABASE_URL":             testenv.Postgres(t),
				"TEMPORAL_ADDRESS":         tsrv.Address,
				"TEMPORAL_NAMESPACE":       tsrv.Namespace,
				"COUNTERSIGN_EGRESS_ALLOW": "",
			}, testenv.Logger(t))
			e.pubBootstrap()
			// Address literals are refused when saved.
			for _, u := range []string{"https://169.254.169.254/latest/meta-data/", "https://10.0.0.1/hook", "https://[fd00:ec2::254]/",
				"https://100.100.100.200/", "https://192.168.1.1:8443/x", "https://127.0.0.1:8443/x"} {
				code, fields := e.problemFields("POST", e.org("/accounts"), map[string]any{"network": "webhook", "handle": "meta",
					"timezone": "UTC", "settings": map[string]string{"url": u}, "credentials": map[string]string{"secret": e.hook.Secret}})
				if code != 422 || !containsField(fields, "settings.url") {
					t.Errorf("%s: %d %v, want 422 naming settings.url", u, code, fields)
				}
			}
			// A name is checked where it resolves, when the post is
			// published: "localhost" is refused before any connection.
			tr := newTrap(t)
			port := tr.srv.Listener.Addr().(*net.TCPAddr).Port
			acct := e.createAccount("webhook", "local", map[string]string{"url": fmt.Sprintf("https://localhost:%d/hook", port)},
				map[string]string{"secret": e.hook.Secret})
			p := e.publishNow(acct, "to loopback")
			if p.Status != cs.PostFailed || !strings.Contains(p.LastError, "loopback") || len(p.LastError) > 200 {
				t.Errorf("post to localhost: %s %q, want failed with a short reason naming loopback", p.Status, p.LastError)
			}
			if conns, reqs := tr.caught(); conns != 0 {
				t.Errorf("the loopback server got %d connections (%q)", conns, reqs)
			}
		}),
	}, abuseCase{
		Attacker: "database editor", Attack: "moves sealed credentials to another URL", Spec: "§8 Credentials",
		Run: serial(func(t *testing.T) {
			e := newEnv(t)
			e.pubBootstrap()
			m := fakenet.NewMastodon("mastodon-secret-token")
			t.Cleanup(m.Close)
			tr := newTrap(t)
			acct := e.createAccount("mastodon", "acme", map[string]string{"instance_url": m.URL}, map[string]string{"access_token": "mastodon-secret-token"})
			other := e.createAccount("mastodon", "other", map[string]string{"instance_url": tr.srv.URL}, map[string]string{"access_token": "other-token"})
			ctx := context.Background()
			db, err := pgx.Connect(ctx, e.app.Config.DatabaseURL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close(ctx)
			// Behind the API: point the account at the trap; and copy its
			// sealed credentials onto another account that points there.
			if _, err := db.Exec(ctx, `UPDATE accounts SET settings = jsonb_build_object('instance_url', $2::text) WHERE id = $1`, acct, tr.srv.URL); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(ctx, `UPDATE accounts o SET credentials = a.credentials FROM accounts a WHERE a.id = $1 AND o.id = $2`, acct, other); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{acct, other} {
				p := e.publishNow(id, "leak?")
				if p.Status != cs.PostFailed || !strings.Contains(p.LastError, "credentials") || strings.Contains(p.LastError, "mastodon-secret-token") {
					t.Errorf("post on %s: %s %q, want failed naming the credentials", id, p.Status, p.LastError)
				}
			}
			if conns, reqs := tr.caught(); conns != 0 {
				t.Errorf("the trap got %d connections: %q", conns, reqs)
			}
			if m.Count() != 0 {
				t.Errorf("the instance got %d statuses", m.Count())
			}
		}),
	}, abuseCase{
		Attacker: "network", Attack: "answers with huge bodies, headers and a foreign external URL", Spec: "§8 Outbound calls",
		Run: serial(func(t *testing.T) {
			e := newEnv(t)
			e.pubBootstrap()
			const marker = "SECRET-HEADER-VALUE"
			huge := strings.Repeat("A", 300_000)
			var host string
			hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Internal", marker+strings.Repeat("h", 4000))
				switch strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ") {
				case "tok-huge-body":
					w.WriteHeader(422)
					_ = json.NewEncoder(w).Encode(map[string]string{"error": "Validation failed: " + huge})
				case "tok-raw-body":
					w.WriteHeader(400)
					_, _ = fmt.Fprintf(w, "<html>%s %s</html>", marker, huge)
				case "tok-redirect":
					w.Header().Set("Location", "https://evil.test/"+marker)
					w.WriteHeader(302)
				case "tok-foreign-url":
					_, _ = fmt.Fprintf(w, `{"id":"1","url":"https://evil.test/phish"}`)
				case "tok-script-url":
					_, _ = fmt.Fprintf(w, `{"id":"2","url":"javascript:alert(1)"}`)
				case "tok-own-url":
					_, _ = fmt.Fprintf(w, `{"id":"3","url":"http://%s/@acme/3"}`, host)
				}
			}))
			t.Cleanup(hostile.Close)
			host = hostile.Listener.Addr().String()
			for _, tok := range []string{"tok-huge-body", "tok-raw-body", "tok-redirect"} {
				acct := e.createAccount("mastodon", tok, map[string]string{"instance_url": hostile.URL}, map[string]string{"access_token": tok})
				p := e.publishNow(acct, "hello "+tok)
				var detail string
				for _, ev := range p.Events {
					detail += ev.Detail
				}
				if p.Status != cs.PostFailed || len(p.LastError) > 200 || p.LastError == "" ||
					strings.Contains(p.LastError+detail, marker) || strings.Contains(p.LastError+detail, "hhhhhhhh") || strings.Contains(detail, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") {
					t.Errorf("%s: %s, last_error (%d chars) %q", tok, p.Status, len(p.LastError), p.LastError)
				}
			}
			for tok, want := range map[string]string{"tok-foreign-url": "", "tok-script-url": "", "tok-own-url": "http://" + host + "/@acme/3"} {
				acct := e.createAccount("mastodon", tok, map[string]string{"instance_url": hostile.URL}, map[string]string{"access_token": tok})
				p := e.publishNow(acct, "hello "+tok)
				if p.Status != cs.PostPublished || p.ExternalURL != want {
					t.Errorf("%s: %s, external_url %q, want %q", tok, p.Status, p.ExternalURL, want)
				}
			}
		}),
	}, abuseCase{
		Attacker: "admin", Attack: "saves a URL with a query, fragment or user info", Spec: "§8 Outbound calls",
		Run: serial(func(t *testing.T) {
			e := newEnv(t)
			e.pubBootstrap()
			acct := e.createAccount("mastodon", "acme", map[string]string{"instance_url": "https://social.acme.test"}, map[string]string{"access_token": "tok"})
			before := e.accountState(acct)
			for _, u := range []string{"https://social.acme.test/?redirect=https://evil.test", "https://social.acme.test/#x",
				"https://admin:hunter2@social.acme.test", "https://social.acme.test?"} {
				code, fields := e.problemFields("POST", e.org("/accounts"), map[string]any{"network": "mastodon", "handle": "new",
					"timezone": "UTC", "settings": map[string]string{"instance_url": u}, "credentials": map[string]string{"access_token": "tok"}})
				if code != 422 || !containsField(fields, "settings.instance_url") {
					t.Errorf("create with %s: %d %v, want 422 naming settings.instance_url", u, code, fields)
				}
				code, fields = e.problemFields("PATCH", e.org("/accounts/"+acct), map[string]any{
					"settings": map[string]string{"instance_url": u}, "credentials": map[string]string{"access_token": "tok"}})
				if code != 422 || !containsField(fields, "settings.instance_url") {
					t.Errorf("patch to %s: %d %v, want 422 naming settings.instance_url", u, code, fields)
				}
			}
			if after := e.accountState(acct); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("a refused change changed the account:\n%v\n%v", before, after)
			}
		}),
	})
}
