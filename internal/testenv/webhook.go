package testenv

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/publish"
	"github.com/countersign/countersign/internal/secrets"
)

// Webhook is a webhook endpoint for tests (an account of network webhook
// publishes to URL with Secret): it verifies each delivery's Standard
// Webhooks signature, failing the test on a bad one, and counts deliveries
// by webhook-id and by post. It stops when the test ends.
type Webhook struct {
	URL    string
	Secret string

	t        testing.TB
	mu       sync.Mutex
	seen     map[string]int            // webhook-id → deliveries
	byPost   map[string]map[string]int // post id → webhook-id → deliveries
	payloads []publish.WebhookPayload  // the first delivery of each webhook-id, in order
	total    int
}

// NewWebhook starts a webhook endpoint.
func NewWebhook(t testing.TB) *Webhook {
	w := &Webhook{t: t, Secret: "whsec_" + base64.StdEncoding.EncodeToString(secrets.RandomBytes(24)),
		seen: map[string]int{}, byPost: map[string]map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(w.serve))
	t.Cleanup(srv.Close)
	w.URL = srv.URL
	return w
}

func (w *Webhook) serve(rw http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := publish.VerifyWebhook(w.Secret, req.Header, body, time.Now(), 5*time.Minute); err != nil {
		w.t.Errorf("webhook signature: %v", err)
		http.Error(rw, err.Error(), http.StatusUnauthorized)
		return
	}
	var p publish.WebhookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		w.t.Errorf("webhook body: %v", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	id := req.Header.Get("webhook-id")
	if w.seen[id] == 0 {
		w.payloads = append(w.payloads, p)
	}
	w.seen[id]++
	if w.byPost[p.Data.Post.ID] == nil {
		w.byPost[p.Data.Post.ID] = map[string]int{}
	}
	w.byPost[p.Data.Post.ID][id]++
	w.total++
	_, _ = fmt.Fprintf(rw, `{"id":"hook-%d","url":"%s/deliveries/%s"}`, len(w.payloads), w.URL, id)
}

// Count is the number of distinct deliveries (by webhook-id); it fails the
// test if any was delivered twice.
func (w *Webhook) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, n := range w.seen {
		if n > 1 {
			w.t.Errorf("webhook-id %s delivered %d times", id, n)
		}
	}
	return len(w.seen)
}

// Total is the number of deliveries, repeats included.
func (w *Webhook) Total() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.total
}

// Payloads are the first delivery of each webhook-id, in order of arrival.
func (w *Webhook) Payloads() []publish.WebhookPayload {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]publish.WebhookPayload(nil), w.payloads...)
}

// Seen is how many times each webhook-id was delivered.
func (w *Webhook) Seen() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.seen)
}

// ByPost is how many times each webhook-id of each post was delivered.
func (w *Webhook) ByPost() map[string]map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]map[string]int, len(w.byPost))
	for post, ids := range w.byPost {
		out[post] = maps.Clone(ids)
	}
	return out
}
