package publish

import (
	"context"
	"fmt"
	"log/slog"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/store"
)

// Log is the `log` network: the post goes to the process log and gets a
// local URL. It is the dev default and needs no credentials.
type Log struct {
	Logger    *slog.Logger
	PublicURL string
}

// LogImage is an image as the log network lists it.
type LogImage struct {
	ID     string `json:"id"`
	Alt    string `json:"alt"`
	SHA256 string `json:"sha256,omitempty"`
}

// Publish logs the post and its images, which it records with the
// publication as the local record (their own ids: nothing is uploaded).
func (l Log) Publish(ctx context.Context, r Request) (Result, error) {
	images := make([]LogImage, 0, len(r.Images))
	for _, img := range r.Images {
		images = append(images, LogImage{ID: img.ID, Alt: img.Alt, SHA256: img.SHA256})
		if img.Ref != "" || r.media == nil {
			continue
		}
		if _, err := r.media.store.RecordPublicationMedia(ctx, r.PostID, r.Revision, store.PublishedMedia{
			Position: img.Position, MediaID: img.ID, SHA256: img.SHA256, NetworkRef: img.ID}); err != nil {
			return Result{}, NotPosted("could not record image %d: %v", img.Position+1, err)
		}
		r.Note("image %d: %s (alt %q)", img.Position+1, img.ID, oneLine(img.Alt, 80))
	}
	l.Logger.InfoContext(ctx, "post published to the log network",
		"org", r.OrgID, "post_id", r.PostID, "workflow_id", cs.WorkflowID(r.PostID), "revision", r.Revision,
		"account", r.Account.Handle, "text", r.Text, "media", images)
	return Result{
		ExternalID:  r.IdemKey,
		ExternalURL: fmt.Sprintf("%s/v1/orgs/%s/posts/%s", l.PublicURL, r.OrgID, r.PostID),
	}, nil
}
