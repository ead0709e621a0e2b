// Package activities holds the post workflow's activities: thin methods on
// Activities that call the dependencies declared here (directory, mirror,
// notifier, publisher). The store, Slack and the network adapters implement
// those interfaces elsewhere.
//
// Every input and output below is written into Temporal workflow history.
// None may ever carry a credential, token or secret: the publisher looks the
// account's credentials up itself from AccountID.
package activities

import (
	"context"
	"time"

	"github.com/countersign/countersign"
)

// Directory answers "who may approve" from the current database.
type Directory interface {
	// EligibleApprovers returns the ids of the active members the approver
	// stands for on the account, sorted: the member itself, the team's
	// members, or every member whose right on the account includes approve.
	EligibleApprovers(ctx context.Context, orgID, accountID string, a countersign.Approver) ([]string, error)
	// AuthorizeDecision checks a decision against the database as it is now.
	AuthorizeDecision(ctx context.Context, req AuthorizeRequest) (AuthorizeResult, error)
	// Delegations lists the absences (in force now or to come) of the given
	// members whose delegate is an active member of the org: who may decide
	// on whose behalf, and when (SPEC §2 Member).
	Delegations(ctx context.Context, orgID string, memberIDs []string) ([]countersign.Delegation, error)
	// EffectiveRight is the member's right on the account now; a member not
	// active in the org is an error with code countersign.ENOTFOUND.
	EffectiveRight(ctx context.Context, orgID, accountID, memberID string) (countersign.Right, error)
}

// Signer checks the MACs the API, Slack and review links put on decisions
// and edits (secrets.DecisionSigner; SPEC §8, Approvals).
type Signer interface {
	Verify(d countersign.DecisionSignal) bool
	VerifyEdit(e countersign.EditSignal) bool
}

// Mirror writes the workflow's state where the API reads it.
type Mirror interface {
	// SavePostState writes the post row from state and appends events, in one
	// transaction. It must be idempotent: an event whose (post id, Key) is
	// already stored is skipped, and an older state (lower max event Seq or
	// older UpdatedAt) must not overwrite a newer one.
	SavePostState(ctx context.Context, postID string, state countersign.PostState, events []countersign.PostEvent) error
}

// Notifier tells people (Slack, or the log without Slack). Implementations
// should turn a Slack 429 into an error built with NotifyRetryAfter.
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

// Publisher publishes a post revision to its account's network (SPEC §5).
// It must be exactly-once per (post, revision): record the attempt before
// calling the network and, on a second call, look the first one up.
//
// Errors: return PublishRejected(...) when the network refused the content or
// the credentials (final: the post becomes failed), PublishUnknown(...) when
// whether it posted cannot be known even after looking it up (the post becomes
// needs_attention), and any other error only when the post surely did not go
// out (it is retried until the publish bound).
type Publisher interface {
	Publish(ctx context.Context, req PublishRequest) (PublishResult, error)
}

// ResolveApproversInput asks who an approver stands for now.
type ResolveApproversInput struct {
	OrgID     string               `json:"org_id"`
	AccountID string               `json:"account_id"`
	PostID    string               `json:"post_id"`
	Approver  countersign.Approver `json:"approver"`
}

// ResolveApproversResult lists member ids, sorted, and the absences of those
// members (in force now or to come) with their delegates.
type ResolveApproversResult struct {
	MemberIDs   []string                 `json:"member_ids"`
	Delegations []countersign.Delegation `json:"delegations,omitempty"`
}

