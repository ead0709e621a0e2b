package media

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/blob"
	"github.com/countersign/countersign/internal/store"
)

// Store is the database as the media service uses it (*store.Store).
type Store interface {
	CreateMedia(ctx context.Context, m store.StoredMedia) (cs.Media, error)
	Media(ctx context.Context, orgID, id string) (store.StoredMedia, error)
	MediaByIDs(ctx context.Context, orgID string, ids []string) (map[string]store.StoredMedia, error)
	AttachMedia(ctx context.Context, orgID string, ids []string) (missing []string, err error)
	UnattachedMedia(ctx context.Context, before time.Time, max int) ([]store.StoredMedia, error)
	DeleteUnattachedMedia(ctx context.Context, id string) (bool, error)
	MayComposeSomewhere(ctx context.Context, orgID, memberID string) (bool, error)
}

// Service stores uploads (a row, then the bytes in the blob store), checks
// a post's images, opens them for publishing and sweeps unattached uploads.
type Service struct {
	Store  Store
	Blobs  cs.BlobStore
	Logger *slog.Logger
}

// UnattachedTTL is how long an upload waits to be attached to a post.
const UnattachedTTL = 24 * time.Hour

// BlobKey is where an upload's bytes live: built from ids only.
func BlobKey(orgID, mediaID string) string { return orgID + "/" + mediaID }

// Upload stores an image uploaded by a member: anyone who may compose on
// at least one account of the org.
func (s *Service) Upload(ctx context.Context, me cs.Member, data []byte) (cs.Media, error) {
	ok, err := s.Store.MayComposeSomewhere(ctx, me.OrgID, me.ID)
	if err != nil {
		return cs.Media{}, err
	}
	if !ok {
		return cs.Media{}, cs.Errorf(cs.EFORBIDDEN, "you may not compose on any account of this organization, so you may not upload media")
	}
	info, err := Inspect(data)
	if err != nil {
		return cs.Media{}, err
	}
	sum := sha256.Sum256(data)
	id := uuid.Must(uuid.NewV7()).String()
	m, err := s.Store.CreateMedia(ctx, store.StoredMedia{
		Media: cs.Media{ID: id, OrgID: me.OrgID, ContentType: info.ContentType, Bytes: int64(len(data)),
			Width: info.Width, Height: info.Height, SHA256: hex.EncodeToString(sum[:])},
		BlobKey: BlobKey(me.OrgID, id), UploadedBy: me.ID,
	})
	if err != nil {
		return cs.Media{}, err
	}
	// The row first: bytes whose row is missing could never be found or
	// swept; a row whose bytes never arrived is swept after UnattachedTTL.
	if err := s.Blobs.Put(ctx, BlobKey(me.OrgID, id), bytes.NewReader(data), int64(len(data)), info.ContentType); err != nil {
		s.Store.DeleteUnattachedMedia(context.WithoutCancel(ctx), id) //nolint:errcheck // the sweep removes it otherwise
		return cs.Media{}, fmt.Errorf("store media bytes: %w", err)
	}
	s.storeThumbnail(ctx, m, data)
	return m, nil
}

// storeThumbnail keeps the upload's thumbnail beside its bytes. A failure
// is logged and the upload stands: its thumbnail is then the image itself
// (OpenThumbnail falls back to it).
func (s *Service) storeThumbnail(ctx context.Context, m cs.Media, data []byte) {
	thumb, ct, err := Thumbnail(ctx, data)
	if err == nil {
		err = s.Blobs.Put(ctx, ThumbKey(BlobKey(m.OrgID, m.ID)), bytes.NewReader(thumb), int64(len(thumb)), ct)
	}
	if err != nil {
		s.logger().Warn("no thumbnail for an upload: its thumbnail is the image", "org", m.OrgID, "media_id", m.ID, "error", err)
	}
}

// maxThumbBytes bounds a thumbnail read back (400×400 RGBA PNG is 640 KB
// at worst).
const maxThumbBytes = 4 << 20

// OpenThumbnail opens an image's thumbnail: its description (content type,
// size and hash those of the thumbnail) and its bytes. Uploads without one
// (made before thumbnails, or whose thumbnail failed) answer the image
// itself, with thumb false.
func (s *Service) OpenThumbnail(ctx context.Context, orgID, mediaID string) (m cs.Media, rc io.ReadCloser, thumb bool, err error) {
	sm, err := s.Store.Media(ctx, orgID, mediaID)
	if err != nil {
		return cs.Media{}, nil, false, err
	}
	tr, err := s.Blobs.Get(ctx, ThumbKey(sm.BlobKey))
	if errors.Is(err, blob.ErrNotFound) {
		m, rc, err := s.OpenMedia(ctx, orgID, mediaID)
		return m, rc, false, err
	}
	if err != nil {
		return cs.Media{}, nil, false, err
	}
	defer tr.Close()
	data, err := io.ReadAll(io.LimitReader(tr, maxThumbBytes+1))
	if err != nil {
		return cs.Media{}, nil, false, err
	}
	ct := Sniff(data)
	if len(data) > maxThumbBytes || (ct != PNG && ct != JPEG) {
		return cs.Media{}, nil, false, fmt.Errorf("the thumbnail of media %s is not a thumbnail (%d bytes, %q)", mediaID, len(data), ct)
	}
	sum := sha256.Sum256(data)
	m = sm.Media
	m.ContentType, m.Bytes, m.SHA256 = ct, int64(len(data)), hex.EncodeToString(sum[:])
	return m, io.NopCloser(bytes.NewReader(data)), true, nil
}

