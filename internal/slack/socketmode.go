package slack

import (
	"context"
	"errors"
	"log/slog"

	"github.com/gorilla/websocket"
	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// InteractionHandler handles one verified interaction and returns what to
// acknowledge it with (nil: an empty acknowledgement; for a modal submission,
// e.g. a *slack.ViewSubmissionResponse with errors). It must return quickly:
// Slack wants the acknowledgement within 3 seconds.
type InteractionHandler func(cb slackgo.InteractionCallback) any

// SocketMode reports whether an app token is configured.
func (s *Service) SocketMode() bool { return s != nil && s.cfg.AppToken != "" }

// RunSocketMode receives interactions over Slack's Socket Mode (for installs
// without a public URL) and hands each to handle — the same handler as the
// HTTP endpoint's — until ctx is done. Socket Mode needs no signing secret:
// the connection itself is authenticated with the app token.
func (s *Service) RunSocketMode(ctx context.Context, handle InteractionHandler) error {
	if !s.SocketMode() {
		return errors.New("slack: socket mode needs COUNTERSIGN_SLACK_APP_TOKEN")
	}
	api := s.api
	if api == nil {
		api = slackgo.New("", apiOptions(s.cfg)...)
	}
	opts := []socketmode.Option{socketmode.OptionLog(slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug))}
	if s.cfg.Egress != nil {
		// The websocket to Slack goes through the egress guard too.
		d := *websocket.DefaultDialer
		d.Proxy = nil
		d.NetDialContext = s.cfg.Egress.DialContext
		opts = append(opts, socketmode.OptionDialer(&d))
	}
	client := socketmode.New(api, opts...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.dispatch(ctx, client, handle)
	}()
	err := client.RunContext(ctx)
	<-done
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (s *Service) dispatch(ctx context.Context, client *socketmode.Client, handle InteractionHandler) {
	for {
		var evt socketmode.Event
		select {
		case <-ctx.Done():
			return
		case evt = <-client.Events:
		}
		switch evt.Type {
		case socketmode.EventTypeConnecting:
			s.logger.Debug("socket mode connecting")
		case socketmode.EventTypeConnected:
			s.logger.Info("socket mode connected")
		case socketmode.EventTypeConnectionError, socketmode.EventTypeInvalidAuth:
			s.logger.Warn("socket mode connection problem", "event", evt.Type, "data", evt.Data)
		case socketmode.EventTypeInteractive:
			if evt.Request == nil {
				continue
			}
			var ack any
			if cb, ok := evt.Data.(slackgo.InteractionCallback); ok {
				ack = handle(cb)
			}
			var err error
			if ack == nil {
				err = client.AckCtx(ctx, evt.Request.EnvelopeID, nil)
			} else {
				err = client.AckCtx(ctx, evt.Request.EnvelopeID, ack)
			}
			if err != nil {
				s.logger.Warn("socket mode acknowledgement failed", "error", err)
			}
		case socketmode.EventTypeEventsAPI, socketmode.EventTypeSlashCommand:
			if evt.Request != nil {
				_ = client.AckCtx(ctx, evt.Request.EnvelopeID, nil)
			}
			if evt.Type == socketmode.EventTypeEventsAPI && evt.Request != nil {
				if e, err := ParseEvent(evt.Request.Payload); err == nil {
					s.HandleEvent(e)
				}
			}
		}
	}
}
