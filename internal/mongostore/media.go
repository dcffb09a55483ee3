package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/postflow/postflow/media"
)

type mediaDoc struct {
	ID             bson.ObjectID `bson:"_id"`
	OrganizationID string        `bson:"organizationId"`
	Type           string        `bson:"type"`
	Width          int           `bson:"width"`
	Height         int           `bson:"height"`
	Size           int64         `bson:"size"`
	SHA256         string        `bson:"sha256"`
	Filename       string        `bson:"filename,omitempty"`
	CreatedAt      time.Time     `bson:"createdAt"`
	// DeletingSince marks a delete under way, since when
	// (media.Items.MarkDeleting); nil if none.
	DeletingSince *time.Time `bson:"deletingSince,omitempty"`
}

func (d *mediaDoc) item() *media.Item {
	return &media.Item{
		ID: d.ID.Hex(), OrganizationID: d.OrganizationID, Type: d.Type, Width: d.Width, Height: d.Height,
		Size: d.Size, SHA256: d.SHA256, Filename: d.Filename, CreatedAt: d.CreatedAt.UTC(),
	}
}

// Media is the media collection: the library's records (media.Items). The
// bytes are in a media.Store under the same id.
type Media struct {
	store *Store
	coll  *mongo.Collection
}

// Media returns the media library's records.
func (s *Store) Media() *Media { return &Media{store: s, coll: s.DB.Collection("media")} }

var _ media.Items = (*Media)(nil)

// EnsureIndexes creates the index the list page reads (MongoDB; FerretDB
// v1 scans whatever the filter).
func (m *Media) EnsureIndexes(ctx context.Context) error {
	if _, err := m.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "organizationId", Value: 1}, {Key: "_id", Value: -1}},
	}); err != nil {
		return fmt.Errorf("mongo: media indexes: %w", err)
	}
	return nil
}

// NewID returns a fresh ObjectID in hex: ids sort by creation time, which
// the list's order relies on.
func (m *Media) NewID() string { return bson.NewObjectID().Hex() }

// Create inserts item under item.ID (from NewID).
func (m *Media) Create(ctx context.Context, item *media.Item) (*media.Item, error) {
	oid, ok := objectID(item.ID)
	if !ok {
		return nil, fmt.Errorf("mongo: create media: id %q is not an ObjectID", item.ID)
	}
	d := mediaDoc{
		ID: oid, OrganizationID: item.OrganizationID, Type: item.Type, Width: item.Width, Height: item.Height,
		Size: item.Size, SHA256: item.SHA256, Filename: item.Filename, CreatedAt: item.CreatedAt.UTC(),
	}
	if _, err := m.coll.InsertOne(ctx, d); err != nil {
		return nil, fmt.Errorf("mongo: create media %s: %w", item.ID, err)
	}
	return d.item(), nil
}

// GetByID reads the item by _id alone (FerretDB's only indexed lookup),
// marked or not; media.ErrNotFound if there is none or id is no ObjectID.
func (m *Media) GetByID(ctx context.Context, id string) (*media.Item, error) {
	d, err := m.doc(ctx, id)
	if err != nil {
		return nil, err
	}
	return d.item(), nil
}

