package postlog

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/countersign/countersign/workflows"
)

func testWorkflow(ctx workflow.Context, _ workflows.PostInput) error {
	workflow.GetLogger(ctx).Info("workflow line")
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	return workflow.ExecuteActivity(ctx, testActivity).Get(ctx, nil)
}

func testActivity(ctx context.Context) error {
	activity.GetLogger(ctx).Info("activity line")
	return nil
}

// headerSpy records the org header each activity received.
type headerSpy struct {
	interceptor.WorkerInterceptorBase
	mu   sync.Mutex
	orgs []string
}

func (s *headerSpy) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &spyInbound{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, s: s}
}

type spyInbound struct {
	interceptor.ActivityInboundInterceptorBase
	s *headerSpy
}

func (i *spyInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	var org string
	if p := interceptor.Header(ctx)[orgHeader]; p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, &org)
	}
	i.s.mu.Lock()
	i.s.orgs = append(i.s.orgs, org)
	i.s.mu.Unlock()
	return i.Next.ExecuteActivity(ctx, in)
}

// run runs testWorkflow as workflowID, and returns the lines it logged
// (through a logger without Handler: GetLogger alone must add the keys).
func run(t *testing.T, orgs *Orgs, workflowID string, sa *temporal.SearchAttributes, in workflows.PostInput) (map[string]map[string]any, *headerSpy) {
	t.Helper()
	var buf bytes.Buffer
	var mu sync.Mutex
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewJSONHandler(lockedWriter{&mu, &buf}, nil))))
	env := s.NewTestWorkflowEnvironment()
	spy := &headerSpy{}
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{NewInterceptor(orgs), spy}})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflowID})
	if sa != nil {
		if err := env.SetTypedSearchAttributesOnStart(*sa); err != nil {
			t.Fatal(err)
		}
	}
	env.RegisterWorkflow(testWorkflow)
	env.RegisterActivity(testActivity)
	env.ExecuteWorkflow(testWorkflow, in)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	lines := map[string]map[string]any{}
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if msg, _ := m["msg"].(string); msg == "workflow line" || msg == "activity line" {
			lines[msg] = m
		}
	}
	if len(lines) != 2 {
		t.Fatalf("lines: %s", buf.String())
	}
	return lines, spy
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestInterceptorFromSearchAttribute(t *testing.T) {
	orgs := NewOrgs(10)
	sa := temporal.NewSearchAttributes(workflows.SAOrg.ValueSet("o1"))
	lines, spy := run(t, orgs, "post-p1", &sa, workflows.PostInput{PostID: "p1"})
	if got := orgs.Org("post-p1"); got != "o1" {
		t.Fatalf("remembered org %q", got)
	}
	if len(spy.orgs) != 1 || spy.orgs[0] != "o1" {
		t.Fatalf("activity headers carried %q", spy.orgs)
	}
	for _, msg := range []string{"workflow line", "activity line"} {
		l := lines[msg]
		if l["org"] != "o1" || l["post_id"] != "p1" || l["workflow_id"] != "post-p1" {
			t.Errorf("%s: %v", msg, l)
		}
	}
}

func TestInterceptorFromInput(t *testing.T) {
	orgs := NewOrgs(10)
	lines, _ := run(t, orgs, "post-p2", nil, workflows.PostInput{PostID: "p2", OrgID: "o2"})
	if got := orgs.Org("post-p2"); got != "o2" {
		t.Fatalf("remembered org %q", got)
	}
	if l := lines["activity line"]; l["org"] != "o2" || l["post_id"] != "p2" {
		t.Errorf("activity line: %v", l)
	}
}

func TestInterceptorLeavesOtherWorkflows(t *testing.T) {
	orgs := NewOrgs(10)
	sa := temporal.NewSearchAttributes(workflows.SAOrg.ValueSet("o1"))
	lines, spy := run(t, orgs, "baseline-1", &sa, workflows.PostInput{OrgID: "o1"})
	if orgs.Org("baseline-1") != "" || len(spy.orgs) != 1 || spy.orgs[0] != "" {
		t.Fatalf("remembered %q, header %q", orgs.Org("baseline-1"), spy.orgs)
	}
	for msg, l := range lines {
		if _, ok := l["post_id"]; ok {
			t.Errorf("%s: %v", msg, l)
		}
	}
}
