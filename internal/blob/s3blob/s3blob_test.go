package s3blob_test

import (
	"bytes"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/countersign/countersign/internal/blob/blobtest"
	"github.com/countersign/countersign/internal/blob/s3blob"
	"github.com/countersign/countersign/internal/egress"
)

// fakeS3 is an in-process S3-compatible server (gofakes3) with one bucket.
func fakeS3(t *testing.T) (*httptest.Server, *s3mem.Backend) {
	be := s3mem.New()
	if err := be.CreateBucket("media"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(be).Server())
	t.Cleanup(srv.Close)
	return srv, be
}

func loopback(t *testing.T) *egress.Guard {
	g, err := egress.Parse("127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestStore(t *testing.T) {
	srv, be := fakeS3(t)
	s, err := s3blob.Open(s3blob.Config{URL: "s3://media/countersign/prod", Endpoint: srv.URL, Region: "us-east-1",
		AccessKeyID: "AKIATEST", SecretAccessKey: "not-a-real-secret", Egress: loopback(t)})
	if err != nil {
		t.Fatal(err)
	}
	blobtest.Run(t, s)

	// Objects live under the prefix, and nowhere else in the bucket.
	if err := s.Put(t.Context(), "org/img", bytes.NewReader([]byte("png")), 3, "image/png"); err != nil {
		t.Fatal(err)
	}
	obj, err := be.GetObject("media", "countersign/prod/org/img", nil)
	if err != nil {
		t.Fatalf("the object is not under the prefix: %v", err)
	}
	b, _ := io.ReadAll(obj.Contents)
	if string(b) != "png" {
		t.Fatalf("stored %q", b)
	}
	list, err := be.ListBucket("media", nil, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range list.Contents {
		if !strings.HasPrefix(o.Key, "countersign/prod/") {
			t.Errorf("object %q outside the prefix", o.Key)
		}
	}
}

// Without the operator allowing it, the egress guard refuses a loopback
// endpoint: S3 traffic is an outbound call like any other.
func TestEgressGuard(t *testing.T) {
	srv, _ := fakeS3(t)
	s, err := s3blob.Open(s3blob.Config{URL: "s3://media", Endpoint: srv.URL, AccessKeyID: "AKIATEST", SecretAccessKey: "not-a-real-secret"})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Put(t.Context(), "org/img", bytes.NewReader([]byte("png")), 3, "image/png")
	if err == nil || !egress.IsRefused(err) {
		t.Fatalf("put to a loopback endpoint without an allow-list: %v, want the guard's refusal", err)
	}
	if strings.Contains(err.Error(), "not-a-real-secret") {
		t.Fatalf("the error shows the secret key: %v", err)
	}
}

func TestConfig(t *testing.T) {
	c := s3blob.Config{URL: "s3://media/p", AccessKeyID: "AKIATEST", SecretAccessKey: "sekrit"}
	if strings.Contains(c.String(), "sekrit") {
		t.Fatalf("Config.String shows the secret: %s", c)
	}
	for _, bad := range []s3blob.Config{
		{URL: "https://media/p", AccessKeyID: "a", SecretAccessKey: "b"},
		{URL: "s3://media/../p", AccessKeyID: "a", SecretAccessKey: "b"},
		{URL: "s3://media/p"},
		{URL: "s3://media/p", Endpoint: "https://u:p@s3.example", AccessKeyID: "a", SecretAccessKey: "b"},
		{URL: "s3://media/p", Endpoint: "ftp://s3.example", AccessKeyID: "a", SecretAccessKey: "b"},
	} {
		if _, err := s3blob.Open(bad); err == nil {
			t.Errorf("Open(%s) accepted", bad)
		} else if strings.Contains(err.Error(), "sekrit") {
			t.Errorf("error shows the secret: %v", err)
		}
	}
}
