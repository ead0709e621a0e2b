package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/activities"
)

// NewPost is a submission: what the workflow starts from.
type NewPost struct {
	OrgID     string
	AccountID string
	AuthorID  string
	Text      string
	MediaURLs []string
	// Media are the submission's images (posts.media; null when none).
	Media          []cs.PostMedia
	ScheduledAt    *time.Time
	Chain          cs.Chain
	NeedsApproval  bool
	IdempotencyKey string // optional; a repeat returns the first post
	// RequestHash identifies the request's body (with IdempotencyKey): a
	// replay of the key with another body is refused.
	RequestHash string
}

// EIDEMPOTENCYREUSED is the code of a replayed Idempotency-Key whose body
// differs from the first request's (SPEC §8 Limits).
const EIDEMPOTENCYREUSED = "idempotency_key_reused"

const postColumns = `id, org_id, account_id, author_id, text, media_urls, scheduled_at, revision, content_hash,
	status, current_step, total_steps, coalesce(state, 'null'::jsonb), deadline, coalesce(last_error, ''),
	coalesce(external_id, ''), coalesce(external_url, ''), published_at, created_at, updated_at, coalesce(media, 'null'::jsonb)`

// scanPost reads postColumns, then any extra columns into extra.
func scanPost(r pgx.Row, extra ...any) (cs.Post, error) {
	var p cs.Post
	var state, submitted []byte
	err := r.Scan(append([]any{&p.ID, &p.OrgID, &p.AccountID, &p.AuthorID, &p.Text, &p.MediaURLs, &p.ScheduledAt, &p.Revision,
		&p.ContentHash, &p.Status, &p.CurrentStep, &p.TotalSteps, &state, &p.Deadline, &p.LastError,
		&p.ExternalID, &p.ExternalURL, &p.PublishedAt, &p.CreatedAt, &p.UpdatedAt, &submitted}, extra...)...)
	if err != nil {
		return p, err
	}
	var st *cs.PostState
	if err := json.Unmarshal(state, &st); err != nil {
		return p, fmt.Errorf("decode post state: %w", err)
	}
	if st != nil {
		p.Steps, p.WaitingFor, p.Awaited = st.Steps, st.WaitingFor, st.Awaited
		p.Media = cs.PostImages(p.OrgID, st.Media)
	} else if len(submitted) > 0 { // not mirrored yet: the submission's images
		var m []cs.PostMedia
		if err := json.Unmarshal(submitted, &m); err != nil {
			return p, fmt.Errorf("decode post media: %w", err)
		}
		p.Media = cs.PostImages(p.OrgID, m)
	}
	if p.Media == nil {
		p.Media = []cs.PostImage{}
	}
	if p.Awaited == nil || p.Status != cs.PostPendingApproval {
		p.Awaited = []string{}
	}
	if p.MediaURLs == nil {
		p.MediaURLs = []string{}
	}
	p.WorkflowID = cs.WorkflowID(p.ID)
	return p, nil
}

