package app

import (
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/postflow/postflow/internal/config"
	"github.com/postflow/postflow/internal/mediastore"
	"github.com/postflow/postflow/media"
)

// MediaStore builds the media.Store that cfg.MediaStore names: GridFS in
// db, or the S3 bucket of cfg.S3 (see internal/mediastore). The API and
// the worker get theirs from openDeps (deps.media), which also checks at
// start-up that the bucket exists.
func MediaStore(cfg *config.Config, db *mongo.Database) (media.Store, error) {
	return mediastore.New(cfg, db)
}
