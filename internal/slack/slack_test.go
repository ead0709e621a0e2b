package slack_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	slackgo "github.com/slack-go/slack"
	"go.temporal.io/sdk/temporal"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
	csslack "github.com/countersign/countersign/internal/slack"
	"github.com/countersign/countersign/internal/slack/slackfake"
	"github.com/countersign/countersign/internal/store"
)

const (
	orgID    = "0190a000-0000-7000-8000-000000000001"
	postID   = "0190a000-0000-7000-8000-000000000002"
	author   = "0190a000-0000-7000-8000-000000000003"
	approver = "0190a000-0000-7000-8000-000000000004"
	account  = "0190a000-0000-7000-8000-000000000005"
)

// memStore is an in-memory csslack.Store: one post, two members.
type memStore struct {
	mu       sync.Mutex
	post     store.SlackPost
	members  map[string]store.SlackMember
	messages []store.SlackMessage
}

func newMemStore() *memStore {
	now := time.Now()
	return &memStore{
		post: store.SlackPost{
			Post: cs.Post{ID: postID, OrgID: orgID, AccountID: account, AuthorID: author, Text: "Hello <world> & all",
				Revision: 1, Status: cs.PostPendingApproval, CurrentStep: 1, TotalSteps: 1,
				Steps: []cs.StepState{{Index: 1, Approver: cs.Approver{Member: approver}, Quorum: 1, Status: cs.StepOpen,
					OpenedAt: &now, Eligible: []string{approver}}},
				Awaited: []string{approver}}, // as the workflow computed it
			Account: cs.Account{ID: account, OrgID: orgID, Network: "webhook", Handle: "acme", DisplayName: "Acme", Timezone: "Europe/Paris"},
			OrgName: "Acme", DistinctApprovers: true,
		},
		members: map[string]store.SlackMember{
			author:   {ID: author, Name: "Ines", Email: "ines@acme.test", SlackUserID: "UINES", Active: true},
			approver: {ID: approver, Name: "Maya", Email: "maya@acme.test", SlackUserID: "UMAYA", Active: true},
		},
	}
}

func (m *memStore) SlackPost(ctx context.Context, id string) (store.SlackPost, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id != postID {
		return store.SlackPost{}, cs.Errorf(cs.ENOTFOUND, "no such post")
	}
	p := m.post
	p.Post.Steps = append([]cs.StepState(nil), m.post.Post.Steps...)
	return p, nil
}

func (m *memStore) SlackMembers(ctx context.Context, org string, ids []string) (map[string]store.SlackMember, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]store.SlackMember{}
	for _, id := range ids {
		if v, ok := m.members[id]; ok {
			out[id] = v
		}
	}
	return out, nil
}

func (m *memStore) Team(ctx context.Context, org, id string) (cs.Team, error) {
	return cs.Team{}, cs.Errorf(cs.ENOTFOUND, "no such team")
}

func (m *memStore) EligibleApprovers(ctx context.Context, org, acct string, a cs.Approver) ([]string, error) {
	return nil, nil
}

func (m *memStore) FindSlackMessage(ctx context.Context, post string, rev, step int, kind, recipient string) (store.SlackMessage, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, msg := range m.messages {
		if msg.PostID == post && msg.Revision == rev && msg.Step == step && msg.Kind == kind && msg.Recipient == recipient {
			return msg, true, nil
		}
	}
	return store.SlackMessage{}, false, nil
}

func (m *memStore) SaveSlackMessage(ctx context.Context, msg store.SlackMessage) (store.SlackMessage, error) {
	if found, ok, _ := m.FindSlackMessage(ctx, msg.PostID, msg.Revision, msg.Step, msg.Kind, msg.Recipient); ok {
		return found, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	msg.ID = int64(len(m.messages) + 1)
	m.messages = append(m.messages, msg)
	return msg, nil
}

func (m *memStore) SlackMessages(ctx context.Context, post, kind string) ([]store.SlackMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.SlackMessage
	for _, msg := range m.messages {
		if msg.PostID == post && (kind == "" || msg.Kind == kind) {
			out = append(out, msg)
		}
	}
	return out, nil
}

func (m *memStore) SetSlackMessagesShown(ctx context.Context, shown []store.SlackShown) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range shown {
		m.messages[s.ID-1].Open, m.messages[s.ID-1].Rendered = s.Open, s.Rendered
	}
	return nil
}

func (m *memStore) MemberBySlackUser(ctx context.Context, org, slackID string) (cs.Member, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range m.members {
		if v.SlackUserID == slackID && slackID != "" {
			return cs.Member{ID: v.ID, OrgID: org, Name: v.Name, Email: v.Email, SlackUserID: v.SlackUserID}, nil
		}
	}
	return cs.Member{}, cs.Errorf(cs.ENOTFOUND, "no such member")
}