// CreatePost inserts a submitted post, not yet started (see MarkPostStarted).
// With an idempotency key that this author used before, it returns the first
// post and created=false, or EIDEMPOTENCYREUSED when the first request's body
// was another (keys are scoped to their author: another member's identical
// key is another post).
func (s *Store) CreatePost(ctx context.Context, in NewPost) (p cs.Post, created bool, err error) {
	chain, err := json.Marshal(in.Chain)
	if err != nil {
		return p, false, err
	}
	media := in.MediaURLs
	if media == nil {
		media = []string{}
	}
	status, step := cs.PostScheduled, 0
	if in.NeedsApproval {
		status, step = cs.PostPendingApproval, 1
	}
	var mediaJSON []byte // NULL when none: a post without images is stored as before
	if len(in.Media) > 0 {
		if mediaJSON, err = json.Marshal(in.Media); err != nil {
			return p, false, err
		}
	}
	var key any
	if in.IdempotencyKey != "" {
		key = in.IdempotencyKey
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if key != nil {
			var hash string
			p, err = scanPost(tx.QueryRow(ctx, `SELECT `+postColumns+`, coalesce(request_hash, '') FROM posts
				WHERE org_id = $1 AND author_id = $2 AND idempotency_key = $3`, in.OrgID, in.AuthorID, key), &hash)
			if err == nil {
				if hash != "" && in.RequestHash != "" && hash != in.RequestHash {
					return &cs.Error{Code: EIDEMPOTENCYREUSED, Message: "this Idempotency-Key was used for another request body: send a new key for a new post",
						Fields: []cs.FieldError{{Field: "Idempotency-Key", Message: "was used with another body"}}}
				}
				return nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		created = true
		p, err = scanPost(tx.QueryRow(ctx, `INSERT INTO posts
			(id, org_id, account_id, author_id, text, media_urls, scheduled_at, content_hash, status,
			 current_step, total_steps, chain, needs_approval, idempotency_key, request_hash, media)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, nullif($15, ''), $16)
			RETURNING `+postColumns,
			newID(), in.OrgID, in.AccountID, in.AuthorID, in.Text, media, in.ScheduledAt,
			cs.ContentHash(in.Text, in.MediaURLs, in.Media...), status, step, len(in.Chain.Steps), chain, in.NeedsApproval, key, in.RequestHash, mediaJSON))
		if isUniqueViolation(err) {
			return cs.Errorf(cs.ECONFLICT, "a post with this Idempotency-Key is being created; retry")
		}
		return err
	})
	return p, created, err
}

// MarkPostStarted records that the post's workflow exists.
func (s *Store) MarkPostStarted(ctx context.Context, postID string) error {
	_, err := s.pool.Exec(ctx, `UPDATE posts SET workflow_started_at = now() WHERE id = $1 AND workflow_started_at IS NULL`, postID)
	return err
}

// DeferStart records a failed start of the post's workflow and puts its next
// attempt off, doubling the wait with each failure from base up to max. It
// returns how many attempts failed so far.
func (s *Store) DeferStart(ctx context.Context, postID string, base, max time.Duration) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `UPDATE posts SET start_attempts = start_attempts + 1,
		next_attempt_at = now() + least($2::interval * power(2, least(start_attempts, 20)), $3::interval)
		WHERE id = $1 AND workflow_started_at IS NULL RETURNING start_attempts`,
		postID, base.String(), max.String()).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// DeleteUnstartedPost removes a post whose workflow could not be started, so
