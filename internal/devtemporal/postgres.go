package devtemporal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	postgresplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	"go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The databases Temporal uses on the PostgreSQL server, as compose's
// temporalio/auto-setup names them.
const (
	PostgresDatabase           = "temporal"
	PostgresVisibilityDatabase = "temporal_visibility"
)

// PostgresHistoryShards is compose's (auto-setup's default). It is fixed
// when the databases are first set up and can never change afterwards.
const PostgresHistoryShards = 4

// namespaceRetention is compose's DEFAULT_NAMESPACE_RETENTION.
const namespaceRetention = 7 * 24 * time.Hour

// postgresConfigs returns the two stores (history and SQL visibility) on the
// server of dbURL, whose own database name is ignored.
func postgresConfigs(dbURL string) (main, visibility *config.SQL, err error) {
	u, err := url.Parse(dbURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return nil, nil, errors.New("the PostgreSQL URL for Temporal must look like postgres://user:password@host:port/db")
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "5432"
	}
	password, _ := u.User.Password()
	attrs := map[string]string{}
	for k, v := range u.Query() { // sslmode and the like
		attrs[k] = v[0]
	}
	conf := func(db string) *config.SQL {
		a := make(map[string]string, len(attrs))
		for k, v := range attrs {
			a[k] = v
		}
		return &config.SQL{
			PluginName:        postgresplugin.PluginName, // compose's DB=postgres12
			ConnectProtocol:   "tcp",
			ConnectAddr:       net.JoinHostPort(host, port),
			User:              u.User.Username(),
			Password:          password,
			DatabaseName:      db,
			ConnectAttributes: a,
			MaxConns:          20, // auto-setup's defaults
			MaxIdleConns:      20,
			MaxConnLifetime:   time.Hour,
		}
	}
	return conf(PostgresDatabase), conf(PostgresVisibilityDatabase), nil
}

// setupPostgresSchema creates the database if missing and brings its schema
// to the version this server ships, the way temporal-sql-tool create-database,
// setup-schema -v 0.0 and update-schema do in auto-setup (each idempotent).
func setupPostgresSchema(c *config.SQL, schemaName string) error {
	logger := log.NewNoopLogger()
	admin := *c
	if err := sqltool.DoCreateDatabase(&admin, "postgres", logger); err != nil {
		return fmt.Errorf("create database %s: %w", c.DatabaseName, err)
	}
	conn, err := sqltool.NewConnection(c, logger)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := schema.NewSetupSchemaTask(conn, &schema.SetupConfig{InitialVersion: "0.0"}, logger).Run(); err != nil {
		return fmt.Errorf("set up schema of %s: %w", c.DatabaseName, err)
	}
	if err := schema.NewUpdateSchemaTask(conn, &schema.UpdateConfig{DBName: c.DatabaseName, SchemaName: schemaName}, logger).Run(); err != nil {
		return fmt.Errorf("update schema of %s: %w", c.DatabaseName, err)
	}
	return nil
}

// registerNamespace registers the namespace (as auto-setup's
// DEFAULT_NAMESPACE does) unless it exists; a server just started may not
// answer at once.
func registerNamespace(ctx context.Context, c client.Client, namespace string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		_, err := c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
			Namespace:                        namespace,
			WorkflowExecutionRetentionPeriod: durationpb.New(namespaceRetention),
		})
		var exists *serviceerror.NamespaceAlreadyExists
		if err == nil || errors.As(err, &exists) || strings.Contains(err.Error(), "already exists") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("register Temporal namespace %q: %w", namespace, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
