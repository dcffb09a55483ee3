package metrics

import (
	"context"

	"github.com/postflow/postflow/webhooks"
)

// CountDeliveries returns store counting, in m's
// postflow_webhook_deliveries_total, each delivery attempt it records:
// every attempt is recorded (GET /webhooks/{id}/deliveries), so none is
// missed nor counted twice.
func CountDeliveries(store webhooks.Store, m *Metrics) webhooks.Store {
	if m == nil {
		return store
	}
	return countedDeliveries{Store: store, m: m}
}

type countedDeliveries struct {
	webhooks.Store
	m *Metrics
}

func (c countedDeliveries) SaveDelivery(ctx context.Context, d *webhooks.Delivery) error {
	if err := c.Store.SaveDelivery(ctx, d); err != nil {
		return err
	}
	outcome := DeliveryFailed
	if d.Success {
		outcome = DeliveryDelivered
	}
	c.m.WebhookDelivery(d.EventType, outcome)
	return nil
}
