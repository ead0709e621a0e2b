package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
)

// Absences with delegates, and directory changes that reach open steps
// (SPEC §2 Member; change id versionDirectory, asked lazily: only when a
// resolution finds an absence, a directory_changed signal arrives, or a step
// turns out unsatisfiable, so a plain post records no marker).
//
//   - ResolveApprovers also returns the absences of the members it resolved
//     (in force now or to come). The step keeps those in force now
//     (StepState.Delegates); the earliest future start or end is an alarm at
//     which the workflow resolves the step again, so an absence that starts
//     or ends while the step is open reaches it on time, with no outside
//     scheduler.
//   - The signal directory_changed (sent by the API after it removes a
//     member, changes a team's membership, the grants, a role or an
//     absence) makes the workflow resolve the open step again through the
//     same activity. Its payload carries no list: whoever sends it straight
//     to Temporal can only make the workflow read the directory again.
//   - Who is awaited: the step's eligible members as before, plus the
//     delegate of each awaited member away now, when the delegate could
//     approve themselves (not the author, not the revision's writer, not
//     who approved this step or, with distinct approvers, an earlier one).
//     Delegation does not chain: only the absent member's own delegate.
//   - A decision by a delegate who is not awaited in their own name is taken
//     on behalf of the absent member (the first, by id, they stand for):
//     recorded with on_behalf_of, checked against the directory as the
//     delegate's (AuthorizeDecision with OnBehalfOf), and it counts once
//     for the pair: neither may approve the step again, and with distinct
//     approvers neither may approve a later step of the revision.
//   - A re-resolution that changes who is awaited records approvers_changed,
//     asks the newcomers (step_opened to them) and tells the notifier who
//     dropped (their requests lose their buttons).
//   - A step with fewer possible approvals than its quorum (approvals given
//     plus eligible members still awaited) and no fallback to come is
//     reported at once: event step_unsatisfiable, the details and
//     WaitingFor say why, PostApprovers is empty, and the org's admins are
//     told (notification unsatisfiable). It stays open: a later directory
//     change may make it satisfiable again, or its deadline expires it.
const versionDirectory = "absences-and-directory-changes"

// directoryOn reports whether this post follows versionDirectory, asking
// GetVersion the first time (from version 2 only).
func (p *post) directoryOn(ctx workflow.Context) bool {
	if p.dirVer == 0 {
		p.dirVer = -1
		if p.v2 && workflow.GetVersion(ctx, versionDirectory, workflow.DefaultVersion, 1) == 1 {
			p.dirVer = 1
		}
	}
	return p.dirVer == 1
}

// resolveAll returns the members an approver stands for now and their
// absences.
func (p *post) resolveAll(ctx workflow.Context, a countersign.Approver) activities.ResolveApproversResult {
	var res activities.ResolveApproversResult
	err := p.dbActivity(ctx, "resolve "+a.String(), 0, acts.ResolveApprovers,
		activities.ResolveApproversInput{OrgID: p.in.OrgID, AccountID: p.in.AccountID, PostID: p.in.PostID, Approver: a},
	).Get(ctx, &res)
	if err != nil {
		workflow.GetLogger(ctx).Error("resolving approvers failed", "approver", a.String(), "error", err)
	}
	res.MemberIDs = union(res.MemberIDs)
	return res
}

// setDelegations keeps the absences the current step's resolution found:
// those in force now on the step, the next start or end as the alarm
// p.dirAt. Nothing happens (and no version is asked) for a step that has
// had none.
func (p *post) setDelegations(ctx workflow.Context, dels []countersign.Delegation) {
	s := p.step()
	if len(dels) == 0 && len(s.Delegates) == 0 && p.dirAt.IsZero() {
		return
	}
	if !p.directoryOn(ctx) {
		return
	}
	now := workflow.Now(ctx)
	s.Delegates, p.dirAt, p.dels = nil, time.Time{}, slices.Clone(dels)
	for _, d := range dels {
		if d.Active(now) && !slices.ContainsFunc(s.Delegates, func(x countersign.Delegation) bool { return x.MemberID == d.MemberID }) {
			s.Delegates = append(s.Delegates, d)
		}
		for _, t := range []time.Time{d.From, d.Until} {
			if t.After(now) && (p.dirAt.IsZero() || t.Before(p.dirAt)) {
				p.dirAt = t
			}
		}
	}
	slices.SortFunc(s.Delegates, func(a, b countersign.Delegation) int { return strings.Compare(a.MemberID, b.MemberID) })
}

