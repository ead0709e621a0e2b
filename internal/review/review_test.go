package review

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
	"time"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
	"github.com/countersign/countersign/internal/secrets"
)

const (
	orgID  = "0b7e8a52-5d36-4c43-9a50-1f4f7a6f0c11"
	postID = "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f"
)

var cleo = cs.ExternalReviewer{Email: "cleo@client.test", Name: "Cleo Client"}

type fakeStore struct {
	post  cs.Post
	chain cs.Chain
}

func (f *fakeStore) Post(_ context.Context, org, id string) (cs.Post, error) {
	if org != f.post.OrgID || id != f.post.ID {
		return cs.Post{}, cs.Errorf(cs.ENOTFOUND, "no such post")
	}
	return f.post, nil
}
func (f *fakeStore) PostChain(context.Context, string) (cs.Chain, error) { return f.chain, nil }
func (f *fakeStore) Account(context.Context, string, string) (cs.Account, error) {
	return cs.Account{Handle: "acme", DisplayName: "Acme", Network: cs.NetworkX, Timezone: "America/New_York"}, nil
}

func fixture(t *testing.T) (*Pages, *fakeStore, *secrets.ReviewLinks) {
	links, err := secrets.NewReviewLinks(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2030, 1, 15, 14, 0, 0, 0, time.UTC)
	st := &fakeStore{
		post: cs.Post{ID: postID, OrgID: orgID, AccountID: "a", Text: "Hi <b>there</b> https://acme.example/x", Revision: 2,
			Status: cs.PostPendingApproval, CurrentStep: 2, TotalSteps: 2, ScheduledAt: &at,
			MediaURLs: []string{"https://img.example/1.png"}, Media: []cs.PostImage{{PostMedia: cs.PostMedia{ID: "m1", Alt: "Our logo <red>"}}},
			Steps: []cs.StepState{{Index: 1, Status: cs.StepApproved}, {Index: 2, Status: cs.StepOpen}}},
		chain: cs.Chain{Steps: []cs.ChainStep{{Approver: cs.Approver{Role: "approvers"}}, {Approver: cs.Approver{External: &cleo}}}},
	}
	now := time.Date(2029, 12, 1, 0, 0, 0, 0, time.UTC)
	return &Pages{Links: links, Store: st, Now: func() time.Time { return now }}, st, links
}

