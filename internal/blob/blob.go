// Package blob holds what the blob stores share: the shape of a key, and
// ErrNotFound. The stores are dirblob (a directory, the default) and s3blob
// (any S3-compatible store); Open picks one from COUNTERSIGN_BLOB_URL.
package blob

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotFound is returned (wrapped) by Get for a key that holds nothing.
var ErrNotFound = errors.New("blob not found")

// MaxKey bounds a key's length.
const MaxKey = 512

// CheckKey refuses a key that could leave the store's directory or prefix:
// keys are '/'-separated segments of letters, digits, '.', '_' and '-', none
// of them empty, "." or "..". The server builds keys from ids only; this is
// the second wall.
func CheckKey(key string) error {
	if key == "" || len(key) > MaxKey {
		return fmt.Errorf("blob: invalid key (empty or over %d bytes)", MaxKey)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("blob: invalid key %q", key)
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				return fmt.Errorf("blob: invalid key %q", key)
			}
		}
	}
	return nil
}
