package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/metrics"
)

const (
	dashboardFile  = "../../docker/grafana/dashboards/countersign.json"
	schemaFile     = "../../docker/grafana/dashboard.schema.json"
	datasourceFile = "../../docker/grafana/provisioning/datasources/prometheus.yml"
)

// The Grafana dashboard shipped in docker/ is valid against the schema kept
// beside it (the part of Grafana's dashboard model it uses), its panels fit
// the 24-column grid with distinct ids, it queries the data source the
// compose stack provisions, and every metric it queries is one that
// Countersign exports.
func TestDashboardIsValid(t *testing.T) {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	schema, err := c.Compile(schemaFile)
	if err != nil {
		t.Fatalf("compile %s: %v", schemaFile, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s is not JSON: %v", dashboardFile, err)
	}
	if err := schema.Validate(doc); err != nil {
		t.Fatalf("%s does not match %s: %v", dashboardFile, schemaFile, err)
	}

	var dash struct {
		Panels []struct {
			ID         int
			Title      string
			Datasource struct{ UID string }
			GridPos    struct{ H, W, X, Y int }
			Targets    []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	var provisioned struct {
		Datasources []struct{ UID, Type string } `yaml:"datasources"`
	}
	ds, err := os.ReadFile(datasourceFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(ds, &provisioned); err != nil {
		t.Fatal(err)
	}
	exported := exportedMetrics(t)
	ids := map[int]bool{}
	metricName := regexp.MustCompile(`\b(countersign_[a-z0-9_]+)`)
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q overflows the 24-column grid", p.Title)
		}
		if !slices.ContainsFunc(provisioned.Datasources, func(d struct{ UID, Type string }) bool {
			return d.UID == p.Datasource.UID && d.Type == "prometheus"
		}) {
			t.Errorf("panel %q queries data source %q, which the compose stack does not provision", p.Title, p.Datasource.UID)
		}
		for _, tg := range p.Targets {
			names := metricName.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: %q queries no Countersign metric", p.Title, tg.Expr)
			}
			for _, n := range names {
				if !exported[n] {
					t.Errorf("panel %q queries %s, which Countersign does not export", p.Title, n)
				}
			}
		}
	}
}

// exportedMetrics are the series names a process's registry serves once each
// instrument has seen a value (histograms with their _bucket, _sum and
// _count series).
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	m := metrics.New()
	t.Cleanup(func() { _ = m.Close() })
	m.PostsByStatus(func(context.Context) (map[string]int, error) { return map[string]int{}, nil })
	m.ObserveHTTP("GET", "/healthz", 200, time.Millisecond)
	t0 := time.Now()
	at := t0.Add(-time.Minute)
	st := cs.PostState{TotalSteps: 1, ScheduledAt: &at, Steps: []cs.StepState{{Index: 1, OpenedAt: &at}}}
	m.ObserveEvents(st, []cs.PostEvent{
		{Type: cs.EventDecisionCounted, Source: cs.SourceAPI}, {Type: cs.EventDecisionIgnored, Source: cs.SourceAPI, Reason: "x"},
		{Type: cs.EventApproved, At: t0}, {Type: cs.EventPublished, At: t0},
	})
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range families {
		name := f.GetName()
		out[name] = true
		if strings.HasSuffix(f.GetType().String(), "HISTOGRAM") {
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
		}
	}
	for _, want := range []string{"countersign_step_wait_seconds", "countersign_decisions_total", "countersign_publish_lateness_seconds"} {
		if !out[want] {
			t.Fatalf("the registry does not export %s: the test's observations are out of date", want)
		}
	}
	return out
}
