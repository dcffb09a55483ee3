// Package app wires PostFlow's processes from a configuration: the HTTP API,
// the Temporal worker, and the dev process that runs both beside an embedded
// stack. It is the only package that knows every other one.
package app

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"

	"github.com/postflow/postflow/activities"
	"github.com/postflow/postflow/api"
	"github.com/postflow/postflow/connections"
	"github.com/postflow/postflow/internal/config"
	"github.com/postflow/postflow/internal/idempotency"
	"github.com/postflow/postflow/internal/mediastore"
	"github.com/postflow/postflow/internal/metrics"
	"github.com/postflow/postflow/internal/mongostore"
	"github.com/postflow/postflow/internal/netguard"
	"github.com/postflow/postflow/internal/oauthstate"
	"github.com/postflow/postflow/internal/payloadcodec"
	"github.com/postflow/postflow/internal/runs"
	"github.com/postflow/postflow/internal/sandboxplatform"
	"github.com/postflow/postflow/internal/temporalconn"
	"github.com/postflow/postflow/internal/tokencipher"
	"github.com/postflow/postflow/media"
	"github.com/postflow/postflow/media/publicurl"
	"github.com/postflow/postflow/posts"
	"github.com/postflow/postflow/providers"
	"github.com/postflow/postflow/providers/bluesky"
	"github.com/postflow/postflow/providers/linkedin"
	"github.com/postflow/postflow/providers/mastodon"
	"github.com/postflow/postflow/providers/sandbox"
	"github.com/postflow/postflow/webhooks"
	"github.com/postflow/postflow/workflows"
)

