package mongostore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/postflow/postflow/webhooks"
)

type endpointDoc struct {
	ID                      bson.ObjectID    `bson:"_id"`
	OrganizationID          string           `bson:"organizationId"`
	URL                     string           `bson:"url"`
	Description             string           `bson:"description,omitempty"`
	Events                  []string         `bson:"events"`
	Enabled                 bool             `bson:"enabled"`
	FailureStreak           int              `bson:"failureStreak"`
	FailingSince            *time.Time       `bson:"failingSince,omitempty"`
	Notice                  *webhooks.Notice `bson:"notice,omitempty"`
	Secret                  string           `bson:"secret"`
	PreviousSecret          string           `bson:"previousSecret,omitempty"`
	PreviousSecretExpiresAt *time.Time       `bson:"previousSecretExpiresAt,omitempty"`
	CreatedAt               time.Time        `bson:"createdAt"`
	UpdatedAt               time.Time        `bson:"updatedAt"`
}

func (d *endpointDoc) endpoint() *webhooks.Endpoint {
	e := &webhooks.Endpoint{ID: d.ID.Hex(), OrganizationID: d.OrganizationID, URL: d.URL, Description: d.Description,
		Events: d.Events, Enabled: d.Enabled, FailureStreak: d.FailureStreak, FailingSince: utcPtr(d.FailingSince),
		Notice: d.Notice, Secret: d.Secret, PreviousSecret: d.PreviousSecret, PreviousSecretExpiresAt: utcPtr(d.PreviousSecretExpiresAt),
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC()}
	if e.Events == nil {
		e.Events = []string{}
	}
	if e.Notice != nil {
		e.Notice.At = e.Notice.At.UTC()
	}
	return e
}

type eventDoc struct {
	ID             string    `bson:"_id"`
	OrganizationID string    `bson:"organizationId"`
	Type           string    `bson:"type"`
	Timestamp      time.Time `bson:"timestamp"`
	// Body is kept as the bytes sent, so that every attempt signs the same.
	Body []byte `bson:"body"`
	// Dispatched: every delivery run is started (the outbox mark). Events
	// stored before the outbox have no field and are never swept: theirs
	// were started when they were stored, or logged as lost.
	Dispatched   bool       `bson:"dispatched"`
	DispatchedAt *time.Time `bson:"dispatchedAt,omitempty"`
}

type deliveryDoc struct {
	ID             bson.ObjectID `bson:"_id"`
	EndpointID     string        `bson:"endpointId"`
	OrganizationID string        `bson:"organizationId"`
	EventID        string        `bson:"eventId"`
	EventType      string        `bson:"eventType"`
	Attempt        int           `bson:"attempt"`
	Redelivery     bool          `bson:"redelivery,omitempty"`
	At             time.Time     `bson:"at"`
	Success        bool          `bson:"success"`
	StatusCode     int           `bson:"statusCode,omitempty"`
	DurationMs     int64         `bson:"durationMs"`
	Error          string        `bson:"error,omitempty"`
	Response       string        `bson:"response,omitempty"`
	NextAttemptAt  *time.Time    `bson:"nextAttemptAt,omitempty"`
}

func (d *deliveryDoc) delivery() *webhooks.Delivery {
	return &webhooks.Delivery{ID: d.ID.Hex(), EndpointID: d.EndpointID, OrganizationID: d.OrganizationID, EventID: d.EventID,
		EventType: d.EventType, Attempt: d.Attempt, Redelivery: d.Redelivery, At: d.At.UTC(), Success: d.Success,
		StatusCode: d.StatusCode, DurationMs: d.DurationMs, Error: d.Error, Response: d.Response, NextAttemptAt: utcPtr(d.NextAttemptAt)}
}

// Webhooks is the webhook_endpoints, webhook_events and webhook_deliveries
// collections (webhooks.Store). Reads of one item are by _id alone
// (FerretDB's only indexed lookup); lists filter by organization or
// endpoint, which MongoDB indexes (EnsureIndexes) and FerretDB scans.
type Webhooks struct {
	store                         *Store
	endpoints, events, deliveries *mongo.Collection
}

