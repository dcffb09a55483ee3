package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/postflow/postflow/connections"
)

// accountDoc is a SocialAccount as stored. Tokens are sealed before they
// get here.
type accountDoc struct {
	ID                    bson.ObjectID `bson:"_id,omitempty"`
	OrganizationID        string        `bson:"organizationId"`
	Platform              string        `bson:"platform"`
	PlatformUserID        string        `bson:"platformUserId"`
	Handle                string        `bson:"handle,omitempty"`
	DisplayName           string        `bson:"displayName"`
	AvatarURL             string        `bson:"avatarUrl,omitempty"`
	Server                string        `bson:"server,omitempty"`
	AccessToken           string        `bson:"accessToken"`
	RefreshToken          string        `bson:"refreshToken,omitempty"`
	Credential            string        `bson:"credential,omitempty"`
	TokenExpiresAt        *time.Time    `bson:"tokenExpiresAt,omitempty"`
	RefreshTokenExpiresAt *time.Time    `bson:"refreshTokenExpiresAt,omitempty"`
	Scopes                []string      `bson:"scopes,omitempty"`
	TokensFrom            string        `bson:"tokensFrom,omitempty"`
	Status                string        `bson:"status"`
	CreatedAt             time.Time     `bson:"createdAt"`
	UpdatedAt             time.Time     `bson:"updatedAt"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func timeOf(p *time.Time) time.Time {
	if p == nil {
		return time.Time{}
	}
	return p.UTC()
}

func (d *accountDoc) account() *connections.Account {
	return &connections.Account{
		ID:                    d.ID.Hex(),
		OrganizationID:        d.OrganizationID,
		Platform:              d.Platform,
		PlatformUserID:        d.PlatformUserID,
		Handle:                d.Handle,
		DisplayName:           d.DisplayName,
		AvatarURL:             d.AvatarURL,
		Server:                d.Server,
		TokenExpiresAt:        timeOf(d.TokenExpiresAt),
		RefreshTokenExpiresAt: timeOf(d.RefreshTokenExpiresAt),
		Scopes:                d.Scopes,
		TokensFrom:            d.TokensFrom,
		Status:                connections.Status(d.Status),
		CreatedAt:             d.CreatedAt.UTC(),
		UpdatedAt:             d.UpdatedAt.UTC(),
		AccessToken:           d.AccessToken,
		RefreshToken:          d.RefreshToken,
		Credential:            d.Credential,
	}
}

// Accounts is the socialAccounts collection.
type Accounts struct {
	c      *mongo.Collection
	leases *mongo.Collection
	// announced keeps, per account id, the deadline account.expiring was
	// sent for: apart from the account, whose document the token writes
	// rewrite (on FerretDB, whole: a mark written beside them could put
	// old tokens back).
	announced *mongo.Collection
	now       func() time.Time
}

// Accounts returns the SocialAccount store.
func (s *Store) Accounts() *Accounts {
	return &Accounts{c: s.DB.Collection("socialAccounts"), leases: s.DB.Collection("refreshLeases"),
		announced: s.DB.Collection("expiringAnnouncements"), now: time.Now}
}

var _ connections.Store = (*Accounts)(nil)

// EnsureIndexes creates the unique key of an account: one document per
// (organization, platform, platform user), so reconnecting updates it.
func (a *Accounts) EnsureIndexes(ctx context.Context) error {
	_, err := a.c.Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "organizationId", Value: 1}, {Key: "platform", Value: 1}, {Key: "platformUserId", Value: 1}},
			Options: options.Index().SetUnique(true).SetName("account_unique")},
	})
	if err != nil {
		return fmt.Errorf("mongo: socialAccounts indexes: %w", err)
	}
	return nil
}

func objectID(id string) (bson.ObjectID, bool) {
	oid, err := bson.ObjectIDFromHex(id)
	return oid, err == nil
}

// Upsert inserts or updates by the unique key. Two callbacks racing for a
// new account may both try to insert; the loser of the unique index
// retries as an update.
func (a *Accounts) Upsert(ctx context.Context, acc *connections.Account) (*connections.Account, error) {
	key := bson.D{{Key: "organizationId", Value: acc.OrganizationID}, {Key: "platform", Value: acc.Platform}, {Key: "platformUserId", Value: acc.PlatformUserID}}
	set := bson.D{
		{Key: "handle", Value: acc.Handle},
		{Key: "displayName", Value: acc.DisplayName},
		{Key: "avatarUrl", Value: acc.AvatarURL},
		{Key: "server", Value: acc.Server},
		{Key: "accessToken", Value: acc.AccessToken},
		{Key: "credential", Value: acc.Credential},
		{Key: "tokenExpiresAt", Value: timePtr(acc.TokenExpiresAt)},
		{Key: "scopes", Value: acc.Scopes},
		{Key: "status", Value: string(acc.Status)},
		{Key: "updatedAt", Value: acc.UpdatedAt.UTC()},
	}
	if acc.RefreshToken != "" {
		// A reconnect without a refresh token keeps the one LinkedIn gave
		// before: it is still good for its 365 days.
		set = append(set,
			bson.E{Key: "refreshToken", Value: acc.RefreshToken},
			bson.E{Key: "refreshTokenExpiresAt", Value: timePtr(acc.RefreshTokenExpiresAt)})
	}
	update := bson.D{
		{Key: "$setOnInsert", Value: bson.D{{Key: "createdAt", Value: acc.CreatedAt.UTC()}}},
	}
	if acc.TokensFrom != "" {
		// A page: it posts with this member's tokens from now on, whoever
		// added it before.
		set = append(set, bson.E{Key: "tokensFrom", Value: acc.TokensFrom})
	} else {
		update = append(update, bson.E{Key: "$unset", Value: bson.D{{Key: "tokensFrom", Value: ""}}})
	}
	update = append(update, bson.E{Key: "$set", Value: set})
	opts := options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)
	var doc accountDoc
	var err error
	for range 2 {
		err = a.c.FindOneAndUpdate(ctx, key, update, opts).Decode(&doc)
		if !mongo.IsDuplicateKeyError(err) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: upsert account: %w", err)
	}
	return doc.account(), nil
}

func (a *Accounts) findOne(ctx context.Context, filter bson.D) (*connections.Account, error) {
	var doc accountDoc
	err := a.c.FindOne(ctx, filter).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, connections.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: read account: %w", err)
	}
	return doc.account(), nil
}

// Get returns the account if it belongs to the organization. It reads by
// _id alone and checks the organization here: FerretDB uses an index only
// for a filter that is exactly {_id}, and scans the collection otherwise.
func (a *Accounts) Get(ctx context.Context, orgID, id string) (*connections.Account, error) {
	acc, err := a.GetByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if acc.OrganizationID != orgID {
		return nil, connections.ErrNotFound
	}
	return acc, nil
}

// GetByID returns the account whatever its organization; for the publish
// flow, which has the id from a post that was checked when it was made.
func (a *Accounts) GetByID(ctx context.Context, id string) (*connections.Account, error) {
	oid, ok := objectID(id)
	if !ok {
		return nil, connections.ErrNotFound
	}
	return a.findOne(ctx, bson.D{{Key: "_id", Value: oid}})
}

// List returns the organization's accounts, oldest first.
func (a *Accounts) List(ctx context.Context, orgID string) ([]connections.Account, error) {
	cur, err := a.c.Find(ctx, bson.D{{Key: "organizationId", Value: orgID}}, options.Find().SetSort(bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongo: list accounts: %w", err)
	}
	var docs []accountDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: list accounts: %w", err)
	}
	out := make([]connections.Account, 0, len(docs))
	for i := range docs {
		out = append(out, *docs[i].account())
	}
	return out, nil
}

// SamePlatformUser returns the ids of every account, in any organization,
// of the platform's user platformUserID: one network account connected
// into several organizations. A duplicate answer's rare path: on FerretDB,
// which indexes only _id, it scans the accounts.
func (a *Accounts) SamePlatformUser(ctx context.Context, platform, platformUserID string) ([]string, error) {
	cur, err := a.c.Find(ctx, bson.D{{Key: "platform", Value: platform}, {Key: "platformUserId", Value: platformUserID}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongo: accounts of a platform user: %w", err)
	}
	var docs []struct {
		ID bson.ObjectID `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: accounts of a platform user: %w", err)
	}
	ids := make([]string, 0, len(docs))
	for _, d := range docs {
		ids = append(ids, d.ID.Hex())
	}
	return ids, nil
}

