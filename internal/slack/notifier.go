package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
	"github.com/countersign/countersign/internal/store"
)

// Notifier sends the post workflow's notifications to Slack
// (activities.Notifier).
//
//   - step_opened: an approval request with buttons, as a direct message to
//     each eligible member with a Slack id (linked by e-mail on first need),
//     or one message in the team's channel when the approver is a team with
//     one. Only members the workflow awaits (PostState.Awaited, mirrored)
//     get one: not the author, the revision's writer, nor earlier approvers
//     when the chain wants distinct approvers.
//   - fallback: requests to the fallback team (channel or members), and a
//     thread reply under the original requests telling their approvers.
//   - reminder: a thread reply under each open request still awaited.
//   - rejected, expired, canceled, on_hold, approved (when scheduled),
//     published, failed, needs_attention: a direct message to the author;
//     published, failed and needs_attention also reply in the thread of every
//     request of the revision.
//
// After each notification every approval request of the post is updated in
// place (chat.update) to show where the post is, and only the requests of the
// open step keep their buttons. Each message sent is recorded
// (internal/store slack_messages), so a retried activity sends nothing twice
// and updates only what changed. A Slack 429 becomes
// activities.NotifyRetryAfter with Slack's Retry-After; Slack refusing one
// recipient (channel_not_found, …) is logged and the others still get theirs.
type Notifier struct {
	svc *Service
}

var _ activities.Notifier = (*Notifier)(nil)

// Notify sends one notification.
func (n *Notifier) Notify(ctx context.Context, note activities.Notification) error {
	sp, err := n.svc.store.SlackPost(ctx, note.PostID)
	if cs.ErrorCode(err) == cs.ENOTFOUND {
		n.svc.logger.Warn("notification for an unknown post dropped", "post_id", note.PostID, "kind", note.Kind)
		return nil
	}
	if err != nil {
		return err
	}
	r := &run{svc: n.svc, api: n.svc.api, ctx: ctx, sp: sp, note: note, members: map[string]store.SlackMember{}}
	if err := r.load(r.involved()...); err != nil {
		return err
	}
	if err := r.do(); err != nil {
		return err
	}
	if r.failed != nil {
		return r.failed
	}
	return nil
}

// run is one notification being sent.
type run struct {
	svc     *Service
	api     *slackgo.Client
	ctx     context.Context
	sp      store.SlackPost
	note    activities.Notification
	members map[string]store.SlackMember
	// failed is the first error worth a retry (network, 5xx); the others
	// recipients are still served before the activity fails and retries.
	failed error
}

func (r *run) do() error {
	note := r.note
	switch note.Kind {
	case activities.NotifyStepOpened:
		if err := r.requestApprovals(note.Step, note.TeamID, note.MemberIDs, false); err != nil {
			return err
		}
	case activities.NotifyFallback:
		if err := r.fallback(); err != nil {
			return err
		}
	case activities.NotifyReminder:
		if err := r.remind(); err != nil {
			return err
		}
	}
	if err := r.refresh(); err != nil {
		return err
	}
	if err := r.refreshHomes(); err != nil {
		return err
	}
	account := r.accountLabel()
	url := note.ExternalURL
	switch note.Kind {
	case activities.NotifyRejected:
		reason := ""
		if note.Detail != "" {
			reason = fmt.Sprintf(": “%s”", escape(note.Detail))
		}
		return r.tellAuthor(fmt.Sprintf("❌ Your post on *%s* was rejected at step %d/%d by %s%s\nEdit it to resubmit it.",
			escape(account), note.Step, note.TotalSteps, escape(r.name(note.Actor)), reason))
	case activities.NotifyExpired:
		return r.tellAuthor(fmt.Sprintf("⌛ Your post on *%s* expired: %s", escape(account), escape(orText(note.Detail, "no decision in time"))))
	case activities.NotifyCanceled:
		if note.Actor == r.sp.Post.AuthorID {
			return nil
		}
		return r.tellAuthor(fmt.Sprintf("🚫 Your post on *%s* was canceled%s%s", escape(account), r.byActor(), detailText(note.Detail)))
	case activities.NotifyOnHold:
		return r.tellAuthor(fmt.Sprintf("⏸ Your post on *%s* was approved after its scheduled time: it is on hold until you reschedule it.", escape(account)))
	case activities.NotifyApproved:
		if at := r.sp.Post.ScheduledAt; at != nil && at.After(time.Now()) {
			return r.tellAuthor(fmt.Sprintf("✅ Your post on *%s* is approved and will be published %s.", escape(account), when(at, r.sp.Account.Timezone)))
		}
	case activities.NotifyPublished:
		link := "(no link)"
		if url != "" {
			link = fmt.Sprintf("<%s>", url)
		}
		if err := r.replyToRequests(string(note.Kind), "📣 Published: "+link); err != nil {
			return err
		}
		return r.tellAuthor(fmt.Sprintf("📣 Your post on *%s* is published: %s", escape(account), link))
	case activities.NotifyUnsatisfiable:
		return r.tellAdmins(fmt.Sprintf("⚠️ A post on *%s* by %s is stuck: %s. Nobody is awaited; change the team, the grants or the chain, or cancel the post.",
			escape(account), escape(r.name(r.sp.Post.AuthorID)), escape(note.Detail)))
	case activities.NotifyFailed, activities.NotifyNeedsAttention:
		what := "⚠️ Publishing failed"
		if note.Kind == activities.NotifyNeedsAttention {
			what = "⚠️ Whether the post went out is unknown; someone must check the account before anything is retried"
		}
		if err := r.replyToRequests(string(note.Kind), what+detailText(note.Detail)); err != nil {
			return err
		}
		return r.tellAuthor(fmt.Sprintf("%s for your post on *%s*%s", what, escape(account), detailText(note.Detail)))
	}
	return nil
}

