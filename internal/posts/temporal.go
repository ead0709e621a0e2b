package posts

import (
	"context"
	"time"

	"go.temporal.io/sdk/client"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/postflow"
	"github.com/countersign/countersign/internal/store"
)

// NewWorkflows is Workflows on a Temporal client.
func NewWorkflows(tc client.Client) Workflows { return temporalWorkflows{tc} }

type temporalWorkflows struct{ tc client.Client }

func (w temporalWorkflows) Submit(ctx context.Context, p store.UnstartedPost, summary string, wait time.Duration) (cs.PostState, error) {
	return postflow.StartWithUpdate(ctx, w.tc, p, summary, wait)
}

func (w temporalWorkflows) Exists(ctx context.Context, postID string) (bool, error) {
	return postflow.Exists(ctx, w.tc, postID)
}

func (w temporalWorkflows) Update(ctx context.Context, postID, name, id string, arg any) (cs.PostState, error) {
	var st cs.PostState
	h, err := w.tc.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: cs.WorkflowID(postID), UpdateID: name + ":" + id, UpdateName: name, Args: []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, &st)
	}
	return st, err
}

func (w temporalWorkflows) Signal(ctx context.Context, postID, name string, arg any) error {
	return w.tc.SignalWorkflow(ctx, cs.WorkflowID(postID), "", name, arg)
}
