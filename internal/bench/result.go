package bench

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// Result is what a run prints and writes as JSON.
type Result struct {
	Posts           int       `json:"posts"`
	Concurrency     int       `json:"concurrency"`
	Lead            string    `json:"lead"`
	Approvers       string    `json:"approvers"`      // slack or api
	Poll            string    `json:"poll,omitempty"` // --approvers api: GET /approvals interval
	CPUs            int       `json:"cpus"`
	GOMAXPROCS      int       `json:"gomaxprocs"`
	GoVersion       string    `json:"go_version"`
	Started         time.Time `json:"started"`
	MemoryNote      string    `json:"memory_note"`
	ThroughputRatio float64   `json:"throughput_ratio"` // countersign / baseline posts per second
	ActionsRatio    float64   `json:"actions_ratio"`    // countersign / baseline billable actions per post
	BillingRules    []string  `json:"billing_rules"`

	Countersign *Pipeline `json:"countersign"`
	Baseline    *Pipeline `json:"baseline,omitempty"`
}

// Pipeline is one side's figures.
type Pipeline struct {
	WallSeconds    float64 `json:"wall_seconds"`
	PostsPerSecond float64 `json:"posts_per_second"`
	Completed      int     `json:"completed"`
	Failed         int     `json:"failed"`
	FirstError     string  `json:"first_error,omitempty"`
	Deliveries     int     `json:"deliveries"`
	Duplicates     int     `json:"duplicates"`
	// Expired posts, and those of them whose last approval was sent before
	// their scheduled time: expired because the machine was slow.
	Expired                    int `json:"expired"`
	ExpiredAfterTimelyApproval int `json:"expired_after_timely_approval"`
	// RefusedClicks are Slack clicks Countersign answered with a private
	// refusal (rate limit, step no longer open…): the post then waits.
	RefusedClicks int `json:"refused_clicks,omitempty"`

	// Latencies in milliseconds.
	Latency map[string]Percentiles `json:"latency_ms"`

	History History `json:"history"`
	Memory  Memory  `json:"memory"`
	// CPU is the processor time per delivered post, by process.
	CPU CPU `json:"cpu_seconds_per_post"`
}

// Percentiles of one latency, in milliseconds.
type Percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// History is what the workflows' histories hold, per post.
type History struct {
	Workflows int `json:"workflows"`
	// WorkflowTaskTimeouts counts WorkflowTaskTimedOut events, all workflows.
	WorkflowTaskTimeouts int                `json:"workflow_task_timeouts"`
	EventsPerPost        float64            `json:"events_per_post"`
	ActionsPerPost       float64            `json:"billable_actions_per_post"`
	Actions              map[string]float64 `json:"actions_per_post_by_kind"`
	EventTypes           map[string]float64 `json:"events_per_post_by_type"`
	ActivitiesByType     map[string]float64 `json:"activities_per_post_by_type"`
	// Waits are where a post's time goes, read from event times: how long
	// tasks waited in their queue for a worker, and how long activities ran.
	Waits map[string]Percentiles `json:"task_waits_ms"`
}

// Memory is the peak during one side's run: the bench process (API, worker,
// drivers) and, when it runs apart, the Temporal server.
type Memory struct {
	PeakHeapInuseMB float64 `json:"peak_heap_inuse_mb"`
	PeakSysMB       float64 `json:"peak_sys_mb"`
	PeakRSSMB       float64 `json:"peak_rss_mb"`
	ServerPeakRSSMB float64 `json:"server_peak_rss_mb,omitempty"`
}

// samples collects durations by name; safe for concurrent use via lock.
type samples map[string][]time.Duration