// NewLogger writes JSON in production, where logs are read by machines, and
// text elsewhere, where a person reads them.
func NewLogger(w io.Writer, cfg *config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // Validated by config.
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Production() {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// services is the domain, wired to its stores and providers.
type services struct {
	registry    *providers.Registry
	accounts    *mongostore.Accounts
	postStore   *mongostore.Posts
	connections *connections.Service
	posts       *posts.Service
	// library is the organizations' media: the media collection and
	// the bytes in deps.media.
	library *media.Library
	// webhookStore, webhooks and events: endpoints, their API, and the
	// emitter that starts deliveries.
	webhookStore *mongostore.Webhooks
	webhooks     *webhooks.Service
	events       *webhooks.Emitter
	cipher       *tokencipher.Cipher
}

// buildServices wires the domain: providers, the token cipher, the OAuth
// state store (where the process has Redis), the stores, whose indexes it
// creates, and the publish runner on Temporal.
func buildServices(ctx context.Context, cfg *config.Config, d *deps, logger *slog.Logger) (*services, error) {
	current, previous, err := cfg.EncryptionKeys()
	if err != nil {
		return nil, err
	}
	cipher, err := tokencipher.New(current, previous...)
	if err != nil {
		return nil, err
	}
	reg, err := buildProviders(cfg, d.mongo.ServerApps(cipher))
	if err != nil {
		return nil, err
	}
	s := &services{registry: reg, accounts: d.mongo.Accounts(), postStore: d.mongo.Posts(), webhookStore: d.mongo.Webhooks(), cipher: cipher}
	items := d.mongo.Media()
	// One decode budget for the process: uploads and the worker's
	// re-encodings share the library's.
	budget, err := media.NewBudget(cfg.MediaDecodeMemory)
	if err != nil {
		return nil, err
	}
	s.library, err = media.NewLibrary(items, d.media, media.Limits{MaxBytes: cfg.MediaMaxBytes, MaxPixels: cfg.MediaMaxPixels}, s.postStore.UsesMedia,
		media.WithBudget(budget))
	if err != nil {
		return nil, err
	}
	for _, ix := range []interface{ EnsureIndexes(context.Context) error }{s.accounts, s.postStore, items, s.webhookStore} {
		if err := ix.EnsureIndexes(ctx); err != nil {
			// MongoDB may be starting still; /readyz says so, and the
			// indexes are created on the next start.
			logger.Warn("could not create MongoDB indexes now", "error", err)
		}
	}
	var states connections.StateStore
	if d.redis != nil {
		states = oauthstate.New(d.redis)
	}
	// Endpoints' URLs follow the policy of users' servers: outside
	// development only public addresses, checked again at each delivery.
	deliveries := &runs.Deliveries{Client: d.temporal, TaskQueue: cfg.Temporal.TaskQueue}
	s.webhooks = webhooks.NewService(s.webhookStore, cipher, netguard.Policy{AllowLocal: cfg.AllowLocalServers}, deliveries)
	s.events = &webhooks.Emitter{Store: s.webhookStore, Starter: deliveries, Logger: logger}
	s.connections = connections.NewService(s.accounts, states, reg, cipher, logger).WithEvents(s.events)
	runner := &runs.Posts{Client: d.temporal, TaskQueue: cfg.Temporal.TaskQueue, Horizon: cfg.RateLimitHorizon}
	// A post's images are looked up in the library's records, which say
	// their type, size and dimensions; the bytes are not read to check.
	s.posts = posts.NewService(s.postStore, s.accounts, reg, runner, d.mongo.Media().Usable()).WithEvents(s.events, logger).WithUnpublisher(runner)
	return s, nil
}

// mediaOptions serve the media library: uploads, imports under the same
// address policy as users' servers, and public links when a secret signs
// them (always outside dev, where config requires MEDIA_URL_SECRET).
func mediaOptions(cfg *config.Config, svc *services) (api.MediaOptions, error) {
	opts := api.MediaOptions{
		Library:       svc.library,
		Import:        netguard.Policy{AllowLocal: cfg.AllowLocalServers},
		ImportTimeout: cfg.MediaImportTimeout,
	}
	if cfg.MediaURLSecret != "" {
		links, err := publicurl.New(cfg.PublicBaseURL, []byte(cfg.MediaURLSecret))
		if err != nil {
			return api.MediaOptions{}, err
		}
		opts.Links = links
	}
	return opts, nil
}

// networkDeps is what a network's provider may be built with.
type networkDeps struct {
	// Client calls networks at fixed addresses (LinkedIn's).
	Client *http.Client
	// Servers guards calls to servers users name (Mastodon instances,
	// Bluesky PDSes).
	Servers netguard.Policy
	// Apps keeps PostFlow's registrations on servers that register
	// clients on demand (Mastodon instances), client secrets sealed.
	Apps providers.AppStore
}

// network builds one network's provider from the configuration, or
// returns nil when the configuration does not enable it.
type network func(cfg *config.Config, d networkDeps) (providers.Provider, error)

// networks is the registry table: a new network is its folder under
// providers/ and one line here.
func networks() []network {
	return []network{
		linkedinNetwork,
		mastodonNetwork,
		blueskyNetwork,
		sandboxNetwork,
	}
}

// buildProviders registers the providers the configuration enables.
func buildProviders(cfg *config.Config, apps providers.AppStore) (*providers.Registry, error) {
	// One client for the platforms. Go's default transport keeps two idle
	// connections per host, so a worker publishing many posts at once
	// would open a new connection (and TLS session) for nearly every call.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	d := networkDeps{
		Client:  &http.Client{Timeout: 30 * time.Second, Transport: transport},
		Servers: netguard.Policy{AllowLocal: cfg.AllowLocalServers},
		Apps:    apps,
	}
	var ps []providers.Provider
	for _, build := range networks() {
		p, err := build(cfg, d)
		if err != nil {
			return nil, err
		}
		if p != nil {
			ps = append(ps, p)
		}
	}
	return providers.NewRegistry(ps...)
}

func linkedinNetwork(cfg *config.Config, d networkDeps) (providers.Provider, error) {
	if cfg.LinkedIn.ClientID == "" {
		return nil, nil
	}
	return linkedin.New(linkedin.Config{
		HTTPClient:   d.Client,
		ClientID:     cfg.LinkedIn.ClientID,
		ClientSecret: cfg.LinkedIn.ClientSecret,
		RedirectURI:  cfg.LinkedIn.RedirectURI,
		AuthURL:      cfg.LinkedIn.AuthURL,
		TokenURL:     cfg.LinkedIn.TokenURL,
		APIURL:       cfg.LinkedIn.APIURL,
		Version:      cfg.LinkedIn.APIVersion,
		Pages:        cfg.LinkedIn.PagesEnabled,
	})
}

func mastodonNetwork(cfg *config.Config, d networkDeps) (providers.Provider, error) {
	if !cfg.MastodonEnabled() {
		return nil, nil
	}
	return mastodon.New(mastodon.Config{
		RedirectURI: cfg.Mastodon.RedirectURI,
		ClientName:  cfg.Mastodon.ClientName,
		Website:     cfg.Mastodon.Website,
		Apps:        d.Apps,
		Servers:     d.Servers,
	})
}

func blueskyNetwork(cfg *config.Config, d networkDeps) (providers.Provider, error) {
	if !cfg.Bluesky.Enabled {
		return nil, nil
	}
	bc := bluesky.Config{
		ResolverURL: cfg.Bluesky.ResolverURL,
		PLCURL:      cfg.Bluesky.PLCURL,
		AppURL:      cfg.Bluesky.AppURL,
		Client:      d.Client,
		Servers:     d.Servers,
		Connect:     cfg.Bluesky.Connect,
	}
	if cfg.BlueskyOAuth() {
		secret, err := blueskyOAuthSecret(cfg)
		if err != nil {
			return nil, err
		}
		clientKey, err := cfg.BlueskyOAuthClientKey()
		if err != nil {
			return nil, err
		}
		bc.RedirectURI, bc.OAuthClientID, bc.OAuthSecret, bc.OAuthClientKey = cfg.Bluesky.RedirectURI, blueskyClientID(cfg), secret, clientKey
	}
	return bluesky.New(bc)
}

// blueskyClientID is PostFlow's atproto OAuth client id: the URL the API
// serves its client metadata at, on the redirect URI's origin (the API's);
// "" with an http (loopback) redirect URI, for the atproto loopback client.
func blueskyClientID(cfg *config.Config) string {
	u, err := url.Parse(cfg.Bluesky.RedirectURI)
	if err != nil || u.Scheme != "https" {
		return ""
	}
	return "https://" + u.Host + api.BlueskyClientMetadataPath
}

// blueskyClientDocs are what the API serves at the client id and, for a
// confidential client, at its jwks_uri; nil when there is none to serve.
func blueskyClientDocs(cfg *config.Config) (metadata, jwks map[string]any, err error) {
	id := blueskyClientID(cfg)
	if !cfg.BlueskyOAuth() || id == "" {
		return nil, nil, nil
	}
	key, err := cfg.BlueskyOAuthClientKey()
	if err != nil || key == nil {
		return bluesky.ClientMetadata(id, cfg.Bluesky.RedirectURI, bluesky.DefaultOAuthScope, ""), nil, err
	}
	if jwks, err = bluesky.ClientJWKS(key); err != nil {
		return nil, nil, err
	}
	jwksURI := strings.TrimSuffix(id, api.BlueskyClientMetadataPath) + api.BlueskyJWKSPath
	return bluesky.ClientMetadata(id, cfg.Bluesky.RedirectURI, bluesky.DefaultOAuthScope, jwksURI), jwks, nil
}

// blueskyOAuthSecret is the secret mixed into each atproto OAuth connect's
// DPoP key, derived from TOKEN_ENCRYPTION_KEY (which the API and the
// worker both hold) with HKDF under a label of its own, so neither use
// learns anything of the other. A rotated key only fails the connects in
// flight (10 minutes), whose keys it made.
func blueskyOAuthSecret(cfg *config.Config) ([]byte, error) {
	current, _, err := cfg.EncryptionKeys()
	if err != nil {
		return nil, err
	}
	return hkdf.Key(sha256.New, current, nil, "postflow bluesky atproto-oauth dpop secret v1", 32)
}

func sandboxNetwork(cfg *config.Config, d networkDeps) (providers.Provider, error) {
	if !cfg.SandboxEnabled {
		return nil, nil
	}
	base := cfg.SandboxBaseURL()
	return sandbox.New(sandbox.Config{
		HTTPClient: d.Client,
		BaseURL:    base,
		// The sandbox is served by the API, so the API's root is the
		// sandbox's minus its mount point.
		RedirectURI: strings.TrimSuffix(base, "/sandbox") + "/connections/callback/sandbox",
	})
}

// sandboxPlatform is the pretend network the API serves under /sandbox,
// when enabled.
func sandboxPlatform(cfg *config.Config, d *deps, logger *slog.Logger) http.Handler {
	if !cfg.SandboxEnabled {
		return nil
	}
	return sandboxplatform.New(d.mongo.DB, sandboxplatform.Options{Logger: logger.With("component", "sandbox")})
}

// codecOptions serve the payload codec to the Temporal Web UI.
func codecOptions(cfg *config.Config, d *deps) api.CodecOptions {
	if d.codec == nil {
		return api.CodecOptions{}
	}
	return api.CodecOptions{Codec: d.codec, UIOrigin: cfg.Temporal.UIOrigin, Anonymous: cfg.Temporal.CodecAnonymous}
}

// deps are the connections a process holds. Each is opened lazily, so a
// process starts while a dependency is down and /readyz reports it.
type deps struct {
	mongo *mongostore.Store
	// media keeps media bytes (MEDIA_STORE): GridFS in mongo's database,
	// or an S3 bucket.
	media    media.Store
	redis    *redis.Client
	temporal client.Client
	// codec seals what the Temporal client stores; nil without a key.
	codec *payloadcodec.Codec
	// metrics are the process's, the Temporal SDK's among them.
	metrics *metrics.Metrics
}

func openDeps(cfg *config.Config, logger *slog.Logger, withRedis bool) (d *deps, err error) {
	d = &deps{}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if d.mongo, err = mongostore.Connect(cfg.MongoURI); err != nil {
		return d, err
	}
	if d.media, err = MediaStore(cfg, d.mongo.DB); err != nil {
		return d, err
	}
	if err := mediastore.CheckAtStart(context.Background(), d.media, logger); err != nil {
		return d, err
	}
	if withRedis {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return d, &config.Error{Var: "REDIS_URL", Problem: "is not a valid Redis URL"}
		}
		d.redis = redis.NewClient(opts)
	}
	var dc converter.DataConverter
	if cfg.Temporal.PayloadKey != "" {
		current, previous, err := cfg.Temporal.PayloadKeys()
		if err != nil {
			return d, err
		}
		if d.codec, err = payloadcodec.NewFromKeys(current, previous...); err != nil {
			return d, err
		}
		dc = payloadcodec.DataConverter(d.codec)
	}
	if d.metrics, err = metrics.New(); err != nil {
		return d, err
	}
	sdkMetrics, err := d.metrics.TemporalHandler(logger)
	if err != nil {
		return d, err
	}
	if d.temporal, err = temporalconn.Dial(cfg.Temporal, logger, dc, sdkMetrics); err != nil {
		return d, err
	}
	return d, nil
}

