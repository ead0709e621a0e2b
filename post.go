package countersign

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// This file holds the post, its approval chain, the post workflow's signal
// payloads, its queryable state and its audit events. The store, the HTTP API
// and the workflow all speak these types; the JSON names are the SPEC's.
//
// Everything here ends up in Temporal workflow history (inputs, signals,
// query results), so nothing here may ever carry a credential.

// PostStatus is the lifecycle status of a post (SPEC §2).
type PostStatus string

const (
	PostPendingApproval PostStatus = "pending_approval"
	PostScheduled       PostStatus = "scheduled"
	PostPublishing      PostStatus = "publishing"
	PostPublished       PostStatus = "published"
	PostRejected        PostStatus = "rejected"
	PostExpired         PostStatus = "expired"
	PostOnHold          PostStatus = "on_hold"
	PostCanceled        PostStatus = "canceled"
	PostFailed          PostStatus = "failed"
	PostNeedsAttention  PostStatus = "needs_attention"
)

// Valid reports whether s is a known status.
// PostStatuses lists every status, in lifecycle order.
var PostStatuses = []PostStatus{PostPendingApproval, PostOnHold, PostScheduled, PostPublishing, PostPublished,
	PostRejected, PostExpired, PostCanceled, PostFailed, PostNeedsAttention}

func (s PostStatus) Valid() bool {
	switch s {
	case PostPendingApproval, PostScheduled, PostPublishing, PostPublished, PostRejected,
		PostExpired, PostOnHold, PostCanceled, PostFailed, PostNeedsAttention:
		return true
	}
	return false
}

// Terminal reports whether nothing can change a post in status s any more.
// rejected is not terminal: the author may resubmit (edit) for 30 days; the
// workflow ends with status rejected once that window has passed.
// needs_attention is where the workflow ends too (a person must look at the
// network), but it is not terminal for the product: an operator resolves it.
func (s PostStatus) Terminal() bool {
	switch s {
	case PostPublished, PostExpired, PostCanceled, PostFailed:
		return true
	}
	return false
}

// ApproverRoleApprovers is the only role an approver may name: anyone whose
// right on the account includes approve.
const ApproverRoleApprovers = "approvers"

// Approver names who approves a chain step: exactly one of Member, Team,
// Role, External.
type Approver struct {
	Member string `json:"member,omitempty"`
	Team   string `json:"team,omitempty"`
	Role   string `json:"role,omitempty"`
	// External is a reviewer outside the org (e.g. the client), reached by
	// e-mail with a signed, single-use link (SPEC §2); no account is created.
	External *ExternalReviewer `json:"external,omitempty"`
}

// ExternalReviewer is the person an external step asks, by e-mail.
type ExternalReviewer struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

// MaxExternalName bounds an external reviewer's name, in characters.
const MaxExternalName = 100

// Validate checks an external reviewer; field errors are named under
// prefix (e.g. "steps[0].approver.external.").
func (r ExternalReviewer) Validate(prefix string) []FieldError {
	var fields []FieldError
	addr, err := mail.ParseAddress(r.Email)
	switch {
	case strings.TrimSpace(r.Email) == "":
		fields = append(fields, FieldError{Field: prefix + "email", Message: "is required"})
	case err != nil || addr.Address != strings.TrimSpace(r.Email) || len(r.Email) > 254 || !strings.Contains(addr.Address[strings.LastIndex(addr.Address, "@"):], "."):
		fields = append(fields, FieldError{Field: prefix + "email", Message: "must be an e-mail address such as client@example.com"})
	}
	switch n := utf8.RuneCountInString(strings.TrimSpace(r.Name)); {
	case n == 0:
		fields = append(fields, FieldError{Field: prefix + "name", Message: "is required"})
	case n > MaxExternalName || strings.ContainsAny(r.Name, "\r\n"):
		fields = append(fields, FieldError{Field: prefix + "name", Message: fmt.Sprintf("must be one line of at most %d characters", MaxExternalName)})
	}
	return fields
}

