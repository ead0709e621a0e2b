// Package publish sends approved posts to their networks, exactly once per
// post revision (SPEC §5). Each network is an Adapter; Publisher runs the
// protocol around them:
//
//  1. Before the network is called, the revision's publication row is
//     written (BeginPublication). It fixes the key the network deduplicates
//     on (Mastodon's Idempotency-Key, the webhook-id, Bluesky's record key)
//     and marks the attempt in flight.
//  2. An attempt that finds the row still in flight from an earlier attempt
//     (crash, timeout, an error after the request may have reached the
//     network) is told so (Request.Retry) and must settle that doubt before
//     posting again: resend with the same key where the network
//     deduplicates, look the post up where it can be looked up, and
//     otherwise give up as ErrUnknown (needs_attention). Never post blindly
//     again.
//     A post with images first uploads them (media.go): each network
//     reference is recorded before the post is created and reused by every
//     later attempt; until the post is about to be sent the publication is
//     "uploading", and an attempt that ends there left no doubt.
//  3. The outcome is recorded: published, failed (the network refused for
//     good, with its message), unknown (a person must look; the evidence is
//     kept), or retried: only what surely did not post, or what the network
//     deduplicates, is retried, after the delay a 429 asked for.
package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
	"github.com/countersign/countersign/internal/egress"
	"github.com/countersign/countersign/internal/store"
)

// Request is what an adapter publishes. Credentials never leave the adapter:
// not in errors, not in notes, not in logs.
type Request struct {
	activities.PublishRequest
	Account     cs.Account
	Credentials map[string]string
	// IdemKey is fixed for the post revision: the network deduplicates on it
	// (Bluesky: it is the record key, a TID).
	IdemKey string
	// Retry is true when an earlier attempt may have reached the network and
	// its outcome is not known: settle that before posting again.
	Retry bool
	// Attempt counts the attempts at this revision, this one included.
	Attempt int
	// FirstAttempt is when the first attempt at this revision began.
	FirstAttempt time.Time
	// Trail collects what the attempt did and saw (the evidence kept with
	// the publication). Nil is allowed.
	Trail *Trail
	// RefreshCredentials replaces the account's stored credentials, one
	// refresher at a time per account (see store.RefreshAccountCredentials).
	// Nil when the credentials cannot be refreshed.
	RefreshCredentials func(ctx context.Context, refresh func(current map[string]string) (map[string]string, error)) (map[string]string, error)
	// Images are the revision's images (PublishRequest.Media) with the
	// network references earlier attempts recorded.
	Images []Image
	media  *mediaAccess
}

// Note adds a line to the attempt's evidence. Never pass credentials.
func (r Request) Note(format string, a ...any) { r.Trail.Add(format, a...) }

// PublishedText is the text to publish: the post's text and its media links.
func (r Request) PublishedText() string { return cs.PublishedText(r.Text, r.MediaURLs) }

// Result is where the post went.
type Result = activities.PublishResult

// Adapter publishes to one network. Its errors say what is known:
//   - ErrRejected: the network refused the post for good (bad content, bad
//     credentials); nothing was posted. The post becomes failed.
//   - ErrUnknown: it may have posted and the adapter could not find out.
//     The post becomes needs_attention.
//   - ErrNotPosted: surely not posted, and any doubt from an earlier attempt
//     was settled: the next attempt is a fresh one.
//   - anything else: retry; it may have reached the network, and the next
//     attempt (with Retry set) settles that.
//
// Wrap any of them in RetryAfter to ask for a delay before the next attempt.
type Adapter interface {
	Publish(ctx context.Context, r Request) (Result, error)
}

// Outcome errors of adapters; wrap them with the network's message
// (fmt.Errorf("%w: ...", ErrRejected)) or use Rejected, Unknown, NotPosted.
var (
	ErrRejected  = errors.New("rejected by the network")
	ErrUnknown   = errors.New("outcome unknown")
	ErrNotPosted = errors.New("not posted")
)

