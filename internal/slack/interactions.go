package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	slackgo "github.com/slack-go/slack"
)

// This file holds the parts of handling an interaction that do not depend on
// the HTTP API: reading a click, answering the person who clicked, opening
// the reject modal. The API's handler (server/slack.go) decides; the HTTP
// endpoint and Socket Mode both call it.

// Action is a click on an approval request's approve or reject button.
type Action struct {
	Decision string // countersign.DecisionApprove or DecisionReject
	Target   Target
	// ActionTS is Slack's timestamp of this click: two clicks have two, a
	// payload delivered twice has one.
	ActionTS string
}

// ParseAction reads the approve or reject click of a block_actions payload.
func ParseAction(cb slackgo.InteractionCallback) (Action, error) {
	for _, a := range cb.ActionCallback.BlockActions {
		if a == nil || (a.ActionID != ActionApprove && a.ActionID != ActionReject) {
			continue
		}
		t, err := ParseTarget(a.Value)
		if err != nil {
			return Action{}, err
		}
		ts := a.ActionTs
		if ts == "" {
			ts = cb.ActionTs
		}
		return Action{Decision: a.ActionID, Target: t, ActionTS: ts}, nil
	}
	return Action{}, errors.New("no approve or reject action in the payload")
}

// ParseInteraction decodes the form field "payload" of an interaction
// request body (already verified).
func ParseInteraction(body []byte) (slackgo.InteractionCallback, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return slackgo.InteractionCallback{}, fmt.Errorf("the body is not a form: %w", err)
	}
	payload := form.Get("payload")
	if payload == "" {
		return slackgo.InteractionCallback{}, errors.New("the form has no payload")
	}
	var cb slackgo.InteractionCallback
	if err := json.Unmarshal([]byte(payload), &cb); err != nil {
		return cb, fmt.Errorf("the payload is not an interaction: %w", err)
	}
	return cb, nil
}

// Ephemeral shows text to one user only: with chat.postEphemeral in the
// channel the click came from (with a bot token), else through the
// interaction's response_url.
func (s *Service) Ephemeral(ctx context.Context, channelID, userID, responseURL, text string) error {
	if s.HasBot() && channelID != "" && userID != "" {
		_, err := s.api.PostEphemeralContext(ctx, channelID, userID, slackgo.MsgOptionText(text, false))
		if err == nil || responseURL == "" {
			return err
		}
		s.logger.Warn("chat.postEphemeral failed; answering through response_url", "error", err)
	}
	if s.HasBot() && channelID == "" && userID != "" && responseURL == "" {
		// A click in the App Home tab has no channel: answer in a direct
		// message.
		_, _, err := s.api.PostMessageContext(ctx, userID, slackgo.MsgOptionText(text, false))
		return err
	}
	if responseURL == "" {
		return errors.New("nowhere to answer: no bot token or channel, and no response_url")
	}
	return slackgo.PostWebhookContext(ctx, responseURL, &slackgo.WebhookMessage{
		Text: text, ResponseType: slackgo.ResponseTypeEphemeral, ReplaceOriginal: false,
	})
}

// OpenRejectModal opens the modal asking for the reason of a rejection.
func (s *Service) OpenRejectModal(ctx context.Context, triggerID string, meta ModalMeta, postLabel string) error {
	if !s.HasBot() {
		return errors.New("rejecting from Slack needs COUNTERSIGN_SLACK_BOT_TOKEN (views.open)")
	}
	view, err := RejectModal(meta, postLabel)
	if err != nil {
		return err
	}
	_, err = s.api.OpenViewContext(ctx, triggerID, view)
	return err
}

// Interactions are handled in the background by a fixed pool: workersCount
// goroutines take them from a queue of workersQueue. When the queue is full,
// an interaction waits up to workersWait for room (within the 3 s Slack gives
// the acknowledgement); past that it is refused rather than queued without
// bound, and the person is told to try again (BusyText): a click is never
// dropped silently. More goroutines would not answer faster: each holds an
// Update, and more Updates at once only lengthen Temporal's queue (see
// docs/benchmark.md).
const (
	workersCount = 8
	workersQueue = 1024
	workersWait  = 2 * time.Second
)

// ReceivedText ends what a person is told when their decision went as a
// signal (no worker answered in time): it counts once handled.
const ReceivedText = "was received; it counts as soon as Countersign's worker catches up."

// BusyText is what a person is told when their interaction could not be
// taken (the pool's queue stayed full).
const BusyText = "Countersign is too busy to take this right now: it was not counted. Try again in a moment."

// workers is a fixed pool of goroutines with a bounded queue.
type workers struct {
	once sync.Once
	jobs chan func()
	wg   sync.WaitGroup // jobs queued or running
}

// submit queues fn, waiting up to wait for room; it returns false when the
// queue stayed full.
func (w *workers) submit(fn func(), wait time.Duration) bool {
	w.once.Do(func() {
		w.jobs = make(chan func(), workersQueue)
		for range workersCount {
			go func() {
				for job := range w.jobs {
					job()
					w.wg.Done()
				}
			}()
		}
	})
	w.wg.Add(1)
	select {
	case w.jobs <- fn:
		return true
	default:
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case w.jobs <- fn:
			return true
		case <-t.C:
		}
	}
	w.wg.Done()
	return false
}
