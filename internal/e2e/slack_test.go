package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
	csslack "github.com/countersign/countersign/internal/slack"
	"github.com/countersign/countersign/internal/slack/slackfake"
	"github.com/countersign/countersign/internal/testenv"
)

// These tests run the deployment of e2e_test.go with Slack configured
// against a fake Slack (internal/slack/slackfake): approval requests arrive
// as Slack messages, and approvers answer with signed button clicks and the
// reject modal, exactly as Slack would post them to /slack/interactions.

const (
	slackSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	slackTeam   = "TACME"
)

// slackUsers are the Slack workspace: the org's people (linked to members by
// e-mail) and Mallory, who is in Slack but not in the org.
var slackUsers = map[string]string{
	"UOLIVIA": "owner@acme.test", "UINES": "ines@acme.test", "UMAYA": "maya@acme.test", "UPAT": "pat@acme.test",
	"UPAUL": "paul@acme.test", "UEDDIE": "eddie@acme.test", "UMALLORY": "mallory@elsewhere.test",
}

type slackEnv struct {
	*env
	slack   *slackfake.Slack
	actions atomic.Int64
}

// newSlackEnv is newEnv with COUNTERSIGN_SLACK_* pointing at a fake Slack.
func newSlackEnv(t *testing.T) *slackEnv {
	t.Helper()
	fake := slackfake.New(t)
	for id, email := range slackUsers {
		fake.AddUser(id, email)
	}
	tsrv := testenv.Temporal(t)
	e := startEnv(t, map[string]string{
		"DATABASE_URL":                     testenv.Postgres(t),
		"TEMPORAL_ADDRESS":                 tsrv.Address,
		"TEMPORAL_NAMESPACE":               tsrv.Namespace,
		"COUNTERSIGN_SLACK_BOT_TOKEN":      "xoxb-test-token",
		"COUNTERSIGN_SLACK_SIGNING_SECRET": slackSecret,
		"COUNTERSIGN_SLACK_API_URL":        fake.APIURL(),
	}, testenv.Logger(t))
	if e.app.Slack == nil || !e.app.Slack.HasBot() {
		t.Fatal("the app did not pick up the Slack settings")
	}
	return &slackEnv{env: e, slack: fake}
}

