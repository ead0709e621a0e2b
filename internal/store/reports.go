package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// ApprovalReport is the turnaround of an org's approvals over [From, To),
// computed from its post events (GET /v1/orgs/{org}/reports/approvals).
type ApprovalReport struct {
	From      time.Time            `json:"from"`
	To        time.Time            `json:"to"`
	Steps     []StepTurnaround     `json:"steps"`
	Approvers []ApproverTurnaround `json:"approvers"`
}

// StepTurnaround is one step number's figures. A step counts an event in the
// range: opened (step_opened), decisions (decision_counted, of which
// rejections), timeouts (a deadline that passed: the step widened to its
// fallback team, or expired with the sentence "step n/m timed out"),
// fallbacks (fallback_opened), expiries (the post expired while the step was
// its last opened one: timed out, or its scheduled time passed first).
// MedianSeconds and P90Seconds are from the step's opening to each decision
// (null without decisions).
type StepTurnaround struct {
	Step          int      `json:"step"`
	Opened        int      `json:"opened"`
	Decisions     int      `json:"decisions"`
	Approvals     int      `json:"approvals"`
	Rejections    int      `json:"rejections"`
	MedianSeconds *float64 `json:"median_seconds"`
	P90Seconds    *float64 `json:"p90_seconds"`
	Timeouts      int      `json:"timeouts"`
	Fallbacks     int      `json:"fallbacks"`
	Expiries      int      `json:"expiries"`
}

// ApproverTurnaround is one member's decisions at one step number.
// ViaFallback counts the decisions given once the step had widened to its
// fallback team.
type ApproverTurnaround struct {
	MemberID      string   `json:"member_id"`
	Name          string   `json:"name"`
	Step          int      `json:"step"`
	Decisions     int      `json:"decisions"`
	Approvals     int      `json:"approvals"`
	Rejections    int      `json:"rejections"`
	ViaFallback   int      `json:"via_fallback"`
	MedianSeconds *float64 `json:"median_seconds"`
	P90Seconds    *float64 `json:"p90_seconds"`
}

// reportDecisions is each counted decision of the org in [$2, $3) with the
// time its step (same post, revision and step) opened and, if it had, widened
// to its fallback before it, and whether it was the rejection. Each look-up
// walks the post's own events backwards from the decision
// (post_events_seq_idx); the decisions come from post_events_report_idx.
const reportDecisions = `decisions AS (
	SELECT d.post_id, d.step, d.actor, d.at,
		(SELECT o.at FROM post_events o WHERE o.post_id = d.post_id AND o.seq <= d.seq AND o.type = 'step_opened'
		   AND o.revision = d.revision AND o.step = d.step ORDER BY o.seq DESC LIMIT 1) AS opened_at,
		EXISTS (SELECT 1 FROM post_events f WHERE f.post_id = d.post_id AND f.seq <= d.seq AND f.type = 'fallback_opened'
		   AND f.revision = d.revision AND f.step = d.step) AS via_fallback,
		EXISTS (SELECT 1 FROM post_events r WHERE r.post_id = d.post_id AND r.seq >= d.seq AND r.type = 'rejected'
		   AND r.revision = d.revision AND r.step = d.step AND r.actor IS NOT DISTINCT FROM d.actor) AS rejection
	FROM post_events d
	WHERE d.org_id = $1 AND d.type = 'decision_counted' AND d.at >= $2 AND d.at < $3 AND d.step > 0
), waits AS (
	SELECT *, extract(epoch FROM at - opened_at)::float8 AS secs FROM decisions
)`

// (An external reviewer's decision has no actor: IS NOT DISTINCT FROM
// matches its rejection; per approver it has no row.)