// check classifies the error of one Slack call: a 429 is returned at once
// (the activity retries after Retry-After); an error Slack gives for this
// recipient only is logged and skipped; any other is remembered for the end
// of the run. ok is false whenever the call failed.
func (r *run) check(err error, what string) (ok bool, abort error) {
	if err == nil {
		return true, nil
	}
	if rl := rateLimited(err); rl != nil {
		return false, rl
	}
	if permanent(err) {
		r.svc.logger.Warn("slack refused a call; skipped", "call", what, "post_id", r.sp.Post.ID, "kind", r.note.Kind, "error", err)
		return false, nil
	}
	if r.failed == nil {
		r.failed = fmt.Errorf("slack %s: %w", what, err)
	}
	return false, nil
}

// --- who and what -----------------------------------------------------------

// involved is everyone a run may name or message: read in one query up
// front, so the rest of the run finds them in r.members.
func (r *run) involved() []string {
	p := r.sp.Post
	ids := append([]string{p.AuthorID, r.note.Actor}, r.note.MemberIDs...)
	for _, s := range p.Steps {
		ids = append(append(ids, s.Eligible...), s.FallbackEligible...)
		for _, a := range s.Approvals {
			ids = append(ids, a.MemberID, a.OnBehalfOf)
		}
		for _, d := range s.Delegates {
			ids = append(ids, d.MemberID, d.DelegateID)
		}
		if s.Rejection != nil {
			ids = append(ids, s.Rejection.MemberID)
		}
	}
	return ids
}

func (r *run) load(ids ...string) error {
	var missing []string
	for _, id := range ids {
		if _, ok := r.members[id]; !ok && id != "" {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	found, err := r.svc.store.SlackMembers(r.ctx, r.sp.Post.OrgID, missing)
	if err != nil {
		return err
	}
	for _, id := range missing {
		r.members[id] = found[id] // zero value for unknown ids: no name, no Slack id
	}
	return nil
}

func (r *run) name(id string) string {
	if id == "" {
		return "Countersign"
	}
	_ = r.load(id)
	if m := r.members[id]; m.Name != "" {
		return m.Name
	} else if m.Email != "" {
		return m.Email
	}
	return "a former member"
}

func (r *run) names(ids []string) string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, escape(r.name(id)))
	}
	return strings.Join(out, ", ")
}

func (r *run) byActor() string {
	if r.note.Actor == "" {
		return ""
	}
	return " by " + escape(r.name(r.note.Actor))
}

func (r *run) accountLabel() string {
	a := r.sp.Account
	label := "@" + a.Handle
	if a.DisplayName != "" && a.DisplayName != a.Handle {
		label = a.DisplayName + " (@" + a.Handle + ")"
	}
	return label + " · " + string(a.Network)
}

