package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/postflow/postflow/providers"
)

// Sealer encrypts secrets at rest, bound to what they belong to
// (*tokencipher.Cipher).
type Sealer interface {
	Seal(plaintext, binding string) (string, error)
	Open(sealed, binding string) (string, error)
}

// ServerApps keeps PostFlow's OAuth registrations on servers users name
// (collection serverApps), one per (network, server), the client secret
// sealed.
type ServerApps struct {
	c      *mongo.Collection
	sealer Sealer
}

// ServerApps returns the store of server registrations, sealing client
// secrets with sealer.
func (s *Store) ServerApps(sealer Sealer) *ServerApps {
	return &ServerApps{c: s.DB.Collection("serverApps"), sealer: sealer}
}

var _ providers.AppStore = (*ServerApps)(nil)

// serverAppDoc is a ServerApp as stored. Its _id is network|server, so a
// lookup and the race of two registrations use the _id index (the one
// FerretDB uses) and need no index of their own.
type serverAppDoc struct {
	ID           string    `bson:"_id"`
	Network      string    `bson:"network"`
	Server       string    `bson:"server"`
	ClientID     string    `bson:"clientId"`
	ClientSecret string    `bson:"clientSecret"`
	RedirectURI  string    `bson:"redirectUri"`
	Scopes       string    `bson:"scopes"`
	CreatedAt    time.Time `bson:"createdAt"`
}

func serverAppID(network, server string) string { return network + "|" + server }

// secretBinding ties a sealed client secret to its registration, so a
// secret copied to another document does not open.
func secretBinding(id, clientID string) string {
	return "serverApp/" + id + "/" + clientID + "#clientSecret"
}

// Get returns the registration of (network, server), or
// providers.ErrNoApp.
func (a *ServerApps) Get(ctx context.Context, network, server string) (*providers.ServerApp, error) {
	var d serverAppDoc
	err := a.c.FindOne(ctx, bson.D{{Key: "_id", Value: serverAppID(network, server)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, providers.ErrNoApp
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: server app: %w", err)
	}
	secret, err := a.sealer.Open(d.ClientSecret, secretBinding(d.ID, d.ClientID))
	if err != nil {
		return nil, fmt.Errorf("mongo: server app %s: client secret: %w", d.ID, err)
	}
	return &providers.ServerApp{Network: d.Network, Server: d.Server, ClientID: d.ClientID, ClientSecret: secret,
		RedirectURI: d.RedirectURI, Scopes: d.Scopes, CreatedAt: d.CreatedAt.UTC()}, nil
}

// Add inserts app; when (network, server) has a registration already, the
// insert fails on _id and the stored one is returned.
func (a *ServerApps) Add(ctx context.Context, app providers.ServerApp) (*providers.ServerApp, error) {
	id := serverAppID(app.Network, app.Server)
	sealed, err := a.sealer.Seal(app.ClientSecret, secretBinding(id, app.ClientID))
	if err != nil {
		return nil, fmt.Errorf("mongo: server app %s: seal: %w", id, err)
	}
	_, err = a.c.InsertOne(ctx, serverAppDoc{ID: id, Network: app.Network, Server: app.Server, ClientID: app.ClientID,
		ClientSecret: sealed, RedirectURI: app.RedirectURI, Scopes: app.Scopes, CreatedAt: app.CreatedAt.UTC()})
	switch {
	case err == nil:
		return &app, nil
	case mongo.IsDuplicateKeyError(err):
		return a.Get(ctx, app.Network, app.Server)
	default:
		return nil, fmt.Errorf("mongo: server app %s: insert: %w", id, err)
	}
}

// Delete removes the registration of (network, server) if it has
// clientID.
func (a *ServerApps) Delete(ctx context.Context, network, server, clientID string) error {
	// _id alone finds it by index; clientId keeps a newer registration.
	_, err := a.c.DeleteOne(ctx, bson.D{{Key: "_id", Value: serverAppID(network, server)}, {Key: "clientId", Value: clientID}})
	if err != nil {
		return fmt.Errorf("mongo: server app %s: delete: %w", serverAppID(network, server), err)
	}
	return nil
}