// Delete removes the account and its tokens.
func (a *Accounts) Delete(ctx context.Context, orgID, id string) error {
	if _, err := a.Get(ctx, orgID, id); err != nil {
		return err
	}
	oid, _ := objectID(id)
	res, err := a.c.DeleteOne(ctx, bson.D{{Key: "_id", Value: oid}})
	if err != nil {
		return fmt.Errorf("mongo: delete account: %w", err)
	}
	if res.DeletedCount == 0 {
		return connections.ErrNotFound
	}
	if _, err := a.leases.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}}); err != nil {
		return fmt.Errorf("mongo: delete refresh lease: %w", err)
	}
	return nil
}

// SetStatus sets the account's status.
func (a *Accounts) SetStatus(ctx context.Context, id string, status connections.Status) error {
	oid, ok := objectID(id)
	if !ok {
		return connections.ErrNotFound
	}
	_, err := a.c.UpdateOne(ctx, bson.D{{Key: "_id", Value: oid}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: string(status)}, {Key: "updatedAt", Value: a.now().UTC()}}}})
	if err != nil {
		return fmt.Errorf("mongo: set account status: %w", err)
	}
	return nil
}

// SetPagesStatus sets the status of the page accounts that post with the
// member's tokens. A filter on tokensFrom: FerretDB scans the accounts,
// which is fine for the rare paths that call it (an account expiring, a
// member reconnecting); the publish path never does.
func (a *Accounts) SetPagesStatus(ctx context.Context, memberID string, status connections.Status) error {
	_, err := a.c.UpdateMany(ctx, bson.D{{Key: "tokensFrom", Value: memberID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: string(status)}, {Key: "updatedAt", Value: a.now().UTC()}}}})
	if err != nil {
		return fmt.Errorf("mongo: set the status of a member's pages: %w", err)
	}
	return nil
}

