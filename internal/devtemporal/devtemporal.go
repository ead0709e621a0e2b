// Package devtemporal runs Temporal in-process, the way `temporal server
// start-dev` does: a single-process server on SQLite (a file, or memory for
// tests) or on PostgreSQL with SQL visibility (as compose's Temporal), with
// Countersign's namespace and search attributes, and optionally the Temporal
// Web UI. Only the dev build and the tests import it.
package devtemporal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"

	"github.com/countersign/countersign/internal/temporalclient"
)

// Options configures an in-process Temporal server.
type Options struct {
	// DBFile is the SQLite file that persists the server (WAL mode); empty
	// keeps everything in memory (tests).
	DBFile string
	// PostgresURL, when set, persists to PostgreSQL instead of SQLite: the
	// databases temporal and temporal_visibility on that URL's server
	// (created, and their schemas set up or updated, at start), as compose's
	// Temporal does. The URL's own database is not used.
	PostgresURL string
	IP          string // frontend bind address; default 127.0.0.1
	Port        int    // frontend gRPC port; 0 picks a free one
	UIPort      int    // Web UI port; 0 means no UI
	Namespace   string // registered at start, with Countersign's search attributes
	// LogFile receives the server's logs (warnings and errors); empty discards them.
	LogFile string
}

// Server is a running in-process Temporal server (and, optionally, its Web UI).
type Server struct {
	server    temporal.Server
	ui        *uiserver.Server
	Address   string // frontend host:port
	UIURL     string // empty without UI
	Namespace string
	Store     string // "SQLite" or "PostgreSQL"
}

// Start starts a single-process Temporal server on SQLite, the way
// `temporal server start-dev` does, or on PostgreSQL (Options.PostgresURL),
// with Countersign's search attributes.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	var err error
	if o.Port == 0 {
		if o.Port, err = freePort(); err != nil {
			return nil, err
		}
	} else if err := portFree(o.IP, o.Port); err != nil {
		return nil, fmt.Errorf("Temporal frontend port: %w (choose another with --temporal-port)", err)
	}
	if o.UIPort != 0 {
		if err := portFree("", o.UIPort); err != nil {
			return nil, fmt.Errorf("Temporal Web UI port: %w (choose another with --ui-port)", err)
		}
	}
	frontend := net.JoinHostPort(o.IP, strconv.Itoa(o.Port))

	var persistence config.Persistence
	if o.PostgresURL != "" {
		if persistence, err = postgresPersistence(o.PostgresURL); err != nil {
			return nil, err
		}
	} else if persistence, err = sqlitePersistence(o); err != nil {
		return nil, err
	}

	conf, hosts, err := serverConfig(o, persistence)
	if err != nil {
		return nil, err
	}
	var logger log.Logger = log.NewNoopLogger()
	if o.LogFile != "" {
		logger = log.NewZapLogger(log.BuildZapLogger(log.Config{Level: "warn", OutputFile: o.LogFile, Format: "json"}))
	}
	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return nil, err
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return nil, err
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(logger),
		// Static membership: with ringpop, a restart on a kept SQLite file
		// first tries to join the previous run's (dead) hosts and stalls for
		// about 50 s.
		temporal.WithStaticHosts(hosts),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dynamicconfig.StaticClient{
			// Visibility reads see search attributes registered a moment ago.
			dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): []dynamicconfig.ConstrainedValue{{Value: true}},
			// One host: one partition per task queue (the default 4 spreads
			// a queue over matching hosts, which this server does not have).
			dynamicconfig.MatchingNumTaskqueueReadPartitions.Key():  []dynamicconfig.ConstrainedValue{{Value: 1}},
			dynamicconfig.MatchingNumTaskqueueWritePartitions.Key(): []dynamicconfig.ConstrainedValue{{Value: 1}},
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("configure Temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start Temporal server: %w", err)
	}
	t := &Server{server: srv, Address: frontend, Namespace: o.Namespace, Store: "SQLite"}
	if o.PostgresURL != "" {
		t.Store = "PostgreSQL"
	}
	if err := t.waitReady(ctx, o.PostgresURL != ""); err != nil {
		t.Stop()
		return nil, err
	}
	if o.UIPort != 0 {
		t.ui = uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
			Host:                o.IP,
			Port:                o.UIPort,
			TemporalGRPCAddress: frontend,
			EnableUI:            true,
			DefaultNamespace:    o.Namespace,
			HideLogs:            true,
			DisableNewsFetch:    true,
			CORS:                uiconfig.CORS{CookieInsecure: true},
		}))
		go func() { _ = t.ui.Start() }()
		t.UIURL = fmt.Sprintf("http://%s/namespaces/%s/workflows", net.JoinHostPort(o.IP, strconv.Itoa(o.UIPort)), o.Namespace)
		if err := waitHTTP(ctx, fmt.Sprintf("http://%s/healthz", net.JoinHostPort(o.IP, strconv.Itoa(o.UIPort)))); err != nil {
			t.Stop()
			return nil, fmt.Errorf("Temporal Web UI: %w", err)
		}
	}
	return t, nil
}

