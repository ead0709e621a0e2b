// Package postlog puts org, post_id and workflow_id on every log line about a
// post, including the Temporal SDK's own lines, which only name the
// WorkflowID. A Handler derives the missing keys; an Interceptor on the
// worker tells it each post workflow's org, which no SDK line carries.
package postlog

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	cs "github.com/countersign/countersign"
)

// The keys Countersign's lines about a post carry, and the SDK's.
const (
	KeyOrg        = "org"
	KeyPostID     = "post_id"
	KeyWorkflowID = "workflow_id"
	sdkWorkflowID = "WorkflowID"
)

// PostID returns the post id of a post workflow's id (see cs.WorkflowID).
func PostID(workflowID string) (string, bool) {
	id, ok := strings.CutPrefix(workflowID, cs.WorkflowID(""))
	return id, ok && id != ""
}

// Orgs remembers which org each post workflow belongs to. It is bounded:
// when full, the entries not used since the previous rotation go first.
type Orgs struct {
	mu        sync.Mutex
	half      int
	cur, prev map[string]string
}

// NewOrgs returns an Orgs holding at most n workflows.
func NewOrgs(n int) *Orgs {
	half := max(n/2, 1)
	return &Orgs{half: half, cur: make(map[string]string, half)}
}

// DefaultOrgs is what the process logger and the worker interceptor share:
// the logger is built before any worker, and both live as long as the process.
var DefaultOrgs = NewOrgs(1 << 15)

// Remember records the org of a workflow; it is idempotent and cheap, so it
// can be called on every signal or activity to keep an entry fresh.
func (o *Orgs) Remember(workflowID, org string) {
	if workflowID == "" || org == "" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cur[workflowID] != org {
		o.put(workflowID, org)
	}
}

// Org returns the remembered org of a workflow, or "".
func (o *Orgs) Org(workflowID string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if org, ok := o.cur[workflowID]; ok {
		return org
	}
	org, ok := o.prev[workflowID]
	if ok {
		o.put(workflowID, org) // in use: keep it across the next rotation
	}
	return org
}

func (o *Orgs) put(workflowID, org string) {
	if len(o.cur) >= o.half {
		o.prev, o.cur = o.cur, make(map[string]string, o.half)
	}
	o.cur[workflowID] = org
}

// Handler wraps a slog.Handler: a line that names a post — by the SDK's
// WorkflowID of a post workflow, or by workflow_id or post_id — gets the
// keys among org, post_id and workflow_id it lacks. Lines about other
// workflows pass unchanged. Only top-level keys count; once a group is open,
// what the handler knows is added before it, since later attrs land inside.
type Handler struct {
	inner   slog.Handler
	orgs    *Orgs
	seen    seen // what the WithAttrs so far said
	grouped bool
}

// NewHandler wraps inner; orgs says which org a post workflow belongs to.
func NewHandler(inner slog.Handler, orgs *Orgs) *Handler {
	return &Handler{inner: inner, orgs: orgs}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if h.grouped {
		return h.inner.Handle(ctx, r)
	}
	s := h.seen
	r.Attrs(func(a slog.Attr) bool { s.note(a); return true })
	if add := s.missing(h.orgs); len(add) > 0 {
		r = r.Clone() // the caller may still hold r's attrs
		r.AddAttrs(add...)
	}
	return h.inner.Handle(ctx, r)
}

// WithAttrs implements slog.Handler. The org is looked up when a line is
// logged, not here: the SDK binds WorkflowID before the interceptor has
// seen the workflow.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	c := *h
	c.inner = h.inner.WithAttrs(attrs)
	if !h.grouped {
		for _, a := range attrs {
			c.seen.note(a)
		}
	}
	return &c
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	inner := h.inner
	if !h.grouped {
		if add := h.seen.missing(h.orgs); len(add) > 0 {
			inner = inner.WithAttrs(add)
		}
		c.grouped = true
	}
	c.inner = inner.WithGroup(name)
	return &c
}

// seen is what a line's top-level attrs say about a post.
type seen struct {
	org, post, wf      bool   // the keys are present
	postID, workflowID string // the post they name
}

func (s *seen) note(a slog.Attr) {
	switch a.Key {
	case KeyOrg:
		s.org = true
	case KeyPostID:
		s.post = true
		if s.postID == "" {
			s.postID = stringValue(a.Value)
		}
	case KeyWorkflowID, sdkWorkflowID:
		s.wf = s.wf || a.Key == KeyWorkflowID
		if id := stringValue(a.Value); s.workflowID == "" {
			if _, ok := PostID(id); ok {
				s.workflowID = id
			}
		}
	case "": // an empty-keyed group is inlined
		if v := a.Value.Resolve(); v.Kind() == slog.KindGroup {
			for _, g := range v.Group() {
				s.note(g)
			}
		}
	}
}

// missing returns the keys to add, if the line names a post.
func (s seen) missing(orgs *Orgs) []slog.Attr {
	wid, pid := s.workflowID, s.postID
	switch {
	case wid == "" && pid == "":
		return nil
	case wid == "":
		wid = cs.WorkflowID(pid)
	case pid == "":
		pid, _ = PostID(wid)
	}
	var add []slog.Attr
	if !s.org && orgs != nil {
		if org := orgs.Org(wid); org != "" {
			add = append(add, slog.String(KeyOrg, org))
		}
	}
	if !s.post {
		add = append(add, slog.String(KeyPostID, pid))
	}
	if !s.wf {
		add = append(add, slog.String(KeyWorkflowID, wid))
	}
	return add
}

func stringValue(v slog.Value) string {
	if v = v.Resolve(); v.Kind() == slog.KindString {
		return v.String()
	}
	return ""
}
