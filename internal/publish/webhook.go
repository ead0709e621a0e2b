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
// a retried delivery: resending after a doubt is safe.
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
	ID          string     `json:"id"`
	Revision    int        `json:"revision"`
	ContentHash string     `json:"content_hash"`
	Text        string     `json:"text"`
	MediaURLs   []string   `json:"media_urls"`
	ScheduledAt *time.Time `json:"scheduled_at"`
	AuthorID    string     `json:"author_id"`
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
	body, err := json.Marshal(WebhookPayload{
		Type:      "post.published",
		Timestamp: ts,
		Data: WebhookPayloadData{
			Post: WebhookPost{ID: r.PostID, Revision: r.Revision, ContentHash: r.ContentHash, Text: r.Text,
				MediaURLs: media, ScheduledAt: r.ScheduledAt, AuthorID: r.AuthorID},
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