// Webhooks returns the webhook store.
func (s *Store) Webhooks() *Webhooks {
	return &Webhooks{store: s, endpoints: s.DB.Collection("webhook_endpoints"), events: s.DB.Collection("webhook_events"),
		deliveries: s.DB.Collection("webhook_deliveries")}
}

var _ webhooks.Store = (*Webhooks)(nil)

// EnsureIndexes creates the indexes the lists read (MongoDB).
func (w *Webhooks) EnsureIndexes(ctx context.Context) error {
	if _, err := w.endpoints.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "organizationId", Value: 1}}}); err != nil {
		return fmt.Errorf("mongo: webhook indexes: %w", err)
	}
	if _, err := w.deliveries.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "endpointId", Value: 1}, {Key: "_id", Value: -1}},
	}); err != nil {
		return fmt.Errorf("mongo: webhook indexes: %w", err)
	}
	// The sweeper's query (Undispatched), once a minute. Not a partial
	// index (only the undispatched): FerretDB refuses that option, and
	// this runs on both.
	if _, err := w.events.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "dispatched", Value: 1}, {Key: "timestamp", Value: 1}},
	}); err != nil {
		return fmt.Errorf("mongo: webhook indexes: %w", err)
	}
	return nil
}

// NewID returns a fresh ObjectID in hex (ids sort by creation time).
func (w *Webhooks) NewID() string { return bson.NewObjectID().Hex() }

// CreateEndpoint inserts e under e.ID (from NewID).
func (w *Webhooks) CreateEndpoint(ctx context.Context, e *webhooks.Endpoint) error {
	oid, ok := objectID(e.ID)
	if !ok {
		return fmt.Errorf("mongo: create webhook: id %q is not an ObjectID", e.ID)
	}
	d := endpointDoc{ID: oid, OrganizationID: e.OrganizationID, URL: e.URL, Description: e.Description, Events: e.Events,
		Enabled: e.Enabled, Secret: e.Secret, CreatedAt: e.CreatedAt.UTC(), UpdatedAt: e.UpdatedAt.UTC()}
	if _, err := w.endpoints.InsertOne(ctx, d); err != nil {
		return fmt.Errorf("mongo: create webhook %s: %w", e.ID, err)
	}
	return nil
}

// Endpoint reads the endpoint by _id (webhooks.ErrNotFound).
func (w *Webhooks) Endpoint(ctx context.Context, id string) (*webhooks.Endpoint, error) {
	oid, ok := objectID(id)
	if !ok {
		return nil, webhooks.ErrNotFound
	}
	var d endpointDoc
	err := w.endpoints.FindOne(ctx, bson.D{{Key: "_id", Value: oid}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, webhooks.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: read webhook %s: %w", id, err)
	}
	return d.endpoint(), nil
}

// Endpoints lists orgID's endpoints, oldest first.
func (w *Webhooks) Endpoints(ctx context.Context, orgID string) ([]webhooks.Endpoint, error) {
	cur, err := w.endpoints.Find(ctx, bson.D{{Key: "organizationId", Value: orgID}}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongo: list webhooks: %w", err)
	}
	var docs []endpointDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: list webhooks: %w", err)
	}
	out := make([]webhooks.Endpoint, 0, len(docs))
	for i := range docs {
		out = append(out, *docs[i].endpoint())
	}
	return out, nil
}

// UpdateEndpoint writes e's fields of parts, by _id.
func (w *Webhooks) UpdateEndpoint(ctx context.Context, e *webhooks.Endpoint, parts webhooks.EndpointParts) error {
	oid, ok := objectID(e.ID)
	if !ok {
		return webhooks.ErrNotFound
	}
	return w.store.serialize(ctx, endpointKey(oid), func() error {
		res, err := w.endpoints.UpdateOne(ctx, bson.D{{Key: "_id", Value: oid}}, endpointUpdate(e, parts))
		if err != nil {
			return fmt.Errorf("mongo: update webhook %s: %w", e.ID, err)
		}
		if res.MatchedCount == 0 {
			return webhooks.ErrNotFound
		}
		return nil
	})
}

