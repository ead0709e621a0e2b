package store

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"

	cs "github.com/countersign/countersign"
)

// Publication is the record of publishing one post revision (SPEC §5).
type Publication struct {
	PostID      string
	Revision    int
	Network     string
	IdemKey     string // what the network deduplicates on; fixed by the first attempt
	Status      string // attempting, published, failed, unknown
	Attempts    int    // including the one being started
	ExternalID  string
	ExternalURL string
	LastError   string
	// InDoubt is true when an earlier attempt may have reached the network
	// and its outcome was never settled: this attempt must settle it before
	// posting again.
	InDoubt bool
	// Evidence is what the attempts did and saw (appended by each attempt).
	Evidence string
	// StartedAt is when the first attempt began.
	StartedAt time.Time
	// Uploading is true while the revision's media are being uploaded and
	// the post was not sent yet (see StartPosting).
	Uploading bool
}

// Publication statuses.
const (
	PubAttempting = "attempting"
	PubPublished  = "published"
	PubFailed     = "failed"
	PubUnknown    = "unknown"
)

// maxEvidence bounds the evidence kept per publication (the newest is kept).
const maxEvidence = 16000

const publicationColumns = `post_id, revision, network, idem_key, status, attempts, coalesce(external_id, ''),
	coalesce(external_url, ''), coalesce(last_error, ''), in_flight, coalesce(evidence, ''), created_at, uploading`

func scanPublication(r pgx.Row) (Publication, error) {
	var p Publication
	err := r.Scan(&p.PostID, &p.Revision, &p.Network, &p.IdemKey, &p.Status, &p.Attempts, &p.ExternalID,
		&p.ExternalURL, &p.LastError, &p.InDoubt, &p.Evidence, &p.StartedAt, &p.Uploading)
	// An attempt still uploading never sent the post.
	p.InDoubt = p.InDoubt && !p.Uploading
	return p, err
}

// BeginPublication records an attempt to publish a revision before the
// network is called, and returns the record. The first attempt stores
// idemKey; later ones keep it (so a key chosen at random, like Bluesky's
// record key, is chosen once). InDoubt says whether an earlier attempt was
// left unsettled (crashed, timed out, or failed after it may have reached
// the network). A publication that is already settled (published, failed,
// unknown) is returned unchanged: the caller reports its outcome again.
//
// withMedia starts the first attempt in the uploading stage: until
// StartPosting, an attempt that ends (or crashes) leaves no doubt about the
// post, since uploaded media alone are not published.
func (s *Store) BeginPublication(ctx context.Context, postID string, revision int, network, idemKey string, withMedia bool) (Publication, error) {
	var p Publication
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		p, err = scanPublication(tx.QueryRow(ctx, `
			INSERT INTO publications (post_id, revision, network, idem_key, status, attempts, in_flight, uploading)
			VALUES ($1, $2, $3, $4, 'attempting', 1, true, $5)
			ON CONFLICT (post_id, revision) DO NOTHING
			RETURNING `+publicationColumns, postID, revision, network, idemKey, withMedia))
		if !errors.Is(err, pgx.ErrNoRows) {
			p.InDoubt = false // the first attempt: nothing earlier to doubt
			return err
		}
		cur, err := scanPublication(tx.QueryRow(ctx, `SELECT `+publicationColumns+` FROM publications
			WHERE post_id = $1 AND revision = $2 FOR UPDATE`, postID, revision))
		if err != nil || cur.Status != PubAttempting {
			p = cur
			return err
		}
		p, err = scanPublication(tx.QueryRow(ctx, `UPDATE publications SET attempts = attempts + 1,
				in_flight = true, updated_at = now()
			WHERE post_id = $1 AND revision = $2
			RETURNING `+publicationColumns, postID, revision))
		p.InDoubt = cur.InDoubt
		return err
	})
	return p, err
}

// Publication returns the publication record of a revision (pgx.ErrNoRows
// wrapped in a not-found error when no attempt was made).
func (s *Store) Publication(ctx context.Context, postID string, revision int) (Publication, error) {
	if !validID(postID) {
		return Publication{}, notFound("publication")
	}
	p, err := scanPublication(s.pool.QueryRow(ctx, `SELECT `+publicationColumns+` FROM publications
		WHERE post_id = $1 AND revision = $2`, postID, revision))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, notFound("publication")
	}
	return p, err
}

// FinishPublication records the settled outcome of a publication (status
// published, failed or unknown) and appends the attempt's evidence. It only
// changes a publication still attempting: a settled outcome is final.
func (s *Store) FinishPublication(ctx context.Context, p Publication) error {
	_, err := s.pool.Exec(ctx, `UPDATE publications SET status = $3, external_id = nullif($4, ''),
		external_url = nullif($5, ''), last_error = nullif($6, ''), in_flight = false,
		evidence = nullif(right(coalesce(evidence, '') || $7, $8), ''), updated_at = now()
		WHERE post_id = $1 AND revision = $2 AND status = 'attempting'`,
		p.PostID, p.Revision, p.Status, p.ExternalID, p.ExternalURL, p.LastError, p.Evidence, maxEvidence)
	return err
}

// NotePublicationError records the error and evidence of an attempt that
// will be retried. inDoubt is whether the network may now hold the post
// (false only when the attempt surely did not post and settled any earlier
// doubt): the next attempt is told so.
func (s *Store) NotePublicationError(ctx context.Context, postID string, revision int, msg, evidence string, inDoubt bool) error {
	_, err := s.pool.Exec(ctx, `UPDATE publications SET last_error = nullif($3, ''), in_flight = $5,
		evidence = nullif(right(coalesce(evidence, '') || $4, $6), ''), updated_at = now()
		WHERE post_id = $1 AND revision = $2 AND status = 'attempting'`,
		postID, revision, msg, evidence, inDoubt, maxEvidence)
	return err
}

// RefreshAccountCredentials replaces an account's credentials through
// refresh, one refresher at a time per account: it locks the account, opens
// its current credentials and passes them to refresh, then seals and saves
// what refresh returns. refresh returns nil to keep the current ones (for
// example when another worker refreshed them meanwhile). It returns the
// credentials now stored. Like AccountCredentials, for the publisher only.
func (s *Store) RefreshAccountCredentials(ctx context.Context, orgID, accountID string,
	refresh func(current map[string]string) (map[string]string, error)) (map[string]string, error) {
	if !validID(orgID) || !validID(accountID) {
		return nil, notFound("account")
	}
	var out map[string]string
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var sealed []byte
		var network cs.Network
		var settings map[string]string
		var scheme int
		err := tx.QueryRow(ctx, `SELECT network, settings, credentials_scheme, credentials FROM accounts
			WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL
			FOR UPDATE`, orgID, accountID).Scan(&network, &settings, &scheme, &sealed)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("account")
		}
		if err != nil {
			return err
		}
		cur, err := s.openCredentials(accountID, network, settings, scheme, sealed)
		if err != nil {
			return err
		}
		next, err := refresh(maps.Clone(cur))
		if err != nil {
			return err
		}
		if next == nil {
			out = cur
			return nil
		}
		resealed, err := s.seal(accountID, network, settings, next)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE accounts SET credentials = $3, updated_at = now()
			WHERE org_id = $1 AND id = $2`, orgID, accountID, resealed); err != nil {
			return err
		}
		out = next
		return nil
	})
	return out, err
}
