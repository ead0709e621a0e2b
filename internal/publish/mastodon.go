package publish

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Mastodon is the `mastodon` network: POST {instance_url}/api/v1/statuses
// with the account's access token (scope write:statuses) and the revision's
// Idempotency-Key. Mastodon answers a repeated key with the status the first
// request created, so a doubt is settled by sending again with the same
// key. Media URLs are published as links in the text (no media upload).
type Mastodon struct {
	Client *http.Client
	Now    func() time.Time // for tests; time.Now when nil
}

// MastodonIdempotencyWindow is how long Mastodon remembers an
// Idempotency-Key (one hour, kept in its Redis); a resend later than this
// after the first attempt could post twice, so it is not made.
const MastodonIdempotencyWindow = time.Hour

// mastodonSafety keeps resends well inside the window.
const mastodonSafety = 5 * time.Minute

// Publish posts the status.
func (m Mastodon) Publish(ctx context.Context, r Request) (Result, error) {
	base, err := baseURL(r, "instance_url", "")
	if err != nil {
		return Result{}, err
	}
	token := r.Credentials["access_token"]
	if token == "" {
		return Result{}, Rejected("the mastodon account has no access_token credential")
	}
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	if r.Retry && !r.FirstAttempt.IsZero() && now().Sub(r.FirstAttempt) > MastodonIdempotencyWindow-mastodonSafety {
		r.Note("not resending: the first attempt was at %s and Mastodon forgets an Idempotency-Key after an hour",
			r.FirstAttempt.UTC().Format(time.RFC3339))
		return Result{}, Unknown("an earlier attempt may have posted to mastodon, and it is too late to resend safely with the same Idempotency-Key (Mastodon keeps it for an hour); check the account's profile")
	}
	body, _ := json.Marshal(map[string]any{"status": r.PublishedText()})
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	h.Set("Idempotency-Key", r.IdemKey)
	ex := call(ctx, m.Client, http.MethodPost, base+"/api/v1/statuses", h, body)
	if ex.Status == 0 {
		r.Note("POST /api/v1/statuses (Idempotency-Key %s): no answer, request sent=%v: %v", r.IdemKey, ex.Sent, ex.Err)
		return Result{}, transportError(r, "mastodon", ex)
	}
	r.Note("POST /api/v1/statuses (Idempotency-Key %s): %s", r.IdemKey, ex.describe())
	switch {
	case ex.Status/100 == 2:
		var st struct {
			ID  string `json:"id"`
			URL string `json:"url"`
			URI string `json:"uri"`
		}
		if ex.Err != nil || json.Unmarshal(ex.Body, &st) != nil || st.ID == "" {
			// Posted, but which status? The same key finds it again.
			return Result{}, Doubtful("mastodon accepted the status but its answer could not be read: %v", ex.Err)
		}
		if st.URL == "" {
			st.URL = st.URI
		}
		return Result{ExternalID: st.ID, ExternalURL: st.URL}, nil
	case ex.Status == http.StatusTooManyRequests:
		return Result{}, RetryAfter(retryDelay(ex.Header, now()), notPostedOrDoubt(r, "mastodon rate limit: %s", ex.describe()))
	case ex.Status == http.StatusUnauthorized || ex.Status == http.StatusForbidden:
		return Result{}, Rejected("mastodon refused the access token (revoked, expired, or without the write:statuses scope): %s", ex.describe())
	case ex.Status == http.StatusNotFound:
		return Result{}, Rejected("mastodon answered %s at %s/api/v1/statuses: is instance_url right?", ex.describe(), base)
	case ex.Status >= 500 || ex.Status == http.StatusRequestTimeout:
		// Mastodon deduplicates on the key: sending again is safe.
		return Result{}, Doubtful("mastodon answered %s", ex.describe())
	case ex.Status/100 == 3:
		return Result{}, Rejected("mastodon answered with a redirect (%d): set instance_url to the instance's own address", ex.Status)
	default:
		return Result{}, Rejected("mastodon refused the status: %s", ex.describe())
	}
}
