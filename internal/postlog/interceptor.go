package postlog

import (
	"context"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/workflow"

	"github.com/countersign/countersign/workflows"
)

// orgHeader carries a post's org to its activities, which may run in a
// worker process that never ran the workflow.
const orgHeader = "countersign-org"

// Interceptor is the worker interceptor that tells Orgs each post
// workflow's org (from its PostOrg search attribute, else its input), passes
// it to activities in a header, and puts org, post_id and workflow_id on
// workflow.GetLogger and activity.GetLogger. It only writes to the
// in-memory Orgs, so it is safe in replay.
type Interceptor struct {
	interceptor.WorkerInterceptorBase
	orgs *Orgs
}

// NewInterceptor returns the interceptor; orgs is usually DefaultOrgs, the
// one the process logger's Handler reads.
func NewInterceptor(orgs *Orgs) *Interceptor { return &Interceptor{orgs: orgs} }

// InterceptWorkflow implements interceptor.WorkerInterceptor.
func (i *Interceptor) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	w := &workflowInbound{orgs: i.orgs, id: workflow.GetInfo(ctx).WorkflowExecution.ID}
	w.Next = next
	if _, ok := PostID(w.id); ok {
		// Known before the first workflow task runs, so the SDK's lines
		// about it already find the org.
		w.org, _ = workflow.GetTypedSearchAttributes(ctx).GetKeyword(workflows.SAOrg)
		i.orgs.Remember(w.id, w.org)
	}
	return w
}

// InterceptActivity implements interceptor.WorkerInterceptor.
func (i *Interceptor) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	a := &activityInbound{orgs: i.orgs}
	a.Next = next
	return a
}

type workflowInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	orgs    *Orgs
	id, org string
}

func (w *workflowInbound) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	o := &workflowOutbound{in: w}
	o.Next = outbound
	return w.Next.Init(o)
}

func (w *workflowInbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	if _, ok := PostID(w.id); ok && w.org == "" && len(in.Args) > 0 {
		if pi, ok := in.Args[0].(workflows.PostInput); ok {
			w.org = pi.OrgID
			w.orgs.Remember(w.id, w.org)
		}
	}
	return w.Next.ExecuteWorkflow(ctx, in)
}

// HandleSignal keeps the org of a long-waiting post fresh in Orgs.
func (w *workflowInbound) HandleSignal(ctx workflow.Context, in *interceptor.HandleSignalInput) error {
	w.orgs.Remember(w.id, w.org)
	return w.Next.HandleSignal(ctx, in)
}

type workflowOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	in *workflowInbound
}

func (o *workflowOutbound) GetLogger(ctx workflow.Context) log.Logger {
	return withPost(o.Next.GetLogger(ctx), o.in.id, o.in.org)
}

func (o *workflowOutbound) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	o.in.setHeader(ctx)
	return o.Next.ExecuteActivity(ctx, activityType, args...)
}

func (o *workflowOutbound) ExecuteLocalActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	o.in.setHeader(ctx)
	return o.Next.ExecuteLocalActivity(ctx, activityType, args...)
}

func (w *workflowInbound) setHeader(ctx workflow.Context) {
	if w.org == "" {
		return
	}
	if p, err := converter.GetDefaultDataConverter().ToPayload(w.org); err == nil {
		interceptor.WorkflowHeader(ctx)[orgHeader] = p
	}
}

type activityInbound struct {
	interceptor.ActivityInboundInterceptorBase
	orgs    *Orgs
	id, org string
}

func (a *activityInbound) Init(outbound interceptor.ActivityOutboundInterceptor) error {
	o := &activityOutbound{in: a}
	o.Next = outbound
	return a.Next.Init(o)
}

func (a *activityInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	a.id = activity.GetInfo(ctx).WorkflowExecution.ID
	if _, ok := PostID(a.id); ok {
		if p := interceptor.Header(ctx)[orgHeader]; p != nil {
			_ = converter.GetDefaultDataConverter().FromPayload(p, &a.org)
		}
		if a.org == "" {
			a.org = a.orgs.Org(a.id) // scheduled before the header existed
		}
		a.orgs.Remember(a.id, a.org)
	}
	return a.Next.ExecuteActivity(ctx, in)
}

type activityOutbound struct {
	interceptor.ActivityOutboundInterceptorBase
	in *activityInbound
}

func (o *activityOutbound) GetLogger(ctx context.Context) log.Logger {
	return withPost(o.Next.GetLogger(ctx), o.in.id, o.in.org)
}

// withPost adds the post's keys to an SDK logger, for post workflows only.
func withPost(l log.Logger, workflowID, org string) log.Logger {
	postID, ok := PostID(workflowID)
	if !ok {
		return l
	}
	kv := []any{KeyPostID, postID, KeyWorkflowID, workflowID}
	if org != "" {
		kv = append([]any{KeyOrg, org}, kv...)
	}
	return log.With(l, kv...)
}