func (r *run) approverText(a cs.Approver) string {
	switch {
	case a.Member != "":
		return r.name(a.Member)
	case a.Team != "":
		return "team " + r.teamName(a.Team)
	}
	return "anyone who may approve posts of @" + r.sp.Account.Handle
}

func (r *run) teamName(id string) string {
	if t, err := r.svc.store.Team(r.ctx, r.sp.Post.OrgID, id); err == nil {
		return t.Name
	}
	return "(deleted team)"
}

func (r *run) step(n int) *cs.StepState {
	if n < 1 || n > len(r.sp.Post.Steps) {
		return nil
	}
	return &r.sp.Post.Steps[n-1]
}

// --- approval requests ---------------------------------------------------------

// requestApprovals sends the approval request of step n to a team's channel
// (when teamID names a team with one) or to each member of memberIDs.
func (r *run) requestApprovals(n int, teamID string, memberIDs []string, fallback bool) error {
	p := r.sp.Post
	if p.Revision != r.note.Revision || p.CurrentStep != n || p.Status != cs.PostPendingApproval {
		return nil // the post moved on before this (retried) notification ran
	}
	req := request{
		AccountLabel: r.accountLabel(), AuthorName: r.name(p.AuthorID), Text: p.Text, MediaCount: len(p.MediaURLs),
		ScheduledAt: p.ScheduledAt, Timezone: r.sp.Account.Timezone, Step: n, Total: max(p.TotalSteps, r.note.TotalSteps),
		Revision: p.Revision, Deadline: r.note.Deadline, Fallback: fallback,
	}
	for _, m := range p.Media {
		im := image{Alt: m.Alt}
		if r.svc.cfg.MediaURL != nil {
			im.URL = r.svc.cfg.MediaURL(p.OrgID, m.ID)
		}
		req.Images = append(req.Images, im)
	}
	if s := r.step(n); s != nil {
		req.ApproverText = r.approverText(s.Approver)
		if fallback {
			req.ApproverText += ", or fallback team " + r.teamName(s.FallbackTeam)
		}
	}
	body, err := json.Marshal(requestBody(req))
	if err != nil {
		return err
	}
	msg := store.SlackMessage{OrgID: p.OrgID, PostID: p.ID, Revision: p.Revision, Step: n, Kind: store.SlackKindApproval, Body: body}
	if teamID != "" {
		team, err := r.svc.store.Team(r.ctx, p.OrgID, teamID)
		if err != nil && cs.ErrorCode(err) != cs.ENOTFOUND {
			return err
		}
		if team.SlackChannelID != "" {
			msg.Recipient, msg.TeamID = "channel:"+team.SlackChannelID, teamID
			return r.sendRequest(msg, team.SlackChannelID, req.fallbackText())
		}
	}
	// Only those the workflow awaits get a request (not the author, the
	// revision's writer, who approved already, nor, with distinct approvers,
	// who approved an earlier step): the workflow computed it once.
	awaited := map[string]bool{}
	for _, id := range p.Awaited {
		awaited[id] = true
	}
	if err := r.load(memberIDs...); err != nil {
		return err
	}
	for _, id := range memberIDs {
		if !awaited[id] {
			continue
		}
		slackID, err := r.svc.slackIDOf(r.ctx, p.OrgID, r.members[id])
		if ok, abort := r.check(err, "users.lookupByEmail"); abort != nil {
			return abort
		} else if !ok || slackID == "" {
			continue
		}
		m := msg
		m.Recipient, m.MemberID = "member:"+id, id
		if absent := r.standsFor(n, id); absent != "" {
			dreq := req
			dreq.OnBehalfOf = r.name(absent)
			if m.Body, err = json.Marshal(requestBody(dreq)); err != nil {
				return err
			}
		}
		if err := r.sendRequest(m, slackID, req.fallbackText()); err != nil {
			return err
		}
	}
	return nil
}

// standsFor is the absent member a delegate is asked for on step n ("" when
// id is asked in their own right).
func (r *run) standsFor(n int, id string) string {
	s := r.step(n)
	if s == nil || slices.Contains(s.Eligible, id) || (s.FallbackActive && slices.Contains(s.FallbackEligible, id)) {
		return ""
	}
	for _, d := range s.Delegates {
		if d.DelegateID == id {
			return d.MemberID
		}
	}
	return ""
}

