package providertest

import (
	"context"
	"sync"

	"github.com/postflow/postflow/providers"
)

// Apps is an in-memory providers.AppStore for tests of providers that
// register on servers users name: the first Add of a (network, server)
// wins, as in internal/mongostore.
type Apps struct {
	mu sync.Mutex
	m  map[string]providers.ServerApp
}

var _ providers.AppStore = (*Apps)(nil)

func (a *Apps) Get(_ context.Context, network, server string) (*providers.ServerApp, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	app, ok := a.m[network+"|"+server]
	if !ok {
		return nil, providers.ErrNoApp
	}
	return &app, nil
}

func (a *Apps) Add(_ context.Context, app providers.ServerApp) (*providers.ServerApp, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]providers.ServerApp{}
	}
	key := app.Network + "|" + app.Server
	if stored, ok := a.m[key]; ok {
		return &stored, nil
	}
	a.m[key] = app
	return &app, nil
}

func (a *Apps) Delete(_ context.Context, network, server, clientID string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if app, ok := a.m[network+"|"+server]; ok && app.ClientID == clientID {
		delete(a.m, network+"|"+server)
	}
	return nil
}
