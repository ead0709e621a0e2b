package publish

import (
	"context"
	"fmt"
	"log/slog"

	cs "github.com/countersign/countersign"
)

// Log is the `log` network: the post goes to the process log and gets a
// local URL. It is the dev default and needs no credentials.
type Log struct {
	Logger    *slog.Logger
	PublicURL string
}

// Publish logs the post.
func (l Log) Publish(ctx context.Context, r Request) (Result, error) {
	l.Logger.InfoContext(ctx, "post published to the log network",
		"org", r.OrgID, "post_id", r.PostID, "workflow_id", cs.WorkflowID(r.PostID), "revision", r.Revision,
		"account", r.Account.Handle, "text", r.Text)
	return Result{
		ExternalID:  r.IdemKey,
		ExternalURL: fmt.Sprintf("%s/v1/orgs/%s/posts/%s", l.PublicURL, r.OrgID, r.PostID),
	}, nil
}