// sendRequest posts one approval request unless it was sent already.
func (r *run) sendRequest(m store.SlackMessage, channel, text string) error {
	_, found, err := r.svc.store.FindSlackMessage(r.ctx, m.PostID, m.Revision, m.Step, m.Kind, m.Recipient)
	if err != nil || found {
		return err
	}
	status, open := r.statusOf(m)
	blocks, hash, err := compose(m.Body, status, open, Target{PostID: m.PostID, Revision: m.Revision, Step: m.Step})
	if err != nil {
		return err
	}
	ch, ts, err := r.api.PostMessageContext(r.ctx, channel, slackgo.MsgOptionBlocks(blocks...), slackgo.MsgOptionText(text, false))
	if stripped, ok := withoutImages(m.Body); err != nil && ok && strings.Contains(err.Error(), "invalid_blocks") {
		// Slack could not fetch an image (COUNTERSIGN_PUBLIC_URL is not
		// reachable from Slack): the request goes without image blocks
		// rather than not at all; the images' alt texts stay in words.
		r.svc.logger.Warn("slack refused the request's image blocks; sent without them", "post_id", m.PostID, "error", err)
		m.Body = stripped
		if blocks, hash, err = compose(m.Body, status, open, Target{PostID: m.PostID, Revision: m.Revision, Step: m.Step}); err != nil {
			return err
		}
		ch, ts, err = r.api.PostMessageContext(r.ctx, channel, slackgo.MsgOptionBlocks(blocks...), slackgo.MsgOptionText(text, false))
	}
	if ok, abort := r.check(err, "chat.postMessage"); !ok {
		return abort
	}
	m.ChannelID, m.TS, m.Open, m.Rendered = ch, ts, open, hash
	_, err = r.svc.store.SaveSlackMessage(r.ctx, m)
	return err
}

// fallback asks the fallback team and tells the original approvers.
func (r *run) fallback() error {
	p, n := r.sp.Post, r.note.Step
	// The original requests of the step: to the step's team, or to the
	// members it resolved to when it opened (not to the fallback team, also
	// on a retry of this notification).
	all, err := r.requestsOf(p.Revision, n)
	if err != nil {
		return err
	}
	var before []store.SlackMessage
	if s := r.step(n); s != nil {
		for _, m := range all {
			if (m.TeamID != "" && m.TeamID == s.Approver.Team) || (m.MemberID != "" && slices.Contains(s.Eligible, m.MemberID)) {
				before = append(before, m)
			}
		}
	}
	var members []string
	if r.note.TeamID != "" {
		members, err = r.svc.store.EligibleApprovers(r.ctx, p.OrgID, p.AccountID, cs.Approver{Team: r.note.TeamID})
		if err != nil && cs.ErrorCode(err) != cs.ENOTFOUND {
			return err
		}
	}
	if err := r.requestApprovals(n, r.note.TeamID, members, true); err != nil {
		return err
	}
	until := ""
	if r.note.Deadline != nil {
		until = ", until " + when(r.note.Deadline, r.sp.Account.Timezone)
	}
	text := fmt.Sprintf("⏫ No decision in time: team *%s* may now approve this step too%s. You still can.",
		escape(r.teamName(r.note.TeamID)), until)
	for _, m := range before {
		if err := r.reply(m, string(activities.NotifyFallback), text); err != nil {
			return err
		}
	}
	return nil
}

