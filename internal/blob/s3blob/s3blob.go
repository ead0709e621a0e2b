// Package s3blob keeps blobs in an S3-compatible bucket (AWS S3, Cloudflare
// R2, Backblaze B2, MinIO, …) through minio-go, every connection through the
// egress guard. Keys live under the configured prefix; the secret key is
// never logged (Config.String leaves it out).
package s3blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/countersign/countersign/internal/blob"
	"github.com/countersign/countersign/internal/egress"
)

// Config says where the bucket is and how to sign requests.
type Config struct {
	// URL is COUNTERSIGN_BLOB_URL: s3://bucket or s3://bucket/prefix.
	URL string
	// Endpoint is the S3 API's base URL (default https://s3.amazonaws.com;
	// R2: https://<account>.r2.cloudflarestorage.com). http:// only where
	// the operator means it (a local MinIO).
	Endpoint        string
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	// Egress guards the connections (nil: the default guard, public
	// addresses only).
	Egress *egress.Guard
}

// String shows the configuration without the secret key.
func (c Config) String() string {
	return fmt.Sprintf("s3blob.Config{URL: %s, Endpoint: %s, Region: %s, AccessKeyID: %s}", c.URL, c.Endpoint, c.Region, c.AccessKeyID)
}

// Store keeps blobs in a bucket, under a prefix.
type Store struct {
	client *minio.Client
	bucket string
	prefix string // "" or ending in "/"
}

// Open checks the configuration and builds the client (no request is sent).
func Open(c Config) (*Store, error) {
	u, err := url.Parse(c.URL)
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("COUNTERSIGN_BLOB_URL must look like s3://bucket/prefix")
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		if err := blob.CheckKey(prefix); err != nil {
			return nil, fmt.Errorf("COUNTERSIGN_BLOB_URL: the prefix %q may hold letters, digits, '.', '_', '-' and '/'", prefix)
		}
		prefix += "/"
	}
	ep := c.Endpoint
	if ep == "" {
		ep = "https://s3.amazonaws.com"
	}
	e, err := url.Parse(ep)
	if err != nil || (e.Scheme != "https" && e.Scheme != "http") || e.Host == "" || (e.Path != "" && e.Path != "/") ||
		e.User != nil || e.RawQuery != "" || e.Fragment != "" {
		return nil, fmt.Errorf("COUNTERSIGN_S3_ENDPOINT must be a base URL such as https://s3.eu-central-1.amazonaws.com")
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return nil, fmt.Errorf("an s3:// COUNTERSIGN_BLOB_URL needs COUNTERSIGN_S3_ACCESS_KEY_ID and COUNTERSIGN_S3_SECRET_ACCESS_KEY")
	}
	g := c.Egress
	if g == nil {
		g = &egress.Guard{}
	}
	var rt http.RoundTripper = g.Transport()
	client, err := minio.New(e.Host, &minio.Options{
		Creds:     credentials.NewStaticV4(c.AccessKeyID, c.SecretAccessKey, ""),
		Secure:    e.Scheme == "https",
		Region:    c.Region,
		Transport: rt,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 client: %w", err)
	}
	return &Store{client: client, bucket: u.Host, prefix: prefix}, nil
}

func (s *Store) object(key string) (string, error) {
	if err := blob.CheckKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// Put uploads the blob (S3 makes an object appear whole or not at all).
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	_, err = s.client.PutObject(ctx, s.bucket, name, r, size, minio.PutObjectOptions{ContentType: contentType})
	return wrap(err)
}

// Get opens the blob; blob.ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, wrap(err)
	}
	if _, err := obj.Stat(); err != nil { // GetObject is lazy: ask now, so a missing key is an error here
		_ = obj.Close()
		return nil, wrap(err)
	}
	return obj, nil
}

// Delete removes the blob; a missing one is not an error (S3's own rule).
func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	return wrap(s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{}))
}

// wrap turns S3's "no such key" into blob.ErrNotFound and keeps the rest
// short: the error's message names the operation and S3's code, never a
// credential (minio-go's messages carry none).
func wrap(err error) error {
	if err == nil {
		return nil
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) && (resp.Code == minio.NoSuchKey || resp.StatusCode == http.StatusNotFound && resp.Code != minio.NoSuchBucket) {
		return fmt.Errorf("%w: %s", blob.ErrNotFound, resp.Key)
	}
	return fmt.Errorf("s3: %w", err)
}
