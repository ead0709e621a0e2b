package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// faultHTTP is the fault test's API client: every request has a timeout, and
// it counts answers by status and transport errors, so the report shows what
// clients saw while parts were down.
type faultHTTP struct {
	base string
	hc   *http.Client

	mu        sync.Mutex
	codes     map[int]int
	transport int
}

func newFaultHTTP(base string) *faultHTTP {
	return &faultHTTP{base: base, hc: &http.Client{Timeout: 15 * time.Second}, codes: map[int]int{}}
}

// send sends a JSON request; key, when set, is the Idempotency-Key.
func (c *faultHTTP) send(ctx context.Context, token, method, path string, body any, key string) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.mu.Lock()
		c.transport++
		c.mu.Unlock()
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	c.mu.Lock()
	c.codes[resp.StatusCode]++
	c.mu.Unlock()
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, raw, nil
}

// getJSON GETs path and decodes a 200 answer into out.
func (c *faultHTTP) getJSON(ctx context.Context, token, path string, out any) (int, []byte, error) {
	code, raw, err := c.send(ctx, token, "GET", path, nil, "")
	if err == nil && code == 200 {
		if err := json.Unmarshal(raw, out); err != nil {
			return code, raw, fmt.Errorf("decode %s: %w", path, err)
		}
	}
	return code, raw, err
}

func (c *faultHTTP) stats() (map[int]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	codes := make(map[int]int, len(c.codes))
	for k, v := range c.codes {
		codes[k] = v
	}
	return codes, c.transport
}

// faultEvents is the run's timeline, with times since the first entry.
type faultEvents struct {
	mu    sync.Mutex
	start time.Time
	lines []string
}

func (e *faultEvents) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.start.IsZero() {
		e.start = time.Now()
	}
	e.lines = append(e.lines, fmt.Sprintf("+%5.1fs %s", time.Since(e.start).Seconds(), fmt.Sprintf(format, args...)))
}

func (e *faultEvents) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.lines...)
}

// faultLogBuffer keeps the last max lines the App logged. Logging through
// t.Log is not an option: the worker may log after the test ended, and a run
// with outages logs a lot.
type faultLogBuffer struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (b *faultLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, strings.TrimRight(string(p), "\n"))
	if len(b.lines) > b.max {
		b.lines = append([]string(nil), b.lines[len(b.lines)-b.max:]...)
	}
	return len(p), nil
}

func (b *faultLogBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func (b *faultLogBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines[max(0, len(b.lines)-n):], "\n")
}

// faultOutages records when each part was down, so the report can say which
// decisions were sent across an outage.
type faultOutages struct {
	mu      sync.Mutex
	open    map[string]time.Time
	windows []faultWindow
}

type faultWindow struct {
	what       string
	start, end time.Time
}

func (o *faultOutages) begin(what string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.open == nil {
		o.open = map[string]time.Time{}
	}
	o.open[what] = time.Now()
}

func (o *faultOutages) end(what string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.windows = append(o.windows, faultWindow{what: what, start: o.open[what], end: time.Now()})
	delete(o.open, what)
}

// overlapping names the outages that overlap [from, to].
func (o *faultOutages) overlapping(from, to time.Time) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, w := range o.windows {
		if !from.After(w.end) && !to.Before(w.start) {
			out = append(out, w.what)
		}
	}
	return out
}

// waitDown waits until what is down, or until the time given (the outage
// may have come and gone).
func (o *faultOutages) waitDown(ctx context.Context, what string, until time.Time) {
	for time.Now().Before(until) && ctx.Err() == nil {
		o.mu.Lock()
		_, down := o.open[what]
		o.mu.Unlock()
		if down {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