// remind replies under each open request of the step that still waits.
func (r *run) remind() error {
	p, n := r.sp.Post, r.note.Step
	kind := string(activities.NotifyReminder)
	if s := r.step(n); s != nil && s.FallbackActive {
		kind += "_fallback" // one reminder per phase
	}
	msgs, err := r.requestsOf(p.Revision, n)
	if err != nil {
		return err
	}
	until := ""
	if r.note.Deadline != nil {
		until = " Deadline: " + when(r.note.Deadline, r.sp.Account.Timezone) + "."
	}
	for _, m := range msgs {
		if !m.Open || (m.MemberID != "" && !slices.Contains(r.note.MemberIDs, m.MemberID)) {
			continue
		}
		if err := r.reply(m, kind, "⏰ Reminder: this post still waits for a decision."+until); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) requestsOf(revision, step int) ([]store.SlackMessage, error) {
	all, err := r.svc.store.SlackMessages(r.ctx, r.sp.Post.ID, store.SlackKindApproval)
	var out []store.SlackMessage
	for _, m := range all {
		if m.Revision == revision && m.Step == step {
			out = append(out, m)
		}
	}
	return out, err
}

// replyToRequests replies in the thread of every request of the revision.
func (r *run) replyToRequests(kind, text string) error {
	all, err := r.svc.store.SlackMessages(r.ctx, r.sp.Post.ID, store.SlackKindApproval)
	if err != nil {
		return err
	}
	for _, m := range all {
		if m.Revision != r.note.Revision {
			continue
		}
		if err := r.reply(m, kind, text); err != nil {
			return err
		}
	}
	return nil
}

// reply posts text in the thread of parent, once per kind.
func (r *run) reply(parent store.SlackMessage, kind, text string) error {
	m := store.SlackMessage{OrgID: parent.OrgID, PostID: parent.PostID, Revision: parent.Revision, Step: parent.Step,
		Kind: kind, Recipient: fmt.Sprintf("thread:%d", parent.ID), MemberID: parent.MemberID, TeamID: parent.TeamID,
		ThreadTS: parent.TS}
	_, found, err := r.svc.store.FindSlackMessage(r.ctx, m.PostID, m.Revision, m.Step, m.Kind, m.Recipient)
	if err != nil || found {
		return err
	}
	ch, ts, err := r.api.PostMessageContext(r.ctx, parent.ChannelID, slackgo.MsgOptionText(text, false), slackgo.MsgOptionTS(parent.TS))
	if ok, abort := r.check(err, "chat.postMessage"); !ok {
		return abort
	}
	m.ChannelID, m.TS = ch, ts
	_, err = r.svc.store.SaveSlackMessage(r.ctx, m)
	return err
}

// tellAuthor sends the author a direct message, once per kind and revision.
func (r *run) tellAuthor(text string) error {
	return r.tell(r.sp.Post.AuthorID, text)
}

// tellAdmins sends text to each of the org's admins and owners.
func (r *run) tellAdmins(text string) error {
	ids, err := r.svc.store.OrgAdminIDs(r.ctx, r.sp.Post.OrgID)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := r.tell(id, text); err != nil {
			return err
		}
	}
	return nil
}

// tell sends text to one member once per post revision and kind.
func (r *run) tell(memberID, text string) error {
	p := r.sp.Post
	if err := r.load(memberID); err != nil {
		return err
	}
	slackID, err := r.svc.slackIDOf(r.ctx, p.OrgID, r.members[memberID])
	if ok, abort := r.check(err, "users.lookupByEmail"); !ok || slackID == "" {
		return abort
	}
	m := store.SlackMessage{OrgID: p.OrgID, PostID: p.ID, Revision: r.note.Revision, Step: r.note.Step, Kind: string(r.note.Kind),
		Recipient: "member:" + memberID, MemberID: memberID}
	_, found, err := r.svc.store.FindSlackMessage(r.ctx, m.PostID, m.Revision, m.Step, m.Kind, m.Recipient)
	if err != nil || found {
		return err
	}
	ch, ts, err := r.api.PostMessageContext(r.ctx, slackID, slackgo.MsgOptionText(text, false))
	if ok, abort := r.check(err, "chat.postMessage"); !ok {
		return abort
	}
	m.ChannelID, m.TS = ch, ts
	_, err = r.svc.store.SaveSlackMessage(r.ctx, m)
	return err
}

// --- keeping requests up to date ---------------------------------------------

