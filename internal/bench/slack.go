package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/secrets"
	csslack "github.com/countersign/countersign/internal/slack"
	"github.com/countersign/countersign/internal/slack/slackfake"
)

// The Slack workspace of the bench: the demo org's people, linked to their
// members by e-mail (users.lookupByEmail) the first time they are notified.
var slackPeople = map[string]string{ // demo key → Slack user id
	"OWNER": "UOLIVIA", "INES": "UINES", "MAYA": "UMAYA", "PAT": "UPAT", "PAUL": "UPAUL", "EDDIE": "UEDDIE",
}

const (
	slackTeam        = "TBENCH"
	slackTeamChannel = "CPR" // the PR team's channel: step 2's request goes there
)

// slackEvent is a notification as it reached the fake Slack.
type slackEvent struct {
	At      time.Time
	Method  string // chat.postMessage or chat.update
	Channel string
	TS      string
	Target  csslack.Target // the approve button's target; zero without one
	Text    string         // the blocks, as JSON text (for status lines)
}

// slackTap follows the fake Slack the deployment talks to
// (internal/slack/slackfake, COUNTERSIGN_SLACK_API_URL): it hands each
// approval request and each update of one, as the fake answers it, to the
// driver of its post. Nothing polls: the approvers react to these. (It
// observes the fake in process; a proxy in front of it cost the machine an
// HTTP hop and a JSON decoding per Slack call, harness work that a real
// Slack does not put on the deployment's machine.)
type slackTap struct {
	fake   *slackfake.Slack
	secret string
	tb     *fakeTB

	mu      sync.Mutex
	subs    map[string]chan slackEvent // post id → its driver
	pending map[string][]slackEvent    // events of posts not subscribed yet
	posts   map[string]string          // channel/ts → post id of a request
	clicks  atomic.Int64
	// refused counts the private answers to clicks (ephemeral messages):
	// each is a click Countersign did not count.
	refused      int
	firstRefusal string
}

// refusals returns how many clicks were refused so far, and the first reason.
func (t *slackTap) refusals() (int, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.refused, t.firstRefusal
}

// fakeTB lets the fake Slack, written for tests, run in the bench: it only
// needs Cleanup (and Fatalf/Helper in helpers the bench does not call).
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
}

func (t *fakeTB) Cleanup(f func()) { t.mu.Lock(); t.cleanups = append(t.cleanups, f); t.mu.Unlock() }
func (t *fakeTB) Helper()          {}
func (t *fakeTB) Fatalf(f string, args ...any) {
	panic(fmt.Sprintf(f, args...))
}
func (t *fakeTB) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

func newSlackTap() (*slackTap, error) {
	tb := &fakeTB{}
	fake := slackfake.New(tb)
	for key, id := range slackPeople {
		fake.AddUser(id, strings.ToLower(key)+"@demo.countersign.test")
	}
	t := &slackTap{fake: fake, tb: tb, secret: fmt.Sprintf("%x", secrets.RandomBytes(16)),
		subs: map[string]chan slackEvent{}, pending: map[string][]slackEvent{}, posts: map[string]string{}}
	fake.OnCall(t.observe)
	return t, nil
}

func (t *slackTap) close() { t.tb.stop() }

// env is what the deployment reads to talk to this Slack.
func (t *slackTap) env() map[string]string {
	return map[string]string{
		"COUNTERSIGN_SLACK_API_URL":        t.fake.APIURL(),
		"COUNTERSIGN_SLACK_BOT_TOKEN":      "xoxb-bench",
		"COUNTERSIGN_SLACK_SIGNING_SECRET": t.secret,
		"COUNTERSIGN_SLACK_APP_TOKEN":      "",
	}
}

