package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/cli"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/testenv"
)

// TestLogsCarryPost: the whole deployment (API, worker, Temporal SDK) logs
// JSON through the production logger while a post goes through its three
// approvals and a webhook that fails once; every line that mentions the post
// carries its org, post_id and workflow_id, the SDK's own lines included.
func TestLogsCarryPost(t *testing.T) {
	logs := &jsonLines{}
	tsrv := testenv.Temporal(t)
	e := startEnv(t, map[string]string{
		"DATABASE_URL":       testenv.Postgres(t),
		"TEMPORAL_ADDRESS":   tsrv.Address,
		"TEMPORAL_NAMESPACE": tsrv.Namespace,
	}, cli.NewLogger(config.Config{LogFormat: "json", LogLevel: "debug"}, logs))
	acct := e.setupThreeLevels()

	// The receiver answers 500 twice: the first publish attempt (a local
	// activity) and the first attempt of the Publish activity fail, and the
	// SDK logs the latter ("Activity error.") with only its WorkflowID.
	target, _ := url.Parse(e.hook.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var fails atomic.Int32
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fails.Add(1) <= 2 {
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(flaky.Close)
	// A new URL takes the credentials again (SPEC §8).
	e.must(200, e.owner, "PATCH", e.org("/accounts/"+acct), map[string]any{"settings": map[string]string{"url": flaky.URL},
		"credentials": map[string]string{"secret": e.hook.Secret}}, nil)

	var post cs.Post
	e.must(201, e.members["Ines"].token, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "Logged launch"}, &post)
	e.waitPost(post.ID, "opened step 1", atStep(1))
	e.approve("Maya", post.ID, 1)
	e.waitPost(post.ID, "opened step 2", atStep(2))
	e.approve("Paul", post.ID, 1)
	e.waitPost(post.ID, "opened step 3", atStep(3))
	e.approve("Eddie", post.ID, 1)
	e.waitPost(post.ID, "published", func(p cs.Post) bool { return p.Status == cs.PostPublished })
	if fails.Load() != 3 || e.hook.Count() != 1 {
		t.Fatalf("webhook requests %d (two failed), deliveries %d", fails.Load(), e.hook.Count())
	}
	e.stopWorker() // its last lines are in

	wid := cs.WorkflowID(post.ID)
	var about, sdk, activityError int
	for _, raw := range logs.all() {
		if !strings.Contains(raw, post.ID) {
			continue
		}
		about++
		var l map[string]any
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("not JSON: %s", raw)
		}
		if l["org"] != e.orgID || l["post_id"] != post.ID || l["workflow_id"] != wid {
			t.Errorf("a line about the post lacks its keys: %s", raw)
		}
		for k, n := range topLevelKeys(t, raw) {
			if n > 1 {
				t.Errorf("%s %d times: %s", k, n, raw)
			}
		}
		if l["component"] == "temporal-sdk" && l["WorkflowID"] == wid {
			sdk++
			if l["msg"] == "Activity error." {
				activityError++
			}
		}
	}
	t.Logf("%d lines about the post, %d of them the SDK's", about, sdk)
	if sdk == 0 || activityError == 0 {
		t.Fatalf("the SDK logged %d lines about the post, %d of them the activity error", sdk, activityError)
	}
}

// jsonLines collects what a logger writes, one line per write (slog's
// handlers write each record at once).
type jsonLines struct {
	mu    sync.Mutex
	lines []string
}

func (j *jsonLines) Write(p []byte) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lines = append(j.lines, string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func (j *jsonLines) all() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.lines...)
}

// topLevelKeys counts a JSON object's top-level keys: decoding into a map
// would hide a duplicated key.
func topLevelKeys(t *testing.T, line string) map[string]int {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(line))
	if _, err := d.Token(); err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for d.More() {
		k, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		n[k.(string)]++
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return n
}
