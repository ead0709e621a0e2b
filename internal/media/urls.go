package media

import (
	"net/url"
	"strconv"
	"time"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/secrets"
)

// URLTTL is how long a signed media URL works by default: an approval
// request's images must still show a week later.
const URLTTL = 7 * 24 * time.Hour

// URLs makes and checks the signed, expiring download URLs of media, served
// by GET /v1/orgs/{org}/media/{id}?expires=…&signature=… to whoever holds
// one (Slack fetching an image block, a webhook receiver).
type URLs struct {
	Signer  *secrets.MediaURLSigner
	BaseURL string        // COUNTERSIGN_PUBLIC_URL
	TTL     time.Duration // 0: URLTTL
	Now     func() time.Time
}

// Sizes a media URL may ask for (?size=): "" is the image itself.
const (
	SizeFull      = ""
	SizeThumbnail = "thumbnail"
)

// URL is a signed URL of the org's image, valid for TTL (its expiry
// rounded up to the hour, so repeated URLs of one image are the same URL
// for an hour and caches work). "" without a signer.
func (u *URLs) URL(orgID, mediaID string) string { return u.sized(orgID, mediaID, SizeFull) }

// ThumbnailURL is URL for the image's thumbnail (?size=thumbnail, signed
// with the size).
func (u *URLs) ThumbnailURL(orgID, mediaID string) string {
	return u.sized(orgID, mediaID, SizeThumbnail)
}

func (u *URLs) sized(orgID, mediaID, size string) string {
	if u == nil || u.Signer == nil {
		return ""
	}
	now := time.Now
	if u.Now != nil {
		now = u.Now
	}
	ttl := u.TTL
	if ttl <= 0 {
		ttl = URLTTL
	}
	exp := now().Add(ttl).Truncate(time.Hour).Add(time.Hour)
	q := url.Values{"expires": {strconv.FormatInt(exp.Unix(), 10)}, "signature": {u.Signer.Sign(orgID, mediaID, size, exp)}}
	if size != SizeFull {
		q.Set("size", size)
	}
	return u.BaseURL + "/v1/orgs/" + orgID + "/media/" + mediaID + "?" + q.Encode()
}

// Check verifies a signed URL's expires and signature for the org's image
// in that size. A tampered, foreign, resized or expired URL is a 403 that
// says which.
func (u *URLs) Check(orgID, mediaID, size, expires, signature string) error {
	if u == nil || u.Signer == nil {
		return cs.Errorf(cs.EFORBIDDEN, "signed media URLs are not configured (COUNTERSIGN_SECRET_KEY)")
	}
	exp, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || !u.Signer.Verify(orgID, mediaID, size, exp, signature) {
		return cs.Errorf(cs.EFORBIDDEN, "the media URL's signature is not valid")
	}
	now := time.Now
	if u.Now != nil {
		now = u.Now
	}
	if !now().Before(time.Unix(exp, 0)) {
		return &cs.Error{Code: CodeURLExpired, Message: "the media URL has expired"}
	}
	return nil
}

// CodeURLExpired is the code of an expired signed URL (403).
const CodeURLExpired = "media_url_expired"