// setEnv sets the variables and returns a function that restores them
// (the dev stack reads the Slack settings from the environment).
func setEnv(vars map[string]string) func() {
	old := map[string]*string{}
	for k, v := range vars {
		if was, ok := os.LookupEnv(k); ok {
			old[k] = &was
		} else {
			old[k] = nil
		}
		os.Setenv(k, v)
	}
	return func() {
		for k, v := range old {
			if v == nil {
				os.Unsetenv(k)
			} else {
				os.Setenv(k, *v)
			}
		}
	}
}

// observe is told of each call the fake answered (slackfake.OnCall).
func (t *slackTap) observe(c slackfake.Call, answer any) {
	if c.Method == "chat.postEphemeral" {
		// Countersign refused a click and says why, privately; or it says
		// that a click went as a signal (no worker answered in time), which
		// counts once handled and is no refusal.
		if strings.HasSuffix(c.Form.Get("text"), csslack.ReceivedText) {
			return
		}
		t.mu.Lock()
		t.refused++
		if t.firstRefusal == "" {
			t.firstRefusal = c.Form.Get("text")
		}
		t.mu.Unlock()
		return
	}
	a, _ := answer.(map[string]any)
	if (c.Method != "chat.postMessage" && c.Method != "chat.update") || a["ok"] != true {
		return
	}
	channel, _ := a["channel"].(string)
	ts, _ := a["ts"].(string)
	m, ok := t.fake.Message(channel, ts)
	if !ok {
		return
	}
	ev := slackEvent{At: c.At, Method: c.Method, Channel: channel, TS: ts, Text: c.Form.Get("text") + "\n" + c.Form.Get("blocks")}
	t.mu.Lock()
	defer t.mu.Unlock()
	var post string
	if v, ok := m.Button(csslack.ActionApprove); ok && c.Method == "chat.postMessage" {
		if tg, err := csslack.ParseTarget(v); err == nil {
			ev.Target, post = tg, tg.PostID
			t.posts[ev.Channel+"/"+ev.TS] = post
		}
	} else {
		post = t.posts[ev.Channel+"/"+ev.TS]
	}
	if post == "" {
		return // a direct message to the author, a thread reply: not needed
	}
	if ch, ok := t.subs[post]; ok {
		select {
		case ch <- ev:
		default: // the driver gave up on this post
		}
	} else {
		t.pending[post] = append(t.pending[post], ev)
	}
}

// subscribe returns the events of post, those already arrived first.
func (t *slackTap) subscribe(post string) <-chan slackEvent {
	ch := make(chan slackEvent, 64)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ev := range t.pending[post] {
		ch <- ev
	}
	delete(t.pending, post)
	t.subs[post] = ch
	return ch
}

func (t *slackTap) unsubscribe(post string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.subs, post)
	for k, p := range t.posts {
		if p == post {
			delete(t.posts, k)
		}
	}
}

// click is user pressing Approve on the request ev, posted to the API's
// /slack/interactions the way Slack does: a block_actions payload, signed
// with the signing secret. It returns when the API acknowledged it.
func (t *slackTap) click(ctx context.Context, hc *http.Client, apiURL, user string, ev slackEvent) error {
	n := t.clicks.Add(1)
	payload := slackfake.Click(slackTeam, user, csslack.ActionApprove, ev.Target.Value(), ev.Channel, ev.TS,
		fmt.Sprintf("1700001000.%06d", n), t.fake.ResponseURL(fmt.Sprint(n)))
	req := slackfake.Interaction(apiURL+"/slack/interactions", t.secret, payload, time.Now())
	resp, err := hc.Do(req.WithContext(ctx))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return &apiError{resp.StatusCode, string(b)}
	}
	return nil
}

// terminal reports whether an update of a request says the post ended
// without being scheduled (its status line).
func terminal(ev slackEvent) (string, bool) {
	for _, s := range []string{"*Expired*", "*Canceled*", "*Rejected*", "on hold until", "*Publishing failed*", "*Publishing outcome unknown*"} {
		if strings.Contains(ev.Text, s) {
			return strings.Trim(s, "*"), true
		}
	}
	return "", false
}
