// Command bench measures PostFlow's publishing throughput against the
// embedded stack and the sandbox answering at once, next to a bare
// reference workflow of three no-op activities on the same server.
//
//	go run ./cmd/bench -n 1000
//
// It prints a table and writes it to bench-results/last.txt (not in git).
// The rounds: the reference and PostFlow with one account per post, taking
// turns a quarter of n at a time; PostFlow with -accounts per post; then,
// unless -scheduled=false, n posts due over one minute and n due at the
// same second, with their lateness after scheduledAt; then, unless
// -drill=false, the fault drill (drill.go).
//
// The table's columns, per round: "per sec" is the steady rate (runs that
// ended between the first and the last tenth of the round); p50 and p99
// are trigger-to-published latency with -c requests in flight, mostly
// queueing; "actions/run" the billable Temporal actions per run, from its
// history; "worker heap" the PostFlow worker's live heap after a GC at the
// round's end (the worker runs in a process of its own for this); "CPU/run"
// this process's and the worker's CPU time, from /proc, over the round's
// runs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/postflow/postflow/internal/app"
	"github.com/postflow/postflow/internal/config"
	"github.com/postflow/postflow/internal/payloadcodec"
)

func main() {
	n := flag.Int("n", 1000, "posts per round")
	fanout := flag.Int("accounts", 5, "accounts per post in the second round")
	concurrency := flag.Int("c", 64, "requests in flight")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the reference and 1-account rounds to this file, and one of the PostFlow worker's whole run to this file.worker")
	workerChild := flag.Bool("worker-child", false, "run as the bench's worker process (internal)")
	withScheduled := flag.Bool("scheduled", true, "also measure timer precision (two rounds of n scheduled posts)")
	withDrill := flag.Bool("drill", true, "also run the fault drill: two rounds of n/5 posts to 5 sandbox accounts failing at random, the second with the worker SIGKILLed mid-burst")
	withMedia := flag.Bool("media", true, "also run the media round: posts with images to sandbox accounts, on a fresh worker whose peak memory is read")
	mediaOnly := flag.Bool("media-only", false, "run the media round alone")
	var mo mediaOptions
	flag.IntVar(&mo.posts, "media-posts", 100, "media round: posts")
	flag.IntVar(&mo.images, "media-images", 4, "media round: images per post")
	flag.IntVar(&mo.size, "media-bytes", 5_000_000, "media round: bytes per image, roughly")
	flag.IntVar(&mo.accounts, "media-accounts", 3, "media round: sandbox accounts per post")
	flag.IntVar(&mo.concurrency, "media-c", 16, "media round: posts in flight")
	var faults drillFaults
	flag.Float64Var(&faults.unavailable, "drill-503", 0.15, "fault drill: the share of publishes the sandbox answers 503")
	flag.Float64Var(&faults.rateLimited, "drill-429", 0.15, "fault drill: the share of publishes the sandbox answers 429 with Retry-After: 1")
	flag.Float64Var(&faults.lostAnswer, "drill-504", 0.05, "fault drill: the share of publishes the sandbox creates and then answers 504")
	flag.Float64Var(&faults.timeout, "drill-timeout", 0.05, "fault drill: the share of publishes the sandbox answers 504 without creating the post")
	flag.BoolVar(&faults.duplicateDetection, "drill-duplicates", true, "fault drill: the sandbox refuses a repeated text on the drill accounts (false: lets it through)")
	flag.IntVar(&faults.repeatEvery, "drill-repeat", 10, "fault drill: every this many posts, one repeats the text of the post before it (0: none)")
	flag.Parse()
	if *workerChild {
		if err := runWorkerChild(); err != nil {
			fmt.Fprintln(os.Stderr, "bench worker:", err)
			os.Exit(1)
		}
		return
	}
	var drill *drillFaults
	if *withDrill {
		drill = &faults
	}
	var media *mediaOptions
	if *withMedia || *mediaOnly {
		media = &mo
	}
	if err := run(*n, *fanout, *concurrency, *cpuProfile, *withScheduled, drill, media, *mediaOnly); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// run runs the rounds; the fault drill's too unless drill is nil, the
// media round's unless media is nil, and that one alone with mediaOnly.
func run(n, fanout, concurrency int, cpuProfile string, withScheduled bool, drill *drillFaults, media *mediaOptions, mediaOnly bool) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "postflow-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	apiPort, temporalPort := freePort(), freePort()
	ready := make(chan app.DevReady, 1)
	devErr := make(chan error, 1)
	logs, err := os.Create(filepath.Join(dir, "dev.log"))
	if err != nil {
		return err
	}
	go func() {
		devErr <- app.RunDev(ctx, app.DevOptions{
			DataDir: dir, TemporalPort: temporalPort, UIPort: -1, MongoPort: freePort(), RedisPort: freePort(),
			Environ: []string{fmt.Sprintf("PORT=%d", apiPort), "LOG_LEVEL=error", "SANDBOX_ENABLED=true"},
			Out:     logs, Ready: ready, NoWorker: true,
		})
	}()
	var dev app.DevReady
	select {
	case dev = <-ready:
	case err := <-devErr:
		return fmt.Errorf("dev stack: %w", err)
	case <-time.After(2 * time.Minute):
		return errors.New("dev stack did not start within 2 minutes")
	}
	defer func() { cancel(); <-devErr }()
	workerEnv := dev.WorkerEnv
	if cpuProfile != "" {
		workerEnv = append(slices.Clip(workerEnv), workerProfileEnv+"="+cpuProfile+".worker")
	}
	worker, err := startWorker(workerEnv, logs)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	// The drill replaces the worker it kills.
	defer func() { worker.stop() }()

	api := &apiClient{base: fmt.Sprintf("http://127.0.0.1:%d", apiPort)}
	// Runs' results are sealed: read them with the dev stack's payload key.
	dc, err := payloadConverter(dev.WorkerEnv)
	if err != nil {
		return err
	}
	tc, err := client.Dial(client.Options{HostPort: fmt.Sprintf("127.0.0.1:%d", temporalPort), DataConverter: dc,
		Logger: sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	if err != nil {
		return err
	}
	defer tc.Close()

	if mediaOnly {
		return runMedia(ctx, api, &worker, workerEnv, logs, *media, func(line string) { fmt.Println(line) })
	}
	accounts := make([]string, fanout)
	for i := range accounts {
		if accounts[i], err = api.connectSandbox(fmt.Sprintf("Bench Person %d", i)); err != nil {
			return err
		}
	}

	var out strings.Builder
	fmt.Fprintf(&out, "PostFlow bench, %s, GOMAXPROCS=%d, n=%d, embedded Temporal (SQLite) + FerretDB + sandbox\n\n",
		time.Now().UTC().Format(time.RFC3339), runtime.GOMAXPROCS(0), n)
	fmt.Fprintf(&out, "%-34s %10s %10s %10s %12s %12s %10s\n", "run", "per sec", "p50", "p99", "actions/run", "worker heap", "CPU/run")

	emit := func(line string) { fmt.Fprintln(&out, line); fmt.Println(line) }
	fmt.Print(out.String())

	// The reference and PostFlow take turns, a quarter of n each time: both
	// meet the stores as they grow, neither runs on a fresher server, and
	// a machine that slows down for a minute slows both.
	stopProfile, err := startCPUProfile(cpuProfile)
	if err != nil {
		return err
	}
	idle, err := worker.heap()
	if err != nil {
		return err
	}
	var ref, one result
	for turn := range turns {
		part := n*(turn+1)/turns - n*turn/turns
		r, err := reference(ctx, tc, worker, part, concurrency)
		if err != nil {
			return err
		}
		o, err := publishRound(ctx, api, tc, worker, accounts[:1], part, concurrency, "one")
		if err != nil {
			return err
		}
		ref, one = ref.merge(r), one.merge(o)
	}
	stopProfile()
	emit(ref.row("bare reference (3 no-op activities)"))
	emit(one.row("PostFlow, 1 account per post"))
	five, err := publishRound(ctx, api, tc, worker, accounts, n, concurrency, "five")
	if err != nil {
		return err
	}
	emit(five.row(fmt.Sprintf("PostFlow, %d accounts per post", fanout)))
	emit(fmt.Sprintf("\nPostFlow / reference throughput (1 account): %.2f (target >= 0.8)", one.perSec/ref.perSec))
	emit(fmt.Sprintf("Actions per post: %.1f for 1 account, %.1f for %d accounts (target <= 3+n: %d and %d)",
		one.actions, five.actions, fanout, 4, 3+fanout))
	if withScheduled {
		spread, err := scheduledRound(ctx, api, tc, accounts[0], n, concurrency, time.Minute, fmt.Sprintf("%d posts due over one minute", n))
		if err != nil {
			return err
		}
		burst, err := scheduledRound(ctx, api, tc, accounts[0], n, concurrency, 0, fmt.Sprintf("%d posts due at the same second", n))
		if err != nil {
			return err
		}
		emit("\n" + latenessTable([]lateness{spread, burst}, ref.perSec, n) + "Target: p99 under 1 s for the spread case.")
	}
	mb := func(b uint64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }
	// one's heaps: the end of each turn (turns is even), so at n/2 and at n.
	emit(fmt.Sprintf("PostFlow worker live heap (own process, after GC), MB: idle %s; 1 account: %s at n/2, %s at n; %d accounts: %s at n/2, %s at n",
		mb(idle), mb(one.workerHeap[len(one.workerHeap)/2-1]), mb(one.workerHeap[len(one.workerHeap)-1]), fanout, mb(five.workerHeap[0]), mb(five.workerHeap[1])))
	emit("\nWhere a run's time goes (from 50 histories per round):")
	emit("  bare reference\n" + ref.breakdown)
	emit("  PostFlow, 1 account per post\n" + one.breakdown)
	emit(fmt.Sprintf("  PostFlow, %d accounts per post\n%s", fanout, five.breakdown))
	if media != nil {
		if err := runMedia(ctx, api, &worker, workerEnv, logs, *media, emit); err != nil {
			return err
		}
	}
	if drill != nil {
		// Last: it replaces the worker whose memory the rounds above read.
		// n/5 posts a round keep it to about a minute each at n=1000.
		dn := max(n/5, 10)
		accounts, err := connectDrillAccounts(api, 5, *drill)
		if err != nil {
			return err
		}
		faulty, err := drillRound(ctx, api, tc, accounts, *drill, dn, concurrency, "faults", nil)
		if err != nil {
			return err
		}
		killed, err := drillRound(ctx, api, tc, accounts, *drill, dn, concurrency, "faults+SIGKILL", func() error {
			if err := worker.kill(); err != nil {
				return err
			}
			next, err := startWorker(workerEnv, logs)
			if err != nil {
				return err
			}
			worker = next
			return nil
		})
		if err != nil {
			return err
		}
		emit("\n" + drillTable(*drill, dn, len(accounts), []drillResult{faulty, killed}))
	}
	if err := os.MkdirAll("bench-results", 0o755); err == nil {
		_ = os.WriteFile(filepath.Join("bench-results", "last.txt"), []byte(out.String()), 0o644)
	}
	return nil
}

// payloadConverter seals and opens payloads with the TEMPORAL_PAYLOAD_KEY
// of env.
func payloadConverter(env []string) (converter.DataConverter, error) {
	cfg, err := config.Load(env, config.RoleDev)
	if err != nil {
		return nil, err
	}
	current, previous, err := cfg.Temporal.PayloadKeys()
	if err != nil {
		return nil, err
	}
	codec, err := payloadcodec.NewFromKeys(current, previous...)
	if err != nil {
		return nil, err
	}
	return payloadcodec.DataConverter(codec), nil
}

// startCPUProfile profiles this process (the API, Temporal, the stores and
// the reference's worker share it) until the returned func is called.
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// turns is how many times the reference and PostFlow's 1-account round
// take turns.
const turns = 4

// result is one round's figures.
type result struct {
	n int
	// perSec is the steady rate: runs that ended while the round was
	// full, over that time. The first and last tenth of the runs to end
	// are left out: while the first requests are in flight nothing ends
	// yet, and the last ones end with ever fewer in flight, so a round's
	// edges would count its latency as if it were its rate.
	perSec     float64
	steadyRuns int
	steadySpan time.Duration
	latencies  []time.Duration
	actions    float64
	breakdown  string
	// workerHeap: the PostFlow worker's live heap half way and at the end.
	workerHeap []uint64
	// cpu: CPU time this process and the worker's used while the round
	// ran (zero where /proc cannot tell).
	cpu time.Duration
}

// merge adds the figures of another round of the same kind.
func (r result) merge(o result) result {
	if r.n == 0 {
		return o
	}
	m := result{n: r.n + o.n, steadyRuns: r.steadyRuns + o.steadyRuns, steadySpan: r.steadySpan + o.steadySpan, breakdown: o.breakdown, cpu: r.cpu + o.cpu}
	m.perSec = float64(m.steadyRuns) / m.steadySpan.Seconds()
	m.latencies = append(append(m.latencies, r.latencies...), o.latencies...)
	m.actions = (r.actions*float64(r.n) + o.actions*float64(o.n)) / float64(m.n)
	m.workerHeap = append(append(m.workerHeap, r.workerHeap...), o.workerHeap...)
	return m
}

func (r result) row(name string) string {
	heap := "-"
	if len(r.workerHeap) > 0 {
		heap = fmt.Sprintf("%.1f MB", float64(r.workerHeap[len(r.workerHeap)-1])/(1<<20))
	}
	cpu := "-"
	if r.cpu > 0 {
		cpu = fmt.Sprintf("%.1f ms", float64(r.cpu)/float64(time.Millisecond)/float64(r.n))
	}
	return fmt.Sprintf("%-34s %10.1f %10s %10s %12.1f %12s %10s", name, r.perSec,
		quantile(r.latencies, 0.50), quantile(r.latencies, 0.99), r.actions, heap, cpu)
}

// quantile sorts d in place and returns its p-quantile.
func quantile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(len(d)-1, int(p*float64(len(d))))].Round(time.Millisecond)
}

