package store_test

import (
	"context"
	"encoding/json"
	"testing"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
)

// The Slack notifier reads a post with its org and account in one round
// trip, and records what its requests show after a refresh in one
// statement: each message keeps its own state, other posts' are untouched.
func TestSlackPostAndMessagesShown(t *testing.T) {
	d := newDir(t)
	ctx := context.Background()
	account := d.account("slackstore")
	a, b := d.post(account, true), d.post(account, true)

	sp, err := d.st.SlackPost(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if sp.Post.ID != a || sp.Account.ID != account || sp.Account.Handle != "slackstore" || sp.OrgName != "Acme" || !sp.DistinctApprovers {
		t.Fatalf("SlackPost: post %s, account %s @%s, org %q, distinct %v", sp.Post.ID, sp.Account.ID, sp.Account.Handle, sp.OrgName, sp.DistinctApprovers)
	}
	if _, err := d.st.SlackPost(ctx, "01a22b0a-0000-7000-8000-000000000000"); cs.ErrorCode(err) != cs.ENOTFOUND {
		t.Fatalf("SlackPost of an unknown post: %v, want not found", err)
	}

	save := func(postID, recipient string) store.SlackMessage {
		t.Helper()
		m, err := d.st.SaveSlackMessage(ctx, store.SlackMessage{OrgID: d.org, PostID: postID, Revision: 1, Step: 1,
			Kind: store.SlackKindApproval, Recipient: recipient, ChannelID: "C1", TS: recipient, Body: json.RawMessage(`[]`), Open: true, Rendered: "r0"})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m1, m2, other := save(a, "channel:C1"), save(a, "channel:C2"), save(b, "channel:C1")
	if err := d.st.SetSlackMessagesShown(ctx, []store.SlackShown{{ID: m1.ID, Open: false, Rendered: "r1"}, {ID: m2.ID, Open: true, Rendered: "r2"}}); err != nil {
		t.Fatal(err)
	}
	if err := d.st.SetSlackMessagesShown(ctx, nil); err != nil {
		t.Fatal(err)
	}
	shown := map[int64]store.SlackMessage{}
	for _, id := range []string{a, b} {
		ms, err := d.st.SlackMessages(ctx, id, store.SlackKindApproval)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			shown[m.ID] = m
		}
	}
	for _, c := range []struct {
		id       int64
		open     bool
		rendered string
	}{{m1.ID, false, "r1"}, {m2.ID, true, "r2"}, {other.ID, true, "r0"}} {
		if m := shown[c.id]; m.Open != c.open || m.Rendered != c.rendered {
			t.Errorf("message %d shows open=%v %q, want open=%v %q", c.id, m.Open, m.Rendered, c.open, c.rendered)
		}
	}
}
