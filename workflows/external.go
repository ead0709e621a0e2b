package workflows

import (
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/countersign/countersign"
)

// External reviewers (SPEC §2, the external approver): a step that names
// {"external": {"email", "name"}} asks someone outside the org. Its
// notification carries the reviewer (the activity that sends the mail mints
// the signed link; no token ever enters history), it has no eligible
// members, and it counts one decision: a signed one with source link whose
// External is the step's e-mail (the review page sets it only after checking
// the link). Members cannot answer it, except the fallback team once open.
//
// Behind the change id "external-reviewers", asked only by posts whose chain
// has an external step (at the start of each run, as the Update validators
// need the answer and have no context to ask it): every other post records
// no marker.
const versionExternal = "external-reviewers"

// askExternal sets p.ext for a chain with an external step.
func (p *post) askExternal(ctx workflow.Context) {
	for _, s := range p.chain.Steps {
		if s.Approver.External != nil {
			p.ext = workflow.GetVersion(ctx, versionExternal, workflow.DefaultVersion, 1) == 1
			return
		}
	}
}

// reviewer is the external reviewer of the current step, nil for any other
// step.
func (p *post) reviewer() *countersign.ExternalReviewer {
	if !p.ext || p.st.CurrentStep == 0 {
		return nil
	}
	if r := p.chainStep().Approver.External; r != nil {
		c := *r
		return &c
	}
	return nil
}

// linkExpiry is when the current step's link expires: the end of the step,
// its fallback included (zero: no end, the link lives while the step is
// open). Set only for an external step.
func (p *post) linkExpiry() *time.Time {
	if p.reviewer() == nil {
		return nil
	}
	s, cs := p.step(), p.chainStep()
	if s.Deadline == nil || (!s.FallbackActive && cs.FallbackTeam != "" && cs.FallbackTimeout == 0) {
		return nil
	}
	end := *s.Deadline
	if !s.FallbackActive && cs.FallbackTeam != "" {
		end = end.Add(cs.FallbackTimeout.D())
	}
	return &end
}

// externalAnswer says whether d is the current external step's reviewer
// answering through their link.
func (p *post) externalAnswer(d countersign.DecisionSignal) bool {
	r := p.reviewer()
	return r != nil && strings.EqualFold(strings.TrimSpace(r.Email), strings.TrimSpace(d.External)) &&
		d.MemberID == "" && d.OnBehalfOf == "" && d.Source == countersign.SourceLink
}

// externalOnly says whether the current step waits for its external
// reviewer alone (its fallback team, if any, is not open yet).
func (p *post) externalOnly() bool {
	return p.reviewer() != nil && !p.step().FallbackActive
}

// byExternal names the external reviewer in a counted decision's event (its
// actor, a member id, is empty).
func byExternal(rec countersign.DecisionRecord) string {
	if rec.External == "" {
		return ""
	}
	return " by external reviewer " + rec.External
}