// OpenMedia is countersign.MediaSource: an image of the org and its bytes
// (the caller closes them). Another org's image is not found.
func (s *Service) OpenMedia(ctx context.Context, orgID, mediaID string) (cs.Media, io.ReadCloser, error) {
	m, err := s.Store.Media(ctx, orgID, mediaID)
	if err != nil {
		return cs.Media{}, nil, err
	}
	rc, err := s.Blobs.Get(ctx, m.BlobKey)
	if errors.Is(err, blob.ErrNotFound) {
		return cs.Media{}, nil, cs.Errorf(cs.ENOTFOUND, "the bytes of media %s are gone from the blob store", mediaID)
	}
	if err != nil {
		return cs.Media{}, nil, err
	}
	return m.Media, rc, nil
}

// Resolve checks a post's images as sent (ids and alt texts) for the
// network: each must be an upload of the org, none twice, and together they
// must fit the network's limits. It returns them with the hashes of their
// bytes. A 422 names the image and the limit.
func (s *Service) Resolve(ctx context.Context, orgID string, n cs.Network, refs []cs.PostMedia) ([]cs.PostMedia, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	var fields []cs.FieldError
	if len(refs) > MaxPerPost {
		fields = append(fields, cs.FieldError{Field: "media", Message: fmt.Sprintf("at most %d images per post, not %d", MaxPerPost, len(refs))})
		return nil, &cs.Error{Code: cs.EINVALID, Message: "invalid post: " + fields[0].Message, Fields: fields}
	}
	ids := make([]string, len(refs))
	seen := map[string]bool{}
	for i, r := range refs {
		ids[i] = r.ID
		if seen[r.ID] {
			fields = append(fields, cs.FieldError{Field: fmt.Sprintf("media[%d].id", i), Message: "the same image is attached twice"})
		}
		seen[r.ID] = true
	}
	found, err := s.Store.MediaByIDs(ctx, orgID, ids)
	if err != nil {
		return nil, err
	}
	media := make([]cs.Media, len(refs))
	for i, r := range refs {
		m, ok := found[r.ID]
		if !ok { // another org's upload reads exactly like one that does not exist
			fields = append(fields, cs.FieldError{Field: fmt.Sprintf("media[%d].id", i), Message: fmt.Sprintf("no media %q in this organization: upload it with POST /v1/orgs/{org}/media", r.ID)})
			continue
		}
		media[i] = m.Media
	}
	if len(fields) > 0 {
		return nil, &cs.Error{Code: cs.EINVALID, Message: "invalid post: " + fields[0].Message, Fields: fields}
	}
	if err := CheckPost(n, refs, media); err != nil {
		return nil, err
	}
	out := make([]cs.PostMedia, len(refs))
	for i, r := range refs {
		out[i] = cs.PostMedia{ID: media[i].ID, Alt: r.Alt, SHA256: media[i].SHA256}
	}
	return out, nil
}

// Attach marks images as used by a post, before the post is saved, so the
// sweep keeps them; an image swept since Resolve is a 422 naming it.
func (s *Service) Attach(ctx context.Context, orgID string, media []cs.PostMedia) error {
	ids := make([]string, len(media))
	for i, m := range media {
		ids[i] = m.ID
	}
	missing, err := s.Store.AttachMedia(ctx, orgID, ids)
	if err != nil || len(missing) == 0 {
		return err
	}
	return &cs.Error{Code: cs.EINVALID, Message: fmt.Sprintf("media %s was deleted (unattached uploads are kept %s): upload it again", missing[0], UnattachedTTL),
		Fields: []cs.FieldError{{Field: "media", Message: "media " + missing[0] + " no longer exists"}}}
}

// Sweep deletes up to max uploads never attached to a post and older than
// UnattachedTTL at now: the row (only while still unattached), then the
// bytes. Bytes whose delete fails are logged and left behind; no row points
// to them any more.
func (s *Service) Sweep(ctx context.Context, now time.Time, max int) (int, error) {
	stale, err := s.Store.UnattachedMedia(ctx, now.Add(-UnattachedTTL), max)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range stale {
		// Delete the row first, under its "unattached" condition: if a post
		// attached it meanwhile, the row (and so the bytes) stay.
		deleted, err := s.Store.DeleteUnattachedMedia(ctx, m.ID)
		if err != nil {
			return n, err
		}
		if !deleted {
			continue
		}
		if err := s.Blobs.Delete(ctx, m.BlobKey); err != nil {
			s.logger().Warn("delete swept media bytes", "org", m.OrgID, "media_id", m.ID, "error", err)
			continue
		}
		if err := s.Blobs.Delete(ctx, ThumbKey(m.BlobKey)); err != nil { // a missing one is no error
			s.logger().Warn("delete swept media thumbnail", "org", m.OrgID, "media_id", m.ID, "error", err)
		}
		n++
	}
	return n, nil
}

func (s *Service) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}
