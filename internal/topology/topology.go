// Package topology runs Countersign in its production shape, each part its
// own process: PostgreSQL, the embedded Temporal server persisting to it
// (`countersign dev-temporal --postgres-url`, SQL visibility, as compose's
// Temporal), and several `serve` and `worker` processes. The production
// topology test and `countersign bench --topology` start it.
package topology

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/countersign/countersign/internal/pgserver"
	"github.com/countersign/countersign/internal/secrets"
)

// Options shapes a deployment.
type Options struct {
	Dir         string   // logs, PostgreSQL's data
	Bin         string   // the binary whose serve, worker, migrate and bootstrap run
	TemporalBin string   // a dev build, for dev-temporal
	APIs        int      // serve processes (default 2)
	Workers     int      // worker processes (default 2)
	Env         []string // configuration added to serve's and worker's (Slack, limits)
}

// Deployment is a running production topology.
type Deployment struct {
	Options
	PG           *pgserver.Server
	Temporal     string // frontend address
	TemporalProc *Proc
	APIURLs      []string
	APIs         []*Proc
	Workers      []*Proc
	env          []string
	pgPort       int
}

// Start brings the deployment up: PostgreSQL, Temporal on it, migrations,
// the workers, then the APIs (ready when their /readyz says so). On error
// whatever started is stopped again.
func Start(ctx context.Context, o Options) (d *Deployment, err error) {
	if o.APIs <= 0 {
		o.APIs = 2
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	d = &Deployment{Options: o}
	// Readable by others: as root, PostgreSQL runs as the postgres user.
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			d.Stop()
		}
	}()
	// A port found free can be taken by another process before the
	// server binds it: each start tries a few.
	if err = retryPorts("PostgreSQL", func() error {
		if d.pgPort, err = FreePort(); err != nil {
			return err
		}
		return d.StartPostgres(ctx)
	}); err != nil {
		return d, err
	}
	if err = retryPorts("Temporal", func() error {
		port, err := FreePort()
		if err != nil {
			return err
		}
		return d.StartTemporal(ctx, port)
	}); err != nil {
		return d, err
	}
	addrs := make([]string, o.APIs)
	for i := range addrs {
		port, err := FreePort()
		if err != nil {
			return d, err
		}
		addrs[i] = fmt.Sprintf("127.0.0.1:%d", port)
	}
	d.env = append([]string{
		"DATABASE_URL=" + d.PG.URL,
		"TEMPORAL_ADDRESS=" + d.Temporal,
		"TEMPORAL_NAMESPACE=default",
		"TEMPORAL_GRPC_COMPRESSION=none", // as compose: Temporal on the same network
		"COUNTERSIGN_SECRET_KEY=" + fmt.Sprintf("%x", secrets.RandomBytes(32)),
		"COUNTERSIGN_PUBLIC_URL=http://" + addrs[0],
		"COUNTERSIGN_LOG_FORMAT=json",
		"COUNTERSIGN_METRICS_ADDR=",
		"COUNTERSIGN_EGRESS_ALLOW=127.0.0.0/8", // receivers, fake networks and fake Slack are local
	}, o.Env...)
	if out, err := d.Command("migrate").CombinedOutput(); err != nil {
		return d, fmt.Errorf("migrate: %v\n%s", err, out)
	}
	for i := range o.Workers {
		p, err := d.StartProc(fmt.Sprintf("worker-%d", i+1), o.Bin, nil, "worker")
		if err != nil {
			return d, err
		}
		d.Workers = append(d.Workers, p)
	}
	d.APIs = make([]*Proc, len(addrs))
	for i := range addrs {
		if err = retryPorts("serve", func() error {
			if d.APIs[i] != nil { // the port was taken: another one
				d.APIs[i].Kill()
				port, err := FreePort()
				if err != nil {
					return err
				}
				addrs[i] = fmt.Sprintf("127.0.0.1:%d", port)
			}
			p, err := d.StartProc(fmt.Sprintf("serve-%d", i+1), o.Bin, []string{"COUNTERSIGN_HTTP_ADDR=" + addrs[i]}, "serve")
			if err != nil {
				return err
			}
			d.APIs[i] = p
			return waitReady(ctx, "http://"+addrs[i], p)
		}); err != nil {
			return d, err
		}
		d.APIURLs = append(d.APIURLs, "http://"+addrs[i])
	}
	return d, nil
}

// Stop kills every process and stops PostgreSQL.
func (d *Deployment) Stop() {
	for _, ps := range [][]*Proc{d.APIs, d.Workers, {d.TemporalProc}} {
		for _, p := range ps {
			if p != nil {
				p.Kill()
			}
		}
	}
	if d.PG != nil {
		d.PG.Stop()
	}
}