func (s samples) percentiles() map[string]Percentiles {
	out := map[string]Percentiles{}
	for k, v := range s {
		if len(v) == 0 {
			continue
		}
		slices.Sort(v)
		q := func(p float64) float64 {
			i := int(p*float64(len(v)) + 0.5)
			i = min(max(i-1, 0), len(v)-1)
			return ms(v[i])
		}
		out[k] = Percentiles{N: len(v), P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: ms(v[len(v)-1])}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Print writes the figures as a readable report.
func (r *Result) Print(w io.Writer) {
	approvers := r.Approvers + " approvers"
	if r.Poll != "" {
		approvers += ", GET /approvals every " + r.Poll
	}
	fmt.Fprintf(w, "\nCountersign bench: %d posts, concurrency %d, lead %s, %s — %d CPU(s), GOMAXPROCS %d, %s\n",
		r.Posts, r.Concurrency, r.Lead, approvers, r.CPUs, r.GOMAXPROCS, r.GoVersion)
	c, b := r.Countersign, r.Baseline
	row := func(name string, f func(p *Pipeline) string) {
		bs := "—"
		if b != nil {
			bs = f(b)
		}
		fmt.Fprintf(w, "  %-44s %22s %22s\n", name, f(c), bs)
	}
	fmt.Fprintf(w, "  %-44s %22s %22s\n", "", "countersign", "bare temporal")
	row("wall time (s)", func(p *Pipeline) string { return fmt.Sprintf("%.1f", p.WallSeconds) })
	row("posts/s end to end", func(p *Pipeline) string { return fmt.Sprintf("%.2f", p.PostsPerSecond) })
	row("completed / failed", func(p *Pipeline) string { return fmt.Sprintf("%d / %d", p.Completed, p.Failed) })
	row("deliveries / duplicates", func(p *Pipeline) string { return fmt.Sprintf("%d / %d", p.Deliveries, p.Duplicates) })
	row("expired / of them approved in time", func(p *Pipeline) string {
		return fmt.Sprintf("%d / %d", p.Expired, p.ExpiredAfterTimelyApproval)
	})
	if c != nil && c.RefusedClicks > 0 {
		row("Slack clicks refused", func(p *Pipeline) string { return fmt.Sprintf("%d", p.RefusedClicks) })
	}
	row("WorkflowTaskTimedOut events", func(p *Pipeline) string { return fmt.Sprintf("%d", p.History.WorkflowTaskTimeouts) })
	row("history events per post", func(p *Pipeline) string { return fmt.Sprintf("%.1f", p.History.EventsPerPost) })
	row("billable actions per post", func(p *Pipeline) string { return fmt.Sprintf("%.1f", p.History.ActionsPerPost) })
	row("peak heap in use / Sys / RSS (MB, bench process)", func(p *Pipeline) string {
		return fmt.Sprintf("%.0f / %.0f / %.0f", p.Memory.PeakHeapInuseMB, p.Memory.PeakSysMB, p.Memory.PeakRSSMB)
	})
	if c != nil && c.Memory.ServerPeakRSSMB > 0 {
		row("Temporal server peak RSS (MB, own process)", func(p *Pipeline) string { return fmt.Sprintf("%.0f", p.Memory.ServerPeakRSSMB) })
	}
	row("CPU ms per post: bench process", func(p *Pipeline) string { return fmt.Sprintf("%.1f", 1000*p.CPU.Bench) })
	if c != nil && c.CPU.Services > 0 {
		row("CPU ms per post: serve and worker processes", func(p *Pipeline) string { return fmt.Sprintf("%.1f", 1000*p.CPU.Services) })
	}
	if c != nil && c.Memory.ServerPeakRSSMB > 0 {
		row("CPU ms per post: Temporal server", func(p *Pipeline) string { return fmt.Sprintf("%.1f", 1000*p.CPU.Temporal) })
	}
	row("CPU ms per post: PostgreSQL (at least)", func(p *Pipeline) string { return fmt.Sprintf("%.1f", 1000*p.CPU.Postgres) })
	if b != nil {
		fmt.Fprintf(w, "  throughput ratio countersign/baseline: %.2f; actions ratio: %.2f\n", r.ThroughputRatio, r.ActionsRatio)
	}
	sides := []struct {
		name string
		p    *Pipeline
	}{{"countersign", c}, {"baseline", b}}
	table := func(title string, get func(p *Pipeline) map[string]Percentiles) {
		fmt.Fprintf(w, "\n  %-48s n      p50      p95      p99      max\n", title)
		for _, side := range sides {
			if side.p == nil {
				continue
			}
			m := get(side.p)
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				l := m[k]
				fmt.Fprintf(w, "  %-12s %-30s %6d %8.1f %8.1f %8.1f %8.1f\n", side.name, k, l.N, l.P50, l.P95, l.P99, l.Max)
			}
		}
	}
	table("latencies (ms)", func(p *Pipeline) map[string]Percentiles { return p.Latency })
	for _, side := range sides {
		if side.p == nil {
			continue
		}
		fmt.Fprintf(w, "\n  %s actions per post: %s\n", side.name, kv(side.p.History.Actions))
		fmt.Fprintf(w, "  %s activities per post: %s\n", side.name, kv(side.p.History.ActivitiesByType))
		fmt.Fprintf(w, "  %s events per post: %s\n", side.name, kv(side.p.History.EventTypes))
	}
	table("from the histories (ms)", func(p *Pipeline) map[string]Percentiles { return p.History.Waits })
	fmt.Fprintf(w, "\n  memory: %s\n  billing rules: %s\n", r.MemoryNote, strings.Join(r.BillingRules, "; "))
}

func kv(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
