package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/testenv"
	"github.com/countersign/countersign/server"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newAPI(t *testing.T) (*httptest.Server, *server.Server, server.Deps) {
	t.Helper()
	d := server.Deps{Store: testenv.Store(t), Temporal: testenv.TemporalClient(t), Logger: testenv.Logger(t)}
	s := server.New(d)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts, s, d
}

func call(t *testing.T, method, url, token, body string) (int, http.Header, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: body is not JSON: %s", method, url, raw)
		}
	}
	return resp.StatusCode, resp.Header, out
}

// readyz names the failing check, here the worker, and nothing else: the
// why is for the log (SPEC §8).
func TestReadyzNeedsAPollingWorker(t *testing.T) {
	ts, _, d := newAPI(t)
	code, _, body := call(t, "GET", ts.URL+"/readyz", "", "")
	checks, _ := body["checks"].(map[string]any)
	if code != http.StatusServiceUnavailable || len(checks) != 3 || checks["database"] != "ok" || checks["temporal"] != "ok" ||
		checks["worker"] != "failing" {
		t.Fatalf("without a worker: %d %v", code, body)
	}

	// Any worker polling the countersign task queue makes it ready: readiness
	// asks Temporal who polls, it does not assume.
	w := sdkworker.New(d.Temporal, cs.TaskQueue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(func(workflow.Context) error { return nil }, workflow.RegisterOptions{Name: "ReadinessProbe"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, body = call(t, "GET", ts.URL+"/readyz", "", "")
		if code == http.StatusOK && body["status"] == "ready" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready with a polling worker: %d %v", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	if code, _, _ := call(t, "GET", ts.URL+"/healthz", "", ""); code != http.StatusOK {
		t.Fatalf("healthz: %d", code)
	}
}

func TestMeRequiresAValidToken(t *testing.T) {
	ts, _, d := newAPI(t)
	b, err := d.Store.Bootstrap(context.Background(), "Acme", "ana@acme.test", "Ana")
	if err != nil {
		t.Fatal(err)
	}
	for name, token := range map[string]string{"none": "", "unknown": "cs_nope", "garbage": "a b c"} {
		code, hdr, body := call(t, "GET", ts.URL+"/v1/me", token, "")
		if code != http.StatusUnauthorized || body["code"] != cs.EUNAUTHORIZED || hdr.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s token: %d %v %s", name, code, body, hdr.Get("Content-Type"))
		}
	}
	code, _, body := call(t, "GET", ts.URL+"/v1/me", b.Token, "")
	if code != http.StatusOK {
		t.Fatalf("valid token: %d %v", code, body)
	}
	user := body["user"].(map[string]any)
	ms := body["memberships"].([]any)
	if user["email"] != "ana@acme.test" || len(ms) != 1 || ms[0].(map[string]any)["org_id"] != b.Org.ID ||
		ms[0].(map[string]any)["org_role"] != "owner" {
		t.Fatalf("/v1/me = %v", body)
	}
	raw, _ := json.Marshal(body)
	if bytes.Contains(raw, []byte(b.Token)) {
		t.Fatal("/v1/me echoes the API token")
	}
}

func TestUnknownRoutesAndMethodsAreProblems(t *testing.T) {
	ts, _, _ := newAPI(t)
	if code, hdr, body := call(t, "GET", ts.URL+"/v1/nope", "", ""); code != http.StatusNotFound && code != http.StatusUnauthorized {
		t.Fatalf("unknown route: %d %v %v", code, body, hdr)
	}
	if code, _, body := call(t, "DELETE", ts.URL+"/healthz", "", ""); code != http.StatusMethodNotAllowed || body["code"] != "method_not_allowed" {
		t.Fatalf("wrong method: %d %v", code, body)
	}
}