func (m *memStore) MemberByEmail(ctx context.Context, org, email string) (cs.Member, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range m.members {
		if strings.EqualFold(v.Email, email) {
			return cs.Member{ID: v.ID, OrgID: org, Name: v.Name, Email: v.Email, SlackUserID: v.SlackUserID}, nil
		}
	}
	return cs.Member{}, cs.Errorf(cs.ENOTFOUND, "no such member")
}

func (m *memStore) OrgAdminIDs(ctx context.Context, org string) ([]string, error) { return nil, nil }

func (m *memStore) LinkSlackUser(ctx context.Context, org, memberID, slackID string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.members[memberID]
	if !ok || v.SlackUserID != "" {
		return false, nil
	}
	v.SlackUserID = slackID
	m.members[memberID] = v
	return true, nil
}

func newService(t *testing.T, fake *slackfake.Slack, st csslack.Store, cfg csslack.Config) *csslack.Service {
	t.Helper()
	if cfg.BotToken == "" {
		cfg.BotToken = "xoxb-test"
	}
	cfg.APIURL = strings.TrimSuffix(fake.APIURL(), "/") // the service adds the slash
	return csslack.New(cfg, st, slog.New(slog.DiscardHandler))
}

func stepOpened() activities.Notification {
	d := time.Now().Add(4 * time.Hour)
	return activities.Notification{Kind: activities.NotifyStepOpened, PostID: postID, OrgID: orgID, AccountID: account,
		AuthorID: author, Revision: 1, Step: 1, TotalSteps: 1, MemberIDs: []string{approver, author}, Text: "Hello", Deadline: &d}
}

// TestSlackNotifierRateLimitIsRetriedAfterItsDelay: a 429 with Retry-After 1
// becomes an activity error whose next retry is in 1s; the retry sends the
// approval request once, and a further retry sends nothing again.
func TestSlackNotifierRateLimitIsRetriedAfterItsDelay(t *testing.T) {
	fake := slackfake.New(t)
	st := newMemStore()
	n := newService(t, fake, st, csslack.Config{}).Notifier()
	fake.RateLimit("chat.postMessage", 1)

	err := n.Notify(context.Background(), stepOpened())
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("Notify after a 429: %v, want an application error", err)
	}
	if appErr.NextRetryDelay() != time.Second || appErr.Type() != "RateLimited" {
		t.Fatalf("retry delay %v type %q, want 1s RateLimited", appErr.NextRetryDelay(), appErr.Type())
	}
	if len(st.messages) != 0 {
		t.Fatalf("a message was recorded although Slack refused it: %+v", st.messages)
	}

	if err := n.Notify(context.Background(), stepOpened()); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if err := n.Notify(context.Background(), stepOpened()); err != nil {
		t.Fatalf("second retry: %v", err)
	}
	calls := fake.Calls("chat.postMessage")
	if len(calls) != 2 || calls[0].Status != http.StatusTooManyRequests || calls[1].Status != http.StatusOK {
		t.Fatalf("chat.postMessage calls: %+v", calls)
	}
	// One request, to the approver only (never to the author), with buttons.
	msgs := fake.Messages()
	if len(msgs) != 1 || msgs[0].Channel != "DMAYA" || !msgs[0].HasButtons() {
		t.Fatalf("messages: %+v", msgs)
	}
	v, ok := msgs[0].Button(csslack.ActionApprove)
	if target, err := csslack.ParseTarget(v); !ok || err != nil || target != (csslack.Target{PostID: postID, Revision: 1, Step: 1}) {
		t.Fatalf("approve button value %q: %+v %v", v, target, err)
	}
	if _, ok := msgs[0].Button(csslack.ActionReject); !ok {
		t.Fatal("no reject button")
	}
	text := msgs[0].AllText()
	for _, want := range []string{"Hello &lt;world&gt; &amp; all", "Ines", "Acme (@acme)", "step 1/1", "<!date^"} {
		if !strings.Contains(text, want) {
			t.Errorf("request lacks %q: %s", want, text)
		}
	}
}