// waitReady waits until the frontend answers for the namespace and the
// search attributes are registered (older data files may lack new ones);
// with register, it registers the namespace first.
func (t *Server) waitReady(ctx context.Context, register bool) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: t.Address, Namespace: t.Namespace, Logger: quietLogger{}})
	if err != nil {
		return fmt.Errorf("Temporal server did not answer: %w", err)
	}
	defer c.Close()
	if register {
		if err := registerNamespace(ctx, c, t.Namespace); err != nil {
			return err
		}
	}
	for {
		err = temporalclient.EnsureSearchAttributes(ctx, c, t.Namespace)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Temporal server not ready: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Stop stops the UI and the server.
func (t *Server) Stop() {
	if t.ui != nil {
		t.ui.Stop()
	}
	_ = t.server.Stop()
}

// sqlitePersistence sets up the SQLite store (a file, or memory) and
// registers the namespace in it.
func sqlitePersistence(o Options) (config.Persistence, error) {
	sqlConf := &config.SQL{PluginName: sqliteplugin.PluginName, ConnectAttributes: map[string]string{}}
	if o.DBFile == "" {
		sqlConf.ConnectAttributes["mode"] = "memory"
		sqlConf.ConnectAttributes["cache"] = "shared"
		sqlConf.DatabaseName = fmt.Sprintf("countersign-%d-%d", os.Getpid(), o.Port)
	} else {
		sqlConf.ConnectAttributes["mode"] = "rwc"
		// Keys other than the driver's query parameters are pragmas, by
		// their plain names (an "_journal_mode" key was silently ignored,
		// leaving the rollback journal and its extra syncs per commit).
		sqlConf.ConnectAttributes["journal_mode"] = "wal"
		sqlConf.ConnectAttributes["synchronous"] = "2" // FULL: a committed event survives a crash
		sqlConf.DatabaseName = o.DBFile
		if _, err := os.Stat(o.DBFile); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(o.DBFile), 0o755); err != nil {
				return config.Persistence{}, err
			}
			if err := sqlite.SetupSchema(sqlConf); err != nil {
				return config.Persistence{}, fmt.Errorf("set up Temporal's SQLite schema: %w", err)
			}
		}
	}
	ns, err := sqlite.NewNamespaceConfig("active", o.Namespace, false, temporalclient.SearchAttributes)
	if err != nil {
		return config.Persistence{}, err
	}
	if err := sqlite.CreateNamespaces(sqlConf, ns); err != nil {
		return config.Persistence{}, fmt.Errorf("create Temporal namespace %q: %w", o.Namespace, err)
	}
	return config.Persistence{
		DefaultStore:     "sqlite",
		VisibilityStore:  "sqlite",
		NumHistoryShards: 1,
		DataStores:       map[string]config.DataStore{"sqlite": {SQL: sqlConf}},
	}, nil
}

// postgresPersistence sets up compose's two PostgreSQL databases; the
// namespace is registered once the server answers.
func postgresPersistence(dbURL string) (config.Persistence, error) {
	main, vis, err := postgresConfigs(dbURL)
	if err != nil {
		return config.Persistence{}, err
	}
	if err := setupPostgresSchema(main, "postgresql/v12/temporal"); err != nil {
		return config.Persistence{}, fmt.Errorf("Temporal's PostgreSQL schema: %w", err)
	}
	if err := setupPostgresSchema(vis, "postgresql/v12/visibility"); err != nil {
		return config.Persistence{}, fmt.Errorf("Temporal's PostgreSQL visibility schema: %w", err)
	}
	return config.Persistence{
		DefaultStore:     "postgres",
		VisibilityStore:  "postgres-visibility",
		NumHistoryShards: PostgresHistoryShards,
		DataStores: map[string]config.DataStore{
			"postgres":            {SQL: main},
			"postgres-visibility": {SQL: vis},
		},
	}, nil
}

func serverConfig(o Options, persistence config.Persistence) (*config.Config, map[primitives.ServiceName]static.Hosts, error) {
	var conf config.Config
	conf.Global.Membership = config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: "127.0.0.1"}
	conf.Persistence = persistence
	conf.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        "active",
		CurrentClusterName:       "active",
		ClusterInformation: map[string]cluster.ClusterInformation{
			"active": {Enabled: true, InitialFailoverVersion: 1, RPCAddress: net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port))},
		},
	}
	conf.DCRedirectionPolicy = config.DCRedirectionPolicy{Policy: "noop"}
	conf.Services = map[string]config.Service{}
	hosts := map[primitives.ServiceName]static.Hosts{}
	for _, name := range []primitives.ServiceName{primitives.FrontendService, primitives.HistoryService, primitives.MatchingService, primitives.WorkerService} {
		svc := config.Service{RPC: config.RPC{GRPCPort: o.Port, BindOnIP: o.IP}}
		if name != primitives.FrontendService {
			port, err := freePort()
			if err != nil {
				return nil, nil, err
			}
			svc.RPC = config.RPC{GRPCPort: port, BindOnIP: "127.0.0.1"}
		}
		conf.Services[string(name)] = svc
		hosts[name] = static.SingleLocalHost(net.JoinHostPort(svc.RPC.BindOnIP, strconv.Itoa(svc.RPC.GRPCPort)))
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port))
	return &conf, hosts, nil
}

// freePort asks the kernel for a free TCP port on the loopback interface.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// portFree checks that port can be bound on ip (all interfaces when empty).
func portFree(ip string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d is in use", port)
	}
	return l.Close()
}

func waitHTTP(ctx context.Context, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within 30s: %v", url, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// quietLogger silences the SDK client used only to wait for readiness.
type quietLogger struct{}

func (quietLogger) Debug(string, ...interface{}) {}
func (quietLogger) Info(string, ...interface{})  {}
func (quietLogger) Warn(string, ...interface{})  {}
func (quietLogger) Error(string, ...interface{}) {}
