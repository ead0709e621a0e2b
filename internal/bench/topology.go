package bench

import (
	"context"
	"fmt"
	"os"
	"sort"

	"go.temporal.io/sdk/client"

	"github.com/countersign/countersign/internal/devstack"
	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/topology"
)

// startTopology starts the production topology in dir with vars added to
// serve's and worker's configuration, seeds the demo org into its database
// and fills e. The serve and worker processes are this executable's own
// commands, the same code as the production binary's.
func startTopology(ctx context.Context, e *env, o *Options, dir string, vars map[string]string) (*topology.Deployment, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	bin, temporalBin := self, self
	if o.Bin != "" {
		bin = o.Bin
	}
	if o.TemporalBin != "" {
		temporalBin = o.TemporalBin
	}
	var extra []string
	for k, v := range vars {
		extra = append(extra, k+"="+v)
	}
	sort.Strings(extra)
	d, err := topology.Start(ctx, topology.Options{Dir: dir, Bin: bin, TemporalBin: temporalBin, Env: extra})
	if err != nil {
		return d, fmt.Errorf("production topology: %w", err)
	}
	st, err := store.Open(ctx, d.PG.URL)
	if err != nil {
		return d, err
	}
	defer st.Close()
	if e.demo, err = devstack.Seed(ctx, st, d.APIURLs[0]); err != nil {
		return d, fmt.Errorf("seed the demo org: %w", err)
	}
	if e.tc, err = client.Dial(client.Options{HostPort: d.Temporal, Namespace: "default", Logger: quietLogger{},
		ConnectionOptions: client.ConnectionOptions{GrpcCompression: &client.GrpcCompressionNone{}}}); err != nil {
		return d, err
	}
	e.apiURLs, e.serverPID = d.APIURLs, d.TemporalProc.PID()
	for _, p := range append(append([]*topology.Proc{}, d.APIs...), d.Workers...) {
		e.services = append(e.services, p.PID())
	}
	e.memoryNote = fmt.Sprintf("production topology: %d serve and %d worker processes (not measured), Temporal on PostgreSQL in its own process (its peak RSS); the bench process holds the drivers, the webhook receiver and the fake Slack",
		len(d.APIs), len(d.Workers))
	return d, nil
}

// quietLogger silences the bench's own Temporal client.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