// AuthorizeRequest asks whether MemberID may decide on step Step of revision
// Revision now. The workflow has already checked what it knows itself
// (revision, step, duplicates, author, distinct approvers); AuthorID and
// EarlierApprovers are passed so the same check can also serve the API, which
// wants to answer 403 with the reason before it signals.
type AuthorizeRequest struct {
	OrgID     string               `json:"org_id"`
	AccountID string               `json:"account_id"`
	PostID    string               `json:"post_id"`
	AuthorID  string               `json:"author_id"`
	MemberID  string               `json:"member_id"`
	Revision  int                  `json:"revision"`
	Step      int                  `json:"step"` // 1-based
	Approver  countersign.Approver `json:"approver"`
	// FallbackTeam is set only once the step's fallback is open: its members
	// are then eligible as well as Approver's.
	FallbackTeam string `json:"fallback_team,omitempty"`
	// EarlierApprovers approved an earlier step of this revision; set only
	// when the chain has distinct_approvers.
	EarlierApprovers []string `json:"earlier_approvers,omitempty"`
	// ResolveNext, when set, is the next step's approver: the workflow sets it
	// when this approval completes the current step, so the step it opens
	// needs no ResolveApprovers activity of its own.
	ResolveNext *countersign.Approver `json:"resolve_next,omitempty"`
	// Decision is the decision as sent, MAC included: AuthorizeDecision
	// checks the MAC before anything else. A request without it is unsigned.
	Decision *countersign.DecisionSignal `json:"decision,omitempty"`
	// OnBehalfOf, when set, is the absent member MemberID decides for as
	// their delegate: the directory checks that the absence, naming
	// MemberID, is in force now and that OnBehalfOf is eligible for the step.
	OnBehalfOf string `json:"on_behalf_of,omitempty"`
}

// AuthorizeResult says yes, or no with a reason a person can read
// ("member was removed from the organization", "not in team PR any more").
// When the decision is allowed and the request had ResolveNext, NextResolved
// is true and NextEligible lists who that approver stands for now, sorted.
// Code, when the decision is refused, is the countersign.Reason* code
// (unsigned for a bad MAC); empty reads as not_authorized.
type AuthorizeResult struct {
	Allowed      bool     `json:"allowed"`
	Code         string   `json:"code,omitempty"`
	Reason       string   `json:"reason,omitempty"`
	NextResolved bool     `json:"next_resolved,omitempty"`
	NextEligible []string `json:"next_eligible,omitempty"`
	// NextDelegations are the absences of NextEligible's members.
	NextDelegations []countersign.Delegation `json:"next_delegations,omitempty"`
}

// AuthorizeChangeRequest asks whether MemberID may change the post now
// (edit, reschedule or cancel; SPEC §3 item 4, "Who may change a post").
// Edit, set for an edit, is the edit as sent, MAC included.
type AuthorizeChangeRequest struct {
	OrgID     string                  `json:"org_id"`
	AccountID string                  `json:"account_id"`
	PostID    string                  `json:"post_id"`
	AuthorID  string                  `json:"author_id"`
	MemberID  string                  `json:"member_id"`
	Kind      string                  `json:"kind"` // edit, reschedule or cancel
	Edit      *countersign.EditSignal `json:"edit,omitempty"`
}

// AuthorizeChangeResult answers an AuthorizeChangeRequest. For an edit,
// Signed says whether its MAC is valid; an unsigned edit is an operator's
// (Temporal UI or CLI) and is not checked further. Otherwise Allowed says
// whether the member may make the change now (Code and Reason say why not)
// and Publish is their current publish mode on the account, which decides
// whether the new revision needs approval.
type AuthorizeChangeResult struct {
	Signed  bool                `json:"signed"`
	Allowed bool                `json:"allowed"`
	Code    string              `json:"code,omitempty"`
	Reason  string              `json:"reason,omitempty"`
	Publish countersign.Publish `json:"publish,omitempty"`
}

// SavePostStateInput is one transition: the new state, its new events, and
// the notifications to send once both are stored. A notification that still
// fails at NotifyUntil (set by the workflow to NotifyBound after the
// transition) is dropped: the activity's own scheduled time cannot be used,
// as a local activity's restarts with each retry.
type SavePostStateInput struct {
	PostID        string                  `json:"post_id"`
	State         countersign.PostState   `json:"state"`
	Events        []countersign.PostEvent `json:"events"`
	Notifications []Notification          `json:"notifications,omitempty"`
	NotifyUntil   time.Time               `json:"notify_until,omitzero"`
}

// NotificationKind says what happened.
type NotificationKind string

