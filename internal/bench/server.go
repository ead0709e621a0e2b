package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// TemporalCommand is the hidden command that runs the embedded Temporal
// server alone (internal/devstack/devcmd): the bench starts it as a child
// process so the server's memory is measured apart from the worker's.
const TemporalCommand = "dev-temporal"

// serverProcess is the Temporal server running as a child of the bench.
type serverProcess struct {
	cmd  *exec.Cmd
	addr string
}

// startServer runs `<this executable> dev-temporal` and waits for the address
// it prints once the server is ready; cpuProfile, when set, is where the
// server writes its CPU profile when it stops.
func startServer(ctx context.Context, dir string, port int, cpuProfile string) (*serverProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{TemporalCommand, "--port", strconv.Itoa(port),
		"--db-file", dir + "/temporal.db", "--log-file", dir + "/temporal.log"}
	if cpuProfile != "" {
		args = append(args, "--cpuprofile", cpuProfile)
	}
	cmd := exec.Command(self, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the bench
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			addr <- strings.TrimSpace(sc.Text())
		}
		close(addr)
		for sc.Scan() { // keep draining
		}
	}()
	p := &serverProcess{cmd: cmd}
	select {
	case a, ok := <-addr:
		if ok && a != "" {
			p.addr = a
			return p, nil
		}
	case <-time.After(2 * time.Minute):
	case <-ctx.Done():
	}
	p.stop()
	return nil, fmt.Errorf("the Temporal server process did not start: %s", strings.TrimSpace(stderr.String()))
}

func (p *serverProcess) pid() int { return p.cmd.Process.Pid }

// stop asks the server to stop (SIGTERM), and kills it after 30 s.
func (p *serverProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// rssBytes reads a process's resident set size from /proc (Linux); 0 when it
// cannot be read.
func rssBytes(pid string) uint64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