// outcome is an adapter error of a known kind whose message is the
// network's story alone (no "rejected by the network:" prefix).
type outcome struct {
	kind error
	msg  string
}

func (o *outcome) Error() string { return o.msg }
func (o *outcome) Unwrap() error { return o.kind }

// Rejected is an ErrRejected with this message.
func Rejected(format string, a ...any) error {
	return &outcome{ErrRejected, fmt.Sprintf(format, a...)}
}

// Unknown is an ErrUnknown with this message (the evidence).
func Unknown(format string, a ...any) error { return &outcome{ErrUnknown, fmt.Sprintf(format, a...)} }

// NotPosted is an ErrNotPosted with this message.
func NotPosted(format string, a ...any) error {
	return &outcome{ErrNotPosted, fmt.Sprintf(format, a...)}
}

// Doubtful is a retryable error after which the network may hold the post;
// the next attempt settles it.
func Doubtful(format string, a ...any) error { return fmt.Errorf(format, a...) }

// RetryAfterError asks for the next attempt after a delay (HTTP 429).
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err with the delay the network asked for; 0 leaves the
// retry policy's backoff.
func RetryAfter(after time.Duration, err error) error {
	if after <= 0 {
		return err
	}
	return &RetryAfterError{Err: err, After: after}
}

// Store is what publishing needs from the database.
type Store interface {
	Account(ctx context.Context, orgID, accountID string) (cs.Account, error)
	AccountCredentials(ctx context.Context, orgID, accountID string) (map[string]string, error)
	RefreshAccountCredentials(ctx context.Context, orgID, accountID string, refresh func(map[string]string) (map[string]string, error)) (map[string]string, error)
	BeginPublication(ctx context.Context, postID string, revision int, network, idemKey string, withMedia bool) (store.Publication, error)
	Publication(ctx context.Context, postID string, revision int) (store.Publication, error)
	FinishPublication(ctx context.Context, p store.Publication) error
	NotePublicationError(ctx context.Context, postID string, revision int, msg, evidence string, inDoubt bool) error
	PublicationMedia(ctx context.Context, postID string, revision int) ([]store.PublishedMedia, error)
	RecordPublicationMedia(ctx context.Context, postID string, revision int, m store.PublishedMedia) (store.PublishedMedia, error)
	StartPosting(ctx context.Context, postID string, revision int) error
}

// Publisher implements activities.Publisher over the adapters.
type Publisher struct {
	Store    Store
	Adapters map[cs.Network]Adapter
	Logger   *slog.Logger
	Now      func() time.Time // for tests; time.Now when nil
	// Guard is the operator's egress allow-list; plain http for networks
	// with credentials is sent only to hosts it allows.
	Guard *egress.Guard
	// Media reads the images' bytes (never carried by the workflow).
	Media cs.MediaSource
	// SignMediaURL makes the webhook's download URLs.
	SignMediaURL MediaURLSigner
}

// DefaultTimeout bounds each HTTP call to a network.
const DefaultTimeout = 30 * time.Second

// NewHTTPClient returns the client adapters use: every connection through
// the egress guard, a timeout per call, and no redirects followed (Go would
// turn a redirected POST into a GET: a moved endpoint is an error to fix in
// the account's settings).
func NewHTTPClient(guard *egress.Guard, timeout time.Duration) *http.Client {
	return guard.Client(timeout)
}

// New returns a Publisher with the built-in adapters, whose every outbound
// call goes through guard.
func New(st Store, logger *slog.Logger, publicURL string, guard *egress.Guard) *Publisher {
	client := NewHTTPClient(guard, DefaultTimeout)
	return &Publisher{
		Store:  st,
		Logger: logger,
		Guard:  guard,
		Adapters: map[cs.Network]Adapter{
			cs.NetworkLog:      Log{Logger: logger, PublicURL: publicURL},
			cs.NetworkWebhook:  Webhook{Client: client},
			cs.NetworkMastodon: Mastodon{Client: client},
			cs.NetworkBluesky:  Bluesky{Client: client},
			cs.NetworkX:        X{Client: client},
		},
	}
}

