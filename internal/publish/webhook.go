package publish

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	cs "github.com/countersign/countersign"
)

// Webhook is the `webhook` network: a POST signed in the Standard Webhooks
// format. webhook-id is fixed per post revision, so a receiver deduplicates
// a retried delivery: resending after a doubt is safe. Images travel as
// signed, expiring download URLs (with alt text, type, size and SHA-256):
// the receiver fetches the bytes it wants, and each delivery signs them
// afresh.
type Webhook struct {
	Client *http.Client
	Now    func() time.Time // for tests; time.Now when nil
}

// WebhookPayload is the JSON body of a delivery.
type WebhookPayload struct {
	Type      string              `json:"type"` // post.published
	Timestamp time.Time           `json:"timestamp"`
	Data      WebhookPayloadData  `json:"data"`
	Approvals []cs.DecisionRecord `json:"approvals"`
}

// WebhookPayloadData is the post and its account.
type WebhookPayloadData struct {
	Post    WebhookPost    `json:"post"`
	Account WebhookAccount `json:"account"`
}

// WebhookPost is the published revision.
type WebhookPost struct {
	ID          string         `json:"id"`
	Revision    int            `json:"revision"`
	ContentHash string         `json:"content_hash"`
	Text        string         `json:"text"`
	MediaURLs   []string       `json:"media_urls"`
	Media       []WebhookMedia `json:"media"`
	ScheduledAt *time.Time     `json:"scheduled_at"`
	AuthorID    string         `json:"author_id"`
}

