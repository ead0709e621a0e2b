package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/egress"
)

// exchange is one HTTP call to a network and what is known of it.
type exchange struct {
	Status int
	Header http.Header
	Body   []byte
	// Sent is true once the request was written whole: from then on the
	// network may have acted on it, whatever happens to the answer.
	Sent bool
	// Err is the transport error when there is no answer (or the answer's
	// body could not be read).
	Err error
}

// maxBody bounds what is read of an answer.
const maxBody = 1 << 20

// call sends one request and reads its answer, noting whether the request
// was written whole before anything failed.
func call(ctx context.Context, c *http.Client, method, target string, header http.Header, body []byte) exchange {
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				wrote.Store(true)
			}
		},
	})
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return exchange{Err: err}
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "Countersign")
	}
	resp, err := c.Do(req)
	if err != nil {
		noteRefusal(ctx, err)
		return exchange{Sent: wrote.Load(), Err: capped{cleanURLError(err)}}
	}
	defer resp.Body.Close()
	ex := exchange{Status: resp.StatusCode, Header: resp.Header, Sent: true}
	ex.Body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		ex.Err = capped{fmt.Errorf("reading the answer: %w", cleanURLError(err))}
	}
	return ex
}

// capped is a transport error shown on one line and at most maxReason
// characters: Go's errors may quote what the network sent (a malformed
// status line, say).
type capped struct{ err error }

func (c capped) Error() string { return oneLine(c.err.Error(), maxReason) }
func (c capped) Unwrap() error { return c.err }

// refusals collects what the egress guard refused during one attempt, so the
// Publisher can tell "refused by policy" (final) from "unreachable" (retry).
type refusals struct {
	mu    sync.Mutex
	first *egress.RefusedError
}

type refusalsKey struct{}

func watchRefusals(ctx context.Context) (context.Context, *refusals) {
	r := &refusals{}
	return context.WithValue(ctx, refusalsKey{}, r), r
}

func noteRefusal(ctx context.Context, err error) {
	var re *egress.RefusedError
	r, _ := ctx.Value(refusalsKey{}).(*refusals)
	if r == nil || !errors.As(err, &re) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.first == nil {
		r.first = re
	}
}

func (r *refusals) get() *egress.RefusedError {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}

// cleanURLError drops the query string from a url.Error's URL (it may name
// the account) and keeps the rest.
func cleanURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		u := ue.URL
		if i := strings.IndexByte(u, '?'); i >= 0 {
			u = u[:i]
		}
		return fmt.Errorf("%s %s: %w", ue.Op, u, ue.Err)
	}
	return err
}

// maxReason bounds what of a network's answer reaches users (the post's
// last error, its events, notifications): status, the network's error code
// or message, never headers or raw bodies.
const maxReason = 160

// describe is a short account of an answer: status and the network's own
// error code and message, sanitized.
func (ex exchange) describe() string {
	s := fmt.Sprintf("%s (%d)", http.StatusText(ex.Status), ex.Status)
	if msg := networkMessage(ex.Body); msg != "" {
		s += ": " + msg
	}
	return oneLine(s, maxReason)
}

// networkMessage extracts a network's error code and message from a JSON
// answer: Mastodon {"error"}, XRPC {"error","message"}, X {"title","detail"}
// or {"errors":[{"message"}]}, OAuth {"error","error_description"}. Anything
// else (an HTML error page, a proxy's text) gives "": raw bodies are not
// shown.
func networkMessage(body []byte) string {
	var m struct {
		Error       any    `json:"error"`
		Description string `json:"error_description"`
		Message     string `json:"message"`
		Title       string `json:"title"`
		Detail      string `json:"detail"`
		Errors      []struct {
			Message string `json:"message"`
			Detail  string `json:"detail"`
		} `json:"errors"`
	}
	var parts []string
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	if s, ok := m.Error.(string); ok && s != "" {
		parts = append(parts, s)
	}
	for _, s := range []string{m.Description, m.Message, m.Detail} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	if m.Detail == "" && m.Title != "" {
		parts = append(parts, m.Title)
	}
	for _, e := range m.Errors {
		if e.Message != "" {
			parts = append(parts, e.Message)
		} else if e.Detail != "" {
			parts = append(parts, e.Detail)
		}
	}
	return oneLine(strings.Join(parts, ": "), maxReason)
}

// oneLine is s on one line of printable characters, cut to at most n bytes
// (in whole runes, with an ellipsis).
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		cut := n - len("…")
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// retryDelay is how long a 429 asked to wait: Retry-After (seconds or an
// HTTP date), or a rate limit reset header (Mastodon X-RateLimit-Reset, an
// ISO 8601 time; X x-rate-limit-reset and Bluesky RateLimit-Reset, epoch
// seconds). It is at least a second and at most an hour; 0 when the answer
// says nothing.
func retryDelay(h http.Header, now time.Time) time.Duration {
	for _, k := range []string{"Retry-After", "X-RateLimit-Reset", "RateLimit-Reset", "X-Rate-Limit-Reset", "X-User-Limit-24hour-Reset", "X-App-Limit-24hour-Reset"} {
		v := strings.TrimSpace(h.Get(k))
		if v == "" {
			continue
		}
		var d time.Duration
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			if n > 1_000_000_000 { // an epoch time
				d = time.Unix(n, 0).Sub(now)
			} else {
				d = time.Duration(n) * time.Second
			}
		} else if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			d = t.Sub(now)
		} else if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(now)
		} else {
			continue
		}
		return min(max(d, time.Second), time.Hour)
	}
	return 0
}

// transportError classifies a call that got no answer. Before the request
// was written whole, the network surely did not act on it; after, it may
// have.
func transportError(r Request, network string, ex exchange) error {
	if !ex.Sent {
		return notPostedOrDoubt(r, "%s could not be reached: %v", network, ex.Err)
	}
	return Doubtful("%s did not answer after the request was sent: %v", network, ex.Err)
}

// notPostedOrDoubt is NotPosted on a fresh attempt, and a plain retryable
// error when an earlier attempt left a doubt this one did not settle.
func notPostedOrDoubt(r Request, format string, a ...any) error {
	if r.Retry {
		return Doubtful(format, a...)
	}
	return NotPosted(format, a...)
}

// baseURL returns the account's base URL setting (or def), without a
// trailing slash.
func baseURL(r Request, key, def string) (string, error) {
	v := strings.TrimSpace(r.Account.Settings[key])
	if v == "" {
		v = def
	}
	if v == "" {
		return "", Rejected("the account has no %s setting", key)
	}
	if msg := cs.CheckBaseURL(v); msg != "" {
		return "", Rejected("the account's %s %s", key, msg)
	}
	return strings.TrimRight(v, "/"), nil
}
