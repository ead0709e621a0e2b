package publish

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// Mastodon is the `mastodon` network: POST {instance_url}/api/v1/statuses
// with the account's access token (scope write:statuses) and the revision's
// Idempotency-Key. Mastodon answers a repeated key with the status the first
// request created, so a doubt is settled by sending again with the same
// key. Images are uploaded first (POST /api/v2/media with the alt text as
// description, scope write:media), each id recorded before the status is
// created, and attached with media_ids; media URLs are published as links in
// the text.
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
	ids, err := r.uploadImages(ctx, "mastodon", func(ctx context.Context, img Image, b mediaBlob) (string, error) {
		return m.upload(ctx, r, base, token, img, b)
	})
	if err != nil {
		return Result{}, err
	}
	if !r.Retry {
		// Images still processing cannot be attached. A status sent
		// earlier (Retry) had them ready: its key finds it.
		deadline := pollDeadline()
		for i, id := range ids {
			if err := m.waitProcessed(ctx, r, base, token, i, id, deadline); err != nil {
				return Result{}, err
			}
		}
	}
	if err := r.startPosting(ctx); err != nil {
		return Result{}, err
	}
	status := map[string]any{"status": r.PublishedText()}
	if len(ids) > 0 {
		status["media_ids"] = ids
	}
	body, _ := json.Marshal(status)
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

// upload sends one image to POST /api/v2/media. Mastodon answers 200 when
// the image is ready, 202 while it is still processing; either way the id
// is kept at once.
func (m Mastodon) upload(ctx context.Context, r Request, base, token string, img Image, b mediaBlob) (string, error) {
	body, ctype := multipartBody("file", b, [2]string{"description", img.Alt})
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	h.Set("Content-Type", ctype)
	h.Set("Accept", "application/json")
	ex := call(ctx, m.Client, http.MethodPost, base+"/api/v2/media", h, body)
	n := img.Position + 1
	if ex.Status == 0 {
		r.Note("POST /api/v2/media (image %d): no answer, request sent=%v: %v", n, ex.Sent, ex.Err)
		return "", NotPosted("could not upload image %d to mastodon: %v", n, ex.Err)
	}
	r.Note("POST /api/v2/media (image %d): %s", n, ex.describe())
	switch {
	case ex.Status == http.StatusOK || ex.Status == http.StatusAccepted:
		var att struct {
			ID string `json:"id"`
		}
		if ex.Err != nil || json.Unmarshal(ex.Body, &att) != nil || att.ID == "" {
			return "", NotPosted("mastodon accepted image %d but its answer could not be read", n)
		}
		if !networkMediaID.MatchString(att.ID) {
			return "", Rejected("mastodon answered image %d with an unusable media id", n)
		}
		return att.ID, nil
	case ex.Status == http.StatusTooManyRequests:
		return "", RetryAfter(retryDelay(ex.Header, m.now()), NotPosted("mastodon rate limit on media uploads: %s", ex.describe()))
	case ex.Status == http.StatusUnauthorized || ex.Status == http.StatusForbidden:
		return "", Rejected("mastodon refused to take image %d with the access token (revoked, or without the write:media scope): %s", n, ex.describe())
	case ex.Status >= 500 || ex.Status == http.StatusRequestTimeout:
		return "", NotPosted("mastodon answered the upload of image %d with %s", n, ex.describe())
	case ex.Status/100 == 3:
		return "", Rejected("mastodon answered the upload of image %d with a redirect (%d): set instance_url to the instance's own address", n, ex.Status)
	default:
		return "", Rejected("mastodon refused image %d: %s", n, ex.describe())
	}
}

// waitProcessed polls GET /api/v1/media/{id} until the image is processed
// (200; 206 while processing), until the attempt's deadline.
func (m Mastodon) waitProcessed(ctx context.Context, r Request, base, token string, i int, id string, deadline time.Time) error {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	h.Set("Accept", "application/json")
	polls := 0
	err := poll(ctx, deadline, func() (bool, time.Duration, error) {
		polls++
		ex := call(ctx, m.Client, http.MethodGet, base+"/api/v1/media/"+id, h, nil)
		switch {
		case ex.Status == http.StatusOK:
			var att struct {
				URL *string `json:"url"`
			}
			if json.Unmarshal(ex.Body, &att) == nil && att.URL == nil {
				return false, 0, nil // processed once it has a URL
			}
			return true, 0, nil
		case ex.Status == http.StatusPartialContent:
			return false, 0, nil
		case ex.Status == http.StatusTooManyRequests:
			return false, retryDelay(ex.Header, m.now()), nil
		case ex.Status == 0 || ex.Status >= 500:
			return false, 0, nil // transient: ask again
		case ex.Status == http.StatusNotFound:
			return false, 0, Rejected("mastodon no longer has image %d (media %s): it may have been removed unattached", i+1, id)
		default:
			return false, 0, Rejected("mastodon answered the processing check of image %d with %s", i+1, ex.describe())
		}
	})
	switch {
	case err == nil:
		if polls > 1 {
			r.Note("image %d: processed by mastodon after %d checks", i+1, polls)
		}
		return nil
	case errors.Is(err, errStillProcessing):
		r.Note("image %d: mastodon was still processing it after %d checks", i+1, polls)
		return NotPosted("mastodon is still processing image %d; the next attempt checks again", i+1)
	case errors.Is(err, ErrRejected):
		return err
	default:
		return NotPosted("waiting for mastodon to process image %d: %v", i+1, err)
	}
}

func (m Mastodon) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}
