// Package slackfake is a fake Slack for tests: slack-go's slacktest server
// with handlers for every Web API method Countersign calls (chat.postMessage,
// chat.update, chat.postEphemeral, views.open, users.lookupByEmail,
// users.info), response URLs, and a Socket Mode endpoint. It records every
// call and keeps each message as last posted or updated, so a test can check
// that no message was left with buttons. It also builds signed interaction
// requests the way Slack does.
package slackfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack/slacktest"
)

// Call is one Web API call the fake received.
type Call struct {
	Method string
	Form   url.Values     // form-encoded calls
	JSON   map[string]any // JSON calls (views.open)
	Status int            // the HTTP status answered
	At     time.Time
}

// Message is a message as last posted or updated.
type Message struct {
	Channel  string
	TS       string
	ThreadTS string
	Text     string
	Blocks   []map[string]any
	Updates  int
	// Request is true when the message was posted with buttons (an
	// approval request).
	Request bool
}

// HasButtons reports whether the message has an actions block.
func (m Message) HasButtons() bool {
	for _, b := range m.Blocks {
		if b["type"] == "actions" {
			return true
		}
	}
	return false
}

// Button returns the value of the button with action_id id, if any.
func (m Message) Button(id string) (string, bool) {
	for _, b := range m.Blocks {
		if b["type"] != "actions" {
			continue
		}
		els, _ := b["elements"].([]any)
		for _, e := range els {
			el, _ := e.(map[string]any)
			if el["action_id"] == id {
				v, _ := el["value"].(string)
				return v, true
			}
		}
	}
	return "", false
}

// AllText is every text of the message's blocks, joined (for assertions).
func (m Message) AllText() string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(m.Blocks)
	return m.Text + "\n" + b.String()
}

// Slack is the fake.
type Slack struct {
	*slacktest.Server
	t testing.TB

	mu        sync.Mutex
	calls     []Call
	messages  []*Message // in the order they were posted
	byKey     map[string]*Message
	seq       int
	users     map[string]string  // Slack user id -> e-mail
	limited   map[string][]int   // method -> Retry-After seconds of the next 429s
	responses []map[string]any   // what was posted to response URLs
	homes     map[string]Message // user id -> App Home tab last published
	// refuseImages: chat.postMessage answers invalid_blocks to image blocks.
	refuseImages bool

	socket     chan []byte // envelopes to send over Socket Mode
	socketAcks chan map[string]any

	observe func(c Call, answer any) // OnCall
}

// OnCall has fn told of every Web API call the fake answered, with its
// answer, right after the answer is written. Set it before the first call.
// The bench follows the notifications this way, in process, instead of
// through a proxy in front of the fake.
func (f *Slack) OnCall(fn func(c Call, answer any)) { f.observe = fn }

// Message returns the message posted as channel/ts, as it is now.
func (f *Slack) Message(channel, ts string) (Message, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.byKey[channel+"/"+ts]
	if !ok {
		return Message{}, false
	}
	return *m, true
}

// New starts a fake Slack; it stops when the test ends.
func New(t testing.TB) *Slack {
	f := &Slack{t: t, byKey: map[string]*Message{}, users: map[string]string{}, limited: map[string][]int{}, homes: map[string]Message{},
		socket: make(chan []byte, 16), socketAcks: make(chan map[string]any, 16)}
	f.Server = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", f.api("chat.postMessage", f.postMessage))
		c.Handle("/chat.update", f.api("chat.update", f.update))
		c.Handle("/chat.postEphemeral", f.api("chat.postEphemeral", f.postEphemeral))
		c.Handle("/views.open", f.api("views.open", f.viewsOpen))
		c.Handle("/views.publish", f.api("views.publish", f.viewsPublish))
		c.Handle("/users.lookupByEmail", f.api("users.lookupByEmail", f.lookupByEmail))
		c.Handle("/users.info", f.api("users.info", f.usersInfo))
		c.Handle("/apps.connections.open", f.api("apps.connections.open", f.connectionsOpen))
		c.Handle("/response/", f.response)
		c.Handle("/socket", f.socketMode)
	})
	f.Start()
	t.Cleanup(f.Stop)
	return f
}