// serveMetrics serves d's metrics at /metrics on cfg.MetricsAddr, if set,
// until ctx is done: an internal port, apart from the API's, so that no
// load balancer publishes it and Prometheus needs no credentials. It
// returns once the port listens (an error if it cannot).
func serveMetrics(ctx context.Context, cfg *config.Config, d *deps, logger *slog.Logger) error {
	if cfg.MetricsAddr == "" {
		return nil
	}
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("metrics: listen on METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", d.metrics.Handler(logger))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go func() { _ = srv.Serve(l) }()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	logger.Info("metrics listening", "addr", l.Addr().String(), "path", "/metrics")
	return nil
}

func (d *deps) checks() []api.Check {
	checks := []api.Check{{Name: "mongodb", Ping: d.mongo.Ping}}
	if ping := mediastore.Ready(d.media); ping != nil {
		checks = append(checks, api.Check{Name: "media", Ping: ping})
	}
	if d.redis != nil {
		checks = append(checks, api.Check{Name: "redis", Ping: func(ctx context.Context) error {
			return d.redis.Ping(ctx).Err()
		}})
	}
	checks = append(checks, api.Check{Name: "temporal", Ping: func(ctx context.Context) error {
		_, err := d.temporal.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	}})
	return checks
}

func (d *deps) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if d.temporal != nil {
		d.temporal.Close()
	}
	if d.redis != nil {
		_ = d.redis.Close()
	}
	if d.mongo != nil {
		_ = d.mongo.Close(ctx)
	}
}