// DeletePages removes the organization's page accounts that post with the
// member's tokens (they hold no tokens nor leases of their own).
func (a *Accounts) DeletePages(ctx context.Context, orgID, memberID string) error {
	_, err := a.c.DeleteMany(ctx, bson.D{{Key: "organizationId", Value: orgID}, {Key: "tokensFrom", Value: memberID}})
	if err != nil {
		return fmt.Errorf("mongo: delete a member's pages: %w", err)
	}
	return nil
}

// leaseDoc is a refresh lease. Leases live in a collection of their own,
// keyed by account id, because taking one is an insert: the unique _id
// makes two takers impossible on any MongoDB-protocol server, where a
// conditional findOneAndUpdate is only atomic on MongoDB itself (FerretDB
// reads and writes in two steps).
type leaseDoc struct {
	AccountID string    `bson:"_id"`
	Owner     string    `bson:"owner"`
	Until     time.Time `bson:"until"`
}

// LockRefresh takes the account's refresh lease, or reports ErrLocked while
// another owner holds an unexpired one. An expired lease (its holder died)
// is removed and taken.
func (a *Accounts) LockRefresh(ctx context.Context, id, owner string, ttl time.Duration) error {
	if _, err := a.GetByID(ctx, id); err != nil {
		return err
	}
	for range 2 {
		_, err := a.leases.InsertOne(ctx, leaseDoc{AccountID: id, Owner: owner, Until: a.now().Add(ttl).UTC()})
		if err == nil {
			return nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return fmt.Errorf("mongo: take refresh lease: %w", err)
		}
		var held leaseDoc
		err = a.leases.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&held)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue // Released meanwhile: try again.
		}
		if err != nil {
			return fmt.Errorf("mongo: read refresh lease: %w", err)
		}
		if a.now().Before(held.Until) {
			return connections.ErrLocked
		}
		if _, err := a.leases.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "owner", Value: held.Owner}}); err != nil {
			return fmt.Errorf("mongo: clear expired refresh lease: %w", err)
		}
	}
	return connections.ErrLocked
}

