package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	cs "github.com/countersign/countersign"
)

// This file holds what the Slack integration needs from the database: the
// messages it sent (so it can update them in place and never send one twice),
// the post as a message shows it, and the link between Slack users and
// members.

// Kinds of Slack messages. Notices about the whole post use the
// notification kind itself ("rejected", "published", ...).
const (
	SlackKindApproval = "approval" // an approval request with buttons
)

// SlackMessage is one message Countersign sent to Slack about a post.
type SlackMessage struct {
	ID       int64
	OrgID    string
	PostID   string
	Revision int
	Step     int    // 1-based; 0 for messages about the whole post
	Kind     string // SlackKindApproval, or a notice kind
	// Recipient identifies the message among the post's: "member:<id>",
	// "channel:<id>" or "thread:<parent message id>".
	Recipient string
	MemberID  string // the member a direct message went to
	TeamID    string // the team whose channel got it
	ChannelID string
	TS        string
	ThreadTS  string
	// Body is the Block Kit blocks (JSON array) the message was sent with.
	Body json.RawMessage
	// Open is true while the message shows its approve and reject buttons.
	Open bool
	// Rendered is the hash of what the message shows now.
	Rendered  string
	CreatedAt time.Time
	UpdatedAt time.Time
}

const slackMessageColumns = `id, org_id, post_id, revision, step, kind, recipient, coalesce(member_id::text, ''),
	coalesce(team_id::text, ''), channel_id, ts, thread_ts, body, open, rendered, created_at, updated_at`

func scanSlackMessage(r pgx.Row) (SlackMessage, error) {
	var m SlackMessage
	var body []byte
	err := r.Scan(&m.ID, &m.OrgID, &m.PostID, &m.Revision, &m.Step, &m.Kind, &m.Recipient, &m.MemberID,
		&m.TeamID, &m.ChannelID, &m.TS, &m.ThreadTS, &body, &m.Open, &m.Rendered, &m.CreatedAt, &m.UpdatedAt)
	m.Body = body
	return m, err
}

// FindSlackMessage returns the message sent for (post, revision, step, kind,
// recipient), if any.
func (s *Store) FindSlackMessage(ctx context.Context, postID string, revision, step int, kind, recipient string) (SlackMessage, bool, error) {
	if !validID(postID) {
		return SlackMessage{}, false, nil
	}
	m, err := scanSlackMessage(s.pool.QueryRow(ctx, `SELECT `+slackMessageColumns+` FROM slack_messages
		WHERE post_id = $1 AND revision = $2 AND step = $3 AND kind = $4 AND recipient = $5`,
		postID, revision, step, kind, recipient))
	if errors.Is(err, pgx.ErrNoRows) {
		return m, false, nil
	}
	return m, err == nil, err
}

// SaveSlackMessage records a message that was sent. When one is already
// recorded for the same (post, revision, step, kind, recipient) — a retried
// notification that raced another — the stored one is returned unchanged.
func (s *Store) SaveSlackMessage(ctx context.Context, m SlackMessage) (SlackMessage, error) {
	if !validID(m.OrgID) || !validID(m.PostID) {
		return m, fmt.Errorf("save slack message: bad org or post id")
	}
	opt := func(id string) any {
		if validID(id) {
			return id
		}
		return nil
	}
	body := []byte(m.Body)
	if len(body) == 0 {
		body = []byte("[]")
	}
	saved, err := scanSlackMessage(s.pool.QueryRow(ctx, `INSERT INTO slack_messages
		(org_id, post_id, revision, step, kind, recipient, member_id, team_id, channel_id, ts, thread_ts, body, open, rendered)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (post_id, revision, step, kind, recipient) DO NOTHING
		RETURNING `+slackMessageColumns,
		m.OrgID, m.PostID, m.Revision, m.Step, m.Kind, m.Recipient, opt(m.MemberID), opt(m.TeamID),
		m.ChannelID, m.TS, m.ThreadTS, body, m.Open, m.Rendered))
	if errors.Is(err, pgx.ErrNoRows) {
		existing, _, err := s.FindSlackMessage(ctx, m.PostID, m.Revision, m.Step, m.Kind, m.Recipient)
		return existing, err
	}
	return saved, err
}