// endpointKey is an endpoint's lock (serialize). Every write of an
// endpoint takes it: FerretDB writes the whole document it read, so a
// delivery's outcome counted while a rotation ran put the old secret back
// (and its count could be lost to another's), unless both hold it.
func endpointKey(oid bson.ObjectID) string { return "webhook_endpoints/" + oid.Hex() }

// RotateSecret writes e's secrets if the stored secret is still from:
// one conditional update on MongoDB; on FerretDB, whose conditional
// updates are a check then a write, a read and a check then the write
// under the endpoint's lock (serialize).
func (w *Webhooks) RotateSecret(ctx context.Context, e *webhooks.Endpoint, from string) error {
	oid, ok := objectID(e.ID)
	if !ok {
		return webhooks.ErrNotFound
	}
	byID := bson.D{{Key: "_id", Value: oid}}
	// why reads the endpoint to say why a write matched nothing.
	why := func() error {
		var d endpointDoc
		err := w.endpoints.FindOne(ctx, byID).Decode(&d)
		switch {
		case errors.Is(err, mongo.ErrNoDocuments):
			return webhooks.ErrNotFound
		case err != nil:
			return fmt.Errorf("mongo: read webhook %s: %w", e.ID, err)
		case d.Secret != from:
			return webhooks.ErrSecretRotated
		}
		return nil
	}
	// Missed three times, yet it reads as from each time: a secret is
	// sealed with a random nonce and never stored twice, so this cannot
	// be; refused rather than written unchecked.
	return w.store.checkedWrite(ctx, endpointKey(oid), byID, bson.D{{Key: "secret", Value: from}}, why, func(filter bson.D) (bool, error) {
		res, err := w.endpoints.UpdateOne(ctx, filter, endpointUpdate(e, webhooks.PartSecrets))
		if err != nil {
			return false, fmt.Errorf("mongo: rotate the secret of webhook %s: %w", e.ID, err)
		}
		return res.MatchedCount > 0, nil
	}, webhooks.ErrSecretRotated)
}

// endpointUpdate is the update that writes e's fields of parts and its
// UpdatedAt.
func endpointUpdate(e *webhooks.Endpoint, parts webhooks.EndpointParts) bson.D {
	set := bson.D{{Key: "updatedAt", Value: e.UpdatedAt.UTC()}}
	type field struct {
		name string
		v    any
		nil  bool
	}
	var fields []field
	if parts&webhooks.PartSettings != 0 {
		set = append(set, bson.E{Key: "url", Value: e.URL}, bson.E{Key: "description", Value: e.Description}, bson.E{Key: "events", Value: e.Events})
	}
	if parts&webhooks.PartState != 0 {
		set = append(set, bson.E{Key: "enabled", Value: e.Enabled}, bson.E{Key: "failureStreak", Value: e.FailureStreak})
		fields = append(fields, field{"failingSince", e.FailingSince, e.FailingSince == nil}, field{"notice", e.Notice, e.Notice == nil})
	}
	if parts&webhooks.PartSecrets != 0 {
		set = append(set, bson.E{Key: "secret", Value: e.Secret}, bson.E{Key: "previousSecret", Value: e.PreviousSecret})
		fields = append(fields, field{"previousSecretExpiresAt", e.PreviousSecretExpiresAt, e.PreviousSecretExpiresAt == nil})
	}
	var unset bson.D
	for _, f := range fields {
		if f.nil {
			unset = append(unset, bson.E{Key: f.name, Value: ""})
		} else {
			set = append(set, bson.E{Key: f.name, Value: f.v})
		}
	}
	update := bson.D{{Key: "$set", Value: set}}
	if len(unset) > 0 {
		update = append(update, bson.E{Key: "$unset", Value: unset})
	}
	return update
}

