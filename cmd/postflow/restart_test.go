package main

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestScheduledPostPublishesOnTimeAcrossARestart schedules a post, stops
// `postflow dev` while its run sleeps, starts it again on the same folder,
// and expects the post published at its time, within a second: the timer
// lives in Temporal's store, not in the process.
func TestScheduledPostPublishesOnTimeAcrossARestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dev := startDev(t)
	d := dialDev(ctx, t, dev)
	apiURL := d.url

	at := time.Now().Add(20 * time.Second).UTC().Truncate(time.Second)
	text := "scheduled across a restart"
	id := d.create(text, fmt.Sprintf(`,"scheduledAt":%q`, at.Format(time.RFC3339)))
	d.trigger(id, "restart")
	d.waitScheduled(id)

	dev.interrupt(t)
	time.Sleep(2 * time.Second) // down for a while
	dev.restart(t)
	waitStatus(ctx, t, apiURL+"/readyz", dev.out)

	post := d.wait(id, time.Until(at)+30*time.Second)
	d.checkPublishedOnce(post, text, 1)
	published, err := time.Parse(time.RFC3339Nano, result(t, post)["publishedAt"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if late := published.Sub(at); late < 0 || late > time.Second {
		t.Errorf("published %v after its time, want within a second", late)
	}
	dev.interrupt(t)
}