// SaveRefreshed stores the refreshed tokens and releases the lease, if
// owner still holds it.
func (a *Accounts) SaveRefreshed(ctx context.Context, id, owner string, t connections.RefreshedTokens) error {
	oid, ok := objectID(id)
	if !ok {
		return connections.ErrNotFound
	}
	n, err := a.leases.CountDocuments(ctx, bson.D{{Key: "_id", Value: id}, {Key: "owner", Value: owner}})
	if err != nil {
		return fmt.Errorf("mongo: check refresh lease: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("mongo: save refreshed tokens: the refresh lease of %s was lost", id)
	}
	set := bson.D{
		{Key: "accessToken", Value: t.AccessToken},
		{Key: "tokenExpiresAt", Value: timePtr(t.TokenExpiresAt)},
		{Key: "updatedAt", Value: a.now().UTC()},
	}
	if t.RefreshToken != "" {
		set = append(set,
			bson.E{Key: "refreshToken", Value: t.RefreshToken},
			bson.E{Key: "refreshTokenExpiresAt", Value: timePtr(t.RefreshTokenExpiresAt)})
	}
	if _, err := a.c.UpdateOne(ctx, bson.D{{Key: "_id", Value: oid}}, bson.D{{Key: "$set", Value: set}}); err != nil {
		return fmt.Errorf("mongo: save refreshed tokens: %w", err)
	}
	return a.UnlockRefresh(ctx, id, owner)
}

// UnlockRefresh releases owner's lease.
func (a *Accounts) UnlockRefresh(ctx context.Context, id, owner string) error {
	if _, err := a.leases.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "owner", Value: owner}}); err != nil {
		return fmt.Errorf("mongo: release refresh lease: %w", err)
	}
	return nil
}

// ExpiringAnnounced is the deadline account.expiring was last sent for
// account id (connections.ExpiringAccounts); zero if none.
func (a *Accounts) ExpiringAnnounced(ctx context.Context, id string) (time.Time, error) {
	var d struct {
		ReconnectBy time.Time `bson:"reconnectBy"`
	}
	err := a.announced.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("mongo: account %s: expiring announced: %w", id, err)
	}
	return d.ReconnectBy.UTC(), nil
}

// MarkExpiringAnnounced records that account.expiring was sent for
// account id's reconnectBy (connections.ExpiringAccounts).
func (a *Accounts) MarkExpiringAnnounced(ctx context.Context, id string, reconnectBy time.Time) error {
	if _, err := a.announced.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "reconnectBy", Value: reconnectBy.UTC()}}}}, options.UpdateOne().SetUpsert(true)); err != nil {
		return fmt.Errorf("mongo: mark account %s expiring announced: %w", id, err)
	}
	return nil
}

// ExpiringBefore lists the active accounts with tokens of their own whose
// access or refresh token expires before `before` (connections.
// ExpiringAccounts). A scan on FerretDB and on MongoDB (no index serves
// it): the worker runs it hourly.
func (a *Accounts) ExpiringBefore(ctx context.Context, before time.Time) ([]connections.Account, error) {
	filter := bson.D{
		{Key: "status", Value: string(connections.StatusActive)},
		{Key: "tokensFrom", Value: bson.D{{Key: "$exists", Value: false}}},
		{Key: "$or", Value: bson.A{
			bson.D{{Key: "tokenExpiresAt", Value: bson.D{{Key: "$lt", Value: before.UTC()}}}},
			bson.D{{Key: "refreshTokenExpiresAt", Value: bson.D{{Key: "$lt", Value: before.UTC()}}}},
		}},
	}
	cur, err := a.c.Find(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("mongo: expiring accounts: %w", err)
	}
	var docs []accountDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: expiring accounts: %w", err)
	}
	out := make([]connections.Account, 0, len(docs))
	for i := range docs {
		out = append(out, *docs[i].account())
	}
	return out, nil
}
