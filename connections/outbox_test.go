package connections_test

import (
	"context"
	"testing"

	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/webhooks"
	"github.com/postflow/postflow/webhooks/webhookstest"
)

// account.expired is stored before the account is marked: when it cannot
// be, Expire fails and leaves the account active, so that the activity's
// retry (Temporal's) expires it and stores the same event.
func TestExpireFailsUntilItsEventIsStored(t *testing.T) {
	ctx := context.Background()
	e, member := pagesWorld(t)
	sink := &webhookstest.Recorder{}
	sink.SetDown(true)
	svc := e.svc.WithEvents(sink)
	refusal := &providers.Error{Kind: providers.KindAuth, Provider: "linkedin", Status: 401, Code: "REVOKED_ACCESS_TOKEN", Message: "revoked"}
	if err := svc.Expire(ctx, member.ID, refusal); err == nil {
		t.Fatal("Expire = nil with the event store down, want an error")
	}
	if a, err := e.store.Accounts().GetByID(ctx, member.ID); err != nil || a.Status != connections.StatusActive {
		t.Fatalf("account %v, %v; want still active", a, err)
	}
	sink.SetDown(false)
	if err := svc.Expire(ctx, member.ID, refusal); err != nil {
		t.Fatal(err)
	}
	if a, err := e.store.Accounts().GetByID(ctx, member.ID); err != nil || a.Status != connections.StatusExpired {
		t.Fatalf("account %v, %v; want expired", a, err)
	}
	if len(sink.Events()) != 1 || sink.Events()[0].Type != webhooks.AccountExpired {
		t.Errorf("events %v, want one account.expired", sink.Events())
	}
}