// parallel runs f(0..n-1) with at most c at once and returns the first error.
func parallel(n, c int, f func(i int) error) error {
	sem := make(chan struct{}, c)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(i); err != nil {
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	return first
}

// runStats is what one run's history says: the billable actions (what
// Temporal Cloud bills, per docs.temporal.io/cloud/actions: the start, each
// activity attempt, the local activities of a workflow task together,
// timers, signals, updates and search-attribute upserts other than
// TemporalChangeVersion), and where its time went.
type runStats struct {
	actions int
	// waits: per activity type and for workflow tasks, the time between
	// scheduled and started (queueing) and started and completed (work).
	queued, worked map[string]time.Duration
}

func historyStats(ctx context.Context, tc client.Client, id string) (runStats, error) {
	st := runStats{queued: map[string]time.Duration{}, worked: map[string]time.Duration{}}
	scheduled := map[int64]*historypb.HistoryEvent{}
	started := map[int64]time.Time{}
	laTasks := map[int64]bool{}
	it := tc.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return st, err
		}
		at := e.GetEventTime().AsTime()
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, enumspb.EVENT_TYPE_TIMER_STARTED,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			st.actions++
		case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
			// The TemporalChangeVersion upsert of workflow.GetVersion is
			// not billed.
			fields := e.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()
			if _, version := fields["TemporalChangeVersion"]; !version || len(fields) > 1 {
				st.actions++
			}
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			// Local activities: one action for all of those recorded by
			// one workflow task.
			if m := e.GetMarkerRecordedEventAttributes(); m.GetMarkerName() == "LocalActivity" && !laTasks[m.GetWorkflowTaskCompletedEventId()] {
				laTasks[m.GetWorkflowTaskCompletedEventId()] = true
				st.actions++
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
			scheduled[e.GetEventId()] = e
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := e.GetActivityTaskStartedEventAttributes()
			// One per attempt: retries are billed too.
			st.actions += int(a.GetAttempt())
			if s := scheduled[a.GetScheduledEventId()]; s != nil {
				name := s.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
				st.queued[name] += at.Sub(s.GetEventTime().AsTime())
				started[a.GetScheduledEventId()] = at
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			a := e.GetActivityTaskCompletedEventAttributes()
			if s := scheduled[a.GetScheduledEventId()]; s != nil {
				name := s.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
				st.worked[name] += at.Sub(started[a.GetScheduledEventId()])
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			a := e.GetWorkflowTaskStartedEventAttributes()
			if s := scheduled[a.GetScheduledEventId()]; s != nil {
				st.queued["(workflow task)"] += at.Sub(s.GetEventTime().AsTime())
				started[a.GetScheduledEventId()] = at
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			a := e.GetWorkflowTaskCompletedEventAttributes()
			st.worked["(workflow task)"] += at.Sub(started[a.GetScheduledEventId()])
		}
	}
	return st, nil
}

// sampleStats averages the stats of up to 50 runs.
func sampleStats(ctx context.Context, tc client.Client, ids []string) (float64, string, error) {
	sample := ids
	if len(sample) > 50 {
		sample = sample[:50]
	}
	total := 0
	queued, worked := map[string]time.Duration{}, map[string]time.Duration{}
	for _, id := range sample {
		st, err := historyStats(ctx, tc, id)
		if err != nil {
			return 0, "", err
		}
		total += st.actions
		for k, v := range st.queued {
			queued[k] += v
		}
		for k, v := range st.worked {
			worked[k] += v
		}
	}
	var names []string
	for k := range queued {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "    %-22s queued %8s  ran %8s  (mean per run)\n", k,
			(queued[k] / time.Duration(len(sample))).Round(100*time.Microsecond),
			(worked[k] / time.Duration(len(sample))).Round(100*time.Microsecond))
	}
	return float64(total) / float64(len(sample)), b.String(), nil
}

// reference runs the bare reference workflow n times on its own queue. Its
// CPU figure counts pf, the PostFlow worker, too (idle here, but polling),
// so that every round counts the same two processes.
func reference(ctx context.Context, tc client.Client, pf *workerProcess, n, c int) (result, error) {
	w := worker.New(tc, "bench-reference", worker.Options{})
	w.RegisterWorkflow(ReferenceWorkflow)
	w.RegisterActivity(NoopActivity)
	if err := w.Start(); err != nil {
		return result{}, err
	}
	defer w.Stop()
	ids := make([]string, n)
	lat, ended := make([]time.Duration, n), make([]time.Duration, n)
	cpu0 := pf.cpuWithParent()
	start := time.Now()
	err := parallel(n, c, func(i int) error {
		t0 := time.Now()
		ids[i] = fmt.Sprintf("bench-reference-%d-%d", start.UnixNano(), i)
		run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: ids[i], TaskQueue: "bench-reference"}, ReferenceWorkflow)
		if err != nil {
			return err
		}
		err = run.Get(ctx, nil)
		lat[i], ended[i] = time.Since(t0), time.Since(start)
		return err
	})
	if err != nil {
		return result{}, err
	}
	cpu := pf.cpuWithParent() - cpu0
	actions, breakdown, err := sampleStats(ctx, tc, ids)
	return steady(result{n: n, latencies: lat, actions: actions, breakdown: breakdown, cpu: cpu}, ended), err
}

