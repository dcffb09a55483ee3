// Package mongostore connects to MongoDB (or a server that speaks its
// protocol) and owns PostFlow's collections and their indexes.
package mongostore

import (
	"context"
	"fmt"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// DefaultDatabase is used when the URI names none.
const DefaultDatabase = "postflow"

// Store is a connected client and PostFlow's database.
type Store struct {
	Client *mongo.Client
	DB     *mongo.Database

	ferretMu    sync.Mutex
	ferretKnown bool
	ferret      bool
}

// isFerretDB reports whether the server is FerretDB, which uses an index
// only for a filter that is exactly {_id} and runs findAndModify as a read
// and a write. Stores then favour _id-only filters. Asked until it answers:
// a first call that fails (the server down, ctx done) says MongoDB this
// once, not for the process's life.
func (s *Store) isFerretDB(ctx context.Context) bool {
	s.ferretMu.Lock()
	defer s.ferretMu.Unlock()
	if s.ferretKnown {
		return s.ferret
	}
	var info bson.M
	if err := s.DB.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return false
	}
	_, s.ferret = info["ferretdbVersion"]
	s.ferretKnown = true
	return s.ferret
}

// Connect prepares a client for uri. The driver connects lazily, so this
// succeeds while MongoDB is down; Ping tells whether it answers.
func Connect(uri string) (*Store, error) {
	cs, err := connstring.ParseAndValidate(uri)
	if err != nil {
		// The driver's message can repeat the URI, password included.
		return nil, fmt.Errorf("mongo: MONGODB_URI is not a valid connection string")
	}
	name := cs.Database
	if name == "" {
		name = DefaultDatabase
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetAppName("postflow"))
	if err != nil {
		return nil, fmt.Errorf("mongo: connect: %w", err)
	}
	return &Store{Client: client, DB: client.Database(name)}, nil
}

// Ping asks the primary to answer.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.Client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("mongo: ping: %w", err)
	}
	return nil
}

// Close ends every connection of the client.
func (s *Store) Close(ctx context.Context) error {
	return s.Client.Disconnect(ctx)
}

// newestFirst reads up to limit documents matching filter, newest first by
// _id (an ObjectID), older than the id before when it is not "" (an id that
// is no ObjectID pages to nothing), each turned into a T by conv: the one
// page reader of every listing route. what names the listing in errors.
func newestFirst[D any, T any](ctx context.Context, coll *mongo.Collection, filter bson.D, limit int, before, what string, conv func(*D) *T) ([]T, error) {
	if before != "" {
		oid, ok := objectID(before)
		if !ok {
			return []T{}, nil
		}
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$lt", Value: oid}}})
	}
	cur, err := coll.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("mongo: list %s: %w", what, err)
	}
	var docs []D
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: list %s: %w", what, err)
	}
	out := make([]T, 0, len(docs))
	for i := range docs {
		out = append(out, *conv(&docs[i]))
	}
	return out, nil
}
