package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/slack/slackfake"
)

// Abuse cases of comments (SPEC §2 "Comment") and the turnaround report
// (§6): who may read and write a post's discussion, what a comment may carry
// to Slack, and who may read how long approvals take.

// discussed submits Ines's post (step 1, Maya's, open) and has Maya comment
// on it; it returns the post.
func (e *env) discussed() cs.Post {
	e.t.Helper()
	acct := e.setupThreeLevels()
	var post cs.Post
	e.must(201, e.members["Ines"].token, "POST", e.org("/posts"), map[string]any{"account_id": acct, "text": "Launch day!"}, &post)
	e.must(201, e.members["Maya"].token, "POST", e.org("/posts/"+post.ID+"/comments"), map[string]any{"text": "Looks good to me"}, nil)
	return post
}

// onlyComment checks, as the owner, that the post's discussion is still
// Maya's one comment (nothing was written by the attack).
func (e *env) onlyComment(postID string) {
	e.t.Helper()
	var list struct{ Items []cs.Comment }
	e.must(200, e.owner, "GET", e.org("/posts/"+postID+"/comments"), nil, &list)
	if len(list.Items) != 1 || list.Items[0].Text != "Looks good to me" {
		e.t.Fatalf("the discussion changed: %+v", list.Items)
	}
	var p cs.Post
	e.must(200, e.owner, "GET", e.org("/posts/"+postID), nil, &p)
	n := 0
	for _, ev := range p.Events {
		if ev.Type == cs.EventComment {
			n++
		}
	}
	if n != 1 {
		e.t.Fatalf("%d comment events, want 1", n)
	}
}

// refused asserts a 403 problem that says who may discuss the post.
func refused(t *testing.T, what string, code int, prob problemBody) {
	t.Helper()
	if code != 403 || prob.Code != cs.EFORBIDDEN || !strings.Contains(prob.Detail, "author, editors and above") {
		t.Fatalf("%s: %d %+v, want 403 saying who may", what, code, prob)
	}
}

type problemBody struct {
	Code   string
	Detail string
	Errors []cs.FieldError
}

