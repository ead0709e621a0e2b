package bench

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CPU is the processor time one side's run used, in seconds per delivered
// post, by process: where the machine's two cores went.
type CPU struct {
	Bench    float64 `json:"bench"`              // this process: drivers, fake Slack, webhook receiver (and, with the dev stack, the API and worker)
	Temporal float64 `json:"temporal,omitempty"` // the Temporal server's process, when it runs apart
	Postgres float64 `json:"postgres"`           // every PostgreSQL process of the machine
	Services float64 `json:"services,omitempty"` // the topology's serve and worker processes
}

// cpuMeter reads processor time from /proc at the start and the end of a
// run (Linux; elsewhere every figure is 0).
type cpuMeter struct {
	serverPID int
	services  []int
	start     cpuTimes
}

type cpuTimes struct{ bench, temporal, postgres, services float64 }

func newCPUMeter(serverPID int, services []int) *cpuMeter {
	m := &cpuMeter{serverPID: serverPID, services: services}
	m.start = m.read()
	return m
}

func (m *cpuMeter) read() cpuTimes {
	t := cpuTimes{bench: procCPU("self")}
	if m.serverPID != 0 {
		t.temporal = procCPU(strconv.Itoa(m.serverPID))
	}
	for _, pid := range m.services {
		t.services += procCPU(strconv.Itoa(pid))
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if comm, err := os.ReadFile(d + "/comm"); err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			t.postgres += procCPU(filepath.Base(d))
		}
	}
	return t
}

// per returns the time used since the start, per post.
func (m *cpuMeter) per(posts int) CPU {
	if posts == 0 {
		return CPU{}
	}
	e, n := m.read(), float64(posts)
	// PostgreSQL backends come and go (a pool's connections): those that
	// ended are not counted, so its figure is a lower bound.
	return CPU{Bench: (e.bench - m.start.bench) / n, Temporal: (e.temporal - m.start.temporal) / n,
		Postgres: max(e.postgres-m.start.postgres, 0) / n, Services: (e.services - m.start.services) / n}
}

// procCPU is a process's user and system time in seconds, its threads
// included (/proc/<pid>/stat fields 14 and 15, in clock ticks of 1/100 s).
func procCPU(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100
}
