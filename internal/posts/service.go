// Package posts is the one place the rules about submitting and changing a
// post live on the API's side: submit, decide, edit, reschedule and cancel,
// and the reads the API needs. The HTTP handlers (server/posts.go) and Slack
// (server/slack.go) only translate into calls of this service.
//
// Who may decide or change a post is the post's workflow's to say (SPEC §3,
// "One authority"): the service sends each change as a Workflow Update and
// returns the post's new state, or the workflow's refusal (a *cs.Error whose
// Code is a cs.Reason* code). What the service itself checks are limits
// (SPEC §8): the size of what reaches a workflow, Idempotency-Key, and the
// rate of changes per member and per post.
package posts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/postflow"
	"github.com/countersign/countersign/internal/secrets"
	"github.com/countersign/countersign/internal/store"
)

// Store is the database as the service uses it (*store.Store).
type Store interface {
	Account(ctx context.Context, orgID, accountID string) (cs.Account, error)
	EffectiveRight(ctx context.Context, orgID, accountID, memberID string) (cs.Right, error)
	AccountChain(ctx context.Context, orgID, accountID string) (cs.Chain, error)
	CreatePost(ctx context.Context, in store.NewPost) (cs.Post, bool, error)
	MarkPostStarted(ctx context.Context, postID string) error
	DeleteUnstartedPost(ctx context.Context, postID string) error
	UnstartedPostByID(ctx context.Context, postID string) (store.UnstartedPost, bool, error)
	Post(ctx context.Context, orgID, postID string) (cs.Post, error)
	PostEvents(ctx context.Context, postID string) ([]cs.PostEvent, error)
	ListPosts(ctx context.Context, orgID string, f store.PostFilter, p cs.Page) ([]cs.Post, error)
}

// Workflows is Temporal as the service uses it (see NewWorkflows).
type Workflows interface {
	// Submit starts the post's workflow with the Update "submitted" and
	// returns its answer (postflow.StartWithUpdate's errors).
	Submit(ctx context.Context, p store.UnstartedPost, summary string, wait time.Duration) (cs.PostState, error)
	// Exists reports whether the post's workflow exists.
	Exists(ctx context.Context, postID string) (bool, error)
	// Update sends the Update name with id and waits for its answer.
	Update(ctx context.Context, postID, name, id string, arg any) (cs.PostState, error)
	// Signal sends the signal name.
	Signal(ctx context.Context, postID, name string, arg any) error
}

// Media checks and attaches a post's images (*media.Service).
type Media interface {
	// Resolve checks images (ids and alt texts, as sent) for the network
	// and returns them with the hashes of their bytes, or a 422.
	Resolve(ctx context.Context, orgID string, n cs.Network, refs []cs.PostMedia) ([]cs.PostMedia, error)
	// Attach keeps them from the sweep of unattached uploads.
	Attach(ctx context.Context, orgID string, media []cs.PostMedia) error
}

// Deps are the service's dependencies.
type Deps struct {
	Store     Store
	Workflows Workflows
	// Media checks posts' images; without it, a post with images is
	// refused (422).
	Media  Media
	Logger *slog.Logger
	// Signer signs decisions and edits (SPEC §8). Without one they go
	// unsigned, and the workflow ignores the decisions.
	Signer *secrets.DecisionSigner
	// Limits rate-limits decisions and edits (default: MemberRate, PerPost).
	Limits *Limits
	// MemberRate is each member's rate of decisions and edits in the
	// default Limits (zero: PerMember).
	MemberRate Rate
	// Comments stores comments (nil: the service has none to offer).
	Comments CommentStore
	// CommentLimits rate-limits comments, apart from decisions (default:
	// PerMember, PerPost).
	CommentLimits *Limits
	// Wait is how long a change waits for a worker to answer before it is
	// sent as a signal instead (default 5 s).
	Wait time.Duration
}

// Service holds submit, decide, edit, reschedule and cancel.
type Service struct {
	Deps
}

