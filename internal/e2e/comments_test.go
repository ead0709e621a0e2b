package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
	csslack "github.com/countersign/countersign/internal/slack"
	"github.com/countersign/countersign/internal/slack/slackfake"
)

// TestCommentsDiscussionInSlack: the author, the open step's approver and an
// editor of the account discuss a post. Each comment records its revision,
// is a post event, is listed with the post and on its own (paginated), and
// is replied in the thread of each approval request of its revision (the
// PR team's channel once step 2 opened). Maya's rejection from Slack's form
// becomes her comment; comments are rate-limited like decisions.
func TestCommentsDiscussionInSlack(t *testing.T) {
	s := newSlackEnv(t)
	acct := s.setupSlack()
	ines, maya, eddie := s.members["Ines"].token, s.members["Maya"].token, s.members["Eddie"].token
	var post cs.Post
	s.must(201, ines, "POST", s.org("/posts"), map[string]any{"account_id": acct, "text": "Launch day!"}, &post)
	mayaReq := s.request("DMAYA", 1, 1)

	comment := func(token, text string) cs.Comment {
		t.Helper()
		var c cs.Comment
		s.must(201, token, "POST", s.org("/posts/"+post.ID+"/comments"), map[string]any{"text": text}, &c)
		return c
	}
	first := comment(ines, "Is the logo the new one?")
	if first.Revision != 1 || first.AuthorID != s.members["Ines"].memberID || first.Source != cs.SourceAPI || first.ID == "" {
		t.Fatalf("comment: %+v", first)
	}
	comment(maya, "It is not: please swap it")
	comment(eddie, strings.Repeat("é", cs.MaxCommentRunes)) // exactly the limit, in characters

	thread := func(parent slackfake.Message, want string) {
		t.Helper()
		s.slack.Eventually(fmt.Sprintf("replied %q under %s/%s", want, parent.Channel, parent.TS), func() bool {
			for _, m := range s.slack.Messages() {
				if m.Channel == parent.Channel && m.ThreadTS == parent.TS && strings.Contains(m.Text, want) {
					return true
				}
			}
			return false
		})
	}
	thread(mayaReq, "*Ines* commented on revision 1:\nIs the logo the new one?")
	thread(mayaReq, "*Maya* commented on revision 1:\nIt is not: please swap it")

	// Listed on its own, oldest first, a page at a time.
	var page struct {
		Items      []cs.Comment
		NextCursor *string `json:"next_cursor"`
	}
	s.must(200, ines, "GET", s.org("/posts/"+post.ID+"/comments?limit=2"), nil, &page)
	if len(page.Items) != 2 || page.Items[0].ID != first.ID || page.NextCursor == nil {
		t.Fatalf("first page: %+v", page)
	}
	cursor := *page.NextCursor
	page.Items, page.NextCursor = nil, nil
	s.must(200, ines, "GET", s.org("/posts/"+post.ID+"/comments?limit=2&cursor="+cursor), nil, &page)
	if len(page.Items) != 1 || page.Items[0].AuthorID != s.members["Eddie"].memberID || page.NextCursor != nil {
		t.Fatalf("second page: %+v", page)
	}
	// With the post, and among its events.
	var p cs.Post
	s.must(200, maya, "GET", s.org("/posts/"+post.ID), nil, &p)
	events := 0
	for _, e := range p.Events {
		if e.Type == cs.EventComment {
			events++
		}
	}
	if len(p.Comments) != 3 || events != 3 || p.Comments[1].Text != "It is not: please swap it" {
		t.Fatalf("post: %d comments, %d comment events", len(p.Comments), events)
	}

	// Step 2 opens: a comment then goes to the PR channel's request thread.
	s.click("UMAYA", "approve", mayaReq)
	prReq := s.request("CPR", 1, 2)
	comment(ines, "Swapped in revision 1, thanks")
	thread(prReq, "Swapped in revision 1, thanks")

	// Pat rejects through Slack's form: the reason is his comment too.
	s.click("UPAT", "reject", prReq)
	var view map[string]any
	s.slack.Eventually("opened the reject modal", func() bool {
		calls := s.slack.Calls("views.open")
		if len(calls) == 1 {
			view, _ = calls[0].JSON["view"].(map[string]any)
		}
		return view != nil
	})
	if code, body, _ := s.interact(slackfake.Submit(slackTeam, "UPAT", view, "V9", csslack.RejectReasonBlock, csslack.RejectReasonAction,
		"Wrong date in the text"), slackSecret, time.Now()); code != 200 {
		t.Fatalf("submission: %d %s", code, body)
	}
	s.waitPost(post.ID, "rejected", func(p cs.Post) bool { return p.Status == cs.PostRejected })
	var all struct{ Items []cs.Comment }
	s.slack.Eventually("recorded the rejection's reason as a comment", func() bool {
		all.Items = nil
		s.must(200, ines, "GET", s.org("/posts/"+post.ID+"/comments"), nil, &all)
		last := all.Items[len(all.Items)-1]
		return last.Text == "Wrong date in the text" && last.AuthorID == s.members["Pat"].memberID && last.Source == cs.SourceSlack
	})

	// Comments are rate-limited per member like decisions: a burst of 10.
	limited := 0
	for i := range 12 {
		var prob problemBody
		if code := s.do(eddie, "POST", s.org("/posts/"+post.ID+"/comments"), map[string]any{"text": fmt.Sprint("flood ", i)}, &prob); code == 429 {
			limited++
		} else if code != 201 {
			t.Fatalf("comment %d: %d %+v", i, code, prob)
		}
	}
	if limited == 0 {
		t.Fatal("12 comments at once were all taken")
	}
}