// a failed submission leaves nothing behind.
func (s *Store) DeleteUnstartedPost(ctx context.Context, postID string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM posts WHERE id = $1 AND workflow_started_at IS NULL`, postID)
	return err
}

// UnstartedPost is a post whose workflow start was not confirmed.
type UnstartedPost struct {
	NewPost
	ID string
}

// UnstartedPosts lists posts created more than grace ago whose workflow was
// never confirmed started (a process died between insert and start, or the
// start's outcome was unknown), oldest first, leaving out those whose
// back-off (DeferStart) has not passed. There is no look-back window.
func (s *Store) UnstartedPosts(ctx context.Context, grace time.Duration, max int) ([]UnstartedPost, error) {
	rows, err := s.pool.Query(ctx, UnstartedPostsQuery, grace.String(), max)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanUnstarted)
}

// UnstartedPostsQuery is UnstartedPosts's statement ($1 grace, $2 max),
// on the partial index posts_unstarted_idx.
const UnstartedPostsQuery = `SELECT ` + unstartedColumns + `
		FROM posts WHERE workflow_started_at IS NULL AND created_at < now() - $1::interval
		  AND coalesce(next_attempt_at, created_at) <= now()
		ORDER BY coalesce(next_attempt_at, created_at) LIMIT $2`

// UnstartedPostByID returns the post if its workflow start was never
// confirmed; ok is false once it was (or if there is no such post).
func (s *Store) UnstartedPostByID(ctx context.Context, postID string) (u UnstartedPost, ok bool, err error) {
	rows, err := s.pool.Query(ctx, `SELECT `+unstartedColumns+`
		FROM posts WHERE id = $1 AND workflow_started_at IS NULL`, postID)
	if err != nil {
		return u, false, err
	}
	u, err = pgx.CollectExactlyOneRow(rows, scanUnstarted)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, false, nil
	}
	return u, err == nil, err
}

const unstartedColumns = `id, org_id, account_id, author_id, text, media_urls, scheduled_at, chain, needs_approval, media`

func scanUnstarted(r pgx.CollectableRow) (UnstartedPost, error) {
	var u UnstartedPost
	var chain, media []byte
	err := r.Scan(&u.ID, &u.OrgID, &u.AccountID, &u.AuthorID, &u.Text, &u.MediaURLs, &u.ScheduledAt, &chain, &u.NeedsApproval, &media)
	if err == nil {
		err = json.Unmarshal(chain, &u.Chain)
	}
	if err == nil && len(media) > 0 {
		err = json.Unmarshal(media, &u.Media)
	}
	return u, err
}

// Post returns a post of the org.
func (s *Store) Post(ctx context.Context, orgID, postID string) (cs.Post, error) {
	if !validID(postID) {
		return cs.Post{}, notFound("post")
	}
	p, err := scanPost(s.pool.QueryRow(ctx, `SELECT `+postColumns+` FROM posts WHERE org_id = $1 AND id = $2`, orgID, postID))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, notFound("post")
	}
	return p, err
}

// PostFilter narrows ListPosts; empty fields match everything.
type PostFilter struct {
	Status    cs.PostStatus
	AccountID string
	AuthorID  string
	// AwaitingMember lists the posts whose open step waits for this member.
	AwaitingMember string
}

// ListPosts lists the org's posts, newest first, a page at a time (keyset:
// the ids after the cursor). Only the filters that are set become
// predicates, so each combination is its own statement whose plan uses its
// index (docs/benchmark.md, "A million posts"), even once PostgreSQL caches
// a generic plan for it.
func (s *Store) ListPosts(ctx context.Context, orgID string, f PostFilter, p cs.Page) ([]cs.Post, error) {
	sql, args := ListPostsQuery(orgID, f, p)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (cs.Post, error) { return scanPost(r) })
}

// ListPostsQuery is the statement ListPosts runs, with its arguments (the
// bench EXPLAINs it).
func ListPostsQuery(orgID string, f PostFilter, p cs.Page) (string, []any) {
	var b strings.Builder
	args := []any{orgID}
	b.WriteString(`SELECT ` + postColumns + ` FROM posts WHERE org_id = $1`)
	add := func(pred string, v any) {
		args = append(args, v)
		fmt.Fprintf(&b, " AND "+pred, len(args))
	}
	if f.Status != "" {
		add("status = $%d", string(f.Status))
	}
	if f.AccountID != "" {
		add("account_id = $%d", f.AccountID)
	}
	if f.AuthorID != "" {
		add("author_id = $%d", f.AuthorID)
	}
	if f.AwaitingMember != "" {
		// @> (not = ANY) can use the GIN index on awaiting.
		add("awaiting @> ARRAY[$%d::uuid]", f.AwaitingMember)
	}
	if a := after(p); a != nil {
		add("id < $%d", a)
	}
	args = append(args, limit(p))
	fmt.Fprintf(&b, " ORDER BY id DESC LIMIT $%d", len(args))
	return b.String(), args
}

// PostEvents returns a post's audit log in order.
func (s *Store) PostEvents(ctx context.Context, postID string) ([]cs.PostEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, seq, type, coalesce(actor::text, ''), source, revision, content_hash,
		step, reason, detail, at, coalesce(on_behalf_of::text, '') FROM post_events WHERE post_id = $1 ORDER BY seq, at`, postID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (cs.PostEvent, error) {
		var e cs.PostEvent
		err := r.Scan(&e.Key, &e.Seq, &e.Type, &e.Actor, &e.Source, &e.Revision, &e.ContentHash, &e.Step, &e.Reason, &e.Detail, &e.At, &e.OnBehalfOf)
		return e, err
	})
}

// SavePostState mirrors the workflow's state and appends its events in one
// transaction (activities.Mirror). Retries are harmless: events are keyed,
// and a state older than the stored one does not overwrite it.
func (s *Store) SavePostState(ctx context.Context, postID string, st cs.PostState, events []cs.PostEvent) error {
	_, err := s.MirrorPost(ctx, postID, st, events)
	return err
}