// New builds the service.
func New(d Deps) *Service {
	if d.Limits == nil {
		perMember := d.MemberRate
		if perMember == (Rate{}) {
			perMember = PerMember
		}
		d.Limits = NewLimits(perMember, PerPost, nil)
	}
	if d.CommentLimits == nil {
		d.CommentLimits = NewLimits(PerMember, PerPost, nil)
	}
	if d.Wait <= 0 {
		d.Wait = 5 * time.Second
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{Deps: d}
}

// Limits on what reaches a workflow (SPEC §8 Limits; docs/limits.md).
const (
	// MaxIdempotencyKey is the longest Idempotency-Key (and request id).
	MaxIdempotencyKey = 255
	// MaxMediaURLs and MaxMediaURL bound a post's media links.
	MaxMediaURLs = 4
	MaxMediaURL  = 2048
	// MaxNote bounds a decision's or a cancellation's note, in bytes: notes
	// are kept in the post's state, which travels in its history.
	MaxNote = 2000
)

// RateLimited is the error of a change refused by the rate limits.
type RateLimited struct {
	RetryAfter time.Duration
	What       string // what was limited: "" for decisions and edits, or "comments"
}

func (e *RateLimited) Error() string {
	what := e.What
	if what == "" {
		what = "decisions or edits"
	}
	return fmt.Sprintf("too many %s; retry in %s", what, e.RetryAfter.Round(time.Second))
}

// Outcome is the answer to a change.
type Outcome struct {
	// Post is the post with the state the workflow answered (or, when
	// Pending, as last mirrored).
	Post cs.Post
	// Pending: no worker answered in time; the change was sent as a signal
	// with the same request id, and counts at most once when it is handled.
	Pending bool
}

// Submission is a new post.
type Submission struct {
	AccountID string
	Text      string
	MediaURLs []string
	// Media are the images as sent: ids and alt texts.
	Media       []cs.PostMedia
	ScheduledAt *time.Time
	// IdempotencyKey is optional; RequestHash identifies the request's body
	// (see BodyHash).
	IdempotencyKey string
	RequestHash    string
}

// BodyHash is the hash kept with an Idempotency-Key.
func BodyHash(body []byte) string {
	h := sha256.Sum256(body)
	return hex.EncodeToString(h[:])
}

// ErrNotStarted is wrapped by Submit's errors when the post's workflow could
// not be started: Saved says whether the post was kept (the start's outcome
// is unknown, the reconciler starts it) or removed (Temporal refused).
type ErrNotStarted struct {
	Saved bool
	Err   error
}

func (e *ErrNotStarted) Error() string { return "start post workflow: " + e.Err.Error() }
func (e *ErrNotStarted) Unwrap() error { return e.Err }

// CheckIdempotencyKey refuses a key over MaxIdempotencyKey characters.
func CheckIdempotencyKey(key string) error {
	if len(key) > MaxIdempotencyKey {
		return &cs.Error{Code: cs.EINVALID, Message: fmt.Sprintf("the Idempotency-Key is %d characters; at most %d are allowed", len(key), MaxIdempotencyKey),
			Fields: []cs.FieldError{{Field: "Idempotency-Key", Message: fmt.Sprintf("is %d characters; at most %d", len(key), MaxIdempotencyKey)}}}
	}
	return nil
}

// CheckMedia bounds the media links.
func CheckMedia(urls []string) []cs.FieldError {
	var fields []cs.FieldError
	if len(urls) > MaxMediaURLs {
		fields = append(fields, cs.FieldError{Field: "media_urls", Message: fmt.Sprintf("at most %d media URLs, not %d", MaxMediaURLs, len(urls))})
	}
	for i, u := range urls {
		if len(u) > MaxMediaURL || !(strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")) {
			fields = append(fields, cs.FieldError{Field: fmt.Sprintf("media_urls[%d]", i), Message: fmt.Sprintf("must be an http(s) URL of at most %d characters", MaxMediaURL)})
		}
	}
	return fields
}

func checkNote(note string) error {
	if len(note) > MaxNote {
		return &cs.Error{Code: cs.EINVALID, Message: fmt.Sprintf("the note is %d bytes; at most %d are allowed", len(note), MaxNote),
			Fields: []cs.FieldError{{Field: "note", Message: fmt.Sprintf("is %d bytes; at most %d", len(note), MaxNote)}}}
	}
	return nil
}

// Submit creates a post and starts its workflow. created is false when the
// author's Idempotency-Key found an earlier post with the same body (which is
// returned). The post shows step 1 open with its eligible approvers, or
// scheduled, as the workflow answered.
func (s *Service) Submit(ctx context.Context, me cs.Member, in Submission) (p cs.Post, created bool, err error) {
	if err := CheckIdempotencyKey(in.IdempotencyKey); err != nil {
		return p, false, err
	}
	var fields []cs.FieldError
	if _, err := uuid.Parse(in.AccountID); err != nil {
		fields = append(fields, cs.FieldError{Field: "account_id", Message: "must be the id of an account"})
	}
	if in.ScheduledAt != nil && in.ScheduledAt.Before(time.Now().Add(-time.Minute)) {
		fields = append(fields, cs.FieldError{Field: "scheduled_at", Message: "is in the past"})
	}
	fields = append(fields, CheckMedia(in.MediaURLs)...)
	if len(fields) > 0 {
		return p, false, &cs.Error{Code: cs.EINVALID, Message: "invalid post", Fields: fields}
	}
	acct, err := s.Store.Account(ctx, me.OrgID, in.AccountID)
	if err != nil {
		return p, false, err
	}
	if err := cs.CheckPost(acct.Network, in.Text, in.MediaURLs); err != nil {
		return p, false, err
	}
	right, err := s.Store.EffectiveRight(ctx, me.OrgID, acct.ID, me.ID)
	if err != nil {
		return p, false, err
	}
	if !right.Compose || right.Publish == cs.PublishNone {
		return p, false, cs.Errorf(cs.EFORBIDDEN, "you have no right to post to %s: ask an admin for a grant on this account", acct.Handle)
	}
	media, err := s.resolveMedia(ctx, me.OrgID, acct.Network, in.Media)
	if err != nil {
		return p, false, err
	}
	chain, err := s.Store.AccountChain(ctx, me.OrgID, acct.ID)
	if err != nil {
		return p, false, err
	}
	np := store.NewPost{
		OrgID: me.OrgID, AccountID: acct.ID, AuthorID: me.ID, Text: in.Text, MediaURLs: in.MediaURLs, Media: media,
		ScheduledAt: in.ScheduledAt, Chain: chain, IdempotencyKey: in.IdempotencyKey, RequestHash: in.RequestHash,
		NeedsApproval: right.Publish == cs.PublishWithApproval || chain.RequireApprovalForAll,
	}
	p, created, err = s.Store.CreatePost(ctx, np)
	if err != nil {
		return p, false, err
	}
	summary := cs.WorkflowSummary(acct.Handle, me.Name, in.Text)
	if !created {
		// A post kept after an unanswered start is started now rather than
		// waiting for the reconciler (a no-op if the first start happened).
		if u, kept, err := s.Store.UnstartedPostByID(ctx, p.ID); err == nil && kept {
			p, _ = s.start(ctx, p, u, summary)
		}
		return p, false, nil
	}
	if len(p.Steps) == 0 {
		p.Steps = plannedSteps(chain, np.NeedsApproval)
	}
	p, err = s.start(ctx, p, store.UnstartedPost{NewPost: np, ID: p.ID}, summary)
	return p, true, err
}

// resolveMedia checks a post's images for the network (422 naming the
// image and the limit) and marks them attached, so the sweep keeps them.
func (s *Service) resolveMedia(ctx context.Context, orgID string, n cs.Network, refs []cs.PostMedia) ([]cs.PostMedia, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	if s.Media == nil {
		return nil, &cs.Error{Code: cs.EINVALID, Message: "this server keeps no media", Fields: []cs.FieldError{{Field: "media", Message: "is not available"}}}
	}
	media, err := s.Media.Resolve(ctx, orgID, n, refs)
	if err != nil {
		return nil, err
	}
	return media, s.Media.Attach(ctx, orgID, media)
}

// start starts the post's workflow and returns the post as it answered. A
// start that Temporal surely refused removes the post; one whose outcome is
// unknown keeps it for the reconciler (starts are idempotent).
func (s *Service) start(ctx context.Context, p cs.Post, u store.UnstartedPost, summary string) (cs.Post, error) {
	log := s.Logger.With("org", p.OrgID, "post_id", p.ID, "workflow_id", cs.WorkflowID(p.ID))
	st, err := s.Workflows.Submit(ctx, u, summary, s.Wait)
	switch {
	case err == nil:
		p = answered(p, st)
	case errors.Is(err, postflow.ErrNoAnswer):
		log.Warn("post workflow started; its first state was not answered in time", "error", err)
	default:
		log.Error("start post workflow", "error", err)
		exists, derr := s.Workflows.Exists(ctx, p.ID)
		if !exists {
			if derr == nil && postflow.Refused(err) { // surely not started: undo the insert
				if err := s.Store.DeleteUnstartedPost(ctx, p.ID); err != nil {
					log.Error("remove post after refused start; the reconciler will start it", "error", err)
					return p, &ErrNotStarted{Saved: true, Err: err}
				}
				return p, &ErrNotStarted{Saved: false, Err: err}
			}
			return p, &ErrNotStarted{Saved: true, Err: err}
		}
	}
	if err := s.Store.MarkPostStarted(ctx, p.ID); err != nil {
		log.Warn("mark post started", "error", err) // the reconciler's start is a no-op
	}
	return p, nil
}

// plannedSteps shows the chain's steps before the workflow answered.
func plannedSteps(chain cs.Chain, needsApproval bool) []cs.StepState {
	steps := []cs.StepState{}
	if !needsApproval {
		return steps
	}
	for i, st := range chain.Steps {
		status := cs.StepWaiting
		if i == 0 {
			status = cs.StepOpen
		}
		steps = append(steps, cs.StepState{Index: i + 1, Approver: st.Approver, Quorum: st.NeededApprovals(),
			Status: status, FallbackTeam: st.FallbackTeam, Eligible: []string{}, Approvals: []cs.DecisionRecord{}})
	}
	return steps
}

// answered is p showing the state a workflow answered. The workflow stored
// that state in PostgreSQL before it answered (SavePostState runs in the
// workflow task that completes the Update, or the Publish activity stores
// "publishing" first), so the caller's next read and the next approver's
// already see it: the API writes nothing more.
func answered(p cs.Post, st cs.PostState) cs.Post {
	if st.PostID == "" {
		return p // an answer without a state (an old worker)
	}
	return WithState(p, st)
}

// WithState is p showing the workflow's state st.
func WithState(p cs.Post, st cs.PostState) cs.Post {
	p.Status, p.Revision, p.ContentHash = st.Status, st.Revision, st.ContentHash
	p.Text, p.MediaURLs, p.Media = st.Text, st.MediaURLs, cs.PostImages(p.OrgID, st.Media)
	if p.MediaURLs == nil {
		p.MediaURLs = []string{}
	}
	p.CurrentStep, p.TotalSteps, p.Steps = st.CurrentStep, st.TotalSteps, st.Steps
	if p.Steps == nil {
		p.Steps = []cs.StepState{}
	}
	p.Awaited = st.Awaited
	if p.Awaited == nil || st.Status != cs.PostPendingApproval {
		p.Awaited = []string{}
	}
	p.ScheduledAt, p.WaitingFor, p.Deadline = st.ScheduledAt, st.WaitingFor, st.Deadline
	p.LastError, p.ExternalID, p.ExternalURL, p.PublishedAt = st.LastError, st.ExternalID, st.ExternalURL, st.PublishedAt
	if !st.UpdatedAt.IsZero() {
		p.UpdatedAt = st.UpdatedAt
	}
	return p
}

// PostWithEvents reads a post of the org with its audit log.
func (s *Service) PostWithEvents(ctx context.Context, orgID, postID string) (cs.Post, error) {
	p, err := s.Store.Post(ctx, orgID, postID)
	if err != nil {
		return p, err
	}
	if p.Events, err = s.Store.PostEvents(ctx, p.ID); p.Events == nil {
		p.Events = []cs.PostEvent{}
	}
	return p, err
}

// List lists the org's posts, newest first.
func (s *Service) List(ctx context.Context, orgID string, f store.PostFilter, p cs.Page) ([]cs.Post, error) {
	return s.Store.ListPosts(ctx, orgID, f, p)
}

// Approvals lists the posts whose open step awaits the member now: the
// workflow's awaited list as mirrored, so it agrees with PostApprovers.
func (s *Service) Approvals(ctx context.Context, me cs.Member, p cs.Page) ([]cs.Post, error) {
	return s.Store.ListPosts(ctx, me.OrgID, store.PostFilter{Status: cs.PostPendingApproval, AwaitingMember: me.ID}, p)
}

// requestID is the caller's request id, or a new one. What reaches the
// workflow is at most maxRequestID plain characters: a longer id, or one with
// characters JSON would escape, is replaced by its hash (the workflow keeps up
// to a thousand ids in its state, carried through continue-as-new).
func requestID(id string) (string, error) {
	if id == "" {
		return uuid.NewString(), nil
	}
	if err := CheckIdempotencyKey(id); err != nil {
		return "", err
	}
	if len(id) > maxRequestID || strings.ContainsFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:", r))
	}) {
		h := sha256.Sum256([]byte(id))
		return "sha256:" + hex.EncodeToString(h[:16]), nil
	}
	return id, nil
}

// maxRequestID bounds a request id as the workflow sees it.
const maxRequestID = 64

// limit applies the rate limits to a change by member on post.
func (s *Service) limit(memberID, postID string) error {
	if d := s.Limits.Allow(memberID, postID); d > 0 {
		return &RateLimited{RetryAfter: d}
	}
	return nil
}
