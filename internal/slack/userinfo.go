package slack

import (
	"context"
	"strings"

	cs "github.com/countersign/countersign"
)

// CheckUserEmail asks Slack (users.info) whose Slack user slackUserID is,
// and returns nil only when its e-mail is email (compared
// case-insensitively): the proof a member needs to link a Slack user to
// themselves. Otherwise it returns a 403 error with the reason (never the
// other user's e-mail), or ESLACKUNAVAILABLE when Slack did not answer.
// Without a bot token nothing can be checked, which is a 403 too.
func (s *Service) CheckUserEmail(ctx context.Context, slackUserID, email string) error {
	if !s.HasBot() {
		return cs.Errorf(cs.EFORBIDDEN, "Slack is not configured on this server, so nobody can check that Slack user %s is you: ask an admin to set your Slack id", slackUserID)
	}
	u, err := s.api.GetUserInfoContext(ctx, slackUserID)
	switch {
	case isSlackError(err, "user_not_found", "users_not_found"):
		return cs.Errorf(cs.EFORBIDDEN, "Slack has no user %s", slackUserID)
	case err != nil:
		s.logger.Warn("users.info failed while checking a slack id", "slack_user_id", slackUserID, "error", err)
		return cs.Errorf(cs.ESLACKUNAVAILABLE, "Slack did not answer users.info for %s: try again in a moment", slackUserID)
	case u == nil || u.Deleted || u.IsBot:
		return cs.Errorf(cs.EFORBIDDEN, "Slack user %s is deactivated or a bot", slackUserID)
	case u.Profile.Email == "":
		return cs.Errorf(cs.EFORBIDDEN, "Slack does not give the e-mail of user %s (the app needs the users:read.email scope), so it cannot be checked that it is you: ask an admin", slackUserID)
	case !strings.EqualFold(strings.TrimSpace(u.Profile.Email), strings.TrimSpace(email)):
		return cs.Errorf(cs.EFORBIDDEN, "Slack user %s has another e-mail than yours: you can only link the Slack user whose e-mail is yours (an admin can link any)", slackUserID)
	}
	return nil
}