// TestSlackNotifierClosesRequests: once the post is rejected, the request is
// updated in place without buttons, and the author is told the reason, once.
func TestSlackNotifierClosesRequests(t *testing.T) {
	fake := slackfake.New(t)
	st := newMemStore()
	n := newService(t, fake, st, csslack.Config{}).Notifier()
	if err := n.Notify(context.Background(), stepOpened()); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	st.mu.Lock()
	st.post.Post.Status = cs.PostRejected
	st.post.Post.Steps[0].Status = cs.StepRejected
	st.post.Post.Steps[0].Rejection = &cs.DecisionRecord{Step: 1, MemberID: approver, Decision: cs.DecisionReject, Note: "off-brand", At: now}
	st.mu.Unlock()
	rejected := activities.Notification{Kind: activities.NotifyRejected, PostID: postID, OrgID: orgID, AccountID: account,
		AuthorID: author, Revision: 1, Step: 1, TotalSteps: 1, MemberIDs: []string{author}, Actor: approver, Detail: "off-brand"}
	fake.RateLimit("chat.update", 2)
	for i := 0; ; i++ {
		err := n.Notify(context.Background(), rejected)
		if err == nil {
			break
		}
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.NextRetryDelay() != 2*time.Second || i > 2 {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if err := n.Notify(context.Background(), rejected); err != nil { // a retry changes nothing
		t.Fatal(err)
	}
	msgs := fake.Messages()
	if len(msgs) != 2 {
		t.Fatalf("messages: %+v", msgs)
	}
	req, dm := msgs[0], msgs[1]
	if req.HasButtons() || req.Updates != 1 || !strings.Contains(req.AllText(), "Rejected") || !strings.Contains(req.AllText(), "off-brand") {
		t.Fatalf("request after rejection: %+v", req)
	}
	if dm.Channel != "DINES" || !strings.Contains(dm.Text, "off-brand") || !strings.Contains(dm.Text, "Maya") {
		t.Fatalf("author's message: %+v", dm)
	}
}

// TestSlackLinkOnFirstNeed: a member without a Slack id is looked up by
// e-mail when a request is due, linked, and not looked up again when Slack
// does not know them.
func TestSlackLinkOnFirstNeed(t *testing.T) {
	fake := slackfake.New(t)
	st := newMemStore()
	st.members[approver] = store.SlackMember{ID: approver, Name: "Maya", Email: "Maya@Acme.test", Active: true}
	fake.AddUser("UMAYA2", "maya@acme.test")
	n := newService(t, fake, st, csslack.Config{}).Notifier()
	if err := n.Notify(context.Background(), stepOpened()); err != nil {
		t.Fatal(err)
	}
	if got := st.members[approver].SlackUserID; got != "UMAYA2" {
		t.Fatalf("slack id after lookup: %q", got)
	}
	if msgs := fake.Messages(); len(msgs) != 1 || msgs[0].Channel != "DMAYA2" {
		t.Fatalf("messages: %+v", fake.Messages())
	}
}

// TestSlackSignatureVerification: only a body signed with the secret within
// five minutes passes.
func TestSlackSignatureVerification(t *testing.T) {
	fake := slackfake.New(t)
	svc := newService(t, fake, newMemStore(), csslack.Config{SigningSecret: "s3cret"})
	body := slackfake.Body(map[string]any{"type": "block_actions"})
	if err := svc.VerifyRequest(slackfake.Sign("s3cret", body, time.Now()), body); err != nil {
		t.Fatalf("good signature: %v", err)
	}
	for name, h := range map[string]http.Header{
		"forged":   slackfake.Sign("other", body, time.Now()),
		"stale":    slackfake.Sign("s3cret", body, time.Now().Add(-6*time.Minute)),
		"future":   slackfake.Sign("s3cret", body, time.Now().Add(6*time.Minute)),
		"unsigned": {},
	} {
		if err := svc.VerifyRequest(h, body); !errors.Is(err, csslack.ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}
	tampered := append([]byte{}, body...)
	tampered[len(tampered)-1] ^= 1
	if err := svc.VerifyRequest(slackfake.Sign("s3cret", body, time.Now()), tampered); !errors.Is(err, csslack.ErrBadSignature) {
		t.Errorf("tampered body: %v", err)
	}
}

// TestSlackSocketModeUsesTheHandler: an interaction delivered over Socket
// Mode reaches the same handler, and its answer is the acknowledgement.
func TestSlackSocketModeUsesTheHandler(t *testing.T) {
	fake := slackfake.New(t)
	svc := newService(t, fake, newMemStore(), csslack.Config{AppToken: "xapp-test"})
	got := make(chan slackgo.InteractionCallback, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- svc.RunSocketMode(ctx, func(cb slackgo.InteractionCallback) any {
			got <- cb
			return slackgo.NewErrorsViewSubmissionResponse(map[string]string{"reason": "say why"})
		})
	}()
	env := fake.SendInteractive(slackfake.Click("T1", "UMAYA", "approve", postID+":1:1", "DMAYA", "1.1", "1.2", ""))
	select {
	case cb := <-got:
		a, err := csslack.ParseAction(cb)
		if err != nil || a.Decision != cs.DecisionApprove || a.Target.PostID != postID || a.ActionTS != "1.2" || cb.User.ID != "UMAYA" {
			t.Fatalf("action %+v %v", a, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the handler never got the interaction")
	}
	ack, ok := fake.SocketAck(env, 10*time.Second)
	if !ok {
		t.Fatal("no acknowledgement")
	}
	if p, _ := ack["payload"].(map[string]any); p["response_action"] != "errors" {
		t.Fatalf("ack: %v", ack)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunSocketMode: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("socket mode did not stop")
	}
}

func TestSlackTargetValue(t *testing.T) {
	in := csslack.Target{PostID: postID, Revision: 3, Step: 2}
	out, err := csslack.ParseTarget(in.Value())
	if err != nil || out != in {
		t.Fatalf("%+v %v", out, err)
	}
	for _, bad := range []string{"", "x", postID + ":0:1", postID + ":1", postID + ":a:b", ":1:1"} {
		if _, err := csslack.ParseTarget(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