// DeleteEndpoint removes the endpoint; its deliveries stay until they
// are cleaned up with their events.
func (w *Webhooks) DeleteEndpoint(ctx context.Context, id string) error {
	oid, ok := objectID(id)
	if !ok {
		return webhooks.ErrNotFound
	}
	res, err := w.endpoints.DeleteOne(ctx, bson.D{{Key: "_id", Value: oid}})
	if err != nil {
		return fmt.Errorf("mongo: delete webhook %s: %w", id, err)
	}
	if res.DeletedCount == 0 {
		return webhooks.ErrNotFound
	}
	return nil
}

// RecordOutcome counts a failure ($inc, the streak's start kept by $min)
// or ends the streak, in one write, so that concurrent deliveries to the
// endpoint lose no count (on FerretDB, whose $inc is a read and a write,
// under the endpoint's lock).
func (w *Webhooks) RecordOutcome(ctx context.Context, id string, success bool, at time.Time) (*webhooks.Endpoint, error) {
	oid, ok := objectID(id)
	if !ok {
		return nil, webhooks.ErrNotFound
	}
	update := bson.D{{Key: "$inc", Value: bson.D{{Key: "failureStreak", Value: 1}}}, {Key: "$min", Value: bson.D{{Key: "failingSince", Value: at.UTC()}}}}
	if success {
		update = bson.D{{Key: "$set", Value: bson.D{{Key: "failureStreak", Value: 0}}}, {Key: "$unset", Value: bson.D{{Key: "failingSince", Value: ""}}}}
	}
	var d endpointDoc
	err := w.store.serialize(ctx, endpointKey(oid), func() error {
		return w.endpoints.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: oid}}, update,
			options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, webhooks.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: record webhook %s outcome: %w", id, err)
	}
	return d.endpoint(), nil
}

// Disable disables the endpoint with notice n if it is still enabled: one
// its owner enabled again since the failures that disable it stays so.
func (w *Webhooks) Disable(ctx context.Context, id string, n webhooks.Notice) error {
	oid, ok := objectID(id)
	if !ok {
		return webhooks.ErrNotFound
	}
	n.At = n.At.UTC()
	err := w.store.serialize(ctx, endpointKey(oid), func() error {
		_, err := w.endpoints.UpdateOne(ctx, bson.D{{Key: "_id", Value: oid}, {Key: "enabled", Value: true}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "enabled", Value: false}, {Key: "notice", Value: n}, {Key: "updatedAt", Value: n.At}}}})
		return err
	})
	if err != nil {
		return fmt.Errorf("mongo: disable webhook %s: %w", id, err)
	}
	return nil
}

// SaveEvent inserts ev, unless its _id is stored (then the stored one
// stands and stored is false).
func (w *Webhooks) SaveEvent(ctx context.Context, ev *webhooks.Event) (bool, error) {
	_, err := w.events.InsertOne(ctx, eventDoc{ID: ev.ID, OrganizationID: ev.OrganizationID, Type: ev.Type,
		Timestamp: ev.Timestamp.UTC(), Body: ev.Body})
	if mongo.IsDuplicateKeyError(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("mongo: save event %s: %w", ev.ID, err)
	}
	return true, nil
}

// MarkDispatched sets event id dispatched (webhooks.Store); an event not
// stored is no error.
func (w *Webhooks) MarkDispatched(ctx context.Context, id string, at time.Time) error {
	_, err := w.events.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "dispatched", Value: true}, {Key: "dispatchedAt", Value: at.UTC()}}}})
	if err != nil {
		return fmt.Errorf("mongo: mark event %s dispatched: %w", id, err)
	}
	return nil
}

