// Package publish sends approved posts to their networks, exactly once per
// post revision (SPEC §5). Each network is an Adapter; Publisher runs the
// protocol around them: record the attempt before calling the network, and
// on a later attempt settle what the first one did before posting again.
package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
	"github.com/countersign/countersign/internal/store"
)

// Request is what an adapter publishes. Credentials never leave the adapter.
type Request struct {
	activities.PublishRequest
	Account     cs.Account
	Credentials map[string]string
	// IdemKey is fixed for the post revision: the network deduplicates on it.
	IdemKey string
	// Retry is true when an earlier attempt may have reached the network.
	Retry bool
}

// Result is where the post went.
type Result = activities.PublishResult

// Adapter publishes to one network. Its errors say what is known:
// ErrRejected (the network refused: final), ErrUnknown (it may have posted
// and the adapter could not find out), anything else: surely not posted.
type Adapter interface {
	Publish(ctx context.Context, r Request) (Result, error)
}

// Outcome errors of adapters; wrap them with the network's message.
var (
	ErrRejected = errors.New("rejected by the network")
	ErrUnknown  = errors.New("outcome unknown")
)

// Store is what publishing needs from the database.
type Store interface {
	Account(ctx context.Context, orgID, accountID string) (cs.Account, error)
	AccountCredentials(ctx context.Context, orgID, accountID string) (map[string]string, error)
	BeginPublication(ctx context.Context, postID string, revision int, network, idemKey string) (store.Publication, error)
	FinishPublication(ctx context.Context, p store.Publication) error
	NotePublicationError(ctx context.Context, postID string, revision int, msg string) error
}

// Publisher implements activities.Publisher over the adapters.
type Publisher struct {
	Store    Store
	Adapters map[cs.Network]Adapter
	Logger   *slog.Logger
}

// New returns a Publisher with the built-in adapters.
func New(st Store, logger *slog.Logger, publicURL string) *Publisher {
	client := &http.Client{Timeout: 30 * time.Second}
	return &Publisher{
		Store:  st,
		Logger: logger,
		Adapters: map[cs.Network]Adapter{
			cs.NetworkLog:     Log{Logger: logger, PublicURL: publicURL},
			cs.NetworkWebhook: Webhook{Client: client},
		},
	}
}

// IdemKey is the key a network deduplicates one post revision on.
func IdemKey(postID string, revision int) string { return fmt.Sprintf("post-%s-r%d", postID, revision) }

// Publish publishes a post revision exactly once.
func (p *Publisher) Publish(ctx context.Context, req activities.PublishRequest) (activities.PublishResult, error) {
	acct, err := p.Store.Account(ctx, req.OrgID, req.AccountID)
	if err != nil {
		if cs.ErrorCode(err) == cs.ENOTFOUND {
			return Result{}, activities.PublishRejected("the account was deleted")
		}
		return Result{}, err
	}
	adapter, ok := p.Adapters[acct.Network]
	if !ok {
		return Result{}, activities.PublishRejected(fmt.Sprintf("publishing to %s is not available in this build", acct.Network))
	}
	pub, err := p.Store.BeginPublication(ctx, req.PostID, req.Revision, string(acct.Network), IdemKey(req.PostID, req.Revision))
	if err != nil {
		return Result{}, err
	}
	switch pub.Status {
	case store.PubPublished:
		return Result{ExternalID: pub.ExternalID, ExternalURL: pub.ExternalURL}, nil
	case store.PubFailed:
		return Result{}, activities.PublishRejected(pub.LastError)
	case store.PubUnknown:
		return Result{}, activities.PublishUnknown(pub.LastError)
	}
	creds, err := p.Store.AccountCredentials(ctx, req.OrgID, req.AccountID)
	if err != nil {
		return Result{}, err
	}
	res, err := adapter.Publish(ctx, Request{PublishRequest: req, Account: acct, Credentials: creds, IdemKey: pub.IdemKey, Retry: pub.Attempts > 1})
	logger := p.Logger.With("post_id", req.PostID, "revision", req.Revision, "network", acct.Network, "attempt", pub.Attempts)
	switch {
	case err == nil:
		pub.Status, pub.ExternalID, pub.ExternalURL = store.PubPublished, res.ExternalID, res.ExternalURL
		if ferr := p.Store.FinishPublication(ctx, pub); ferr != nil {
			// Posted but not recorded: the retry finds the row "attempting"
			// and the adapter's idempotency settles it.
			return Result{}, ferr
		}
		logger.Info("post published", "external_id", res.ExternalID)
		return res, nil
	case errors.Is(err, ErrRejected):
		pub.Status, pub.LastError = store.PubFailed, err.Error()
		logger.Warn("network rejected the post", "error", err)
		if ferr := p.Store.FinishPublication(ctx, pub); ferr != nil {
			return Result{}, ferr
		}
		return Result{}, activities.PublishRejected(err.Error())
	case errors.Is(err, ErrUnknown):
		pub.Status, pub.LastError = store.PubUnknown, err.Error()
		logger.Error("publish outcome unknown: a person must look", "error", err)
		if ferr := p.Store.FinishPublication(ctx, pub); ferr != nil {
			return Result{}, ferr
		}
		return Result{}, activities.PublishUnknown(err.Error())
	default:
		logger.Warn("publish attempt failed; will retry", "error", err)
		_ = p.Store.NotePublicationError(ctx, req.PostID, req.Revision, err.Error())
		return Result{}, err
	}
}
