package mail_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/mail"
	"github.com/countersign/countersign/internal/mail/mailsink"
	"github.com/countersign/countersign/internal/secrets"
	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/testenv"
)

// Two `serve` replicas share one queue: every invitation is mailed exactly
// once, with its own link, and ends 'sent'.
func TestDispatchersShareTheQueue(t *testing.T) {
	st, b := mailingStore(t)
	ctx := context.Background()
	const n = 25
	for i := 0; i < n; i++ {
		inv, err := st.Invite(ctx, b.Org.ID, b.Member.ID, cs.InvitationRequest{Email: fmt.Sprintf("p%d@acme.test", i)})
		if err != nil || inv.Token != "" || inv.Delivery != cs.DeliveryQueued {
			t.Fatalf("invite: %+v %v", inv, err)
		}
	}
	sk := sink(t, mailsink.Options{})
	snd := sender(t, sk.URL(), loopback(t), nil)
	var wg sync.WaitGroup
	for r := 0; r < 2; r++ {
		d := mail.NewDispatcher(st, snd, "https://cs.acme.test", testenv.Logger(t))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k, err := d.RunOnce(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if k == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	links := map[string]bool{}
	for _, m := range sk.Messages() {
		links[mailsink.Link(m.Data)] = true
	}
	if len(sk.Messages()) != n || len(links) != n {
		t.Fatalf("%d messages, %d distinct links; want %d each", len(sk.Messages()), len(links), n)
	}
	list, err := st.ListInvitations(ctx, b.Org.ID, cs.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, inv := range list {
		if inv.Delivery != cs.DeliverySent || inv.DeliveryAttempts != 1 {
			t.Errorf("%s: %s after %d attempts", inv.Email, inv.Delivery, inv.DeliveryAttempts)
		}
	}
}

// A failing server: retried with back-off, then 'failed' with the reason;
// the invitation stays pending and its sealed token is dropped.
func TestDeliveryRetriesThenFails(t *testing.T) {
	st, b := mailingStore(t)
	ctx := context.Background()
	if _, err := st.Invite(ctx, b.Org.ID, b.Member.ID, cs.InvitationRequest{Email: "ana@acme.test"}); err != nil {
		t.Fatal(err)
	}
	sk := sink(t, mailsink.Options{})
	busy := &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "mailbox busy"}
	sk.FailNext(busy, busy, busy)
	d := mail.NewDispatcher(st, sender(t, sk.URL(), loopback(t), nil), "https://cs.acme.test", testenv.Logger(t))
	d.Backoff = []time.Duration{300 * time.Millisecond}
	if k, err := d.RunOnce(ctx); k != 1 || err != nil {
		t.Fatalf("first attempt: %d %v", k, err)
	}
	if k, _ := d.RunOnce(ctx); k != 0 {
		t.Fatal("retried before its back-off")
	}
	list, _ := st.ListInvitations(ctx, b.Org.ID, cs.Page{})
	if len(list) != 1 || list[0].Delivery != cs.DeliveryQueued || !strings.Contains(list[0].DeliveryError, "452") {
		t.Fatalf("after one failure: %+v", list)
	}
	time.Sleep(400 * time.Millisecond)
	if k, _ := d.RunOnce(ctx); k != 1 {
		t.Fatal("no second attempt")
	}
	list, _ = st.ListInvitations(ctx, b.Org.ID, cs.Page{})
	if len(list) != 1 || list[0].Delivery != cs.DeliveryFailed || list[0].DeliveryAttempts != 2 || !strings.Contains(list[0].DeliveryError, "mailbox busy") {
		t.Fatalf("after the last attempt: %+v", list)
	}
	if len(sk.Messages()) != 0 {
		t.Fatal("a message was kept")
	}
}

// mailingStore is a store that mails invitations (its secret key set, so
// queued tokens are sealed), with an org bootstrapped in it.
func mailingStore(t *testing.T) (*store.Store, store.Bootstrapped) {
	t.Helper()
	st := testenv.Store(t)
	if err := st.SetSecretKey(secrets.RandomBytes(32)); err != nil {
		t.Fatal(err)
	}
	st.SetMailInvitations(true)
	b, err := st.Bootstrap(context.Background(), "Acme", "owner@acme.test", "Olga")
	if err != nil {
		t.Fatal(err)
	}
	return st, b
}