// setupSlack is setupThreeLevels with the PR team on channel CPR, and waits
// until every invited member is linked to their Slack user (by e-mail, when
// they accepted their invitation).
func (s *slackEnv) setupSlack() (accountID string) {
	s.t.Helper()
	accountID = s.setupThreeLevels()
	var teams struct {
		Items []struct{ ID, Name string }
	}
	s.must(200, s.owner, "GET", s.org("/teams"), nil, &teams)
	for _, tm := range teams.Items {
		if tm.Name == "PR" {
			s.must(200, s.owner, "PATCH", s.org("/teams/"+tm.ID), map[string]any{"slack_channel_id": "CPR"}, nil)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var members struct{ Items []cs.Member }
		s.must(200, s.owner, "GET", s.org("/members"), nil, &members)
		linked := 0
		for _, m := range members.Items {
			if m.SlackUserID != "" && slackUsers[m.SlackUserID] == strings.ToLower(m.Email) {
				linked++
			}
		}
		if linked == 5 { // all but the owner, who never accepted an invitation
			return accountID
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("members not linked to Slack by e-mail: %+v", members.Items)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// request waits for the approval request of step on revision 1.. in channel.
func (s *slackEnv) request(channel string, revision, step int) slackfake.Message {
	s.t.Helper()
	var found slackfake.Message
	s.slack.Eventually(fmt.Sprintf("sent the request of step %d (revision %d) to %s", step, revision, channel), func() bool {
		for _, m := range s.slack.Messages() {
			if m.Channel != channel || !m.Request {
				continue
			}
			v, ok := m.Button(csslack.ActionApprove)
			if !ok {
				continue
			}
			if t, err := csslack.ParseTarget(v); err == nil && t.Step == step && t.Revision == revision {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// click posts a signed button click of user on message m (as it was when
// it had buttons) and returns the status and how long the acknowledgement took.
func (s *slackEnv) click(user, action string, m slackfake.Message) (int, time.Duration) {
	s.t.Helper()
	value, ok := m.Button(action)
	if !ok {
		s.t.Fatalf("message %s/%s has no %s button", m.Channel, m.TS, action)
	}
	n := s.actions.Add(1)
	payload := slackfake.Click(slackTeam, user, action, value, m.Channel, m.TS, fmt.Sprintf("1700001000.%06d", n),
		s.slack.ResponseURL(fmt.Sprint(n)))
	code, _, took := s.interact(payload, slackSecret, time.Now())
	return code, took
}

// interact posts an interaction payload signed with secret at time at ("" secret: unsigned).
func (s *slackEnv) interact(payload any, secret string, at time.Time) (int, []byte, time.Duration) {
	s.t.Helper()
	req := slackfake.Interaction(s.api.URL+"/slack/interactions", secret, payload, at)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	took := time.Since(start)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body, took
}

// ephemeral waits for an ephemeral message to user containing want.
func (s *slackEnv) ephemeral(user, want string) {
	s.t.Helper()
	s.slack.Eventually(fmt.Sprintf("told %s %q", user, want), func() bool {
		for _, c := range s.slack.Calls("chat.postEphemeral") {
			if c.Form.Get("user") == user && strings.Contains(c.Form.Get("text"), want) {
				return true
			}
		}
		return false
	})
}

func (s *slackEnv) events(postID string) []cs.PostEvent {
	var p cs.Post
	s.must(200, s.owner, "GET", s.org("/posts/"+postID), nil, &p)
	return p.Events
}

// TestSlackThreeLevelsApprovedFromSlack: the three-step chain is approved
// entirely from Slack buttons — a direct message to Maya, one message in the
// PR team's channel, direct messages to the approvers of step 3 — and the
// post is published exactly once. Forged, unsigned and stale requests get 401
// and change nothing; a double click counts once; strangers and people who
// may not decide are told why, privately; and in the end no request is left
// with buttons.
func TestSlackThreeLevelsApprovedFromSlack(t *testing.T) {
	s := newSlackEnv(t)
	acct := s.setupSlack()

	var post cs.Post
	s.must(201, s.members["Ines"].token, "POST", s.org("/posts"), map[string]any{
		"account_id": acct, "text": "Our <autumn> launch is live & shipping!"}, &post)

	// Step 1: a direct message to Maya, with everything she needs to decide.
	maya1 := s.request("DMAYA", 1, 1)
	for _, want := range []string{"Our &lt;autumn&gt; launch is live &amp; shipping!", "Acme (@acme)", "Ines", "step 1/3",
		"as soon as approved", "<!date^", "Maya"} {
		if !strings.Contains(maya1.AllText(), want) {
			t.Errorf("step 1 request lacks %q: %s", want, maya1.AllText())
		}
	}
	if _, ok := maya1.Button(csslack.ActionReject); !ok {
		t.Error("step 1 request has no reject button")
	}

	// Forged, unsigned and stale clicks are refused and change nothing.
	value, _ := maya1.Button(csslack.ActionApprove)
	click := slackfake.Click(slackTeam, "UMAYA", "approve", value, maya1.Channel, maya1.TS, "1700000999.000001", "")
	for name, try := range map[string]func() (int, []byte, time.Duration){
		"forged":   func() (int, []byte, time.Duration) { return s.interact(click, "not-the-secret", time.Now()) },
		"unsigned": func() (int, []byte, time.Duration) { return s.interact(click, "", time.Now()) },
		"stale": func() (int, []byte, time.Duration) {
			return s.interact(click, slackSecret, time.Now().Add(-6*time.Minute))
		},
	} {
		if code, body, _ := try(); code != http.StatusUnauthorized || !strings.Contains(string(body), "invalid_signature") {
			t.Errorf("%s click: %d %s, want 401", name, code, body)
		}
	}
	// A signed body that was altered on the way is forged too.
	body := slackfake.Body(click)
	req, _ := http.NewRequest("POST", s.api.URL+"/slack/interactions", strings.NewReader(strings.Replace(string(body), "UMAYA", "UPAUL", 1)))
	req.Header = slackfake.Sign(slackSecret, body, time.Now())
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("tampered click: %v %v", resp, err)
	}
	time.Sleep(500 * time.Millisecond)
	if p := s.waitPost(post.ID, "still at step 1", atStep(1)); len(p.Steps[0].Approvals) != 0 {
		t.Fatalf("a refused click counted: %+v", p.Steps[0])
	}
	for _, ev := range s.events(post.ID) {
		if ev.Source == cs.SourceSlack {
			t.Fatalf("a refused click reached the workflow: %+v", ev)
		}
	}

	// Maya approves; the acknowledgement does not wait for the workflow.
	if code, took := s.click("UMAYA", "approve", maya1); code != 200 || took > 3*time.Second {
		t.Fatalf("Maya's click: %d after %s", code, took)
	}
	s.waitPost(post.ID, "opened step 2", atStep(2))

	// Step 2: one message in the PR channel, no direct messages to Pat or Paul.
	pr := s.request("CPR", 1, 2)
	if !strings.Contains(pr.AllText(), "team PR") {
		t.Errorf("step 2 request does not name the team: %s", pr.AllText())
	}
	// Maya's request now says step 1 is approved and has no buttons.
	s.slack.Eventually("updated Maya's request", func() bool {
		m := s.find(maya1)
		return !m.HasButtons() && strings.Contains(m.AllText(), "approved") && m.Updates > 0
	})
	// A click on Maya's old request (made before the update reached her:
	// maya1 is the message as it was) is refused with the workflow's reason.
	s.click("UMAYA", "approve", maya1)
	s.ephemeral("UMAYA", "you cannot approve this post: decision on step 1, the post is at step 2")

	// Pat double-clicks: two clicks, counted once.
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, _ := s.click("UPAT", "approve", pr); code != 200 {
				t.Errorf("Pat's click: %d", code)
			}
		}()
	}
	wg.Wait()
	p := s.waitPost(post.ID, "opened step 3", atStep(3))
	if got := p.Steps[1].Approvals; len(got) != 1 || got[0].MemberID != s.members["Pat"].memberID || got[0].Source != cs.SourceSlack {
		t.Fatalf("step 2 approvals after a double click: %+v", got)
	}

	// Step 3: direct messages to the approvers with the right — Eddie, and the
	// owner (linked by e-mail on first need) — never to the author.
	eddie := s.request("DEDDIE", 1, 3)
	s.request("DOLIVIA", 1, 3)
	for _, m := range s.slack.Messages() {
		if m.Request && (m.Channel == "DINES" || m.Channel == "DPAT" || m.Channel == "DPAUL") {
			t.Errorf("request sent to %s: %+v", m.Channel, m)
		}
	}
	// Mallory is not in the org; Ines wrote the post; Paul has no right on step 3.
	s.click("UMALLORY", "approve", eddie)
	s.ephemeral("UMALLORY", "you cannot approve this post: your Slack account is not linked to a member of Acme")
	s.click("UINES", "approve", eddie)
	s.ephemeral("UINES", "you cannot approve this post: the author cannot decide on their own post")
	s.click("UPAUL", "approve", eddie)
	s.ephemeral("UPAUL", "you cannot approve this post: no right to approve posts of this account")

	s.click("UEDDIE", "approve", eddie)
	done := s.waitPost(post.ID, "published", func(p cs.Post) bool { return p.Status == cs.PostPublished })
	if got := s.hook.Count(); got != 1 {
		t.Fatalf("deliveries = %d, want exactly 1", got)
	}
	counted := 0
	for _, ev := range done.Events {
		if ev.Type == cs.EventDecisionCounted {
			counted++
			if ev.Source != cs.SourceSlack {
				t.Errorf("decision not from slack: %+v", ev)
			}
		}
	}
	if counted != 3 {
		t.Errorf("%d decisions counted, want 3", counted)
	}

	// Every request was updated in place and none has buttons left; each
	// has a thread reply with the link, and the author is told.
	s.slack.Eventually("told everyone about the publication", func() bool {
		requests, replies, authorTold := 0, 0, false
		for _, m := range s.slack.Messages() {
			switch {
			case m.Request:
				requests++
				if m.HasButtons() || m.Updates == 0 || !strings.Contains(m.AllText(), "Published") {
					return false
				}
			case m.ThreadTS != "" && strings.Contains(m.Text, done.ExternalURL):
				replies++
			case m.Channel == "DINES" && strings.Contains(m.Text, done.ExternalURL):
				authorTold = true
			}
		}
		return requests == 4 && replies == 4 && authorTold
	})
	for _, m := range s.slack.Messages() {
		if m.HasButtons() {
			t.Errorf("a message still has buttons: %+v", m)
		}
	}
	if n := len(s.slack.Calls("chat.update")); n < 4 {
		t.Errorf("%d chat.update calls, want at least one per request", n)
	}
	s.dump()
}

// dump logs every Slack message as it is now (with -v).
func (s *slackEnv) dump() {
	if !testing.Verbose() {
		return
	}
	for _, m := range s.slack.Messages() {
		s.t.Logf("slack %s ts=%s thread=%s updates=%d request=%v\n%s", m.Channel, m.TS, m.ThreadTS, m.Updates, m.Request, m.AllText())
	}
}

// find returns m as it is now.
func (s *slackEnv) find(m slackfake.Message) slackfake.Message {
	for _, cur := range s.slack.Messages() {
		if cur.Channel == m.Channel && cur.TS == m.TS {
			return cur
		}
	}
	s.t.Fatalf("message %s/%s is gone", m.Channel, m.TS)
	return m
}

// TestSlackRejectModal: reject opens a modal (views.open with the click's
// trigger_id); a submission without a reason is refused in the modal; the
// reason submitted becomes the rejection's note. The author is told why, the
// request loses its buttons, and after an edit the old request says it was
// superseded. A Slack 429 on the first request is retried after its delay.
func TestSlackRejectModal(t *testing.T) {
	s := newSlackEnv(t)
	acct := s.setupSlack()
	s.slack.RateLimit("chat.postMessage", 1)

	var post cs.Post
	s.must(201, s.members["Ines"].token, "POST", s.org("/posts"), map[string]any{"account_id": acct, "text": "Launch day!"}, &post)
	maya := s.request("DMAYA", 1, 1)
	if calls := s.slack.Calls("chat.postMessage"); calls[0].Status != http.StatusTooManyRequests ||
		calls[1].At.Sub(calls[0].At) < 900*time.Millisecond {
		t.Fatalf("the 429 was not retried after Retry-After: %+v", calls[:2])
	}

	s.click("UMAYA", "reject", maya)
	var open slackfake.Call
	s.slack.Eventually("opened the reject modal", func() bool {
		calls := s.slack.Calls("views.open")
		if len(calls) == 1 {
			open = calls[0]
		}
		return len(calls) == 1
	})
	view, _ := open.JSON["view"].(map[string]any)
	if !strings.HasPrefix(fmt.Sprint(open.JSON["trigger_id"]), "trigger-") || view["callback_id"] != csslack.RejectCallbackID {
		t.Fatalf("views.open: %+v", open.JSON)
	}

	// No reason: the modal says so, nothing is sent.
	code, body, _ := s.interact(slackfake.Submit(slackTeam, "UMAYA", view, "V1", csslack.RejectReasonBlock, csslack.RejectReasonAction, "  "), slackSecret, time.Now())
	var ack map[string]any
	_ = json.Unmarshal(body, &ack)
	if code != 200 || ack["response_action"] != "errors" {
		t.Fatalf("empty reason: %d %s", code, body)
	}
	// A forged submission changes nothing.
	if code, _, _ := s.interact(slackfake.Submit(slackTeam, "UMAYA", view, "V1", csslack.RejectReasonBlock, csslack.RejectReasonAction, "forged"), "wrong", time.Now()); code != 401 {
		t.Fatalf("forged submission: %d", code)
	}
	code, body, _ = s.interact(slackfake.Submit(slackTeam, "UMAYA", view, "V1", csslack.RejectReasonBlock, csslack.RejectReasonAction, "Off-brand: use the new logo"), slackSecret, time.Now())
	if code != 200 || len(strings.TrimSpace(string(body))) != 0 {
		t.Fatalf("submission: %d %s", code, body)
	}
	p := s.waitPost(post.ID, "rejected", func(p cs.Post) bool { return p.Status == cs.PostRejected })
	if r := p.Steps[0].Rejection; r == nil || r.Note != "Off-brand: use the new logo" || r.MemberID != s.members["Maya"].memberID || r.Source != cs.SourceSlack {
		t.Fatalf("rejection: %+v", p.Steps[0])
	}
	s.slack.Eventually("closed the request and told the author", func() bool {
		m := s.find(maya)
		told := false
		for _, msg := range s.slack.Messages() {
			told = told || (msg.Channel == "DINES" && strings.Contains(msg.Text, "Off-brand: use the new logo"))
		}
		return !m.HasButtons() && strings.Contains(m.AllText(), "Rejected") && told
	})

	// The author edits: a new request for revision 2, the old one superseded.
	s.must(200, s.members["Ines"].token, "PATCH", s.org("/posts/"+post.ID), map[string]any{"text": "Launch day, new logo!"}, nil)
	maya2 := s.request("DMAYA", 2, 1)
	if !strings.Contains(maya2.AllText(), "new logo!") {
		t.Fatalf("revision 2 request: %s", maya2.AllText())
	}
	s.slack.Eventually("marked the old request superseded", func() bool {
		return strings.Contains(s.find(maya).AllText(), "Superseded")
	})
	// Then she cancels: no buttons anywhere.
	s.must(200, s.members["Ines"].token, "POST", s.org("/posts/"+post.ID+"/cancel"), map[string]any{"reason": "not needed"}, nil)
	s.waitPost(post.ID, "canceled", func(p cs.Post) bool { return p.Status == cs.PostCanceled })
	s.slack.Eventually("closed every request", func() bool {
		for _, m := range s.slack.Messages() {
			if m.HasButtons() {
				return false
			}
		}
		return strings.Contains(s.find(maya2).AllText(), "Canceled")
	})
	// Exactly one request per revision reached Maya despite the 429.
	n := 0
	for _, m := range s.slack.Messages() {
		if m.Request && m.Channel == "DMAYA" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d requests to Maya, want 2 (one per revision)", n)
	}
}

// TestSlackFallbackRemindersExpiry: Maya does not answer. A quarter before
// her deadline she gets a reminder in the request's thread; at the deadline
// the PR team is asked in its channel and Maya is told in her thread (her
// request says it escalated, and keeps its buttons); nobody answers, and the
// post expires: every request loses its buttons and the author is told.
func TestSlackFallbackRemindersExpiry(t *testing.T) {
	s := newSlackEnv(t)
	acct := s.setupSlack()
	var teams struct{ Items []struct{ ID, Name string } }
	s.must(200, s.owner, "GET", s.org("/teams"), nil, &teams)
	var chain struct{ ID string }
	s.must(201, s.owner, "POST", s.org("/approval-chains"), map[string]any{
		"name": "Fast", "steps": []map[string]any{{"approver": map[string]string{"member": s.members["Maya"].memberID},
			"timeout": "3s", "fallback_team": teams.Items[0].ID, "fallback_timeout": "3s"}}}, &chain)
	s.must(200, s.owner, "PATCH", s.org("/accounts/"+acct), map[string]any{"approval_chain_id": chain.ID}, nil)

	var post cs.Post
	s.must(201, s.members["Ines"].token, "POST", s.org("/posts"), map[string]any{"account_id": acct, "text": "Quick one"}, &post)
	maya := s.request("DMAYA", 1, 1)
	threads := func(parent slackfake.Message, want string) bool {
		for _, m := range s.slack.Messages() {
			if m.Channel == parent.Channel && m.ThreadTS == parent.TS && strings.Contains(m.Text, want) {
				return true
			}
		}
		return false
	}
	s.slack.Eventually("reminded Maya", func() bool { return threads(maya, "Reminder") })
	pr := s.request("CPR", 1, 1)
	if !strings.Contains(pr.AllText(), "fallback") {
		t.Errorf("fallback request does not say so: %s", pr.AllText())
	}
	s.slack.Eventually("told Maya about the fallback", func() bool {
		m := s.find(maya)
		return threads(maya, "team *PR* may now approve") && strings.Contains(m.AllText(), "Escalated") && m.HasButtons()
	})
	s.waitPost(post.ID, "expired", func(p cs.Post) bool { return p.Status == cs.PostExpired })
	s.slack.Eventually("closed every request and told the author", func() bool {
		told := false
		for _, m := range s.slack.Messages() {
			if m.HasButtons() || (m.Request && !strings.Contains(m.AllText(), "Expired")) {
				return false
			}
			told = told || (m.Channel == "DINES" && strings.Contains(m.Text, "expired"))
		}
		return told
	})
	// One reminder per phase at most, each once: Maya's primary reminder,
	// and the fallback phase's under both requests.
	reminders := 0
	for _, m := range s.slack.Messages() {
		if strings.Contains(m.Text, "Reminder") {
			reminders++
		}
	}
	if reminders < 1 || reminders > 3 {
		t.Errorf("%d reminders", reminders)
	}
	s.dump()
}

// TestSlackDelegateAndDirectoryChanges: Maya goes away with Eddie as her
// delegate: Eddie gets a request and approves from Slack on her behalf. At
// step 2 the PR team loses both members: its channel's request loses its
// buttons and the owner is told by direct message that the post is stuck.
func TestSlackDelegateAndDirectoryChanges(t *testing.T) {
	s := newSlackEnv(t)
	acct := s.setupSlack()
	var post cs.Post
	s.must(201, s.members["Ines"].token, "POST", s.org("/posts"), map[string]any{"account_id": acct, "text": "Holiday cover"}, &post)
	maya := s.request("DMAYA", 1, 1)
	s.must(200, s.members["Maya"].token, "PUT", s.org("/members/"+s.members["Maya"].memberID+"/absence"), map[string]any{
		"from": time.Now().Add(-time.Minute).Format(time.RFC3339), "until": time.Now().Add(time.Hour).Format(time.RFC3339),
		"delegate_member_id": s.members["Eddie"].memberID}, nil)
	eddie := s.request("DEDDIE", 1, 1)
	if !strings.Contains(eddie.AllText(), "delegate of *Maya*") {
		t.Fatalf("the delegate's request does not say for whom: %s", eddie.AllText())
	}
	// Maya's own request now says who may answer for her, updated in place.
	s.slack.Eventually("updated Maya's request with her delegate", func() bool {
		for _, m := range s.slack.Messages() {
			if m.Channel == maya.Channel && m.TS == maya.TS {
				return m.Updates > 0 && strings.Contains(m.AllText(), "Maya is away until") && strings.Contains(m.AllText(), "Eddie may answer")
			}
		}
		return false
	})
	if code, _ := s.click("UEDDIE", csslack.ActionApprove, eddie); code != 200 {
		t.Fatalf("click: %d", code)
	}
	p := s.waitPost(post.ID, "at step 2", atStep(2))
	if got := p.Steps[0].Approvals[0]; got.MemberID != s.members["Eddie"].memberID || got.OnBehalfOf != s.members["Maya"].memberID {
		t.Fatalf("step 1 approval: %+v", got)
	}
	s.slack.Eventually("both step-1 requests lost their buttons", func() bool {
		return !s.find(maya).HasButtons() && !s.find(eddie).HasButtons()
	})
	pr := s.request("CPR", 1, 2)
	var teams struct {
		Items []struct{ ID, Name string }
	}
	s.must(200, s.owner, "GET", s.org("/teams"), nil, &teams)
	for _, who := range []string{"Pat", "Paul"} {
		s.must(204, s.owner, "DELETE", s.org("/teams/"+teams.Items[0].ID+"/members/"+s.members[who].memberID), nil, nil)
	}
	s.slack.Eventually("the stuck step's request lost its buttons and the owner was told", func() bool {
		cur := s.find(pr)
		if cur.HasButtons() || !strings.Contains(cur.AllText(), "No one left can approve") {
			return false
		}
		for _, m := range s.slack.Messages() {
			if m.Channel == "DOLIVIA" && strings.Contains(m.AllText(), "is stuck") {
				return true
			}
		}
		return false
	})
}
