// Package cli is the `countersign` command line: one cobra command per
// subcommand, each reading its configuration from the environment.
package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/countersign/countersign/internal/app"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/postlog"
	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/temporalclient"
)

// extra holds commands added by other builds (the dev stack's `dev`).
var extra []*cobra.Command

// Register adds a subcommand; builds with the dev tag use it for `dev`.
func Register(c *cobra.Command) { extra = append(extra, c) }

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "countersign",
		Short:         "Self-hosted approval orchestrator for social media posts",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(serveCmd(), workerCmd(), migrateCmd(), bootstrapCmd(), probeCmd())
	root.AddCommand(extra...)
	if _, ok := lookup(root, "dev"); !ok {
		root.AddCommand(&cobra.Command{
			Use:   "dev",
			Short: "Run everything on this machine (not in this build: use `go run -tags dev ./cmd/countersign dev`)",
			RunE: func(*cobra.Command, []string) error {
				return fmt.Errorf("this binary is the production build, without the embedded dev stack: run `go run -tags dev ./cmd/countersign dev`")
			},
		})
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "countersign:", err)
		return 1
	}
	return 0
}

func lookup(root *cobra.Command, name string) (*cobra.Command, bool) {
	for _, c := range root.Commands() {
		if c.Name() == name {
			return c, true
		}
	}
	return nil, false
}

// NewLogger builds the process logger from the configuration: JSON unless
// COUNTERSIGN_LOG_FORMAT=text, and every line about a post, the Temporal
// SDK's included, carries org, post_id and workflow_id.
func NewLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(postlog.NewHandler(h, postlog.DefaultOrgs))
}

// openApp loads the configuration and connects, for the production commands.
func openApp(cmd *cobra.Command) (*app.App, error) {
	cfg, err := config.FromEnv()
	if err != nil {
		return nil, err
	}
	return app.Open(cmd.Context(), cfg, NewLogger(cfg, cmd.ErrOrStderr()))
}

func serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Serve the HTTP API (configured by environment)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			stop, err := serveMetrics(cmd.Context(), a)
			if err != nil {
				return err
			}
			defer stop()
			l, err := net.Listen("tcp", a.Config.HTTPAddr)
			if err != nil {
				return fmt.Errorf("listen on COUNTERSIGN_HTTP_ADDR %s: %w", a.Config.HTTPAddr, err)
			}
			a.Logger.Info("API listening", "addr", l.Addr().String())
			return a.ServeAPI(cmd.Context(), l)
		},
	}
}

func workerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run a Temporal worker for the post workflows (configured by environment)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			stop, err := serveMetrics(cmd.Context(), a)
			if err != nil {
				return err
			}
			defer stop()
			return a.RunWorker(cmd.Context())
		},
	}
}

// serveMetrics starts the metrics listener on COUNTERSIGN_METRICS_ADDR, if
// set; stop ends it and waits.
func serveMetrics(ctx context.Context, a *app.App) (stop func(), err error) {
	if a.Config.MetricsAddr == "" {
		a.Logger.Info("no metrics listener: set COUNTERSIGN_METRICS_ADDR to serve /metrics")
		return func() {}, nil
	}
	l, err := net.Listen("tcp", a.Config.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on COUNTERSIGN_METRICS_ADDR %s: %w", a.Config.MetricsAddr, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.ServeMetrics(ctx, l); err != nil {
			a.Logger.Error("metrics listener stopped", "error", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}

func migrateCmd() *cobra.Command {
	var skipTemporal bool
	c := &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations and register Temporal search attributes (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.FromEnv()
			if err != nil {
				return err
			}
			if err := cfg.RequireDatabase(); err != nil {
				return err
			}
			logger := NewLogger(cfg, cmd.ErrOrStderr())
			st, err := store.Open(cmd.Context(), cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer st.Close()
			n, err := st.Migrate(cmd.Context())
			if err != nil {
				return err
			}
			logger.Info("database migrated", "applied", n)
			if skipTemporal {
				return nil
			}
			tc, err := temporalclient.Dial(cmd.Context(), cfg, logger, nil)
			if err != nil {
				return err
			}
			defer tc.Close()
			if err := temporalclient.EnsureSearchAttributes(cmd.Context(), tc, cfg.TemporalNamespace); err != nil {
				return fmt.Errorf("%w (on Temporal Cloud, create them with tcld and run migrate --skip-temporal)", err)
			}
			logger.Info("search attributes registered", "namespace", cfg.TemporalNamespace)
			return nil
		},
	}
	c.Flags().BoolVar(&skipTemporal, "skip-temporal", false, "only migrate the database; leave Temporal's search attributes alone")
	return c
}

func bootstrapCmd() *cobra.Command {
	var org, email, name string
	var asJSON bool
	c := &cobra.Command{
		Use:   "bootstrap --org NAME --email E --name N [--json]",
		Short: "Create an organization and its owner, and print the owner's API token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.FromEnv()
			if err != nil {
				return err
			}
			if err := cfg.RequireDatabase(); err != nil {
				return err
			}
			st, err := store.Open(cmd.Context(), cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer st.Close()
			b, err := st.Bootstrap(cmd.Context(), org, email, name)
			if err != nil {
				return err
			}
			return PrintBootstrap(cmd.OutOrStdout(), b, asJSON, cfg.PublicURL)
		},
	}
	c.Flags().StringVar(&org, "org", "", "organization name (required)")
	c.Flags().StringVar(&email, "email", "", "owner's e-mail (required)")
	c.Flags().StringVar(&name, "name", "", "owner's name")
	c.Flags().BoolVar(&asJSON, "json", false, `print {"org_id","user_id","token"} as JSON`)
	_ = c.MarkFlagRequired("org")
	_ = c.MarkFlagRequired("email")
	return c
}

// PrintBootstrap prints what bootstrap created, as text or JSON.
func PrintBootstrap(w io.Writer, b store.Bootstrapped, asJSON bool, apiURL string) error {
	if asJSON {
		return json.NewEncoder(w).Encode(map[string]string{"org_id": b.Org.ID, "user_id": b.User.ID, "token": b.Token})
	}
	_, err := fmt.Fprintf(w, "org     %s (%s)\nowner   %s <%s>, member %s\ntoken   %s\n\nThe token is shown once. Try:\n  curl -H 'Authorization: Bearer %s' %s/v1/me\n",
		b.Org.Name, b.Org.ID, strings.TrimSpace(b.User.Name), b.User.Email, b.Member.ID, b.Token, b.Token, apiURL)
	return err
}

// probeCmd is the container health check: the image has no curl.
func probeCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "probe URL",
		Short:  "Exit 0 when URL answers 2xx within 3 seconds (container health checks)",
		Args:   cobra.ExactArgs(1),
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				return fmt.Errorf("%s answered %s", args[0], resp.Status)
			}
			return nil
		},
	}
}