// refresh updates every approval request of the post whose content changed,
// so that only the open step's requests keep their buttons.
func (r *run) refresh() (err error) {
	r.adjust()
	all, err := r.svc.store.SlackMessages(r.ctx, r.sp.Post.ID, store.SlackKindApproval)
	if err != nil {
		return err
	}
	// What the updates made the messages show is recorded in one statement
	// at the end, also when the run stops early (a 429).
	var shown []store.SlackShown
	defer func() {
		if serr := r.svc.store.SetSlackMessagesShown(r.ctx, shown); err == nil {
			err = serr
		}
	}()
	for _, m := range all {
		status, open := r.statusOf(m)
		target := Target{PostID: m.PostID, Revision: m.Revision, Step: m.Step}
		if renderKey(m.Body, status, open, target) == m.Rendered && open == m.Open {
			continue // shown as it is: no need to decode it
		}
		blocks, hash, err := compose(m.Body, status, open, target)
		if err != nil {
			return err
		}
		text := fmt.Sprintf("Approval request (step %d): %s", m.Step, plainStatus(status))
		_, _, _, err = r.api.UpdateMessageContext(r.ctx, m.ChannelID, m.TS, slackgo.MsgOptionBlocks(blocks...), slackgo.MsgOptionText(text, false))
		if ok, abort := r.check(err, "chat.update"); abort != nil {
			return abort
		} else if !ok && !permanent(err) {
			continue // retried with the activity
		}
		// Updated, or Slack refused for good (message deleted): either way
		// there is nothing more to do for this state.
		shown = append(shown, store.SlackShown{ID: m.ID, Open: open, Rendered: hash})
	}
	return nil
}

// refreshHomes republishes the App Home tab of everyone a step of the post
// awaits or awaited (who has opened it once): what waits for them changed.
func (r *run) refreshHomes() error {
	var ids []string
	for _, s := range r.sp.Post.Steps {
		ids = append(append(ids, s.Eligible...), s.FallbackEligible...)
	}
	if err := r.load(ids...); err != nil {
		return err
	}
	concerned := map[string]store.SlackMember{}
	for _, id := range ids {
		concerned[id] = r.members[id]
	}
	return r.svc.refreshHomes(r.ctx, concerned)
}

// adjust brings the post read from the database up to the notification: the
// workflow tells "approved" before it mirrors the state that follows (it
// publishes right away), so the last approval is not in the database yet.
func (r *run) adjust() {
	p := &r.sp.Post
	if r.note.Kind != activities.NotifyApproved || p.Status != cs.PostPendingApproval || p.Revision != r.note.Revision {
		return
	}
	p.Status = cs.PostPublishing
	if s := r.step(p.CurrentStep); s != nil {
		s.Status = cs.StepApproved
		if r.note.Actor != "" && !slices.ContainsFunc(s.Approvals, func(d cs.DecisionRecord) bool { return d.MemberID == r.note.Actor }) {
			s.Approvals = append(s.Approvals, cs.DecisionRecord{Step: s.Index, MemberID: r.note.Actor, Decision: cs.DecisionApprove})
		}
	}
}

// approvedStep: the request's member approved its step (in person or for
// someone), so its buttons go for that reason, not a directory change.
func (r *run) approvedStep(m store.SlackMessage) bool {
	s := r.step(m.Step)
	return s != nil && slices.ContainsFunc(s.Approvals, func(d cs.DecisionRecord) bool { return d.MemberID == m.MemberID })
}

// reresolved: the step's awaited list can be trusted to drop people (it
// lists someone, or the step is reported unsatisfiable).
func (r *run) reresolved(step int) bool {
	s := r.step(step)
	return len(r.sp.Post.Awaited) > 0 || (s != nil && s.Unsatisfiable != "")
}

