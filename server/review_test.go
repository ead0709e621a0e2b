package server_test

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/secrets"
	"github.com/countersign/countersign/server"
)

// TestReviewPageSecurityHeaders: every answer of the review routes, the
// refusals included, forbids scripts and framing, sends no referrer and is
// HTML, not a JSON problem.
func TestReviewPageSecurityHeaders(t *testing.T) {
	links, err := secrets.NewReviewLinks(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	s := server.New(server.Deps{Logger: slog.New(slog.DiscardHandler), ReviewLinks: links})
	for _, tc := range []struct {
		method, origin string
		want           int
	}{
		{"GET", "", 404},                      // a token this server did not sign
		{"POST", "https://evil.example", 403}, // a form posted from another site
		{"POST", "", 415},                     // not the page's form
	} {
		req := httptest.NewRequest(tc.method, "/review/not-a-token", nil)
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		h := w.Result().Header
		csp := h.Get("Content-Security-Policy")
		if w.Code != tc.want || !strings.HasPrefix(h.Get("Content-Type"), "text/html") ||
			!strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			strings.Contains(csp, "script-src") || strings.Contains(csp, "unsafe-inline") ||
			h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Content-Type-Options") != "nosniff" ||
			h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: %d, headers %v", tc.method, tc.origin, w.Code, h)
		}
		if strings.Contains(strings.ToLower(w.Body.String()), "<script") {
			t.Errorf("%s: the page has a script", tc.method)
		}
	}
}
