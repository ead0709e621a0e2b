package slack_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	slackgo "github.com/slack-go/slack"

	cs "github.com/countersign/countersign"
	csslack "github.com/countersign/countersign/internal/slack"
)

// Fuzz targets of the Slack interaction parsers. Under plain `go test` their
// seeds run as ordinary tests; `go test -run '^$' -fuzz '^FuzzParseInteraction$'
// ./internal/slack` fuzzes one.

// fuzzForm is an interaction request body: the form field payload.
func fuzzForm(payload string) []byte { return []byte("payload=" + url.QueryEscape(payload)) }

const fuzzPost = "01a2028d-179d-7275-8e51-65ec1a241ea1"

// FuzzParseInteraction: any body (already verified, so this is Slack's or a
// mistake) is parsed without a panic; a click read from it is an approve or a
// reject of a post revision and step that are at least 1, and the reject
// modal's submission names a post and a trimmed reason.
func FuzzParseInteraction(f *testing.F) {
	click := func(action, value string) string {
		return `{"type":"block_actions","team":{"id":"T1"},"user":{"id":"U1"},"trigger_id":"13345224609.8534564800.6f8ab1f53e13d0cd15f96106292d5536",
		"response_url":"https://hooks.slack.com/actions/T1/1/x","channel":{"id":"C1"},"container":{"type":"message","channel_id":"C1","message_ts":"1.2"},
		"message":{"ts":"1.2"},"actions":[{"type":"button","block_id":"countersign_decide","action_id":"` + action + `","value":"` + value + `","action_ts":"1700000000.000100"}]}`
	}
	submission := func(meta, reason string) string {
		b, _ := json.Marshal(map[string]any{"type": "view_submission", "team": map[string]string{"id": "T1"}, "user": map[string]string{"id": "U1"},
			"view": map[string]any{"id": "V1", "callback_id": csslack.RejectCallbackID, "private_metadata": meta,
				"state": map[string]any{"values": map[string]any{csslack.RejectReasonBlock: map[string]any{
					csslack.RejectReasonAction: map[string]any{"type": "plain_text_input", "value": reason}}}}}})
		return string(b)
	}
	for _, body := range [][]byte{
		fuzzForm(click("approve", fuzzPost+":1:2")),
		fuzzForm(click("reject", fuzzPost+":3:1")),
		fuzzForm(click("approve", fuzzPost+":0:1")),
		fuzzForm(click("approve", fuzzPost+":1")),
		fuzzForm(click("approve", ":1:1")),
		fuzzForm(click("approve", fuzzPost+":1:99999999999999999999")),
		fuzzForm(click("something_else", fuzzPost+":1:1")),
		fuzzForm(`{"type":"block_actions","actions":[]}`),
		fuzzForm(`{"type":"block_actions","actions":[null,{"action_id":"approve","value":"p:1:1"}]}`),
		fuzzForm(`{"type":"block_actions","actions":{"action_id":"approve"}}`),
		fuzzForm(submission(`{"post":"`+fuzzPost+`","rev":2,"step":3,"channel":"C1"}`, "  off-brand \n")),
		fuzzForm(submission(`{"post":"`+fuzzPost+`","rev":2,"step":3}`, "   ")),
		fuzzForm(submission(`not json`, "reason")),
		fuzzForm(submission(`{"rev":1}`, "reason")),
		fuzzForm(`{"type":"view_submission","view":{"callback_id":"countersign_reject","state":null}}`),
		fuzzForm(`{"type":"view_submission","view":{"state":{"values":{"reason":null}}}}`),
		fuzzForm(`{"type":"shortcut"}`),
		fuzzForm(`[]`),
		fuzzForm(``),
		[]byte(`payload=%zz`),
		[]byte(`token=x&payload=` + url.QueryEscape(`{"type":"block_actions"}`) + `&payload=second`),
		[]byte(`not a form at all; ; =`),
		[]byte(``),
	} {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		cb, err := csslack.ParseInteraction(body)
		if err != nil {
			return
		}
		if act, err := csslack.ParseAction(cb); err == nil {
			if act.Decision != cs.DecisionApprove && act.Decision != cs.DecisionReject {
				t.Fatalf("click read as decision %q", act.Decision)
			}
			checkTarget(t, act.Target)
		}
		if meta, reason, err := csslack.ParseRejectSubmission(cb); err == nil {
			if meta.PostID == "" {
				t.Fatalf("reject submission without a post: %+v", meta)
			}
			if reason != strings.TrimSpace(reason) {
				t.Fatalf("reason %q is not trimmed", reason)
			}
		}
		// The same callback survives being passed on as JSON (Socket Mode
		// hands it over already decoded).
		if raw, err := json.Marshal(cb); err == nil {
			var again slackgo.InteractionCallback
			_ = json.Unmarshal(raw, &again)
		}
	})
}

// checkTarget checks what a button value was read as: a post, revision and
// step of at least 1, which Value writes back to a value that reads the same.
func checkTarget(t *testing.T, tg csslack.Target) {
	t.Helper()
	if tg.PostID == "" || strings.Contains(tg.PostID, ":") || tg.Revision < 1 || tg.Step < 1 {
		t.Fatalf("button value read as %+v", tg)
	}
	back, err := csslack.ParseTarget(tg.Value())
	if err != nil || back != tg {
		t.Fatalf("%+v writes %q, which reads back as %+v, %v", tg, tg.Value(), back, err)
	}
}

// FuzzParseTarget: a button value parses to a valid target or to an error,
// never a panic, and what it parses to round-trips through Value.
func FuzzParseTarget(f *testing.F) {
	for _, v := range []string{
		csslack.Target{PostID: fuzzPost, Revision: 1, Step: 1}.Value(),
		fuzzPost + ":12:3", fuzzPost + ":0:1", fuzzPost + ":1:-1", fuzzPost + ":+1:01", fuzzPost + ":1",
		fuzzPost + ":1:2:3", ":1:1", "::", "", "x:1:1", fuzzPost + ":9223372036854775807:1", fuzzPost + ":9223372036854775808:1",
	} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tg, err := csslack.ParseTarget(v)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("error without a message")
			}
			return
		}
		checkTarget(t, tg)
	})
}
