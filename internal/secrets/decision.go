package secrets

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	cs "github.com/countersign/countersign"
)

// decisionKeyLabel is the HKDF info of the decision MAC key: its own label, so
// the key that signs decisions is never the one that seals credentials.
const decisionKeyLabel = "countersign decision mac v1"

// DecisionSigner signs and checks decision payloads (SPEC §8, Approvals): the
// API, Slack and review links sign what they send to a post's workflow; the
// workflow's authorization checks it, so a decision sent straight to Temporal
// by someone who can reach the frontend is ignored as unsigned.
type DecisionSigner struct {
	key []byte
}

// NewDecisionSigner derives the MAC key from the 32-byte master key
// (COUNTERSIGN_SECRET_KEY) with HKDF-SHA256.
func NewDecisionSigner(master []byte) (*DecisionSigner, error) {
	if len(master) != 32 {
		return nil, fmt.Errorf("secrets: the key must be 32 bytes, not %d", len(master))
	}
	k, err := hkdf.Key(sha256.New, master, nil, decisionKeyLabel, 32)
	if err != nil {
		return nil, err
	}
	return &DecisionSigner{key: k}, nil
}

// Sign returns the MAC of d (its MAC field ignored), base64url without padding.
func (s *DecisionSigner) Sign(d cs.DecisionSignal) string { return s.mac(decisionBytes(d)) }

// Verify reports whether d.MAC is the MAC of d.
func (s *DecisionSigner) Verify(d cs.DecisionSignal) bool { return s.verify(d.MAC, decisionBytes(d)) }

// mac is the HMAC-SHA256 of b, base64url without padding.
func (s *DecisionSigner) mac(b []byte) string {
	m := hmac.New(sha256.New, s.key)
	m.Write(b)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verify reports whether mac is the MAC of b, in constant time.
func (s *DecisionSigner) verify(mac string, b []byte) bool {
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || mac == "" {
		return false
	}
	m := hmac.New(sha256.New, s.key)
	m.Write(b)
	return hmac.Equal(got, m.Sum(nil))
}

// String never shows the key.
func (s *DecisionSigner) String() string { return "secrets.DecisionSigner" }

// decisionBytes is the canonical encoding of every field that decides what a
// decision does: each length-prefixed, so no two payloads collide.
// An external reviewer's e-mail is appended only when set, so a member's
// decision encodes as before (a list of more fields never encodes alike).
func decisionBytes(d cs.DecisionSignal) []byte {
	fields := []string{"decision", d.PostID, strconv.Itoa(d.Revision), strconv.Itoa(d.Step), d.MemberID,
		d.Decision, d.Note, d.Source, d.RequestID, d.OnBehalfOf}
	if d.SentAt != nil { // appended only when set: older signatures still verify
		fields = append(fields, d.SentAt.UTC().Format(time.RFC3339Nano))
	}
	if d.External != "" { // 12 or 13 fields: never a list without it
		fields = append(fields, "external", d.External)
	}
	return lengthPrefixed(fields...)
}

// SignEdit returns the MAC of an edit (its MAC field ignored).
func (s *DecisionSigner) SignEdit(e cs.EditSignal) string { return s.mac(editBytes(e)) }

// VerifyEdit reports whether e.MAC is the MAC of e.
func (s *DecisionSigner) VerifyEdit(e cs.EditSignal) bool { return s.verify(e.MAC, editBytes(e)) }

// editBytes is the canonical encoding of an edit; the "edit" prefix keeps an
// edit's MAC from ever verifying as a decision's.
func editBytes(e cs.EditSignal) []byte {
	at := ""
	if e.ScheduledAt != nil {
		at = e.ScheduledAt.UTC().Format(time.RFC3339Nano)
	}
	fields := []string{"edit", strconv.Itoa(e.Revision), e.Text, e.By, e.Source, e.RequestID,
		strconv.FormatBool(e.Reschedule), at, strconv.Itoa(len(e.MediaURLs))}
	fields = append(fields, e.MediaURLs...)
	if len(e.Media) > 0 { // only then: an edit without images signs the same bytes as before
		fields = append(fields, "media", strconv.Itoa(len(e.Media)))
		for _, m := range e.Media {
			fields = append(fields, m.ID, m.Alt, m.SHA256)
		}
	}
	return lengthPrefixed(fields...)
}

// lengthPrefixed joins fields, each after its length, so that no two
// different lists of fields encode alike.
func lengthPrefixed(fields ...string) []byte {
	var out []byte
	for _, f := range fields {
		out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
		out = append(out, f...)
	}
	return out
}