func init() {
	addAbuse(
		abuseCase{Attacker: "member with no right on the account", Attack: "reads and writes a post's comments", Spec: "§2 Comment",
			Run: func(t *testing.T) {
				e := newEnv(t)
				post := e.discussed()
				mallory := e.invite("Mallory", "member")
				var prob problemBody
				code := e.do(mallory.token, "POST", e.org("/posts/"+post.ID+"/comments"), map[string]any{"text": "spam"}, &prob)
				refused(t, "comment", code, prob)
				prob = problemBody{}
				code = e.do(mallory.token, "GET", e.org("/posts/"+post.ID+"/comments"), nil, &prob)
				refused(t, "list", code, prob)
				var p cs.Post
				e.must(200, mallory.token, "GET", e.org("/posts/"+post.ID), nil, &p)
				for _, ev := range p.Events {
					if ev.Type == cs.EventComment || strings.Contains(ev.Detail, "Looks good") {
						t.Fatalf("the post shows her a comment in its events: %+v", ev)
					}
				}
				if len(p.Comments) != 0 {
					t.Fatalf("the post shows her its comments: %+v", p.Comments)
				}
				e.onlyComment(post.ID)
			}},
		abuseCase{Attacker: "owner of another org", Attack: "comments on a post of org A", Spec: "§2 Comment",
			Run: func(t *testing.T) {
				e := newEnv(t)
				post := e.discussed()
				other, err := e.app.Store.Bootstrap(context.Background(), "Rival", "boss@rival.test", "Rita")
				if err != nil {
					t.Fatal(err)
				}
				for _, path := range []string{e.org("/posts/" + post.ID + "/comments"), "/v1/orgs/" + other.Org.ID + "/posts/" + post.ID + "/comments"} {
					if code := e.do(other.Token, "POST", path, map[string]any{"text": "hi from Rival"}, nil); code != 404 {
						t.Fatalf("POST %s: %d, want 404", path, code)
					}
					if code := e.do(other.Token, "GET", path, nil, nil); code != 404 {
						t.Fatalf("GET %s: %d, want 404", path, code)
					}
				}
				e.onlyComment(post.ID)
			}},
		abuseCase{Attacker: "approver of a later step", Attack: "comments before their step opened", Spec: "§2 Comment",
			Run: func(t *testing.T) {
				e := newEnv(t)
				post := e.discussed()
				// Pat is in the PR team of step 2, with no grant on the account:
				// step 1 is open, so no step has resolved him as eligible yet.
				var prob problemBody
				code := e.do(e.members["Pat"].token, "POST", e.org("/posts/"+post.ID+"/comments"), map[string]any{"text": "early"}, &prob)
				refused(t, "comment", code, prob)
				e.onlyComment(post.ID)
				// Once step 2 opens he is eligible and may.
				e.approve("Maya", post.ID, 1)
				e.waitPost(post.ID, "at step 2", atStep(2))
				e.must(201, e.members["Pat"].token, "POST", e.org("/posts/"+post.ID+"/comments"), map[string]any{"text": "now"}, nil)
			}},
		abuseCase{Attacker: "author", Attack: "puts Slack mrkdwn and HTML in a comment", Spec: "§2 Comment",
			Run: func(t *testing.T) {
				s := newSlackEnv(t)
				acct := s.setupSlack()
				var post cs.Post
				s.must(201, s.members["Ines"].token, "POST", s.org("/posts"), map[string]any{"account_id": acct, "text": "Launch day!"}, &post)
				maya := s.request("DMAYA", 1, 1)
				evil := "<!channel> urgent: <https://evil.test/login|re-enter your Slack password> <script>alert(1)</script> & <@UOLIVIA>"
				var c cs.Comment
				s.must(201, s.members["Ines"].token, "POST", s.org("/posts/"+post.ID+"/comments"), map[string]any{"text": evil}, &c)
				if c.Text != evil {
					t.Fatalf("the comment was changed on the way in: %q", c.Text)
				}
				var reply slackfake.Message
				s.slack.Eventually("replied in Maya's thread", func() bool {
					for _, m := range s.slack.Messages() {
						if m.Channel == "DMAYA" && m.ThreadTS == maya.TS && strings.Contains(m.Text, "commented") {
							reply = m
							return true
						}
					}
					return false
				})
				for _, bad := range []string{"<!channel>", "<https://", "<script>", "<@UOLIVIA>"} {
					if strings.Contains(reply.Text, bad) {
						t.Fatalf("the reply carries %q unescaped: %q", bad, reply.Text)
					}
				}
				if !strings.Contains(reply.Text, "&lt;!channel&gt;") || !strings.Contains(reply.Text, "&amp;") {
					t.Fatalf("the reply does not show the text escaped: %q", reply.Text)
				}
			}},
		abuseCase{Attacker: "author", Attack: "posts a comment of 4,001 characters", Spec: "§2 Comment",
			Run: func(t *testing.T) {
				e := newEnv(t)
				post := e.discussed()
				var prob problemBody
				code := e.do(e.members["Ines"].token, "POST", e.org("/posts/"+post.ID+"/comments"), map[string]any{"text": strings.Repeat("é", 4001)}, &prob)
				if code != 422 || len(prob.Errors) != 1 || prob.Errors[0].Field != "text" || !strings.Contains(prob.Errors[0].Message, "4000") {
					t.Fatalf("4,001 characters: %d %+v, want 422 naming the limit", code, prob)
				}
				e.onlyComment(post.ID)
			}},
		abuseCase{Attacker: "editor (not an admin)", Attack: "reads the org's approvals report", Spec: "§6 reports",
			Run: func(t *testing.T) {
				e := newEnv(t)
				e.setupThreeLevels()
				for _, who := range []string{"Eddie", "Ines"} {
					var prob problemBody
					if code := e.do(e.members[who].token, "GET", e.org("/reports/approvals"), nil, &prob); code != 403 || prob.Code != cs.EFORBIDDEN {
						t.Fatalf("%s: %d %+v, want 403", who, code, prob)
					}
				}
				e.must(200, e.owner, "GET", e.org("/reports/approvals"), nil, nil)
			}},
		abuseCase{Attacker: "admin", Attack: "asks for a report over ten years", Spec: "§6 reports",
			Run: func(t *testing.T) {
				e := newEnv(t)
				e.setupThreeLevels()
				to := time.Now().UTC()
				from := to.AddDate(-10, 0, 0)
				var prob problemBody
				code := e.do(e.owner, "GET", e.org("/reports/approvals?from="+from.Format(time.RFC3339)+"&to="+to.Format(time.RFC3339)), nil, &prob)
				if code != 422 || len(prob.Errors) != 1 || !strings.Contains(prob.Errors[0].Message, "366 days") {
					t.Fatalf("ten years: %d %+v, want 422 naming the limit", code, prob)
				}
			}},
	)
}