// MirrorPost is SavePostState that also returns the events this call stored
// (not those a previous attempt already had), for metrics.
func (s *Store) MirrorPost(ctx context.Context, postID string, st cs.PostState, events []cs.PostEvent) (inserted []cs.PostEvent, err error) {
	// PostgreSQL refuses U+0000 in text and jsonb; a signal sent from the
	// Temporal UI may carry one. Drop it rather than retry forever.
	state, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	state = withoutNUL(state)
	st.Text, st.LastError = noNUL(st.Text), noNUL(st.LastError)
	for i := range st.MediaURLs {
		st.MediaURLs[i] = noNUL(st.MediaURLs[i])
	}
	events = slices.Clone(events)
	for i := range events {
		events[i].Detail, events[i].Reason = noNUL(events[i].Detail), noNUL(events[i].Reason)
	}
	// Who is awaited is the workflow's to say (PostState.Awaited); the
	// awaiting column (GIN-indexed) answers GET /approvals from it.
	awaiting := []string{}
	if st.Status == cs.PostPendingApproval {
		awaiting = append(awaiting, validIDs(st.Awaited)...)
	}
	media := st.MediaURLs
	if media == nil {
		media = []string{}
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		inserted = inserted[:0]
		// One round trip per transition (every workflow task that changes a
		// post saves one): the events, then the post.
		b := &pgx.Batch{}
		for _, e := range events {
			var actor any
			if validID(e.Actor) {
				actor = e.Actor
			}
			var behalf any
			if validID(e.OnBehalfOf) {
				behalf = e.OnBehalfOf
			}
			b.Queue(`INSERT INTO post_events
				(org_id, post_id, key, seq, type, actor, source, revision, content_hash, step, reason, detail, at, on_behalf_of)
				SELECT p.org_id, p.id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 FROM posts p WHERE p.id = $1
				ON CONFLICT (post_id, key) DO NOTHING`,
				postID, e.Key, e.Seq, e.Type, actor, e.Source, e.Revision, e.ContentHash, e.Step, e.Reason, e.Detail, e.At, behalf)
		}
		b.Queue(`UPDATE posts SET
			status = $2, revision = $3, content_hash = $4, text = $5, media_urls = $6, current_step = $7,
			total_steps = $8, scheduled_at = $9, awaiting = $10, deadline = $11, last_error = nullif($12, ''),
			external_id = nullif($13, ''), external_url = nullif($14, ''), published_at = $15,
			state = $16, state_updated_at = $17, updated_at = now(),
			workflow_started_at = coalesce(workflow_started_at, now())
			WHERE id = $1 AND (state_updated_at IS NULL OR state_updated_at <= $17)`,
			postID, st.Status, st.Revision, st.ContentHash, st.Text, media, st.CurrentStep,
			st.TotalSteps, st.ScheduledAt, awaiting, st.Deadline, st.LastError,
			st.ExternalID, st.ExternalURL, st.PublishedAt, state, st.UpdatedAt)
		br := tx.SendBatch(ctx, b)
		for _, e := range events {
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				return fmt.Errorf("append event %s: %w", e.Key, err)
			}
			if tag.RowsAffected() == 1 {
				inserted = append(inserted, e)
			}
		}
		tag, err := br.Exec()
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("mirror post %s: %w", postID, err)
		}
		if tag.RowsAffected() == 0 { // a newer state is stored, or no such post
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM posts WHERE id = $1)`, postID).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				return fmt.Errorf("mirror post %s: %w", postID, pgx.ErrNoRows)
			}
		}
		return nil
	})
	return inserted, err
}

// CountPostsByStatus counts every post by status (for metrics), from the
// per-org counts the triggers of post_counts keep (migration 00009): a scrape
// reads at most orgs x statuses rows, however many posts there are.
func (s *Store) CountPostsByStatus(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, CountPostsByStatusQuery)
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	var status string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&status, &n}, func() error { counts[status] = n; return nil })
	return counts, err
}

// CountPostsByStatusQuery is CountPostsByStatus's statement.
const CountPostsByStatusQuery = `SELECT status, sum(n)::bigint FROM post_counts GROUP BY status`

// AuthorizeDecision implements activities.Directory: the database's half of
// a decision's authorization (member active and eligible for the step now).
func (s *Store) AuthorizeDecision(ctx context.Context, req activities.AuthorizeRequest) (activities.AuthorizeResult, error) {
	if d := req.Decision; d != nil && d.External != "" {
		return s.authorizeExternal(ctx, req.OrgID, d.External)
	}
	if req.OnBehalfOf != "" {
		return s.authorizeDelegate(ctx, req)
	}
	reason, err := s.CheckApprover(ctx, req.OrgID, req.AccountID, req.MemberID, req.Approver, req.FallbackTeam)
	if err != nil {
		return activities.AuthorizeResult{}, err
	}
	return activities.AuthorizeResult{Allowed: reason == "", Reason: reason}, nil
}

// authorizeExternal checks an external reviewer's decision (its MAC and its
// step are checked already): the e-mail must not be a member's of the org
// now. A member decides as a member, under every rule of the chain; a link
// sent before they joined does not let them approve as an outsider.
func (s *Store) authorizeExternal(ctx context.Context, orgID, email string) (activities.AuthorizeResult, error) {
	var member bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM members m JOIN users u ON u.id = m.user_id
		WHERE m.org_id = $1 AND m.removed_at IS NULL AND lower(u.email) = lower($2))`, orgID, email).Scan(&member)
	if err != nil {
		return activities.AuthorizeResult{}, err
	}
	if member {
		return activities.AuthorizeResult{Reason: "the external reviewer's e-mail now belongs to a member of the organization"}, nil
	}
	return activities.AuthorizeResult{Allowed: true}, nil
}