// publishRound creates n posts over HTTP, triggers them all, and waits for
// each run to end published.
func publishRound(ctx context.Context, api *apiClient, tc client.Client, worker *workerProcess, accounts []string, n, c int, tag string) (result, error) {
	ids := make([]string, n)
	err := parallel(n, c, func(i int) error {
		id, err := api.createPost(fmt.Sprintf("bench %s post %d at %d", tag, i, time.Now().UnixNano()), accounts)
		ids[i] = id
		return err
	})
	if err != nil {
		return result{}, err
	}
	// The worker's heap when half the posts are published, and at the end.
	var done atomic.Int64
	var half sync.Once
	var heaps [2]uint64
	var heapErr error
	lat, ended := make([]time.Duration, n), make([]time.Duration, n)
	trigger := make([]time.Duration, n)
	wf := make([]string, n)
	cpu0 := worker.cpuWithParent()
	start := time.Now()
	err = parallel(n, c, func(i int) error {
		t0 := time.Now()
		id, err := api.publish(ids[i])
		if err != nil {
			return err
		}
		trigger[i] = time.Since(t0)
		wf[i] = id
		var res struct{ Status string }
		if err := tc.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
			return err
		}
		lat[i], ended[i] = time.Since(t0), time.Since(start)
		if res.Status != "published" {
			return fmt.Errorf("post %s ended %s", ids[i], res.Status)
		}
		if done.Add(1) == int64(n/2) {
			half.Do(func() { heaps[0], heapErr = worker.heap() })
		}
		return nil
	})
	if err != nil {
		return result{}, err
	}
	cpu := worker.cpuWithParent() - cpu0
	if heapErr != nil {
		return result{}, heapErr
	}
	if heaps[1], err = worker.heap(); err != nil {
		return result{}, err
	}
	actions, breakdown, err := sampleStats(ctx, tc, wf)
	breakdown = fmt.Sprintf("    %-22s p50 %8s  p99 %8s\n", "POST /publish answered", quantile(trigger, 0.5), quantile(trigger, 0.99)) + breakdown
	return steady(result{n: n, latencies: lat, actions: actions, breakdown: breakdown, workerHeap: heaps[:], cpu: cpu}, ended), err
}

// steady is a round's result with its steady rate, from when each run
// ended (since the round began): the runs that ended between the first
// tenth and the last tenth, over that span.
func steady(r result, ended []time.Duration) result {
	sorted := slices.Clone(ended)
	slices.Sort(sorted)
	lo, hi := len(sorted)/10, len(sorted)-1-len(sorted)/10
	r.steadyRuns, r.steadySpan = hi-lo, sorted[hi]-sorted[lo]
	if r.steadyRuns <= 0 || r.steadySpan <= 0 {
		// Too few runs for edges: the whole round.
		r.steadyRuns, r.steadySpan = len(sorted), sorted[len(sorted)-1]
	}
	r.perSec = float64(r.steadyRuns) / r.steadySpan.Seconds()
	return r
}
