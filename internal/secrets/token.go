// Package secrets makes and checks the secrets Countersign hands out (API and
// invitation tokens) and seals the ones it keeps (account credentials).
package secrets

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// APITokenPrefix starts every API token, so a leaked one is easy to recognise
// (and to scan for in logs and repositories).
const APITokenPrefix = "cs_"

// NewToken returns a random token: prefix and 32 random bytes in URL-safe base64.
func NewToken(prefix string) string {
	return prefix + base64.RawURLEncoding.EncodeToString(RandomBytes(32))
}

// RandomBytes returns n bytes from the system's CSPRNG.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error (it crashes instead)
	return b
}

// HashToken is what the database stores in place of a token. Tokens carry 256
// bits of entropy, so a plain SHA-256 (no salt, no stretching) is enough and
// lets the store look a token up by its hash.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
