// Package blobtest is the behaviour every blob store shares, run against
// each real store by its tests.
package blobtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	cs "github.com/countersign/countersign"
	"github.com/countersign/countersign/internal/blob"
)

// Run checks put, get, overwrite, delete, a missing key, and that keys that
// would leave the store (traversal, absolute, odd characters) are refused.
func Run(t *testing.T, s cs.BlobStore) {
	ctx := context.Background()
	get := func(key string) ([]byte, error) {
		rc, err := s.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	data := bytes.Repeat([]byte("countersign"), 1000)
	key := "0190aaaa-0000-7000-8000-000000000001/0190bbbb-0000-7000-8000-000000000002"
	if err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data)), "image/png"); err != nil {
		t.Fatalf("put: %v", err)
	}
	if got, err := get(key); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get after put: %d bytes, %v; want the %d bytes put", len(got), err, len(data))
	}
	if err := s.Put(ctx, key, bytes.NewReader([]byte("v2")), 2, "image/png"); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	if got, _ := get(key); string(got) != "v2" {
		t.Fatalf("after overwrite: %q", got)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := get(key); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("get after delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("delete of a missing key: %v", err)
	}
	for _, bad := range []string{"../escape", "a/../../escape", "/etc/passwd", "a//b", "a/./b", "a\\..\\b", "a b", "", "..", "a/%2e%2e/b"} {
		if err := s.Put(ctx, bad, bytes.NewReader([]byte("x")), 1, "image/png"); err == nil {
			t.Errorf("put %q: accepted, want refused", bad)
		}
		if _, err := s.Get(ctx, bad); err == nil {
			t.Errorf("get %q: accepted, want refused", bad)
		}
		if err := s.Delete(ctx, bad); err == nil {
			t.Errorf("delete %q: accepted, want refused", bad)
		}
	}
}
