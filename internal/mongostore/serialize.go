package mongostore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// FerretDB v1 runs an update (and a findAndModify, and a delete) as a
// query, a check of the filter in Go, then a write of the whole document
// by _id, with nothing held between them: of eight concurrent
// UpdateOne({_id, claim: {$exists: false}}) calls on one document,
// several match (tried on v1.24.2). A conditional update, MongoDB's
// compare-and-set, is a check then an act there. Only an insert is
// atomic, by the unique _id. serialize makes the stores' conditional
// updates atomic on FerretDB with that: a lock document per guarded
// document, held across the read, the check and the write.
const (
	// lockWait is how long serialize waits for a lock before it gives
	// up: the writes it guards take milliseconds.
	lockWait = 10 * time.Second
	// lockExpiry is the age past which a lock is taken to be a crashed
	// holder's and removed.
	lockExpiry = 30 * time.Second
)

// ErrLockTimeout: serialize waited lockWait for a lock held by another
// caller (FerretDB only).
var ErrLockTimeout = errors.New("mongo: a write to the same document held its lock too long")

// serialize runs f, which reads, checks and writes the document named
// key ("collection/id"), alone among serialize's callers for key, in any
// process, on FerretDB; on MongoDB, whose conditional updates are atomic,
// it runs f as it is. Errors: f's, ErrLockTimeout, the store's.
//
// Limits (FerretDB, a development store): a write that does not go
// through serialize can still overwrite the whole document between f's
// read and write; a holder stalled past lockExpiry loses its lock.
func (s *Store) serialize(ctx context.Context, key string, f func() error) error {
	if !s.isFerretDB(ctx) {
		return f()
	}
	locks := s.DB.Collection("documentLocks")
	// The holder's own mark: its release, and a waiter's removal of an
	// expired lock, remove that lock only, not one taken after it.
	owner := bson.NewObjectID()
	deadline := time.Now().Add(lockWait)
	pause := time.Millisecond
	for {
		_, err := locks.InsertOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "owner", Value: owner}, {Key: "at", Value: time.Now().UTC()}})
		if err == nil {
			break
		}
		if !mongo.IsDuplicateKeyError(err) {
			// The server may have applied the insert before the failure
			// (a cancelled request, a timeout): remove it if it is ours.
			_, _ = locks.DeleteOne(context.WithoutCancel(ctx), bson.D{{Key: "_id", Value: key}, {Key: "owner", Value: owner}})
			return fmt.Errorf("mongo: lock %s: %w", key, err)
		}
		var held struct {
			Owner bson.ObjectID `bson:"owner"`
			At    time.Time     `bson:"at"`
		}
		switch err := locks.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&held); {
		case errors.Is(err, mongo.ErrNoDocuments):
			continue // released meanwhile
		case err != nil:
			return fmt.Errorf("mongo: lock %s: %w", key, err)
		case time.Since(held.At) > lockExpiry:
			if _, err := locks.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "owner", Value: held.Owner}}); err != nil {
				return fmt.Errorf("mongo: lock %s: remove an expired one: %w", key, err)
			}
			continue
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w (%s)", ErrLockTimeout, key)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("mongo: lock %s: %w", key, ctx.Err())
		case <-time.After(pause):
		}
		pause = min(2*pause, 20*time.Millisecond)
	}
	defer func() {
		// Released whatever f's fate, even with ctx done: a lock left
		// behind blocks the document for lockExpiry.
		_, _ = locks.DeleteOne(context.WithoutCancel(ctx), bson.D{{Key: "_id", Value: key}, {Key: "owner", Value: owner}})
	}()
	return f()
}

// checkedWrite writes one document (key names its lock) only if a
// condition holds, as one atomic step, and says why not otherwise: the
// shared shape of the stores' conditional writes.
//
// On MongoDB write's filter is byID and cond, one conditional write; when
// it matches nothing, why (a read of the document) returns the refusal
// (not found, or the condition's own error). If the condition holds again
// by then, it changed between the write and the read, and the write is
// tried again, three times at most, then changed is returned. On FerretDB,
// whose conditional writes are a check then a write (serialize), why
// runs first and the write goes by byID, both under the document's lock;
// a write that then matches nothing (a delete outside the lock) returns
// why's answer, or changed.
//
// write reports whether it matched a document.
func (s *Store) checkedWrite(ctx context.Context, key string, byID, cond bson.D, why func() error, write func(filter bson.D) (bool, error), changed error) error {
	if s.isFerretDB(ctx) {
		return s.serialize(ctx, key, func() error {
			if err := why(); err != nil {
				return err
			}
			matched, err := write(byID)
			if err != nil || matched {
				return err
			}
			if err := why(); err != nil {
				return err
			}
			return changed
		})
	}
	filter := append(slices.Clone(byID), cond...)
	for range 3 {
		matched, err := write(filter)
		if err != nil || matched {
			return err
		}
		if err := why(); err != nil {
			return err
		}
	}
	return changed
}