// absenceChange re-resolves the open step when the alarm is the start or
// end of an absence (p.dirAt), and says whether it was.
func (p *post) absenceChange(ctx workflow.Context, now time.Time) bool {
	if p.dirAt.IsZero() || now.Before(p.dirAt) {
		return false
	}
	p.dirAt = time.Time{}
	p.reresolve(ctx, "an absence started or ended")
	return true
}

// onDirectoryChanged re-resolves the open step (signal directory_changed).
func (p *post) onDirectoryChanged(ctx workflow.Context, sig countersign.DirectoryChangedSignal) {
	p.inputs++
	if p.st.Status != countersign.PostPendingApproval || p.tooLate() || !p.directoryOn(ctx) {
		return
	}
	why := strings.TrimSpace(sig.Reason)
	if why == "" || len(why) > 200 {
		why = "the directory changed"
	}
	p.reresolve(ctx, why)
}

// reresolve resolves the open step's approvers (and its fallback team's,
// once open) again, with their absences, and tells who is added and who
// dropped. Nothing is recorded when nothing changed.
func (p *post) reresolve(ctx workflow.Context, why string) {
	s, cs := p.step(), p.chainStep()
	before, wasBlocked := p.awaited(), s.Unsatisfiable
	res := p.resolveAll(ctx, cs.Approver)
	s.Eligible = res.MemberIDs
	dels := res.Delegations
	if s.FallbackActive {
		fb := p.resolveAll(ctx, countersign.Approver{Team: cs.FallbackTeam})
		s.FallbackEligible = fb.MemberIDs
		dels = append(dels, fb.Delegations...)
	}
	p.setDelegations(ctx, dels)
	blocked := p.checkSatisfiable(ctx)
	after := p.awaited()
	added, dropped := minus(after, before), minus(before, after)
	if len(added) == 0 && len(dropped) == 0 && !blocked && (wasBlocked == "") == (s.Unsatisfiable == "") {
		return
	}
	p.record(ctx, countersign.PostEvent{Type: countersign.EventApproversChanged, Step: s.Index, Detail: fmt.Sprintf(
		"%s: step %d/%d now awaits %s (added %s; no longer %s)", why, s.Index, p.st.TotalSteps,
		listText(after), listText(added), listText(dropped))})
	p.commit(ctx)
	if len(added) > 0 {
		p.notify(ctx, activities.Notification{Kind: activities.NotifyStepOpened, MemberIDs: added, Deadline: s.Deadline})
	}
	if len(dropped) > 0 {
		p.notify(ctx, activities.Notification{Kind: activities.NotifyApproversChanged, MemberIDs: dropped, Detail: why})
	}
}

// checkSatisfiable reports at once a step that no one left can satisfy
// (event, admins told), and clears the report when it can be again. It
// returns true when it reported.
func (p *post) checkSatisfiable(ctx workflow.Context) bool {
	s := p.step()
	why := p.unsatisfiable()
	switch {
	case why == s.Unsatisfiable:
		return false
	case why == "":
		s.Unsatisfiable = ""
		return false
	case !p.directoryOn(ctx):
		return false
	}
	s.Unsatisfiable = why
	p.record(ctx, countersign.PostEvent{Type: countersign.EventStepUnsatisfiable, Step: s.Index, Detail: why})
	p.commit(ctx)
	p.notify(ctx, activities.Notification{Kind: activities.NotifyUnsatisfiable, Detail: why, Deadline: s.Deadline})
	return true
}

// unsatisfiable says why the open step cannot reach its quorum with the
// approvals given and the members still able to approve, with no fallback
// to come; "" when it can.
func (p *post) unsatisfiable() string {
	if p.st.Status != countersign.PostPendingApproval {
		return ""
	}
	s, cs := p.step(), p.chainStep()
	if (cs.FallbackTeam != "" && !s.FallbackActive) || p.reviewer() != nil {
		return "" // a fallback is to come, or the external reviewer may still answer
	}
	left := p.principals()
	if len(s.Approvals)+len(left) >= s.Quorum {
		return ""
	}
	return fmt.Sprintf("step %d/%d can no longer be approved: it needs %d approval(s), has %d, and only %d eligible member(s) can still approve",
		s.Index, p.st.TotalSteps, s.Quorum, len(s.Approvals), len(left))
}

