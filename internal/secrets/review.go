package secrets

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// reviewKeyLabel is the HKDF info of the review-link key: a key of its own,
// so a link's MAC is never a decision's or a credential's.
const reviewKeyLabel = "countersign review link v1"

// reviewVersion starts every link's payload.
const reviewVersion byte = 1

// reviewPayloadLen: version, org and post ids, revision, step, expiry.
const reviewPayloadLen = 1 + 16 + 16 + 4 + 1 + 8

// ReviewLink is what an external reviewer's link stands for: one step of one
// revision of one post, for one e-mail, until Expires (zero: while the step
// is open).
type ReviewLink struct {
	OrgID, PostID string
	Revision      int
	Step          int
	Email         string
	Expires       time.Time
}

// ErrBadLink is any link that is not one this key signed: malformed,
// tampered, or signed for another e-mail. It says nothing more on purpose.
var ErrBadLink = errors.New("secrets: not a valid review link")

// ReviewLinks mints and checks external reviewers' links (SPEC §2, the
// external approver). A token is base64url(payload) "." base64url(MAC); the
// payload holds org, post, revision, step and expiry, and the MAC covers the
// payload and the reviewer's e-mail, which the token itself does not carry:
// the page finds the e-mail in the post's chain and checks the MAC with it.
// Tokens are deterministic (the same step gives the same link, so a retried
// or reminder mail repeats it); single use comes from the workflow, which
// counts one decision per step and request id.
type ReviewLinks struct {
	key []byte
}

// NewReviewLinks derives the link key from the 32-byte master key
// (COUNTERSIGN_SECRET_KEY) with HKDF-SHA256.
func NewReviewLinks(master []byte) (*ReviewLinks, error) {
	if len(master) != 32 {
		return nil, fmt.Errorf("secrets: the key must be 32 bytes, not %d", len(master))
	}
	k, err := hkdf.Key(sha256.New, master, nil, reviewKeyLabel, 32)
	if err != nil {
		return nil, err
	}
	return &ReviewLinks{key: k}, nil
}

// String never shows the key.
func (r *ReviewLinks) String() string { return "secrets.ReviewLinks" }

// Mint returns the token of l.
func (r *ReviewLinks) Mint(l ReviewLink) (string, error) {
	org, err1 := uuid.Parse(l.OrgID)
	post, err2 := uuid.Parse(l.PostID)
	if err1 != nil || err2 != nil || l.Revision < 1 || l.Step < 1 || l.Step > 255 || l.Email == "" {
		return "", fmt.Errorf("secrets: cannot mint a review link for %+v", l)
	}
	p := make([]byte, 0, reviewPayloadLen)
	p = append(p, reviewVersion)
	p = append(p, org[:]...)
	p = append(p, post[:]...)
	p = binary.BigEndian.AppendUint32(p, uint32(l.Revision))
	p = append(p, byte(l.Step))
	var exp int64
	if !l.Expires.IsZero() {
		exp = l.Expires.Unix()
	}
	p = binary.BigEndian.AppendUint64(p, uint64(exp))
	enc := base64.RawURLEncoding
	return enc.EncodeToString(p) + "." + enc.EncodeToString(r.mac(p, l.Email)), nil
}

// Parse reads a token's payload without checking it: the caller looks the
// step's e-mail up from what it says, then calls Verify. Email is empty.
func (r *ReviewLinks) Parse(token string) (ReviewLink, error) {
	p, _, err := split(token)
	if err != nil {
		return ReviewLink{}, err
	}
	org, _ := uuid.FromBytes(p[1:17])
	post, _ := uuid.FromBytes(p[17:33])
	l := ReviewLink{OrgID: org.String(), PostID: post.String(),
		Revision: int(binary.BigEndian.Uint32(p[33:37])), Step: int(p[37])}
	if exp := int64(binary.BigEndian.Uint64(p[38:46])); exp != 0 {
		l.Expires = time.Unix(exp, 0).UTC()
	}
	if l.Revision < 1 || l.Step < 1 { // never minted: not worth a look-up
		return ReviewLink{}, ErrBadLink
	}
	return l, nil
}

// Verify reports whether token is the link this key minted for email (its
// expiry is the caller's to check against the clock).
func (r *ReviewLinks) Verify(token, email string) bool {
	p, mac, err := split(token)
	return err == nil && email != "" && hmac.Equal(mac, r.mac(p, email))
}

// RequestID is the request id of the decision a link sends: the same for
// every submit of the same link, so a double submit counts once. It is a
// hash of the token, so the token itself never reaches the workflow.
func RequestID(token string) string {
	h := sha256.Sum256([]byte("review link request\x00" + token))
	return "link:" + base64.RawURLEncoding.EncodeToString(h[:18])
}

func split(token string) (payload, mac []byte, err error) {
	a, b, ok := strings.Cut(token, ".")
	if !ok || len(token) > 200 {
		return nil, nil, ErrBadLink
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(a)
	mac, err2 := enc.DecodeString(b)
	if err1 != nil || err2 != nil || len(payload) != reviewPayloadLen || payload[0] != reviewVersion || len(mac) != sha256.Size {
		return nil, nil, ErrBadLink
	}
	return payload, mac, nil
}

// mac is the HMAC-SHA256 of the payload and the e-mail (case-insensitive).
func (r *ReviewLinks) mac(payload []byte, email string) []byte {
	m := hmac.New(sha256.New, r.key)
	m.Write(lengthPrefixed("review link", string(payload), strings.ToLower(strings.TrimSpace(email)), strconv.Itoa(len(payload))))
	return m.Sum(nil)
}
