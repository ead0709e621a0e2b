// Package app wires Countersign's pieces together: the store, the Temporal
// client, the HTTP API and the worker. Every command (serve, worker, dev)
// goes through it, so production and dev run the same code.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
	"github.com/countersign/countersign/internal/blob/dirblob"
	"github.com/countersign/countersign/internal/blob/s3blob"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/mail"
	"github.com/countersign/countersign/internal/media"
	"github.com/countersign/countersign/internal/metrics"
	"github.com/countersign/countersign/internal/postflow"
	"github.com/countersign/countersign/internal/posts"
	"github.com/countersign/countersign/internal/publish"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/secrets"
	csslack "github.com/countersign/countersign/internal/slack"
	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/temporalclient"
	"github.com/countersign/countersign/server"
	"github.com/countersign/countersign/worker"
)

// App holds the connections a Countersign process needs.
type App struct {
	Config   config.Config
	Logger   *slog.Logger
	Store    *store.Store
	Temporal client.Client
	Metrics  *metrics.Metrics
	// Slack is the Slack integration, nil when no Slack setting is present.
	Slack *csslack.Service
	// Signer signs decisions and edits (key derived from
	// COUNTERSIGN_SECRET_KEY); nil without a key.
	Signer *secrets.DecisionSigner
	// ReviewLinks mints and checks external reviewers' links (key derived
	// from COUNTERSIGN_SECRET_KEY); nil without a key.
	ReviewLinks *secrets.ReviewLinks
	// Mailer sends mail (external reviewers' links); nil: not configured,
	// and the links are not sent (logged).
	Mailer cs.Mailer
	// Media stores uploads in the blob store (COUNTERSIGN_BLOB_URL) and is
	// the publishers' countersign.MediaSource.
	Media *media.Service
	// MediaURLs signs the expiring image URLs that Slack and webhook
	// receivers fetch (MediaURLs.URL); it signs nothing without a key.
	MediaURLs *media.URLs
	// Mail delivers invitation mail (COUNTERSIGN_SMTP_URL); nil without SMTP.
	Mail *mail.Dispatcher
}

