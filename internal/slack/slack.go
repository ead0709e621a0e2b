// Package slack is Countersign's Slack integration: the notifier that sends
// approval requests with buttons and keeps them up to date (Notifier), the
// pieces the HTTP endpoint and Socket Mode share to handle button clicks and
// the reject modal (actions, modal, ephemeral replies), and the link between
// Slack users and members (by e-mail).
//
// Nothing here waits for a Temporal worker: clicks become signals, and
// everything the notifier sends is recorded in the database so that a retried
// notification never sends a message twice.
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/countersign/countersign/internal/egress"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
	"github.com/countersign/countersign/internal/store"
)

// Config is the Slack part of Countersign's configuration.
type Config struct {
	BotToken      string // COUNTERSIGN_SLACK_BOT_TOKEN (xoxb-…): sends messages, opens modals
	SigningSecret string // COUNTERSIGN_SLACK_SIGNING_SECRET: verifies POST /slack/interactions
	APIURL        string // COUNTERSIGN_SLACK_API_URL: Slack's Web API base URL ("" for Slack's)
	AppToken      string // COUNTERSIGN_SLACK_APP_TOKEN (xapp-…): Socket Mode
	// Egress guards every connection to Slack (Web API and Socket Mode).
	// The app always sets it; nil (tests with a fake Slack built by hand)
	// leaves connections unguarded.
	Egress *egress.Guard
	// MediaURL is a signed, expiring URL of an image of a post
	// (media.URLs.ThumbnailURL), which Slack fetches for the approval request's
	// image blocks; nil shows only the images' alt texts.
	MediaURL func(orgID, mediaID string) string
}

// Enabled reports whether any Slack setting is present.
func (c Config) Enabled() bool {
	return c.BotToken != "" || c.SigningSecret != "" || c.AppToken != ""
}

// Store is what the integration reads and writes; *store.Store implements it.
type Store interface {
	SlackPost(ctx context.Context, postID string) (store.SlackPost, error)
	SlackMembers(ctx context.Context, orgID string, ids []string) (map[string]store.SlackMember, error)
	Team(ctx context.Context, orgID, teamID string) (cs.Team, error)
	EligibleApprovers(ctx context.Context, orgID, accountID string, a cs.Approver) ([]string, error)
	FindSlackMessage(ctx context.Context, postID string, revision, step int, kind, recipient string) (store.SlackMessage, bool, error)
	SaveSlackMessage(ctx context.Context, m store.SlackMessage) (store.SlackMessage, error)
	SlackMessages(ctx context.Context, postID, kind string) ([]store.SlackMessage, error)
	SetSlackMessagesShown(ctx context.Context, shown []store.SlackShown) error
	MemberBySlackUser(ctx context.Context, orgID, slackUserID string) (cs.Member, error)
	MemberByEmail(ctx context.Context, orgID, email string) (cs.Member, error)
	LinkSlackUser(ctx context.Context, orgID, memberID, slackUserID string) (bool, error)
	OrgAdminIDs(ctx context.Context, orgID string) ([]string, error)
}

var _ Store = (*store.Store)(nil)

// Service is the Slack integration of one process.
type Service struct {
	cfg    Config
	api    *slackgo.Client // nil without a bot token
	store  Store
	logger *slog.Logger

	work workers // background work started by Go

	mu      sync.Mutex
	missing map[string]time.Time // member id -> when users.lookupByEmail last found nobody
}

// lookupAgainAfter is how long a member that users.lookupByEmail did not find
// is not looked up again (a member who is not in Slack would otherwise cost a
// lookup per notification).
const lookupAgainAfter = time.Hour

// backgroundTimeout bounds the work done after an interaction was acknowledged.
const backgroundTimeout = 30 * time.Second

// New builds the integration, or returns nil when no Slack setting is
// present (notifications then go to the log, approvals through the API).
func New(cfg Config, st Store, logger *slog.Logger) *Service {
	if !cfg.Enabled() {
		return nil
	}
	if logger == nil {
		logger = slog.Default()
	}
	s := &Service{cfg: cfg, store: st, logger: logger.With("component", "slack"), missing: map[string]time.Time{}}
	if cfg.BotToken != "" {
		s.api = slackgo.New(cfg.BotToken, apiOptions(cfg)...)
	}
	switch {
	case cfg.BotToken == "":
		s.logger.Warn("Slack is partly configured: without COUNTERSIGN_SLACK_BOT_TOKEN notifications go to the log and the reject button cannot open its form")
	case cfg.SigningSecret == "" && cfg.AppToken == "":
		s.logger.Warn("Slack buttons will not work: set COUNTERSIGN_SLACK_SIGNING_SECRET (Request URL) or COUNTERSIGN_SLACK_APP_TOKEN (Socket Mode)")
	default:
		s.logger.Info("Slack enabled", "interactions_url", cfg.SigningSecret != "", "socket_mode", cfg.AppToken != "")
	}
	return s
}

