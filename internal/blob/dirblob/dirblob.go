// Package dirblob is the default blob store: files in a directory (under the
// data directory). Every access goes through an os.Root, so no key, whatever
// it holds, reaches outside the directory, not even through a symlink.
package dirblob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"

	"github.com/countersign/countersign/internal/blob"
	"github.com/countersign/countersign/internal/secrets"
)

// Store keeps blobs as files under one directory.
type Store struct {
	root *os.Root
}

// Open opens (creating it if needed) the directory dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("blob directory: %w", err)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("blob directory: %w", err)
	}
	return &Store{root: r}, nil
}

// Close releases the directory.
func (s *Store) Close() error { return s.root.Close() }

// Put writes the blob whole or not at all (a temporary file, then a rename).
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, _ string) error {
	if err := blob.CheckKey(key); err != nil {
		return err
	}
	if dir := path.Dir(key); dir != "." {
		if err := s.root.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	tmp := fmt.Sprintf("%s.tmp-%x", key, secrets.RandomBytes(8))
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("blob: wrote %d bytes, expected %d", n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.root.Rename(tmp, key)
	}
	if err != nil {
		_ = s.root.Remove(tmp)
	}
	return err
}

// Get opens the blob; blob.ErrNotFound when there is none.
func (s *Store) Get(_ context.Context, key string) (io.ReadCloser, error) {
	if err := blob.CheckKey(key); err != nil {
		return nil, err
	}
	f, err := s.root.Open(key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", blob.ErrNotFound, key)
	}
	return f, err
}

// Delete removes the blob; a missing one is not an error.
func (s *Store) Delete(_ context.Context, key string) error {
	if err := blob.CheckKey(key); err != nil {
		return err
	}
	if err := s.root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
