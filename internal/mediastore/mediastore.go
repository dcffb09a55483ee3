// Package mediastore builds the media.Store the configuration names
// (MEDIA_STORE) and checks it at start-up. It is apart from internal/app so
// that its tests need no Temporal.
package mediastore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/postflow/postflow/internal/config"
	"github.com/postflow/postflow/media"
	"github.com/postflow/postflow/media/gridfs"
	mediaS3 "github.com/postflow/postflow/media/s3"
)

// New builds the media.Store that cfg.MediaStore names: GridFS in db
// (collections media.files and media.chunks), or the S3 bucket of cfg.S3.
// It makes no request; CheckAtStart does.
func New(cfg *config.Config, db *mongo.Database) (media.Store, error) {
	switch cfg.MediaStore {
	case config.MediaStoreGridFS, "":
		return gridfs.New(db, gridfs.Options{}), nil
	case config.MediaStoreS3:
		s, err := mediaS3.New(mediaS3.Config{
			Endpoint:        cfg.S3.Endpoint,
			Region:          cfg.S3.Region,
			Bucket:          cfg.S3.Bucket,
			AccessKeyID:     cfg.S3.AccessKeyID,
			SecretAccessKey: cfg.S3.SecretAccessKey,
			ForcePathStyle:  cfg.S3.ForcePathStyle,
			Prefix:          cfg.S3.Prefix,
		})
		if err != nil {
			return nil, fmt.Errorf("media store: %w", err)
		}
		return s, nil
	default:
		return nil, &config.Error{Var: "MEDIA_STORE", Problem: fmt.Sprintf("must be gridfs or s3, got %q", cfg.MediaStore)}
	}
}

// bucketChecker is a store with a bucket to look for (media/s3).
type bucketChecker interface {
	CheckBucket(ctx context.Context) error
}

// startTimeout bounds the start-up look at the bucket.
const startTimeout = 10 * time.Second

// CheckAtStart looks for the bucket of a store that has one (GridFS has
// none to look for). A bucket that is missing or refused is a
// *config.Error naming S3_BUCKET, which the process stops on; a server
// that does not answer is logged and left to /readyz (Ready), as for
// MongoDB, since it may be starting still.
func CheckAtStart(ctx context.Context, s media.Store, logger *slog.Logger) error {
	bc, ok := s.(bucketChecker)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	err := bc.CheckBucket(ctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mediaS3.ErrNoBucket):
		return &config.Error{Var: "S3_BUCKET", Problem: "no such bucket at the S3 endpoint: create it first (" + err.Error() + ")"}
	case errors.Is(err, mediaS3.ErrAccessDenied):
		return &config.Error{Var: "S3_BUCKET", Problem: "the S3 server refused S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY for this bucket (" + err.Error() + ")"}
	default:
		logger.Warn("could not reach the media bucket now; /readyz reports it", "error", err)
		return nil
	}
}

// Ready is the /readyz check of a store with a bucket (HEAD bucket), nil
// for one without (GridFS is MongoDB's check).
func Ready(s media.Store) func(context.Context) error {
	if bc, ok := s.(bucketChecker); ok {
		return bc.CheckBucket
	}
	return nil
}
