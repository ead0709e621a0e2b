package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
)

// boxVersion starts every sealed value, so the format (or the key) can change
// later without guessing what an old value is.
const boxVersion byte = 1

// ErrOpen is returned for any sealed value that cannot be opened: wrong key,
// tampered bytes, or sealed for another context. It says nothing more on
// purpose.
var ErrOpen = errors.New("secrets: cannot open sealed value")

// Box seals and opens small secrets (account credentials) with AES-256-GCM
// under the COUNTERSIGN_SECRET_KEY. A sealed value is version byte, random
// 96-bit nonce, then ciphertext and tag. Sealing binds the value to a context
// (the additional data, e.g. the account id), so a value copied to another
// row does not open there.
type Box struct {
	aead cipher.AEAD
}

// NewBox returns a box for a 32-byte key.
func NewBox(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secrets: the key must be 32 bytes, not %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext bound to context.
func (b *Box) Seal(plaintext, context []byte) []byte {
	out := make([]byte, 1, 1+b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	out[0] = boxVersion
	out = append(out, RandomBytes(b.aead.NonceSize())...)
	return b.aead.Seal(out, out[1:], plaintext, context)
}

// Open decrypts a value sealed with the same key and context.
func (b *Box) Open(sealed, context []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < 1+n+b.aead.Overhead() || sealed[0] != boxVersion {
		return nil, ErrOpen
	}
	plain, err := b.aead.Open(nil, sealed[1:1+n], sealed[1+n:], context)
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// String never shows the key.
func (b *Box) String() string { return "secrets.Box(AES-256-GCM)" }
