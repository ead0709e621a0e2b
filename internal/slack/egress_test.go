package slack_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/countersign/countersign/internal/egress"
	csslack "github.com/countersign/countersign/internal/slack"
)

// TestSlackGoesThroughTheEgressGuard: the Web API client dials through the
// guard: a Slack API URL on loopback is refused before any connection unless
// the operator allows loopback.
func TestSlackGoesThroughTheEgressGuard(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true,"user_id":"UBOT","team_id":"T1"}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	strict, _ := egress.Parse("")
	svc := csslack.New(csslack.Config{BotToken: "xoxb-test", APIURL: srv.URL + "/api/", Egress: strict}, nil, nil)
	if _, err := svc.API().AuthTestContext(context.Background()); !egress.IsRefused(err) {
		t.Fatalf("auth.test to loopback: %v, want a refusal", err)
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("%d connections reached the server", n)
	}
	loopback, _ := egress.Parse("127.0.0.0/8")
	svc = csslack.New(csslack.Config{BotToken: "xoxb-test", APIURL: srv.URL + "/api/", Egress: loopback}, nil, nil)
	if _, err := svc.API().AuthTestContext(context.Background()); err != nil || conns.Load() != 1 {
		t.Fatalf("with loopback allowed: %v, %d connections", err, conns.Load())
	}
}
