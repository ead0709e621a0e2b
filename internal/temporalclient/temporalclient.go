// Package temporalclient dials Temporal the way every Countersign process
// does, and owns what Countersign asks of the cluster: its search attributes
// and the check that a worker is polling the task queue.
package temporalclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/countersign/countersign/internal/config"
)

// SearchAttributes are the custom search attributes of SPEC §3 that every
// post workflow upserts; operators query them in the Web UI.
var SearchAttributes = map[string]enumspb.IndexedValueType{
	"PostOrg":         enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"PostAccount":     enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"PostAuthor":      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"PostStatus":      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"PostStep":        enumspb.INDEXED_VALUE_TYPE_INT,
	"PostApprovers":   enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
	"PostDeadline":    enumspb.INDEXED_VALUE_TYPE_DATETIME,
	"PostScheduledAt": enumspb.INDEXED_VALUE_TYPE_DATETIME,
}

// Options builds client options from the configuration: address, namespace,
// mTLS or an API key for Temporal Cloud.
func Options(c config.Config, logger *slog.Logger, metrics client.MetricsHandler) (client.Options, error) {
	opts := client.Options{
		HostPort:       c.TemporalAddress,
		Namespace:      c.TemporalNamespace,
		Logger:         tlog.NewStructuredLogger(logger.With("component", "temporal-sdk")),
		MetricsHandler: metrics,
	}
	var tlsConf *tls.Config
	if c.TemporalTLSCert != "" || c.TemporalTLSCA != "" || c.TemporalAPIKey != "" {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if c.TemporalTLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TemporalTLSCert, c.TemporalTLSKey)
		if err != nil {
			return opts, fmt.Errorf("load TEMPORAL_TLS_CERT/TEMPORAL_TLS_KEY: %w", err)
		}
		tlsConf.Certificates = []tls.Certificate{cert}
	}
	if c.TemporalTLSCA != "" {
		pem, err := os.ReadFile(c.TemporalTLSCA)
		if err != nil {
			return opts, fmt.Errorf("read TEMPORAL_TLS_CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return opts, fmt.Errorf("TEMPORAL_TLS_CA %s holds no PEM certificate", c.TemporalTLSCA)
		}
		tlsConf.RootCAs = pool
	}
	opts.ConnectionOptions.TLS = tlsConf
	if !c.TemporalGzip {
		opts.ConnectionOptions.GrpcCompression = &client.GrpcCompressionNone{}
	}
	if c.TemporalAPIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(c.TemporalAPIKey)
	}
	return opts, nil
}

// Dial connects to Temporal with the configuration's settings; metrics may
// be nil (no SDK metrics).
func Dial(ctx context.Context, c config.Config, logger *slog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	opts, err := Options(c, logger, metrics)
	if err != nil {
		return nil, err
	}
	tc, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %q): %w", c.TemporalAddress, c.TemporalNamespace, err)
	}
	return tc, nil
}

// EnsureSearchAttributes registers the search attributes the namespace lacks.
// It is idempotent; on Temporal Cloud, where the operator API refuses this,
// register them with tcld as the README says.
func EnsureSearchAttributes(ctx context.Context, tc client.Client, namespace string) error {
	have, err := tc.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range SearchAttributes {
		if got, ok := have.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		} else if got != typ {
			return fmt.Errorf("search attribute %s is registered as %s, Countersign needs %s", name, got, typ)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = tc.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        namespace,
		SearchAttributes: missing,
	})
	if err != nil {
		names := make([]string, 0, len(missing))
		for n := range missing {
			names = append(names, n)
		}
		slices.Sort(names)
		return fmt.Errorf("register search attributes %v: %w", names, err)
	}
	return nil
}

// pollerFreshness is how recently a poller must have polled to count as alive.
// A live worker re-polls at least every ~70s (long-poll timeout); Temporal
// itself remembers pollers for minutes after they stop.
const pollerFreshness = 2 * time.Minute

// WorkerPolling reports whether at least one worker is polling the task queue
// for workflow tasks, as Temporal itself sees it.
func WorkerPolling(ctx context.Context, tc client.Client, taskQueue string) (bool, error) {
	resp, err := tc.DescribeTaskQueue(ctx, taskQueue, enumspb.TASK_QUEUE_TYPE_WORKFLOW)
	if err != nil {
		return false, err
	}
	for _, p := range resp.GetPollers() {
		if time.Since(p.GetLastAccessTime().AsTime()) < pollerFreshness {
			return true, nil
		}
	}
	return false, nil
}