// String renders the approver for logs, events and the Temporal UI
// ("member:<id>", "team:<id>", "role:approvers").
func (a Approver) String() string {
	switch {
	case a.Member != "":
		return "member:" + a.Member
	case a.Team != "":
		return "team:" + a.Team
	case a.Role != "":
		return "role:" + a.Role
	case a.External != nil:
		return "external:" + a.External.Email
	}
	return "nobody"
}

// Validate checks that exactly one field is set and that a role is
// "approvers". An external reviewer's fields are checked by Chain.Validate.
func (a Approver) Validate() error {
	n := 0
	for _, s := range []string{a.Member, a.Team, a.Role} {
		if s != "" {
			n++
		}
	}
	if a.External != nil {
		n++
	}
	if n != 1 {
		return fmt.Errorf("exactly one of member, team, role or external must be set")
	}
	if a.Role != "" && a.Role != ApproverRoleApprovers {
		return fmt.Errorf("role must be %q", ApproverRoleApprovers)
	}
	return nil
}

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("4h", "90m"). The zero value means "not set" and is omitted by
// omitempty. JSON null reads as zero; numbers are refused so that "4" is never
// silently 4 nanoseconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*d = 0
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"4h\" or \"30m\"")
	}
	if s == "" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: %v", s, err)
	}
	*d = Duration(v)
	return nil
}

// ChainStep is one level of an approval chain.
type ChainStep struct {
	Approver Approver `json:"approver"`
	// Quorum is the number of distinct approvals needed; 0 means 1.
	Quorum int `json:"quorum,omitempty"`
	// Timeout is how long the step waits for its approver before widening to
	// FallbackTeam (or expiring the post when there is none); 0 waits forever.
	Timeout Duration `json:"timeout,omitempty"`
	// FallbackTeam is asked, in addition to Approver, once Timeout passed.
	FallbackTeam string `json:"fallback_team,omitempty"`
	// FallbackTimeout bounds the fallback; 0 waits forever.
	FallbackTimeout Duration `json:"fallback_timeout,omitempty"`
}

// NeededApprovals is the step's quorum, at least 1.
func (s ChainStep) NeededApprovals() int {
	if s.Quorum < 1 {
		return 1
	}
	return s.Quorum
}

// LatePolicy says what happens when scheduled_at passes while approval is pending.
type LatePolicy string

const (
	LateExpire              LatePolicy = "expire"
	LatePublishWhenApproved LatePolicy = "publish_when_approved"
	LateHold                LatePolicy = "hold"
)

// Valid reports whether p is a known policy ("" is not: use LateExpire).
func (p LatePolicy) Valid() bool {
	return p == LateExpire || p == LatePublishWhenApproved || p == LateHold
}

// MaxChainSteps is the largest number of steps a chain may have.
const MaxChainSteps = 3

// Chain is an approval chain. A post keeps a snapshot of it from submission.
type Chain struct {
	ID                    string      `json:"id,omitempty"`
	Name                  string      `json:"name"`
	Steps                 []ChainStep `json:"steps"`
	RequireApprovalForAll bool        `json:"require_approval_for_all"`
	LatePolicy            LatePolicy  `json:"late_policy"`
	DistinctApprovers     bool        `json:"distinct_approvers"`
}

// DefaultChain is the rule of an account without a chain: one step that any
// member with the approve right can sign, expire when late, distinct approvers.
func DefaultChain() Chain {
	return Chain{
		Name:              "default",
		Steps:             []ChainStep{{Approver: Approver{Role: ApproverRoleApprovers}, Quorum: 1}},
		LatePolicy:        LateExpire,
		DistinctApprovers: true,
	}
}

