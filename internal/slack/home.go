package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	slackgo "github.com/slack-go/slack"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
)

// The App Home tab lists what waits for a Slack user now, in every org they
// are a member of, with the approval requests' buttons (a click is handled
// as one on a request). It is published with views.publish when the user
// opens the tab (the app_home_opened event, POST /slack/events or Socket
// Mode) and again, for users who have opened it once, whenever a post that
// awaits or awaited them changes.

// homeStore is what the tab reads.
type homeStore interface {
	SlackUserMembers(ctx context.Context, slackUserID string, opened bool) ([]store.SlackHomeMember, error)
	ListPosts(ctx context.Context, orgID string, f store.PostFilter, p cs.Page) ([]cs.Post, error)
	Account(ctx context.Context, orgID, accountID string) (cs.Account, error)
	SlackMembers(ctx context.Context, orgID string, ids []string) (map[string]store.SlackMember, error)
}

var _ homeStore = (*store.Store)(nil)

// homeLimit bounds the posts listed per org: Slack views hold 100 blocks.
const homeLimit = 15

// HomeOpened publishes slackUserID's App Home tab and remembers that they
// look at it. It runs in the background (an event is acknowledged first).
func (s *Service) HomeOpened(slackUserID string) {
	s.Go(func(ctx context.Context) {
		if err := s.publishHome(ctx, slackUserID, true); err != nil {
			s.logger.Warn("slack: could not publish the App Home tab", "slack_user_id", slackUserID, "error", err)
		}
	})
}

// refreshHomes republishes the tab of each member who has opened it.
func (s *Service) refreshHomes(ctx context.Context, members map[string]store.SlackMember) error {
	for _, m := range members {
		if !m.HomeOpened || m.SlackUserID == "" {
			continue
		}
		if err := s.publishHome(ctx, m.SlackUserID, false); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) publishHome(ctx context.Context, slackUserID string, opened bool) error {
	hs, ok := s.store.(homeStore)
	if !ok || s.api == nil {
		return nil
	}
	memberships, err := hs.SlackUserMembers(ctx, slackUserID, opened)
	if err != nil {
		return err
	}
	blocks := []slackgo.Block{slackgo.NewHeaderBlock(plain("Waiting for your approval"))}
	total := 0
	for _, ms := range memberships {
		posts, err := hs.ListPosts(ctx, ms.Member.OrgID, store.PostFilter{Status: cs.PostPendingApproval, AwaitingMember: ms.Member.ID}, cs.Page{Limit: homeLimit})
		if err != nil {
			return err
		}
		if len(posts) == 0 {
			continue
		}
		total += len(posts)
		if len(memberships) > 1 {
			blocks = append(blocks, slackgo.NewContextBlock("", mrkdwn("*"+escape(ms.OrgName)+"*")))
		}
		// One look-up per org for the authors, one per account.
		var authorIDs []string
		for _, p := range posts {
			authorIDs = append(authorIDs, p.AuthorID)
		}
		authors, err := hs.SlackMembers(ctx, ms.Member.OrgID, authorIDs)
		if err != nil {
			return err
		}
		accounts := map[string]cs.Account{}
		for _, p := range posts {
			acct, ok := accounts[p.AccountID]
			if !ok {
				if acct, err = hs.Account(ctx, p.OrgID, p.AccountID); err != nil {
					return err
				}
				accounts[p.AccountID] = acct
			}
			blocks = append(blocks, homeItem(p, acct, authors[p.AuthorID].Name)...)
		}
	}
	if total == 0 {
		blocks = append(blocks, slackgo.NewSectionBlock(mrkdwn("Nothing waits for you. New approval requests appear here and in your messages."), nil, nil))
	}
	view := slackgo.HomeTabViewRequest{Type: slackgo.VTHomeTab, Blocks: slackgo.Blocks{BlockSet: blocks}}
	_, err = s.api.PublishViewContext(ctx, slackgo.PublishViewContextRequest{UserID: slackUserID, View: view})
	if rl := rateLimited(err); rl != nil {
		return rl
	}
	if err != nil {
		s.logger.Warn("slack: views.publish failed", "slack_user_id", slackUserID, "error", err)
	}
	return nil
}

// homeItem is one post of the tab: who asks, where, the step, the deadline,
// the start of the text, and the buttons of its open step.
func homeItem(p cs.Post, acct cs.Account, author string) []slackgo.Block {
	if author == "" {
		author = "A member"
	}
	line := fmt.Sprintf("*%s* on *@%s* · step %d/%d", escape(author), escape(acct.Handle), p.CurrentStep, p.TotalSteps)
	if len(p.Steps) >= p.CurrentStep && p.CurrentStep > 0 {
		s := p.Steps[p.CurrentStep-1]
		if s.Quorum > 1 {
			line += fmt.Sprintf(" · %d of %d approvals", len(s.Approvals), s.Quorum)
		}
		if s.Deadline != nil {
			line += " · answer by " + when(s.Deadline, acct.Timezone)
		}
	}
	if p.ScheduledAt != nil {
		line += " · publishes " + when(p.ScheduledAt, acct.Timezone)
	}
	text := p.Text
	if r := []rune(text); len(r) > 280 {
		text = string(r[:280]) + "…"
	}
	buttons := decideButtons(Target{PostID: p.ID, Revision: p.Revision, Step: p.CurrentStep})
	buttons.BlockID = BlockDecide + ":" + p.ID // block ids are unique within a view
	return []slackgo.Block{
		slackgo.NewDividerBlock(),
		slackgo.NewSectionBlock(mrkdwn(line+"\n"+quote(strings.TrimSpace(text))), nil, nil),
		buttons,
	}
}

// Event is the part of an Events API request Countersign reads.
type Event struct {
	Type      string `json:"type"` // url_verification or event_callback
	Challenge string `json:"challenge"`
	Event     struct {
		Type string `json:"type"` // app_home_opened
		User string `json:"user"`
		Tab  string `json:"tab"`
	} `json:"event"`
}

// ParseEvent decodes an Events API body (already verified).
func ParseEvent(body []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(body, &e); err != nil {
		return e, fmt.Errorf("the body is not an Events API request: %w", err)
	}
	return e, nil
}

// HandleEvent acts on a verified event callback: opening the App Home tab
// publishes it. Other events are ignored.
func (s *Service) HandleEvent(e Event) {
	if e.Type != "event_callback" {
		return
	}
	if e.Event.Type == "app_home_opened" && e.Event.Tab == "home" && e.Event.User != "" {
		s.HomeOpened(e.Event.User)
	}
}