// Command is the serving binary with the deployment's configuration.
func (d *Deployment) Command(args ...string) *exec.Cmd {
	cmd := exec.Command(d.Bin, args...)
	cmd.Env = append(os.Environ(), d.env...)
	return cmd
}

// StartPostgres starts the deployment's PostgreSQL (again, on the same data
// and port after a stop).
func (d *Deployment) StartPostgres(ctx context.Context) error {
	log, err := os.OpenFile(filepath.Join(d.Dir, "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer log.Close() // the server keeps its own descriptor
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	pg, err := pgserver.Start(ctx, pgserver.Options{Dir: filepath.Join(d.Dir, "postgres"), Port: d.pgPort, Ephemeral: true, Log: log})
	if err != nil {
		return fmt.Errorf("PostgreSQL: %w", err)
	}
	d.PG = pg
	return nil
}

// StartTemporal runs `dev-temporal` on the deployment's PostgreSQL and waits
// for the address it prints once ready.
func (d *Deployment) StartTemporal(ctx context.Context, port int) error {
	p, err := d.StartProc("temporal", d.TemporalBin, nil, "dev-temporal", "--port", strconv.Itoa(port),
		"--postgres-url", d.PG.URL, "--log-file", filepath.Join(d.Dir, "temporal-server.log"))
	if err != nil {
		return err
	}
	select {
	case d.Temporal = <-p.firstLine:
	case <-p.done:
		return fmt.Errorf("the Temporal process ended: %s", p.LogTail())
	case <-time.After(3 * time.Minute):
		p.Kill()
		return fmt.Errorf("the Temporal process did not get ready: %s", p.LogTail())
	case <-ctx.Done():
		p.Kill()
		return ctx.Err()
	}
	if d.Temporal == "" {
		return fmt.Errorf("the Temporal process printed no address: %s", p.LogTail())
	}
	d.TemporalProc = p
	return nil
}

// RestartTemporal kills Temporal and starts it again on the same port and
// databases.
func (d *Deployment) RestartTemporal(ctx context.Context) error {
	_, port, _ := strings.Cut(d.Temporal, ":")
	p, _ := strconv.Atoi(port)
	d.TemporalProc.Kill()
	return d.StartTemporal(ctx, p)
}

// Proc is a child process in its own process group, killed (the whole
// group) with the deployment.
type Proc struct {
	Name      string
	cmd       *exec.Cmd
	log       string
	done      chan struct{}
	firstLine chan string // its first line of standard output
}

// StartProc starts bin with the deployment's configuration plus env; its
// output goes to <Dir>/<name>.log.
func (d *Deployment) StartProc(name, bin string, env []string, args ...string) (*Proc, error) {
	p := &Proc{Name: name, log: filepath.Join(d.Dir, name+".log"), done: make(chan struct{}), firstLine: make(chan string, 1)}
	logf, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(append(os.Environ(), d.env...), env...)
	p.cmd.Stderr = logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		first := true
		for sc.Scan() {
			if first {
				p.firstLine <- strings.TrimSpace(sc.Text())
				first = false
			}
			fmt.Fprintln(logf, sc.Text())
		}
		_ = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Kill kills the process group at once (a crash, not a shutdown) and waits.
func (p *Proc) Kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// LogTail is the end of the process's log, for error messages.
func (p *Proc) LogTail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return p.Name + " log:\n" + string(b)
}

// waitReady waits until the API at url is ready (its /readyz answers 200).
func waitReady(ctx context.Context, url string, p *Proc) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s ended: %s", p.Name, p.LogTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 2 minutes: %v\n%s", url, err, p.LogTail())
		}
	}
}

// retryPorts runs start until it succeeds, up to three times while it fails
// because a port is in use.
func retryPorts(what string, start func() error) error {
	for attempt := 1; ; attempt++ {
		err := start()
		if err == nil {
			return nil
		}
		if attempt == 3 || !strings.Contains(err.Error(), "in use") {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
}

// FreePort is a loopback TCP port free at the time of asking.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Build builds the production binary and the dev one (which has
// `dev-temporal`) into dir, from the module at root; the build cache makes
// this quick after the first time.
func Build(root, dir string) (bin, devBin string, err error) {
	bin, devBin = filepath.Join(dir, "countersign"), filepath.Join(dir, "countersign-dev")
	for _, args := range [][]string{{"-o", bin}, {"-tags", "dev", "-o", devBin}} {
		cmd := exec.Command("go", append(append([]string{"build"}, args...), "./cmd/countersign")...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", errors.Join(fmt.Errorf("go build %v: %w", args, err), errors.New(string(out)))
		}
	}
	return bin, devBin, nil
}