// PostChain returns the approval chain snapshot the post was submitted with.
func (s *Store) PostChain(ctx context.Context, postID string) (cs.Chain, error) {
	var c cs.Chain
	var raw []byte
	if err := s.pool.QueryRow(ctx, `SELECT chain FROM posts WHERE id = $1`, postID).Scan(&raw); err != nil {
		return c, err
	}
	return c, json.Unmarshal(raw, &c)
}

// OpenPost is a post whose mirror says its workflow still runs.
type OpenPost struct {
	ID, OrgID string
}

// OpenPosts pages through every started post whose mirrored state is not
// closed and has not changed for grace, in id order after afterID ("" for
// the first page). There is no look-back window.
func (s *Store) OpenPosts(ctx context.Context, grace time.Duration, afterID string, max int) ([]OpenPost, error) {
	var after any
	if validID(afterID) {
		after = afterID
	}
	rows, err := s.pool.Query(ctx, OpenPostsQuery, grace.String(), after, max)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (OpenPost, error) {
		var p OpenPost
		return p, r.Scan(&p.ID, &p.OrgID)
	})
}

// OpenPostsQuery is OpenPosts's statement ($1 grace, $2 after, $3 max). Its
// first two predicates are posts_open_idx's, which holds only these posts.
const OpenPostsQuery = `SELECT id, org_id FROM posts
		WHERE workflow_started_at IS NOT NULL
		  AND NOT coalesce((state->>'closed')::boolean, false)
		  AND updated_at < now() - $1::interval
		  AND ($2::uuid IS NULL OR id > $2)
		ORDER BY id LIMIT $3`

// FlagPost marks a post needs_attention with the reason, and records it in
// the audit log: for a workflow that ended without recording its end.
func (s *Store) FlagPost(ctx context.Context, postID, reason string) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		var orgID, hash string
		var rev, seq int
		if err := tx.QueryRow(ctx, `SELECT org_id, revision, content_hash FROM posts WHERE id = $1 FOR UPDATE`, postID).
			Scan(&orgID, &rev, &hash); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(seq), 0) + 1 FROM post_events WHERE post_id = $1`, postID).Scan(&seq); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO post_events (org_id, post_id, key, seq, type, source, revision, content_hash, reason, detail, at)
			VALUES ($1, $2, $3, $4, $5, 'system', $6, $7, 'workflow_ended', $8, now())`,
			orgID, postID, fmt.Sprintf("reconciler/%d", seq), seq, cs.EventNeedsAttention, rev, hash, reason); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE posts SET status = $2, last_error = $3, awaiting = '{}', updated_at = now(),
			state = jsonb_set(coalesce(state, '{}'), '{closed}', 'true') WHERE id = $1`,
			postID, cs.PostNeedsAttention, reason)
		return err
	})
}

func noNUL(s string) string { return strings.ReplaceAll(s, "\x00", "") }

// withoutNUL drops U+0000 from every string of a JSON document.
func withoutNUL(doc []byte) []byte {
	if !bytes.Contains(doc, []byte(`\u0000`)) {
		return doc
	}
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return doc
	}
	var clean func(any) any
	clean = func(v any) any {
		switch t := v.(type) {
		case string:
			return noNUL(t)
		case []any:
			for i := range t {
				t[i] = clean(t[i])
			}
		case map[string]any:
			for k, x := range t {
				t[k] = clean(x)
			}
		}
		return v
	}
	out, err := json.Marshal(clean(v))
	if err != nil {
		return doc
	}
	return out
}
