package mail

import (
	"context"
	"log/slog"
	"time"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
)

// Queue is the invitation mail queue (internal/store, migration 00010).
type Queue interface {
	ClaimInvitationMails(ctx context.Context, n int, lease time.Duration) ([]store.InvitationMail, error)
	InvitationMailSent(ctx context.Context, id string) error
	InvitationMailFailed(ctx context.Context, id, reason string, retryAt time.Time) error
}

// DefaultBackoff is the wait after each failed attempt: five attempts over
// about 45 minutes, then the mail is 'failed' (the invitation stays
// pending; re-inviting queues a new mail).
var DefaultBackoff = []time.Duration{30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute}

// Dispatcher delivers queued invitation mail. Every `serve` replica runs
// one: each claims due rows with FOR UPDATE SKIP LOCKED and a lease, so
// replicas share the queue without sending a row twice at once.
type Dispatcher struct {
	Queue     Queue
	Mailer    cs.Mailer
	PublicURL string
	Logger    *slog.Logger
	// Interval between polls (5 s when zero); Wake polls at once.
	Interval time.Duration
	// Backoff after each failed attempt (DefaultBackoff when nil); after
	// len(Backoff)+1 attempts the mail has failed.
	Backoff []time.Duration
	// Lease is how long a claimed row is not due for anyone else (2 min
	// when zero): longer than a send's timeout.
	Lease time.Duration

	wake chan struct{}
}

// NewDispatcher returns a dispatcher with the defaults.
func NewDispatcher(q Queue, m cs.Mailer, publicURL string, logger *slog.Logger) *Dispatcher {
	return &Dispatcher{Queue: q, Mailer: m, PublicURL: publicURL, Logger: logger, wake: make(chan struct{}, 1)}
}

// Wake asks for a poll now (an invitation was just queued); it never blocks.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run polls until ctx is done.
func (d *Dispatcher) Run(ctx context.Context) {
	interval := d.Interval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for {
			n, err := d.RunOnce(ctx)
			if err != nil && ctx.Err() == nil {
				d.Logger.Error("invitation mail: claim failed", "error", err)
			}
			if n == 0 || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.wake:
		}
	}
}

// RunOnce claims a batch of due mails and sends them; it returns how many
// it claimed.
func (d *Dispatcher) RunOnce(ctx context.Context) (int, error) {
	lease := d.Lease
	if lease <= 0 {
		lease = 2 * time.Minute
	}
	batch, err := d.Queue.ClaimInvitationMails(ctx, 10, lease)
	if err != nil {
		return 0, err
	}
	for _, m := range batch {
		d.deliver(ctx, m)
	}
	return len(batch), nil
}

func (d *Dispatcher) deliver(ctx context.Context, m store.InvitationMail) {
	log := d.Logger.With("invitation_id", m.ID, "org", m.OrgID, "attempt", m.Attempt)
	msg, err := InvitationMail(m.Invitation, d.PublicURL)
	if err == nil {
		err = d.Mailer.Send(ctx, msg)
	}
	if err == nil {
		if err := d.Queue.InvitationMailSent(ctx, m.ID); err != nil {
			log.Error("invitation mail sent, but not recorded (it may be sent again)", "error", err)
			return
		}
		log.Info("invitation mail sent")
		return
	}
	backoff := d.Backoff
	if backoff == nil {
		backoff = DefaultBackoff
	}
	reason := err.Error() // Sender's errors are sanitized already
	var retryAt time.Time
	if m.Attempt <= len(backoff) {
		retryAt = time.Now().Add(backoff[m.Attempt-1])
	}
	if err := d.Queue.InvitationMailFailed(ctx, m.ID, reason, retryAt); err != nil {
		log.Error("invitation mail failed, and the failure was not recorded", "error", err)
		return
	}
	if retryAt.IsZero() {
		log.Warn("invitation mail failed for good; the invitation stays pending", "reason", reason)
	} else {
		log.Warn("invitation mail failed; will retry", "reason", reason, "retry_at", retryAt)
	}
}
