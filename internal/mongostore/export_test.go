package mongostore

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/postflow/postflow/posts"
)

// AssumeMongoDB makes the store take the paths it takes on MongoDB, so that
// tests against FerretDB (which answers those filters, only slower) cover
// them too.
func (s *Store) AssumeMongoDB() {
	s.ferretMu.Lock()
	defer s.ferretMu.Unlock()
	s.ferretKnown, s.ferret = true, false
}

// UnpublishClaimOf is the post's unpublish claim, nil if it holds none.
func (p *Posts) UnpublishClaimOf(ctx context.Context, postID string) (*posts.UnpublishClaim, error) {
	oid, _ := objectID(postID)
	var d postDoc
	if err := p.posts.FindOne(ctx, bson.D{{Key: "_id", Value: oid}}).Decode(&d); err != nil {
		return nil, err
	}
	if d.UnpublishClaim == nil {
		return nil, nil
	}
	c := d.UnpublishClaim.claim()
	return &c, nil
}

// Serialize is serialize, for the lock's own tests.
func (s *Store) Serialize(ctx context.Context, key string, f func() error) error {
	return s.serialize(ctx, key, f)
}

// IsFerretDB is isFerretDB: the lock is FerretDB's alone.
func (s *Store) IsFerretDB(ctx context.Context) bool { return s.isFerretDB(ctx) }

// WaitingOnMarks is u waiting up to d (not markWait) on a fresh delete mark.
func (u *UsableMedia) WaitingOnMarks(d time.Duration) *UsableMedia {
	return &UsableMedia{m: u.m, markWait: d}
}
