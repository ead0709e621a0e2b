package devcmd

import (
	"bytes"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/devstack"
	"github.com/countersign/countersign/internal/devtemporal"
)

// The banner prints the metrics listener with the other URLs, or says it is off.
func TestBannerPrintsTheMetricsListener(t *testing.T) {
	s := &devstack.Stack{APIURL: "http://localhost:8080", MetricsURL: "http://127.0.0.1:9090/metrics",
		Temporal: &devtemporal.Server{Address: "127.0.0.1:7233", Namespace: "default"}}
	var b bytes.Buffer
	PrintBanner(&b, s, ".countersign")
	if !strings.Contains(b.String(), "Metrics         http://127.0.0.1:9090/metrics") {
		t.Fatalf("banner lacks the metrics URL:\n%s", b.String())
	}
	s.MetricsURL = ""
	b.Reset()
	PrintBanner(&b, s, ".countersign")
	if !strings.Contains(b.String(), "Metrics         disabled") {
		t.Fatalf("banner does not say metrics are off:\n%s", b.String())
	}
	if f := Command().Flags().Lookup("metrics-addr"); f == nil || f.DefValue != devstack.DefaultMetricsAddr {
		t.Fatalf("--metrics-addr flag: %+v", f)
	}
}
