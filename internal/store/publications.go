package store

import (
	"context"
)

// Publication is the record of publishing one post revision (SPEC §5).
type Publication struct {
	PostID      string
	Revision    int
	Network     string
	IdemKey     string
	Status      string // attempting, published, failed, unknown
	Attempts    int    // including the one being started
	ExternalID  string
	ExternalURL string
	LastError   string
}

// Publication statuses.
const (
	PubAttempting = "attempting"
	PubPublished  = "published"
	PubFailed     = "failed"
	PubUnknown    = "unknown"
)

// BeginPublication records an attempt to publish a revision before the
// network is called, and returns the record: Attempts > 1 means an earlier
// attempt may have reached the network.
func (s *Store) BeginPublication(ctx context.Context, postID string, revision int, network, idemKey string) (Publication, error) {
	p := Publication{PostID: postID, Revision: revision}
	err := s.pool.QueryRow(ctx, `
		INSERT INTO publications (post_id, revision, network, idem_key, status, attempts)
		VALUES ($1, $2, $3, $4, 'attempting', 1)
		ON CONFLICT (post_id, revision) DO UPDATE SET
			attempts = publications.attempts + CASE WHEN publications.status = 'attempting' THEN 1 ELSE 0 END,
			updated_at = now()
		RETURNING network, idem_key, status, attempts, coalesce(external_id, ''), coalesce(external_url, ''), coalesce(last_error, '')`,
		postID, revision, network, idemKey).Scan(&p.Network, &p.IdemKey, &p.Status, &p.Attempts, &p.ExternalID, &p.ExternalURL, &p.LastError)
	return p, err
}

// FinishPublication records the outcome of a publication.
func (s *Store) FinishPublication(ctx context.Context, p Publication) error {
	_, err := s.pool.Exec(ctx, `UPDATE publications SET status = $3, external_id = nullif($4, ''),
		external_url = nullif($5, ''), last_error = nullif($6, ''), updated_at = now()
		WHERE post_id = $1 AND revision = $2 AND status = 'attempting'`,
		p.PostID, p.Revision, p.Status, p.ExternalID, p.ExternalURL, p.LastError)
	return err
}

// NotePublicationError keeps the last error of an attempt that will be retried.
func (s *Store) NotePublicationError(ctx context.Context, postID string, revision int, msg string) error {
	_, err := s.pool.Exec(ctx, `UPDATE publications SET last_error = $3, updated_at = now()
		WHERE post_id = $1 AND revision = $2`, postID, revision, msg)
	return err
}
