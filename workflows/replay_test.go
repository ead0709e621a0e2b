package workflows_test

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/workflows"
)

// TestReplayRecordedHistories replays histories recorded from the real
// server (internal/e2e with COUNTERSIGN_RECORD_HISTORIES=1): a change to
// PostWorkflow that would break a running post fails here. Such a change
// needs workflow.GetVersion, and the old histories stay to prove it.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("want the recorded histories of the main paths in testdata, found %d", len(files))
	}
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(workflows.PostWorkflow, workflow.RegisterOptions{Name: cs.WorkflowType})
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatal(err)
			}
		})
	}
}
