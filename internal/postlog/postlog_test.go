package postlog_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/postlog"
)

// capture returns a logger through a Handler over JSON and a function
// returning the logged lines, decoded.
func capture(t *testing.T, orgs *postlog.Orgs) (*slog.Logger, func() []map[string]any) {
	var buf bytes.Buffer
	l := slog.New(postlog.NewHandler(slog.NewJSONHandler(&buf, nil), orgs))
	return l, func() []map[string]any {
		var out []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			if line == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			for k, n := range topKeys(t, line) {
				if n > 1 {
					t.Errorf("%s %d times: %s", k, n, line)
				}
			}
			out = append(out, m)
		}
		return out
	}
}

// topKeys counts a JSON object's top-level keys: a map would hide duplicates.
func topKeys(t *testing.T, line string) map[string]int {
	d := json.NewDecoder(strings.NewReader(line))
	if _, err := d.Token(); err != nil { // {
		t.Fatal(err)
	}
	n := map[string]int{}
	for d.More() {
		k, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		n[k.(string)]++
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func want(t *testing.T, line map[string]any, kv ...string) {
	t.Helper()
	for i := 0; i < len(kv); i += 2 {
		if got, _ := line[kv[i]].(string); got != kv[i+1] {
			t.Errorf("%s = %q, want %q in %v", kv[i], got, kv[i+1], line)
		}
	}
}

func TestHandlerAddsPostKeys(t *testing.T) {
	orgs := postlog.NewOrgs(10)
	orgs.Remember("post-p1", "o1")
	l, lines := capture(t, orgs)

	l.Info("Activity error.", "WorkflowID", "post-p1", "ActivityType", "Publish") // the SDK's
	l.Info("from a post route", "post_id", "p1")
	l.Info("already complete", "org", "o1", "post_id", "p1", "workflow_id", "post-p1", "WorkflowID", "post-p1")
	l.Info("org unknown", "WorkflowID", "post-p2")
	l.Info("not a post", "WorkflowID", "baseline-1")
	l.Info("not a post either", "workflow_id", "reconcile")
	l.Info("nothing about a post")

	got := lines()
	want(t, got[0], "org", "o1", "post_id", "p1", "workflow_id", "post-p1", "WorkflowID", "post-p1")
	want(t, got[1], "org", "o1", "post_id", "p1", "workflow_id", "post-p1")
	want(t, got[2], "org", "o1", "post_id", "p1", "workflow_id", "post-p1")
	want(t, got[3], "post_id", "p2", "workflow_id", "post-p2")
	if _, ok := got[3]["org"]; ok {
		t.Errorf("an org for an unknown workflow: %v", got[3])
	}
	for _, line := range got[4:] {
		for _, k := range []string{"org", "post_id"} {
			if _, ok := line[k]; ok {
				t.Errorf("%s added to %v", k, line)
			}
		}
	}
	if _, ok := got[4]["workflow_id"]; ok {
		t.Errorf("workflow_id added for another workflow: %v", got[4])
	}
}

// TestHandlerWithAttrs: the SDK binds WorkflowID with With, before the
// interceptor has told Orgs the org; the org is found when the line is logged.
func TestHandlerWithAttrs(t *testing.T) {
	orgs := postlog.NewOrgs(10)
	l, lines := capture(t, orgs)
	sdk := l.With("WorkflowType", "PostWorkflow", "WorkflowID", "post-p1", "RunID", "r1")
	orgs.Remember("post-p1", "o1")
	sdk.Warn("Workflow panic")
	sdk.With("org", "o1", "post_id", "p1", "workflow_id", "post-p1").Info("from workflow.GetLogger", "step", 2)
	l.With("workflow_id", "post-p1").With("post_id", "p1").Info("split over two With")
	l.With("WorkflowID", "other").Info("not a post", "x", 1)

	got := lines()
	want(t, got[0], "org", "o1", "post_id", "p1", "workflow_id", "post-p1")
	want(t, got[1], "org", "o1", "post_id", "p1", "workflow_id", "post-p1")
	want(t, got[2], "org", "o1", "post_id", "p1", "workflow_id", "post-p1")
	if _, ok := got[3]["post_id"]; ok {
		t.Errorf("post_id added for another workflow: %v", got[3])
	}
}

func TestHandlerGroups(t *testing.T) {
	orgs := postlog.NewOrgs(10)
	orgs.Remember("post-p1", "o1")
	l, lines := capture(t, orgs)

	// The keys go before the group, at the top level.
	l.With("WorkflowID", "post-p1").WithGroup("req").Info("grouped", "post_id", "ignored")
	// An empty-keyed group is inlined, so its keys count.
	l.Info("inline", slog.Group("", "WorkflowID", "post-p1", "org", "o1"))
	// A named group's keys do not name the line's post.
	l.Info("nested", slog.Group("child", "WorkflowID", "post-p1"))

	got := lines()
	want(t, got[0], "org", "o1", "post_id", "p1", "workflow_id", "post-p1")
	if g, _ := got[0]["req"].(map[string]any); g["post_id"] != "ignored" {
		t.Errorf("group: %v", got[0])
	}
	want(t, got[1], "org", "o1", "post_id", "p1", "workflow_id", "post-p1")
	if _, ok := got[2]["post_id"]; ok {
		t.Errorf("a nested group's WorkflowID named the line's post: %v", got[2])
	}
}

// TestHandlerKeepsRecord: adding keys must not change the caller's record.
func TestHandlerKeepsRecord(t *testing.T) {
	var a, b bytes.Buffer
	h := postlog.NewHandler(slog.NewJSONHandler(&a, nil), postlog.NewOrgs(10))
	r := slog.NewRecord(testTime, slog.LevelInfo, "m", 0)
	r.AddAttrs(slog.String("WorkflowID", "post-p1"))
	if err := h.Handle(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	if err := slog.NewJSONHandler(&b, nil).Handle(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "post_id") || !strings.Contains(a.String(), `"post_id":"p1"`) {
		t.Fatalf("wrapped %s, record after %s", a.String(), b.String())
	}
}

func TestOrgsBounded(t *testing.T) {
	o := postlog.NewOrgs(4)
	o.Remember("post-keep", "o")
	for i := range 100 {
		o.Remember(fmt.Sprintf("post-%d", i), "o")
		if o.Org("post-keep") != "o" { // used: survives rotations
			t.Fatalf("a workflow in use was forgotten after %d others", i)
		}
	}
	if o.Org("post-0") != "" {
		t.Fatal("an unused old workflow is still remembered")
	}
	n := 0
	for i := range 100 {
		if o.Org(fmt.Sprintf("post-%d", i)) != "" {
			n++
		}
	}
	if n > 4 {
		t.Fatalf("%d remembered, bound is 4", n)
	}
}

func TestOrgsConcurrent(t *testing.T) {
	o := postlog.NewOrgs(64)
	l, _ := capture(t, o)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				id := fmt.Sprintf("post-%d-%d", g, i%20)
				o.Remember(id, "o")
				l.Info("x", "WorkflowID", id)
			}
		})
	}
	wg.Wait()
}

var testTime = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
