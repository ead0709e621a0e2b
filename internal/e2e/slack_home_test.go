package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
	csslack "github.com/countersign/countersign/internal/slack"
	"github.com/countersign/countersign/internal/slack/slackfake"
)

// slackEvent posts an Events API request signed with secret ("": unsigned).
func (s *slackEnv) slackEvent(payload any, secret string) (int, string) {
	s.t.Helper()
	resp, err := http.DefaultClient.Do(slackfake.EventRequest(s.api.URL+"/slack/events", secret, payload, time.Now()))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// home waits until user's App Home tab satisfies cond and returns it.
func (s *slackEnv) home(user, what string, cond func(slackfake.Message) bool) slackfake.Message {
	s.t.Helper()
	var m slackfake.Message
	s.slack.Eventually(user+"'s App Home tab "+what, func() bool {
		var ok bool
		m, ok = s.slack.Home(user)
		return ok && cond(m)
	})
	return m
}

// TestSlackAppHome: the App Home tab lists what waits for the member, with
// working buttons, and is republished when that list changes, for members
// who opened it; the Events endpoint is signed like interactions. A step
// with a quorum of 2 shows its progress in its message, updated in place.
func TestSlackAppHome(t *testing.T) {
	s := newSlackEnv(t)
	acct := s.setupSlack()

	// The Events endpoint: Slack's URL check, and nothing unsigned.
	if code, body := s.slackEvent(map[string]any{"type": "url_verification", "challenge": "c-123"}, slackSecret); code != 200 || !strings.Contains(body, `"c-123"`) {
		t.Fatalf("url_verification: %d %s", code, body)
	}
	opened := slackfake.Event(slackTeam, map[string]any{"type": "app_home_opened", "user": "UMAYA", "tab": "home"})
	if code, _ := s.slackEvent(opened, ""); code != http.StatusUnauthorized {
		t.Fatalf("unsigned event: %d, want 401", code)
	}
	if code, _ := s.slackEvent(opened, "not the secret"); code != http.StatusUnauthorized {
		t.Fatalf("forged event: %d, want 401", code)
	}
	if _, ok := s.slack.Home("UMAYA"); ok {
		t.Fatal("a refused event published the tab")
	}

	// Maya opens the tab: nothing waits for her yet.
	if code, _ := s.slackEvent(opened, slackSecret); code != 200 {
		t.Fatalf("app_home_opened: %d", code)
	}
	s.home("UMAYA", "says nothing waits", func(m slackfake.Message) bool { return strings.Contains(m.AllText(), "Nothing waits for you") })

	// A post for her: the tab is republished with it and its buttons.
	var post cs.Post
	s.must(201, s.members["Ines"].token, "POST", s.org("/posts"), map[string]any{"account_id": acct, "text": "Home tab launch"}, &post)
	tab := s.home("UMAYA", "lists the post", func(m slackfake.Message) bool { return strings.Contains(m.AllText(), "Home tab launch") })
	for _, want := range []string{"Ines", "@acme", "step 1/3"} {
		if !strings.Contains(tab.AllText(), want) {
			t.Errorf("the tab lacks %q: %s", want, tab.AllText())
		}
	}
	value, ok := tab.Button(csslack.ActionApprove)
	if !ok {
		t.Fatalf("the tab has no approve button: %s", tab.AllText())
	}

	// Approve from the tab: the post moves on, and the tab empties again.
	code, _, _ := s.interact(slackfake.HomeClick(slackTeam, "UMAYA", csslack.ActionApprove, value, "1700002000.000001"), slackSecret, time.Now())
	if code != 200 {
		t.Fatalf("click in the tab: %d", code)
	}
	s.waitPost(post.ID, "at step 2", atStep(2))
	s.home("UMAYA", "empties", func(m slackfake.Message) bool { return strings.Contains(m.AllText(), "Nothing waits for you") })
	if _, ok := s.slack.Home("UPAT"); ok {
		t.Error("Pat never opened the tab, yet it was published for him")
	}

	// Quorum 2: the team's request shows "1 of 2 approvals" after Pat's
	// click, updated in place.
	var teams struct{ Items []struct{ ID, Name string } }
	s.must(200, s.owner, "GET", s.org("/teams"), nil, &teams)
	var chain struct{ ID string }
	s.must(201, s.owner, "POST", s.org("/approval-chains"), map[string]any{"name": "Pair", "steps": []map[string]any{
		{"approver": map[string]string{"team": teams.Items[0].ID}, "quorum": 2}}}, &chain)
	s.must(200, s.owner, "PATCH", s.org("/accounts/"+acct), map[string]any{"approval_chain_id": chain.ID}, nil)
	var pair cs.Post
	s.must(201, s.members["Ines"].token, "POST", s.org("/posts"), map[string]any{"account_id": acct, "text": "Needs two"}, &pair)
	var req slackfake.Message
	s.slack.Eventually("sent the quorum-2 request to CPR", func() bool {
		for _, m := range s.slack.Messages() {
			if v, ok := m.Button(csslack.ActionApprove); ok && m.Channel == "CPR" && strings.HasPrefix(v, pair.ID+":") {
				req = m
				return true
			}
		}
		return false
	})
	if code, _ := s.click("UPAT", csslack.ActionApprove, req); code != 200 {
		t.Fatalf("Pat's click: %d", code)
	}
	s.slack.Eventually("updated the request to 1 of 2", func() bool {
		for _, m := range s.slack.Messages() {
			if m.Channel == req.Channel && m.TS == req.TS {
				return m.Updates > 0 && strings.Contains(m.AllText(), "1 of 2 approvals") && m.HasButtons()
			}
		}
		return false
	})
}
