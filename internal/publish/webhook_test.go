package publish

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// The example of the Standard Webhooks specification: receivers built on
// any of its libraries accept what SignWebhook produces.
func TestSignWebhookMatchesTheSpecExample(t *testing.T) {
	ts := time.Unix(1614265330, 0)
	got, err := SignWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,bogus "+got)
	if err := VerifyWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", h, []byte(`{"test": 2432232314}`), ts, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := VerifyWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", h, []byte(`{"test": 1}`), ts, time.Minute); err == nil {
		t.Fatal("a changed body verified")
	}
	if err := VerifyWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", h, []byte(`{"test": 2432232314}`), ts.Add(time.Hour), time.Minute); err == nil {
		t.Fatal("a stale delivery verified")
	}
	if _, err := SignWebhook("not-a-secret", "id", ts, nil); err == nil || !strings.Contains(err.Error(), "whsec_") {
		t.Fatalf("bad secret: %v", err)
	}
}
