package main

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestScheduledPostPublishesOnTimeAcrossARestart schedules a post, stops
// `postflow dev` while its run sleeps, starts it again on the same folder,
// and expects the post published at its time, never before and within two
// seconds (a loaded CI machine runs the timer, a workflow task and the
// activity of a fresh worker): the timer lives in Temporal's store, not in
// the process. The time is far enough ahead that the restart ends first;
// if it did not, "on time" is counted from when PostFlow was ready again.
func TestScheduledPostPublishesOnTimeAcrossARestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dev := startDev(t)
	d := dialDev(ctx, t, dev)
	apiURL := d.url

	at := time.Now().Add(45 * time.Second).UTC().Truncate(time.Second)
	text := "scheduled across a restart"
	id := d.create(text, fmt.Sprintf(`,"scheduledAt":%q`, at.Format(time.RFC3339)))
	d.trigger(id, "restart")
	d.waitScheduled(id)

	dev.interrupt(t)
	time.Sleep(2 * time.Second) // down for a while
	dev.restart(t)
	waitStatus(ctx, t, apiURL+"/readyz", dev.out)
	due := at
	if now := time.Now(); now.After(due) {
		due = now
	}

	post := d.wait(id, time.Until(at)+30*time.Second)
	d.checkPublishedOnce(post, text, 1)
	published, err := time.Parse(time.RFC3339Nano, result(t, post)["publishedAt"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if published.Before(at) || published.Sub(due) > 2*time.Second {
		t.Errorf("published at %v, scheduled for %v (ready again at %v): want on time, within two seconds", published, at, due)
	}
	dev.interrupt(t)
}