// APIURL is the base URL to give slack-go (COUNTERSIGN_SLACK_API_URL).
func (f *Slack) APIURL() string { return f.GetAPIURL() }

// ResponseURL is a response_url for an interaction payload.
func (f *Slack) ResponseURL(id string) string { return f.GetAPIURL() + "response/" + id }

// AddUser makes a Slack user with this e-mail known to users.lookupByEmail
// and users.info.
func (f *Slack) AddUser(id, email string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[id] = email
}

// RefuseImageBlocks makes chat.postMessage refuse any message with an
// image block, as Slack does when it cannot download the image.
func (f *Slack) RefuseImageBlocks() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refuseImages = true
}

// RateLimit makes the next len(retryAfter) calls of method answer HTTP 429
// with these Retry-After values (seconds).
func (f *Slack) RateLimit(method string, retryAfter ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limited[method] = append(f.limited[method], retryAfter...)
}

// Calls returns the calls of method ("" for all), in order.
func (f *Slack) Calls(method string) []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Call
	for _, c := range f.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Messages returns every message (as it is now), in the order posted.
func (f *Slack) Messages() []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Message, 0, len(f.messages))
	for _, m := range f.messages {
		out = append(out, *m)
	}
	return out
}

// Responses returns what was posted to response URLs.
func (f *Slack) Responses() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.responses)
}