// RunAPI serves the HTTP API until ctx is done, then drains requests for
// up to cfg.ShutdownTimeout.
func RunAPI(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	d, err := openDeps(cfg, logger, true)
	if err != nil {
		return err
	}
	defer d.close()
	stop, err := startWatchers(ctx, cfg, d, logger)
	if err != nil {
		return err
	}
	defer stop()
	return serveAPI(ctx, cfg, d, logger, "", nil)
}

func isLoopbackIP(host string) bool {
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// idempotencyStore keeps Idempotency-Keys in the API's Redis (nil
// without one), with the token cipher: answers sealed (a webhook's
// creation or rotation answers with its signing secret), requests'
// fingerprints keyed (a Bluesky login's body holds an app password).
func idempotencyStore(d *deps, cipher *tokencipher.Cipher) *idempotency.Store {
	if d.redis == nil {
		return nil
	}
	return idempotency.New(d.redis, cipher)
}

// serveAPI listens on host (all interfaces when empty) and cfg.Port, and
// reports the bound address on bound, if given, once it accepts connections.
func serveAPI(ctx context.Context, cfg *config.Config, d *deps, logger *slog.Logger, host string, bound chan<- net.Addr) error {
	svc, err := buildServices(ctx, cfg, d, logger)
	if err != nil {
		return err
	}
	blueskyMetadata, blueskyJWKS, err := blueskyClientDocs(cfg)
	if err != nil {
		return err
	}
	mediaOpts, err := mediaOptions(cfg, svc)
	if err != nil {
		return err
	}
	handler := api.NewHandler(api.Options{
		Logger:       logger,
		FrontendURL:  cfg.FrontendURL,
		MaxBodyBytes: cfg.MaxBodyBytes,
		Checks:       d.checks(),
		// Whether posts go out: a worker polls the publish task queue.
		Worker:      api.WorkerCheck{Ping: temporalconn.NewPollers(d.temporal, cfg.Temporal.TaskQueue).Ping, Required: cfg.ReadyzRequireWorker},
		Auth:        api.AuthOptions{JWTSecret: []byte(cfg.JWTSecret), TrustHeaders: cfg.AuthTrustHeaders},
		Connections: svc.connections,
		Posts:       svc.posts,
		Webhooks:    svc.webhooks,
		Media:       mediaOpts,
		Idempotency: idempotencyStore(d, svc.cipher),
		Sandbox:     sandboxPlatform(cfg, d, logger),
		Codec:       codecOptions(cfg, d),
		// Production serves HTTPS (behind its proxy); dev serves plain
		// HTTP on 127.0.0.1, where a Secure cookie would not be kept.
		SecureCookies: cfg.Production(),
		// Listening on loopback alone, as postflow dev does: no request
		// from elsewhere names another host, except a rebinding page's.
		LoopbackHostsOnly:     isLoopbackIP(host),
		BlueskyClientMetadata: blueskyMetadata,
		BlueskyJWKS:           blueskyJWKS,
		// On the router only where it answers loopback alone (postflow
		// dev); elsewhere metrics are on METRICS_ADDR's internal port.
		Metrics: metricsOnRouter(host, d, logger),
		// Operators' view of every organization: a token, or in dev the
		// loopback host, as for the codec.
		Overdue: api.OverdueOptions{List: overdueWatch(cfg, d, logger).List, After: cfg.OverdueAfter,
			Anonymous: cfg.Temporal.CodecAnonymous && isLoopbackIP(host)},
	})
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("api: listen on PORT %d: %w", cfg.Port, err)
	}
	if bound != nil {
		bound <- l.Addr()
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	logger.Info("api listening", "addr", l.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("api: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	logger.Info("api stopped")
	return nil
}

// RunWorker polls the task queue until ctx is done, then lets running
// activities finish for up to cfg.ShutdownTimeout.
func RunWorker(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	d, err := openDeps(cfg, logger, false)
	if err != nil {
		return err
	}
	defer d.close()
	stop, err := startWatchers(ctx, cfg, d, logger)
	if err != nil {
		return err
	}
	defer stop()
	return runWorker(ctx, cfg, d, logger, nil)
}

// runWorker closes started, if given, once the worker polls.
func runWorker(ctx context.Context, cfg *config.Config, d *deps, logger *slog.Logger, started chan<- struct{}) error {
	if err := registerSearchAttributes(ctx, cfg, d.temporal, logger); err != nil {
		if ctx.Err() != nil {
			return nil // Stopped while starting: nothing failed.
		}
		return err
	}
	svc, err := buildServices(ctx, cfg, d, logger)
	if err != nil {
		return err
	}
	w := worker.New(d.temporal, cfg.Temporal.TaskQueue, worker.Options{
		WorkerStopTimeout: cfg.ShutdownTimeout,
	})
	w.RegisterWorkflow(workflows.PublishPost)
	w.RegisterWorkflow(workflows.DeliverWebhook)
	w.RegisterWorkflow(workflows.UnpublishPost)
	(&activities.Activities{
		Posts:     svc.postStore,
		Accounts:  svc.accounts,
		Tokens:    svc.connections,
		Providers: svc.registry,
		// A post's images are read from the library, streamed from
		// MEDIA_STORE.
		Media:   svc.library,
		Metrics: d.metrics,
		Events:  svc.events,
		Webhooks: &webhooks.Deliverer{
			Store: metrics.CountDeliveries(svc.webhookStore, d.metrics), Sealer: svc.cipher, Disable: webhooks.DefaultDisablePolicy, Logger: logger,
			// The policy is checked at every dial, after DNS resolution.
			Client: netguard.Policy{AllowLocal: cfg.AllowLocalServers}.Client(webhooks.AttemptTimeout),
		},
	}).Register(w)
	if err := w.Start(); err != nil {
		return fmt.Errorf("worker: start on task queue %s: %w", cfg.Temporal.TaskQueue, err)
	}
	logger.Info("worker polling", "task_queue", cfg.Temporal.TaskQueue, "namespace", cfg.Temporal.Namespace)
	if started != nil {
		close(started)
	}
	if cfg.AccountExpiringDays > 0 {
		go watchExpiring(ctx, svc, time.Duration(cfg.AccountExpiringDays)*24*time.Hour, time.Hour, logger)
	}
	// The outbox's sweeper: events stored while Temporal was unreachable
	// are dispatched when it returns. MongoDB alone, as the watches; every
	// worker sweeps, and a start is idempotent (the run's id is the
	// event's and the endpoint's), so two workers send an event once.
	go svc.events.RunSweeper(ctx, webhooks.SweepEvery)
	go pruneWebhooks(ctx, cfg, svc, logger)
	<-ctx.Done()
	w.Stop()
	logger.Info("worker stopped")
	return nil
}

// pruneWebhooks keeps webhook events and deliveries WEBHOOK_RETENTION:
// it sets the TTL indexes (MongoDB) to it, then removes older records at
// once and hourly until ctx is done. FerretDB has no TTL indexes; on
// MongoDB the removal finds what the TTL monitor has not reached yet.
// The worker does it, not the API: the setting that applies is that of
// the last worker started.
func pruneWebhooks(ctx context.Context, cfg *config.Config, svc *services, logger *slog.Logger) {
	ttl, err := svc.webhookStore.EnsureRetention(ctx, cfg.WebhookRetention)
	switch {
	case err != nil && ctx.Err() == nil:
		// The hourly removal goes on; the index is set at the next start.
		logger.Warn("could not set the webhook records' TTL indexes now", "error", err)
	case err == nil && !ttl:
		logger.Debug("this MongoDB-compatible store has no TTL indexes: the worker alone removes old webhook records")
	}
	(&webhooks.Pruner{Store: svc.webhookStore, Keep: cfg.WebhookRetention, Logger: logger}).RunPruner(ctx, webhooks.PruneEvery)
}

// watchExpiring announces accounts to reconnect soon (account.expiring)
// at start and then every interval, until ctx is done. Every worker
// watches: an event's id is the account's and its deadline's, and its
// delivery's workflow id is the event's, so two workers send it once.
func watchExpiring(ctx context.Context, svc *services, within, interval time.Duration, logger *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := svc.connections.AnnounceExpiring(ctx, svc.accounts, within); err != nil && ctx.Err() == nil {
			logger.Error("could not announce every expiring account", "announced", n, "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// registerSearchAttributes adds the attributes the workflows upsert. Where
// the server does not let this worker do it (Temporal Cloud), it says how to
// do it by hand and goes on: the attributes may well exist already.
func registerSearchAttributes(ctx context.Context, cfg *config.Config, c client.Client, logger *slog.Logger) error {
	want := workflows.SearchAttributes()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	added, err := temporalconn.EnsureSearchAttributes(ctx, c, cfg.Temporal.Namespace, want)
	switch {
	case errors.Is(err, temporalconn.ErrSearchAttributesNotAllowed):
		var names []string
		for name, typ := range want {
			names = append(names, name+"="+strings.TrimPrefix(typ.String(), "INDEXED_VALUE_TYPE_"))
		}
		logger.Warn("cannot register search attributes on this Temporal server; add them once by hand "+
			"(Temporal Cloud: tcld namespace search-attributes add; self-hosted: temporal operator search-attribute create)",
			"namespace", cfg.Temporal.Namespace, "attributes", strings.Join(names, ","), "error", err)
		return nil
	case err != nil:
		return fmt.Errorf("worker: %w", err)
	case len(added) > 0:
		logger.Info("registered search attributes", "namespace", cfg.Temporal.Namespace, "attributes", strings.Join(added, ","))
	}
	return nil
}

// metricsOnRouter is d's metrics handler for an API listening on host
// when that is a loopback address (postflow dev: the API and the worker
// share one process and one registry), else nil. A public router does not
// serve them: they tell every organization's publishing volume, and
// Prometheus scrapes an internal port (METRICS_ADDR) more simply than a
// route behind tokens.
func metricsOnRouter(host string, d *deps, logger *slog.Logger) http.Handler {
	if !isLoopbackIP(host) {
		return nil
	}
	return d.metrics.Handler(logger)
}

// overdueWatch looks for d's overdue posts (posts.OverdueWatch): counted in
// the process's postflow_posts_overdue gauge, and announced by post.overdue
// events, started like every other webhook delivery.
func overdueWatch(cfg *config.Config, d *deps, logger *slog.Logger) *posts.OverdueWatch {
	deliveries := &runs.Deliveries{Client: d.temporal, TaskQueue: cfg.Temporal.TaskQueue}
	return &posts.OverdueWatch{
		Store:  d.mongo.Posts(),
		After:  cfg.OverdueAfter,
		Events: &webhooks.Emitter{Store: d.mongo.Webhooks(), Starter: deliveries, Logger: logger},
		Count:  d.metrics.SetOverdue,
		Logger: logger.With("component", "overdue"),
	}
}

// startWatchers starts what a process runs beside its role: /metrics on
// METRICS_ADDR and the overdue posts' watch, until ctx is done or stop is
// called; stop waits for the watch to end. Every process (api, worker, dev) watches: the watch needs
// MongoDB alone, so it still sees posts pile up while the workers are
// gone or cut off from Temporal, the failure it is there to catch (a
// Temporal schedule would need a polling worker to run); its marks and
// event ids make the processes announce each post once between them.
func startWatchers(ctx context.Context, cfg *config.Config, d *deps, logger *slog.Logger) (stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	if err := serveMetrics(ctx, cfg, d, logger); err != nil {
		cancel()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		overdueWatch(cfg, d, logger).Run(ctx, posts.OverdueCheckEvery(cfg.OverdueAfter))
	}()
	return func() { cancel(); <-done }, nil
}
