// Package pgserver runs a private PostgreSQL server from the machine's
// initdb and postgres binaries, for `countersign dev` and the tests.
//
// PostgreSQL refuses to run as root; when this process is root (containers,
// CI) the server runs as the unprivileged "postgres" user, which then owns the
// data directory. As a normal user it runs as that user.
package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoBinaries means initdb or postgres could not be found.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, postgres) not found: install PostgreSQL " +
	"(Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql) or set DATABASE_URL")

// Options says where and how to run the server.
type Options struct {
	Dir      string // data directory; created and initialised if empty
	Port     int    // TCP port on 127.0.0.1
	Database string // database to create if missing (default "countersign")
	BinDir   string // where initdb and postgres are; empty searches PATH and the usual places
	// Ephemeral trades durability for speed (fsync off): for tests only.
	Ephemeral bool
	// Log receives the server's own output; nil discards it.
	Log io.Writer
}

// Server is a running PostgreSQL server.
type Server struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the process's exit status, set before done is closed
	// URL connects to the database of Options.Database.
	URL string
	// AdminURL connects to the "postgres" maintenance database.
	AdminURL string
}

const superuser = "countersign"

// Start initialises the data directory if needed, starts the server and
// waits until it accepts connections.
func Start(ctx context.Context, o Options) (s *Server, err error) {
	if o.Database == "" {
		o.Database = "countersign"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Dir, err = filepath.Abs(o.Dir); err != nil {
		return nil, err
	}
	initdb, postgres, err := binaries(o.BinDir)
	if err != nil {
		return nil, err
	}
	cred, err := runAs(o.Dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(o.Dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		args := []string{"-D", o.Dir, "-U", superuser, "--auth=trust", "-E", "UTF8", "--locale=C"}
		if o.Ephemeral {
			args = append(args, "--no-sync")
		}
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, initdb, args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("initdb %s: %w\n%s", o.Dir, err, out.String())
		}
	}

	args := []string{"-D", o.Dir, "-p", strconv.Itoa(o.Port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=200"}
	if o.Ephemeral {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	tail := &tailBuffer{max: 4096}
	cmd := exec.Command(postgres, args...)
	cmd.Stdout = io.MultiWriter(o.Log, tail)
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: cred,
		// Its own process group: a terminal's Ctrl-C reaches us, and we stop
		// PostgreSQL after what depends on it.
		Setpgid: true,
		// If this process dies without stopping it, PostgreSQL shuts down fast.
		Pdeathsig: syscall.SIGINT,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	s = &Server{
		cmd:      cmd,
		done:     make(chan struct{}),
		URL:      fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, o.Port, url.PathEscape(o.Database)),
		AdminURL: fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres?sslmode=disable", superuser, o.Port),
	}
	go func() { s.err = cmd.Wait(); close(s.done) }()

	if err := s.waitReady(ctx, 60*time.Second); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w\npostgres said:\n%s", err, tail.String())
	}
	if err := CreateDatabase(ctx, s.AdminURL, o.Database, ""); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// CreateDatabase creates a database on the server at adminURL unless it
// exists, optionally as a copy of template.
func CreateDatabase(ctx context.Context, adminURL, name, template string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil || exists {
		return err
	}
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// DatabaseURL returns adminURL pointed at another database of the same server.
func DatabaseURL(adminURL, name string) (string, error) {
	u, err := url.Parse(adminURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("%q is not a postgres:// URL", adminURL)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// Available reports why a server cannot be started here, or nil.
func Available() error {
	_, _, err := binaries("")
	return err
}

func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, s.AdminURL)
		cancel()
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-s.done:
			return fmt.Errorf("postgres exited while starting: %v", s.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within %s: %w", timeout, err)
		}
	}
}

// Stop shuts the server down (fast shutdown: open sessions are ended, data
// is flushed) and waits for it; after 30 seconds it kills it.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// Done is closed when the server process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// binaries finds initdb and postgres in dir, or else on PATH or in the
// usual Debian, Red Hat and Homebrew locations.
func binaries(dir string) (initdb, postgres string, err error) {
	find := func(name string) string {
		if dir != "" {
			if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
				return p
			}
			return ""
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		var matches []string
		for _, glob := range []string{"/usr/lib/postgresql/*/bin/", "/usr/local/opt/postgresql*/bin/", "/opt/homebrew/opt/postgresql*/bin/", "/usr/pgsql-*/bin/"} {
			m, _ := filepath.Glob(glob + name)
			matches = append(matches, m...)
		}
		if len(matches) == 0 {
			return ""
		}
		return matches[len(matches)-1] // the highest version sorts last
	}
	initdb, postgres = find("initdb"), find("postgres")
	if initdb == "" || postgres == "" {
		return "", "", ErrNoBinaries
	}
	return initdb, postgres, nil
}

// runAs prepares dir for the server and returns the credential to run it
// with: nil (this user) unless this process is root.
func runAs(dir string) (*syscall.Credential, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, os.Chmod(dir, 0o700)
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root: PostgreSQL refuses to run as root and there is no unprivileged \"postgres\" user to run it as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	}); err != nil {
		return nil, fmt.Errorf("give %s to the postgres user: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	// The postgres user must be able to reach dir through its parents.
	for p := filepath.Dir(dir); p != "/" && p != "."; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return nil, fmt.Errorf("the postgres user cannot reach %s: %s is not searchable by others (chmod o+x %s, or choose another --data-dir)", dir, p, p)
		}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
