package countersign

import (
	"context"
	"io"
	"time"
)

// Media is an uploaded image of an organization. Its bytes live in a
// BlobStore; the database keeps this description.
type Media struct {
	ID          string    `json:"id"`
	OrgID       string    `json:"org_id"`
	ContentType string    `json:"content_type"`
	Bytes       int64     `json:"bytes"`
	Width       int       `json:"width"`
	Height      int       `json:"height"`
	SHA256      string    `json:"sha256"`
	CreatedAt   time.Time `json:"created_at"`
}

// PostMedia is an image attached to a post revision as the workflow carries
// it: the upload's id, its alt text and the hash of its bytes, never the
// bytes themselves.
type PostMedia struct {
	ID     string `json:"id"`
	Alt    string `json:"alt"`
	SHA256 string `json:"sha256,omitempty"`
}

// PostImage is an image of a post as the API lists it: the attachment and
// where a member reads the image and its thumbnail (at most 400 pixels a
// side; the image itself for uploads that have none).
type PostImage struct {
	PostMedia
	URL          string `json:"url"`
	ThumbnailURL string `json:"thumbnail_url"`
}

// BlobStore keeps media bytes under opaque keys (a directory, or an
// S3-compatible bucket).
type BlobStore interface {
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	Delete(ctx context.Context, key string) error
}

// MediaSource opens an uploaded image for publishing: its description and
// its bytes (the caller closes them).
type MediaSource interface {
	OpenMedia(ctx context.Context, orgID, mediaID string) (Media, io.ReadCloser, error)
}

// PostImages lists a post's images with the API paths members read them at.
func PostImages(orgID string, media []PostMedia) []PostImage {
	out := make([]PostImage, 0, len(media))
	for _, m := range media {
		u := "/v1/orgs/" + orgID + "/media/" + m.ID
		out = append(out, PostImage{PostMedia: m, URL: u, ThumbnailURL: u + "?size=thumbnail"})
	}
	return out
}
