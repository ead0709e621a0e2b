package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/countersign/countersign/internal/blob/dirblob"
	"github.com/countersign/countersign/internal/media"
	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/testenv"
	"github.com/countersign/countersign/server"
)

// env is an API over a fresh database with one org ("Acme") and its owner.
// Every response body and every log line is kept, so tests can check that
// secrets never show up where they should not.
type env struct {
	t     *testing.T
	url   string
	st    *store.Store
	db    *pgx.Conn
	logs  *syncBuffer
	org   string
	owner actor

	mu     sync.Mutex
	bodies []string // every response body, in order
}

// actor is someone calling the API: a member of some org, with a token.
type actor struct {
	name, token, id string
}

var testKey = bytes.Repeat([]byte{42}, 32)

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dbURL := testenv.Postgres(t)
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.SetSecretKey(testKey); err != nil {
		t.Fatal(err)
	}
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("server log:\n" + logs.String())
		}
	})
	blobs, err := dirblob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := server.New(server.Deps{Store: st, Temporal: testenv.TemporalClient(t), Logger: logger,
		Media: &media.Service{Store: st, Blobs: blobs, Logger: logger}})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	b, err := st.Bootstrap(ctx, "Acme", "owner@acme.test", "Olga Owner")
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, url: ts.URL, st: st, db: db, logs: logs, org: b.Org.ID,
		owner: actor{name: "owner", token: b.Token, id: b.Member.ID}}
}

// o is a path under the env's org.
func (e *env) o(path string) string { return "/v1/orgs/" + e.org + path }

// req sends a request; body is JSON unless contentType says otherwise ("-":
// no Content-Type at all).
func (e *env) req(token, method, path, contentType, body string) (int, []byte) {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType == "" && body != "" {
		contentType = "application/json"
	}
	if contentType != "" && contentType != "-" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	e.mu.Lock()
	e.bodies = append(e.bodies, string(raw))
	e.mu.Unlock()
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		e.t.Errorf("%s %s: %d with Content-Type %q, want application/problem+json", method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.StatusCode >= 500 {
		e.t.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, raw
}

// call sends a JSON request and decodes the JSON answer (nil when empty).
func (e *env) call(token, method, path, body string) (int, obj) {
	e.t.Helper()
	code, raw := e.req(token, method, path, "", body)
	return code, decode(e.t, raw)
}

// must is call that fails the test unless the status is want.
func (e *env) must(want int, token, method, path, body string) obj {
	e.t.Helper()
	code, out := e.call(token, method, path, body)
	if code != want {
		e.t.Fatalf("%s %s %s: %d %v, want %d", method, path, body, code, out, want)
	}
	return out
}

// problemOf checks that the answer is a problem with status and code.
func (e *env) problem(wantStatus int, wantCode string, token, method, path, body string) obj {
	e.t.Helper()
	code, out := e.call(token, method, path, body)
	if code != wantStatus || out.s("code") != wantCode {
		e.t.Fatalf("%s %s %s: %d %v, want %d %s", method, path, body, code, out, wantStatus, wantCode)
	}
	return out
}

var serial atomic.Int64

// join invites a new person into the env's org with the role and accepts.
func (e *env) join(name string, role string) actor {
	e.t.Helper()
	email := fmt.Sprintf("%s.%d@acme.test", strings.ReplaceAll(name, " ", "."), serial.Add(1))
	inv := e.must(201, e.owner.token, "POST", e.o("/invitations"),
		fmt.Sprintf(`{"email": %q, "name": %q, "org_role": %q}`, email, name, role))
	acc := e.must(200, "", "POST", "/v1/invitations/"+inv.s("token")+"/accept", "")
	return actor{name: name, token: acc.s("api_token"), id: acc.m("member").s("id")}
}

// team creates a team as the owner and returns its id.
func (e *env) team(name string) string {
	e.t.Helper()
	return e.must(201, e.owner.token, "POST", e.o("/teams"), fmt.Sprintf(`{"name": %q}`, name)).s("id")
}

// addToTeam puts a member in a team as the owner.
func (e *env) addToTeam(team, member, role string) {
	e.t.Helper()
	e.must(200, e.owner.token, "PUT", e.o("/teams/"+team+"/members/"+member), fmt.Sprintf(`{"role": %q}`, role))
}

// account creates a log account as the owner and returns its id.
func (e *env) account(handle string) string {
	e.t.Helper()
	return e.must(201, e.owner.token, "POST", e.o("/accounts"),
		fmt.Sprintf(`{"network": "log", "handle": %q, "timezone": "Europe/Paris"}`, handle)).s("id")
}

// chain creates a one-step chain ("role approvers") as the owner.
func (e *env) chain(name string) string {
	e.t.Helper()
	return e.must(201, e.owner.token, "POST", e.o("/approval-chains"),
		fmt.Sprintf(`{"name": %q, "steps": [{"approver": {"role": "approvers"}}]}`, name)).s("id")
}

// sql runs a statement on the test database.
func (e *env) sql(q string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Exec(context.Background(), q, args...); err != nil {
		e.t.Fatal(err)
	}
}

// count returns a count(*) query's answer.
func (e *env) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// obj is a decoded JSON object with terse accessors.
type obj map[string]any

func decode(t *testing.T, raw []byte) obj {
	t.Helper()
	if len(raw) == 0 {
		return nil
	}
	var out obj
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("body is not a JSON object: %s", raw)
	}
	return out
}

func (o obj) s(k string) string { v, _ := o[k].(string); return v }
func (o obj) m(k string) obj    { v, _ := o[k].(map[string]any); return v }
func (o obj) list(k string) []obj {
	var out []obj
	for _, v := range o[k].([]any) {
		out = append(out, v.(map[string]any))
	}
	return out
}

// fields lists the field names of a problem's errors.
func (o obj) fields() []string {
	var out []string
	if errs, ok := o["errors"].([]any); ok {
		for _, f := range errs {
			out = append(out, f.(map[string]any)["field"].(string))
		}
	}
	return out
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
