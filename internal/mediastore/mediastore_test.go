package mediastore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/postflow/postflow/internal/config"
	"github.com/postflow/postflow/internal/lockedbuf"
	"github.com/postflow/postflow/internal/mediastore"
	"github.com/postflow/postflow/internal/mongotest"
	"github.com/postflow/postflow/internal/realpeers"
	"github.com/postflow/postflow/media/gridfs"
	mediaS3 "github.com/postflow/postflow/media/s3"
)

func TestMain(m *testing.M) { mongotest.Main(m) }

// s3Config is a valid configuration for srv's bucket.
func s3Config(srv *realpeers.S3, bucket string) *config.Config {
	return &config.Config{MediaStore: config.MediaStoreS3, S3: config.S3{
		Endpoint: srv.URL, Region: srv.Region, Bucket: bucket,
		AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey, ForcePathStyle: true,
	}}
}

// The default store is GridFS in PostFlow's database, and what it stores
// is there.
func TestGridFSByDefault(t *testing.T) {
	db := mongotest.Store(t).DB
	s, err := mediastore.New(&config.Config{MediaStore: config.MediaStoreGridFS}, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*gridfs.Store); !ok {
		t.Fatalf("store is %T, want *gridfs.Store", s)
	}
	ctx := context.Background()
	if err := s.Put(ctx, "k", strings.NewReader("abc"), 3, "image/png"); err != nil {
		t.Fatal(err)
	}
	if n, err := db.Collection("media.files").CountDocuments(ctx, map[string]any{}); err != nil || n != 1 {
		t.Fatalf("media.files holds %d documents (%v), want 1", n, err)
	}
	if err := mediastore.CheckAtStart(ctx, s, slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("CheckAtStart(gridfs) = %v", err)
	}
	if mediastore.Ready(s) != nil {
		t.Error("Ready(gridfs) is a check; MongoDB's own covers it")
	}
}

// With MEDIA_STORE=s3 the store is the bucket; a missing bucket or wrong
// keys stop the start with an error naming S3_BUCKET and never the
// secret; a server that is down is only logged.
func TestS3AtStart(t *testing.T) {
	srv := realpeers.StartS3(t)
	srv.CreateBucket(t, "postflow-media")
	wrongSecret := s3Config(srv, "postflow-media")
	wrongSecret.S3.SecretAccessKey = "wrong-secret-0123456789abcdef"
	down := s3Config(srv, "postflow-media")
	down.S3.Endpoint = "http://127.0.0.1:1"
	for _, tt := range []struct {
		name    string
		cfg     *config.Config
		wantVar string // "" for no error
		wantLog string
	}{
		{"bucket there", s3Config(srv, "postflow-media"), "", ""},
		{"no bucket", s3Config(srv, "not-there"), "S3_BUCKET", ""},
		{"wrong secret", wrongSecret, "S3_BUCKET", ""},
		{"server down", down, "", "could not reach the media bucket"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := mediastore.New(tt.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := s.(*mediaS3.Store); !ok {
				t.Fatalf("store is %T, want *s3.Store", s)
			}
			var logs lockedbuf.Buffer
			err = mediastore.CheckAtStart(context.Background(), s, slog.New(slog.NewTextHandler(&logs, nil)))
			var ce *config.Error
			switch {
			case tt.wantVar == "" && err != nil:
				t.Fatalf("CheckAtStart = %v, want nil", err)
			case tt.wantVar != "" && (!errors.As(err, &ce) || ce.Var != tt.wantVar):
				t.Fatalf("CheckAtStart = %v, want a config error on %s", err, tt.wantVar)
			}
			if !strings.Contains(logs.String(), tt.wantLog) || (tt.wantLog == "" && logs.String() != "") {
				t.Errorf("logged %q, want %q", logs.String(), tt.wantLog)
			}
			for _, out := range []string{logs.String(), errString(err)} {
				if strings.Contains(out, tt.cfg.S3.SecretAccessKey) {
					t.Fatalf("the secret shows in %q", out)
				}
			}
			if tt.wantVar == "" && tt.wantLog == "" {
				ctx := context.Background()
				if err := mediastore.Ready(s)(ctx); err != nil {
					t.Fatalf("Ready = %v", err)
				}
				if err := s.Put(ctx, "k", bytes.NewReader([]byte("abc")), 3, "image/png"); err != nil {
					t.Fatal(err)
				}
				rc, err := s.Open(ctx, "k")
				if err != nil {
					t.Fatal(err)
				}
				defer rc.Close()
				if b, _ := io.ReadAll(rc); string(b) != "abc" {
					t.Fatalf("read back %q", b)
				}
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
