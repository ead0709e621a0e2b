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
	"time"

	"go.temporal.io/sdk/client"

	"github.com/countersign/countersign/activities"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/postflow"
	"github.com/countersign/countersign/internal/publish"
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
	if len(cfg.SecretKey) > 0 {
		if err := st.SetSecretKey(cfg.SecretKey); err != nil {
			st.Close()
			return nil, err
		}
	}
	tc, err := temporalclient.Dial(ctx, cfg, logger)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &App{Config: cfg, Logger: logger, Store: st, Temporal: tc}, nil
}

// Close closes the connections.
func (a *App) Close() {
	a.Temporal.Close()
	a.Store.Close()
}

// Server builds the HTTP API.
func (a *App) Server() *server.Server {
	return server.New(server.Deps{Store: a.Store, Temporal: a.Temporal, Logger: a.Logger})
}

// ServeAPI serves the HTTP API on l until ctx is done, then drains requests.
func (a *App) ServeAPI(ctx context.Context, l net.Listener) error {
	srv := a.Server().HTTPServer(l.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
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
func (a *App) Activities() *activities.Activities {
	return &activities.Activities{
		Directory: a.Store,
		Mirror:    a.Store,
		Notifier:  activities.LogNotifier{Logger: a.Logger},
		Publisher: publish.New(a.Store, a.Logger, a.Config.PublicURL),
	}
}

// RunWorker polls the task queue until ctx is done, then stops gracefully
// (in-flight activities get the worker's stop timeout to finish).
func (a *App) RunWorker(ctx context.Context) error {
	w := worker.New(a.Temporal, a.Activities())
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	a.Logger.Info("worker polling", "task_queue", worker.TaskQueue, "namespace", a.Config.TemporalNamespace)
	rec := &postflow.Reconciler{Store: a.Store, Temporal: a.Temporal, Logger: a.Logger, Grace: time.Minute, Interval: time.Minute}
	done := make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	<-ctx.Done()
	<-done
	w.Stop()
	return nil
}
