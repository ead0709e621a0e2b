package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/postlog"
)

// TestNewLogger: JSON unless text is asked for, at the configured level, and
// the SDK's lines about a post get the post's keys.
func TestNewLogger(t *testing.T) {
	postlog.DefaultOrgs.Remember("post-p1", "o1")
	var buf bytes.Buffer
	l := NewLogger(config.Config{LogFormat: "json", LogLevel: "warn"}, &buf)
	l.Info("dropped", "WorkflowID", "post-p1")
	l.Warn("Activity error.", "WorkflowID", "post-p1")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%s: %v", buf.String(), err)
	}
	if line["msg"] != "Activity error." || line["org"] != "o1" || line["post_id"] != "p1" || line["workflow_id"] != "post-p1" {
		t.Fatalf("%s", buf.String())
	}

	buf.Reset()
	NewLogger(config.Config{LogFormat: "text"}, &buf).Info("x", "WorkflowID", "post-p1")
	if got := buf.String(); !strings.Contains(got, "org=o1 post_id=p1 workflow_id=post-p1") {
		t.Fatalf("text: %s", got)
	}
}