// Undispatched lists events not dispatched, stamped before `before`,
// oldest first (webhooks.Store). MongoDB reads its index
// (EnsureIndexes); FerretDB scans the collection, which is fine for a
// query the sweeper makes once a minute.
func (w *Webhooks) Undispatched(ctx context.Context, before time.Time, limit int) ([]webhooks.Event, error) {
	cur, err := w.events.Find(ctx, bson.D{{Key: "dispatched", Value: false}, {Key: "timestamp", Value: bson.D{{Key: "$lt", Value: before.UTC()}}}},
		options.Find().SetSort(bson.D{{Key: "timestamp", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, fmt.Errorf("mongo: undispatched events: %w", err)
	}
	var docs []eventDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: undispatched events: %w", err)
	}
	out := make([]webhooks.Event, 0, len(docs))
	for _, d := range docs {
		out = append(out, webhooks.Event{ID: d.ID, OrganizationID: d.OrganizationID, Type: d.Type, Timestamp: d.Timestamp.UTC(), Body: d.Body})
	}
	return out, nil
}

// Event reads an event by _id (webhooks.ErrNotFound).
func (w *Webhooks) Event(ctx context.Context, id string) (*webhooks.Event, error) {
	var d eventDoc
	err := w.events.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, webhooks.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: read event %s: %w", id, err)
	}
	return &webhooks.Event{ID: d.ID, OrganizationID: d.OrganizationID, Type: d.Type, Timestamp: d.Timestamp.UTC(), Body: d.Body}, nil
}

// SaveDelivery inserts the record of an attempt under d.ID (from NewID).
func (w *Webhooks) SaveDelivery(ctx context.Context, d *webhooks.Delivery) error {
	oid, ok := objectID(d.ID)
	if !ok {
		return fmt.Errorf("mongo: save delivery: id %q is not an ObjectID", d.ID)
	}
	doc := deliveryDoc{ID: oid, EndpointID: d.EndpointID, OrganizationID: d.OrganizationID, EventID: d.EventID, EventType: d.EventType,
		Attempt: d.Attempt, Redelivery: d.Redelivery, At: d.At.UTC(), Success: d.Success, StatusCode: d.StatusCode,
		DurationMs: d.DurationMs, Error: d.Error, Response: d.Response, NextAttemptAt: utcPtr(d.NextAttemptAt)}
	if _, err := w.deliveries.InsertOne(ctx, doc); err != nil {
		return fmt.Errorf("mongo: save delivery %s: %w", d.ID, err)
	}
	return nil
}

// Delivery reads a delivery by _id (webhooks.ErrNotFound).
func (w *Webhooks) Delivery(ctx context.Context, id string) (*webhooks.Delivery, error) {
	oid, ok := objectID(id)
	if !ok {
		return nil, webhooks.ErrNotFound
	}
	var d deliveryDoc
	err := w.deliveries.FindOne(ctx, bson.D{{Key: "_id", Value: oid}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, webhooks.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: read delivery %s: %w", id, err)
	}
	return d.delivery(), nil
}

// Deliveries lists up to limit of the endpoint's deliveries, newest first,
// older than before when it is not "" (an id that is no ObjectID lists
// nothing).
func (w *Webhooks) Deliveries(ctx context.Context, endpointID string, limit int, before string) ([]webhooks.Delivery, error) {
	return newestFirst(ctx, w.deliveries, bson.D{{Key: "endpointId", Value: endpointID}}, limit, before, "deliveries", (*deliveryDoc).delivery)
}

var _ webhooks.Remover = (*Webhooks)(nil)

// retentionIndex names the TTL indexes EnsureRetention makes, so that
// collMod can find them.
const retentionIndex = "retention_ttl"

// Server error codes EnsureRetention decides on.
const (
	codeIndexOptionsConflict = 85  // the index exists with other options
	codeNotImplemented       = 238 // FerretDB v1: no TTL indexes, no collMod
)

// EnsureRetention makes MongoDB remove events (timestamp) and deliveries
// (at) older than keep by itself, with a TTL index on each (its monitor
// runs every 60 s). When keep changed since the index was made, collMod
// sets its expireAfterSeconds in place: an index dropped and made again
// would leave the collection without it while MongoDB rebuilds it over
// every record, and two workers starting together could drop each
// other's. It reports whether the server keeps the retention: FerretDB
// v1 refuses TTL indexes (NotImplemented), and then webhooks.Pruner
// alone removes old records. keep is rounded down to seconds.
func (w *Webhooks) EnsureRetention(ctx context.Context, keep time.Duration) (bool, error) {
	secs := keep / time.Second
	if secs < 1 || secs > math.MaxInt32 {
		return false, fmt.Errorf("mongo: webhook retention %s is out of a TTL index's range", keep)
	}
	for _, c := range []struct {
		coll  *mongo.Collection
		field string
	}{{w.events, "timestamp"}, {w.deliveries, "at"}} {
		_, err := c.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys:    bson.D{{Key: c.field, Value: 1}},
			Options: options.Index().SetName(retentionIndex).SetExpireAfterSeconds(int32(secs)),
		})
		var ce mongo.CommandError
		switch {
		case err == nil:
			continue
		case errors.As(err, &ce) && ce.Code == codeNotImplemented:
			return false, nil
		case !errors.As(err, &ce) || ce.Code != codeIndexOptionsConflict:
			return false, fmt.Errorf("mongo: %s retention index: %w", c.coll.Name(), err)
		}
		err = w.events.Database().RunCommand(ctx, bson.D{{Key: "collMod", Value: c.coll.Name()},
			{Key: "index", Value: bson.D{{Key: "name", Value: retentionIndex}, {Key: "expireAfterSeconds", Value: int64(secs)}}}}).Err()
		if err != nil {
			return false, fmt.Errorf("mongo: %s retention index: change expireAfterSeconds: %w", c.coll.Name(), err)
		}
	}
	return true, nil
}

