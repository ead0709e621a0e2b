// Package review is the external reviewer's side of a post (SPEC §2, the
// external approver): the e-mail with a signed link when their step opens
// (Sender), and what the link's page shows and answers (Pages). The HTTP
// handlers (server/review.go) only translate; the decision goes through the
// posts service's one decide path, with source link.
package review

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/secrets"
)

// Store is what the page reads (*store.Store).
type Store interface {
	Post(ctx context.Context, orgID, postID string) (cs.Post, error)
	Account(ctx context.Context, orgID, accountID string) (cs.Account, error)
	PostChain(ctx context.Context, postID string) (cs.Chain, error)
}

// Comment is one comment shown on the page.
type Comment struct {
	Author   string
	Text     string
	Revision int
	At       time.Time
}

// Comments lists a post's comments for the page, oldest first. It is the
// hook for the comments feature: without it the page shows none.
type Comments func(ctx context.Context, orgID, postID string) ([]Comment, error)

// Pages opens review links and renders their pages.
type Pages struct {
	Links    *secrets.ReviewLinks
	Store    Store
	Comments Comments // optional
	// MediaURL signs an image's thumbnail URL (media.URLs.ThumbnailURL);
	// nil or "": the images are listed by their alt text only.
	MediaURL func(orgID, mediaID string) string
	Now      func() time.Time // default time.Now
}

// Problem is a link that cannot be used, as the page shows it: a 4xx status,
// a title and a sentence for the reviewer.
type Problem struct {
	Status        int
	Title, Detail string
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

var errInvalid = &Problem{http.StatusNotFound, "This review link is not valid",
	"Check that you opened the whole link from the e-mail. If it still does not work, ask the person who sent you the post for a new one."}

// Review is an open link: the post it is for, as mirrored now.
type Review struct {
	Token     string
	Link      secrets.ReviewLink
	Reviewer  cs.ExternalReviewer
	Post      cs.Post
	Account   cs.Account
	RequestID string // the decision's request id: the same for every submit of this link
}

// Open checks a token and the post's state: the link must be one this
// server signed for the step's reviewer, not expired, not used, and its
// step of its revision must still be open. Any other answer is a *Problem
// (4xx); an error that is not one means the database could not be read.
func (p *Pages) Open(ctx context.Context, token string) (*Review, error) {
	l, err := p.Links.Parse(token)
	if err != nil {
		return nil, errInvalid
	}
	post, err := p.Store.Post(ctx, l.OrgID, l.PostID)
	if cs.ErrorCode(err) == cs.ENOTFOUND {
		return nil, errInvalid
	}
	if err != nil {
		return nil, err
	}
	chain, err := p.Store.PostChain(ctx, post.ID)
	if err != nil {
		return nil, err
	}
	if l.Step > len(chain.Steps) || chain.Steps[l.Step-1].Approver.External == nil {
		return nil, errInvalid
	}
	who := *chain.Steps[l.Step-1].Approver.External
	if !p.Links.Verify(token, who.Email) {
		return nil, errInvalid
	}
	r := &Review{Token: token, Link: l, Reviewer: who, Post: post, RequestID: secrets.RequestID(token)}
	if used := r.answer(); used != nil {
		verb := "approved"
		if used.Decision == cs.DecisionReject {
			verb = "rejected"
		}
		return nil, &Problem{http.StatusGone, "You have already answered",
			fmt.Sprintf("You %s this post on %s. A review link can be used once.", verb, used.At.UTC().Format("2 Jan 2006 at 15:04 UTC"))}
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	switch {
	case !l.Expires.IsZero() && !now().Before(l.Expires):
		return nil, &Problem{http.StatusGone, "This review link has expired",
			fmt.Sprintf("The review was open until %s. Ask the person who sent you the post if it still needs your answer.", l.Expires.UTC().Format("2 Jan 2006 at 15:04 UTC"))}
	case post.Revision != l.Revision:
		return nil, &Problem{http.StatusGone, "The post was edited",
			"This link was for an earlier version of the post. If the new version needs your review, you will get a new link by e-mail."}
	case post.Status != cs.PostPendingApproval || post.CurrentStep != l.Step:
		return nil, &Problem{http.StatusGone, "This post no longer waits for your review",
			fmt.Sprintf("The post is %s now; nothing is needed from you.", strings.ReplaceAll(string(post.Status), "_", " "))}
	}
	if r.Account, err = p.Store.Account(ctx, post.OrgID, post.AccountID); err != nil && cs.ErrorCode(err) != cs.ENOTFOUND {
		return nil, err
	}
	return r, nil
}

// answer is the decision this link already gave, if the post shows one.
func (r *Review) answer() *cs.DecisionRecord {
	if r.Post.Revision != r.Link.Revision {
		return nil
	}
	for _, s := range r.Post.Steps {
		if s.Rejection != nil && s.Rejection.RequestID == r.RequestID {
			return s.Rejection
		}
		if i := slices.IndexFunc(s.Approvals, func(d cs.DecisionRecord) bool { return d.RequestID == r.RequestID }); i >= 0 {
			return &s.Approvals[i]
		}
	}
	return nil
}

// AsProblem is err as the page shows it: its *Problem, or 503 for a
// database or Temporal that did not answer (never a 500 with internals).
func AsProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return &Problem{http.StatusServiceUnavailable, "Please try again in a moment",
		"The review could not be loaded or saved just now. Nothing was recorded; the link still works."}
}
