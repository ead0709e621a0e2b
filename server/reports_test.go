package server_test

import (
	"net/url"
	"slices"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
)

// The report's range: RFC 3339 bounds with an offset, from before to, at
// most 366 days; anything else is 422 naming the parameter. Without bounds
// it covers the last 30 days.
func TestApprovalReportRange(t *testing.T) {
	e := newEnv(t)
	at := func(from, to string) string {
		q := url.Values{}
		if from != "" {
			q.Set("from", from)
		}
		if to != "" {
			q.Set("to", to)
		}
		return e.o("/reports/approvals?" + q.Encode())
	}
	for _, tc := range []struct{ from, to, field string }{
		{"2026-01-01", "", "from"},
		{"", "yesterday", "to"},
		{"2026-01-01T00:00:00", "", "from"}, // no offset
		{"2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z", "from"},
		{"2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "from"},
		{"2024-01-01T00:00:00Z", "2026-01-01T00:00:00+01:00", "to"},
	} {
		out := e.problem(422, cs.EINVALID, e.owner.token, "GET", at(tc.from, tc.to), "")
		if !slices.Contains(out.fields(), tc.field) {
			t.Errorf("from=%q to=%q: %v, want a field error on %s", tc.from, tc.to, out, tc.field)
		}
	}
	out := e.must(200, e.owner.token, "GET", at("", ""), "")
	from, _ := time.Parse(time.RFC3339, out.s("from"))
	to, _ := time.Parse(time.RFC3339, out.s("to"))
	if d := to.Sub(from); d != 30*24*time.Hour || time.Since(to) > time.Minute {
		t.Fatalf("default range: %v to %v", from, to)
	}
	steps, ok1 := out["steps"].([]any)
	approvers, ok2 := out["approvers"].([]any)
	if !ok1 || !ok2 || len(steps) != 0 || len(approvers) != 0 {
		t.Fatalf("an org with no events: %v", out)
	}
	e.must(200, e.owner.token, "GET", at("2025-01-01T00:00:00+01:00", "2026-01-01T00:00:00+01:00"), "")
}