func apiOptions(cfg Config) []slackgo.Option {
	var opts []slackgo.Option
	if u := cfg.APIURL; u != "" {
		if !strings.HasSuffix(u, "/") {
			u += "/" // slack-go appends method names to it
		}
		opts = append(opts, slackgo.OptionAPIURL(u))
	}
	if cfg.AppToken != "" {
		opts = append(opts, slackgo.OptionAppLevelToken(cfg.AppToken))
	}
	client := &http.Client{Timeout: 20 * time.Second}
	if cfg.Egress != nil {
		client.Transport = cfg.Egress.Transport()
	}
	opts = append(opts, slackgo.OptionHTTPClient(client))
	return opts
}

// API is the Web API client, nil without a bot token.
func (s *Service) API() *slackgo.Client { return s.api }

// HasBot reports whether a bot token is configured (messages, modals).
func (s *Service) HasBot() bool { return s != nil && s.api != nil }

// Config returns the settings the service was built with.
func (s *Service) Config() Config { return s.cfg }

// Notifier returns the activities.Notifier that talks to Slack, or nil
// without a bot token.
func (s *Service) Notifier() *Notifier {
	if !s.HasBot() {
		return nil
	}
	return &Notifier{svc: s}
}

// Go runs fn in the background with its own context (bounded by
// backgroundTimeout), detached from the request that started it: an
// interaction is acknowledged first, then handled, by a fixed pool of
// workers (see workers). It returns false when the pool's queue stayed full
// for workersWait and fn was not taken: the caller tells the person
// (BusyText). Wait waits for all of it.
func (s *Service) Go(fn func(ctx context.Context)) bool {
	ok := s.work.submit(func() {
		ctx, cancel := context.WithTimeout(context.Background(), backgroundTimeout)
		defer cancel()
		defer func() {
			if r := recover(); r != nil {
				s.logger.Error("panic in slack background work", "panic", r)
			}
		}()
		fn(ctx)
	}, workersWait)
	if !ok {
		s.logger.Warn("slack interaction refused: the queue stayed full", "queue", workersQueue, "waited", workersWait)
	}
	return ok
}

// Wait waits until the background work started with Go is done.
func (s *Service) Wait() {
	if s != nil {
		s.work.wg.Wait()
	}
}

// Errors of request verification.
var (
	ErrNoSigningSecret = errors.New("slack: no signing secret configured")
	ErrBadSignature    = errors.New("slack: missing, forged or stale request signature")
)

