// Package devcmd adds `countersign dev` to the command line. Only the dev
// build (go build -tags dev) imports it, so the production binary does not
// link the Temporal server.
package devcmd

import (
	"fmt"
	"io"
	"os"
	"text/template"

	"github.com/spf13/cobra"

	"github.com/countersign/countersign/internal/cli"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/devstack"
)

func init() { cli.Register(Command()) }

// Command is `countersign dev`.
func Command() *cobra.Command {
	var o devstack.Options
	c := &cobra.Command{
		Use:   "dev",
		Short: "Run everything on this machine: Temporal + Web UI, PostgreSQL, API and worker",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(func(name string) string {
				if name == "COUNTERSIGN_LOG_FORMAT" && os.Getenv(name) == "" {
					return "text" // people read dev logs
				}
				return os.Getenv(name)
			})
			if err != nil {
				return err
			}
			o.Logger = cli.NewLogger(cfg, cmd.ErrOrStderr())
			o.DatabaseURL = cfg.DatabaseURL
			fmt.Fprintln(cmd.OutOrStdout(), "Starting Countersign dev stack in", o.DataDir, "…")
			s, err := devstack.Start(cmd.Context(), o)
			if err != nil {
				return err
			}
			PrintBanner(cmd.OutOrStdout(), s, o.DataDir)
			<-cmd.Context().Done()
			fmt.Fprintln(cmd.OutOrStdout(), "\nStopping…")
			return s.Stop()
		},
	}
	f := c.Flags()
	f.StringVar(&o.DataDir, "data-dir", devstack.DefaultDataDir, "where PostgreSQL, Temporal's SQLite file and the demo credentials live")
	f.StringVar(&o.HTTPAddr, "http-addr", devstack.DefaultHTTPAddr, "API listen address")
	f.IntVar(&o.TemporalPort, "temporal-port", devstack.DefaultTemporalPort, "Temporal frontend gRPC port (on 127.0.0.1)")
	f.IntVar(&o.UIPort, "ui-port", devstack.DefaultUIPort, "Temporal Web UI port (-1 disables the UI)")
	f.StringVar(&o.MetricsAddr, "metrics-addr", devstack.DefaultMetricsAddr, `Prometheus /metrics listen address, never the API's ("" for none)`)
	f.StringVar(&o.TemporalPersistence, "temporal-persistence", devstack.PersistenceSQLite,
		`where the embedded Temporal keeps its data: "sqlite" (a file in the data directory) or "postgres" (databases temporal and temporal_visibility on the stack's PostgreSQL, as compose)`)
	f.IntVar(&o.PGPort, "pg-port", devstack.DefaultPGPort, "PostgreSQL port (on 127.0.0.1), unless DATABASE_URL is set")
	return c
}

var banner = template.Must(template.New("banner").Parse(`
Countersign dev stack is up.

  API             {{.APIURL}}        (health: {{.APIURL}}/readyz)
  Metrics         {{if .MetricsURL}}{{.MetricsURL}}{{else}}disabled{{end}}
  Temporal UI     {{if .Temporal.UIURL}}{{.Temporal.UIURL}}{{else}}disabled{{end}}
  Temporal        {{.Temporal.Address}}  namespace {{.Temporal.Namespace}}{{if .Temporal.Store}}, on {{.Temporal.Store}}{{end}}
{{- if .PG}}
  PostgreSQL      {{.PG.URL}}
{{- end}}

{{if .Seeded}}Seeded the demo org{{else}}Demo org{{end}} "Demo": Ines (limited) writes; Maya, then team PR (Pat, Paul),
then an editor (Eddie) approve; posts go to the log account "demo".
Its tokens are in the data directory: source {{.DataDir}}/demo.env, then e.g.

  curl -s -H "Authorization: Bearer $OWNER" $CS/v1/me

The README's walk-through takes a post from submission to publication.

Ctrl-C stops everything; the next start finds every post where it was.
`))

// PrintBanner prints the URLs and where the demo credentials are.
func PrintBanner(w io.Writer, s *devstack.Stack, dataDir string) {
	_ = banner.Execute(w, struct {
		*devstack.Stack
		DataDir string
	}{s, dataDir})
}