// IdemKey is the key a network deduplicates one post revision on (Mastodon's
// Idempotency-Key, the webhook-id, the log's external id).
func IdemKey(postID string, revision int) string { return fmt.Sprintf("post-%s-r%d", postID, revision) }

// firstKey is the key a first attempt proposes; the publication row keeps
// the first one proposed.
func (p *Publisher) firstKey(n cs.Network, postID string, revision int) string {
	if n == cs.NetworkBluesky {
		return NewTID(p.now())
	}
	return IdemKey(postID, revision)
}

func (p *Publisher) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Publish publishes a post revision exactly once.
func (p *Publisher) Publish(ctx context.Context, req activities.PublishRequest) (activities.PublishResult, error) {
	acct, err := p.Store.Account(ctx, req.OrgID, req.AccountID)
	if err != nil {
		if cs.ErrorCode(err) == cs.ENOTFOUND {
			// An attempt made before the account was deleted may have posted.
			if pub, perr := p.Store.Publication(ctx, req.PostID, req.Revision); perr == nil {
				switch {
				case pub.Status == store.PubPublished:
					return Result{ExternalID: pub.ExternalID, ExternalURL: pub.ExternalURL}, nil
				case pub.Status == store.PubAttempting && pub.InDoubt:
					return Result{}, activities.PublishUnknown("the account was deleted after an attempt that may have published this post; check the network")
				}
			}
			return Result{}, activities.PublishRejected("the account was deleted")
		}
		return Result{}, err
	}
	adapter, ok := p.Adapters[acct.Network]
	if !ok {
		return Result{}, activities.PublishRejected(fmt.Sprintf("publishing to %s is not available in this build", acct.Network))
	}
	if len(req.Media) > MaxMedia {
		return Result{}, activities.PublishRejected(fmt.Sprintf("a post carries at most %d images, this one %d", MaxMedia, len(req.Media)))
	}
	pub, err := p.Store.BeginPublication(ctx, req.PostID, req.Revision, string(acct.Network),
		p.firstKey(acct.Network, req.PostID, req.Revision), len(req.Media) > 0 && uploadsMedia(acct.Network))
	if err != nil {
		return Result{}, err
	}
	switch pub.Status {
	case store.PubPublished:
		return Result{ExternalID: pub.ExternalID, ExternalURL: pub.ExternalURL}, nil
	case store.PubFailed:
		return Result{}, activities.PublishRejected(pub.LastError)
	case store.PubUnknown:
		return Result{}, activities.PublishUnknown(pub.LastError)
	}
	logger := p.Logger.With("org", req.OrgID, "post_id", req.PostID, "workflow_id", cs.WorkflowID(req.PostID),
		"revision", req.Revision, "network", acct.Network, "account", acct.Handle, "attempt", pub.Attempts)
	creds, err := p.Store.AccountCredentials(ctx, req.OrgID, req.AccountID)
	if errors.Is(err, store.ErrCredentialsDoNotOpen) {
		// Final: they were sealed for somewhere else. Nothing was sent.
		logger.Warn("account credentials do not open", "error", err)
		return Result{}, p.notSent(ctx, logger, pub, "not sent: "+store.ErrCredentialsDoNotOpen.Error())
	}
	if err != nil {
		// Nothing was sent: this attempt leaves the doubt as it found it.
		_ = p.Store.NotePublicationError(ctx, req.PostID, req.Revision, err.Error(), "", pub.InDoubt)
		return Result{}, err
	}
	if msg := p.plainHTTP(acct); msg != "" && len(creds) > 0 {
		// Saved before the rule, or edited behind the API: never send
		// credentials in the clear to a host the operator did not allow.
		return Result{}, p.notSent(ctx, logger, pub, msg)
	}
	red := newRedactor(creds)
	trail := &Trail{}
	r := Request{
		PublishRequest: req, Account: acct, Credentials: creds,
		IdemKey: pub.IdemKey, Retry: pub.InDoubt, Attempt: pub.Attempts, FirstAttempt: pub.StartedAt, Trail: trail,
		RefreshCredentials: func(ctx context.Context, refresh func(map[string]string) (map[string]string, error)) (map[string]string, error) {
			next, err := p.Store.RefreshAccountCredentials(ctx, req.OrgID, req.AccountID, refresh)
			if err == nil {
				red.add(next)
			}
			return next, err
		},
	}
	if pub.InDoubt {
		r.Note("an earlier attempt may have reached %s; settling that first", acct.Network)
	}
	r.media = &mediaAccess{source: p.Media, sign: p.SignMediaURL, store: p.Store}
	actx, refused := watchRefusals(ctx)
	r.Images, err = p.images(ctx, r)
	if err != nil && !errors.Is(err, ErrUnknown) { // nothing was sent
		err = notPostedOrDoubt(r, "could not read the media recorded for this revision: %v", err)
	}
	var res Result
	if err == nil {
		res, err = adapter.Publish(actx, r)
	}
	if re := refused.get(); err != nil && re != nil && !errors.Is(err, ErrRejected) && !errors.Is(err, ErrUnknown) {
		// The guard refused the destination: final, whatever the adapter
		// made of the failed connection.
		msg := fmt.Sprintf("%s was not contacted: its address is a %s, which outbound calls may not reach (an operator may allow it with %s)",
			acct.Network, re.Reason, egress.Variable)
		r.Note("%s", msg)
		if errors.Is(err, ErrNotPosted) { // surely not posted, no doubt left
			err = Rejected("%s", msg)
		} else { // a call before the refused one may have published it
			err = Unknown("%s; the post may have been published before that: check the account", msg)
		}
	}
	if err == nil {
		res = safeResult(acct, res, r)
	}
	evidence := red.clean(trail.String(pub.Attempts, p.now()))

	pub.Evidence = evidence
	switch {
	case err == nil:
		pub.Status, pub.ExternalID, pub.ExternalURL = store.PubPublished, res.ExternalID, res.ExternalURL
		if ferr := p.Store.FinishPublication(ctx, pub); ferr != nil {
			// Posted but not recorded: the row stays in flight and the next
			// attempt settles it with the network (same key, or a look-up).
			logger.Error("post published but not recorded; the retry will settle it", "external_id", res.ExternalID, "error", ferr)
			return Result{}, ferr
		}
		logger.Info("post published", "external_id", res.ExternalID, "url", res.ExternalURL)
		return res, nil
	case errors.Is(err, ErrRejected):
		msg := red.clean(err.Error())
		pub.Status, pub.LastError = store.PubFailed, msg
		logger.Warn("network refused the post", "error", msg)
		if ferr := p.Store.FinishPublication(ctx, pub); ferr != nil {
			return Result{}, ferr
		}
		return Result{}, activities.PublishRejected(msg)
	case errors.Is(err, ErrUnknown):
		return Result{}, p.unknown(ctx, logger, pub, red.clean(withEvidence(err.Error(), trail)))
	}
	// Retryable.
	msg := red.clean(err.Error())
	inDoubt := !errors.Is(err, ErrNotPosted)
	var after time.Duration
	if ra := (*RetryAfterError)(nil); errors.As(err, &ra) {
		after = ra.After
	}
	if inDoubt && lastChance(ctx, after, p.now()) {
		// No attempt is left before the publish bound to settle the doubt.
		return Result{}, p.unknown(ctx, logger, pub, red.clean(withEvidence(
			"could not find out whether the post went out before the publish bound: "+msg, trail)))
	}
	logger.Warn("publish attempt failed; will retry", "error", msg, "in_doubt", inDoubt, "retry_after", after)
	if nerr := p.Store.NotePublicationError(ctx, req.PostID, req.Revision, msg, evidence, inDoubt); nerr != nil {
		logger.Error("could not record the failed attempt", "error", nerr)
	}
	return Result{}, temporal.NewApplicationErrorWithOptions(msg, activities.ErrTypePublishRetryable,
		temporal.ApplicationErrorOptions{NextRetryDelay: after})
}

