package secrets

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestReviewLinks(t *testing.T) {
	r, err := NewReviewLinks(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	l := ReviewLink{OrgID: "0b7e8a52-5d36-4c43-9a50-1f4f7a6f0c11", PostID: "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f",
		Revision: 2, Step: 3, Email: "Client@Example.com", Expires: exp}
	tok, err := r.Mint(l)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToLower(tok), "example") {
		t.Fatalf("the token shows the e-mail: %s", tok)
	}
	got, err := r.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	l.Email = ""
	if got != l {
		t.Fatalf("parsed %+v, want %+v", got, l)
	}
	if !r.Verify(tok, "client@example.com") {
		t.Fatal("the link did not verify for its e-mail (case-insensitive)")
	}
	if r.Verify(tok, "other@example.com") {
		t.Fatal("the link verified for another e-mail")
	}
	// Every byte of the payload and of the MAC is covered.
	for i := range tok {
		if tok[i] == '.' {
			continue
		}
		b := []byte(tok)
		b[i] ^= 1
		if r.Verify(string(b), "client@example.com") {
			t.Fatalf("a token changed at %d verified", i)
		}
	}
	other, _ := NewReviewLinks(bytes.Repeat([]byte{8}, 32))
	if other.Verify(tok, "client@example.com") {
		t.Fatal("another key verified the link")
	}
	for _, bad := range []string{"", ".", "abc", tok + "x", strings.Repeat("a", 300)} {
		if _, err := r.Parse(bad); err == nil && bad != tok+"x" {
			t.Errorf("Parse(%q) accepted it", bad)
		}
		if r.Verify(bad, "client@example.com") {
			t.Errorf("Verify(%q) accepted it", bad)
		}
	}
	if RequestID(tok) == RequestID(tok+"x") || !strings.HasPrefix(RequestID(tok), "link:") || len(RequestID(tok)) > 64 {
		t.Fatalf("request id %q", RequestID(tok))
	}
}