// Validate checks the chain's shape (what needs no database): 1 to 3 steps,
// one approver each, quorum >= 0, timeouts >= 1s, a fallback only after a
// timeout, a known late policy. It returns an *Error with code EINVALID and one
// FieldError per problem, named like "steps[1].timeout". Whether members and
// teams exist in the org, and whether a quorum fits its team, is the store's
// check.
func (c Chain) Validate() error {
	var fields []FieldError
	add := func(field, format string, args ...any) {
		fields = append(fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if len(c.Steps) < 1 || len(c.Steps) > MaxChainSteps {
		add("steps", "a chain has 1 to %d steps, not %d", MaxChainSteps, len(c.Steps))
	}
	for i, s := range c.Steps {
		p := fmt.Sprintf("steps[%d].", i)
		if err := s.Approver.Validate(); err != nil {
			add(p+"approver", "%v", err)
		}
		if s.Quorum < 0 {
			add(p+"quorum", "quorum must be at least 1")
		}
		if s.Quorum > 1 && s.Approver.Member != "" {
			add(p+"quorum", "a single member cannot give %d approvals", s.Quorum)
		}
		if ext := s.Approver.External; ext != nil {
			fields = append(fields, ext.Validate(p+"approver.external.")...)
			if s.Quorum > 1 {
				add(p+"quorum", "an external step has quorum 1, not %d", s.Quorum)
			}
		}
		if s.Timeout != 0 && s.Timeout.D() < time.Second {
			add(p+"timeout", "timeout must be at least 1s")
		}
		if s.FallbackTimeout != 0 && s.FallbackTimeout.D() < time.Second {
			add(p+"fallback_timeout", "fallback_timeout must be at least 1s")
		}
		if s.FallbackTeam != "" && s.Timeout == 0 {
			add(p+"fallback_team", "a fallback team needs a timeout after which it is asked")
		}
		if s.FallbackTimeout != 0 && s.FallbackTeam == "" {
			add(p+"fallback_timeout", "fallback_timeout needs a fallback_team")
		}
	}
	if c.LatePolicy != "" && !c.LatePolicy.Valid() {
		add("late_policy", "late_policy must be expire, publish_when_approved or hold")
	}
	if len(fields) > 0 {
		return &Error{Code: EINVALID, Message: "invalid approval chain", Fields: fields}
	}
	return nil
}

// ContentHash is the hash of a post's content: hex SHA-256 over the text,
// the media URLs and the attached images (ids and alt texts), each
// length-prefixed so that no two contents collide by concatenation. A post
// without images hashes exactly as before images existed (released
// histories replay with their recorded hashes); images add a tagged
// section, so changing an image or its alt text changes the hash. Pure and
// deterministic: the workflow and the API use it alike.
func ContentHash(text string, mediaURLs []string, media ...PostMedia) string {
	h := sha256.New()
	var n [8]byte
	write := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	write(text)
	binary.BigEndian.PutUint64(n[:], uint64(len(mediaURLs)))
	h.Write(n[:])
	for _, u := range mediaURLs {
		write(u)
	}
	if len(media) > 0 {
		write("media")
		binary.BigEndian.PutUint64(n[:], uint64(len(media)))
		h.Write(n[:])
		for _, m := range media {
			write(m.ID)
			write(m.Alt)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Temporal names of the post workflow (SPEC §3).
const (
	WorkflowType     = "PostWorkflow"
	SignalDecision   = "decision"
	SignalEdit       = "edit"
	SignalReschedule = "reschedule"
	SignalCancel     = "cancel"
	// SignalDirectoryChanged asks the workflow to re-resolve the approvers
	// of its open step (a member, team, grant or absence changed). Its
	// payload (DirectoryChangedSignal) carries no list: the workflow reads
	// the directory itself, so a payload sent straight to Temporal can at
	// most make it read the truth again.
	SignalDirectoryChanged = "directory_changed"
	QueryState             = "state"

	// Workflow Updates (SPEC §3 item 4, "One authority"). decide, edit,
	// reschedule and cancel share their names with the signals, take the same
	// payloads and answer the post's new PostState. A refusal is a
	// non-retryable *temporal.ApplicationError whose Type is a Reason* code
	// and whose message is the sentence to show; validators refuse what the
	// state can tell without writing history.
	UpdateDecide     = "decide"
	UpdateEdit       = "edit"
	UpdateReschedule = "reschedule"
	UpdateCancel     = "cancel"
	// UpdateSubmitted is sent with the start (Update-With-Start): it answers
	// the post's state once the submission is processed (step 1 open with
	// its eligible approvers, or scheduled / publishing when no approval is
	// needed).
	UpdateSubmitted = "submitted"
)

// WorkflowID is the workflow ID of a post's workflow.
func WorkflowID(postID string) string { return "post-" + postID }

// WorkflowSummary is the static summary to give the workflow when starting it
// (StartWorkflowOptions.StaticSummary): account, author and first words.
func WorkflowSummary(accountHandle, authorName, text string) string {
	words := strings.Fields(text)
	if len(words) > 8 {
		words = append(words[:8], "…")
	}
	return fmt.Sprintf("%s by %s: %s", accountHandle, authorName, strings.Join(words, " "))
}

// Decisions an approver can make.
const (
	DecisionApprove = "approve"
	DecisionReject  = "reject"
)

// Sources of events and signals.
const (
	SourceAPI      = "api"
	SourceSlack    = "slack"
	SourceTemporal = "temporal" // sent from the Temporal UI or CLI
	SourceSystem   = "system"   // done by the workflow itself (timers, publishing)
	SourceLink     = "link"     // an external reviewer's answer through their review link
)

// DecisionSignal is the payload of the "decision" signal.
type DecisionSignal struct {
	PostID   string `json:"post_id"`
	Revision int    `json:"revision"`
	// Step is 1-based, as shown to people ("step 2/3").
	Step     int    `json:"step"`
	MemberID string `json:"member_id"`
	Decision string `json:"decision"`
	Note     string `json:"note"`
	// Source is api, slack or temporal; empty reads as temporal.
	Source string `json:"source"`
	// RequestID identifies the click or API call; a repeated one counts once.
	RequestID string `json:"request_id"`
	// OnBehalfOf is the absent member a delegate decides for (SPEC §2); empty
	// when the member decides for themselves.
	OnBehalfOf string `json:"on_behalf_of,omitempty"`
	// External is the e-mail of the external reviewer deciding through their
	// review link (source link, no MemberID). Only the review page sets it,
	// after checking the link's signature; the workflow counts it only on an
	// external step that names this e-mail.
	External string `json:"external,omitempty"`
	// SentAt is when the API or Slack received the decision (signed): one
	// sent before the scheduled time still counts if it reaches the workflow
	// within the late grace after it (workflows.LateGrace).
	SentAt *time.Time `json:"sent_at,omitempty"`
	// MAC is secrets.DecisionSigner's signature over every other field, set
	// by the API, Slack and review links. A decision without a valid MAC (sent
	// straight to Temporal) is ignored with reason unsigned (SPEC §8).
	MAC string `json:"mac,omitempty"`
}

// DirectoryChangedSignal is the payload of the "directory_changed" signal:
// what changed, in words, for the post's audit log only.
type DirectoryChangedSignal struct {
	Reason string `json:"reason,omitempty"`
}

// EditSignal is the payload of the "edit" signal. Revision is the revision
// the editor saw (optimistic concurrency): an edit of an older revision is
// ignored; 0 means "whatever the current revision is" (operators). A content
// change makes revision Revision+1.
type EditSignal struct {
	Revision  int      `json:"revision"`
	Text      string   `json:"text"`
	MediaURLs []string `json:"media_urls"`
	// Media are the revision's images (ids, alt texts, hashes of their
	// bytes), part of its content hash.
	Media  []PostMedia `json:"media,omitempty"`
	By     string      `json:"by"`
	Source string      `json:"source,omitempty"` // api or temporal (default)
	// RequestID identifies the API call; a repeated one (the Update, then
	// its signal fallback) applies once.
	RequestID string `json:"request_id,omitempty"`
	// Reschedule, when true, also moves the post to ScheduledAt (nil: as
	// soon as approved) in the same change: a PATCH of text and time is one
	// Update, one transition. With the content unchanged it is a reschedule
	// that the edit's authorization covers.
	Reschedule  bool       `json:"reschedule,omitempty"`
	ScheduledAt *time.Time `json:"scheduled_at,omitempty"`
	// MAC is secrets.DecisionSigner's signature (SignEdit), set by the API.
	// An edit without a valid MAC is an operator's edit (Temporal UI or CLI):
	// it is applied, and its revision always goes through the chain.
	MAC string `json:"mac,omitempty"`
}

// RescheduleSignal is the payload of the "reschedule" signal. A nil
// ScheduledAt means "as soon as approved".
type RescheduleSignal struct {
	ScheduledAt *time.Time `json:"scheduled_at"`
	By          string     `json:"by"`
	Source      string     `json:"source,omitempty"`
	Revision    int        `json:"revision,omitempty"` // the revision the caller saw; 0: any
	RequestID   string     `json:"request_id,omitempty"`
}

// CancelSignal is the payload of the "cancel" signal.
type CancelSignal struct {
	By        string `json:"by"`
	Reason    string `json:"reason"` // the API's "note"
	Source    string `json:"source,omitempty"`
	Revision  int    `json:"revision,omitempty"` // the revision the caller saw; 0: any
	RequestID string `json:"request_id,omitempty"`
}

// DecisionRecord is a decision that counted.
type DecisionRecord struct {
	Step     int    `json:"step"`
	MemberID string `json:"member_id"`
	// External is the external reviewer's e-mail (MemberID is then empty).
	External  string `json:"external,omitempty"`
	Decision  string `json:"decision"`
	Note      string `json:"note,omitempty"`
	Source    string `json:"source"`
	RequestID string `json:"request_id,omitempty"`
	// OnBehalfOf is the absent member whose delegate (MemberID) decided
	// (SPEC §2): the approval counts once for the pair.
	OnBehalfOf string    `json:"on_behalf_of,omitempty"`
	At         time.Time `json:"at"`
}

// Delegation is an absence of an eligible member as a step sees it: while
// From <= now < Until, DelegateID may decide on MemberID's behalf.
type Delegation struct {
	MemberID   string    `json:"member_id"`
	DelegateID string    `json:"delegate_id"`
	From       time.Time `json:"from"`
	Until      time.Time `json:"until"`
}

// Active reports whether the delegation applies at t.
func (d Delegation) Active(t time.Time) bool { return !t.Before(d.From) && t.Before(d.Until) }

// StepState is one step of the current revision as the workflow sees it.
type StepState struct {
	Index    int      `json:"index"` // 1-based
	Approver Approver `json:"approver"`
	// Eligible are the member ids the approver resolved to when the step opened
	// (who was notified). Eligibility is re-checked at each decision against the
	// current database, so this list is informative, not a gate.
	Eligible []string `json:"eligible"`
	Quorum   int      `json:"quorum"`
	// Status is waiting (not opened yet), open, approved, rejected or expired.
	Status         string     `json:"status"`
	OpenedAt       *time.Time `json:"opened_at,omitempty"`
	Deadline       *time.Time `json:"deadline,omitempty"` // of the current phase; nil: none
	FallbackTeam   string     `json:"fallback_team,omitempty"`
	FallbackActive bool       `json:"fallback_active"`
	// FallbackEligible are the fallback team's members when the fallback opened.
	FallbackEligible []string         `json:"fallback_eligible,omitempty"`
	Approvals        []DecisionRecord `json:"approvals"`
	Rejection        *DecisionRecord  `json:"rejection,omitempty"`
	// Delegates are the absences of the step's eligible members in force
	// now (SPEC §2 Member): each delegate may decide for its absent member.
	Delegates []Delegation `json:"delegates,omitempty"`
	// Unsatisfiable, when set, says why no one left can satisfy the step
	// (fewer eligible approvers than its quorum and no fallback to come).
	Unsatisfiable string `json:"unsatisfiable,omitempty"`
}

// Step statuses.
const (
	StepWaiting  = "waiting"
	StepOpen     = "open"
	StepApproved = "approved"
	StepRejected = "rejected"
	StepExpired  = "expired"
)

// PostState is the post workflow's state: the result of the "state" query and
// what is mirrored to the posts table at each transition.
type PostState struct {
	PostID      string     `json:"post_id"`
	Status      PostStatus `json:"status"`
	Revision    int        `json:"revision"`
	ContentHash string     `json:"content_hash"`
	// Text and MediaURLs are the current revision's content (an edit sent from
	// the Temporal UI reaches the database through the mirror).
	Text      string   `json:"text"`
	MediaURLs []string `json:"media_urls"`
	// Media are the current revision's images (omitted when none, so the
	// state of a post without images is as it was).
	Media       []PostMedia `json:"media,omitempty"`
	CurrentStep int         `json:"current_step"` // 1-based; 0 when no step is open
	TotalSteps  int         `json:"total_steps"`
	Steps       []StepState `json:"steps"`
	// Awaited are the member ids the open step still waits for, computed by
	// the workflow alone (SPEC §3 "One authority"): the step's eligible
	// members (and its fallback team's, once open) minus the author, the
	// revision's writer, who already approved this step and, with
	// distinct_approvers, who approved an earlier step. Empty when the post
	// is not pending approval. PostApprovers is this same list; the store,
	// GET /approvals and Slack read it instead of deciding again.
	Awaited []string `json:"awaited"`
	// Writer is who wrote the current revision: the author for revision 1,
	// the editor of each later one (empty for an operator's edit that named
	// nobody). The writer cannot approve the revision.
	Writer      string     `json:"writer,omitempty"`
	ScheduledAt *time.Time `json:"scheduled_at,omitempty"`
	// WaitingFor says in words what the workflow waits for now; Deadline is
	// when that wait ends (step deadline, scheduled time, end of the
	// resubmission window), nil when it is open-ended.
	WaitingFor  string     `json:"waiting_for,omitempty"`
	Deadline    *time.Time `json:"deadline,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	ExternalID  string     `json:"external_id,omitempty"`
	ExternalURL string     `json:"external_url,omitempty"`
	PublishedAt *time.Time `json:"published_at,omitempty"`
	// Closed is true once the workflow has ended (terminal, final rejection or
	// needs_attention).
	Closed    bool      `json:"closed"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Post event types (SPEC §2 "Post event").
const (
	EventSubmitted       = "submitted"
	EventEdited          = "edited"
	EventRescheduled     = "rescheduled"
	EventStepOpened      = "step_opened"
	EventReminderSent    = "reminder_sent"
	EventFallbackOpened  = "fallback_opened"
	EventDecisionCounted = "decision_counted"
	EventDecisionIgnored = "decision_ignored"
	EventRejected        = "rejected"
	EventApproved        = "approved"
	EventExpired         = "expired"
	EventCanceled        = "canceled"
	EventOnHold          = "on_hold"
	EventPublishStarted  = "publish_started"
	EventPublished       = "published"
	EventPublishFailed   = "publish_failed"
	EventNeedsAttention  = "needs_attention"
	// EventSignalIgnored records an edit, reschedule or cancel that changed
	// nothing (same content, stale revision, too late), with the reason.
	EventSignalIgnored = "signal_ignored"
	// EventClosed records the end of a rejected post's resubmission window.
	EventClosed = "closed"
	// EventApproversChanged records a re-resolution of the open step's
	// approvers after a directory change (who was added, who dropped).
	EventApproversChanged = "approvers_changed"
	// EventStepUnsatisfiable records that no one left can satisfy the open
	// step (fewer eligible approvers than its quorum, no fallback to come).
	EventStepUnsatisfiable = "step_unsatisfiable"
)

// Reason codes of ignored decisions and signals (PostEvent.Reason). Detail
// carries the human sentence.
const (
	ReasonNotWaiting        = "not_waiting"        // the post is not pending approval
	ReasonStaleRevision     = "stale_revision"     // decision or edit for an older revision
	ReasonWrongStep         = "wrong_step"         // decision for another step
	ReasonDuplicateRequest  = "duplicate_request"  // request_id seen before
	ReasonAlreadyDecided    = "already_decided"    // same member, same step
	ReasonAuthor            = "author"             // the author cannot decide on their post
	ReasonDistinctApprovers = "distinct_approvers" // approved an earlier step of this revision
	ReasonInvalidDecision   = "invalid_decision"   // neither approve nor reject
	ReasonNoteRequired      = "note_required"      // a reject without a note
	ReasonNotAuthorized     = "not_authorized"     // the directory said no (Detail says why)
	ReasonAuthorizeFailed   = "authorize_failed"   // the directory could not be asked
	ReasonUnchanged         = "content_unchanged"  // edit with the same content hash
	ReasonTooLate           = "too_late"           // publishing started or the post ended
	ReasonUnsigned          = "unsigned"           // a decision without a valid MAC (sent straight to Temporal)
	ReasonRevisionWriter    = "revision_writer"    // whoever wrote a revision (or their delegate) cannot approve it
	ReasonNotAwaited        = "not_awaited"        // the member is not among those the step awaits
	ReasonCannotCompose     = "cannot_compose"     // an edit, reschedule or cancel by someone who may not change the post now
	ReasonRateLimited       = "rate_limited"       // too many decisions or edits (the API answers 429)
	ReasonNotDelegate       = "not_delegate"       // on behalf of someone who is not away with this delegate now
)

// PostEvent is one entry of a post's audit log. Key is unique per post and
// deterministic (built by the workflow), so mirroring it twice (an activity
// retry) stores it once; Seq orders the events of a post.
type PostEvent struct {
	Key         string `json:"key"`
	Seq         int    `json:"seq"`
	Type        string `json:"type"`
	Actor       string `json:"actor,omitempty"` // member id; empty for the system
	Source      string `json:"source"`
	Revision    int    `json:"revision"`
	ContentHash string `json:"content_hash"`
	Step        int    `json:"step,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Detail      string `json:"detail,omitempty"`
	// OnBehalfOf is the absent member a delegate (Actor) decided for.
	OnBehalfOf string    `json:"on_behalf_of,omitempty"`
	At         time.Time `json:"at"`
}

// Post is a post as the API shows it: the submission plus the workflow's
// state as last mirrored to the database.
type Post struct {
	ID        string   `json:"id"`
	OrgID     string   `json:"org_id"`
	AccountID string   `json:"account_id"`
	AuthorID  string   `json:"author_id"`
	Text      string   `json:"text"`
	MediaURLs []string `json:"media_urls"`
	// Media are the current revision's images, each with the URL members
	// read it at (GET /v1/orgs/{org}/media/{id}).
	Media       []PostImage `json:"media"`
	ScheduledAt *time.Time  `json:"scheduled_at"`
	Revision    int         `json:"revision"`
	ContentHash string      `json:"content_hash"`
	Status      PostStatus  `json:"status"`
	CurrentStep int         `json:"current_step"`
	TotalSteps  int         `json:"total_steps"`
	Steps       []StepState `json:"steps"`
	// Awaited are the member ids the open step waits for now, as the
	// workflow computed them (PostState.Awaited; GET /approvals agrees).
	Awaited     []string    `json:"awaited"`
	WaitingFor  string      `json:"waiting_for,omitempty"`
	Deadline    *time.Time  `json:"deadline,omitempty"`
	LastError   string      `json:"last_error,omitempty"`
	ExternalID  string      `json:"external_id,omitempty"`
	ExternalURL string      `json:"external_url,omitempty"`
	PublishedAt *time.Time  `json:"published_at,omitempty"`
	WorkflowID  string      `json:"workflow_id"`
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
	Events      []PostEvent `json:"events,omitempty"`
	// Comments are the post's discussion, oldest first (GET …/posts/{post}
	// only, and only for those who may read it).
	Comments []Comment `json:"comments,omitempty"`
}