// ApprovalStepsQuery is the per-step half of the report ($1 org, $2 from, $3 to).
const ApprovalStepsQuery = `WITH ` + reportDecisions + `, marks AS (
	SELECT e.type, e.detail,
		CASE WHEN e.type = 'expired' THEN
			(SELECT o.step FROM post_events o WHERE o.post_id = e.post_id AND o.seq < e.seq AND o.type = 'step_opened'
			   AND o.revision = e.revision ORDER BY o.seq DESC LIMIT 1)
		ELSE e.step END AS step
	FROM post_events e
	WHERE e.org_id = $1 AND e.type IN ('step_opened', 'fallback_opened', 'expired') AND e.at >= $2 AND e.at < $3
), by_marks AS (
	SELECT step,
		count(*) FILTER (WHERE type = 'step_opened') AS opened,
		count(*) FILTER (WHERE type = 'fallback_opened' OR (type = 'expired' AND detail LIKE 'step %timed out')) AS timeouts,
		count(*) FILTER (WHERE type = 'fallback_opened') AS fallbacks,
		count(*) FILTER (WHERE type = 'expired') AS expiries
	FROM marks WHERE step > 0 GROUP BY step
), by_decisions AS (
	SELECT step, count(*) AS decisions, count(*) FILTER (WHERE NOT rejection) AS approvals,
		count(*) FILTER (WHERE rejection) AS rejections,
		percentile_cont(0.5) WITHIN GROUP (ORDER BY secs) AS median,
		percentile_cont(0.9) WITHIN GROUP (ORDER BY secs) AS p90
	FROM waits GROUP BY step
)
SELECT coalesce(m.step, d.step), coalesce(m.opened, 0), coalesce(d.decisions, 0), coalesce(d.approvals, 0),
	coalesce(d.rejections, 0), d.median, d.p90, coalesce(m.timeouts, 0), coalesce(m.fallbacks, 0), coalesce(m.expiries, 0)
FROM by_marks m FULL JOIN by_decisions d ON d.step = m.step
ORDER BY 1`

// ApprovalApproversQuery is the per-approver half of the report.
const ApprovalApproversQuery = `WITH ` + reportDecisions + `
SELECT w.actor::text, coalesce(u.name, ''), w.step, count(*), count(*) FILTER (WHERE NOT w.rejection),
	count(*) FILTER (WHERE w.rejection), count(*) FILTER (WHERE w.via_fallback),
	percentile_cont(0.5) WITHIN GROUP (ORDER BY w.secs), percentile_cont(0.9) WITHIN GROUP (ORDER BY w.secs)
FROM waits w
LEFT JOIN members m ON m.org_id = $1 AND m.id = w.actor
LEFT JOIN users u ON u.id = m.user_id
WHERE w.actor IS NOT NULL
GROUP BY w.actor, u.name, w.step
ORDER BY w.step, count(*) DESC, w.actor`

// ApprovalReport computes the org's turnaround report over [from, to).
func (s *Store) ApprovalReport(ctx context.Context, orgID string, from, to time.Time) (ApprovalReport, error) {
	r := ApprovalReport{From: from, To: to, Steps: []StepTurnaround{}, Approvers: []ApproverTurnaround{}}
	if !validID(orgID) {
		return r, notFound("organization")
	}
	rows, err := s.pool.Query(ctx, ApprovalStepsQuery, orgID, from, to)
	if err != nil {
		return r, err
	}
	if r.Steps, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (StepTurnaround, error) {
		var st StepTurnaround
		err := row.Scan(&st.Step, &st.Opened, &st.Decisions, &st.Approvals, &st.Rejections, &st.MedianSeconds, &st.P90Seconds,
			&st.Timeouts, &st.Fallbacks, &st.Expiries)
		return st, err
	}); err != nil {
		return r, err
	}
	rows, err = s.pool.Query(ctx, ApprovalApproversQuery, orgID, from, to)
	if err != nil {
		return r, err
	}
	r.Approvers, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ApproverTurnaround, error) {
		var a ApproverTurnaround
		err := row.Scan(&a.MemberID, &a.Name, &a.Step, &a.Decisions, &a.Approvals, &a.Rejections, &a.ViaFallback,
			&a.MedianSeconds, &a.P90Seconds)
		return a, err
	})
	if r.Steps == nil {
		r.Steps = []StepTurnaround{}
	}
	if r.Approvers == nil {
		r.Approvers = []ApproverTurnaround{}
	}
	return r, err
}
