package store

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// PublishedMedia is an image of a publication as its network knows it: the
// network's reference (Mastodon or X media id, Bluesky blob), recorded before
// the post is created so a retry reuses it instead of uploading again.
type PublishedMedia struct {
	Position   int    // index in the revision's media
	MediaID    string // the upload's id in Countersign
	SHA256     string // of the bytes that were uploaded
	NetworkRef string
}

// PublicationMedia returns the media references recorded for a revision, in
// order of position.
func (s *Store) PublicationMedia(ctx context.Context, postID string, revision int) ([]PublishedMedia, error) {
	if !validID(postID) {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT position, media_id, sha256, network_ref FROM publication_media
		WHERE post_id = $1 AND revision = $2 ORDER BY position`, postID, revision)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (PublishedMedia, error) {
		var m PublishedMedia
		err := r.Scan(&m.Position, &m.MediaID, &m.SHA256, &m.NetworkRef)
		return m, err
	})
}

// ErrPublicationSettled is returned when media are recorded for a
// publication that is no longer attempting.
var ErrPublicationSettled = errors.New("the publication is no longer attempting")

// RecordPublicationMedia keeps the network's reference for one image of a
// publication still attempting. The first reference recorded for a position
// stays: it is returned, whatever this call proposed (two attempts that
// overlapped both use the first upload).
func (s *Store) RecordPublicationMedia(ctx context.Context, postID string, revision int, m PublishedMedia) (PublishedMedia, error) {
	var out PublishedMedia
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var status string
		err := tx.QueryRow(ctx, `SELECT status FROM publications WHERE post_id = $1 AND revision = $2 FOR UPDATE`,
			postID, revision).Scan(&status)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("publication")
		}
		if err != nil {
			return err
		}
		if status != PubAttempting {
			return ErrPublicationSettled
		}
		if _, err := tx.Exec(ctx, `INSERT INTO publication_media (post_id, revision, position, media_id, sha256, network_ref)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
			postID, revision, m.Position, m.MediaID, m.SHA256, m.NetworkRef); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT position, media_id, sha256, network_ref FROM publication_media
			WHERE post_id = $1 AND revision = $2 AND position = $3`, postID, revision, m.Position).
			Scan(&out.Position, &out.MediaID, &out.SHA256, &out.NetworkRef)
	})
	return out, err
}

// StartPosting ends a publication's uploading stage: every image is recorded
// and the post is about to be sent. From now on an attempt that ends without
// an answer leaves a doubt the next attempt must settle.
func (s *Store) StartPosting(ctx context.Context, postID string, revision int) error {
	tag, err := s.pool.Exec(ctx, `UPDATE publications SET uploading = false, in_flight = true, updated_at = now()
		WHERE post_id = $1 AND revision = $2 AND status = 'attempting'`, postID, revision)
	if err == nil && tag.RowsAffected() == 0 {
		return ErrPublicationSettled
	}
	return err
}
