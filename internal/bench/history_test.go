package bench

import (
	"maps"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"
)

// TestCountEventsFollowsTheBillingRules counts the recorded three-level post
// (workflows/testdata: submitted, three approvals, published at once) before
// and after workflow version 1.
func TestCountEventsFollowsTheBillingRules(t *testing.T) {
	for _, tc := range []struct {
		file string
		want map[string]float64
	}{
		// 18 activities: resolve ×3, authorize ×3, save ×6, notify ×5, publish.
		{"three_levels_published.v0.json", map[string]float64{"workflow started": 1, "signal": 3,
			"activity": 18, "search attribute upsert": 6, "timer": 2}},
		// Local activities (resolve, authorize, save) cost one action per
		// workflow task that ran any: submission, three decisions, the end.
		// GetVersion's TemporalChangeVersion upsert is exempt.
		{"three_levels_published.v1.json", map[string]float64{"workflow started": 1, "signal": 3,
			"activity": 1, "local activities": 5, "search attribute upsert": 6, "timer": 1}},
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
	}
}
