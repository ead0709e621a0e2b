// Package metrics holds Countersign's Prometheus metrics: the API's request
// latency, posts by status, decisions, time spent per approval step,
// publish outcomes and lateness, and the Temporal SDK's own client and
// worker metrics, all in one registry served at /metrics.
package metrics

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"

	cs "github.com/countersign/countersign"
)

// Metrics is one process's registry and instruments.
type Metrics struct {
	Registry *prometheus.Registry

	HTTPDuration    *prometheus.HistogramVec // method, route, status
	Decisions       *prometheus.CounterVec   // outcome, source, reason
	StepWait        *prometheus.HistogramVec // step, outcome
	PublishOutcomes *prometheus.CounterVec   // outcome
	PublishLateness prometheus.Histogram

	temporal client.MetricsHandler
	closer   io.Closer
}

// New makes the registry with Go and process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "countersign_http_request_duration_seconds",
			Help:    "API request latency by method, route template and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route", "status"}),
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "countersign_decisions_total",
			Help: "Approval decisions by outcome (counted, ignored), source (api, slack, temporal) and, for ignored ones, reason.",
		}, []string{"outcome", "source", "reason"}),
		StepWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "countersign_step_wait_seconds",
			Help:    "Time an approval step waited, from opening to its end, by step number and how it ended.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10), // 1s … ~3 days
		}, []string{"step", "outcome"}),
		PublishOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "countersign_publish_outcomes_total",
			Help: "Publications by outcome: published, failed, needs_attention.",
		}, []string{"outcome"}),
		PublishLateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "countersign_publish_lateness_seconds",
			Help:    "Published time minus scheduled time, for scheduled posts.",
			Buckets: []float64{.1, .25, .5, 1, 2, 5, 10, 30, 60, 300, 900, 3600},
		}),
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.HTTPDuration, m.Decisions, m.StepWait, m.PublishOutcomes, m.PublishLateness)

	// The SDK reports through tally; its Prometheus reporter writes into the
	// same registry, so one scrape has everything.
	reporter := tallyprom.NewReporter(tallyprom.Options{Registerer: reg})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
	}, time.Second)
	m.temporal, m.closer = sdktally.NewMetricsHandler(scope), closer
	return m
}

// Temporal is the handler to give the SDK (client.Options.MetricsHandler).
func (m *Metrics) Temporal() client.MetricsHandler { return m.temporal }

// Close flushes the SDK's metrics scope.
func (m *Metrics) Close() error { return m.closer.Close() }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// ObserveHTTP records one API request.
func (m *Metrics) ObserveHTTP(method, route string, status int, d time.Duration) {
	m.HTTPDuration.WithLabelValues(method, route, strconv.Itoa(status)).Observe(d.Seconds())
}

// ObserveEvents records what newly stored audit events say: decisions, the
// end of each step, and publication outcomes. Events must be new (not a
// retried write), so nothing is counted twice.
func (m *Metrics) ObserveEvents(st cs.PostState, events []cs.PostEvent) {
	opened := func(step int) *time.Time {
		if step < 1 || step > len(st.Steps) {
			return nil
		}
		return st.Steps[step-1].OpenedAt
	}
	stepEnded := func(step int, outcome string, at time.Time) {
		if t := opened(step); t != nil && !at.Before(*t) {
			m.StepWait.WithLabelValues(strconv.Itoa(step), outcome).Observe(at.Sub(*t).Seconds())
		}
	}
	for _, e := range events {
		switch e.Type {
		case cs.EventDecisionCounted:
			m.Decisions.WithLabelValues("counted", e.Source, "").Inc()
		case cs.EventDecisionIgnored:
			m.Decisions.WithLabelValues("ignored", e.Source, e.Reason).Inc()
		case cs.EventStepOpened:
			if e.Step > 1 && e.Revision == st.Revision {
				stepEnded(e.Step-1, "approved", e.At)
			}
		case cs.EventApproved:
			stepEnded(st.TotalSteps, "approved", e.At)
		case cs.EventRejected:
			stepEnded(e.Step, "rejected", e.At)
		case cs.EventExpired:
			if e.Step > 0 {
				stepEnded(e.Step, "expired", e.At)
			}
		case cs.EventPublished:
			m.PublishOutcomes.WithLabelValues("published").Inc()
			if st.ScheduledAt != nil {
				m.PublishLateness.Observe(e.At.Sub(*st.ScheduledAt).Seconds())
			}
		case cs.EventPublishFailed:
			m.PublishOutcomes.WithLabelValues("failed").Inc()
		case cs.EventNeedsAttention:
			m.PublishOutcomes.WithLabelValues("needs_attention").Inc()
		}
	}
}

// PostsByStatus exposes countersign_posts{status} from count, asked at
// each scrape (with a short timeout, so a slow database cannot hang it).
func (m *Metrics) PostsByStatus(count func(context.Context) (map[string]int, error)) {
	m.Registry.MustRegister(&postsCollector{count: count, desc: prometheus.NewDesc(
		"countersign_posts", "Posts by status, across organizations.", []string{"status"}, nil)})
}

type postsCollector struct {
	count func(context.Context) (map[string]int, error)
	desc  *prometheus.Desc
}

func (c *postsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *postsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, s := range cs.PostStatuses {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[string(s)]), string(s))
	}
}