func mint(t *testing.T, links *secrets.ReviewLinks, rev, step int, email string, exp time.Time) string {
	tok, err := links.Mint(secrets.ReviewLink{OrgID: orgID, PostID: postID, Revision: rev, Step: step, Email: email, Expires: exp})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestOpenAndPage(t *testing.T) {
	p, _, links := fixture(t)
	p.MediaURL = func(org, id string) string {
		return "https://cs.example/v1/orgs/" + org + "/media/" + id + "?expires=1&signature=s"
	}
	r, err := p.Open(context.Background(), mint(t, links, 2, 2, "Cleo@Client.test", time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	page := string(p.Page(context.Background(), r, "", ""))
	for _, want := range []string{`id="handle">acme<`, `id="step">2/2<`, "Hi &lt;b&gt;there&lt;/b&gt;", "https://img.example/1.png",
		"/ 280 characters", `<img src="https://cs.example/v1/orgs/` + orgID + `/media/m1?expires=1&amp;signature=s" alt="Our logo &lt;red&gt;"`, "Tuesday 15 January 2030, 09:00 EST (America/New York)", "Hello Cleo Client", `name="note"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(strings.ToLower(page), "<script") || strings.Contains(page, "<b>") {
		t.Fatalf("the page has markup it should not:\n%s", page)
	}
	// The one inline style is the one the CSP allows by hash.
	m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(page)
	h := sha256.Sum256([]byte(m[1]))
	if !strings.Contains(CSP, "'sha256-"+base64.StdEncoding.EncodeToString(h[:])+"'") || strings.Contains(CSP, "script-src") ||
		!strings.Contains(CSP, "frame-ancestors 'none'") {
		t.Fatalf("CSP %q does not allow exactly the page's style", CSP)
	}
}

func TestOpenRefuses(t *testing.T) {
	p, st, links := fixture(t)
	good := mint(t, links, 2, 2, cleo.Email, time.Time{})
	used := st.post
	used.Steps = []cs.StepState{{Index: 1}, {Index: 2, Approvals: []cs.DecisionRecord{{RequestID: secrets.RequestID(good), Decision: "approve"}}}}
	used.CurrentStep, used.Status = 0, cs.PostScheduled
	for _, tc := range []struct {
		name, token string
		post        *cs.Post
		status      int
		title       string
	}{
		{"tampered", flip(good, 60), nil, 404, "not valid"},
		{"tampered mac", flip(good, len(good)-5), nil, 404, "not valid"},
		{"another e-mail", mint(t, links, 2, 2, "eve@client.test", time.Time{}), nil, 404, "not valid"},
		{"a member step", mint(t, links, 2, 1, cleo.Email, time.Time{}), nil, 404, "not valid"},
		{"garbage", "abc", nil, 404, "not valid"},
		{"step 0", zeroStep(good), nil, 404, "not valid"},
		{"expired", mint(t, links, 2, 2, cleo.Email, time.Date(2029, 11, 30, 0, 0, 0, 0, time.UTC)), nil, 410, "expired"},
		{"edited", mint(t, links, 1, 2, cleo.Email, time.Time{}), nil, 410, "edited"},
		{"used", good, &used, 410, "already answered"},
	} {
		saved := st.post
		if tc.post != nil {
			st.post = *tc.post
		}
		_, err := p.Open(context.Background(), tc.token)
		st.post = saved
		pr := AsProblem(err)
		if err == nil || pr.Status != tc.status || !strings.Contains(pr.Title, tc.title) {
			t.Errorf("%s: %v, want %d %q", tc.name, err, tc.status, tc.title)
		}
	}
}

type outbox struct{ mails []cs.Mail }

func (o *outbox) Send(_ context.Context, m cs.Mail) error { o.mails = append(o.mails, m); return nil }

func TestSenderMintsTheLinkInTheMail(t *testing.T) {
	p, st, links := fixture(t)
	box := &outbox{}
	s := &Sender{Links: links, Mailer: box, Accounts: st, PublicURL: "https://cs.example/"}
	exp := time.Date(2029, 12, 3, 0, 0, 0, 0, time.UTC)
	n := activities.Notification{Kind: activities.NotifyStepOpened, PostID: postID, OrgID: orgID, AccountID: "a", Revision: 2,
		Step: 2, TotalSteps: 2, Text: "Hi <b>there</b>", External: &cleo, LinkExpires: &exp}
	if err := s.SendReviewLink(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	m := box.mails[0]
	tok := mint(t, links, 2, 2, cleo.Email, exp)
	if m.To != cleo.Email || !strings.Contains(m.Subject, "acme (step 2/2)") || !strings.Contains(m.Text, "https://cs.example/review/"+tok) ||
		!strings.Contains(m.HTML, "https://cs.example/review/"+tok) || !strings.Contains(m.HTML, "Hi &lt;b&gt;there&lt;/b&gt;") ||
		!strings.Contains(m.Text, "until Sunday 2 December 2029") {
		t.Fatalf("mail: %+v", m)
	}
	if _, err := p.Open(context.Background(), tok); err != nil {
		t.Fatalf("the mailed link does not open: %v", err)
	}
}

// flip changes the token's character at i.
func flip(tok string, i int) string {
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

// zeroStep is tok with its step byte set to 0 (its MAC no longer matches).
func zeroStep(tok string) string {
	payload, mac, _ := strings.Cut(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(payload)
	raw[37] = 0
	return base64.RawURLEncoding.EncodeToString(raw) + "." + mac
}

type commentStore struct{}

func (commentStore) Comments(_ context.Context, _, _ string, p cs.Page) ([]cs.Comment, error) {
	if p.Limit != MaxComments {
		return nil, cs.Errorf(cs.EINVALID, "limit %d", p.Limit)
	}
	at := time.Date(2029, 11, 2, 10, 0, 0, 0, time.UTC)
	return []cs.Comment{{AuthorID: "m1", Text: "Drop the <b> tag?", Revision: 1, CreatedAt: at},
		{AuthorID: "gone", Text: "ok", Revision: 2, CreatedAt: at}}, nil
}

func (commentStore) Member(_ context.Context, _, id string) (cs.Member, error) {
	if id == "m1" {
		return cs.Member{Name: "Maya"}, nil
	}
	return cs.Member{}, cs.Errorf(cs.ENOTFOUND, "no such member")
}

func TestPageShowsComments(t *testing.T) {
	p, _, links := fixture(t)
	p.Comments = StoreComments(commentStore{})
	r, err := p.Open(context.Background(), mint(t, links, 2, 2, cleo.Email, time.Time{}))
	if err != nil {
		t.Fatal(err)
	}
	page := string(p.Page(context.Background(), r, "", ""))
	for _, want := range []string{"Maya, revision 1, 2 Nov 10:00 UTC", "Drop the &lt;b&gt; tag?", "A former member, revision 2"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
