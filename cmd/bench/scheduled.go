package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"
)

// Timer precision: scheduled posts must publish at their time, also when
// many are due together. Lateness is the result's publishedAt (after the
// platform answered) minus scheduledAt.

// scheduledLead is how far ahead the first post is scheduled: creating and
// triggering 1,000 posts takes about 20 s on 2 cores, and every run must be
// asleep on its timer before its time comes.
const scheduledLead = 45 * time.Second

type lateness struct {
	name          string
	late          []time.Duration
	drain         time.Duration // from the first scheduled time to the last publish
	triggeredLate int           // runs triggered after their time: the lead was too short
}

func (l lateness) row() string {
	q := func(p float64) time.Duration { return quantile(l.late, p) }
	return fmt.Sprintf("%-44s %10s %10s %10s %12s", l.name, q(0.5), q(0.99), q(1), l.drain.Round(time.Millisecond))
}

// scheduledRound creates n posts due over spread (0: all at the same
// instant), triggers them, waits for every run and measures lateness.
func scheduledRound(ctx context.Context, api *apiClient, tc client.Client, account string, n, c int, spread time.Duration, name string) (lateness, error) {
	start := time.Now().Add(scheduledLead).Truncate(time.Second)
	due := make([]time.Time, n)
	ids := make([]string, n)
	wf := make([]string, n)
	for i := range due {
		due[i] = start
		if spread > 0 {
			due[i] = start.Add(time.Duration(i) * spread / time.Duration(n))
		}
	}
	res := lateness{name: name}
	var late atomic.Int64
	err := parallel(n, c, func(i int) error {
		id, err := api.createScheduled(fmt.Sprintf("%s %d at %d", name, i, time.Now().UnixNano()), []string{account}, due[i])
		if err != nil {
			return err
		}
		ids[i] = id
		if wf[i], err = api.publish(id); err != nil {
			return err
		}
		if time.Now().After(due[i]) {
			late.Add(1)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	res.triggeredLate = int(late.Load())
	err = parallel(n, c, func(i int) error {
		var out struct{ Status string }
		if err := tc.GetWorkflow(ctx, wf[i], "").Get(ctx, &out); err != nil {
			return err
		}
		if out.Status != "published" {
			return fmt.Errorf("scheduled post %s ended %s", ids[i], out.Status)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	res.late = make([]time.Duration, n)
	var last time.Time
	err = parallel(n, c, func(i int) error {
		at, err := api.publishedAt(ids[i])
		res.late[i] = at.Sub(due[i])
		return err
	})
	for i := range ids {
		if t := due[i].Add(res.late[i]); t.After(last) {
			last = t
		}
	}
	res.drain = last.Sub(start)
	sort.Slice(res.late, func(i, j int) bool { return res.late[i] < res.late[j] })
	return res, err
}

func latenessTable(rounds []lateness, refPerSec float64, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-44s %10s %10s %10s %12s\n", "scheduled posts (lateness after scheduledAt)", "p50", "p99", "max", "last after")
	for _, r := range rounds {
		fmt.Fprintln(&b, r.row())
		if r.triggeredLate > 0 {
			fmt.Fprintf(&b, "  (%d runs were triggered after their time: raise scheduledLead)\n", r.triggeredLate)
		}
	}
	fmt.Fprintf(&b, "Same-second burst: the bare reference would take %s for %d runs at its %.1f/s.\n",
		(time.Duration(float64(n) / refPerSec * float64(time.Second))).Round(100*time.Millisecond), n, refPerSec)
	return b.String()
}
