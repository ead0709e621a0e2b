package posts

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
)

// CommentStore is the database as comments use it (*store.Store).
type CommentStore interface {
	AddComment(ctx context.Context, in store.NewComment) (cs.Comment, error)
	Comments(ctx context.Context, orgID, postID string, p cs.Page) ([]cs.Comment, error)
}

// MayDiscuss says whether the member may read and write the post's comments
// (SPEC §2 "Comment"): its author, an editor or above on its account (admins
// and owners hold advanced), or anyone eligible for one of its steps as the
// workflow resolved them and mirrored them: a step's eligible members, its
// fallback team's once it widened, and who the open step awaits (delegates
// included). An approver of a step that has not opened yet is not eligible
// yet: who a step will await is the workflow's to say when it opens. It
// returns "" when they may, else the reason.
func (s *Service) MayDiscuss(ctx context.Context, me cs.Member, p cs.Post) (string, error) {
	if p.AuthorID == me.ID || slices.Contains(p.Awaited, me.ID) {
		return "", nil
	}
	for _, st := range p.Steps {
		if slices.Contains(st.Eligible, me.ID) || slices.Contains(st.FallbackEligible, me.ID) {
			return "", nil
		}
	}
	r, err := s.Store.EffectiveRight(ctx, p.OrgID, p.AccountID, me.ID)
	if cs.ErrorCode(err) == cs.ENOTFOUND {
		r, err = cs.Right{}, nil // the account was deleted: only the author and approvers remain
	}
	if err != nil {
		return "", err
	}
	if r.Manage || (r.Publish == cs.PublishDirect && r.Approve) {
		return "", nil
	}
	return "only the post's author, editors and above on its account, and members eligible for one of its opened steps can read and write its comments", nil
}

// CheckComment bounds a comment's text: 1 to cs.MaxCommentRunes characters,
// not blank, no NUL.
func CheckComment(text string) error {
	field := func(msg string) error {
		return &cs.Error{Code: cs.EINVALID, Message: "invalid comment: the text " + msg, Fields: []cs.FieldError{{Field: "text", Message: msg}}}
	}
	switch n := utf8.RuneCountInString(text); {
	case strings.TrimSpace(text) == "":
		return field("is required")
	case n > cs.MaxCommentRunes:
		return field(fmt.Sprintf("is %d characters; at most %d are allowed", n, cs.MaxCommentRunes))
	case !utf8.ValidString(text) || strings.ContainsRune(text, 0):
		return field("must be UTF-8 text without NUL characters")
	}
	return nil
}

// NewCommentInput is a comment to write.
type NewCommentInput struct {
	PostID string
	Text   string
	Source string // cs.SourceAPI (default) or cs.SourceSlack
}

// Comment adds a comment to a post the member may discuss, on the revision
// the post is at; it is queued for a thread reply under the post's Slack
// approval messages. Comments are rate-limited like decisions.
func (s *Service) Comment(ctx context.Context, me cs.Member, in NewCommentInput) (cs.Comment, error) {
	if s.Comments == nil {
		return cs.Comment{}, cs.Errorf(cs.ENOTFOUND, "comments are not available")
	}
	if err := CheckComment(in.Text); err != nil {
		return cs.Comment{}, err
	}
	p, err := s.discussed(ctx, me, in.PostID)
	if err != nil {
		return cs.Comment{}, err
	}
	if d := s.CommentLimits.Allow(me.ID, p.ID); d > 0 {
		return cs.Comment{}, &RateLimited{RetryAfter: d, What: "comments"}
	}
	if in.Source == "" {
		in.Source = cs.SourceAPI
	}
	return s.Comments.AddComment(ctx, store.NewComment{OrgID: p.OrgID, PostID: p.ID, AuthorID: me.ID, Text: in.Text,
		Source: in.Source, ToSlack: true})
}

// ListComments lists a post's comments for a member who may discuss it.
func (s *Service) ListComments(ctx context.Context, me cs.Member, postID string, page cs.Page) ([]cs.Comment, error) {
	if s.Comments == nil {
		return nil, cs.Errorf(cs.ENOTFOUND, "comments are not available")
	}
	p, err := s.discussed(ctx, me, postID)
	if err != nil {
		return nil, err
	}
	return s.Comments.Comments(ctx, p.OrgID, p.ID, page)
}

// discussed is the post of the org, if the member may discuss it.
func (s *Service) discussed(ctx context.Context, me cs.Member, postID string) (cs.Post, error) {
	p, err := s.Store.Post(ctx, me.OrgID, postID)
	if err != nil {
		return p, err
	}
	reason, err := s.MayDiscuss(ctx, me, p)
	if err != nil {
		return p, err
	}
	if reason != "" {
		return p, cs.Errorf(cs.EFORBIDDEN, "%s", reason)
	}
	return p, nil
}

// rejectionComment records a rejection's reason given in Slack's reject form
// as a comment of the rejecter (issue 17: it is shown as a comment too). The
// approval messages already show the reason, so it is not replied in Slack.
func (s *Service) rejectionComment(ctx context.Context, me cs.Member, p cs.Post, note string) {
	if s.Comments == nil || strings.TrimSpace(note) == "" || CheckComment(note) != nil {
		return
	}
	if _, err := s.Comments.AddComment(ctx, store.NewComment{OrgID: p.OrgID, PostID: p.ID, AuthorID: me.ID, Text: note,
		Source: cs.SourceSlack}); err != nil {
		s.Logger.Warn("record a rejection's reason as a comment", "org", p.OrgID, "post_id", p.ID, "error", err)
	}
}

// maxCommentsWithPost bounds the comments GET …/posts/{post} lists (the
// first ones; the rest are on …/comments).
const maxCommentsWithPost = 200

// PostWithDiscussion reads a post of the org with its audit log and, for a
// member who may discuss it, its comments; for anyone else the comments are
// left out of the audit log too.
func (s *Service) PostWithDiscussion(ctx context.Context, me cs.Member, postID string) (cs.Post, error) {
	p, err := s.PostWithEvents(ctx, me.OrgID, postID)
	if err != nil || s.Comments == nil {
		return p, err
	}
	reason, err := s.MayDiscuss(ctx, me, p)
	if err != nil {
		return p, err
	}
	if reason != "" {
		p.Events = slices.DeleteFunc(p.Events, func(e cs.PostEvent) bool { return e.Type == cs.EventComment })
		return p, nil
	}
	if p.Comments, err = s.Comments.Comments(ctx, p.OrgID, p.ID, cs.Page{Limit: maxCommentsWithPost}); p.Comments == nil {
		p.Comments = []cs.Comment{}
	}
	return p, err
}