// plainHTTP says why the account's URL may not carry its credentials ("" if
// it may): http to a host the operator did not allow.
func (p *Publisher) plainHTTP(acct cs.Account) string {
	u, err := url.Parse(cs.DestinationURL(acct.Network, acct.Settings))
	if err != nil || u.Scheme != "http" || !acct.Network.NeedsCredentials() {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	if p.Guard.AllowsHost(u.Hostname(), port) {
		return ""
	}
	return fmt.Sprintf("not sent: the account's URL is plain http, which would carry its credentials in the clear (an operator may allow the host with %s)", egress.Variable)
}

// MaxExternalURL bounds a published post's link.
const MaxExternalURL = 1024

// safeResult keeps what a network said about the published post only when
// it is safe to show: the external URL must be an https link on the
// account's own host (Mastodon, the webhook's receiver; plain http only
// where the operator allowed the account's http URL) or on the network's
// public site for the links adapters build (bsky.app, x.com); the log
// network's local URL is Countersign's own. Anything else is dropped (the
// post is published all the same) and noted in the evidence.
func safeResult(acct cs.Account, res Result, r Request) Result {
	res.ExternalID = oneLine(res.ExternalID, 256)
	if res.ExternalURL == "" || acct.Network == cs.NetworkLog {
		return res
	}
	u, err := url.Parse(res.ExternalURL)
	ok := err == nil && len(res.ExternalURL) <= MaxExternalURL && u.User == nil && u.Host != "" &&
		!strings.ContainsFunc(res.ExternalURL, func(r rune) bool { return r <= ' ' || r == 0x7f })
	if ok {
		switch acct.Network {
		case cs.NetworkBluesky:
			ok = u.Scheme == "https" && u.Host == "bsky.app"
		case cs.NetworkX:
			ok = u.Scheme == "https" && u.Host == "x.com"
		default:
			base, berr := url.Parse(cs.DestinationURL(acct.Network, acct.Settings))
			ok = berr == nil && hostKey(u) == hostKey(base) &&
				(u.Scheme == "https" || (u.Scheme == "http" && base.Scheme == "http"))
		}
	}
	if !ok {
		r.Note("the network's link to the post was not kept: not an https URL on the account's host (%d characters)", len(res.ExternalURL))
		res.ExternalURL = ""
	}
	return res
}

// hostKey is a URL's host and port, as compared: lower case, with the
// scheme's default port spelled out.
func hostKey(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")) + ":" + port
}

// notSent settles a publication that this attempt refused to send, for a
// reason no retry can change: failed, or unknown when an earlier attempt
// may have published it.
func (p *Publisher) notSent(ctx context.Context, logger *slog.Logger, pub store.Publication, msg string) error {
	if pub.InDoubt {
		return p.unknown(ctx, logger, pub, msg+"; an earlier attempt may have published the post: check the account")
	}
	pub.Status, pub.LastError = store.PubFailed, msg
	if ferr := p.Store.FinishPublication(ctx, pub); ferr != nil {
		return ferr
	}
	return activities.PublishRejected(msg)
}

// unknown settles a publication as unknown: a person must look.
func (p *Publisher) unknown(ctx context.Context, logger *slog.Logger, pub store.Publication, msg string) error {
	pub.Status, pub.LastError = store.PubUnknown, msg
	logger.Error("publish outcome unknown: a person must look", "error", msg)
	if ferr := p.Store.FinishPublication(ctx, pub); ferr != nil {
		return ferr
	}
	return activities.PublishUnknown(msg)
}

// withEvidence appends what the attempt did and saw to an unknown outcome's
// message, which becomes the post's last error and its audit event: the
// person who must look starts from there.
func withEvidence(msg string, t *Trail) string {
	lines := t.Lines()
	if len(lines) == 0 {
		return msg
	}
	ev := strings.Join(lines, "; ")
	if len(ev) > 1000 { // keep the end, in whole runes
		cut := len(ev) - 1000
		for cut < len(ev) && !isRuneStart(ev[cut]) {
			cut++
		}
		ev = "…" + ev[cut:]
	}
	return msg + ". Evidence: " + ev
}

// lastChance reports whether, inside a Temporal activity, no further attempt
// will start before the activity's schedule-to-close bound once this one
// fails with a retry after delay (or the retry policy's backoff).
func lastChance(ctx context.Context, delay time.Duration, now time.Time) bool {
	if !activity.IsActivity(ctx) {
		return false
	}
	info := activity.GetInfo(ctx)
	if info.ScheduleToCloseTimeout <= 0 || info.ScheduledTime.IsZero() {
		return false
	}
	if delay <= 0 {
		delay = backoff(info.RetryPolicy, int(info.Attempt))
	}
	// The next attempt must have the time of a whole attempt to settle the
	// doubt, or the bound would cut it short and the workflow would read
	// the last (retryable) failure as "surely not posted".
	return pastBound(now, delay+max(info.StartToCloseTimeout, 30*time.Second), info.ScheduledTime.Add(info.ScheduleToCloseTimeout))
}

// pastBound reports whether an attempt starting delay after now and needing
// need would not end before bound.
func pastBound(now time.Time, need time.Duration, bound time.Time) bool {
	return !now.Add(need).Before(bound)
}

// backoff is the delay Temporal waits after attempt n fails.
func backoff(rp *temporal.RetryPolicy, n int) time.Duration {
	if rp == nil || rp.InitialInterval <= 0 {
		return time.Second
	}
	coef := rp.BackoffCoefficient
	if coef < 1 {
		coef = 2
	}
	d := float64(rp.InitialInterval) * math.Pow(coef, float64(max(n-1, 0)))
	if rp.MaximumInterval > 0 && d > float64(rp.MaximumInterval) {
		return rp.MaximumInterval
	}
	return time.Duration(d)
}

// Trail is the evidence of one attempt: what it did and saw, in order.
type Trail struct {
	mu    sync.Mutex
	lines []string
}

// Add appends a line; a nil Trail ignores it.
func (t *Trail) Add(format string, a ...any) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, fmt.Sprintf(format, a...))
}

// Lines returns the lines added so far.
func (t *Trail) Lines() []string {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.lines)
}

// String renders the trail of attempt n ("" when nothing was noted).
func (t *Trail) String(n int, at time.Time) string {
	lines := t.Lines()
	if len(lines) == 0 {
		return ""
	}
	return fmt.Sprintf("attempt %d at %s:\n  %s\n", n, at.UTC().Format(time.RFC3339), strings.Join(lines, "\n  "))
}

// redactor removes credential values from text meant for errors, logs and
// the evidence: adapters never put them there, and this makes sure.
type redactor struct {
	mu     sync.Mutex
	values []string
}

func newRedactor(creds map[string]string) *redactor {
	r := &redactor{}
	r.add(creds)
	return r
}

func (r *redactor) add(creds map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range creds {
		if len(v) >= 6 && !slices.Contains(r.values, v) {
			r.values = append(r.values, v)
		}
	}
	// Longest first, so a secret containing another is removed whole.
	slices.SortFunc(r.values, func(a, b string) int { return len(b) - len(a) })
}

func (r *redactor) clean(s string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.values {
		s = strings.ReplaceAll(s, v, "[redacted]")
	}
	return s
}