const (
	NotifyStepOpened     NotificationKind = "step_opened"     // to the step's approvers (members or the team's channel)
	NotifyReminder       NotificationKind = "reminder"        // a quarter of the step's time is left
	NotifyFallback       NotificationKind = "fallback"        // to the fallback team, and the original approvers
	NotifyApproved       NotificationKind = "approved"        // the chain is complete (update approval messages)
	NotifyRejected       NotificationKind = "rejected"        // to the author
	NotifyExpired        NotificationKind = "expired"         // to everyone involved
	NotifyCanceled       NotificationKind = "canceled"        // to everyone involved
	NotifyOnHold         NotificationKind = "on_hold"         // to the author: late, reschedule it
	NotifyPublished      NotificationKind = "published"       // to the author and approvers
	NotifyFailed         NotificationKind = "failed"          // to the author and approvers
	NotifyNeedsAttention NotificationKind = "needs_attention" // to the author and approvers
	NotifySuperseded     NotificationKind = "superseded"      // an edit voided this revision's approvals
	NotifyProgress       NotificationKind = "progress"        // a step counted an approval and needs more ("1 of 2 approvals")
	// NotifyApproversChanged: a directory change re-resolved the open step;
	// MemberIDs are who dropped out (their requests lose their buttons).
	NotifyApproversChanged NotificationKind = "approvers_changed"
	// NotifyUnsatisfiable: no one left can satisfy the open step; the
	// notifier tells the org's admins (Detail says why).
	NotifyUnsatisfiable NotificationKind = "unsatisfiable"
)

// Notification is one message to send. MemberIDs are the people concerned
// (direct messages); TeamID, when set, is a team to tell in its Slack channel
// (a team without a channel is reached through MemberIDs, which then include
// its members). Step is 1-based. The post's
// content is included so messages need no database read; it is the same
// content that is already in the workflow's history.
type Notification struct {
	Kind        NotificationKind `json:"kind"`
	PostID      string           `json:"post_id"`
	OrgID       string           `json:"org_id"`
	AccountID   string           `json:"account_id"`
	AuthorID    string           `json:"author_id"`
	Revision    int              `json:"revision"`
	Step        int              `json:"step,omitempty"` // 1-based
	TotalSteps  int              `json:"total_steps,omitempty"`
	MemberIDs   []string         `json:"member_ids,omitempty"`
	TeamID      string           `json:"team_id,omitempty"`
	Text        string           `json:"text"`
	ScheduledAt *time.Time       `json:"scheduled_at,omitempty"`
	Deadline    *time.Time       `json:"deadline,omitempty"`
	Actor       string           `json:"actor,omitempty"`  // who caused it, when a person did
	Detail      string           `json:"detail,omitempty"` // reject note, cancel reason, error
	ExternalURL string           `json:"external_url,omitempty"`
	// External, on step_opened and reminder of an external step, is the
	// reviewer to e-mail a review link; LinkExpires is when that link ends
	// (nil: while the step is open). The link is minted by the activity that
	// sends the mail, never here: no token enters workflow history.
	External    *countersign.ExternalReviewer `json:"external,omitempty"`
	LinkExpires *time.Time                    `json:"link_expires,omitempty"`
}

// PublishRequest is what a publisher needs to publish one revision. The
// account's credentials are read by the publisher from AccountID, never passed.
type PublishRequest struct {
	PostID      string   `json:"post_id"`
	OrgID       string   `json:"org_id"`
	AccountID   string   `json:"account_id"`
	AuthorID    string   `json:"author_id"`
	Revision    int      `json:"revision"`
	ContentHash string   `json:"content_hash"`
	Text        string   `json:"text"`
	MediaURLs   []string `json:"media_urls,omitempty"`
	// Media are the revision's images (ids, alt texts and hashes); the
	// publisher reads their bytes through a countersign.MediaSource.
	Media       []countersign.PostMedia      `json:"media,omitempty"`
	ScheduledAt *time.Time                   `json:"scheduled_at,omitempty"`
	Approvals   []countersign.DecisionRecord `json:"approvals,omitempty"`
	// Mirror, when set, is the "publishing" transition: stored before the
	// network is called, so it needs no SavePostState of its own.
	Mirror *SavePostStateInput `json:"mirror,omitempty"`
}

// PublishResult is where the post went.
type PublishResult struct {
	ExternalID  string `json:"external_id"`
	ExternalURL string `json:"external_url"`
}

// Error types of the Publish activity (temporal.ApplicationError.Type()).
const (
	ErrTypePublishRejected = "PublishRejected"
	ErrTypePublishUnknown  = "PublishUnknown"
	// ErrTypePublishRetryable wraps any other publisher error: surely not
	// posted, retried until the bound, then the post becomes failed.
	ErrTypePublishRetryable = "PublishRetryable"
)