// RemoveDeliveriesBefore removes up to limit deliveries made before
// cutoff's second, oldest first (webhooks.Remover). A delivery's _id is an
// ObjectID made as its attempt starts (At), so the filter is on _id
// alone, `_id < the ObjectID of cutoff`, and the batch an _id range, both
// read from the _id index on MongoDB. FerretDB, which indexes only exact
// {_id} filters, scans the collection for each: cheap once an hour.
func (w *Webhooks) RemoveDeliveriesBefore(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	first := firstObjectIDAt(cutoff)
	old := bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: first}}}}
	ids, err := w.idsOf(ctx, w.deliveries, old, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	// The batch: the range of _id up to the last one found.
	res, err := w.deliveries.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{
		{Key: "$lt", Value: first}, {Key: "$lte", Value: ids[len(ids)-1]}}}})
	if err != nil {
		return 0, fmt.Errorf("mongo: remove deliveries: %w", err)
	}
	return int(res.DeletedCount), nil
}

// firstObjectIDAt is the least ObjectID of t's second: its timestamp and
// then zeros (bson.NewObjectIDFromTimestamp fills the rest, so ids made
// in that second could sort below it).
func firstObjectIDAt(t time.Time) bson.ObjectID {
	var id bson.ObjectID
	binary.BigEndian.PutUint32(id[:4], uint32(t.Unix()))
	return id
}

// RemoveEventsBefore removes up to limit events stamped before cutoff
// (webhooks.Remover). Their _ids are derived from what happened
// (webhooks.EventID), not from time, so the batch is found by timestamp
// (MongoDB: the TTL index; FerretDB: a scan, once an hour) and removed by
// _id.
func (w *Webhooks) RemoveEventsBefore(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	ids, err := w.idsOf(ctx, w.events, bson.D{{Key: "timestamp", Value: bson.D{{Key: "$lt", Value: cutoff.UTC()}}}},
		options.Find().SetLimit(int64(limit)))
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	res, err := w.events.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return 0, fmt.Errorf("mongo: remove events: %w", err)
	}
	return int(res.DeletedCount), nil
}

// idsOf returns the _ids of coll's documents matching filter.
func (w *Webhooks) idsOf(ctx context.Context, coll *mongo.Collection, filter bson.D, opts *options.FindOptionsBuilder) ([]any, error) {
	cur, err := coll.Find(ctx, filter, opts.SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongo: find old %s: %w", coll.Name(), err)
	}
	var docs []struct {
		ID any `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: find old %s: %w", coll.Name(), err)
	}
	ids := make([]any, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return ids, nil
}