// SlackMessages lists the post's messages of one kind ("" for all), oldest first.
func (s *Store) SlackMessages(ctx context.Context, postID, kind string) ([]SlackMessage, error) {
	if !validID(postID) {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+slackMessageColumns+` FROM slack_messages
		WHERE post_id = $1 AND ($2 = '' OR kind = $2) ORDER BY id`, postID, kind)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (SlackMessage, error) { return scanSlackMessage(r) })
}

// SlackShown is what a message shows after an update: whether it keeps its
// buttons, and the render key of its content.
type SlackShown struct {
	ID       int64
	Open     bool
	Rendered string
}

// SetSlackMessagesShown records what messages show after their updates, in
// one statement (a transition updates every request of the post).
func (s *Store) SetSlackMessagesShown(ctx context.Context, shown []SlackShown) error {
	if len(shown) == 0 {
		return nil
	}
	ids, open, rendered := make([]int64, len(shown)), make([]bool, len(shown)), make([]string, len(shown))
	for i, m := range shown {
		ids[i], open[i], rendered[i] = m.ID, m.Open, m.Rendered
	}
	_, err := s.pool.Exec(ctx, `UPDATE slack_messages m SET open = x.open, rendered = x.rendered, updated_at = now()
		FROM unnest($1::bigint[], $2::boolean[], $3::text[]) AS x (id, open, rendered) WHERE m.id = x.id`,
		ids, open, rendered)
	return err
}

// SlackPost is a post with what a Slack message about it shows.
type SlackPost struct {
	Post cs.Post
	// Account is the post's account, even if it was deleted since.
	Account           cs.Account
	OrgName           string
	DistinctApprovers bool
}

// SlackPost reads a post by id alone (a Slack button carries only the post
// id; the org comes from the post), with its account and org name.
func (s *Store) SlackPost(ctx context.Context, postID string) (SlackPost, error) {
	var sp SlackPost
	if !validID(postID) {
		return sp, cs.Errorf(cs.ENOTFOUND, "no such post")
	}
	// One round trip: the post with its org's name, then its account.
	var distinct *bool
	b := &pgx.Batch{}
	b.Queue(`SELECT `+postColumns+`, (SELECT o.name FROM orgs o WHERE o.id = posts.org_id),
		(chain->>'distinct_approvers')::boolean FROM posts WHERE id = $1`, postID)
	b.Queue(`SELECT `+accountColumns+` FROM posts p JOIN accounts a ON a.org_id = p.org_id AND a.id = p.account_id
		WHERE p.id = $1`, postID)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	p, err := scanPost(br.QueryRow(), &sp.OrgName, &distinct)
	if errors.Is(err, pgx.ErrNoRows) {
		return sp, cs.Errorf(cs.ENOTFOUND, "no such post")
	}
	if err != nil {
		return sp, err
	}
	sp.Post = p
	if sp.Account, err = scanAccount(br.QueryRow()); err != nil {
		return sp, fmt.Errorf("read the post's account: %w", err)
	}
	sp.DistinctApprovers = distinct == nil || *distinct
	return sp, nil
}

// SlackMember is what a Slack message needs of a member.
type SlackMember struct {
	ID          string
	Name        string
	Email       string
	SlackUserID string
	Active      bool // false once removed from the org
	HomeOpened  bool // has opened the App Home tab (it is republished on changes)
}

