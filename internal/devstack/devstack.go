// Package devstack runs all of Countersign on one machine with no other
// setup: an embedded Temporal server and Web UI, a private PostgreSQL, the
// migrations, the API and a worker. It backs `countersign dev` and the tests,
// and is the only production-adjacent package that links the Temporal server.
package devstack

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/countersign/countersign/internal/app"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/devtemporal"
	"github.com/countersign/countersign/internal/egress"
	"github.com/countersign/countersign/internal/mail/mailsink"
	"github.com/countersign/countersign/internal/pgserver"
	"github.com/countersign/countersign/internal/secrets"
	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/temporalclient"
)

// Options configures the dev stack. Zero ports mean the documented defaults.
type Options struct {
	DataDir      string // default ./.countersign
	HTTPAddr     string // default :8080
	TemporalPort int    // default 7233
	UIPort       int    // default 8233; -1 disables the Web UI
	PGPort       int    // default 5433 (beside a system PostgreSQL on 5432)
	// MetricsAddr is where /metrics is served, never on the API (SPEC §8);
	// "" serves none. `countersign dev` defaults it to DefaultMetricsAddr.
	MetricsAddr string
	DatabaseURL string // use this PostgreSQL instead of starting one
	// TemporalAddress, with TemporalNamespace (default "default"), is a
	// Temporal to use instead of starting one; its search attributes are
	// registered if missing.
	TemporalAddress   string
	TemporalNamespace string
	// TemporalPersistence is where the embedded Temporal keeps its data:
	// "sqlite" (the default, a file in DataDir) or "postgres" (databases
	// temporal and temporal_visibility on the stack's PostgreSQL, as compose).
	TemporalPersistence string
	PGBinDir            string // where initdb and postgres are; default: PATH and the usual places
	Logger              *slog.Logger
	// MailNotices receives the one-line notice of each mail the dev SMTP
	// sink keeps (default: standard output).
	MailNotices io.Writer
}

// Defaults of Options, as documented in the README.
const (
	DefaultDataDir      = ".countersign"
	DefaultHTTPAddr     = ":8080"
	DefaultTemporalPort = 7233
	DefaultUIPort       = 8233
	DefaultPGPort       = 5433
	DefaultMetricsAddr  = "127.0.0.1:9090"
)

// The values of Options.TemporalPersistence.
const (
	PersistenceSQLite   = "sqlite"
	PersistencePostgres = "postgres"
)

// Stack is a running dev stack.
type Stack struct {
	App      *app.App
	Temporal *devtemporal.Server
	PG       *pgserver.Server // nil when DatabaseURL was given
	APIURL   string
	// MetricsURL is the metrics listener's /metrics, "" without one.
	MetricsURL string
	Demo       *Demo // the demo org's credentials
	// Mail is the in-process SMTP sink invitation mail goes to (under
	// <data-dir>/mail), nil when COUNTERSIGN_SMTP_URL names a real server.
	Mail   *mailsink.Sink
	Seeded bool // the demo org was created by this start

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	err    error
}

