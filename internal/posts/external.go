package posts

import (
	"context"
	"strings"
	"time"

	cs "github.com/countersign/countersign"
)

// ExternalDecision is an external reviewer's answer through their review
// link. The caller (internal/review) has checked the link's signature for
// Email and that its step of its revision is open; the workflow checks again
// that the step names Email.
type ExternalDecision struct {
	OrgID, PostID string
	Revision      int
	Step          int
	Email         string
	Decision      string // cs.DecisionApprove or cs.DecisionReject
	Note          string
	// RequestID is the link's (secrets.RequestID): every submit of one link
	// is one request, so a double submit counts once.
	RequestID string
}

// DecideExternal sends an external reviewer's signed decision, source link
// and no member, through the same decide Update as every other decision.
func (s *Service) DecideExternal(ctx context.Context, d ExternalDecision) (Outcome, error) {
	switch {
	case d.Decision != cs.DecisionApprove && d.Decision != cs.DecisionReject:
		return Outcome{}, &cs.Error{Code: cs.EINVALID, Message: "the answer must be approve or reject",
			Fields: []cs.FieldError{{Field: "decision", Message: "must be approve or reject"}}}
	case d.Decision == cs.DecisionReject && strings.TrimSpace(d.Note) == "":
		return Outcome{}, &cs.Error{Code: cs.ReasonNoteRequired, Message: "a rejection needs a reason",
			Fields: []cs.FieldError{{Field: "note", Message: "is required when rejecting"}}}
	case d.Email == "" || d.RequestID == "":
		return Outcome{}, cs.Errorf(cs.EINVALID, "an external decision needs the reviewer's e-mail and the link's request id")
	}
	if err := checkNote(d.Note); err != nil {
		return Outcome{}, err
	}
	p, err := s.Store.Post(ctx, d.OrgID, d.PostID)
	if err != nil {
		return Outcome{}, err
	}
	if err := s.limit("external:"+strings.ToLower(d.Email), p.ID); err != nil {
		return Outcome{}, err
	}
	sent := time.Now().UTC().Truncate(time.Millisecond) // counts for the late grace, like the API's
	sig := cs.DecisionSignal{PostID: p.ID, Revision: d.Revision, Step: d.Step, External: d.Email,
		Decision: d.Decision, Note: d.Note, Source: cs.SourceLink, RequestID: d.RequestID, SentAt: &sent}
	if s.Signer != nil {
		sig.MAC = s.Signer.Sign(sig)
	}
	return s.change(ctx, p, cs.UpdateDecide, cs.SignalDecision, d.RequestID, sig, sent)
}