// principals are the step's members still awaited in their own right (no
// delegates): its eligible members, and its fallback team's once open,
// minus the author, the revision's writer, who already approved (or was
// approved for) this step and, with distinct approvers, earlier approvers.
func (p *post) principals() []string {
	s := p.step()
	candidates := s.Eligible
	if s.FallbackActive {
		candidates = union(s.Eligible, s.FallbackEligible)
	}
	var out []string
	for _, id := range candidates {
		if p.mayApprove(id) {
			out = append(out, id)
		}
	}
	return out
}

// mayApprove says whether the state lets id approve the open step at all.
func (p *post) mayApprove(id string) bool {
	s := p.step()
	return id != "" && id != p.in.AuthorID && !(p.v2 && id == p.st.Writer) && !hasApproval(s.Approvals, id) &&
		!(p.chain.DistinctApprovers && slices.Contains(p.earlierApprovers(), id))
}

// delegatesAwaited are the delegates of the awaited members away now who
// may approve themselves.
func (p *post) delegatesAwaited(principals []string) []string {
	var out []string
	for _, d := range p.step().Delegates {
		if slices.Contains(principals, d.MemberID) && d.DelegateID != d.MemberID && p.mayApprove(d.DelegateID) {
			out = append(out, d.DelegateID)
		}
	}
	return out
}

// onBehalf fills in whom a delegate decides for: when the decision names no
// one, its member is not awaited in their own name, and an absence in force
// on the step names them as delegate of a member still awaited, it is that
// member (the first by id). Pure: the validator and the handler agree.
func (p *post) onBehalf(d countersign.DecisionSignal) countersign.DecisionSignal {
	if d.OnBehalfOf != "" || p.st.Status != countersign.PostPendingApproval || d.Step != p.st.CurrentStep ||
		len(p.step().Delegates) == 0 {
		return d
	}
	principals := p.principals()
	if slices.Contains(principals, d.MemberID) {
		return d
	}
	for _, del := range p.step().Delegates {
		if del.DelegateID == d.MemberID && slices.Contains(principals, del.MemberID) {
			d.OnBehalfOf = del.MemberID
			return d
		}
	}
	return d
}

// delegateRefusal checks a decision on behalf of someone against the state:
// an absence in force naming the member as delegate, for someone the step
// still awaits. nil when fine (or when the decision is on nobody's behalf).
func (p *post) delegateRefusal(d countersign.DecisionSignal) *refusal {
	if d.OnBehalfOf == "" {
		return nil
	}
	s := p.step()
	if !slices.ContainsFunc(s.Delegates, func(x countersign.Delegation) bool {
		return x.MemberID == d.OnBehalfOf && x.DelegateID == d.MemberID
	}) {
		return &refusal{countersign.ReasonNotDelegate, fmt.Sprintf("%s is not the delegate of %s on this step now (delegation does not chain)", d.MemberID, d.OnBehalfOf)}
	}
	if hasApproval(s.Approvals, d.OnBehalfOf) {
		return &refusal{countersign.ReasonAlreadyDecided, fmt.Sprintf("%s already approved step %d (in person or through a delegate)", d.OnBehalfOf, d.Step)}
	}
	if p.chain.DistinctApprovers && slices.Contains(p.earlierApprovers(), d.OnBehalfOf) {
		return &refusal{countersign.ReasonDistinctApprovers, fmt.Sprintf("%s already approved an earlier step of revision %d", d.OnBehalfOf, p.st.Revision)}
	}
	return nil
}

// minus is a without b (both sorted).
func minus(a, b []string) []string {
	var out []string
	for _, id := range a {
		if !slices.Contains(b, id) {
			out = append(out, id)
		}
	}
	return out
}

func listText(ids []string) string {
	if len(ids) == 0 {
		return "nobody"
	}
	return strings.Join(ids, ", ")
}
