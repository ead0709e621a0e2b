package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The production binary must not link the Temporal server (image size,
// attack surface); only the dev build (-tags dev) does.
func TestProductionBuildDoesNotLinkTemporalServer(t *testing.T) {
	deps := func(tags ...string) string {
		args := append([]string{"list", "-deps"}, tags...)
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		return string(out)
	}
	if prod := deps(); strings.Contains(prod, "go.temporal.io/server/") || strings.Contains(prod, "github.com/temporalio/ui-server") {
		t.Fatal("the production build links the Temporal server or its UI")
	}
	if dev := deps("-tags", "dev"); !strings.Contains(dev, "go.temporal.io/server/temporal\n") {
		t.Fatal("the dev build does not link the embedded Temporal server")
	}
}