// Eventually waits up to 30 seconds for cond.
func (f *Slack) Eventually(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("fake slack: never %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// api wraps a method's handler: it records the call, answers 429 when one
// is due, and checks that a token was sent.
func (f *Slack) api(method string, h func(c *Call) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		c := Call{Method: method, At: time.Now(), Status: http.StatusOK}
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			_ = json.Unmarshal(raw, &c.JSON)
		} else {
			c.Form, _ = url.ParseQuery(string(raw))
			if r.URL.RawQuery != "" {
				q, _ := url.ParseQuery(r.URL.RawQuery)
				for k, v := range q {
					c.Form[k] = v
				}
			}
		}
		token := r.Header.Get("Authorization")
		if c.Form != nil && c.Form.Get("token") != "" {
			token = c.Form.Get("token")
		}
		f.mu.Lock()
		if due := f.limited[method]; len(due) > 0 {
			f.limited[method] = due[1:]
			c.Status = http.StatusTooManyRequests
			f.calls = append(f.calls, c)
			f.mu.Unlock()
			w.Header().Set("Retry-After", strconv.Itoa(due[0]))
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		var resp any
		if token == "" || token == "Bearer" {
			resp = map[string]any{"ok": false, "error": "not_authed"}
		} else {
			resp = h(&c)
		}
		f.calls = append(f.calls, c)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
		if f.observe != nil {
			f.observe(c, resp)
		}
	}
}

func decodeBlocks(s string) []map[string]any {
	var b []map[string]any
	if s != "" {
		_ = json.Unmarshal([]byte(s), &b)
	}
	return b
}

// postMessage: a user id as channel is a direct message, in channel "D…".
func (f *Slack) postMessage(c *Call) any {
	ch := c.Form.Get("channel")
	if ch == "" {
		return map[string]any{"ok": false, "error": "channel_not_found"}
	}
	if f.refuseImages {
		for _, b := range decodeBlocks(c.Form.Get("blocks")) {
			if b["type"] == "image" {
				return map[string]any{"ok": false, "error": "invalid_blocks", "errors": []string{"downloading image failed [json-pointer:/blocks/3/image_url]"}}
			}
		}
	}
	if strings.HasPrefix(ch, "U") || strings.HasPrefix(ch, "W") {
		ch = "D" + ch[1:]
	}
	f.seq++
	ts := fmt.Sprintf("1700000000.%06d", f.seq)
	m := &Message{Channel: ch, TS: ts, ThreadTS: c.Form.Get("thread_ts"), Text: c.Form.Get("text"), Blocks: decodeBlocks(c.Form.Get("blocks"))}
	m.Request = m.HasButtons()
	f.messages = append(f.messages, m)
	f.byKey[ch+"/"+ts] = m
	return map[string]any{"ok": true, "channel": ch, "ts": ts, "message": map[string]any{"text": m.Text, "ts": ts}}
}

func (f *Slack) update(c *Call) any {
	ch, ts := c.Form.Get("channel"), c.Form.Get("ts")
	m := f.byKey[ch+"/"+ts]
	if m == nil {
		return map[string]any{"ok": false, "error": "message_not_found"}
	}
	m.Text, m.Blocks = c.Form.Get("text"), decodeBlocks(c.Form.Get("blocks"))
	m.Updates++
	return map[string]any{"ok": true, "channel": ch, "ts": ts, "text": m.Text}
}

func (f *Slack) postEphemeral(c *Call) any {
	f.seq++
	ts := fmt.Sprintf("1700000000.%06d", f.seq)
	return map[string]any{"ok": true, "message_ts": ts}
}

func (f *Slack) viewsOpen(c *Call) any {
	if c.JSON == nil || c.JSON["trigger_id"] == "" || c.JSON["trigger_id"] == nil {
		return map[string]any{"ok": false, "error": "invalid_trigger_id"}
	}
	f.seq++
	view, _ := c.JSON["view"].(map[string]any)
	out := map[string]any{"id": fmt.Sprintf("V%06d", f.seq)}
	for k, v := range view {
		out[k] = v
	}
	return map[string]any{"ok": true, "view": out}
}

// viewsPublish keeps the App Home tab published for a user (home views only).
func (f *Slack) viewsPublish(c *Call) any {
	user, _ := c.JSON["user_id"].(string)
	view, _ := c.JSON["view"].(map[string]any)
	if user == "" || view == nil || view["type"] != "home" {
		return map[string]any{"ok": false, "error": "invalid_arguments"}
	}
	raw, _ := json.Marshal(view["blocks"])
	m := Message{Channel: "home:" + user, Blocks: decodeBlocks(string(raw))}
	m.Request = m.HasButtons()
	f.homes[user] = m
	return map[string]any{"ok": true, "view": map[string]any{"id": "VHOME" + user, "type": "home"}}
}

// Home is the App Home tab last published for a Slack user, and whether one was.
func (f *Slack) Home(user string) (Message, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.homes[user]
	return m, ok
}

// Event is an Events API callback as Slack sends it to POST /slack/events.
func Event(team string, event map[string]any) map[string]any {
	return map[string]any{"type": "event_callback", "team_id": team, "event": event, "event_id": "Ev" + fmt.Sprint(time.Now().UnixNano())}
}

func (f *Slack) lookupByEmail(c *Call) any {
	email := strings.ToLower(c.Form.Get("email"))
	for id, e := range f.users {
		if strings.ToLower(e) == email {
			return map[string]any{"ok": true, "user": map[string]any{"id": id, "profile": map[string]any{"email": e}}}
		}
	}
	return map[string]any{"ok": false, "error": "users_not_found"}
}

func (f *Slack) usersInfo(c *Call) any {
	id := c.Form.Get("user")
	if e, ok := f.users[id]; ok {
		return map[string]any{"ok": true, "user": map[string]any{"id": id, "profile": map[string]any{"email": e}}}
	}
	return map[string]any{"ok": false, "error": "user_not_found"}
}

func (f *Slack) response(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	f.mu.Lock()
	f.responses = append(f.responses, body)
	f.mu.Unlock()
	_, _ = w.Write([]byte("ok"))
}

// --- Socket Mode ---------------------------------------------------------------

func (f *Slack) connectionsOpen(c *Call) any {
	return map[string]any{"ok": true, "url": "ws://" + f.ServerAddr + "/socket"}
}

// SendInteractive delivers an interaction payload over Socket Mode and
// returns its envelope id.
func (f *Slack) SendInteractive(payload any) string {
	raw, _ := json.Marshal(payload)
	f.mu.Lock()
	f.seq++
	id := fmt.Sprintf("env-%d", f.seq)
	f.mu.Unlock()
	env, _ := json.Marshal(map[string]any{"type": "interactive", "envelope_id": id, "payload": json.RawMessage(raw),
		"accepts_response_payload": true})
	f.socket <- env
	return id
}

// SocketAck waits for the acknowledgement of an envelope.
func (f *Slack) SocketAck(envelopeID string, within time.Duration) (map[string]any, bool) {
	deadline := time.After(within)
	for {
		select {
		case ack := <-f.socketAcks:
			if ack["envelope_id"] == envelopeID {
				return ack, true
			}
		case <-deadline:
			return nil, false
		}
	}
}

func (f *Slack) socketMode(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	var wmu sync.Mutex
	write := func(b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return conn.WriteMessage(websocket.TextMessage, b)
	}
	if err := write([]byte(`{"type":"hello","num_connections":1,"connection_info":{"app_id":"A1"}}`)); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var ack map[string]any
			if json.Unmarshal(msg, &ack) == nil {
				f.socketAcks <- ack
			}
		}
	}()
	for {
		select {
		case env := <-f.socket:
			if err := write(env); err != nil {
				return
			}
		case <-done:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// --- signed interaction requests ---------------------------------------------

// Sign returns Slack's signature headers for body at time at.
func Sign(secret string, body []byte, at time.Time) http.Header {
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:", ts)
	mac.Write(body)
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", ts)
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return h
}

// Body is the form body Slack posts for an interaction payload.
func Body(payload any) []byte {
	raw, _ := json.Marshal(payload)
	return []byte(url.Values{"payload": {string(raw)}}.Encode())
}

// Interaction is a request to endpoint carrying payload, signed with secret
// at time at (a zero secret sends it unsigned).
func Interaction(endpoint, secret string, payload any, at time.Time) *http.Request {
	body := Body(payload)
	req, _ := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
	if secret != "" {
		req.Header = Sign(secret, body, at)
	} else {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return req
}

// Click is a block_actions payload: user clicked the button actionID
// (approve or reject) carrying value, on the message ts in channel.
func Click(team, user, actionID, value, channel, ts, actionTS, responseURL string) map[string]any {
	return map[string]any{
		"type":         "block_actions",
		"team":         map[string]any{"id": team},
		"user":         map[string]any{"id": user},
		"api_app_id":   "A1",
		"trigger_id":   "trigger-" + actionTS,
		"response_url": responseURL,
		"channel":      map[string]any{"id": channel},
		"container":    map[string]any{"type": "message", "message_ts": ts, "channel_id": channel},
		"message":      map[string]any{"ts": ts},
		"actions": []any{map[string]any{
			"type": "button", "action_id": actionID, "block_id": "countersign_decide", "value": value, "action_ts": actionTS,
		}},
	}
}

// Submit is the view_submission of a modal opened with views.open (view is
// the "view" object of that call), with text typed in the input blockID/actionID.
func Submit(team, user string, view map[string]any, viewID, blockID, actionID, text string) map[string]any {
	v := map[string]any{}
	for k, val := range view {
		v[k] = val
	}
	v["id"] = viewID
	v["state"] = map[string]any{"values": map[string]any{blockID: map[string]any{actionID: map[string]any{"type": "plain_text_input", "value": text}}}}
	return map[string]any{
		"type":       "view_submission",
		"team":       map[string]any{"id": team},
		"user":       map[string]any{"id": user},
		"view":       v,
		"api_app_id": "A1",
	}
}

// EventRequest is an Events API request to endpoint carrying payload as JSON,
// signed with secret at time at (a zero secret sends it unsigned).
func EventRequest(endpoint, secret string, payload any, at time.Time) *http.Request {
	body, _ := json.Marshal(payload)
	req, _ := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
	if secret != "" {
		req.Header = Sign(secret, body, at)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

// HomeClick is a block_actions payload from a button in user's App Home
// tab: no channel, no message, no response_url.
func HomeClick(team, user, actionID, value, actionTS string) map[string]any {
	return map[string]any{
		"type": "block_actions", "team": map[string]any{"id": team}, "user": map[string]any{"id": user},
		"trigger_id": "trigger-" + actionTS,
		"container":  map[string]any{"type": "view", "view_id": "VHOME" + user},
		"view":       map[string]any{"id": "VHOME" + user, "type": "home"},
		"actions": []map[string]any{{"action_id": actionID, "block_id": "countersign_decide", "value": value,
			"type": "button", "action_ts": actionTS}},
		"action_ts": actionTS,
	}
}