func (m *Media) doc(ctx context.Context, id string) (*mediaDoc, error) {
	oid, ok := objectID(id)
	if !ok {
		return nil, media.ErrNotFound
	}
	var d mediaDoc
	err := m.coll.FindOne(ctx, bson.D{{Key: "_id", Value: oid}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, media.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: read media %s: %w", id, err)
	}
	return &d, nil
}

// Get returns the item if it belongs to orgID: read by _id, then the
// organization checked, so another organization's item is not found.
func (m *Media) Get(ctx context.Context, orgID, id string) (*media.Item, error) {
	it, err := m.GetByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if it.OrganizationID != orgID {
		return nil, media.ErrNotFound
	}
	return it, nil
}

// MarkDeleting sets (with the time) or clears the mark of a delete under
// way, by _id, after the organization is checked on a read. A mark is set
// only where none is, or a stale one (staleMark: its delete died): on
// MongoDB in the update's filter, on FerretDB (whose conditional updates
// are a check then a write) on a read under the item's lock (serialize).
func (m *Media) MarkDeleting(ctx context.Context, orgID, id string, deleting bool) error {
	it, err := m.Get(ctx, orgID, id)
	if err != nil {
		return err
	}
	oid, _ := objectID(it.ID)
	byID := bson.D{{Key: "_id", Value: oid}}
	key := "media/" + oid.Hex()
	if !deleting {
		// Only the delete holding the mark clears it; under the lock too,
		// or FerretDB's write of the whole document could drop a mark.
		return m.store.serialize(ctx, key, func() error {
			res, err := m.coll.UpdateOne(ctx, byID, bson.D{{Key: "$unset", Value: bson.D{{Key: "deletingSince", Value: ""}}}})
			if err != nil {
				return fmt.Errorf("mongo: unmark media %s: %w", id, err)
			}
			if res.MatchedCount == 0 {
				return media.ErrNotFound
			}
			return nil
		})
	}
	now := time.Now().UTC()
	free := func(d *mediaDoc) bool { return d.DeletingSince == nil || now.Sub(*d.DeletingSince) > staleMark }
	// why reads the item to say why a mark was refused.
	why := func() error {
		d, err := m.doc(ctx, id)
		if err != nil {
			return err
		}
		if !free(d) {
			return media.ErrBeingDeleted
		}
		return nil
	}
	unmarked := bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "deletingSince", Value: bson.D{{Key: "$exists", Value: false}}}},
		bson.D{{Key: "deletingSince", Value: bson.D{{Key: "$lt", Value: now.Add(-staleMark)}}}},
	}}}
	return m.store.checkedWrite(ctx, key, byID, unmarked, why, func(filter bson.D) (bool, error) {
		res, err := m.coll.UpdateOne(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "deletingSince", Value: now}}}})
		if err != nil {
			return false, fmt.Errorf("mongo: mark media %s: %w", id, err)
		}
		return res.MatchedCount > 0, nil
	}, media.ErrBeingDeleted) // marked and unmarked between the writes and the reads
}

// How UsableMedia.Get treats a marked item. A delete holds its mark for
// two reads and a write (milliseconds), so a post waits markWait for it
// to end (deleted: gone; refused: unmarked) rather than failing both. A
// mark older than staleMark was left by a process that died mid-delete:
// no delete holds it, and it must not lock the image out of posts.
const (
	markWait  = 250 * time.Millisecond
	markPoll  = 5 * time.Millisecond
	staleMark = 5 * time.Minute
)

// Usable is the library's items as a post may name them (posts.MediaItems):
// an item marked as being deleted is not found.
func (m *Media) Usable() *UsableMedia { return &UsableMedia{m: m, markWait: markWait} }

// UsableMedia is Media.Usable.
type UsableMedia struct {
	m *Media
	// markWait is how long Get waits on a fresh mark: markWait, except in
	// tests that need a margin on a loaded machine (export_test.go).
	markWait time.Duration
}

// Get returns orgID's item id unless it is gone or a delete of it is under
// way (media.Library.Delete); media.ErrNotFound otherwise. A fresh mark is
// waited on for up to markWait: the delete either removes the item or,
// refused, unmarks it.
func (u *UsableMedia) Get(ctx context.Context, orgID, id string) (*media.Item, error) {
	deadline := time.Now().Add(u.markWait)
	for {
		d, err := u.m.doc(ctx, id)
		if err != nil {
			return nil, err
		}
		if d.OrganizationID != orgID {
			return nil, media.ErrNotFound
		}
		if d.DeletingSince == nil || time.Since(*d.DeletingSince) > staleMark {
			return d.item(), nil
		}
		if time.Now().After(deadline) {
			return nil, media.ErrNotFound
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(markPoll):
		}
	}
}

// List returns up to limit items of orgID, newest first (by _id), older
// than the item before when it is not "" (an id that is no ObjectID
// lists nothing).
func (m *Media) List(ctx context.Context, orgID string, limit int, before string) ([]media.Item, error) {
	return newestFirst(ctx, m.coll, bson.D{{Key: "organizationId", Value: orgID}}, limit, before, "media", (*mediaDoc).item)
}

// Delete removes the item if it belongs to orgID, marked or not (checked
// on a read by _id, then deleted by _id); media.ErrNotFound otherwise.
func (m *Media) Delete(ctx context.Context, orgID, id string) error {
	it, err := m.Get(ctx, orgID, id)
	if err != nil {
		return err
	}
	oid, _ := objectID(it.ID)
	res, err := m.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: oid}})
	if err != nil {
		return fmt.Errorf("mongo: delete media %s: %w", id, err)
	}
	if res.DeletedCount == 0 {
		return media.ErrNotFound
	}
	return nil
}
