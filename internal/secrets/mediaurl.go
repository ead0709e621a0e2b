package secrets

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"strconv"
	"time"
)

// mediaURLKeyLabel is the HKDF info of the media URL key: its own label, so
// a media URL's signature never verifies as anything else.
const mediaURLKeyLabel = "countersign media url v1"

// MediaURLSigner signs and checks the expiring download URLs of media (Slack
// image blocks, webhook receivers): an HMAC over the org, the media id and
// the expiry.
type MediaURLSigner struct {
	mac DecisionSigner // the same HMAC and encoding, under its own key
}

// NewMediaURLSigner derives the key from the 32-byte master key
// (COUNTERSIGN_SECRET_KEY) with HKDF-SHA256.
func NewMediaURLSigner(master []byte) (*MediaURLSigner, error) {
	if len(master) != 32 {
		return nil, fmt.Errorf("secrets: the key must be 32 bytes, not %d", len(master))
	}
	k, err := hkdf.Key(sha256.New, master, nil, mediaURLKeyLabel, 32)
	if err != nil {
		return nil, err
	}
	return &MediaURLSigner{mac: DecisionSigner{key: k}}, nil
}

// Sign returns the signature of a URL for the org's media, in a size (""
// for the image itself, "thumbnail"), until expires. The size is signed: a
// thumbnail's URL never fetches the image, nor the reverse.
func (s *MediaURLSigner) Sign(orgID, mediaID, size string, expires time.Time) string {
	return s.mac.mac(mediaURLBytes(orgID, mediaID, size, expires.Unix()))
}

// Verify reports whether sig signs the org's media in that size until
// expires (unix seconds). The caller checks that expires has not passed.
func (s *MediaURLSigner) Verify(orgID, mediaID, size string, expires int64, sig string) bool {
	return s.mac.verify(sig, mediaURLBytes(orgID, mediaID, size, expires))
}

// String never shows the key.
func (s *MediaURLSigner) String() string { return "secrets.MediaURLSigner" }

// mediaURLBytes: the image itself keeps the payload of the URLs signed
// before sizes existed (they stay valid); a size is one more field.
func mediaURLBytes(orgID, mediaID, size string, expires int64) []byte {
	if size == "" {
		return lengthPrefixed("media-url", orgID, mediaID, strconv.FormatInt(expires, 10))
	}
	return lengthPrefixed("media-url", orgID, mediaID, strconv.FormatInt(expires, 10), size)
}
