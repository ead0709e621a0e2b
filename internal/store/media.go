package store

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	cs "github.com/countersign/countersign"
)

// StoredMedia is a media row: the description and where its bytes are.
type StoredMedia struct {
	cs.Media
	BlobKey    string
	UploadedBy string
	Attached   bool
}

const mediaColumns = `id, org_id, content_type, bytes, width, height, sha256, created_at, blob_key, uploaded_by, attached_at IS NOT NULL`

func scanMedia(r pgx.Row) (StoredMedia, error) {
	var m StoredMedia
	err := r.Scan(&m.ID, &m.OrgID, &m.ContentType, &m.Bytes, &m.Width, &m.Height, &m.SHA256, &m.CreatedAt,
		&m.BlobKey, &m.UploadedBy, &m.Attached)
	return m, err
}

// CreateMedia records an upload (its id chosen by the caller, who builds
// the blob key from it) before its bytes are stored: a row whose bytes
// never arrived is swept like any unattached upload.
func (s *Store) CreateMedia(ctx context.Context, m StoredMedia) (cs.Media, error) {
	if !validID(m.ID) || !validID(m.OrgID) || !validID(m.UploadedBy) {
		return cs.Media{}, cs.Errorf(cs.EINVALID, "invalid media ids")
	}
	err := s.pool.QueryRow(ctx, `INSERT INTO media (id, org_id, uploaded_by, content_type, bytes, width, height, sha256, blob_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING created_at`,
		m.ID, m.OrgID, m.UploadedBy, m.ContentType, m.Bytes, m.Width, m.Height, m.SHA256, m.BlobKey).Scan(&m.CreatedAt)
	return m.Media, err
}

// Media returns an upload of the org; another org's is not found.
func (s *Store) Media(ctx context.Context, orgID, id string) (StoredMedia, error) {
	if !validID(orgID) || !validID(id) {
		return StoredMedia{}, notFound("media")
	}
	m, err := scanMedia(s.pool.QueryRow(ctx, `SELECT `+mediaColumns+` FROM media WHERE org_id = $1 AND id = $2`, orgID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return m, notFound("media")
	}
	return m, err
}

// MediaByIDs returns the org's uploads among ids, by id; ids that are not
// the org's (or not ids) are simply absent.
func (s *Store) MediaByIDs(ctx context.Context, orgID string, ids []string) (map[string]StoredMedia, error) {
	out := map[string]StoredMedia{}
	valid := validIDs(ids)
	if len(valid) == 0 || !validID(orgID) {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+mediaColumns+` FROM media WHERE org_id = $1 AND id = ANY($2::uuid[])`, orgID, valid)
	if err != nil {
		return nil, err
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StoredMedia, error) { return scanMedia(r) })
	for _, m := range list {
		out[m.ID] = m
	}
	return out, err
}

// AttachMedia marks the org's uploads as used by a post, so the sweep keeps
// them, and returns the ids that are not (or no longer) the org's uploads.
func (s *Store) AttachMedia(ctx context.Context, orgID string, ids []string) (missing []string, err error) {
	if len(ids) == 0 {
		return nil, nil
	}
	for _, id := range ids {
		if !validID(id) {
			return []string{id}, nil
		}
	}
	rows, err := s.pool.Query(ctx, `UPDATE media SET attached_at = coalesce(attached_at, now())
		WHERE org_id = $1 AND id = ANY($2::uuid[]) RETURNING id`, orgID, ids)
	if err != nil {
		return nil, err
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if !slices.Contains(got, id) {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// UnattachedMedia lists up to max uploads never attached to a post and
// created before before, oldest first (on media_unattached_idx).
func (s *Store) UnattachedMedia(ctx context.Context, before time.Time, max int) ([]StoredMedia, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+mediaColumns+` FROM media WHERE attached_at IS NULL AND created_at < $1
		ORDER BY created_at LIMIT $2`, before, max)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (StoredMedia, error) { return scanMedia(r) })
}

// DeleteUnattachedMedia removes an upload's row if it is still unattached;
// false when a post attached it meanwhile (its bytes must stay).
func (s *Store) DeleteUnattachedMedia(ctx context.Context, id string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM media WHERE id = $1 AND attached_at IS NULL`, id)
	return tag.RowsAffected() == 1, err
}

// MayComposeSomewhere reports whether the member may compose on at least
// one account of the org (who may upload media): admins and owners always,
// others through a grant of their own or of a team.
func (s *Store) MayComposeSomewhere(ctx context.Context, orgID, memberID string) (bool, error) {
	if !validID(orgID) || !validID(memberID) {
		return false, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT g.account_id FROM account_grants g
		JOIN accounts a ON a.org_id = g.org_id AND a.id = g.account_id AND a.deleted_at IS NULL
		WHERE g.org_id = $1 AND (g.member_id = $2 OR g.team_id IN (SELECT team_id FROM team_members WHERE org_id = $1 AND member_id = $2))
		UNION SELECT a.id FROM accounts a JOIN members m ON m.org_id = a.org_id AND m.id = $2 AND m.removed_at IS NULL
		WHERE a.org_id = $1 AND a.deleted_at IS NULL AND m.org_role IN ('owner', 'admin')`, orgID, memberID)
	if err != nil {
		return false, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, err
	}
	for _, id := range ids {
		r, err := s.EffectiveRight(ctx, orgID, id, memberID)
		if cs.ErrorCode(err) == cs.ENOTFOUND {
			continue
		}
		if err != nil {
			return false, err
		}
		if r.Compose {
			return true, nil
		}
	}
	return false, nil
}
