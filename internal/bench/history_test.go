package bench

import (
	"maps"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"
)

// TestCountEventsFollowsTheBillingRules counts recorded three-level posts
// (workflows/testdata: submitted, three approvals, published) before and
// after workflow versions 1, 3 and 4, actions and events.
func TestCountEventsFollowsTheBillingRules(t *testing.T) {
	for _, tc := range []struct {
		file   string
		want   map[string]float64
		events int
	}{
		// 18 activities: resolve ×3, authorize ×3, save ×6, notify ×5, publish.
		{"three_levels_published.v0.json", map[string]float64{"workflow started": 1, "signal": 3,
			"activity": 18, "search attribute upsert": 6, "timer": 2}, 135},
		// Local activities (resolve, authorize, save) cost one action per
		// workflow task that ran any: submission, three decisions, the end.
		// GetVersion's TemporalChangeVersion upsert is exempt.
		{"three_levels_published.v1.json", map[string]float64{"workflow started": 1, "signal": 3,
			"activity": 1, "local activities": 5, "search attribute upsert": 6, "timer": 1}, 45},
		// The clean post (internal/e2e TestCleanThreeStepPost:
		// Update-With-Start, three decide Updates, no schedule), version 2:
		// an upsert and a local-activity task per transition, Publish an
		// activity whose completion takes one more task (upsert and save).
		{"clean_three_steps.v2.json", map[string]float64{"workflow started": 1, "update": 4,
			"activity": 1, "local activities": 5, "search attribute upsert": 5, "timer": 1}, 48},
		// Version 3: one local-activity task and one upsert per workflow
		// task: submission, each approval (the last one's task also
		// publishes, with a local first attempt, and ends); one timer, step
		// 1's deadline. 14 actions, 42 events.
		{"clean_three_steps.v3.json", map[string]float64{"workflow started": 1, "update": 4,
			"local activities": 4, "search attribute upsert": 4, "timer": 1}, 42},
		// Version 3, scheduled 3 s ahead (TestThreeLevelsToWebhook): the
		// timer's task publishes and ends in one local-activity task and one
		// upsert. 16 actions, 46 events (version 2: 18 and 52).
		{"three_levels_published.v3.json", map[string]float64{"workflow started": 1, "update": 4,
			"local activities": 5, "search attribute upsert": 5, "timer": 1}, 46},
		// Version 4: the same, with one version marker (and its
		// TemporalChangeVersion upsert, exempt) instead of two: 14 actions,
		// 40 and 44 events.
		{"clean_three_steps.v4.json", map[string]float64{"workflow started": 1, "update": 4,
			"local activities": 4, "search attribute upsert": 4, "timer": 1}, 40},
		{"three_levels_published.v4.json", map[string]float64{"workflow started": 1, "update": 4,
			"local activities": 5, "search attribute upsert": 5, "timer": 1}, 44},
	} {
		f, err := os.Open(filepath.Join("..", "..", "workflows", "testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := countEvents(h.GetEvents()).actions; !maps.Equal(got, tc.want) {
			t.Errorf("%s: actions %v, want %v", tc.file, got, tc.want)
		}
		if n := len(h.GetEvents()); n != tc.events {
			t.Errorf("%s: %d events, want %d", tc.file, n, tc.events)
		}
	}
}