// SlackMembers returns the members of the org among ids, removed ones
// included (a message may name who approved before being removed).
func (s *Store) SlackMembers(ctx context.Context, orgID string, ids []string) (map[string]SlackMember, error) {
	out := map[string]SlackMember{}
	valid := validIDs(ids)
	if len(valid) == 0 || !validID(orgID) {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT m.id, u.name, u.email, coalesce(m.slack_user_id, ''), m.removed_at IS NULL,
		m.slack_home_at IS NOT NULL
		FROM members m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND m.id = ANY ($2::uuid[])`, orgID, valid)
	if err != nil {
		return nil, err
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SlackMember, error) {
		var m SlackMember
		err := r.Scan(&m.ID, &m.Name, &m.Email, &m.SlackUserID, &m.Active, &m.HomeOpened)
		return m, err
	})
	for _, m := range ms {
		out[m.ID] = m
	}
	return out, err
}

// MemberBySlackUser returns the org's active member linked to a Slack user.
func (s *Store) MemberBySlackUser(ctx context.Context, orgID, slackUserID string) (cs.Member, error) {
	if !validID(orgID) || slackUserID == "" {
		return cs.Member{}, notFound("member")
	}
	m, err := scanMember(s.pool.QueryRow(ctx, `
		SELECT `+memberColumns+` FROM members m JOIN users u ON u.id = m.user_id
		WHERE m.org_id = $1 AND m.slack_user_id = $2 AND m.removed_at IS NULL`, orgID, slackUserID))
	if errors.Is(err, pgx.ErrNoRows) {
		return m, notFound("member")
	}
	return m, err
}

// SlackHomeMember is one of a Slack user's memberships, for the App Home tab.
type SlackHomeMember struct {
	Member  cs.Member
	OrgName string
}

// SlackUserMembers returns the active members linked to a Slack user, in
// every org, oldest membership first; opened also records that the user
// opened the App Home tab, so later changes republish it.
func (s *Store) SlackUserMembers(ctx context.Context, slackUserID string, opened bool) ([]SlackHomeMember, error) {
	if slackUserID == "" {
		return nil, nil
	}
	if opened {
		if _, err := s.pool.Exec(ctx, `UPDATE members SET slack_home_at = now()
			WHERE slack_user_id = $1 AND removed_at IS NULL`, slackUserID); err != nil {
			return nil, err
		}
	}
	rows, err := s.pool.Query(ctx, `SELECT m.id, m.org_id, m.user_id, u.email, u.name, m.org_role, m.slack_user_id, m.created_at, o.name
		FROM members m JOIN users u ON u.id = m.user_id JOIN orgs o ON o.id = m.org_id
		WHERE m.slack_user_id = $1 AND m.removed_at IS NULL ORDER BY m.created_at, m.id`, slackUserID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (SlackHomeMember, error) {
		var h SlackHomeMember
		m := &h.Member
		err := r.Scan(&m.ID, &m.OrgID, &m.UserID, &m.Email, &m.Name, &m.OrgRole, &m.SlackUserID, &m.CreatedAt, &h.OrgName)
		return h, err
	})
}

// MemberByEmail returns the org's active member with this e-mail (compared
// case-insensitively).
func (s *Store) MemberByEmail(ctx context.Context, orgID, email string) (cs.Member, error) {
	email = strings.TrimSpace(email)
	if !validID(orgID) || email == "" {
		return cs.Member{}, notFound("member")
	}
	m, err := scanMember(s.pool.QueryRow(ctx, `
		SELECT `+memberColumns+` FROM members m JOIN users u ON u.id = m.user_id
		WHERE m.org_id = $1 AND lower(u.email) = lower($2) AND m.removed_at IS NULL`, orgID, email))
	if errors.Is(err, pgx.ErrNoRows) {
		return m, notFound("member")
	}
	return m, err
}

// LinkSlackUser sets an active member's Slack user id when it has none, and
// reports whether it did. An id set by hand (PATCH …/members/{id}) is never
// overwritten, and an id that another member of the org already has is left
// alone (false, no error).
func (s *Store) LinkSlackUser(ctx context.Context, orgID, memberID, slackUserID string) (bool, error) {
	slackUserID = strings.TrimSpace(slackUserID)
	if !validID(orgID) || !validID(memberID) || slackUserID == "" || len(slackUserID) > 64 ||
		strings.ContainsAny(slackUserID, " \t\r\n") {
		return false, nil
	}
	var linked bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE members SET slack_user_id = $3
			WHERE org_id = $1 AND id = $2 AND removed_at IS NULL AND slack_user_id IS NULL`, orgID, memberID, slackUserID)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		linked = true
		return insertAudit(ctx, tx, orgID, Actor{Source: cs.SourceSystem}, auditRow{objectType: "member", objectID: memberID,
			action: "link_slack", before: map[string]any{"slack_user_id": nil}, after: map[string]any{"slack_user_id": slackUserID}})
	})
	if isUniqueViolation(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("link slack user: %w", err)
	}
	return linked, nil
}