// statusOf says what a request shows below its fixed body, and whether it
// keeps its buttons: only a request of the open step of the current revision
// of a post pending approval does.
func (r *run) statusOf(m store.SlackMessage) ([]string, bool) {
	p := r.sp.Post
	tz := r.sp.Account.Timezone
	if m.Revision < p.Revision {
		return []string{fmt.Sprintf("✏️ *Superseded*: the post was edited (now revision %d); decisions on revision %d no longer count.",
			p.Revision, m.Revision)}, false
	}
	open := p.Status == cs.PostPendingApproval && m.Revision == p.Revision && m.Step == p.CurrentStep
	var lines []string
	if open && m.MemberID != "" && !slices.Contains(p.Awaited, m.MemberID) && !r.approvedStep(m) && r.reresolved(m.Step) {
		// A directory change dropped them (removed, left the team, the
		// absence they covered ended): no buttons.
		open = false
		lines = append(lines, "🚪 You are no longer awaited for this step.")
	}
	if s := r.step(m.Step); open && s != nil && s.Unsatisfiable != "" {
		open = false
		lines = append(lines, "⚠️ *No one left can approve this step*: "+escape(s.Unsatisfiable)+". The admins were told.")
	}
	if s := r.step(m.Step); s != nil {
		var approvers []string
		for _, a := range s.Approvals {
			approvers = append(approvers, a.MemberID)
		}
		switch {
		case s.Rejection != nil:
			lines = append(lines, fmt.Sprintf("❌ *Rejected* by %s: “%s”", escape(r.name(s.Rejection.MemberID)), escape(s.Rejection.Note)))
		case s.Status == cs.StepApproved:
			lines = append(lines, fmt.Sprintf("✅ Step %d/%d *approved* by %s", s.Index, p.TotalSteps, r.names(approvers)))
		case s.Status == cs.StepExpired && p.Status != cs.PostExpired: // else the post's line says it
			lines = append(lines, fmt.Sprintf("⌛ Step %d/%d timed out", s.Index, p.TotalSteps))
		case len(approvers) > 0:
			lines = append(lines, fmt.Sprintf("%d of %d approvals so far: %s", len(approvers), s.Quorum, r.names(approvers)))
		}
		if open && s.FallbackActive {
			until := ""
			if s.Deadline != nil {
				until = ", until " + when(s.Deadline, tz)
			}
			lines = append(lines, fmt.Sprintf("⏫ *Escalated*: no decision in time; team %s may approve too%s.", escape(r.teamName(s.FallbackTeam)), until))
		}
		if open {
			// Who may now answer for an absent approver (SPEC §2 Member).
			for _, d := range s.Delegates {
				lines = append(lines, fmt.Sprintf("🏖 %s is away until %s: %s may answer on their behalf.",
					escape(r.name(d.MemberID)), when(&d.Until, tz), escape(r.name(d.DelegateID))))
			}
		}
	}
	note := r.note
	switch p.Status {
	case cs.PostScheduled:
		lines = append(lines, "🗓 All steps approved: publishing "+when(p.ScheduledAt, tz)+".")
	case cs.PostPublishing:
		lines = append(lines, "✅ All steps approved: publishing now.")
	case cs.PostOnHold:
		lines = append(lines, "⏸ Approved after its scheduled time: on hold until someone reschedules it.")
	case cs.PostPublished:
		if p.ExternalURL != "" {
			lines = append(lines, fmt.Sprintf("📣 *Published*: <%s>", p.ExternalURL))
		} else {
			lines = append(lines, "📣 *Published*.")
		}
	case cs.PostFailed:
		lines = append(lines, "⚠️ *Publishing failed*"+detailText(p.LastError))
	case cs.PostNeedsAttention:
		lines = append(lines, "⚠️ *Publishing outcome unknown*: someone must check the account"+detailText(p.LastError))
	case cs.PostExpired:
		detail := ""
		if note.Kind == activities.NotifyExpired {
			detail = detailText(note.Detail)
		}
		lines = append(lines, "⌛ *Expired*"+detail)
	case cs.PostCanceled:
		detail := ""
		if note.Kind == activities.NotifyCanceled {
			detail = r.byActor() + detailText(note.Detail)
		}
		lines = append(lines, "🚫 *Canceled*"+detail)
	case cs.PostRejected:
		if s := r.step(p.CurrentStep); s != nil && s.Rejection != nil && s.Index != m.Step {
			lines = append(lines, fmt.Sprintf("❌ *Rejected* at step %d by %s: “%s”", s.Index, escape(r.name(s.Rejection.MemberID)), escape(s.Rejection.Note)))
		}
	case cs.PostPendingApproval:
		if !open && m.Step > p.CurrentStep {
			lines = append(lines, fmt.Sprintf("Waiting for step %d first.", p.CurrentStep))
		}
	}
	return lines, open
}

func plainStatus(lines []string) string {
	if len(lines) == 0 {
		return "waiting for your decision"
	}
	return strings.NewReplacer("*", "").Replace(strings.Join(lines, " "))
}

func detailText(d string) string {
	if strings.TrimSpace(d) == "" {
		return "."
	}
	return ": " + escape(d)
}

func orText(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}