// VerifyRequest checks Slack's signature (X-Slack-Signature over the raw body
// and X-Slack-Request-Timestamp, which must be within five minutes).
func (s *Service) VerifyRequest(header http.Header, body []byte) error {
	if s == nil || s.cfg.SigningSecret == "" {
		return ErrNoSigningSecret
	}
	v, err := slackgo.NewSecretsVerifier(header, s.cfg.SigningSecret)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if _, err := v.Write(body); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if err := v.Ensure(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return nil
}

// --- members and Slack users -------------------------------------------------

// LinkMember looks the e-mail up in Slack (users.lookupByEmail) and, when a
// Slack user has it, links that user to the member (unless the member has a
// Slack id already). It returns the Slack user id found, or "".
func (s *Service) LinkMember(ctx context.Context, orgID, memberID, email string) (string, error) {
	if !s.HasBot() || email == "" {
		return "", nil
	}
	u, err := s.api.GetUserByEmailContext(ctx, email)
	if err != nil {
		if isSlackError(err, "users_not_found", "user_not_found") {
			return "", nil
		}
		return "", fmt.Errorf("users.lookupByEmail: %w", err)
	}
	if u == nil || u.ID == "" || u.Deleted || u.IsBot {
		return "", nil
	}
	linked, err := s.store.LinkSlackUser(ctx, orgID, memberID, u.ID)
	if err != nil {
		return "", err
	}
	if linked {
		s.logger.Info("linked slack user to member", "org_id", orgID, "member_id", memberID, "slack_user_id", u.ID)
	}
	return u.ID, nil
}

// LinkMemberLater links a member by e-mail in the background (a member just
// joined: the answer to the invitee does not wait for Slack).
func (s *Service) LinkMemberLater(orgID, memberID, email string) {
	if !s.HasBot() {
		return
	}
	s.Go(func(ctx context.Context) {
		if _, err := s.LinkMember(ctx, orgID, memberID, email); err != nil {
			s.logger.Warn("linking slack user by e-mail failed", "org_id", orgID, "member_id", memberID, "error", err)
		}
	})
}

// slackIDOf returns the member's Slack user id, looking it up by e-mail (and
// linking it) the first time it is needed. Members Slack does not know are
// not asked about again for lookupAgainAfter.
func (s *Service) slackIDOf(ctx context.Context, orgID string, m store.SlackMember) (string, error) {
	if m.SlackUserID != "" || !m.Active {
		return m.SlackUserID, nil
	}
	s.mu.Lock()
	at, seen := s.missing[m.ID]
	s.mu.Unlock()
	if seen && time.Since(at) < lookupAgainAfter {
		return "", nil
	}
	id, err := s.LinkMember(ctx, orgID, m.ID, m.Email)
	if err != nil {
		return "", err
	}
	if id == "" {
		s.mu.Lock()
		s.missing[m.ID] = time.Now()
		s.mu.Unlock()
	}
	return id, nil
}

// MemberForSlackUser maps a Slack user to an active member of the org: by
// the linked Slack id, else (with a bot token) by the e-mail Slack has for the
// user (users.info), linking them for next time. A user that maps to nobody
// is ENOTFOUND.
func (s *Service) MemberForSlackUser(ctx context.Context, orgID, slackUserID string) (cs.Member, error) {
	m, err := s.store.MemberBySlackUser(ctx, orgID, slackUserID)
	if err == nil || cs.ErrorCode(err) != cs.ENOTFOUND || !s.HasBot() || slackUserID == "" {
		return m, err
	}
	u, uerr := s.api.GetUserInfoContext(ctx, slackUserID)
	if uerr != nil || u == nil || u.Profile.Email == "" || u.Deleted || u.IsBot {
		if uerr != nil {
			s.logger.Warn("users.info failed while mapping a slack user", "slack_user_id", slackUserID, "error", uerr)
		}
		return m, err
	}
	byEmail, eerr := s.store.MemberByEmail(ctx, orgID, u.Profile.Email)
	if eerr != nil {
		return byEmail, eerr
	}
	if byEmail.SlackUserID != "" && byEmail.SlackUserID != slackUserID {
		// The member is linked to another Slack user: trust the link, not the e-mail.
		return cs.Member{}, err
	}
	if _, lerr := s.store.LinkSlackUser(ctx, orgID, byEmail.ID, slackUserID); lerr != nil {
		s.logger.Warn("linking slack user failed", "member_id", byEmail.ID, "error", lerr)
	}
	byEmail.SlackUserID = slackUserID
	return byEmail, nil
}

// --- errors ------------------------------------------------------------------

// isSlackError reports whether err is a Slack API error with one of codes.
func isSlackError(err error, codes ...string) bool {
	var se slackgo.SlackErrorResponse
	if !errors.As(err, &se) {
		return false
	}
	for _, c := range codes {
		if se.Err == c {
			return true
		}
	}
	return false
}

// rateLimited returns the activity error for a Slack 429 (retried after the
// Retry-After delay), or nil when err is not one.
func rateLimited(err error) error {
	var rl *slackgo.RateLimitedError
	if !errors.As(err, &rl) {
		return nil
	}
	after := rl.RetryAfter
	if after <= 0 {
		after = time.Second
	}
	return activities.NotifyRetryAfter(fmt.Sprintf("slack rate limited: retry after %s", after), after)
}

// permanent reports whether retrying the same call cannot help: Slack said
// no for a reason of its own (channel_not_found, not_in_channel,
// message_not_found, …), or the HTTP status is a 4xx other than 429.
func permanent(err error) bool {
	var se slackgo.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout":
			return false
		}
		return true
	}
	var sc slackgo.StatusCodeError
	if errors.As(err, &sc) {
		return sc.Code >= 400 && sc.Code < 500 && sc.Code != http.StatusTooManyRequests
	}
	return false
}
