package mongostore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/postflow/postflow/internal/mongotest"
)

// The FerretDB lock: a fresh lock of another holder is waited for, an
// expired one is removed, and a release removes the holder's own lock
// only, never one taken after it expired.
func TestSerializeLock(t *testing.T) {
	ctx := context.Background()
	s := mongotest.Store(t)
	if !s.IsFerretDB(ctx) {
		t.Skip("MongoDB's conditional updates are atomic: serialize takes no lock there")
	}
	locks := s.DB.Collection("documentLocks")
	lock := func(key string, owner bson.ObjectID, at time.Time) {
		t.Helper()
		if _, err := locks.InsertOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "owner", Value: owner}, {Key: "at", Value: at.UTC()}}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(key string) int64 {
		t.Helper()
		n, err := locks.CountDocuments(ctx, bson.D{{Key: "_id", Value: key}})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("waits for a held lock", func(t *testing.T) {
		lock("posts/held", bson.NewObjectID(), time.Now())
		var ran atomic.Bool
		done := make(chan error, 1)
		go func() { done <- s.Serialize(ctx, "posts/held", func() error { ran.Store(true); return nil }) }()
		time.Sleep(200 * time.Millisecond) // if it runs meanwhile, that is the bug
		if ran.Load() {
			t.Fatal("ran while another held the lock")
		}
		if _, err := locks.DeleteOne(ctx, bson.D{{Key: "_id", Value: "posts/held"}}); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil || !ran.Load() {
			t.Fatalf("after the release: %v, ran %v", err, ran.Load())
		}
		if n := count("posts/held"); n != 0 {
			t.Errorf("%d locks left", n)
		}
	})

	t.Run("an expired lock is removed", func(t *testing.T) {
		lock("posts/expired", bson.NewObjectID(), time.Now().Add(-time.Hour))
		if err := s.Serialize(ctx, "posts/expired", func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		if n := count("posts/expired"); n != 0 {
			t.Errorf("%d locks left", n)
		}
	})

	t.Run("a release keeps a lock taken after its own expired", func(t *testing.T) {
		other := bson.NewObjectID()
		err := s.Serialize(ctx, "posts/taken", func() error {
			// Ours expired and another holder took the document.
			if _, err := locks.DeleteOne(ctx, bson.D{{Key: "_id", Value: "posts/taken"}}); err != nil {
				return err
			}
			lock("posts/taken", other, time.Now())
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var held struct {
			Owner bson.ObjectID `bson:"owner"`
		}
		if err := locks.FindOne(ctx, bson.D{{Key: "_id", Value: "posts/taken"}}).Decode(&held); err != nil || held.Owner != other {
			t.Errorf("the other holder's lock: %+v, %v; want it kept", held, err)
		}
	})
}
