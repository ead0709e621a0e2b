package dirblob_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/countersign/countersign/internal/blob/blobtest"
	"github.com/countersign/countersign/internal/blob/dirblob"
)

func TestStore(t *testing.T) {
	base := t.TempDir()
	s, err := dirblob.Open(filepath.Join(base, "media"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	blobtest.Run(t, s)
	// Nothing was written beside the directory (the refused keys above
	// aimed at it), and no temporary file was left behind.
	entries, _ := os.ReadDir(base)
	if len(entries) != 1 || entries[0].Name() != "media" {
		t.Fatalf("the data directory holds %v, want only media/", entries)
	}
	left, _ := filepath.Glob(filepath.Join(base, "media", "*", "*tmp*"))
	if len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// A symlink planted inside the directory does not lead out of it.
func TestSymlinkStaysInside(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	if err := os.MkdirAll(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "media")
	s, err := dirblob.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := os.Symlink(outside, filepath.Join(dir, "org")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), "org/secret"); err == nil {
		t.Fatal("a symlink inside the blob directory read a file outside it")
	}
}