// TestApprovalReportFromWorkflowEvents: the turnaround report reads the
// events a real workflow recorded: Maya and Pat approve steps 1 and 2, Eddie
// rejects step 3; then each step has one decision by its approver, step 3's
// a rejection, with times from each step's opening.
func TestApprovalReportFromWorkflowEvents(t *testing.T) {
	e := newEnv(t)
	acct := e.setupThreeLevels()
	var post cs.Post
	e.must(201, e.members["Ines"].token, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "Reported"}, &post)
	e.approve("Maya", post.ID, 1)
	e.approve("Pat", post.ID, 1)
	e.must(200, e.members["Eddie"].token, "POST", e.org("/posts/"+post.ID+"/reject"), map[string]any{"revision": 1, "note": "no"}, nil)
	e.waitPost(post.ID, "rejected", func(p cs.Post) bool { return p.Status == cs.PostRejected })

	var r struct {
		Steps []struct {
			Step, Opened, Decisions, Approvals, Rejections int
			Median                                         *float64 `json:"median_seconds"`
		}
		Approvers []struct {
			MemberID                    string `json:"member_id"`
			Name                        string
			Step, Decisions, Rejections int
		}
	}
	e.must(200, e.owner, "GET", e.org("/reports/approvals"), nil, &r)
	if len(r.Steps) != 3 || len(r.Approvers) != 3 {
		t.Fatalf("report: %+v", r)
	}
	for i, who := range []string{"Maya", "Pat", "Eddie"} {
		s, a := r.Steps[i], r.Approvers[i]
		if s.Step != i+1 || s.Opened != 1 || s.Decisions != 1 || s.Median == nil || *s.Median < 0 || *s.Median > 60 {
			t.Errorf("step %d: %+v", i+1, s)
		}
		if a.Step != i+1 || a.MemberID != e.members[who].memberID || a.Name != who || a.Decisions != 1 {
			t.Errorf("approver of step %d: %+v, want %s", i+1, a, who)
		}
	}
	if r.Steps[2].Rejections != 1 || r.Approvers[2].Rejections != 1 || r.Steps[0].Approvals != 1 {
		t.Errorf("rejections: %+v", r)
	}
}