// Open connects to PostgreSQL and Temporal.
func Open(ctx context.Context, cfg config.Config, logger *slog.Logger) (*App, error) {
	if err := cfg.RequireDatabase(); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	st.SetEgress(cfg.Egress)
	if len(cfg.SecretKey) > 0 {
		if err := st.SetSecretKey(cfg.SecretKey); err != nil {
			st.Close()
			return nil, err
		}
		// Credentials sealed before they were bound to their URL are
		// re-sealed now (the key is not available to SQL migrations).
		n, stuck, err := st.ResealCredentials(ctx)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("re-seal account credentials (has `countersign migrate` run?): %w", err)
		}
		if n > 0 {
			logger.Info("account credentials re-sealed, bound to their network URL", "accounts", n)
		}
		if len(stuck) > 0 {
			logger.Warn("account credentials that COUNTERSIGN_SECRET_KEY does not open were left as they are; an admin must enter them again",
				"accounts", stuck)
		}
	}
	m := metrics.New()
	m.PostsByStatus(st.CountPostsByStatus)
	tc, err := temporalclient.Dial(ctx, cfg, logger, m.Temporal())
	if err != nil {
		st.Close()
		return nil, err
	}
	blobs, err := OpenBlobStore(cfg)
	if err != nil {
		tc.Close()
		st.Close()
		return nil, err
	}
	urls := &media.URLs{BaseURL: cfg.PublicURL}
	var signer *secrets.DecisionSigner
	var links *secrets.ReviewLinks
	if len(cfg.SecretKey) > 0 {
		if signer, err = secrets.NewDecisionSigner(cfg.SecretKey); err == nil {
			links, err = secrets.NewReviewLinks(cfg.SecretKey)
		}
		if err == nil {
			urls.Signer, err = secrets.NewMediaURLSigner(cfg.SecretKey)
		}
		if err != nil {
			tc.Close()
			st.Close()
			return nil, err
		}
	}
	slackCfg := csslack.Config{BotToken: cfg.SlackBotToken, SigningSecret: cfg.SlackSigningSecret,
		APIURL: cfg.SlackAPIURL, AppToken: cfg.SlackAppToken, Egress: cfg.Egress}
	if urls.Signer != nil {
		slackCfg.MediaURL = urls.ThumbnailURL // Slack shows the image small: its thumbnail
	}
	slack := csslack.New(slackCfg, st, logger)
	a := &App{Config: cfg, Logger: logger, Store: st, Temporal: tc, Metrics: m, Slack: slack, Signer: signer,
		Media: &media.Service{Store: st, Blobs: blobs, Logger: logger}, MediaURLs: urls, ReviewLinks: links}
	if err := a.openMail(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// openMail sets up invitation mail when COUNTERSIGN_SMTP_URL is set: the
// store queues invitations instead of handing their tokens to the admin.
func (a *App) openMail() error {
	cfg := a.Config
	if cfg.SMTPURL == "" {
		return nil
	}
	if len(cfg.SecretKey) == 0 {
		return fmt.Errorf("COUNTERSIGN_SMTP_URL needs COUNTERSIGN_SECRET_KEY (queued invitation tokens are sealed with it)")
	}
	sender, err := mail.NewSender(mail.Settings{URL: cfg.SMTPURL, From: cfg.MailFrom, Egress: cfg.Egress})
	if err != nil {
		return err
	}
	a.Store.SetMailInvitations(true)
	a.Mail = mail.NewDispatcher(a.Store, sender, cfg.PublicURL, a.Logger)
	a.Mailer = sender // external reviewers' links go out with the same sender
	a.Logger.Info("invitation mail on", "smtp", sender.String())
	return nil
}

// OpenBlobStore opens where media bytes live (COUNTERSIGN_BLOB_URL): by
// default the directory media/ under COUNTERSIGN_DATA_DIR; file:///path for
// another directory; s3://bucket/prefix for an S3-compatible store, reached
// through the egress guard.
func OpenBlobStore(cfg config.Config) (cs.BlobStore, error) {
	u := cfg.BlobURL
	switch {
	case u == "":
		return dirblob.Open(filepath.Join(cfg.DataDir, "media"))
	case strings.HasPrefix(u, "file://"):
		p, err := url.Parse(u)
		if err != nil || p.Path == "" || p.Host != "" || p.RawQuery != "" {
			return nil, fmt.Errorf("COUNTERSIGN_BLOB_URL: a directory is written file:///absolute/path")
		}
		return dirblob.Open(p.Path)
	case strings.HasPrefix(u, "s3://"):
		return s3blob.Open(s3blob.Config{URL: u, Endpoint: cfg.S3Endpoint, Region: cfg.S3Region,
			AccessKeyID: cfg.S3AccessKeyID, SecretAccessKey: cfg.S3SecretAccessKey, Egress: cfg.Egress})
	}
	return nil, fmt.Errorf("COUNTERSIGN_BLOB_URL must be empty, file:///path or s3://bucket/prefix")
}

// Close closes the connections.
func (a *App) Close() {
	a.Slack.Wait() // interactions acknowledged but still being handled
	a.Temporal.Close()
	a.Store.Close()
	_ = a.Metrics.Close()
}

// Server builds the HTTP API.
func (a *App) Server() *server.Server {
	d := server.Deps{Store: a.Store, Temporal: a.Temporal, Logger: a.Logger, Metrics: a.Metrics, Slack: a.Slack,
		Signer: a.Signer, MemberRate: posts.PerMinute(a.Config.MemberChangesPerMinute), PublicURL: a.Config.PublicURL,
		Media: a.Media, MediaURLs: a.MediaURLs, ReviewLinks: a.ReviewLinks}
	if a.Mail != nil {
		d.MailQueued = a.Mail.Wake
	}
	return server.New(d)
}

// ServeAPI serves the HTTP API on l until ctx is done, then drains requests.
func (a *App) ServeAPI(ctx context.Context, l net.Listener) error {
	api := a.Server()
	srv := api.HTTPServer(l.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	if a.Mail != nil {
		// Every replica delivers the shared mail queue (SKIP LOCKED claims).
		mailCtx, stop := context.WithCancel(ctx)
		mailDone := make(chan struct{})
		defer func() { stop(); <-mailDone }()
		go func() { defer close(mailDone); a.Mail.Run(mailCtx) }()
	}
	if a.Slack.SocketMode() {
		// Interactions over Slack's Socket Mode go through the same handler
		// as POST /slack/interactions.
		socketCtx, stop := context.WithCancel(ctx)
		socketDone := make(chan struct{})
		defer func() { stop(); <-socketDone }()
		go func() {
			defer close(socketDone)
			if err := a.Slack.RunSocketMode(socketCtx, api.HandleSlackInteraction); err != nil {
				a.Logger.Error("slack socket mode stopped", "error", err)
			}
		}()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down API: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Activities builds the workflow's activities on the app's dependencies.
// Without COUNTERSIGN_SECRET_KEY there is no decision signer: nothing can
// sign a decision either, and authorizations fail as not configured.
func (a *App) Activities() *activities.Activities {
	pub := publish.New(a.Store, a.Logger, a.Config.PublicURL, a.Config.Egress)
	pub.Media = a.Media // the images' bytes, from the blob store
	if a.MediaURLs.Signer != nil {
		pub.SignMediaURL = a.MediaURLs.URL // the webhook's signed download URLs
	}
	acts := &activities.Activities{
		Directory: a.Store,
		Mirror:    observedMirror{a.Store, a.Metrics},
		Notifier:  a.notifier(),
		Publisher: pub,
	}
	if a.Signer != nil { // the API's own signer; a nil one must stay a nil interface
		acts.Signer = a.Signer
	}
	if a.Mailer != nil && a.ReviewLinks != nil {
		acts.Reviews = &review.Sender{Links: a.ReviewLinks, Mailer: a.Mailer, Accounts: a.Store, PublicURL: a.Config.PublicURL}
	}
	return acts
}

// observedMirror mirrors post state and counts what the new events say.
type observedMirror struct {
	store   *store.Store
	metrics *metrics.Metrics
}

func (o observedMirror) SavePostState(ctx context.Context, postID string, st cs.PostState, events []cs.PostEvent) error {
	inserted, err := o.store.MirrorPost(ctx, postID, st, events)
	if err == nil {
		o.metrics.ObserveEvents(st, inserted)
	}
	return err
}

// MetricsHandler is the metrics listener's whole surface: GET /metrics.
// It never goes on the public API (SPEC §8): its counts span every org.
func (a *App) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.Metrics.Handler())
	return mux
}

// ServeMetrics serves MetricsHandler on l until ctx is done.
func (a *App) ServeMetrics(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: a.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	a.Logger.Info("metrics listening", "addr", l.Addr().String())
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics: %w", err)
	}
	return nil
}

// RunWorker polls the task queue until ctx is done, then stops gracefully
// (in-flight activities get the worker's stop timeout to finish).
func (a *App) RunWorker(ctx context.Context) error {
	w := worker.New(a.Temporal, a.Activities())
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	a.Logger.Info("worker polling", "task_queue", worker.TaskQueue, "namespace", a.Config.TemporalNamespace)
	rec := &postflow.Reconciler{Store: a.Store, Temporal: a.Temporal, Logger: a.Logger, Grace: time.Minute, Interval: time.Minute, RepairEvery: 10}
	done, swept := make(chan struct{}), make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	go func() { a.sweepMedia(ctx, time.Hour); close(swept) }()
	// Comments reach Slack from the worker, through the outbox the API writes.
	relay := &csslack.CommentRelay{Queue: a.Store, Slack: a.Slack, Logger: a.Logger.With("component", "comments")}
	relayed := make(chan struct{})
	go func() { relay.Run(ctx); close(relayed) }()
	<-ctx.Done()
	<-done
	<-relayed
	<-swept
	w.Stop()
	return nil
}

// sweepMedia deletes, every interval until ctx is done, the uploads never
// attached to a post within media.UnattachedTTL. Any number of workers may
// sweep at once: a row is deleted once, under its "unattached" condition.
func (a *App) sweepMedia(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for {
			n, err := a.Media.Sweep(ctx, time.Now(), 500)
			if err != nil && ctx.Err() == nil {
				a.Logger.Warn("sweep unattached media", "error", err)
			}
			if n > 0 {
				a.Logger.Info("unattached media deleted", "count", n)
			}
			if err != nil || n < 500 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// notifier is Slack's when a bot token is configured, else the log.
func (a *App) notifier() activities.Notifier {
	if n := a.Slack.Notifier(); n != nil {
		return n
	}
	return activities.LogNotifier{Logger: a.Logger}
}
