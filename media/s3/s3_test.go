package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postflow/postflow/internal/realpeers"
	"github.com/postflow/postflow/media"
	"github.com/postflow/postflow/media/s3"
	"github.com/postflow/postflow/media/storetest"
)

func config(srv *realpeers.S3, bucket string) s3.Config {
	return s3.Config{
		Endpoint:        srv.URL,
		Region:          srv.Region,
		Bucket:          bucket,
		AccessKeyID:     srv.AccessKeyID,
		SecretAccessKey: srv.SecretAccessKey,
		ForcePathStyle:  true,
		HTTPClient:      srv.Client,
	}
}

// The conformance suite against a real S3-protocol server, one bucket per
// subtest: over https, as S3 is used in production (the SDK streams with a
// trailing checksum), and over plain http, as in development (no checksum).
func TestConformance(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []realpeers.S3Option
	}{{"https", []realpeers.S3Option{realpeers.S3TLS()}}, {"http", nil}} {
		t.Run(tt.name, func(t *testing.T) {
			srv := realpeers.StartS3(t, tt.opts...)
			var n atomic.Int32
			storetest.Run(t, func(t *testing.T) media.Store {
				bucket := fmt.Sprintf("media-%d", n.Add(1))
				srv.CreateBucket(t, bucket)
				s, err := s3.New(config(srv, bucket))
				if err != nil {
					t.Fatal(err)
				}
				return s
			}, storetest.Options{Presigns: true, HTTPClient: srv.Client})
		})
	}
}

// A Put leaves one object, under its key: the temporary one it streamed
// to is gone.
func TestPutLeavesNoTemporaryObject(t *testing.T) {
	srv := realpeers.StartS3(t)
	srv.CreateBucket(t, "bkt")
	s, err := s3.New(config(srv, "bkt"))
	if err != nil {
		t.Fatal(err)
	}
	b := storetest.Data(1, 100*1024)
	if err := s.Put(context.Background(), "k1", bytes.NewReader(b), int64(len(b)), "image/png"); err != nil {
		t.Fatal(err)
	}
	var files []string
	err = filepath.WalkDir(filepath.Join(srv.Dir, "bkt"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(srv.Dir, p)
			files = append(files, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0] != filepath.Join("bkt", "k1") {
		t.Fatalf("objects in the bucket: %v, want [bkt/k1]", files)
	}
	// The copy kept the Content-Type Put was given.
	u, err := s.PresignedURL(context.Background(), "k1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	res, err := srv.Client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != http.StatusOK || ct != "image/png" {
		t.Fatalf("GET the object: %d, Content-Type %q; want 200, image/png", res.StatusCode, ct)
	}
}

func TestCheckBucket(t *testing.T) {
	srv := realpeers.StartS3(t)
	srv.CreateBucket(t, "there")
	wrongKey := config(srv, "there")
	wrongKey.SecretAccessKey = "not-the-secret-0123456789"
	for _, tt := range []struct {
		name string
		c    s3.Config
		want error
	}{
		{"exists", config(srv, "there"), nil},
		{"missing", config(srv, "missing"), s3.ErrNoBucket},
		{"wrong secret", wrongKey, s3.ErrAccessDenied},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := s3.New(tt.c)
			if err != nil {
				t.Fatal(err)
			}
			err = s.CheckBucket(context.Background())
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("CheckBucket = %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), tt.c.SecretAccessKey) {
				t.Fatalf("CheckBucket's error shows the secret: %v", err)
			}
		})
	}
}

// Keys go under the prefix, as a folder, and the prefix's slashes are
// normalised.
func TestPrefix(t *testing.T) {
	srv := realpeers.StartS3(t)
	srv.CreateBucket(t, "bkt")
	for _, prefix := range []string{"postflow/media", "/postflow/media/"} {
		c := config(srv, "bkt")
		c.Prefix = prefix
		s, err := s3.New(c)
		if err != nil {
			t.Fatal(err)
		}
		b := storetest.Data(1, 10)
		if err := s.Put(context.Background(), "k1", bytes.NewReader(b), int64(len(b)), "image/png"); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(srv.Dir, "bkt", "postflow", "media", "k1"))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("prefix %q: object file %v, %d bytes; want bkt/postflow/media/k1", prefix, err, len(got))
		}
	}
}

// The presigned URL carries the access key id (as SigV4 does) but never
// the secret.
func TestPresignedURLHidesTheSecret(t *testing.T) {
	srv := realpeers.StartS3(t)
	s, err := s3.New(config(srv, "bkt"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.PresignedURL(context.Background(), "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(u, srv.SecretAccessKey) || !strings.Contains(u, "X-Amz-Signature=") {
		t.Fatalf("presigned URL %q: want a signature and no secret", u)
	}
	if _, err := http.NewRequest(http.MethodGet, u, nil); err != nil {
		t.Fatal(err)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		c    s3.Config
	}{
		{"no bucket", s3.Config{AccessKeyID: "a", SecretAccessKey: "s"}},
		{"no key", s3.Config{Bucket: "bkt", SecretAccessKey: "s"}},
		{"no secret", s3.Config{Bucket: "bkt", AccessKeyID: "a"}},
		{"bad endpoint", s3.Config{Bucket: "bkt", AccessKeyID: "a", SecretAccessKey: "s", Endpoint: "ftp://x"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s3.New(tt.c); err == nil {
				t.Fatal("New = nil error, want a refusal")
			}
		})
	}
}
