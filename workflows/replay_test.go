package workflows_test

import (
	"path/filepath"
	"slices"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/workflows"
)

// TestReplayRecordedHistories replays histories recorded from the real
// server (internal/e2e with COUNTERSIGN_RECORD_HISTORIES=1): a change to
// PostWorkflow that would break a running post fails here. Such a change
// needs workflow.GetVersion, and the old histories stay to prove it: every
// version (name.vN.json) keeps the three main paths.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"v0", "v1", "v2", "v3", "v4"} {
		for _, name := range []string{"three_levels_published", "worker_restart_published", "reject_edit_cancel"} {
			if !slices.Contains(files, filepath.Join("testdata", name+"."+v+".json")) {
				t.Errorf("testdata lacks %s.%s.json: replays must cover every workflow version", name, v)
			}
		}
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