// WebhookMedia is an image of the post: where to download it (a signed URL
// that expires) and what the receiver gets there.
type WebhookMedia struct {
	ID          string `json:"id"`
	Alt         string `json:"alt"`
	ContentType string `json:"content_type"`
	Bytes       int64  `json:"bytes"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
	SHA256      string `json:"sha256"`
	URL         string `json:"url"`
}

// WebhookAccount is the account it was published as.
type WebhookAccount struct {
	ID          string `json:"id"`
	Handle      string `json:"handle"`
	DisplayName string `json:"display_name"`
}

// Publish delivers the post to the account's URL.
func (w Webhook) Publish(ctx context.Context, r Request) (Result, error) {
	url, secret := r.Account.Settings["url"], r.Credentials["secret"]
	if url == "" {
		return Result{}, Rejected("the account has no webhook url")
	}
	if msg := cs.CheckBaseURL(url); msg != "" {
		return Result{}, Rejected("the account's url %s", msg)
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	ts := now().UTC()
	media := r.MediaURLs
	if media == nil {
		media = []string{}
	}
	approvals := r.Approvals
	if approvals == nil {
		approvals = []cs.DecisionRecord{}
	}
	images, err := w.media(ctx, r)
	if err != nil {
		return Result{}, err
	}
	body, err := json.Marshal(WebhookPayload{
		Type:      "post.published",
		Timestamp: ts,
		Data: WebhookPayloadData{
			Post: WebhookPost{ID: r.PostID, Revision: r.Revision, ContentHash: r.ContentHash, Text: r.Text,
				MediaURLs: media, Media: images, ScheduledAt: r.ScheduledAt, AuthorID: r.AuthorID},
			Account: WebhookAccount{ID: r.Account.ID, Handle: r.Account.Handle, DisplayName: r.Account.DisplayName},
		},
		Approvals: approvals,
	})
	if err != nil {
		return Result{}, err
	}
	sig, err := SignWebhook(secret, r.IdemKey, ts, body)
	if err != nil {
		return Result{}, Rejected("%v", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("webhook-id", r.IdemKey)
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", sig)
	ex := call(ctx, w.Client, http.MethodPost, url, h, body)
	if ex.Status == 0 {
		r.Note("POST %s (webhook-id %s): no answer, request sent=%v: %v", url, r.IdemKey, ex.Sent, ex.Err)
		if !ex.Sent {
			return Result{}, notPostedOrDoubt(r, "deliver webhook: %v", ex.Err)
		}
		// The receiver deduplicates on webhook-id: a doubt is settled by
		// delivering again, so this is retryable.
		return Result{}, Doubtful("deliver webhook: %v", ex.Err)
	}
	r.Note("POST %s (webhook-id %s): %s", url, r.IdemKey, ex.describe())
	switch {
	case ex.Status/100 == 2:
		var ack struct {
			ID  string `json:"id"`
			URL string `json:"url"`
		}
		_ = json.Unmarshal(ex.Body, &ack)
		if ack.ID == "" {
			ack.ID = r.IdemKey
		}
		return Result{ExternalID: ack.ID, ExternalURL: ack.URL}, nil
	case ex.Status == http.StatusTooManyRequests:
		return Result{}, RetryAfter(retryDelay(ex.Header, now()), notPostedOrDoubt(r, "webhook receiver answered %s", ex.describe()))
	case ex.Status == http.StatusRequestTimeout || ex.Status >= 500:
		return Result{}, Doubtful("webhook receiver answered %s", ex.describe())
	case ex.Status/100 == 3:
		return Result{}, Rejected("webhook receiver answered with a redirect (%d): set the account's url to the final address", ex.Status)
	default:
		return Result{}, Rejected("webhook receiver refused the delivery: %s", ex.describe())
	}
}

// SignWebhook returns the Standard Webhooks signature header value
// ("v1,<base64 HMAC-SHA256 of id.timestamp.body>") under a whsec_ secret.
func SignWebhook(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := webhookKey(secret) // clearer errors than the library's
	if err != nil {
		return "", err
	}
	wh, err := standardwebhooks.NewWebhookRaw(key)
	if err != nil {
		return "", err
	}
	return wh.Sign(id, ts, body)
}

// VerifyWebhook checks a delivery as a receiver would (tests, docs).
func VerifyWebhook(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	sec, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	if err != nil {
		return errors.New("bad webhook-timestamp")
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return errors.New("webhook-timestamp outside the tolerance")
	}
	want, err := SignWebhook(secret, h.Get("webhook-id"), ts, body)
	if err != nil {
		return err
	}
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return errors.New("no valid webhook-signature")
}

func webhookKey(secret string) ([]byte, error) {
	raw, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, errors.New("the webhook secret must start with whsec_")
	}
	key, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(key) == 0 {
		return nil, errors.New("the webhook secret is not whsec_ followed by base64")
	}
	return key, nil
}

// media describes the post's images with signed download URLs. Nothing is
// uploaded: the receiver downloads what it needs while the URLs last.
func (w Webhook) media(ctx context.Context, r Request) ([]WebhookMedia, error) {
	out := []WebhookMedia{}
	if len(r.Images) > 0 && (r.media == nil || r.media.sign == nil) {
		return nil, notPostedOrDoubt(r, "the post's images cannot be delivered: this worker has no media URL signer configured")
	}
	for _, img := range r.Images {
		m, err := r.describeImage(ctx, img)
		if err != nil {
			switch {
			case r.Retry && errors.Is(err, ErrRejected):
				// An earlier delivery may have gone out: not a clean refusal.
				return nil, Unknown("an earlier delivery may have reached the receiver, and image %d can no longer be sent (%v); check with the receiver", img.Position+1, err)
			case r.Retry && errors.Is(err, ErrNotPosted):
				return nil, Doubtful("%v", err) // the doubt stays
			}
			return nil, err
		}
		u := r.media.sign(r.OrgID, img.ID)
		if u == "" {
			return nil, notPostedOrDoubt(r, "the post's images cannot be delivered: media URLs cannot be signed (COUNTERSIGN_SECRET_KEY and COUNTERSIGN_PUBLIC_URL)")
		}
		out = append(out, WebhookMedia{ID: img.ID, Alt: img.Alt, ContentType: m.ContentType, Bytes: m.Bytes,
			Width: m.Width, Height: m.Height, SHA256: approvedHash(img, m), URL: u})
	}
	if len(out) > 0 {
		r.Note("%d image(s) sent as signed download URLs", len(out))
	}
	return out, nil
}
