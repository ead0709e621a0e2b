// Package worker builds the Temporal worker that runs Countersign's post
// workflows and their activities.
package worker

import (
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
	"github.com/countersign/countersign/internal/postlog"
	"github.com/countersign/countersign/workflows"
)

// TaskQueue is the queue the worker polls.
const TaskQueue = cs.TaskQueue

// New returns a worker with every workflow and activity registered; the
// caller starts and stops it.
func New(c client.Client, acts *activities.Activities) sdkworker.Worker {
	w := sdkworker.New(c, TaskQueue, sdkworker.Options{
		// Let a publish or a notification in flight finish on shutdown.
		WorkerStopTimeout: 30 * time.Second,
		// Tells the process logger (postlog.Handler) each post's org, so the
		// SDK's own lines about a post carry it.
		Interceptors: []interceptor.WorkerInterceptor{postlog.NewInterceptor(postlog.DefaultOrgs)},
		// Pollers scale with the server's backlog hints instead of the fixed
		// two per kind: with two, a new post's first workflow task (on the
		// normal queue, behind the sticky one) waited seconds under load.
		WorkflowTaskPollerBehavior: sdkworker.NewPollerBehaviorAutoscaling(sdkworker.PollerBehaviorAutoscalingOptions{}),
		ActivityTaskPollerBehavior: sdkworker.NewPollerBehaviorAutoscaling(sdkworker.PollerBehaviorAutoscalingOptions{}),
	})
	w.RegisterWorkflowWithOptions(workflows.PostWorkflow, workflow.RegisterOptions{Name: cs.WorkflowType})
	w.RegisterActivity(acts)
	return w
}