// Start brings the stack up; on error, whatever started is stopped again.
func Start(ctx context.Context, o Options) (s *Stack, err error) {
	o.applyDefaults()
	if o.TemporalPersistence != PersistenceSQLite && o.TemporalPersistence != PersistencePostgres {
		return nil, fmt.Errorf("--temporal-persistence %q: want %s or %s", o.TemporalPersistence, PersistenceSQLite, PersistencePostgres)
	}
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	s = &Stack{}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()

	dbURL := o.DatabaseURL
	if dbURL == "" {
		pgLog, err := os.OpenFile(filepath.Join(o.DataDir, "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return s, err
		}
		defer pgLog.Close() // the child process keeps its own descriptor
		if s.PG, err = pgserver.Start(ctx, pgserver.Options{Dir: filepath.Join(o.DataDir, "postgres"), Port: o.PGPort, BinDir: o.PGBinDir, Log: pgLog}); err != nil {
			return s, fmt.Errorf("PostgreSQL: %w", err)
		}
		dbURL = s.PG.URL
	}

	temporalAddr, namespace := o.TemporalAddress, o.TemporalNamespace
	if namespace == "" {
		namespace = "default"
	}
	if temporalAddr == "" {
		uiPort := o.UIPort
		if uiPort < 0 {
			uiPort = 0
		}
		to := devtemporal.Options{
			DBFile:  filepath.Join(o.DataDir, "temporal.db"),
			Port:    o.TemporalPort,
			UIPort:  uiPort,
			LogFile: filepath.Join(o.DataDir, "temporal.log"),
		}
		if o.TemporalPersistence == PersistencePostgres {
			to.DBFile, to.PostgresURL = "", dbURL
		}
		s.Temporal, err = devtemporal.Start(ctx, to)
		if err != nil {
			return s, err
		}
		temporalAddr, namespace = s.Temporal.Address, s.Temporal.Namespace
	}

	l, err := net.Listen("tcp", o.HTTPAddr)
	if err != nil {
		return s, fmt.Errorf("API: %w (choose another address with --http-addr)", err)
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	s.APIURL = "http://" + hostPort(l.Addr().(*net.TCPAddr))
	var ml net.Listener
	if o.MetricsAddr != "" {
		if ml, err = net.Listen("tcp", o.MetricsAddr); err != nil {
			return s, fmt.Errorf("metrics: %w (choose another address with --metrics-addr)", err)
		}
		defer func() {
			if err != nil {
				ml.Close()
			}
		}()
		s.MetricsURL = "http://" + hostPort(ml.Addr().(*net.TCPAddr)) + "/metrics"
	}

	key, err := secretKey(o.DataDir)
	if err != nil {
		return s, err
	}
	smtpURL := os.Getenv("COUNTERSIGN_SMTP_URL")
	if smtpURL == "" {
		// Invitation mail goes to an SMTP sink that keeps it under the data
		// directory and prints a notice with the link to follow.
		notices := o.MailNotices
		if notices == nil {
			notices = os.Stdout
		}
		if s.Mail, err = mailsink.Start(mailsink.Options{Dir: filepath.Join(o.DataDir, "mail"),
			Notify: func(m mailsink.Message) { fmt.Fprintln(notices, mailsink.Notice(m)) }}); err != nil {
			return s, fmt.Errorf("mail sink: %w", err)
		}
		smtpURL = s.Mail.URL()
	}
	cfg, err := config.Load(func(name string) string {
		switch name {
		case "DATABASE_URL":
			return dbURL
		case "TEMPORAL_ADDRESS":
			return temporalAddr
		case "TEMPORAL_NAMESPACE":
			return namespace
		case "COUNTERSIGN_HTTP_ADDR":
			return o.HTTPAddr
		case "COUNTERSIGN_METRICS_ADDR":
			return o.MetricsAddr
		case "COUNTERSIGN_SECRET_KEY":
			return key
		case "COUNTERSIGN_DATA_DIR": // media under the dev stack's own directory
			return o.DataDir
		case "COUNTERSIGN_SMTP_URL":
			return smtpURL
		case "TEMPORAL_GRPC_COMPRESSION":
			// Temporal is on this machine: compressing costs CPU for nothing.
			if v := os.Getenv(name); v != "" {
				return v
			}
			return "none"
		case "COUNTERSIGN_PUBLIC_URL":
			if v := os.Getenv(name); v != "" {
				return v
			}
			return s.APIURL
		case egress.Variable:
			// The dev stack reaches local test servers (a webhook receiver,
			// a local Mastodon) on loopback, plus what the environment adds.
			return strings.Trim(DevEgressAllow+","+os.Getenv(name), ",")
		}
		return os.Getenv(name) // Slack settings and the like still come from the environment
	})
	if err != nil {
		return s, err
	}
	// Migrate first: opening the app re-seals old credentials, which needs
	// the current schema.
	if err := migrate(ctx, dbURL); err != nil {
		return s, err
	}
	if s.App, err = app.Open(ctx, cfg, o.Logger); err != nil {
		return s, err
	}
	if s.Temporal == nil {
		if err := temporalclient.EnsureSearchAttributes(ctx, s.App.Temporal, namespace); err != nil {
			return s, err
		}
	}
	if s.Demo, s.Seeded, err = loadOrSeed(ctx, s.App.Store, o.DataDir, s.APIURL); err != nil {
		return s, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.run(func() error { return s.App.ServeAPI(runCtx, l) })
	s.run(func() error { return s.App.RunWorker(runCtx) })
	if ml != nil {
		s.run(func() error { return s.App.ServeMetrics(runCtx, ml) })
	}
	return s, nil
}

func (s *Stack) run(f func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := f(); err != nil {
			s.errMu.Lock()
			s.err = errors.Join(s.err, err)
			s.errMu.Unlock()
		}
	}()
}

// Stop stops the API and worker, then Temporal, then PostgreSQL, and returns
// what failed while running.
func (s *Stack) Stop() error {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.App != nil {
		s.App.Close()
	}
	if s.Temporal != nil {
		s.Temporal.Stop()
	}
	if s.PG != nil {
		s.PG.Stop()
	}
	if s.Mail != nil {
		_ = s.Mail.Close()
	}
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

func (o *Options) applyDefaults() {
	if o.DataDir == "" {
		o.DataDir = DefaultDataDir
	}
	if o.HTTPAddr == "" {
		o.HTTPAddr = DefaultHTTPAddr
	}
	if o.TemporalPort == 0 {
		o.TemporalPort = DefaultTemporalPort
	}
	if o.UIPort == 0 {
		o.UIPort = DefaultUIPort
	}
	if o.PGPort == 0 {
		o.PGPort = DefaultPGPort
	}
	if o.TemporalPersistence == "" {
		o.TemporalPersistence = PersistenceSQLite
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// secretKey returns the dev stack's credential key, made on first start and
// kept in the data directory.
func secretKey(dir string) (string, error) {
	path := filepath.Join(dir, "secret.key")
	if b, err := os.ReadFile(path); err == nil {
		return string(b), nil
	}
	key := hex.EncodeToString(secrets.RandomBytes(32))
	return key, os.WriteFile(path, []byte(key), 0o600)
}

// DevEgressAllow is what the dev stack's outbound calls may reach beyond
// public addresses: loopback.
const DevEgressAllow = "127.0.0.0/8,::1/128"

func migrate(ctx context.Context, dbURL string) error {
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer st.Close()
	_, err = st.Migrate(ctx)
	return err
}

func hostPort(a *net.TCPAddr) string {
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, strconv.Itoa(a.Port))
}
